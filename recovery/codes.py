"""Recovery codes: a one-time code, made and kept by the person, from which their browser derives
a secp256k1 key whose address guards their account (a Guardian of kind `recovery_key`). The
portal sees only the address and the key's EIP-712 signatures, never the code.

- Creating one is a passkey-approved user operation of the account: one batch that removes the
  previous code's guardian (a person has at most one), proposes the new address, and accepts it
  with the key's AcceptGuardian signature (acceptGuardianWithSignature).
- Recovering with it: on /recover the person opens a request with a new passkey as with any
  guardian, then the key signs InitializeRecovery for that request; the portal's relayer submits
  initializeRecoveryWithSignature (the key has no ETH: the relayer pays, within its budget). The
  same 24-hour path follows.

The derivation (static/js/recovery-code.js, and tests/recovery/recovery_code.py for the tests):
the code is 32 Crockford base32 characters (160 random bits) shown in eight groups of four;
before deriving, it is upper-cased, spaces and hyphens dropped, I and L read as 1 and O as 0.
The key is d = (HMAC-SHA256(key="passkey-portal/recovery-code/v1", msg=ASCII code) mod (n - 1)) + 1
where n is secp256k1's order."""

import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from eth_abi import decode
from eth_utils import is_address, to_checksum_address

from accounts.models import AuditEvent, SmartAccount, User
from accounts.selectors import smart_account_of
from accounts.services import guard_sensitive_action, record_event
from chain import recovery_calls, userops
from chain.client import ChainUnavailable, call_chain, node
from chain.models import ChainOperation
from chain.pipeline.create import chain_unavailable_error, create_relayer_call
from passkeys.approvals import request_approval
from portal.client_info import ClientInfo
from portal.errors import Conflict, NotFound, PortalError
from recovery.models import Guardian, RecoveryRequest
from recovery.selectors import live_guardians
from recovery.services import (
    CREATE_RECOVERY_CODE,
    INITIALIZE_RECOVERY_WITH_CODE,
    GuardianChange,
    _attempt_key,
    _deployed_account,
    _ensure_no_open_recovery,
    _ensure_pending_approval,
    _ensure_recovery_enabled,
    _executor,
    _live,
    _request,
    _withdraw,
    ensure_guardian_may_start,
    remove_guardian,
)
from recovery.states import move_guardian, move_request

G = Guardian.Status
# How long a signature the portal asks for stays valid on chain: the creation's passkey approval
# and its submission fit in it; a recovery's is submitted at once.
ACCEPT_SIGNATURE_SECONDS = 24 * 60 * 60
INITIALIZE_SIGNATURE_SECONDS = 60 * 60


def current_code(*, account: SmartAccount | None) -> Guardian | None:
    """The account's recovery key that is not removed (the newest, while an old one's removal
    is on its way)."""
    if account is None:
        return None
    return (
        live_guardians(account=account)
        .filter(kind=Guardian.Kind.RECOVERY_KEY)
        .select_related("account__user", "proposal_operation", "removal_operation")
        .order_by("-created_at", "-pk")
        .first()
    )


def _chain_time() -> int:
    try:
        return int(call_chain(node().eth.get_block, "latest")["timestamp"])
    except ChainUnavailable as exc:
        raise chain_unavailable_error() from exc


def _guardian_nonce(*, executor: str, guardian: str) -> int:
    try:
        raw = call_chain(
            node().eth.call,
            {"to": executor, "data": recovery_calls.guardian_nonce_call(guardian=guardian)},
        )
    except ChainUnavailable as exc:
        raise chain_unavailable_error() from exc
    (nonce,) = decode(["uint256"], bytes(raw))
    return int(nonce)


def _valid_deadline(deadline: int, *, longest: int) -> None:
    now = _chain_time()
    if not now < deadline <= now + longest:
        raise PortalError(
            "signature_deadline_invalid", "The signature's deadline has passed or is too far."
        )


def _code_address(address: str, *, account: SmartAccount) -> str:
    if not is_address(address) or int(address, 16) == 0:
        raise PortalError("invalid_address", "That is not an Ethereum address.")
    checksummed = to_checksum_address(address)
    if checksummed == account.address:
        raise PortalError("invalid_address", "Your account cannot guard itself.")
    if Guardian.objects.filter(account=account, address=checksummed).exists():
        raise Conflict("guardian_exists", "This address already guards or guarded the account.")
    return checksummed


