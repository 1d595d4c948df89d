"""Writes: a dapp's request becomes a session waiting for the person's passkey (a passkey-approved
createSession), revocations (revokeKeys), the status of each session (its moves written once in
SESSION_TRANSITIONS), kept in step with the indexer and the pipeline, and expiry."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from eth_account import Account

from accounts.models import AuditEvent, SmartAccount, User
from accounts.services import record_event
from accounts.smart_accounts import deployed_account_of
from chain import session_keys, userops
from chain.client import ChainUnavailable
from chain.models import ChainEvent, ChainOperation
from chain.pipeline.create import chain_unavailable_error
from chain.selectors import deployment_addresses, latest_keyed_events
from chain.session_keys import LimitType, SessionSpec
from chain.signals import events_indexed, operation_changed
from passkeys.approvals import request_approval
from portal.client_info import ClientInfo
from portal.errors import Conflict, PortalError
from portal.guards import check_sensitive_action
from sessionkeys import selectors
from sessionkeys.models import Session
from sessionkeys.policy import decode_single_call
from sessionkeys.requests import ParsedRequest, RequestRefused, parse_request, spec_json

logger = logging.getLogger(__name__)
Status = Session.Status

CREATE_SESSION = "create_session"
REVOKE_SESSIONS = "revoke_sessions"
SESSION_EVENTS = ("SessionCreated", "SessionRevoked")
SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
# The time a person has to approve before the chain's own minimum lifetime (60 s) bites.
MIN_SECONDS_LEFT = 300

SESSION_TRANSITIONS: dict[str, frozenset[str]] = {
    # Created on chain (indexer), or never: the approval expired, was rejected, or failed.
    Status.PENDING_APPROVAL: frozenset({Status.ACTIVE, Status.EXPIRED, Status.FAILED}),
    # Revoked on chain, past its expiry (beat task); a reorg took SessionCreated away.
    Status.ACTIVE: frozenset({Status.EXPIRED, Status.REVOKED, Status.PENDING_APPROVAL}),
    # Still "active" on chain until revoked (SSO never closes an expired session itself).
    Status.EXPIRED: frozenset({Status.REVOKED, Status.PENDING_APPROVAL}),
    # A reorg took SessionRevoked away.
    Status.REVOKED: frozenset({Status.ACTIVE, Status.EXPIRED}),
    # Seen created on chain after all.
    Status.FAILED: frozenset({Status.ACTIVE, Status.EXPIRED}),
}
TIME_FIELD: dict[str, str] = {
    Status.ACTIVE: "approved_at",
    Status.REVOKED: "revoked_at",
    Status.EXPIRED: "expired_at",
}


class SessionTransitionRefused(Exception):
    pass


@transaction.atomic
def transition_session(*, session_id: int, to: str, at: datetime | None = None) -> Session:
    """Move a session to `to` under a row lock; the move's time is written once (the first)."""
    session = Session.objects.select_for_update().get(pk=session_id)
    if to not in SESSION_TRANSITIONS[session.status]:
        raise SessionTransitionRefused(f"session {session_id}: {session.status} → {to}")
    session.status = to
    field = TIME_FIELD.get(to)
    if field and getattr(session, field) is None:
        setattr(session, field, at or timezone.now())
    session.save()
    return session


# --- a dapp's request ---------------------------------------------------------------------------


def _refused(exc: RequestRefused) -> PortalError:
    return PortalError(exc.code, exc.message, rpc_code=exc.rpc_code, **exc.data)


def parse(*, method: str, params: Any) -> ParsedRequest:
    try:
        return parse_request(
            method=method,
            params=params,
            chain_id=settings.CHAIN_ID,
            default_fee_limit=settings.PORTAL_SESSION_DEFAULT_FEE_LIMIT_WEI,
        )
    except RequestRefused as exc:
        raise _refused(exc) from exc


def _check_spec(spec: SessionSpec, *, now: int) -> None:
    if int(spec.signer, 16) == 0:
        raise PortalError("zero_signer", "The session needs a signer.")
    if spec.expires_at < now + MIN_SECONDS_LEFT:
        raise PortalError(
            "session_expires_too_soon",
            f"The session must last at least {MIN_SECONDS_LEFT} seconds from now.",
        )
    if spec.expires_at > now + settings.PORTAL_SESSION_MAX_SECONDS:
        raise PortalError(
            "session_too_long",
            f"Sessions last at most {settings.PORTAL_SESSION_MAX_SECONDS} seconds here.",
        )
    if spec.fee_limit.limit_type == LimitType.UNLIMITED:
        raise PortalError("unlimited_fees", "A session needs a fee limit.")


