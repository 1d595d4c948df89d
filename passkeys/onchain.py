"""Passkeys on chain: each passkey a person adds or deletes is mirrored in their smart account's
WebAuthnValidator by a user operation that one of their passkeys already on chain approves
(passkeys.approvals); `Passkey.onchain` follows the indexed events."""

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver
from eth_abi import encode
from eth_utils import keccak

from accounts.models import SmartAccount, User
from accounts.selectors import operation_of
from accounts.smart_accounts import (
    chain_origin,
    deployed_account_of,
    installed_credential_id,
    open_smart_account,
    portal_contracts,
    smart_account_deployed,
    validation_key_data,
)
from chain import userops
from chain.models import ChainOperation
from chain.selectors import chunks, latest_key_events
from chain.signals import contracts_deployed, events_indexed
from passkeys.approvals import request_approval
from passkeys.models import Passkey
from portal.errors import Conflict

logger = logging.getLogger(__name__)

ADD_PASSKEY = "add_passkey"
REMOVE_PASSKEY = "remove_passkey"
LABELS = {ADD_PASSKEY: "Add a passkey on chain", REMOVE_PASSKEY: "Remove a passkey on chain"}
ADD_VALIDATION_KEY = keccak(text="addValidationKey(bytes,bytes32[2],string)")[:4]
REMOVE_VALIDATION_KEY = keccak(text="removeValidationKey(bytes,string)")[:4]
RETRYABLE = (ChainOperation.Status.EXPIRED, ChainOperation.Status.FAILED)


def open_account_for(*, user: User, passkey: Passkey) -> SmartAccount | None:
    """Open the user's smart account with `passkey` installed (at sign-up, in its transaction)."""
    return open_smart_account(
        user=user,
        credential_id=bytes(passkey.credential_id),
        cose_public_key=bytes(passkey.public_key),
    )


def _key_data(passkey: Passkey) -> bytes:
    return validation_key_data(
        credential_id=bytes(passkey.credential_id), cose_public_key=bytes(passkey.public_key)
    )


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
    contracts = portal_contracts()
    assert contracts is not None  # noqa: S101 - the account was deployed with them
    attempts = ChainOperation.objects.filter(
        chain_id=account.chain_id,
        account=account.address,
        kind=kind,
        details__passkey_id=passkey_id,
    ).count()
    suffix = f":{attempts + 1}" if attempts else ""
    return request_approval(
        user=user,
        account=account,
        kind=kind,
        label=LABELS[kind],
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
    if account is None or portal_contracts() is None or passkey.onchain == Passkey.OnChain.ACTIVE:
        return None
    return _passkey_operation(
        user=passkey.user,
        account=account,
        kind=ADD_PASSKEY,
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
    if account is None or portal_contracts() is None or passkey.onchain != Passkey.OnChain.ACTIVE:
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
        kind=REMOVE_PASSKEY,
        validator_call=_removal_call(bytes(passkey.credential_id)),
        passkey_id=passkey.pk,
        credential_id=bytes(passkey.credential_id),
    )


@transaction.atomic
def retry_passkey_operation(*, user: User, operation_id: int) -> ChainOperation:
    """Ask again for a passkey change on chain whose approval expired or whose operation failed:
    without it, a passkey would stay half-added, or a deleted one still valid on chain."""
    operation = operation_of(user=user, operation_id=operation_id)
    if operation.kind not in LABELS or operation.status not in RETRYABLE:
        raise Conflict(
            "operation_not_retryable",
            "Only a passkey change that expired or failed can be asked for again.",
        )
    passkey_id = int(operation.details["passkey_id"])
    later = ChainOperation.objects.filter(
        chain_id=operation.chain_id,
        account=operation.account,
        kind=operation.kind,
        details__passkey_id=passkey_id,
        pk__gt=operation.pk,
    )
    if later.exists():
        raise Conflict("operation_superseded", "A newer attempt of this change exists.")
    account = deployed_account_of(user)
    if account is None:
        raise Conflict("account_not_deployed", "The account is not deployed on chain yet.")
    if operation.kind == REMOVE_PASSKEY:
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


@receiver(smart_account_deployed)
def add_pending_passkeys(sender: Any, accounts: list[SmartAccount], **kwargs: Any) -> None:
    """Once accounts are deployed, queue the on-chain addition of every passkey added while they
    were deploying (the sign-up passkey was installed by the deployment itself)."""
    account_of = {account.user_id: account for account in accounts}
    pending = Passkey.objects.filter(
        user_id__in=list(account_of), onchain=Passkey.OnChain.PENDING
    ).select_related("user")
    for passkey in pending:
        if bytes(passkey.credential_id) != installed_credential_id(account_of[passkey.user_id]):
            add_passkey_on_chain(passkey=passkey)


@receiver(events_indexed)
def follow_indexed_keys(
    sender: Any, chain_id: int, events: Iterable[tuple[str, str, str]], **kwargs: Any
) -> tuple[str, int]:
    """Passkey.onchain from the latest PasskeyCreated/PasskeyRemoved of (the owner's account,
    the credential), any origin: active / removed; none: pending. Returns ("passkeys", changed)."""
    keys = {(account, credential) for name, account, credential in events if credential}
    if not keys:
        return "passkeys", 0
    owners: dict[str, int] = {}  # account address → user id
    for addresses in chunks(sorted({account for account, _ in keys})):
        owners.update(
            SmartAccount.objects.filter(chain_id=chain_id, address__in=addresses).values_list(
                "address", "user_id"
            )
        )
    # (user id, credential id hex) → the account address
    wanted = {
        (owners[account], credential): account for account, credential in keys if account in owners
    }
    if not wanted:
        return "passkeys", 0
    latest = latest_key_events(chain_id=chain_id, keys=keys)
    state_of = {
        None: Passkey.OnChain.PENDING,
        "PasskeyCreated": Passkey.OnChain.ACTIVE,
        "PasskeyRemoved": Passkey.OnChain.REMOVED,
    }
    changes: dict[str, list[int]] = {}
    credentials = sorted({credential for _, credential in wanted})
    for some in chunks(credentials):
        rows = Passkey.objects.filter(
            user_id__in={user_id for user_id, _ in wanted},
            credential_id__in=[bytes.fromhex(credential[2:]) for credential in some],
        ).values_list("pk", "user_id", "credential_id", "onchain")
        for pk, user_id, credential_id, onchain in rows:
            credential = "0x" + bytes(credential_id).hex()
            account = wanted.get((user_id, credential))
            if account is None:
                continue
            new_state = state_of[latest.get((account, credential))]
            if new_state != onchain:
                changes.setdefault(new_state, []).append(pk)
    for state, pks in changes.items():
        for some_pks in chunks(pks):
            Passkey.objects.filter(pk__in=some_pks).update(onchain=state)
    return "passkeys", sum(len(pks) for pks in changes.values())


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
            account = open_account_for(user=user, passkey=first)
        if account is not None:
            opened.append(account)
    return opened


@receiver(contracts_deployed)
def open_accounts_once_deployed(sender: Any, chain_id: int, **kwargs: Any) -> None:
    """People who signed up while the chain was starting get their account now."""
    if chain_id == settings.CHAIN_ID:
        opened = open_missing_accounts()
        if opened:
            logger.info("opened %d smart accounts that were missing", len(opened))