def _signer_must_be(typed_data: dict[str, Any], signature: bytes, expected: str) -> None:
    if recovery_calls.typed_data_signer(typed_data, signature) != expected:
        raise PortalError(
            "recovery_code_mismatch",
            "That recovery code does not match this account's: check it and try again.",
            status=403,
        )


def creation_typed_data(*, user: User, address: str) -> dict[str, Any]:
    """What the new code's key signs: AcceptGuardian of the user's account."""
    account = _deployed_account(user)
    executor = _ensure_recovery_enabled(account)
    address = _code_address(address, account=account)
    return recovery_calls.accept_guardian_typed_data(
        executor=executor,
        chain_id=account.chain_id,
        account=account.address,
        guardian=address,
        nonce=_guardian_nonce(executor=executor, guardian=address),
        deadline=_chain_time() + ACCEPT_SIGNATURE_SECONDS,
    )


def create_recovery_code(
    *, user: User, address: str, deadline: int, signature: bytes, client: ClientInfo
) -> GuardianChange:
    """Install the code's address as an active guardian (and remove the previous code's) in one
    passkey-approved operation. 409 `recovery_pending` while a recovery is open."""
    guard_sensitive_action(action="guardian.change", user=user, client=client)
    account = _deployed_account(user)
    executor = _ensure_recovery_enabled(account)
    address = _code_address(address, account=account)
    _valid_deadline(deadline, longest=ACCEPT_SIGNATURE_SECONDS + 300)
    typed = recovery_calls.accept_guardian_typed_data(
        executor=executor,
        chain_id=account.chain_id,
        account=account.address,
        guardian=address,
        nonce=_guardian_nonce(executor=executor, guardian=address),
        deadline=deadline,
    )
    _signer_must_be(typed, signature, address)
    with transaction.atomic():
        SmartAccount.objects.select_for_update().get(pk=account.pk)
        _ensure_no_open_recovery(account)
        old = current_code(account=account)
        calls: list[userops.Call] = []
        if old is not None:
            if _live(old.removal_operation):
                raise Conflict(
                    "recovery_code_changing", "Your previous code is being removed: wait a minute."
                )
            on_chain = old.proposed_on_chain or old.status == G.ACTIVE
            if not on_chain and not _withdraw(old.proposal_operation):
                raise Conflict(
                    "recovery_code_changing",
                    "Your previous code is being installed: wait a minute.",
                )
            if on_chain:
                calls.append(
                    userops.Call(
                        target=executor,
                        value=0,
                        data=recovery_calls.remove_guardian(guardian=old.address),
                    )
                )
        calls += [
            userops.Call(
                target=executor, value=0, data=recovery_calls.propose_guardian(guardian=address)
            ),
            userops.Call(
                target=executor,
                value=0,
                data=recovery_calls.accept_guardian_with_signature(
                    account=account.address,
                    guardian=address,
                    deadline=deadline,
                    signature=signature,
                ),
            ),
        ]
        try:
            guardian = Guardian.objects.create(
                account=account, address=address, kind=Guardian.Kind.RECOVERY_KEY
            )
        except IntegrityError as exc:
            raise Conflict("guardian_exists", "This address already guards the account.") from exc
        operation = request_approval(
            user=user,
            account=account,
            kind=CREATE_RECOVERY_CODE,
            label="Replace your recovery code" if old else "Create a recovery code",
            call_data=userops.execute_batch_call_data(calls=calls),
            idempotency_key=f"{CREATE_RECOVERY_CODE}:{guardian.pk}",
            details={
                "guardian_id": guardian.pk,
                "guardian": address,
                "replaces": old.address if old else None,
            },
        )
        guardian = move_guardian(
            guardian_id=guardian.pk, to=G.PROPOSED, proposal_operation=operation
        )
        if old is not None:
            if len(calls) == 3:
                move_guardian(guardian_id=old.pk, to=old.status, removal_operation=operation)
            else:
                move_guardian(guardian_id=old.pk, to=G.REMOVED)
        record_event(
            kind=AuditEvent.Kind.GUARDIAN_CHANGED,
            user=user,
            client=client,
            action="recovery_code_created",
            guardian=address,
            replaces=old.address if old else None,
            operation_id=operation.pk,
        )
    return GuardianChange(guardian=guardian, operation=operation)


