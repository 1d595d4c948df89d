"""Recovery use cases: guardians (propose, accept, remove), recovery requests (start, approve,
refuse, discard), their deadlines (finalize after the delay, expire), and the read models kept in
step with the GuardianExecutor's indexed events.

Every chain step of an owner or a portal guardian is a passkey-approved user operation
(passkeys.approvals.request_approval); finalizing is a relayer call (anyone may finalize)."""

import contextlib
import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from eth_utils import is_address, to_checksum_address

from accounts.models import AuditEvent, SmartAccount, User
from accounts.selectors import smart_account_of
from accounts.services import (
    guard_sensitive_action,
    notify_address,
    notify_user,
    record_event,
)
from accounts.smart_accounts import chain_origin, deployed_account_of
from chain import recovery_calls
from chain.client import ChainUnavailable, call_chain, node
from chain.models import ChainEvent, ChainOperation
from chain.passkey_signatures import public_key_from_cose
from chain.pipeline.create import create_relayer_call
from chain.selectors import account_events
from chain.transitions import TransitionRefused, transition
from passkeys import services as passkey_services
from passkeys.approvals import request_approval
from passkeys.webauthn import VerifiedRegistration
from portal.client_info import ClientInfo
from portal.errors import Conflict, NotFound, PortalError
from recovery.models import Guardian, RecoveryRequest
from recovery.selectors import (
    INSTALL_EXECUTOR,
    LIVE_OPERATION,
    executor_address,
    executor_installed,
    live_guardians,
    open_request,
    staff_alert_addresses,
)
from recovery.states import StateRefused, move_guardian, move_request

logger = logging.getLogger(__name__)
G = Guardian.Status
R = RecoveryRequest.Status
OpStatus = ChainOperation.Status

PROPOSE_GUARDIAN = "propose_guardian"
ACCEPT_GUARDIAN = "accept_guardian"
REMOVE_GUARDIAN = "remove_guardian"
INITIALIZE_RECOVERY = "initialize_recovery"
DISCARD_RECOVERY = "discard_recovery"
FINALIZE_RECOVERY = "finalize_recovery"
# recovery.codes' operations: install a recovery code's address; start a recovery with it.
CREATE_RECOVERY_CODE = "create_recovery_code"
INITIALIZE_RECOVERY_WITH_CODE = "initialize_recovery_with_code"
LABELS = {
    INSTALL_EXECUTOR: "Turn on guardian recovery for your account",
    PROPOSE_GUARDIAN: "Propose a recovery guardian",
    ACCEPT_GUARDIAN: "Accept to guard an account",
    REMOVE_GUARDIAN: "Remove a recovery guardian",
    INITIALIZE_RECOVERY: "Approve a recovery of an account you guard",
    DISCARD_RECOVERY: "Cancel the recovery of your account",
    FINALIZE_RECOVERY: "Finish a recovery: add the new passkey",
}
GUARDIAN_EVENTS = ("GuardianProposed", "GuardianAdded", "GuardianRemoved")
RECOVERY_EVENTS = ("RecoveryInitiated", "RecoveryFinished", "RecoveryDiscarded")
CODE_DIGITS = 6
# finalizeRecovery is not sent this close to the end of the validity window: it would land late.
FINALIZE_MARGIN_SECONDS = 120


# --- helpers -----------------------------------------------------------------------------------


def _executor() -> str:
    executor = executor_address()
    if executor is None:
        raise Conflict("recovery_unavailable", "Guardian recovery is not deployed on this chain.")
    return executor


def _deployed_account(user: User) -> SmartAccount:
    account = deployed_account_of(user)
    if account is None:
        raise Conflict("account_not_deployed", "The account is not deployed on chain yet.")
    return account


def _ensure_recovery_enabled(account: SmartAccount) -> str:
    executor = _executor()
    if not executor_installed(account=account):
        raise Conflict("recovery_not_enabled", "Turn on guardian recovery for your account first.")
    return executor


def _ensure_no_open_recovery(account: SmartAccount) -> None:
    if open_request(account=account) is not None:
        raise Conflict(
            "recovery_pending",
            "A recovery of this account is pending: guardians cannot change until it ends.",
        )


def _attempt_key(kind: str, *parts: object) -> str:
    """A fresh idempotency key per attempt of an operation about the same thing."""
    base = ":".join(str(part) for part in (kind, *parts))
    attempts = ChainOperation.objects.filter(idempotency_key__startswith=base + ":").count()
    return f"{base}:{attempts + 1}"


def _live(operation: ChainOperation | None) -> bool:
    return operation is not None and operation.status in LIVE_OPERATION


def _withdraw(operation: ChainOperation | None) -> bool:
    """Expire an operation nobody signed yet; False when it was signed meanwhile (or is
    already further)."""
    if operation is None:
        return True
    operation.refresh_from_db()
    if operation.status in (OpStatus.EXPIRED, OpStatus.FAILED):
        return True
    if operation.status != OpStatus.AWAITING_SIGNATURE:
        return False
    try:
        transition(
            operation_id=operation.pk, to=OpStatus.EXPIRED, expect=OpStatus.AWAITING_SIGNATURE
        )
    except TransitionRefused:
        return False
    return True


def guardian_name(guardian: Guardian) -> str:
    if guardian.guardian_user is not None:
        return guardian.guardian_user.username
    if guardian.kind == Guardian.Kind.RECOVERY_KEY:
        return f"your recovery key {guardian.address}"
    return guardian.address


