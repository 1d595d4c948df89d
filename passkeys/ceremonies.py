"""WebAuthn ceremonies: created with a fresh challenge, used up exactly once, and the assertion
rules every sign-in-like verify shares (sign-in, re-authentication, approvals).

Most ceremonies are rows written by their options; a sign-in's lives in its challenge until its
verify writes it down as used (see new_login_ceremony)."""

import hmac
import secrets
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.models import AuditEvent, User
from accounts.services import record_event
from passkeys import webauthn
from passkeys.models import Ceremony, Passkey
from passkeys.selectors import (
    PASSKEY_WITH_OWNER_JOIN,
    PASSKEY_WITH_OWNER_MATCH,
    passkey_from_row,
    passkey_with_owner,
    passkey_with_owner_columns,
)
from portal.client_info import ClientInfo
from portal.db import default_database
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
    """Check an assertion for a consumed ceremony, and record the passkey's use (see
    check_passkey_assertion: the ceremony's user is expected when it named one or a username)."""
    return check_passkey_assertion(
        passkey=passkey_with_owner(credential_id=credential.raw_id),
        challenge=bytes(ceremony.challenge),
        expected_user_id=ceremony.user_id,
        named=ceremony.user_id is not None or bool(ceremony.username),
        credential=credential,
        client=client,
    )


def unknown_credential() -> webauthn.WebAuthnRefused:
    """The refusal of a credential no passkey here has (or no longer has)."""
    return webauthn.WebAuthnRefused(
        "unknown_credential", "This passkey is not registered here.", status=400
    )


def check_passkey_assertion(
    *,
    passkey: Passkey | None,
    challenge: bytes,
    expected_user_id: int | None,
    named: bool,
    credential: webauthn.AuthenticationCredential,
    client: ClientInfo,
    record_use: bool = True,
) -> Passkey:
    """Check an assertion over a used-up challenge, and record the passkey's use (its new sign
    count, backup state and last use; with record_use=False they are only set on the passkey
    returned, for the caller to write with the rest of what it writes).

    `passkey` is the one registered with the credential's id, its user loaded (None: there is
    none, see passkeys.selectors.passkey_with_owner). The credential must be known; it must
    belong to `expected_user_id` when the ceremony was `named` (a user, or a typed username
    that may match nobody); and userHandle, when present, must be its owner's handle (required
    when nobody was named: that is how a discoverable sign-in finds the user).
    """
    if passkey is None:
        raise unknown_credential()
    owner = passkey.user
    user_handle = webauthn.user_handle_of(credential)
    if named and expected_user_id != owner.pk:
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
            challenge=challenge,
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
    passkey.sign_count, passkey.backed_up, passkey.last_used_at = (
        verified.sign_count,
        verified.backed_up,
        timezone.now(),
    )
    if record_use:
        record_passkey_use(passkey=passkey)
    return passkey


PASSKEY_USE_FIELDS = ("sign_count", "backed_up", "last_used_at")


def record_passkey_use(*, passkey: Passkey) -> bool:
    """Write what check_passkey_assertion set on `passkey` (without reading the row again).
    False if the passkey is gone."""
    written = Passkey.objects.filter(pk=passkey.pk).update(
        **{name: getattr(passkey, name) for name in PASSKEY_USE_FIELDS}
    )
    return written == 1


# --- sign-in ceremonies, written down only when used ----------------------------------------------
# Sign-in options write nothing. The ceremony id says itself that the portal made it and until
# when it holds: its expiry, random bytes and an HMAC of both under the portal's secret key. The
# challenge is the id, then whom the ceremony expects, sealed with AES-GCM (the id as associated
# data): sealed, not only signed, because options for a username nobody has must not be told
# apart from a real one's. The verify writes the ceremony down as used in one INSERT that a second
# use of the same id cannot repeat (even concurrently: the unique id makes the second wait for the
# first's transaction, then find it); that row stays until a day after the ceremony expired
# (purge_stale_ceremonies), so a ceremony is used at most once over its whole life.

