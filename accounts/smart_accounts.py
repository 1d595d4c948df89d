"""Smart accounts: one per person and chain, its address known at sign-up, deployed by the relayer
with the sign-up passkey already installed in the WebAuthnValidator.

`SmartAccount.status` changes only through `transition_account` (or `transition_accounts`, many
in one statement), whose allowed moves are written once in ACCOUNT_TRANSITIONS; its writers are
the deployment's operation (`follow_deployment`) and the indexer's AccountDeployed events
(`follow_indexed_deployments`)."""

import logging
import secrets
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import Signal, receiver
from django.utils import timezone
from eth_abi import decode

from accounts.models import SmartAccount, User
from chain import userops
from chain.client import relayer_account
from chain.models import ChainOperation
from chain.passkey_signatures import public_key_from_cose
from chain.pipeline.create import create_relayer_call
from chain.selectors import deployment_addresses, deployment_times
from chain.signals import events_indexed, operation_changed
from chain.watch import watch_account
from portal.errors import Conflict

logger = logging.getLogger(__name__)
Status = SmartAccount.Status

DEPLOY_ACCOUNT = "deploy_account"
REQUIRED_CONTRACTS = ("MSAFactory", "AccountBeacon", "WebAuthnValidator")
# Installed with empty data at deployment when recorded on the chain, so that a new account can
# grant session keys and name guardians without a module installation first.
DEPLOYMENT_MODULES = ("SessionKeyValidator", "GuardianExecutor")

# Sent when deployment operations are confirmed and their accounts became `deployed`, with
# `accounts=` (the SmartAccounts, with their users: a bundle's together).
smart_account_deployed = Signal()

ACCOUNT_TRANSITIONS: dict[str, frozenset[str]] = {
    # The indexer may see the deployment before the deployment operation is confirmed.
    Status.COUNTERFACTUAL: frozenset({Status.DEPLOYING, Status.DEPLOYED}),
    Status.DEPLOYING: frozenset({Status.DEPLOYED, Status.FAILED, Status.DEPLOYING}),
    # A reorg took the AccountDeployed event away: back to where the account was before.
    Status.DEPLOYED: frozenset({Status.DEPLOYING, Status.COUNTERFACTUAL}),
    # Deployed again (redeployaccounts), or seen deployed on chain after all.
    Status.FAILED: frozenset({Status.DEPLOYING, Status.DEPLOYED}),
}


class AccountTransitionRefused(Exception):
    pass


@transaction.atomic
def transition_account(*, account_id: int, to: str, **fields: Any) -> SmartAccount:
    """Move an account to `to` under a row lock, setting `fields` with it."""
    account = SmartAccount.objects.select_for_update().get(pk=account_id)
    if to not in ACCOUNT_TRANSITIONS[account.status]:
        raise AccountTransitionRefused(f"account {account_id}: {account.status} → {to}")
    account.status = to
    for name, value in fields.items():
        setattr(account, name, value)
    account.save()
    return account


def chain_origin() -> str:
    """The origin every passkey is registered under on chain: the portal's first origin.
    Chain operations can only be approved from it."""
    return str(settings.PORTAL_ORIGINS[0])


def validation_key_data(*, credential_id: bytes, cose_public_key: bytes) -> bytes:
    """WebAuthnValidator's key data for a passkey: (credential id, public key, chain origin)."""
    return userops.webauthn_install_data(
        credential_id=credential_id,
        public_key=public_key_from_cose(cose_public_key),
        origin=chain_origin(),
    )


def portal_contracts() -> dict[str, str] | None:
    """The portal's contracts on CHAIN_ID; None until they are all deployed."""
    addresses = deployment_addresses()
    if not all(name in addresses for name in REQUIRED_CONTRACTS):
        return None
    return addresses


def open_smart_account(
    *, user: User, credential_id: bytes, cose_public_key: bytes
) -> SmartAccount | None:
    """At sign-up, in its transaction: the account's address, and its deployment queued with the
    sign-up passkey (`credential_id`, `cose_public_key`) installed.

    None when the portal's contracts are not deployed on CHAIN_ID: the portal then runs without
    a chain (accounts can be opened later with `manage.py openaccounts`).
    """
    contracts = portal_contracts()
    if contracts is None:
        logger.warning("no contracts recorded for chain %s: no smart account", settings.CHAIN_ID)
        return None
    salt = secrets.token_bytes(32)
    extra = [contracts[name] for name in DEPLOYMENT_MODULES if name in contracts]
    init_data = userops.initialize_account_data(
        modules=[contracts["WebAuthnValidator"], *extra],
        data=[
            validation_key_data(credential_id=credential_id, cose_public_key=cose_public_key),
            *(b"" for _ in extra),
        ],
    )
    deployer = relayer_account().address
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
    contracts = portal_contracts()
    if contracts is None:
        raise Conflict("chain_not_configured", "The portal's contracts are not deployed.")
    attempt = (
        ChainOperation.objects.filter(
            chain_id=account.chain_id, account=account.address, kind=DEPLOY_ACCOUNT
        ).count()
        + 1
    )
    init_code = userops.deploy_account_init_code(
        factory=contracts["MSAFactory"],
        salt=bytes.fromhex(account.salt[2:]),
        init_data=bytes(account.init_data),
    )
    operation = create_relayer_call(
        kind=DEPLOY_ACCOUNT,
        label="Deploy the smart account",
        to=contracts["MSAFactory"],
        data=init_code[20:],
        idempotency_key=f"deploy-account:{account.chain_id}:{account.address}:{attempt}",
        account=account.address,
        details={"attempt": attempt},
    )
    transition_account(account_id=account.pk, to=Status.DEPLOYING, deployment=operation)
    account.refresh_from_db()
    return operation


