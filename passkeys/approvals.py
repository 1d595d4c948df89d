"""A chain operation approved by a passkey: the one flow every feature uses to have a person sign
a user operation (adding or removing a passkey today; sessions and guardians next).

1. `request_approval`: the feature names the call (with a label the person reads); chain builds
   the sponsored user operation and stores it `awaiting_signature`; a ceremony whose challenge is
   its 32-byte hash is created with it.
2. `approval_options`: WebAuthn request options for that challenge, offering the person's passkeys
   that are active on chain (a used or expired ceremony is replaced, same challenge).
3. `approve_operation`: the assertion is verified with the sign-in rules, plus two of the chain's
   (the passkey is active on chain, the origin is the one keys are registered under), encoded for
   the WebAuthnValidator and handed to chain (`attach_signature`), which queues it.
"""

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import AuditEvent, SmartAccount, User
from accounts.selectors import operation_of, sponsored_operations_today
from accounts.services import record_event, refusals_recorded
from accounts.smart_accounts import chain_origin
from chain.models import ChainOperation
from chain.passkey_signatures import passkey_signature
from chain.pipeline.create import (
    attach_signature,
    create_user_operation,
    ensure_awaiting_signature,
    not_awaiting_error,
    signed_hash,
)
from chain.selectors import deployment_address
from passkeys import webauthn
from passkeys.ceremonies import consume_ceremony, verify_passkey_assertion
from passkeys.models import Ceremony, Passkey
from passkeys.selectors import credential_descriptors
from portal.client_info import ClientInfo
from portal.errors import Conflict, NotFound, PortalError


def _new_ceremony(*, user: User, operation: ChainOperation) -> Ceremony:
    now = timezone.now()
    return Ceremony.objects.create(
        purpose=Ceremony.Purpose.OPERATION,
        user=user,
        operation=operation,
        challenge=signed_hash(operation),
        created_at=now,
        expires_at=operation.expires_at or now + settings.PORTAL_CEREMONY_TTL,
    )


def request_approval(
    *,
    user: User,
    account: SmartAccount,
    kind: str,
    label: str,
    call_data: bytes,
    idempotency_key: str,
    details: dict[str, Any],
) -> ChainOperation:
    """A user operation of the user's deployed account calling `call_data`, waiting for one of
    their passkeys. The same idempotency key returns the operation already created, unchanged.
    A person gets PORTAL_SPONSORED_OPERATIONS_PER_DAY of them (429 `sponsorship_limit_reached`)."""
    if account.user_id != user.pk:
        raise NotFound("account_not_found", "No such account.")
    if account.status != SmartAccount.Status.DEPLOYED:
        raise Conflict("account_not_deployed", "The account is not deployed on chain yet.")
    with transaction.atomic():
        # One request of a person at a time past this point, so two cannot both take the last
        # sponsored operation of the day.
        User.objects.select_for_update().only("pk").get(pk=user.pk)
        existing = ChainOperation.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None and (
            sponsored_operations_today(user=user) >= settings.PORTAL_SPONSORED_OPERATIONS_PER_DAY
        ):
            raise PortalError(
                "sponsorship_limit_reached",
                "You have asked for as many changes on chain as a day allows: try again tomorrow.",
                status=429,
            )
        operation = create_user_operation(
            account=account.address,
            kind=kind,
            label=label,
            call_data=call_data,
            idempotency_key=idempotency_key,
            details=details,
        )
        if not Ceremony.objects.filter(operation=operation).exists():
            _new_ceremony(user=user, operation=operation)
    return operation


def _current_ceremony(*, user: User, operation: ChainOperation) -> Ceremony | None:
    return (
        Ceremony.objects.filter(operation=operation, user=user, purpose=Ceremony.Purpose.OPERATION)
        .order_by("-pk")
        .first()
    )


def approval_options(*, user: User, operation_id: int) -> tuple[ChainOperation, dict[str, Any]]:
    """WebAuthn request options whose challenge is the operation's hash; a used or expired
    ceremony is replaced by a fresh one (same challenge) while the operation can be signed."""
    operation = operation_of(user=user, operation_id=operation_id)
    ensure_awaiting_signature(operation)
    ceremony = _current_ceremony(user=user, operation=operation)
    if (
        ceremony is None
        or ceremony.consumed_at is not None
        or ceremony.expires_at <= timezone.now()
    ):
        with transaction.atomic():
            locked = ChainOperation.objects.select_for_update().get(pk=operation.pk)
            if locked.status != ChainOperation.Status.AWAITING_SIGNATURE:
                raise not_awaiting_error()
            _new_ceremony(user=user, operation=locked)
    options = webauthn.authentication_options(
        challenge=signed_hash(operation), allow=credential_descriptors(user=user, on_chain=True)
    )
    return operation, options


def approve_operation(
    *, user: User, operation_id: int, credential: dict[str, Any], client: ClientInfo
) -> ChainOperation:
    """Verify the browser's assertion over the operation's hash, encode it for the validator and
    hand it to chain (its submission is queued on commit). A refusal changes nothing but the
    ceremony, which is used up as at sign-in: ask for options again to retry."""
    parsed = webauthn.parse_authentication_credential(credential)
    operation = operation_of(user=user, operation_id=operation_id)
    ensure_awaiting_signature(operation)
    current = _current_ceremony(user=user, operation=operation)
    if current is None:
        raise Conflict("ceremony_used", "This approval was already used: start again.")
    ceremony = consume_ceremony(
        ceremony_id=current.ceremony_id, purpose=Ceremony.Purpose.OPERATION, user=user
    )
    with refusals_recorded(
        kind=AuditEvent.Kind.OPERATION_REFUSED, user=user, client=client, operation_id=operation.pk
    ):
        passkey = _verify_approval(ceremony=ceremony, credential=parsed, client=client)
    signature = passkey_signature(
        validator=deployment_address("WebAuthnValidator"),
        authenticator_data=parsed.response.authenticator_data,
        client_data_json=parsed.response.client_data_json,
        signature_der=parsed.response.signature,
        credential_id=parsed.raw_id,
    ).encoded
    with transaction.atomic():
        operation = attach_signature(
            operation_id=operation.pk,
            signature=signature,
            details={"signed_with_passkey_id": passkey.pk},
        )
        record_event(
            kind=AuditEvent.Kind.OPERATION_APPROVED,
            user=user,
            client=client,
            operation_id=operation.pk,
            operation_kind=operation.kind,
            passkey_id=passkey.pk,
        )
    return operation


def _verify_approval(
    *, ceremony: Ceremony, credential: webauthn.AuthenticationCredential, client: ClientInfo
) -> Passkey:
    """Login's rules, and two of the chain's: the passkey is on chain, and so is the origin."""
    passkey = verify_passkey_assertion(ceremony=ceremony, credential=credential, client=client)
    if passkey.onchain != Passkey.OnChain.ACTIVE:
        raise PortalError(
            "passkey_not_on_chain", "This passkey is not active on your account on chain yet."
        )
    origin = chain_origin()
    if webauthn.client_data_origin(credential.response.client_data_json) != origin:
        raise PortalError(
            "origin_not_on_chain", f"Approve chain operations on {origin}: keys are bound to it."
        )
    return passkey