_LOGIN_SALT = "passkeys.ceremonies.login"
# The ceremony id: expiry (Unix seconds), 6 random bytes, then 6 bytes of their HMAC-SHA256.
_LOGIN_ID = struct.Struct(">I6s")
_LOGIN_ID_TAG_BYTES = 6
# Sealed in the challenge: the expected user's id (0: none) and whether a username was typed.
_LOGIN_SEALED = struct.Struct(">Q?")
_ID_BYTES, _NONCE_BYTES, _AEAD_TAG_BYTES = 16, 12, 16
LOGIN_CHALLENGE_BYTES = _ID_BYTES + _NONCE_BYTES + _LOGIN_SEALED.size + _AEAD_TAG_BYTES


@dataclass(frozen=True)
class LoginCeremony:
    ceremony_id: uuid.UUID
    expires_at: datetime


@dataclass(frozen=True)
class LoginChallenge:
    challenge: bytes
    expected_user_id: int | None
    named: bool


def _login_id_tag(fields: bytes) -> bytes:
    return salted_hmac(f"{_LOGIN_SALT}.id", fields, algorithm="sha256").digest()[
        :_LOGIN_ID_TAG_BYTES
    ]


def _login_cipher() -> AESGCM:
    return AESGCM(salted_hmac(f"{_LOGIN_SALT}.seal", b"aes-256-gcm", algorithm="sha256").digest())


def new_login_ceremony(
    *, expected_user_id: int | None, named: bool
) -> tuple[LoginCeremony, LoginChallenge]:
    """A sign-in ceremony and its challenge, nothing written."""
    expires = int((timezone.now() + settings.PORTAL_CEREMONY_TTL).timestamp())
    fields = _LOGIN_ID.pack(expires, secrets.token_bytes(_LOGIN_ID.size - 4))
    ceremony_id = uuid.UUID(bytes=fields + _login_id_tag(fields))
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = _login_cipher().encrypt(
        nonce, _LOGIN_SEALED.pack(expected_user_id or 0, named), ceremony_id.bytes
    )
    return (
        LoginCeremony(ceremony_id=ceremony_id, expires_at=datetime.fromtimestamp(expires, tz=UTC)),
        LoginChallenge(
            challenge=ceremony_id.bytes + nonce + sealed,
            expected_user_id=expected_user_id,
            named=named,
        ),
    )


def open_login_ceremony(
    *, ceremony_id: uuid.UUID, credential_id: bytes
) -> tuple[LoginCeremony, Passkey | None]:
    """A sign-in ceremony, refused as a stored ceremony would be when the portal did not make it
    (or made it for something else), when it expired, or when it was used. With it, the passkey
    registered with `credential_id` and its owner (see passkeys.selectors.passkey_with_owner):
    on PostgreSQL in the same statement. Nothing is written: what the verify writes next uses the
    ceremony up, its sign-in (passkeys.token_signins, or the session's) or its refusal."""
    fields, tag = ceremony_id.bytes[: _LOGIN_ID.size], ceremony_id.bytes[_LOGIN_ID.size :]
    if not hmac.compare_digest(tag, _login_id_tag(fields)):
        raise NotFound("ceremony_not_found", "No such ceremony: start again.")
    expires_at = datetime.fromtimestamp(_LOGIN_ID.unpack(fields)[0], tz=UTC)
    if expires_at <= timezone.now():
        raise PortalError("ceremony_expired", "This ceremony has expired: start again.", status=410)
    if connection.vendor == "postgresql":
        used, passkey = _read_use_and_passkey(ceremony_id, credential_id)
    else:
        used = Ceremony.objects.filter(ceremony_id=ceremony_id).exists()
        passkey = None if used else passkey_with_owner(credential_id=credential_id)
    if used:
        raise ceremony_used()
    return LoginCeremony(ceremony_id=ceremony_id, expires_at=expires_at), passkey


def ceremony_used() -> Conflict:
    return Conflict("ceremony_used", "This ceremony was already used: start again.")