def installed_credential_id(account: SmartAccount) -> bytes:
    """The credential id of the passkey the deployment installs (the sign-up passkey)."""
    _, data = decode(["address[]", "bytes[]"], bytes(account.init_data)[4:])
    credential_id, _, _ = decode(["bytes", "bytes32[2]", "string"], data[0])
    return bytes(credential_id)


def requeue_failed_deployments() -> list[SmartAccount]:
    failed = list(SmartAccount.objects.filter(chain_id=settings.CHAIN_ID, status=Status.FAILED))
    for account in failed:
        queue_deployment(account=account)
    return failed


def deployed_account_of(user: User) -> SmartAccount | None:
    return SmartAccount.objects.filter(
        user=user, chain_id=settings.CHAIN_ID, status=Status.DEPLOYED
    ).first()


@receiver(post_save, sender=SmartAccount)
def watch_on_chain(sender: Any, instance: SmartAccount, created: bool, **kwargs: Any) -> None:
    """Every smart account the portal opens is one the chain's indexer watches."""
    if created:
        watch_account(chain_id=instance.chain_id, address=instance.address)


def transition_accounts(
    *, account_ids: Iterable[int], to: str, expect: Iterable[str], **fields: Any
) -> list[SmartAccount]:
    """Move, in one statement, those of the accounts that are (under their row locks) in one of
    the `expect` statuses and may go to `to`, setting `fields` with it; returns them, moved."""
    ids = list(account_ids)
    allowed = {status for status in expect if to in ACCOUNT_TRANSITIONS[status]}
    if not ids or not allowed:
        return []
    with transaction.atomic():
        moved = list(
            SmartAccount.objects.select_for_update()
            .select_related("user")
            .filter(pk__in=ids, status__in=allowed)
            .order_by("pk")
        )
        changes = {"status": to, "updated_at": timezone.now(), **fields}
        SmartAccount.objects.filter(pk__in=[account.pk for account in moved]).update(**changes)
    for account in moved:
        for name, value in changes.items():
            setattr(account, name, value)
    return moved


@receiver(operation_changed)
def follow_deployment(sender: Any, operations: list[ChainOperation], **kwargs: Any) -> None:
    """Keep each account's status in step with its latest deployment attempt; once it is
    deployed, tell the apps above (smart_account_deployed). A bundle's deployments together."""
    finished = {
        operation.pk: operation
        for operation in operations
        if operation.kind == DEPLOY_ACCOUNT
        and operation.account
        and operation.status in (ChainOperation.Status.CONFIRMED, ChainOperation.Status.FAILED)
    }
    if not finished:
        return  # nothing changes for an account while its deployment is on its way
    # An account follows only its latest attempt (the one it points to).
    outcome_of: dict[int, str] = {}
    accounts = []
    for account in SmartAccount.objects.select_related("user").filter(
        deployment_id__in=list(finished)
    ):
        operation = finished[account.deployment_id or 0]
        if account.chain_id == operation.chain_id and account.address == operation.account:
            outcome_of[account.pk] = operation.status
            accounts.append(account)
    confirmed = [a for a in accounts if outcome_of[a.pk] == ChainOperation.Status.CONFIRMED]
    failed = [a for a in accounts if outcome_of[a.pk] == ChainOperation.Status.FAILED]
    moved = {
        account.pk: account
        for account in transition_accounts(
            account_ids=[account.pk for account in confirmed if account.status != Status.DEPLOYED],
            to=Status.DEPLOYED,
            expect=[status for status in Status if status != Status.DEPLOYED],
            deployed_at=timezone.now(),
        )
    }
    if confirmed:
        smart_account_deployed.send(
            sender=SmartAccount, accounts=[moved.get(account.pk, account) for account in confirmed]
        )
    transition_accounts(
        account_ids=[account.pk for account in failed if account.status == Status.DEPLOYING],
        to=Status.FAILED,
        expect=[Status.DEPLOYING],
    )


@receiver(events_indexed)
def follow_indexed_deployments(
    sender: Any, chain_id: int, events: Iterable[tuple[str, str, str]], **kwargs: Any
) -> tuple[str, int]:
    """An account with an AccountDeployed event is `deployed` (deployed_at: that block's time);
    one marked deployed whose event was rolled back goes back to `deploying` (it has a deployment
    operation) or `counterfactual`. Returns ("accounts", accounts changed)."""
    addresses = sorted({account for name, account, _ in events if name == "AccountDeployed"})
    if not addresses:
        return "accounts", 0
    deployed = deployment_times(chain_id=chain_id, addresses=addresses)
    changed = 0
    for account in SmartAccount.objects.filter(chain_id=chain_id, address__in=addresses):
        if account.address in deployed:
            deployed_at = deployed[account.address] or timezone.now()
            if account.status != Status.DEPLOYED:
                transition_account(
                    account_id=account.pk, to=Status.DEPLOYED, deployed_at=deployed_at
                )
                changed += 1
            elif not account.deployed_at:
                SmartAccount.objects.filter(pk=account.pk).update(deployed_at=deployed_at)
                changed += 1
        elif account.status == Status.DEPLOYED:
            back = Status.DEPLOYING if account.deployment_id else Status.COUNTERFACTUAL
            transition_account(account_id=account.pk, to=back, deployed_at=None)
            changed += 1
    return "accounts", changed