def _account(user: User) -> SmartAccount:
    account = deployed_account_of(user)
    if account is None:
        raise Conflict("account_not_deployed", "Your account is not deployed on chain yet.")
    if "SessionKeyValidator" not in deployment_addresses():
        raise Conflict("sessions_unavailable", "Session keys are not deployed on this chain.")
    return account


def preview_session(
    *, user: User, origin: str, method: str, params: Any, now: int | None = None
) -> dict[str, Any]:
    """The spec a request gives, what the dapp must sign to prove its key, and the review."""
    now = int(timezone.now().timestamp()) if now is None else now
    account = _account(user)
    parsed = parse(method=method, params=params)
    _check_spec(parsed.spec, now=now)
    spec = parsed.spec
    return {
        "account": account.address,
        "chain_id": settings.CHAIN_ID,
        "spec": spec_json(spec),
        "context": "0x" + spec.encode().hex(),
        "session_hash": "0x" + spec.session_hash.hex(),
        "proof_digest": "0x"
        + session_keys.proof_digest(session_hash=spec.session_hash, account=account.address).hex(),
        "review": selectors.review(
            spec=spec,
            account=account,
            origin=origin,
            function_names=parsed.function_names,
            now=now,
        ),
    }


def _check_proof(*, spec: SessionSpec, account: str, proof: bytes) -> None:
    """The dapp holds the session key: its raw signature over keccak256(abi.encode(sessionHash,
    account)), as the validator checks it (65 bytes, low s, v 27/28)."""
    ok = len(proof) == 65 and proof[64] in (27, 28)
    ok = ok and int.from_bytes(proof[32:64], "big") <= SECP256K1_HALF_N
    if ok:
        digest = session_keys.proof_digest(session_hash=spec.session_hash, account=account)
        try:
            ok = Account._recover_hash(digest, signature=proof) == spec.signer
        except Exception:
            ok = False
    if not ok:
        raise PortalError(
            "invalid_proof", "The proof is not the session signer's signature of this session."
        )


def _create_call_data(*, account: SmartAccount, spec: SessionSpec, proof: bytes) -> bytes:
    """createSession through execute, with the validator's installation first for an account made
    before it existed (one batch, one approval)."""
    validator = deployment_addresses()["SessionKeyValidator"]
    create = session_keys.create_session_data(spec=spec, proof=proof)
    try:
        installed = selectors.validator_installed(account=account.address)
    except ChainUnavailable as exc:
        raise chain_unavailable_error() from exc
    if installed:
        return userops.execute_call_data(target=validator, data=create)
    install = session_keys.install_validator_call_data(account=account.address, validator=validator)
    # install_validator_call_data is execute(single, account ‖ 0 ‖ installModule(...)): take the
    # inner call for the batch.
    inner = decode_single_call(install)
    return userops.execute_batch_call_data(
        calls=[inner, userops.Call(target=validator, value=0, data=create)]
    )