def _alert_operators(*, subject: str, message: str) -> None:
    for address in staff_alert_addresses():
        notify_address(address=address, subject=subject, message=message)


# --- turning recovery on for an existing account --------------------------------------------


def enable_recovery(*, user: User) -> ChainOperation:
    """A passkey-approved installModule of the GuardianExecutor on an account opened before it
    existed. 409 `recovery_already_enabled` when it is installed."""
    guard_sensitive_action(action="guardian.change", user=user)
    with transaction.atomic():
        account = _deployed_account(user)
        executor = _executor()
        if executor_installed(account=account):
            raise Conflict("recovery_already_enabled", "Guardian recovery is already on.")
        pending = ChainOperation.objects.filter(
            chain_id=account.chain_id,
            account=account.address,
            kind=INSTALL_EXECUTOR,
            status__in=LIVE_OPERATION,
        ).first()
        if pending is not None:
            return pending
        return request_approval(
            user=user,
            account=account,
            kind=INSTALL_EXECUTOR,
            label=LABELS[INSTALL_EXECUTOR],
            call_data=recovery_calls.install_guardian_executor(executor=executor),
            idempotency_key=_attempt_key(INSTALL_EXECUTOR, account.chain_id, account.address),
            details={},
        )


# --- guardians ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuardianChange:
    guardian: Guardian
    operation: ChainOperation | None


def propose_guardian(
    *, user: User, username: str | None, address: str | None, client: ClientInfo
) -> GuardianChange:
    """Propose another portal user (their smart account) or any address as a guardian: a
    passkey-approved proposeGuardian. The guardian is invited once it is proposed on chain."""
    guard_sensitive_action(action="guardian.change", user=user, client=client)
    account = _deployed_account(user)
    executor = _ensure_recovery_enabled(account)
    guardian_user: User | None = None
    if username:
        guardian_user = User.objects.filter(username__iexact=username, is_active=True).first()
        if guardian_user is None:
            raise NotFound("guardian_not_found", "No one has that username here.")
        if guardian_user.pk == user.pk:
            raise PortalError("guardian_is_self", "You cannot guard your own account.")
        their = deployed_account_of(guardian_user)
        if their is None:
            raise Conflict(
                "guardian_not_deployed", "That person's smart account is not deployed yet."
            )
        guardian_address = their.address
        kind = Guardian.Kind.PORTAL
    elif address:
        if not is_address(address):
            raise PortalError("invalid_address", "That is not an Ethereum address.")
        guardian_address = to_checksum_address(address)
        if int(guardian_address, 16) == 0:
            raise PortalError("invalid_address", "The zero address cannot be a guardian.")
        if guardian_address == account.address:
            raise PortalError("guardian_is_self", "You cannot guard your own account.")
        portal_owner = SmartAccount.objects.filter(
            chain_id=account.chain_id, address=guardian_address
        ).first()
        guardian_user = portal_owner.user if portal_owner is not None else None
        kind = Guardian.Kind.PORTAL if guardian_user is not None else Guardian.Kind.EXTERNAL
    else:
        raise PortalError("guardian_missing", "Give a username or an address.")
    with transaction.atomic():
        SmartAccount.objects.select_for_update().get(pk=account.pk)
        _ensure_no_open_recovery(account)
        if live_guardians(account=account).filter(address=guardian_address).exists():
            raise Conflict("guardian_exists", "This guardian is already proposed or active.")
        try:
            guardian = Guardian.objects.create(
                account=account, address=guardian_address, kind=kind, guardian_user=guardian_user
            )
        except IntegrityError as exc:
            raise Conflict(
                "guardian_exists", "This guardian is already proposed or active."
            ) from exc
        operation = request_approval(
            user=user,
            account=account,
            kind=PROPOSE_GUARDIAN,
            label=LABELS[PROPOSE_GUARDIAN],
            call_data=recovery_calls.account_call(
                executor=executor, data=recovery_calls.propose_guardian(guardian=guardian_address)
            ),
            idempotency_key=f"{PROPOSE_GUARDIAN}:{guardian.pk}",
            details={"guardian_id": guardian.pk, "guardian": guardian_address},
        )
        guardian = move_guardian(
            guardian_id=guardian.pk, to=G.PROPOSED, proposal_operation=operation
        )
        record_event(
            kind=AuditEvent.Kind.GUARDIAN_CHANGED,
            user=user,
            client=client,
            action="proposed",
            guardian=guardian_address,
            guardian_user_id=guardian_user.pk if guardian_user else None,
        )
    return GuardianChange(guardian=guardian, operation=operation)


def _owned_guardian(*, user: User, guardian_id: int) -> Guardian:
    account = smart_account_of(user=user)
    guardian = (
        Guardian.objects.filter(pk=guardian_id, account=account).select_related("account").first()
        if account is not None
        else None
    )
    if guardian is None:
        raise NotFound("guardian_not_found", "No such guardian.")
    return guardian


