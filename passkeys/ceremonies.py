"""WebAuthn ceremonies kept server-side: created with a fresh challenge, used up exactly once, and
the assertion rules every sign-in-like verify shares (sign-in, re-authentication, approvals)."""

import secrets
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts.models import AuditEvent, User
from accounts.services import record_event
from passkeys import webauthn
from passkeys.models import Ceremony, Passkey
from portal.client_info import ClientInfo
from portal.errors import Conflict, NotFound, PortalError

CHALLENGE_BYTES = 32


def new_ceremony(*, purpose: str, **fields: Any) -> Ceremony:
    now = timezone.now()
    return Ceremony.objects.create(
        purpose=purpose,
        challenge=secrets.token_bytes(CHALLENGE_BYTES),
        created_at=now,
        expires_at=now + settings.PORTAL_CEREMONY_TTL,
        **fields,
    )


def consume_ceremony(*, ceremony_id: uuid.UUID, purpose: str, user: User | None = None) -> Ceremony:
    """Mark a live ceremony used. A single UPDATE, so two concurrent verifies cannot both win.

    With `user`, only that user's ceremony counts: anyone else's is not found (and not used up).
    """
    now = timezone.now()
    mine = Ceremony.objects.filter(ceremony_id=ceremony_id, purpose=purpose)
    if user is not None:
        mine = mine.filter(user=user)
    live = mine.filter(consumed_at__isnull=True, expires_at__gt=now)
    if live.update(consumed_at=now) == 1:
        return Ceremony.objects.select_related("user").get(ceremony_id=ceremony_id)

    ceremony = mine.first()
    if ceremony is None:
        raise NotFound("ceremony_not_found", "No such ceremony: start again.")
    if ceremony.consumed_at is not None:
        raise Conflict("ceremony_used", "This ceremony was already used: start again.")
    raise PortalError("ceremony_expired", "This ceremony has expired: start again.", status=410)


def verify_passkey_assertion(
    *,
    ceremony: Ceremony,
    credential: webauthn.AuthenticationCredential,
    client: ClientInfo,
) -> Passkey:
    """Check an assertion for a consumed ceremony, and record the passkey's use.

    The credential must be known; it must belong to the ceremony's user when the ceremony named
    one (or when a username was typed); and userHandle, when present, must be its owner's handle
    (required when nobody was named: that is how a discoverable sign-in finds the user).
    """
    passkey = Passkey.objects.select_related("user").filter(credential_id=credential.raw_id).first()
    if passkey is None:
        raise webauthn.WebAuthnRefused(
            "unknown_credential", "This passkey is not registered here.", status=400
        )
    owner = passkey.user
    user_handle = webauthn.user_handle_of(credential)
    named = ceremony.user_id is not None or bool(ceremony.username)
    if named and ceremony.user_id != owner.pk:
        raise webauthn.WebAuthnRefused(
            "credential_not_allowed", "This passkey is not one of the expected account's."
        )
    if (user_handle is None and not named) or (
        user_handle is not None and user_handle != bytes(owner.user_handle)
    ):
        raise webauthn.WebAuthnRefused(
            "user_handle_mismatch", "The passkey's user handle does not match its account."
        )
    try:
        verified = webauthn.verify_assertion(
            credential=credential,
            challenge=bytes(ceremony.challenge),
            public_key=bytes(passkey.public_key),
            stored_sign_count=passkey.sign_count,
        )
    except webauthn.CounterAnomaly as anomaly:
        record_event(
            kind=AuditEvent.Kind.COUNTER_ANOMALY,
            user=owner,
            client=client,
            passkey_id=passkey.pk,
            stored_sign_count=anomaly.stored,
            received_sign_count=anomaly.received,
        )
        raise
    now = timezone.now()
    Passkey.objects.filter(pk=passkey.pk).update(
        sign_count=verified.sign_count, backed_up=verified.backed_up, last_used_at=now
    )
    # What was just written, without reading the row (and its user) again.
    passkey.sign_count, passkey.backed_up, passkey.last_used_at = (
        verified.sign_count,
        verified.backed_up,
        now,
    )
    return passkey


def purge_stale_ceremonies() -> int:
    """Delete ceremonies that expired more than a day ago; they can never be used again."""
    cutoff = timezone.now() - timedelta(days=1)
    deleted, _ = Ceremony.objects.filter(expires_at__lt=cutoff).delete()
    return deleted