def used_login_ceremony(ceremony: LoginCeremony) -> dict[str, Any]:
    """The row that writes `ceremony` down as used (column: value)."""
    return {
        "ceremony_id": ceremony.ceremony_id,
        "purpose": Ceremony.Purpose.AUTHENTICATION,
        "challenge": b"",
        "username": "",
        "display_name": "",
        "created_at": ceremony.expires_at - settings.PORTAL_CEREMONY_TTL,
        "expires_at": ceremony.expires_at,
        "consumed_at": timezone.now(),
    }


def consume_login_ceremony(*, ceremony: LoginCeremony) -> bool:
    """Write `ceremony` down as used: this INSERT is its single use. False if a concurrent verify
    used it first."""
    return insert_unless_taken(used_login_ceremony(ceremony))


def open_login_challenge(*, ceremony: LoginCeremony, challenge: bytes | None) -> LoginChallenge:
    """What `challenge` (read from the client data) says the ceremony expects; refused when it is
    not this ceremony's challenge."""
    mismatch = webauthn.WebAuthnRefused(
        "challenge_mismatch", "The credential answers another challenge."
    )
    ceremony_id = ceremony.ceremony_id.bytes
    if challenge is None or len(challenge) != LOGIN_CHALLENGE_BYTES:
        raise mismatch
    if challenge[:_ID_BYTES] != ceremony_id:
        raise mismatch
    nonce = challenge[_ID_BYTES : _ID_BYTES + _NONCE_BYTES]
    sealed = challenge[_ID_BYTES + _NONCE_BYTES :]
    try:
        user_id, named = _LOGIN_SEALED.unpack(_login_cipher().decrypt(nonce, sealed, ceremony_id))
    except InvalidTag:
        raise mismatch from None
    return LoginChallenge(challenge=challenge, expected_user_id=user_id or None, named=named)


def _read_use_and_passkey(
    ceremony_id: uuid.UUID, credential_id: bytes
) -> tuple[bool, Passkey | None]:
    """Whether the ceremony was used, and the passkey with `credential_id`: one SELECT."""
    db = default_database()
    field = cast(Any, Ceremony._meta.get_field("ceremony_id"))
    with db.cursor() as cursor:
        cursor.execute(
            _read_use_and_passkey_sql(), [field.get_db_prep_value(ceremony_id, db), credential_id]
        )
        row = cursor.fetchone()
    return bool(row[0]), passkey_from_row(row[1:])


@cache
def _read_use_and_passkey_sql() -> str:
    return (
        "SELECT EXISTS (SELECT FROM passkeys_ceremony WHERE ceremony_id = %s), "  # noqa: S608 - names from the models
        f"{passkey_with_owner_columns()} "
        f"FROM (SELECT 1) AS one LEFT JOIN ({PASSKEY_WITH_OWNER_JOIN}) "
        f"ON {PASSKEY_WITH_OWNER_MATCH}"
    )


def ceremony_values(db: Any, values: dict[str, Any]) -> list[Any]:
    return [
        cast(Any, Ceremony._meta.get_field(name)).get_db_prep_save(value, db)
        for name, value in values.items()
    ]


def insert_unless_taken(values: dict[str, Any]) -> bool:
    """INSERT a ceremony row (the other columns are nullable) unless its ceremony_id is taken:
    ON CONFLICT DO NOTHING, which PostgreSQL and SQLite both speak, and which the ORM cannot say
    whether it wrote. True if it wrote."""
    sql = insert_unless_taken_sql(connection.vendor, tuple(values))
    with connection.cursor() as cursor:
        cursor.execute(sql, ceremony_values(connection, values))
        return cursor.rowcount == 1


@cache
def insert_unless_taken_sql(vendor: str, names: tuple[str, ...]) -> str:
    columns = ", ".join(connection.ops.quote_name(name) for name in names)  # plain columns
    placeholders = ", ".join(["%s"] * len(names))
    return (
        f"INSERT INTO passkeys_ceremony ({columns}) VALUES ({placeholders}) "  # noqa: S608
        "ON CONFLICT (ceremony_id) DO NOTHING"
    )


def purge_stale_ceremonies() -> int:
    """Delete ceremonies that expired more than a day ago; they can never be used again."""
    cutoff = timezone.now() - timedelta(days=1)
    deleted, _ = Ceremony.objects.filter(expires_at__lt=cutoff).delete()
    return deleted