def accept_guardian(*, user: User, guardian_id: int, client: ClientInfo) -> GuardianChange:
    """The invited portal user accepts with their own passkey: acceptGuardian(account) from
    their smart account."""
    guard_sensitive_action(action="guardian.change", user=user, client=client)
    guardian = (
        Guardian.objects.filter(pk=guardian_id, guardian_user=user)
        .select_related("account__user", "acceptance_operation")
        .first()
    )
    if guardian is None:
        raise NotFound("guardian_not_found", "No such invitation.")
    if guardian.status == G.ACTIVE:
        raise Conflict("guardian_already_active", "You already guard this account.")
    if guardian.status != G.PROPOSED:
        raise Conflict("guardian_removed", "This invitation was withdrawn.")
    if not guardian.proposed_on_chain:
        raise Conflict(
            "guardian_not_proposed_on_chain",
            "The proposal is not on chain yet: try again in a minute.",
        )
    if _live(guardian.acceptance_operation):
        assert guardian.acceptance_operation is not None  # noqa: S101 - _live
        return GuardianChange(guardian=guardian, operation=guardian.acceptance_operation)
    _ensure_no_open_recovery(guardian.account)
    mine = _deployed_account(user)
    if mine.address != guardian.address:
        raise Conflict(
            "guardian_account_mismatch", "This invitation is for another address of yours."
        )
    with transaction.atomic():
        operation = request_approval(
            user=user,
            account=mine,
            kind=ACCEPT_GUARDIAN,
            label=f"{LABELS[ACCEPT_GUARDIAN]} ({guardian.account.user.username})",
            call_data=recovery_calls.account_call(
                executor=_executor(),
                data=recovery_calls.accept_guardian(account=guardian.account.address),
            ),
            idempotency_key=_attempt_key(ACCEPT_GUARDIAN, guardian.pk),
            details={"guardian_id": guardian.pk, "guarded_account": guardian.account.address},
        )
        guardian = move_guardian(
            guardian_id=guardian.pk, to=G.PROPOSED, acceptance_operation=operation
        )
        record_event(
            kind=AuditEvent.Kind.GUARDIAN_CHANGED,
            user=user,
            client=client,
            action="accepting",
            guarded_account=guardian.account.address,
        )
    return GuardianChange(guardian=guardian, operation=operation)


def remove_guardian(*, user: User, guardian_id: int, client: ClientInfo) -> GuardianChange:
    """Withdraw a proposal or remove a guardian: removed at once when nothing is on chain yet,
    else a passkey-approved removeGuardian (removed once it is indexed)."""
    guard_sensitive_action(action="guardian.change", user=user, client=client)
    guardian = _owned_guardian(user=user, guardian_id=guardian_id)
    if guardian.status == G.REMOVED:
        raise Conflict("guardian_removed", "This guardian was already removed.")
    account = guardian.account
    with transaction.atomic():
        SmartAccount.objects.select_for_update().get(pk=account.pk)
        _ensure_no_open_recovery(account)
        if _live(guardian.removal_operation):
            return GuardianChange(guardian=guardian, operation=guardian.removal_operation)
        on_chain = guardian.proposed_on_chain or guardian.status == G.ACTIVE
        if not on_chain and _withdraw(guardian.proposal_operation):
            guardian = move_guardian(guardian_id=guardian.pk, to=G.REMOVED)
            operation = None
        else:
            operation = request_approval(
                user=user,
                account=_deployed_account(user),
                kind=REMOVE_GUARDIAN,
                label=LABELS[REMOVE_GUARDIAN],
                call_data=recovery_calls.account_call(
                    executor=_executor(),
                    data=recovery_calls.remove_guardian(guardian=guardian.address),
                ),
                idempotency_key=_attempt_key(REMOVE_GUARDIAN, guardian.pk),
                details={"guardian_id": guardian.pk, "guardian": guardian.address},
            )
            guardian = move_guardian(
                guardian_id=guardian.pk, to=guardian.status, removal_operation=operation
            )
        record_event(
            kind=AuditEvent.Kind.GUARDIAN_CHANGED,
            user=user,
            client=client,
            action="removed" if operation is None else "removing",
            guardian=guardian.address,
        )
    return GuardianChange(guardian=guardian, operation=operation)


# --- recovery requests -------------------------------------------------------------------------


def _recoverable(username: str) -> tuple[User, SmartAccount]:
    user = User.objects.filter(username__iexact=username.strip(), is_active=True).first()
    if user is None:
        raise NotFound("account_not_found", "No account has that username.")
    account = deployed_account_of(user)
    if account is None:
        raise Conflict("account_not_deployed", "This account is not deployed on chain yet.")
    if not live_guardians(account=account).filter(status=G.ACTIVE).exists():
        raise Conflict(
            "no_guardians", "This account has no active guardian: it cannot be recovered here."
        )
    _ensure_no_open_recovery(account)
    return user, account


def begin_recovery(*, username: str) -> passkey_services.CeremonyOptions:
    """Options to create the new passkey on this device, for `username`'s account."""
    user, _ = _recoverable(username)
    return passkey_services.begin_recovery_registration(user=user)


def _code_hash(public_id: uuid.UUID, digits: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"recovery-code:{public_id}:{digits}".encode(), hashlib.sha256).hexdigest()


def _new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def format_code(digits: str) -> str:
    return f"{digits[:3]} {digits[3:]}"


def key_fingerprint(cose_public_key: bytes) -> str:
    """What people compare: SHA-256 of the key's coordinates, 80 bits in five groups."""
    x, y = public_key_from_cose(cose_public_key)
    digest = hashlib.sha256(x.to_bytes(32, "big") + y.to_bytes(32, "big")).hexdigest()[:20]
    return " ".join(digest[i : i + 4] for i in range(0, 20, 4)).upper()