def request_session(
    *,
    user: User,
    origin: str,
    method: str,
    params: Any,
    proof: bytes,
    label: str,
    client: ClientInfo | None,
) -> Session:
    """A session as the dapp asked for it, waiting for the person's passkey: its createSession
    operation goes through the approval flow (`/api/v1/operations/{id}/options|sign`)."""
    check_sensitive_action(action="session.create")
    now = int(timezone.now().timestamp())
    account = _account(user)
    parsed = parse(method=method, params=params)
    spec = parsed.spec
    _check_spec(spec, now=now)
    _check_proof(spec=spec, account=account.address, proof=proof)
    session_hash = "0x" + spec.session_hash.hex()
    existing = Session.objects.filter(
        chain_id=settings.CHAIN_ID, account=account, session_hash=session_hash
    ).first()
    if existing is not None and existing.status == Status.PENDING_APPROVAL:
        return existing
    if existing is not None and existing.status != Status.FAILED:
        raise Conflict("session_exists", "This session was already created.")
    attempt = (
        0
        if existing is None
        else ChainOperation.objects.filter(
            kind=CREATE_SESSION, account=account.address, details__session_hash=session_hash
        ).count()
    )
    call_data = _create_call_data(account=account, spec=spec, proof=proof)
    expiry = datetime.fromtimestamp(spec.expires_at, tz=UTC)
    with transaction.atomic():
        operation = request_approval(
            user=user,
            account=account,
            kind=CREATE_SESSION,
            label=f"Give {origin} a session key until {expiry:%Y-%m-%d %H:%M} UTC",
            call_data=call_data,
            idempotency_key=f"{CREATE_SESSION}:{settings.CHAIN_ID}:{session_hash}"
            + (f":{attempt}" if attempt else ""),
            details={"session_hash": session_hash, "origin": origin},
        )
        fields = {
            "signer": spec.signer,
            "spec": spec.encode(),
            "spec_json": spec_json(spec),
            "request": {
                "method": method,
                "params": params,
                "function_names": parsed.function_names,
            },
            "origin": origin,
            "label": label,
            "expires_at": expiry,
            "create_operation": operation,
        }
        if existing is None:
            session = Session.objects.create(
                account=account, chain_id=settings.CHAIN_ID, session_hash=session_hash, **fields
            )
        else:
            Session.objects.filter(pk=existing.pk).update(
                status=Status.PENDING_APPROVAL, **fields, updated_at=timezone.now()
            )
            session = Session.objects.get(pk=existing.pk)
        record_event(
            kind=AuditEvent.Kind.SESSION_REQUESTED,
            user=user,
            client=client,
            session_id=session.pk,
            origin=origin,
            signer=spec.signer,
            session_hash=session_hash,
            operation_id=operation.pk,
        )
    return session


def reject_request(*, user: User, origin: str, method: str, client: ClientInfo | None) -> None:
    """The person said no to a dapp's request (audit only: nothing was created)."""
    record_event(
        kind=AuditEvent.Kind.SESSION_REJECTED,
        user=user,
        client=client,
        origin=origin,
        method=method[:64],
    )


# --- revocation ---------------------------------------------------------------------------------

REVOCABLE = (Status.ACTIVE, Status.EXPIRED)
IN_FLIGHT = (
    ChainOperation.Status.AWAITING_SIGNATURE,
    ChainOperation.Status.SIGNED,
    ChainOperation.Status.SUBMITTED,
    ChainOperation.Status.INCLUDED,
)


def suspend_sessions(*, sessions: list[Session], operator: str, client: ClientInfo | None) -> None:
    """An operator stops the relay for these sessions now (the chain still accepts their key
    until the owner revokes it); each owner's activity log says so."""
    now = timezone.now()
    for session in sessions:
        if session.suspended_at is not None:
            continue
        with transaction.atomic():
            Session.objects.filter(pk=session.pk).update(suspended_at=now)
            session.suspended_at = now
            record_event(
                kind=AuditEvent.Kind.SESSION_REVOKE_REQUESTED,
                user=session.account.user,
                client=client,
                session_id=session.pk,
                origin=session.origin,
                action="suspended_by_operator",
                operator=operator,
            )


def revoke_sessions(
    *, user: User, session_ids: Iterable[int] | None, client: ClientInfo | None
) -> ChainOperation:
    """A passkey-approved revokeKeys of the given sessions (None: every one still open on chain,
    expired ones included — SSO keeps them active until revoked)."""
    account = _account(user)
    sessions = selectors.sessions_of(user=user)
    if session_ids is not None:
        ids = sorted(set(session_ids))
        chosen = list(sessions.filter(pk__in=ids))
        if len(chosen) != len(ids):
            raise PortalError("session_not_found", "No such session.", status=404)
        for session in chosen:
            if session.status not in REVOCABLE:
                raise Conflict(
                    "session_not_revocable", f"Session {session.pk} is {session.status}."
                )
    else:
        chosen = list(sessions.filter(status__in=REVOCABLE))
        if not chosen:
            raise Conflict("nothing_to_revoke", "No session is open.")
    pending = [
        s.revoke_operation
        for s in chosen
        if s.revoke_operation is not None and s.revoke_operation.status in IN_FLIGHT
    ]
    if pending and len(pending) == len(chosen) and len({p.pk for p in pending}) == 1:
        return pending[0]
    hashes = sorted(s.session_hash for s in chosen)
    key_base = hashlib.sha256(",".join(hashes).encode()).hexdigest()[:32]
    attempts = ChainOperation.objects.filter(
        kind=REVOKE_SESSIONS, idempotency_key__startswith=f"{REVOKE_SESSIONS}:{key_base}"
    ).count()
    call_data = session_keys.revoke_keys_call_data(
        validator=deployment_addresses()["SessionKeyValidator"],
        session_hashes=[bytes.fromhex(h[2:]) for h in hashes],
    )
    with transaction.atomic():
        operation = request_approval(
            user=user,
            account=account,
            kind=REVOKE_SESSIONS,
            label=(
                f"Revoke the session key of {chosen[0].origin}"
                if len(chosen) == 1
                else f"Revoke {len(chosen)} session keys"
            ),
            call_data=call_data,
            idempotency_key=f"{REVOKE_SESSIONS}:{key_base}:{attempts + 1}",
            details={"session_hashes": hashes},
        )
        Session.objects.filter(pk__in=[s.pk for s in chosen]).update(revoke_operation=operation)
        record_event(
            kind=AuditEvent.Kind.SESSION_REVOKE_REQUESTED,
            user=user,
            client=client,
            session_ids=[s.pk for s in chosen],
            operation_id=operation.pk,
        )
    return operation


