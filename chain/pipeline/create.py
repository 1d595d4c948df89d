"""Creating operations, and taking the signature of one that waits for it."""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from eth_utils import to_checksum_address

from chain import userops
from chain.budgets import PAYMASTER, RELAYER, RELAYER_CALL_GAS, reserving
from chain.client import ChainUnavailable, call_chain, entry_point, node, relayer_account
from chain.models import ChainOperation
from chain.ownership import changes_ownership
from chain.pipeline.submit import fees, queue_submission
from chain.selectors import deployment_address, deployment_addresses
from chain.transitions import TransitionRefused, transition
from portal.errors import Conflict, PortalError
from portal.guards import check_sensitive_action

logger = logging.getLogger(__name__)
Status = ChainOperation.Status

# Generous fixed gas limits for the portal's own user operations (passkey validation through
# P256VERIFY, one validator call); unused gas is not charged beyond the EntryPoint's 10% penalty.
VERIFICATION_GAS_LIMIT = 600_000
CALL_GAS_LIMIT = 400_000
PRE_VERIFICATION_GAS = 80_000
PAYMASTER_VERIFICATION_GAS_LIMIT = 80_000


def chain_unavailable_error() -> PortalError:
    """What a person is told when the chain cannot be reached while their request needs it:
    nothing was written, try again."""
    return PortalError(
        "chain_unavailable",
        "The chain cannot be reached right now: nothing was changed, try again in a minute.",
        status=503,
    )


def handle_ops_data(op: userops.PackedUserOperation, *, beneficiary: str) -> bytes:
    data = entry_point(node()).encode_abi(
        "handleOps", args=[[op.as_tuple()], to_checksum_address(beneficiary)]
    )
    return bytes.fromhex(data.removeprefix("0x"))


def _existing(idempotency_key: str) -> ChainOperation | None:
    return ChainOperation.objects.filter(idempotency_key=idempotency_key).first()


def _create_once(idempotency_key: str, **fields: Any) -> tuple[ChainOperation, bool]:
    """The operation with this key: (it, created now?). A concurrent request that created it
    first wins; its operation is returned unchanged."""
    try:
        with transaction.atomic():
            return ChainOperation.objects.create(idempotency_key=idempotency_key, **fields), True
    except IntegrityError:
        found = _existing(idempotency_key)
        if found is None:
            raise
        return found, False


def create_user_operation(
    *,
    account: str,
    kind: str,
    label: str,
    call_data: bytes,
    idempotency_key: str,
    details: dict[str, Any],
) -> ChainOperation:
    """A sponsored user operation of the deployed smart account `account`, calling `call_data`,
    waiting for its signature. `label` says in words what it does.

    The same idempotency key returns the operation already created, unchanged. An unreachable
    chain is refused with 503 `chain_unavailable`, an exhausted paymaster budget with 429
    `budget_exhausted`: nothing created.
    """
    existing = _existing(idempotency_key)
    if existing is not None:
        return existing
    _ensure_sponsorable(call_data=call_data, account=account)
    w3 = node()
    chain_id = settings.CHAIN_ID
    contract_ = entry_point(w3)
    sender = to_checksum_address(account)
    # A random key per operation: two pending operations of one account never share a nonce.
    key = secrets.randbits(192) or 1
    try:
        sequence = int(call_chain(contract_.functions.getNonce(sender, key).call))
        max_fee, priority = fees(w3)
        chain_now = int(call_chain(w3.eth.get_block, "latest")["timestamp"])
    except ChainUnavailable as exc:
        logger.warning("create_user_operation: chain unavailable: %s", exc.detail)
        raise chain_unavailable_error() from exc
    op = userops.build_user_operation(
        sender=sender,
        nonce=userops.nonce(key=key, sequence=sequence),
        call_data=call_data,
        verification_gas_limit=VERIFICATION_GAS_LIMIT,
        call_gas_limit=CALL_GAS_LIMIT,
        pre_verification_gas=PRE_VERIFICATION_GAS,
        max_fee_per_gas=max_fee,
        max_priority_fee_per_gas=priority,
    )
    # The window opens a minute early: a node's pending block may be stamped with its wall clock,
    # behind the latest block's timestamp on a chain that mined many blocks in a second.
    opens = max(0, min(chain_now, int(timezone.now().timestamp())) - 60)
    op = userops.sponsor_user_operation(
        op,
        paymaster=deployment_address("SponsorPaymaster"),
        sponsor_key=settings.CHAIN_SPONSOR_KEY,
        chain_id=chain_id,
        valid_after=opens,
        valid_until=chain_now + settings.CHAIN_SPONSOR_WINDOW_SECONDS,
        verification_gas_limit=PAYMASTER_VERIFICATION_GAS_LIMIT,
    )
    reserved_gas = userops.total_gas_limit(op)
    op_hash = userops.user_operation_hash(op, entry_point=contract_.address, chain_id=chain_id)
    with reserving(payer=PAYMASTER, gas=reserved_gas):
        now = timezone.now()
        operation, _created = _create_once(
            idempotency_key,
            kind=kind,
            label=label,
            status=Status.AWAITING_SIGNATURE,
            chain_id=chain_id,
            account=sender,
            details=details,
            user_operation=userops.user_operation_to_json(op),
            user_op_hash="0x" + op_hash.hex(),
            reserved_gas=reserved_gas,
            expires_at=now + settings.PORTAL_CEREMONY_TTL,
            tx_to=contract_.address,
            created_at=now,
        )
    return operation


