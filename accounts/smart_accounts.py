"""Smart accounts: one per person and chain, its address known at sign-up, deployed by the relayer
with the sign-up passkey already installed in the WebAuthnValidator; and the passkeys that the
person adds or deletes later, mirrored on chain by passkey-signed user operations."""

import logging
import secrets
from typing import Any

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from eth_abi import decode, encode
from eth_utils import keccak

from accounts.models import SmartAccount, User
from chain import pipeline, userops
from chain.client import account_from_key
from chain.models import ChainOperation
from chain.operations import operation_changed
from chain.passkey_signatures import public_key_from_cose
from chain.selectors import deployment_addresses
from passkeys.models import Passkey
from portal.errors import Conflict, PortalError

logger = logging.getLogger(__name__)

ADD_VALIDATION_KEY = keccak(text="addValidationKey(bytes,bytes32[2],string)")[:4]
REMOVE_VALIDATION_KEY = keccak(text="removeValidationKey(bytes,string)")[:4]
REQUIRED_CONTRACTS = ("MSAFactory", "AccountBeacon", "WebAuthnValidator")


def chain_origin() -> str:
    """The origin every passkey is registered under on chain: the portal's first origin."""
    return str(settings.PORTAL_ORIGINS[0])


def relayer_address() -> str:
    return str(account_from_key(settings.CHAIN_RELAYER_KEY).address)


def _contracts() -> dict[str, str] | None:
    addresses = deployment_addresses()
    if not all(name in addresses for name in REQUIRED_CONTRACTS):
        return None
    return addresses


def _key_data(passkey: Passkey) -> bytes:
    return userops.webauthn_install_data(
        credential_id=bytes(passkey.credential_id),
        public_key=public_key_from_cose(bytes(passkey.public_key)),
        origin=chain_origin(),
    )


# --- the account -----------------------------------------------------------------------------


def open_smart_account(*, user: User, passkey: Passkey) -> SmartAccount | None:
    """At sign-up, in its transaction: the account's address, and its deployment queued.

    None when the portal's contracts are not deployed on CHAIN_ID: the portal then runs without
    a chain (accounts can be opened later with `manage.py openaccounts`).
    """
    contracts = _contracts()
    if contracts is None:
        logger.warning("no contracts recorded for chain %s: no smart account", settings.CHAIN_ID)
        return None
    salt = secrets.token_bytes(32)
    init_data = userops.initialize_account_data(
        modules=[contracts["WebAuthnValidator"]], data=[_key_data(passkey)]
    )
    deployer = relayer_address()
    account = SmartAccount.objects.create(
        user=user,
        chain_id=settings.CHAIN_ID,
        address=userops.predict_account_address(
            factory=contracts["MSAFactory"],
            beacon=contracts["AccountBeacon"],
            salt=salt,
            init_data=init_data,
        ),
        salt="0x" + salt.hex(),
        init_data=init_data,
        deployer=deployer,
    )
    queue_deployment(account=account)
    return account


@transaction.atomic
def queue_deployment(*, account: SmartAccount) -> ChainOperation:
    """A relayer call of MSAFactory.deployAccount; a new attempt each time it is queued again."""
    contracts = _contracts()
    if contracts is None:
        raise Conflict("chain_not_configured", "The portal's contracts are not deployed.")
    attempt = account.operations.filter(kind=ChainOperation.Kind.DEPLOY_ACCOUNT).count() + 1
    init_code = userops.deploy_account_init_code(
        factory=contracts["MSAFactory"],
        salt=bytes.fromhex(account.salt[2:]),
        init_data=bytes(account.init_data),
    )
    operation = pipeline.create_relayer_call(
        kind=ChainOperation.Kind.DEPLOY_ACCOUNT,
        to=contracts["MSAFactory"],
        data=init_code[20:],
        idempotency_key=f"deploy-account:{account.chain_id}:{account.address}:{attempt}",
        user=account.user,
        account=account,
        details={"attempt": attempt},
    )
    account.status, account.deployment = SmartAccount.Status.DEPLOYING, operation
    account.save(update_fields=["status", "deployment", "updated_at"])
    return operation