# --- following the chain ------------------------------------------------------------------------


def _status_from_events(session: Session, event: ChainEvent | None, *, now: datetime) -> str:
    if event is None:
        return Status.PENDING_APPROVAL if session.status != Status.FAILED else Status.FAILED
    if event.name == "SessionRevoked":
        return Status.REVOKED
    return Status.EXPIRED if session.expires_at <= now else Status.ACTIVE


def refresh_sessions(*, chain_id: int, keys: Iterable[tuple[str, str]]) -> int:
    """Recompute the status of the sessions of (account, session hash) pairs from the latest
    indexed SessionCreated / SessionRevoked; the number of sessions changed."""
    pairs = set(keys)
    if not pairs:
        return 0
    latest = latest_keyed_events(chain_id=chain_id, names=SESSION_EVENTS, keys=pairs)
    now = timezone.now()
    changed = 0
    sessions = Session.objects.filter(
        chain_id=chain_id,
        account__address__in={a for a, _ in pairs},
        session_hash__in={h for _, h in pairs},
    ).select_related("account")
    for session in sessions:
        event = latest.get((session.account.address, session.session_hash))
        to = _status_from_events(session, event, now=now)
        if to == session.status:
            continue
        try:
            transition_session(
                session_id=session.pk,
                to=to,
                at=event.block_timestamp if event is not None else None,
            )
        except SessionTransitionRefused:
            logger.warning("session %s: %s → %s refused", session.pk, session.status, to)
            continue
        changed += 1
    return changed


@receiver(events_indexed)
def follow_session_events(
    sender: Any, chain_id: int, events: set[tuple[str, str, str]], **kwargs: Any
) -> tuple[str, int]:
    keys = {(account, key) for name, account, key in events if name in SESSION_EVENTS}
    return ("sessions", refresh_sessions(chain_id=chain_id, keys=keys))


@receiver(operation_changed)
def follow_create_operation(sender: Any, operations: list[ChainOperation], **kwargs: Any) -> None:
    """A createSession that expired unsigned or failed: its session was never created."""
    for operation in operations:
        if operation.kind != CREATE_SESSION or operation.status not in (
            ChainOperation.Status.FAILED,
            ChainOperation.Status.EXPIRED,
        ):
            continue
        for session in Session.objects.filter(
            create_operation=operation, status=Status.PENDING_APPROVAL
        ):
            try:
                transition_session(session_id=session.pk, to=Status.FAILED)
            except SessionTransitionRefused:
                continue


def expire_sessions(*, now: datetime | None = None) -> int:
    """Mark active sessions past their expiry `expired`, and pending ones that can no longer be
    created `failed`; the number marked."""
    now = now or timezone.now()
    marked = 0
    for session_id, status in Session.objects.filter(
        status__in=(Status.ACTIVE, Status.PENDING_APPROVAL), expires_at__lte=now
    ).values_list("pk", "status"):
        to = Status.EXPIRED if status == Status.ACTIVE else Status.FAILED
        try:
            transition_session(session_id=session_id, to=to, at=now)
        except SessionTransitionRefused:
            continue
        marked += 1
    return marked


def purge_prepared_operations(*, now: datetime | None = None) -> int:
    """Forget relay preparations the dapp never sent back, once their sponsorship expired."""
    from sessionkeys.models import RelayedOperation

    deleted, _ = RelayedOperation.objects.filter(
        operation__isnull=True, expires_at__lte=now or timezone.now()
    ).delete()
    return deleted