@dataclass(frozen=True)
class StartedRecovery:
    request: RecoveryRequest
    code: str  # shown once to the requester, who reads it out to a guardian


def start_recovery(
    *,
    username: str,
    ceremony_id: uuid.UUID,
    credential: dict[str, Any],
    passkey_name: str,
    client: ClientInfo,
) -> StartedRecovery:
    """Verify the new passkey (the registration rules, bound to the chain's origin) and open a
    request: the owner, every active guardian and the operators are told."""
    user, account = _recoverable(username)
    verified = passkey_services.verify_recovery_registration(
        user=user, ceremony_id=ceremony_id, credential=credential
    )
    digits = _new_code()
    public_id = uuid.uuid4()
    x_y = public_key_from_cose(verified.public_key)
    now = timezone.now()
    try:
        with transaction.atomic():
            SmartAccount.objects.select_for_update().get(pk=account.pk)
            _ensure_no_open_recovery(account)
            request = RecoveryRequest.objects.create(
                public_id=public_id,
                account=account,
                user=user,
                credential_id=verified.credential_id,
                public_key=verified.public_key,
                sign_count=verified.sign_count,
                aaguid=verified.aaguid,
                transports=verified.transports,
                backup_eligible=verified.backup_eligible,
                backed_up=verified.backed_up,
                passkey_name=(passkey_name or "").strip() or "Recovered passkey",
                fingerprint=key_fingerprint(verified.public_key),
                code_hash=_code_hash(public_id, digits),
                recovery_data=recovery_calls.passkey_recovery_data(
                    credential_id=verified.credential_id, public_key=x_y, origin=chain_origin()
                ),
                requester_ip=client.ip_address,
                requester_agent=client.user_agent[:512],
                created_at=now,
                approval_deadline=now + timedelta(seconds=settings.RECOVERY_APPROVAL_SECONDS),
            )
            record_event(
                kind=AuditEvent.Kind.RECOVERY_STARTED,
                user=user,
                client=client,
                recovery=str(public_id),
                fingerprint=request.fingerprint,
            )
            _tell_started(request)
    except IntegrityError as exc:
        raise Conflict("recovery_pending", "A recovery of this account is pending.") from exc
    return StartedRecovery(request=request, code=format_code(digits))


def _who(request: RecoveryRequest) -> str:
    where = request.requester_ip or "an unknown address"
    browser = request.requester_agent[:120] or "an unknown browser"
    return f"someone at {where} ({browser})"


def _tell_started(request: RecoveryRequest) -> None:
    user = request.user
    notify_user(
        user=user,
        subject="Someone started a recovery of your account",
        message=(
            f"A recovery of your account {user.username} was started on "
            f"{request.created_at:%Y-%m-%d %H:%M} UTC by {_who(request)}, to add a new passkey "
            f"(fingerprint {request.fingerprint}). If a guardian approves it, it completes 24 "
            "hours later. If this was not you, sign in with a passkey you still have and press "
            "Cancel on any page of the portal."
        ),
    )
    for guardian in live_guardians(account=request.account).filter(status=G.ACTIVE):
        if guardian.guardian_user is not None:
            notify_user(
                user=guardian.guardian_user,
                subject=f"{user.username} asks you to approve a recovery",
                message=(
                    f"Someone asks to recover the account {user.username} that you guard, with a "
                    f"new passkey whose fingerprint is {request.fingerprint}. Call "
                    f"{user.username} through a channel you trust, ask them to read out the code "
                    "on their screen, and type it on your account page to approve. If you cannot "
                    "reach them, refuse."
                ),
            )
    _alert_operators(
        subject=f"Recovery started for {user.username}",
        message=(
            f"A recovery of {user.username} ({request.account.address}) was started by "
            f"{_who(request)}; request {request.public_id}, new key {request.fingerprint}."
        ),
    )


def _guardian_of(*, user: User, request: RecoveryRequest) -> Guardian:
    guardian = (
        Guardian.objects.filter(account=request.account, guardian_user=user, status=G.ACTIVE)
        .select_related("guardian_user")
        .first()
    )
    if guardian is None:
        raise NotFound("recovery_not_found", "No such recovery for an account you guard.")
    return guardian


def _request(public_id: uuid.UUID, *, lock: bool = False) -> RecoveryRequest:
    requests = RecoveryRequest.objects.select_for_update() if lock else RecoveryRequest.objects
    request = requests.filter(public_id=public_id).first()
    if request is None:
        raise NotFound("recovery_not_found", "No such recovery.")
    return request


def _ensure_pending_approval(request: RecoveryRequest) -> None:
    if request.status != R.PENDING_APPROVAL:
        raise Conflict("recovery_not_pending", "This recovery is not waiting for a guardian.")
    if _live(request.initiate_operation):
        raise Conflict("recovery_already_approved", "A guardian is already approving it.")