def installed_credential_id(account: SmartAccount) -> bytes:
    """The credential id of the passkey the deployment installs (the sign-up passkey)."""
    _, data = decode(["address[]", "bytes[]"], bytes(account.init_data)[4:])
    credential_id, _, _ = decode(["bytes", "bytes32[2]", "string"], data[0])
    return bytes(credential_id)


def requeue_failed_deployments() -> list[SmartAccount]:
    failed = list(
        SmartAccount.objects.filter(chain_id=settings.CHAIN_ID, status=SmartAccount.Status.FAILED)
    )
    for account in failed:
        queue_deployment(account=account)
    return failed


def deployed_account_of(user: User) -> SmartAccount | None:
    return SmartAccount.objects.filter(
        user=user, chain_id=settings.CHAIN_ID, status=SmartAccount.Status.DEPLOYED
    ).first()


# --- passkeys on chain -------------------------------------------------------------------------


def _create_user_operation(**arguments: Any) -> ChainOperation:
    """pipeline.create_user_operation, with an unreachable chain refused as a clear 503: the
    caller's transaction then writes nothing, and the person tries again."""
    try:
        return pipeline.create_user_operation(**arguments)
    except pipeline.ChainUnavailable as exc:
        logger.warning("chain unavailable while creating a %s: %s", arguments["kind"], exc)
        raise PortalError(
            "chain_unavailable",
            "The chain cannot be reached right now: nothing was changed, try again in a minute.",
            status=503,
        ) from exc


def _passkey_operation(
    *,
    user: User,
    account: SmartAccount,
    kind: str,
    validator_call: bytes,
    passkey_id: int,
    credential_id: bytes,
) -> ChainOperation:
    """A passkey-approved user operation calling the validator about one passkey. Each attempt
    (a first one, then one per expired or failed one) has its own idempotency key."""
    contracts = _contracts()
    assert contracts is not None  # noqa: S101 - the account was deployed with them
    attempts = ChainOperation.objects.filter(
        account=account, kind=kind, details__passkey_id=passkey_id
    ).count()
    suffix = f":{attempts + 1}" if attempts else ""
    return _create_user_operation(
        user=user,
        account=account,
        kind=kind,
        call_data=userops.execute_call_data(
            target=contracts["WebAuthnValidator"], data=validator_call
        ),
        idempotency_key=f"{kind}:{account.chain_id}:{passkey_id}{suffix}",
        details={"passkey_id": passkey_id, "credential_id": credential_id.hex()},
    )


def add_passkey_on_chain(*, passkey: Passkey) -> ChainOperation | None:
    """A user operation adding `passkey` to the validator, for one of the user's passkeys that are
    already on chain to approve. None while the account is not deployed (it is added then)."""
    account = deployed_account_of(passkey.user)
    if account is None or _contracts() is None or passkey.onchain == Passkey.OnChain.ACTIVE:
        return None
    return _passkey_operation(
        user=passkey.user,
        account=account,
        kind=ChainOperation.Kind.ADD_PASSKEY,
        validator_call=ADD_VALIDATION_KEY + _key_data(passkey),
        passkey_id=passkey.pk,
        credential_id=bytes(passkey.credential_id),
    )


def _removal_call(credential_id: bytes) -> bytes:
    return REMOVE_VALIDATION_KEY + encode(["bytes", "string"], [credential_id, chain_origin()])


def remove_passkey_on_chain(*, passkey: Passkey) -> ChainOperation | None:
    """A user operation removing `passkey` from the validator. Refused for the last passkey that
    is active on chain: the account would be locked for good."""
    account = deployed_account_of(passkey.user)
    if account is None or _contracts() is None or passkey.onchain != Passkey.OnChain.ACTIVE:
        return None
    others = Passkey.objects.filter(user=passkey.user, onchain=Passkey.OnChain.ACTIVE).exclude(
        pk=passkey.pk
    )
    if not others.exists():
        raise Conflict(
            "last_onchain_passkey",
            "This is the only passkey that controls your account on chain: "
            "wait until another one is active there.",
        )
    return _passkey_operation(
        user=passkey.user,
        account=account,
        kind=ChainOperation.Kind.REMOVE_PASSKEY,
        validator_call=_removal_call(bytes(passkey.credential_id)),
        passkey_id=passkey.pk,
        credential_id=bytes(passkey.credential_id),
    )