def _ensure_sponsorable(*, call_data: bytes, account: str) -> None:
    """The sponsor pays for no ownership-changing call while a guard refuses them (423)."""
    if changes_ownership(call_data=call_data, account=account, addresses=deployment_addresses()):
        check_sensitive_action(action="sponsor.ownership_call")


def create_relayer_call(
    *,
    kind: str,
    label: str,
    to: str,
    data: bytes,
    idempotency_key: str,
    account: str = "",
    details: dict[str, Any],
) -> ChainOperation:
    """An operation the relayer sends as a plain transaction (no signature): created `signed`,
    its submission queued when the caller's transaction commits. Idempotent by key; 429
    `budget_exhausted` when the relayer's budget is spent."""
    return _create_signed(
        idempotency_key,
        payer=RELAYER,
        kind=kind,
        label=label,
        chain_id=settings.CHAIN_ID,
        account=to_checksum_address(account) if account else "",
        details=details,
        tx_to=to_checksum_address(to),
        tx_data=bytes(data),
        reserved_gas=RELAYER_CALL_GAS,
    )


def _create_signed(idempotency_key: str, *, payer: str, **fields: Any) -> ChainOperation:
    """The operation with this key; unless it exists, created `signed` (its `reserved_gas`
    within `payer`'s budgets) and its submission queued when the caller's transaction commits."""
    existing = _existing(idempotency_key)
    if existing is not None:
        return existing
    with reserving(payer=payer, gas=fields["reserved_gas"]):
        now = timezone.now()
        operation, created = _create_once(
            idempotency_key, status=Status.SIGNED, created_at=now, signed_at=now, **fields
        )
    if created:
        queue_submission(operation_id=operation.pk)
    return operation


def expired_error() -> PortalError:
    return PortalError(
        "operation_expired", "This operation was not approved in time: start again.", status=410
    )


def not_awaiting_error() -> Conflict:
    return Conflict(
        "operation_not_awaiting_signature", "This operation is not waiting for a signature."
    )


def ensure_awaiting_signature(operation: ChainOperation) -> None:
    """Refuse an operation that is not waiting for a signature; expire one past its time."""
    if operation.status == Status.EXPIRED:
        raise expired_error()
    if operation.status != Status.AWAITING_SIGNATURE:
        raise not_awaiting_error()
    if operation.expires_at is not None and operation.expires_at <= timezone.now():
        with contextlib.suppress(TransitionRefused):
            transition(
                operation_id=operation.pk, to=Status.EXPIRED, expect=Status.AWAITING_SIGNATURE
            )
        raise expired_error()


def signed_hash(operation: ChainOperation) -> bytes:
    """The 32 bytes a signature of the operation signs: its user operation hash."""
    return bytes.fromhex(operation.user_op_hash.removeprefix("0x"))


def attach_signature(
    *, operation_id: int, signature: bytes, details: dict[str, Any] | None = None
) -> ChainOperation:
    """The validator's signature for a user operation waiting for it: the operation becomes
    `signed` (with `details` merged in) and its submission is queued when the caller's
    transaction commits. 409 `operation_not_awaiting_signature` when it moved on meanwhile."""
    with transaction.atomic():
        operation = ChainOperation.objects.select_for_update().get(pk=operation_id)
        if operation.user_operation is None:
            raise not_awaiting_error()
        unsigned = userops.user_operation_from_json(operation.user_operation)
        _ensure_sponsorable(call_data=unsigned.call_data, account=operation.account)
        signed = unsigned.with_changes(signature=signature)
        try:
            operation = transition(
                operation_id=operation.pk,
                to=Status.SIGNED,
                expect=Status.AWAITING_SIGNATURE,
                user_operation=userops.user_operation_to_json(signed),
                tx_data=handle_ops_data(signed, beneficiary=relayer_account().address),
                details={**operation.details, **(details or {})},
            )
        except TransitionRefused as exc:
            raise not_awaiting_error() from exc
        queue_submission(operation_id=operation.pk)
    return operation


def create_signed_user_operation(
    *,
    op: userops.PackedUserOperation,
    kind: str,
    label: str,
    details: dict[str, Any],
) -> ChainOperation:
    """A user operation signed elsewhere (e.g. by a dapp's session key), created `signed` and
    queued for submission when the caller's transaction commits. Idempotent by its hash: the
    same operation sent twice is one ChainOperation. One the paymaster sponsors reserves its gas
    limits in the paymaster's budget (429 `budget_exhausted`)."""
    chain_id = settings.CHAIN_ID
    contract_ = entry_point(node())
    op_hash = userops.user_operation_hash(op, entry_point=contract_.address, chain_id=chain_id)
    return _create_signed(
        f"userop:{chain_id}:0x{op_hash.hex()}",
        payer=PAYMASTER,
        kind=kind,
        label=label,
        chain_id=chain_id,
        account=op.sender,
        details=details,
        user_operation=userops.user_operation_to_json(op),
        user_op_hash="0x" + op_hash.hex(),
        reserved_gas=userops.total_gas_limit(op) if op.paymaster_and_data else 0,
        tx_to=contract_.address,
        tx_data=handle_ops_data(op, beneficiary=relayer_account().address),
    )