def ensure_guardian_may_start(*, request: RecoveryRequest, guardian: Guardian) -> None:
    """A guardian whose recovery of the account was cancelled waits
    RECOVERY_DISCARD_COOLDOWN_SECONDS (409 `guardian_cooldown`), and starts at most one recovery
    of an account per RECOVERY_GUARDIAN_LIMIT_SECONDS (409 `guardian_recovery_limit`)."""
    cooldown_since = timezone.now() - timedelta(seconds=settings.RECOVERY_DISCARD_COOLDOWN_SECONDS)
    cancelled = RecoveryRequest.objects.filter(
        account=request.account,
        approved_by__address=guardian.address,
        status=R.DISCARDED,
        ended_at__gte=cooldown_since,
    ).exclude(pk=request.pk)
    last = cancelled.order_by("-ended_at").first()
    if last is not None and last.ended_at is not None:
        again = last.ended_at + timedelta(seconds=settings.RECOVERY_DISCARD_COOLDOWN_SECONDS)
        raise Conflict(
            "guardian_cooldown",
            "A recovery of this account by this guardian was just cancelled: this guardian can "
            f"start another after {again:%Y-%m-%d %H:%M} UTC.",
            retry_after=again.isoformat(),
        )
    since = timezone.now() - timedelta(seconds=settings.RECOVERY_GUARDIAN_LIMIT_SECONDS)
    recent = RecoveryRequest.objects.filter(
        account=request.account,
        approved_by__address=guardian.address,
        approved_at__gte=since,
        initiated_at__isnull=False,
    ).exclude(pk=request.pk)
    if recent.exists():
        raise Conflict(
            "guardian_recovery_limit",
            "This guardian already started a recovery of this account in the last 72 hours.",
        )


def approve_recovery(
    *, user: User, public_id: uuid.UUID, code: str, client: ClientInfo
) -> tuple[RecoveryRequest, ChainOperation]:
    """A guardian who heard the requester's code approves: a passkey-approved
    initializeRecovery from their own account. Each guardian starts at most one recovery per
    account per RECOVERY_GUARDIAN_LIMIT_SECONDS."""
    request = _request(public_id)
    guardian = _guardian_of(user=user, request=request)
    mine = _deployed_account(user)
    refusal: PortalError | None = None
    with transaction.atomic():
        request = _request(public_id, lock=True)
        _ensure_pending_approval(request)
        digits = "".join(ch for ch in code if ch.isdigit())
        if not hmac.compare_digest(_code_hash(request.public_id, digits), request.code_hash):
            attempts = request.code_attempts + 1
            refusal = PortalError(
                "code_mismatch",
                "That is not the code on the requester's screen. Ask them to read it again.",
                attempts_left=max(0, settings.RECOVERY_CODE_ATTEMPTS - attempts),
            )
            if attempts >= settings.RECOVERY_CODE_ATTEMPTS:
                request = move_request(
                    request_id=request.pk,
                    to=R.DISCARDED,
                    code_attempts=attempts,
                    end_reason="too_many_codes",
                )
                _discarded(
                    request,
                    client=client,
                    reason=f"{guardian_name(guardian)} typed a wrong code too many times",
                )
            else:
                move_request(request_id=request.pk, to=request.status, code_attempts=attempts)
    if refusal is not None:
        raise refusal
    ensure_guardian_may_start(request=request, guardian=guardian)
    executor = _executor()
    with transaction.atomic():
        request = _request(public_id, lock=True)
        _ensure_pending_approval(request)
        operation = request_approval(
            user=user,
            account=mine,
            kind=INITIALIZE_RECOVERY,
            label=f"{LABELS[INITIALIZE_RECOVERY]} ({request.user.username})",
            call_data=recovery_calls.account_call(
                executor=executor,
                data=recovery_calls.initialize_recovery(
                    account=request.account.address,
                    recovery_type=recovery_calls.RecoveryType.PASSKEY,
                    data=bytes(request.recovery_data),
                ),
            ),
            idempotency_key=_attempt_key(INITIALIZE_RECOVERY, request.pk, guardian.pk),
            details={"recovery": str(request.public_id), "guardian_id": guardian.pk},
        )
        request = move_request(
            request_id=request.pk,
            to=R.PENDING_APPROVAL,
            approved_by=guardian,
            approved_at=timezone.now(),
            initiate_operation=operation,
        )
        record_event(
            kind=AuditEvent.Kind.RECOVERY_APPROVED,
            user=user,
            client=client,
            recovery=str(request.public_id),
            account=request.account.address,
        )
    return request, operation


def refuse_recovery(*, user: User, public_id: uuid.UUID, client: ClientInfo) -> RecoveryRequest:
    """A guardian who could not confirm the requester refuses: the request is discarded (nothing
    is on chain yet)."""
    request = _request(public_id)
    guardian = _guardian_of(user=user, request=request)
    with transaction.atomic():
        request = _request(public_id, lock=True)
        _ensure_pending_approval(request)
        request = move_request(
            request_id=request.pk, to=R.DISCARDED, end_reason="refused_by_guardian"
        )
        record_event(
            kind=AuditEvent.Kind.RECOVERY_REFUSED,
            user=user,
            client=client,
            recovery=str(request.public_id),
            account=request.account.address,
        )
        _discarded(
            request, client=client, reason=f"the guardian {guardian_name(guardian)} refused it"
        )
    return request