RETRYABLE = (ChainOperation.Status.EXPIRED, ChainOperation.Status.FAILED)


@transaction.atomic
def retry_passkey_operation(*, user: User, operation_id: int) -> ChainOperation:
    """Ask again for a passkey change on chain whose approval expired or whose operation failed:
    without it, a passkey would stay half-added, or a deleted one still valid on chain."""
    operation = pipeline.operation_for(user=user, operation_id=operation_id)
    kinds = (ChainOperation.Kind.ADD_PASSKEY, ChainOperation.Kind.REMOVE_PASSKEY)
    if operation.kind not in kinds or operation.status not in RETRYABLE:
        raise Conflict(
            "operation_not_retryable",
            "Only a passkey change that expired or failed can be asked for again.",
        )
    passkey_id = int(operation.details["passkey_id"])
    later = ChainOperation.objects.filter(
        account=operation.account, kind=operation.kind, details__passkey_id=passkey_id
    ).filter(pk__gt=operation.pk)
    if later.exists():
        raise Conflict("operation_superseded", "A newer attempt of this change exists.")
    account = deployed_account_of(user)
    if account is None:
        raise Conflict("account_not_deployed", "The account is not deployed on chain yet.")
    if operation.kind == ChainOperation.Kind.REMOVE_PASSKEY:
        credential_id = bytes.fromhex(operation.details["credential_id"])
        return _passkey_operation(
            user=user,
            account=account,
            kind=operation.kind,
            validator_call=_removal_call(credential_id),
            passkey_id=passkey_id,
            credential_id=credential_id,
        )
    passkey = Passkey.objects.filter(pk=passkey_id, user=user).first()
    if passkey is None or passkey.onchain == Passkey.OnChain.ACTIVE:
        raise Conflict("operation_not_needed", "This passkey is deleted or already on chain.")
    added = add_passkey_on_chain(passkey=passkey)
    assert added is not None  # noqa: S101 - deployed, and not active
    return added


@receiver(operation_changed)
def follow_deployment(sender: Any, operation: ChainOperation, **kwargs: Any) -> None:
    """Keep the account's status in step with its deployment; once deployed, queue the on-chain
    addition of any passkey added while it was deploying."""
    if operation.kind != ChainOperation.Kind.DEPLOY_ACCOUNT or operation.account_id is None:
        return
    account = SmartAccount.objects.select_related("user").get(pk=operation.account_id)
    if account.deployment_id != operation.pk:
        return  # an older attempt
    if operation.status == ChainOperation.Status.CONFIRMED:
        SmartAccount.objects.filter(pk=account.pk).exclude(
            status=SmartAccount.Status.DEPLOYED
        ).update(status=SmartAccount.Status.DEPLOYED, deployed_at=timezone.now())
        installed = installed_credential_id(account)
        for passkey in Passkey.objects.filter(user=account.user, onchain=Passkey.OnChain.PENDING):
            if bytes(passkey.credential_id) != installed:
                add_passkey_on_chain(passkey=passkey)
    elif operation.status == ChainOperation.Status.FAILED:
        SmartAccount.objects.filter(pk=account.pk).update(status=SmartAccount.Status.FAILED)


def open_missing_accounts() -> list[SmartAccount]:
    """Open an account for every user who signed up while the portal had no contracts."""
    opened = []
    users = User.objects.exclude(smart_accounts__chain_id=settings.CHAIN_ID).filter(
        passkeys__isnull=False
    )
    for user in users.distinct():
        first = Passkey.objects.filter(user=user).order_by("created_at", "pk").first()
        if first is None:
            continue
        with transaction.atomic():
            account = open_smart_account(user=user, passkey=first)
        if account is not None:
            opened.append(account)
    return opened
