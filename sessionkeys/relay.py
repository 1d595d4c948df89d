"""The relay: a dapp sends user operations signed by its session key, with no portal login.

1. `prepare_operation`: the dapp names the session (account, session hash) and the call; the
   portal checks it against the policy (sessionkeys.policy, with the usage read from chain),
   builds the user operation with the session's nonce key and sponsors it — within the spec's fee
   limit (the portal counts what it sponsored, as the chain skips fee accounting for sponsored
   operations) and the portal's per-operation budget — and returns it with its hash to sign.
2. `accept_operation`: the signed operation comes back; it must be one the portal prepared (or
   carry no paymaster: the account pays and the chain counts the fee); the policy is checked
   again with the signature and period ids, then it goes through the pipeline.
3. `relayed_status`: where it is, by user-operation hash.

Every refusal is the failing rule's stable code (422), audit-logged for the account's owner.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from eth_utils import to_checksum_address

from accounts.models import AuditEvent
from accounts.services import record_event
from chain import session_keys, userops
from chain.client import ChainUnavailable, call_chain, entry_point, node
from chain.models import ChainOperation
from chain.pipeline.create import (
    PRE_VERIFICATION_GAS,
    chain_unavailable_error,
    create_signed_user_operation,
)
from chain.pipeline.submit import fees
from chain.selectors import deployment_addresses
from chain.session_keys import LimitType, SessionSpec
from portal.client_info import ClientInfo
from portal.errors import NotFound, PortalError
from sessionkeys import policy, selectors
from sessionkeys.models import RelayedOperation, Session

logger = logging.getLogger(__name__)

SESSION_OPERATION = "session_operation"
VERIFICATION_GAS_LIMIT = 300_000
CALL_GAS_LIMIT = 300_000
PAYMASTER_VERIFICATION_GAS_LIMIT = 80_000


SUCCESS: dict[str, bool] = {
    ChainOperation.Status.CONFIRMED: True,
    ChainOperation.Status.INCLUDED: True,
    ChainOperation.Status.FAILED: False,
}


class Refused(PortalError):
    status_code = 422


def _session(*, account: str, session_hash: str) -> Session:
    session = (
        Session.objects.filter(
            chain_id=settings.CHAIN_ID,
            account__address=account,
            session_hash=session_hash.lower(),
        )
        .select_related("account", "account__user")
        .first()
    )
    if session is None:
        raise NotFound("session_not_found", "No session of this account has this hash.")
    return session


def _refuse(session: Session, *, code: str, detail: str, client: ClientInfo | None, **extra: Any):
    record_event(
        kind=AuditEvent.Kind.SESSION_RELAY_REFUSED,
        user=session.account.user,
        client=client,
        session_id=session.pk,
        origin=session.origin,
        reason=code,
    )
    return Refused(code, detail, **extra)


def _check_status(session: Session, *, client: ClientInfo | None) -> None:
    if session.suspended_at is not None:
        raise _refuse(
            session,
            code="session_suspended",
            detail="An operator suspended this session; its owner is asked to revoke it.",
            client=client,
        )
    if session.status == Session.Status.PENDING_APPROVAL:
        raise _refuse(
            session,
            code="session_not_active",
            detail="The session is not created yet.",
            client=client,
        )
    if session.status in (Session.Status.REVOKED, Session.Status.FAILED):
        raise _refuse(
            session,
            code="session_not_active",
            detail=f"The session is {session.get_status_display().lower()}.",
            client=client,
        )


def _sponsored_so_far(session: Session, spec: SessionSpec, *, now: int) -> int:
    """What the portal sponsored for the session (each accepted operation's cost cap) in the
    fee limit's current period (its whole life for a lifetime limit)."""
    relayed = RelayedOperation.objects.filter(
        session=session, sponsored=True, operation__isnull=False
    ).exclude(operation__status=ChainOperation.Status.FAILED)
    if spec.fee_limit.limit_type == LimitType.ALLOWANCE and spec.fee_limit.period:
        start = (now // spec.fee_limit.period) * spec.fee_limit.period
        relayed = relayed.filter(created_at__gte=datetime.fromtimestamp(start, tz=UTC))
    return int(relayed.aggregate(total=Sum("max_cost"))["total"] or 0)


def _evaluate(
    session: Session,
    spec: SessionSpec,
    *,
    operation: policy.Operation,
    now: int,
    base_fee: int,
    period_ids: list[int] | None,
    client: ClientInfo | None,
) -> None:
    try:
        state = selectors.read_state(account=session.account.address, spec=spec)
    except ChainUnavailable as exc:
        raise chain_unavailable_error() from exc
    verdict = policy.evaluate_operation(
        spec=spec,
        operation=operation,
        state=state,
        now=now,
        base_fee=base_fee,
        period_ids=period_ids,
    )
    if verdict.refusal is not None:
        raise _refuse(
            session,
            code=verdict.refusal.code,
            detail=verdict.refusal.detail,
            client=client,
            error=verdict.refusal.error,
        )


def prepare_operation(
    *, account: str, session_hash: str, call: userops.Call, client: ClientInfo | None
) -> dict[str, Any]:
    """A sponsored user operation making `call` from the account under the session, checked
    against the policy, for the session key to sign (its `userOpHash`)."""
    session = _session(account=to_checksum_address(account), session_hash=session_hash)
    _check_status(session, client=client)
    spec = selectors.spec_of(session)
    w3 = node()
    try:
        block = call_chain(w3.eth.get_block, "latest")
        ep = entry_point(w3)
        sequence = int(
            call_chain(
                ep.functions.getNonce(
                    session.account.address, session_keys.nonce_key(spec.signer)
                ).call
            )
        )
        max_fee, priority = fees(w3)
    except ChainUnavailable as exc:
        raise chain_unavailable_error() from exc
    now = int(block["timestamp"])
    base_fee = int(block.get("baseFeePerGas", 0) or 0)
    call_data = userops.execute_call_data(target=call.target, value=call.value, data=call.data)
    op = userops.build_user_operation(
        sender=session.account.address,
        nonce=session_keys.session_nonce(signer=spec.signer, sequence=sequence),
        call_data=call_data,
        verification_gas_limit=VERIFICATION_GAS_LIMIT,
        call_gas_limit=CALL_GAS_LIMIT,
        pre_verification_gas=PRE_VERIFICATION_GAS,
        max_fee_per_gas=max_fee,
        max_priority_fee_per_gas=priority,
    )
    _evaluate(
        session,
        spec,
        operation=policy.Operation(call_data=call_data, nonce=op.nonce, sponsored=True),
        now=now,
        base_fee=base_fee,
        period_ids=None,
        client=client,
    )
    valid_until = now + settings.CHAIN_SPONSOR_WINDOW_SECONDS
    sponsored = userops.sponsor_user_operation(
        op,
        paymaster=deployment_addresses()["SponsorPaymaster"],
        sponsor_key=settings.CHAIN_SPONSOR_KEY,
        chain_id=settings.CHAIN_ID,
        valid_after=max(0, min(now, int(timezone.now().timestamp())) - 60),
        valid_until=valid_until,
        verification_gas_limit=PAYMASTER_VERIFICATION_GAS_LIMIT,
    )
    cost = userops.required_prefund(sponsored)
    if cost > settings.PORTAL_SESSION_RELAY_MAX_COST_WEI:
        raise _refuse(
            session,
            code="relay_budget_exceeded",
            detail=f"The operation could cost {cost} wei, more than the relay sponsors.",
            client=client,
        )
    fee_total = spec.fee_limit.limit
    if cost + _sponsored_so_far(session, spec, now=now) > fee_total:
        raise _refuse(
            session,
            code="fee_limit_exceeded",
            detail="Sponsoring this operation would pass the session's fee limit.",
            client=client,
            error="LifetimeUsageExceeded"
            if spec.fee_limit.limit_type == LimitType.LIFETIME
            else "AllowanceExceeded",
        )
    op_hash = userops.user_operation_hash(
        sponsored, entry_point=deployment_addresses()["EntryPoint"], chain_id=settings.CHAIN_ID
    )
    decoded = policy.decode_single_call(call_data)
    period_ids = policy.expected_period_ids(spec, decoded, now=now)
    RelayedOperation.objects.update_or_create(
        user_op_hash="0x" + op_hash.hex(),
        defaults={
            "session": session,
            "user_operation": userops.user_operation_to_json(sponsored),
            "sponsored": True,
            "max_cost": cost,
            "expires_at": timezone.now() + timedelta(seconds=settings.CHAIN_SPONSOR_WINDOW_SECONDS),
        },
    )
    return {
        "userOperation": userops.user_operation_to_json(sponsored),
        "userOpHash": "0x" + op_hash.hex(),
        "periodIds": period_ids,
        "validator": deployment_addresses()["SessionKeyValidator"],
        "entryPoint": deployment_addresses()["EntryPoint"],
        "chainId": settings.CHAIN_ID,
        "validUntil": valid_until,
    }


def parse_user_operation(data: Any) -> userops.PackedUserOperation:
    if not isinstance(data, dict):
        raise PortalError("invalid_user_operation", "userOperation must be an object.")
    try:
        return userops.user_operation_from_json({k: str(v) for k, v in data.items()})
    except (KeyError, ValueError, TypeError) as exc:
        raise PortalError(
            "invalid_user_operation",
            "userOperation must be an ERC-4337 v0.8 packed user operation (hex fields).",
        ) from exc


def accept_operation(*, user_operation: Any, client: ClientInfo | None) -> RelayedOperation:
    """Take a session-signed user operation: check it and send it through the pipeline."""
    op = parse_user_operation(user_operation)
    addresses = deployment_addresses()
    try:
        validator, signature, spec, period_ids = session_keys.decode_session_signature(op.signature)
    except ValueError as exc:
        raise PortalError(
            "not_a_session_operation", "The signature is not a session-key signature."
        ) from exc
    if validator != addresses.get("SessionKeyValidator"):
        raise PortalError(
            "not_a_session_operation", "The signature is not for this portal's session validator."
        )
    session = _session(account=op.sender, session_hash="0x" + spec.session_hash.hex())
    op_hash = (
        "0x"
        + userops.user_operation_hash(
            op, entry_point=addresses["EntryPoint"], chain_id=settings.CHAIN_ID
        ).hex()
    )
    prepared = RelayedOperation.objects.filter(user_op_hash=op_hash).first()
    if prepared is not None and prepared.operation_id is not None:
        return prepared
    if op.paymaster_and_data and prepared is None:
        raise _refuse(
            session,
            code="not_prepared",
            detail="Sponsored operations must be prepared by the relay first.",
            client=client,
        )
    if prepared is not None and prepared.session_id != session.pk:
        raise _refuse(
            session, code="not_prepared", detail="Prepared for another session.", client=client
        )
    if prepared is not None and prepared.expires_at <= timezone.now():
        raise _refuse(
            session,
            code="preparation_expired",
            detail="Prepare the operation again.",
            client=client,
        )
    _check_status(session, client=client)
    w3 = node()
    try:
        block = call_chain(w3.eth.get_block, "latest")
    except ChainUnavailable as exc:
        raise chain_unavailable_error() from exc
    _evaluate(
        session,
        spec,
        operation=policy.Operation.from_user_operation(
            op, signature=signature, user_op_hash=bytes.fromhex(op_hash[2:])
        ),
        now=int(block["timestamp"]),
        base_fee=int(block.get("baseFeePerGas", 0) or 0),
        period_ids=period_ids,
        client=client,
    )
    with transaction.atomic():
        relayed, _ = RelayedOperation.objects.select_for_update().get_or_create(
            user_op_hash=op_hash,
            defaults={
                "session": session,
                "user_operation": userops.user_operation_to_json(op),
                "sponsored": bool(op.paymaster_and_data),
                "max_cost": 0,
                "expires_at": timezone.now(),
            },
        )
        if relayed.operation_id is not None:
            return relayed
        call = policy.decode_single_call(op.call_data)
        operation = create_signed_user_operation(
            op=op,
            kind=SESSION_OPERATION,
            label=f"{session.origin}: {_describe(call)}",
            details={"session_id": session.pk, "origin": session.origin},
        )
        relayed.operation = operation
        relayed.user_operation = userops.user_operation_to_json(op)
        relayed.save(update_fields=["operation", "user_operation"])
    return relayed


def _describe(call: userops.Call) -> str:
    if not call.data:
        return f"send {call.value} wei to {call.target}"
    name = selectors.function_name("0x" + call.data[:4].hex()) or "0x" + call.data[:4].hex()
    return f"call {name} on {call.target}"


def relayed_status(*, user_op_hash: str) -> dict[str, Any]:
    relayed = (
        RelayedOperation.objects.filter(user_op_hash=user_op_hash.lower(), operation__isnull=False)
        .select_related("operation")
        .first()
    )
    if relayed is None or relayed.operation is None:
        raise NotFound("operation_not_found", "The relay has no operation with this hash.")
    operation = relayed.operation
    return {
        "userOpHash": relayed.user_op_hash,
        "status": operation.status,
        "txHash": operation.tx_hash or None,
        "blockNumber": operation.block_number,
        "revertReason": operation.revert_reason or None,
        "success": SUCCESS.get(operation.status),
    }