def revoke_recovery_code(*, user: User, client: ClientInfo) -> GuardianChange:
    """Remove the current code's guardian (a passkey-approved removeGuardian once it is on
    chain). 404 `recovery_code_not_found` when there is none."""
    code = current_code(account=smart_account_of(user=user))
    if code is None:
        raise NotFound("recovery_code_not_found", "You have no recovery code.")
    change = remove_guardian(user=user, guardian_id=code.pk, client=client)
    record_event(
        kind=AuditEvent.Kind.GUARDIAN_CHANGED,
        user=user,
        client=client,
        action="recovery_code_revoked",
        guardian=code.address,
    )
    return change


def _active_code(request: RecoveryRequest) -> Guardian:
    code = (
        Guardian.objects.filter(
            account=request.account, kind=Guardian.Kind.RECOVERY_KEY, status=G.ACTIVE
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    if code is None:
        raise NotFound("recovery_code_not_found", "This account has no active recovery code.")
    if code.used_at is not None:
        raise Conflict(
            "recovery_code_used", "This recovery code was already used: it works only once."
        )
    return code


def _initialize_typed_data(
    request: RecoveryRequest, code: Guardian, *, executor: str, deadline: int
) -> dict[str, Any]:
    return recovery_calls.initialize_recovery_typed_data(
        executor=executor,
        chain_id=request.account.chain_id,
        account=request.account.address,
        guardian=code.address,
        recovery_type=recovery_calls.RecoveryType.PASSKEY,
        data=bytes(request.recovery_data),
        nonce=_guardian_nonce(executor=executor, guardian=code.address),
        deadline=deadline,
    )


def recovery_typed_data(*, public_id: uuid.UUID) -> dict[str, Any]:
    """What the recovery key signs to start this request on chain."""
    request = _request(public_id)
    _ensure_pending_approval(request)
    code = _active_code(request)
    return _initialize_typed_data(
        request, code, executor=_executor(), deadline=_chain_time() + INITIALIZE_SIGNATURE_SECONDS
    )


def recover_with_code(
    *, public_id: uuid.UUID, deadline: int, signature: bytes, client: ClientInfo
) -> tuple[RecoveryRequest, ChainOperation]:
    """The recovery key's signature starts the request on chain: the relayer submits
    initializeRecoveryWithSignature (403 `recovery_code_mismatch` for another key's)."""
    request = _request(public_id)
    _ensure_pending_approval(request)
    code = _active_code(request)
    executor = _executor()
    _valid_deadline(deadline, longest=INITIALIZE_SIGNATURE_SECONDS + 300)
    typed = _initialize_typed_data(request, code, executor=executor, deadline=deadline)
    _signer_must_be(typed, signature, code.address)
    ensure_guardian_may_start(request=request, guardian=code)
    with transaction.atomic():
        request = _request(public_id, lock=True)
        _ensure_pending_approval(request)
        operation = create_relayer_call(
            kind=INITIALIZE_RECOVERY_WITH_CODE,
            label=f"Start the recovery of {request.user.username} with its recovery code",
            to=executor,
            data=recovery_calls.initialize_recovery_with_signature(
                account=request.account.address,
                recovery_type=recovery_calls.RecoveryType.PASSKEY,
                data=bytes(request.recovery_data),
                guardian=code.address,
                deadline=deadline,
                signature=signature,
            ),
            idempotency_key=_attempt_key(INITIALIZE_RECOVERY_WITH_CODE, request.pk, code.pk),
            account=request.account.address,
            details={"recovery": str(request.public_id), "guardian_id": code.pk},
        )
        request = move_request(
            request_id=request.pk,
            to=RecoveryRequest.Status.PENDING_APPROVAL,
            approved_by=code,
            approved_at=timezone.now(),
            initiate_operation=operation,
        )
        record_event(
            kind=AuditEvent.Kind.RECOVERY_APPROVED,
            user=request.user,
            client=client,
            recovery=str(request.public_id),
            account=request.account.address,
            method="recovery_code",
            guardian=code.address,
            operation_id=operation.pk,
        )
    return request, operation