def discard_recovery(
    *, user: User, public_id: uuid.UUID, client: ClientInfo
) -> tuple[RecoveryRequest, ChainOperation | None]:
    """The owner (from a device that still works) stops a recovery of their account: at once
    while nothing can reach the chain, else a passkey-approved discardRecovery."""
    request = _request(public_id)
    if request.user_id != user.pk:
        raise NotFound("recovery_not_found", "No such recovery of your account.")
    guard_sensitive_action(action="recovery.discard", user=user, client=client)
    if not request.is_open:
        raise Conflict("recovery_not_pending", "This recovery has already ended.")
    with transaction.atomic():
        request = _request(public_id, lock=True)
        if not request.is_open:
            raise Conflict("recovery_not_pending", "This recovery has already ended.")
        if request.status == R.PENDING_APPROVAL and _withdraw(request.initiate_operation):
            request = move_request(
                request_id=request.pk, to=R.DISCARDED, end_reason="discarded_by_owner"
            )
            _discarded(request, client=client, reason="the account's owner cancelled it")
            return request, None
        if _live(request.discard_operation):
            return request, request.discard_operation
        operation = request_approval(
            user=user,
            account=_deployed_account(user),
            kind=DISCARD_RECOVERY,
            label=LABELS[DISCARD_RECOVERY],
            call_data=recovery_calls.account_call(
                executor=_executor(), data=recovery_calls.discard_recovery()
            ),
            idempotency_key=_attempt_key(DISCARD_RECOVERY, request.pk),
            details={"recovery": str(request.public_id)},
        )
        request = move_request(
            request_id=request.pk, to=request.status, discard_operation=operation
        )
        record_event(
            kind=AuditEvent.Kind.RECOVERY_DISCARDED,
            user=user,
            client=client,
            recovery=str(request.public_id),
            reason="discarding",
            operation_id=operation.pk,
        )
    return request, operation


def _discarded(request: RecoveryRequest, *, client: ClientInfo | None, reason: str) -> None:
    """Audit a discarded request, and tell the owner, the guardians and the operators."""
    record_event(
        kind=AuditEvent.Kind.RECOVERY_DISCARDED,
        user=request.user,
        client=client,
        recovery=str(request.public_id),
        reason=request.end_reason,
    )
    _tell_discarded(request, reason=reason)


def _tell_discarded(request: RecoveryRequest, *, reason: str) -> None:
    user = request.user
    text = (
        f"The recovery of the account {user.username} started on "
        f"{request.created_at:%Y-%m-%d %H:%M} UTC (new key {request.fingerprint}) was cancelled: "
        f"{reason}. No passkey was added."
    )
    notify_user(user=user, subject="The recovery of your account was cancelled", message=text)
    for guardian in Guardian.objects.filter(account=request.account, status=G.ACTIVE):
        if guardian.guardian_user is not None:
            notify_user(
                user=guardian.guardian_user,
                subject=f"The recovery of {user.username} was cancelled",
                message=text,
            )
    _alert_operators(subject=f"Recovery cancelled for {user.username}", message=text)


# --- deadlines (beat) --------------------------------------------------------------------------


@dataclass
class DeadlineRun:
    finalizing: int = 0
    expired: int = 0


def _chain_now() -> int | None:
    try:
        block = call_chain(node().eth.get_block, "latest")
    except ChainUnavailable as exc:
        logger.warning("recovery deadlines: chain unavailable: %s", exc)
        return None
    return int(block["timestamp"])


def _expire(request: RecoveryRequest, *, reason: str) -> None:
    with transaction.atomic():
        try:
            request = move_request(request_id=request.pk, to=R.EXPIRED, end_reason=reason)
        except StateRefused:
            return
        record_event(
            kind=AuditEvent.Kind.RECOVERY_FINISHED,
            user=request.user,
            client=None,
            recovery=str(request.public_id),
            outcome="expired",
            reason=reason,
        )
        notify_user(
            user=request.user,
            subject="A recovery of your account expired",
            message=(
                f"The recovery of your account {request.user.username} started on "
                f"{request.created_at:%Y-%m-%d %H:%M} UTC expired ({reason.replace('_', ' ')}). "
                "No passkey was added."
            ),
        )


def run_deadlines() -> DeadlineRun:
    """Finalize every initiated recovery whose delay is over (a relayer call: anyone may) and
    expire those past their window, by the chain's clock; expire requests no guardian approved
    in time, by the portal's."""
    run = DeadlineRun()
    now = timezone.now()
    for request in RecoveryRequest.objects.filter(
        status=R.PENDING_APPROVAL, approval_deadline__lte=now
    ):
        if not _live(request.initiate_operation) or _withdraw(request.initiate_operation):
            _expire(request, reason="not_approved_in_time")
            run.expired += 1
    initiated = list(
        RecoveryRequest.objects.filter(status=R.INITIATED).select_related(
            "account", "finalize_operation", "discard_operation"
        )
    )
    if not initiated:
        return run
    chain_now = _chain_now()
    if chain_now is None:
        return run
    executor = executor_address()
    for request in initiated:
        assert request.initiated_at is not None  # noqa: S101 - initiated
        start = int(request.initiated_at.timestamp())
        if chain_now >= start + recovery_calls.REQUEST_VALIDITY_SECONDS - FINALIZE_MARGIN_SECONDS:
            if not _live(request.finalize_operation):
                _expire(request, reason="not_finalized_in_time")
                run.expired += 1
            continue
        if chain_now < start + recovery_calls.REQUEST_DELAY_SECONDS:
            continue
        if _live(request.finalize_operation) or _live(request.discard_operation):
            continue
        if executor is None:
            continue
        with transaction.atomic():
            operation = create_relayer_call(
                kind=FINALIZE_RECOVERY,
                label=LABELS[FINALIZE_RECOVERY],
                to=executor,
                data=recovery_calls.finalize_recovery(
                    account=request.account.address, data=bytes(request.recovery_data)
                ),
                idempotency_key=_attempt_key(FINALIZE_RECOVERY, request.pk),
                account=request.account.address,
                details={"recovery": str(request.public_id)},
            )
            move_request(request_id=request.pk, to=R.INITIATED, finalize_operation=operation)
        run.finalizing += 1
    return run


# --- read models from the GuardianExecutor's events --------------------------------------------


def _timestamp(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def follow_guardian_events(*, chain_id: int, accounts: Iterable[str]) -> int:
    """Each guardian's state from the latest GuardianProposed/Added/Removed of (account,
    guardian); the guardian is invited when first seen proposed. Returns rows changed."""
    addresses = sorted(set(accounts))
    latest: dict[tuple[str, str], ChainEvent] = {}
    for found in account_events(chain_id=chain_id, accounts=addresses, names=GUARDIAN_EVENTS):
        latest[(found.account, str(found.args["guardian"]))] = found
    changed = 0
    rows = Guardian.objects.filter(
        account__chain_id=chain_id, account__address__in=addresses
    ).select_related("account__user", "guardian_user")
    newest: dict[tuple[str, str], Guardian] = {}
    for guardian in rows.order_by("pk"):
        newest[(guardian.account.address, guardian.address)] = guardian
    for key, guardian in newest.items():
        event = latest.get(key)
        if event is None:
            if guardian.proposed_on_chain and guardian.status != G.REMOVED:
                # A reorg took every event away: a proposal again, not yet on chain.
                move_guardian(guardian_id=guardian.pk, to=G.PROPOSED, proposed_on_chain=False)
                changed += 1
            continue
        target = {
            "GuardianProposed": G.PROPOSED,
            "GuardianAdded": G.ACTIVE,
            "GuardianRemoved": G.REMOVED,
        }[event.name]
        first_seen = not guardian.proposed_on_chain
        if guardian.status == target and not first_seen:
            continue
        if guardian.status == G.REMOVED and target != G.REMOVED and first_seen:
            continue  # withdrawn in the portal before its proposal reached the chain
        move_guardian(guardian_id=guardian.pk, to=target, proposed_on_chain=True)
        changed += 1
        if first_seen and target == G.PROPOSED and guardian.guardian_user is not None:
            notify_user(
                user=guardian.guardian_user,
                subject=f"{guardian.account.user.username} asks you to be a recovery guardian",
                message=(
                    f"{guardian.account.user.username} asked you to guard their account: if they "
                    "lose every device, you can approve adding a new passkey after checking it "
                    "is them. Accept or ignore it on your account page."
                ),
            )
    return changed


def _initiated_event(events: list[ChainEvent], request: RecoveryRequest) -> ChainEvent | None:
    """The latest RecoveryInitiated of the request's data."""
    wanted = "0x" + recovery_calls.recovery_data_hash(bytes(request.recovery_data)).hex()
    found = None
    for event in events:
        if event.name == "RecoveryInitiated" and str(event.args["request"][1]).lower() == wanted:
            found = event
    return found


def _reopen_late(request: RecoveryRequest, started: ChainEvent) -> RecoveryRequest:
    """An initializeRecovery of an expired request's data reached the chain after it expired:
    the recovery is pending on chain (anyone may finalize it after the delay), so the request is
    open again, the owner told with a cancel button, the operators alerted. Another request
    still waiting for a guardian ends: the chain holds one recovery at a time."""
    for other in RecoveryRequest.objects.filter(
        account=request.account, status__in=(R.PENDING_APPROVAL, R.INITIATED)
    ).exclude(pk=request.pk):
        other = move_request(request_id=other.pk, to=R.DISCARDED, end_reason="superseded_on_chain")
        _discarded(other, client=None, reason="an earlier recovery reached the chain late")
    previous_reason = request.end_reason
    request = move_request(
        request_id=request.pk,
        to=R.INITIATED,
        initiated_at=_timestamp(int(started.args["request"][2])),
        initiated_by=str(started.args["guardian"]),
        end_reason="",
    )
    record_event(
        kind=AuditEvent.Kind.RECOVERY_STARTED,
        user=request.user,
        client=None,
        recovery=str(request.public_id),
        late=True,
        previous_end_reason=previous_reason,
        guardian=request.initiated_by,
    )
    text = (
        f"A recovery of your account {request.user.username} that had expired (started on "
        f"{request.created_at:%Y-%m-%d %H:%M} UTC, new key {request.fingerprint}) was started on "
        f"chain late by {request.initiated_by}. The new passkey will be added after "
        f"{request.completes_at:%Y-%m-%d %H:%M} UTC. If this was not you, sign in with a passkey "
        "you still have and press Cancel now."
    )
    notify_user(
        user=request.user,
        subject="An expired recovery of your account reached the chain late",
        message=text,
    )
    _alert_operators(
        subject=f"Late recovery on chain for {request.user.username}",
        message=f"{text}\n\nRequest {request.public_id}, account {request.account.address}.",
    )
    _mark_code_used(request)
    return request


def follow_recovery_events(*, chain_id: int, accounts: Iterable[str]) -> int:
    """Each open (or just-ended-by-chain) request's state from its account's latest recovery
    event: initiated (the delay counts from the request's on-chain timestamp), finalized (the
    new passkey becomes a portal passkey) or discarded; an expired request whose data was
    initiated on chain after it expired is open again (`_reopen_late`)."""
    addresses = sorted(set(accounts))
    by_account: dict[str, list[ChainEvent]] = {}
    for event in account_events(chain_id=chain_id, accounts=addresses, names=RECOVERY_EVENTS):
        by_account.setdefault(event.account, []).append(event)
    changed = 0
    requests = RecoveryRequest.objects.filter(
        account__chain_id=chain_id,
        account__address__in=addresses,
        status__in=(R.PENDING_APPROVAL, R.INITIATED, R.EXPIRED),
    ).select_related("account", "user")
    for request in requests:
        events = by_account.get(request.account.address, [])
        started = _initiated_event(events, request)
        if request.status == R.EXPIRED:
            # Late: an initiation of its data other than the one it knew (if any).
            if started is None or (
                request.initiated_at is not None
                and _timestamp(int(started.args["request"][2])) <= request.initiated_at
            ):
                continue
            request = _reopen_late(request, started)
            changed += 1
        elif started is None:
            if request.status == R.INITIATED:
                move_request(request_id=request.pk, to=R.PENDING_APPROVAL, initiated_at=None)
                changed += 1
            continue
        after = [
            event
            for event in events
            if (event.block_number, event.log_index) > (started.block_number, started.log_index)
            and event.name != "RecoveryInitiated"
        ]
        start_time = _timestamp(int(started.args["request"][2]))
        if request.status == R.PENDING_APPROVAL:
            request = move_request(
                request_id=request.pk,
                to=R.INITIATED,
                initiated_at=start_time,
                initiated_by=str(started.args["guardian"]),
            )
            changed += 1
            _tell_initiated(request)
            _mark_code_used(request)
        if not after:
            continue
        if after[0].name == "RecoveryFinished":
            _finalized(request)
        else:
            by_owner = request.discard_operation_id is not None
            request = move_request(
                request_id=request.pk,
                to=R.DISCARDED,
                end_reason="discarded_by_owner" if by_owner else "guardian_removed",
            )
            _discarded(
                request,
                client=None,
                reason="the account's owner cancelled it"
                if by_owner
                else "the approving guardian was removed",
            )
        changed += 1
    return changed


def _mark_code_used(request: RecoveryRequest) -> None:
    """A recovery key that started a recovery on chain is spent: the portal relays no other."""
    code = Guardian.objects.filter(
        account=request.account,
        address=request.initiated_by,
        kind=Guardian.Kind.RECOVERY_KEY,
        used_at__isnull=True,
    ).first()
    if code is not None:
        move_guardian(guardian_id=code.pk, to=code.status, used_at=timezone.now())
        record_event(
            kind=AuditEvent.Kind.GUARDIAN_CHANGED,
            user=request.user,
            client=None,
            action="recovery_code_used",
            guardian=code.address,
            recovery=str(request.public_id),
        )


def _tell_initiated(request: RecoveryRequest) -> None:
    completes = request.completes_at
    notify_user(
        user=request.user,
        subject="A recovery of your account was approved: it completes in 24 hours",
        message=(
            f"A guardian ({request.initiated_by}) approved the recovery of your account "
            f"{request.user.username} started by {_who(request)}. The new passkey "
            f"(fingerprint {request.fingerprint}) will be added after "
            f"{completes:%Y-%m-%d %H:%M} UTC. If this was not you, sign in with a passkey you "
            "still have and press Cancel now."
        ),
    )


def _finalized(request: RecoveryRequest) -> None:
    verified = VerifiedRegistration(
        credential_id=bytes(request.credential_id),
        public_key=bytes(request.public_key),
        sign_count=request.sign_count,
        aaguid=request.aaguid,
        transports=list(request.transports),
        backup_eligible=request.backup_eligible,
        backed_up=request.backed_up,
    )
    passkey = passkey_services.store_recovered_passkey(
        user=request.user, verified=verified, name=request.passkey_name, client=None
    )
    request = move_request(
        request_id=request.pk, to=R.FINALIZED, end_reason="finalized", passkey=passkey
    )
    record_event(
        kind=AuditEvent.Kind.RECOVERY_FINISHED,
        user=request.user,
        client=None,
        recovery=str(request.public_id),
        outcome="finalized",
        passkey_id=passkey.pk,
    )


def follow_operation(operation: ChainOperation) -> None:
    """A proposal (or a recovery code's installation) that failed or expired before reaching
    the chain ends its guardian row."""
    if operation.kind not in (PROPOSE_GUARDIAN, CREATE_RECOVERY_CODE) or operation.status not in (
        OpStatus.FAILED,
        OpStatus.EXPIRED,
    ):
        return
    guardian = Guardian.objects.filter(pk=operation.details.get("guardian_id")).first()
    if guardian is None or guardian.proposal_operation_id != operation.pk:
        return
    if guardian.status == G.PROPOSED and not guardian.proposed_on_chain:
        with contextlib.suppress(StateRefused):
            move_guardian(guardian_id=guardian.pk, to=G.REMOVED)
