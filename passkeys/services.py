"""Passkey use cases: sign-up, sign-in, re-authentication, adding, renaming and deleting passkeys.
Each verify consumes its ceremony exactly once (passkeys.ceremonies)."""

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import AuditEvent, User, new_user_handle
from accounts.selectors import smart_account_of
from accounts.services import (
    end_signins_of_passkey,
    guard_sensitive_action,
    notify_user,
    record_event,
    refusals_recorded,
)
from accounts.smart_accounts import chain_origin
from chain.selectors import latest_key_events
from passkeys import webauthn
from passkeys.ceremonies import (
    LoginCeremony,
    LoginChallenge,
    ceremony_used,
    check_passkey_assertion,
    consume_ceremony,
    consume_login_ceremony,
    new_ceremony,
    new_login_ceremony,
    open_login_ceremony,
    open_login_challenge,
    record_passkey_use,
    verify_passkey_assertion,
)
from passkeys.models import AuthenticatorProvider, Ceremony, Passkey
from passkeys.onchain import add_passkey_on_chain, open_account_for, remove_passkey_on_chain
from passkeys.selectors import credential_descriptors, sign_in_candidates
from passkeys.token_signins import record_token_sign_in
from portal.client_info import ClientInfo
from portal.errors import Conflict, NotFound, PortalError

DEFAULT_PASSKEY_NAME = "Passkey"


@dataclass(frozen=True)
class CeremonyOptions:
    ceremony: Ceremony | LoginCeremony
    public_key: dict[str, Any]


# --- sign-up ---------------------------------------------------------------------------------


def _ensure_username_free(username: str) -> None:
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict("username_taken", "That username is taken.")


def begin_registration(*, username: str, display_name: str) -> CeremonyOptions:
    username = username.lower()
    _ensure_username_free(username)
    ceremony = new_ceremony(
        purpose=Ceremony.Purpose.REGISTRATION,
        user_handle=new_user_handle(),
        username=username,
        display_name=display_name,
    )
    options = webauthn.registration_options(
        challenge=bytes(ceremony.challenge),
        user_handle=bytes(ceremony.user_handle or b""),
        username=username,
        display_name=display_name,
        exclude=[],
    )
    return CeremonyOptions(ceremony=ceremony, public_key=options)


def complete_registration(
    *,
    ceremony_id: uuid.UUID,
    credential: dict[str, Any],
    passkey_name: str | None,
    client: ClientInfo,
) -> tuple[User, Passkey]:
    """Create the user and their first passkey from a verified registration, in one transaction."""
    parsed = webauthn.parse_registration_credential(credential)
    ceremony = consume_ceremony(ceremony_id=ceremony_id, purpose=Ceremony.Purpose.REGISTRATION)
    verified = webauthn.verify_registration(credential=parsed, challenge=bytes(ceremony.challenge))
    try:
        with transaction.atomic():
            _ensure_username_free(ceremony.username)
            _ensure_credential_new(verified.credential_id)
            user = User.objects.create_user(
                ceremony.username,
                display_name=ceremony.display_name,
                user_handle=bytes(ceremony.user_handle or b""),
            )
            passkey = _store_passkey(user=user, verified=verified, name=passkey_name)
            record_event(
                kind=AuditEvent.Kind.SIGNUP, user=user, client=client, passkey_id=passkey.pk
            )
            open_account_for(user=user, passkey=passkey)
    except IntegrityError as exc:
        raise Conflict("username_taken", "That username is taken.") from exc
    return user, passkey


def _ensure_credential_new(credential_id: bytes) -> None:
    if Passkey.objects.filter(credential_id=credential_id).exists():
        raise Conflict("credential_already_registered", "This passkey is already registered.")


def _default_passkey_name(*, user: User, aaguid: uuid.UUID | None) -> str:
    """The provider's name when the catalog knows it ("iCloud Keychain"), else "Passkey";
    "iCloud Keychain 2" and so on when the user already has one of that name."""
    provider = AuthenticatorProvider.objects.filter(aaguid=aaguid).first() if aaguid else None
    base = provider.name[:60] if provider else DEFAULT_PASSKEY_NAME
    taken = set(Passkey.objects.filter(user=user).values_list("name", flat=True))
    name, suffix = base, 2
    while name in taken:
        name, suffix = f"{base} {suffix}", suffix + 1
    return name


def _store_passkey(
    *, user: User, verified: webauthn.VerifiedRegistration, name: str | None
) -> Passkey:
    now = timezone.now()
    return Passkey.objects.create(
        user=user,
        name=(name or "").strip() or _default_passkey_name(user=user, aaguid=verified.aaguid),
        credential_id=verified.credential_id,
        public_key=verified.public_key,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        transports=verified.transports,
        backup_eligible=verified.backup_eligible,
        backed_up=verified.backed_up,
        created_at=now,
        last_used_at=now,
    )


# --- sign-in ---------------------------------------------------------------------------------


def _decoy_credentials(username: str) -> list[webauthn.CredentialDescriptor]:
    """Stable stand-ins for an unknown username, so that its options look like a real user's."""
    key = settings.SECRET_KEY.encode()
    decoy_id = hmac.new(key, f"decoy-credential:{username}".encode(), hashlib.sha256).digest()
    return [
        webauthn.CredentialDescriptor(credential_id=decoy_id, transports=["hybrid", "internal"])
    ]


def begin_authentication(*, username: str | None) -> CeremonyOptions:
    """Username-first when a username is given; otherwise discoverable (the person picks).
    Nothing is written (see passkeys.ceremonies.new_login_ceremony)."""
    user_id = None
    allow: list[webauthn.CredentialDescriptor] = []
    if username:
        username = username.lower()
        user_id, allow = sign_in_candidates(username=username)
        if not allow:
            allow = _decoy_credentials(username)
    ceremony, challenge = new_login_ceremony(expected_user_id=user_id, named=bool(username))
    options = webauthn.authentication_options(challenge=challenge.challenge, allow=allow)
    return CeremonyOptions(ceremony=ceremony, public_key=options)


def _authenticated_passkey(
    *, ceremony_id: uuid.UUID, credential: dict[str, Any], client: ClientInfo
) -> tuple[LoginCeremony, Passkey]:
    """Check a sign-in; the passkey comes back with its user and its new sign count set, and its
    ceremony still to use up with what the sign-in writes. A refusal uses the ceremony up and is
    audited for the person the ceremony named (nobody in a discoverable one): their activity
    shows the attempt."""
    parsed = webauthn.parse_authentication_credential(credential)
    ceremony, passkey_read = open_login_ceremony(
        ceremony_id=ceremony_id, credential_id=parsed.raw_id
    )
    expected: LoginChallenge | None = None
    try:
        expected = open_login_challenge(
            ceremony=ceremony,
            challenge=webauthn.client_data_challenge(parsed.response.client_data_json),
        )
        passkey = check_passkey_assertion(
            passkey=passkey_read,
            challenge=expected.challenge,
            expected_user_id=expected.expected_user_id,
            named=expected.named,
            credential=parsed,
            client=client,
            record_use=False,
        )
    except PortalError as exc:
        named_id = expected.expected_user_id if expected is not None else None
        _refuse_sign_in(
            ceremony=ceremony,
            # Read only now: the refusal of a user deleted since the options names nobody.
            user=User.objects.filter(pk=named_id).first() if named_id is not None else None,
            client=client,
            reason=exc.code,
            credential_id=parsed.id,
        )
        raise
    if not passkey.user.is_active:
        _refuse_sign_in(
            ceremony=ceremony, user=passkey.user, client=client, reason="account_disabled"
        )
        raise PortalError("account_disabled", "This account is disabled.", status=403)
    return ceremony, passkey


def _refuse_sign_in(
    *, ceremony: LoginCeremony, user: User | None, client: ClientInfo, **details: Any
) -> None:
    """A refused sign-in uses up its ceremony (unless a concurrent verify did) and is audited."""
    consume_login_ceremony(ceremony=ceremony)
    record_event(kind=AuditEvent.Kind.LOGIN_FAILED, user=user, client=client, **details)


def complete_authentication(
    *, ceremony_id: uuid.UUID, credential: dict[str, Any], client: ClientInfo
) -> tuple[User, Passkey]:
    """Verify a sign-in (see _authenticated_passkey) and record it; the caller starts the
    session."""
    ceremony, passkey = _authenticated_passkey(
        ceremony_id=ceremony_id, credential=credential, client=client
    )
    if not consume_login_ceremony(ceremony=ceremony):
        raise ceremony_used()
    record_passkey_use(passkey=passkey)
    record_event(
        kind=AuditEvent.Kind.LOGIN_SUCCEEDED,
        user=passkey.user,
        client=client,
        passkey_id=passkey.pk,
    )
    return passkey.user, passkey


def sign_in_with_token(
    *, ceremony_id: uuid.UUID, credential: dict[str, Any], client: ClientInfo
) -> tuple[User, str]:
    """Verify a sign-in (see _authenticated_passkey) and give it a new API token."""
    ceremony, passkey = _authenticated_passkey(
        ceremony_id=ceremony_id, credential=credential, client=client
    )
    token = record_token_sign_in(ceremony=ceremony, passkey=passkey, client=client)
    return passkey.user, token


# --- re-authentication -----------------------------------------------------------------------


def begin_reauthentication(*, user: User) -> CeremonyOptions:
    ceremony = new_ceremony(purpose=Ceremony.Purpose.REAUTHENTICATION, user=user)
    options = webauthn.authentication_options(
        challenge=bytes(ceremony.challenge), allow=credential_descriptors(user=user)
    )
    return CeremonyOptions(ceremony=ceremony, public_key=options)


def complete_reauthentication(
    *, user: User, ceremony_id: uuid.UUID, credential: dict[str, Any], client: ClientInfo
) -> Passkey:
    """Check that the signed-in user holds one of their passkeys right now."""
    parsed = webauthn.parse_authentication_credential(credential)
    ceremony = consume_ceremony(
        ceremony_id=ceremony_id, purpose=Ceremony.Purpose.REAUTHENTICATION, user=user
    )
    with refusals_recorded(
        kind=AuditEvent.Kind.LOGIN_FAILED, user=user, client=client, during="reauthentication"
    ):
        passkey = verify_passkey_assertion(ceremony=ceremony, credential=parsed, client=client)
    record_event(
        kind=AuditEvent.Kind.REAUTHENTICATED, user=user, client=client, passkey_id=passkey.pk
    )
    return passkey


# --- managing passkeys -------------------------------------------------------------------------


def begin_passkey_registration(*, user: User, hints: list[str] | None = None) -> CeremonyOptions:
    """Options to add a passkey to a signed-in user; their passkeys are excluded."""
    guard_sensitive_action(action="passkey.add", user=user)
    ceremony = new_ceremony(purpose=Ceremony.Purpose.ADD_PASSKEY, user=user)
    options = webauthn.registration_options(
        challenge=bytes(ceremony.challenge),
        user_handle=bytes(user.user_handle),
        username=user.username,
        display_name=user.display_name,
        exclude=credential_descriptors(user=user),
        hints=hints,
    )
    return CeremonyOptions(ceremony=ceremony, public_key=options)


def complete_passkey_registration(
    *,
    user: User,
    ceremony_id: uuid.UUID,
    credential: dict[str, Any],
    name: str | None,
    client: ClientInfo,
) -> Passkey:
    guard_sensitive_action(action="passkey.add", user=user, client=client)
    parsed = webauthn.parse_registration_credential(credential)
    ceremony = consume_ceremony(
        ceremony_id=ceremony_id, purpose=Ceremony.Purpose.ADD_PASSKEY, user=user
    )
    verified = webauthn.verify_registration(credential=parsed, challenge=bytes(ceremony.challenge))
    try:
        with transaction.atomic():
            _ensure_credential_new(verified.credential_id)
            passkey = _store_passkey(user=user, verified=verified, name=name)
            add_passkey_on_chain(passkey=passkey)
            record_event(
                kind=AuditEvent.Kind.PASSKEY_ADDED,
                user=user,
                client=client,
                passkey_id=passkey.pk,
                name=passkey.name,
            )
            notify_user(
                user=user,
                subject="A passkey was added to your account",
                message=(
                    f'The passkey "{passkey.name}" was added to your account {user.username}. '
                    "If this was not you, sign in and delete it now."
                ),
            )
    except IntegrityError as exc:
        raise Conflict(
            "credential_already_registered", "This passkey is already registered."
        ) from exc
    return passkey


def _own_passkey(*, user: User, passkey_id: int, lock: bool = False) -> Passkey:
    passkeys = Passkey.objects.select_for_update() if lock else Passkey.objects.all()
    passkey = passkeys.filter(user=user, pk=passkey_id).first()
    if passkey is None:
        raise NotFound("passkey_not_found", "No such passkey.")
    return passkey


@transaction.atomic
def rename_passkey(*, user: User, passkey_id: int, name: str, client: ClientInfo) -> Passkey:
    passkey = _own_passkey(user=user, passkey_id=passkey_id, lock=True)
    old_name, passkey.name = passkey.name, name
    passkey.save(update_fields=["name"])
    record_event(
        kind=AuditEvent.Kind.PASSKEY_RENAMED,
        user=user,
        client=client,
        passkey_id=passkey.pk,
        old_name=old_name,
        name=name,
    )
    return passkey


def delete_passkey(
    *, user: User, passkey_id: int, client: ClientInfo, operator: User | None = None
) -> None:
    """Delete one of the user's passkeys, never the last one (`operator`: the staff member who
    deleted it in the admin, recorded in the audit event).

    The user's passkeys are locked first, so two concurrent deletions cannot leave none.
    """
    guard_sensitive_action(action="passkey.remove", user=user, client=client)
    with transaction.atomic():
        remaining = list(Passkey.objects.select_for_update().filter(user=user).order_by("pk"))
        passkey = next((p for p in remaining if p.pk == passkey_id), None)
        if passkey is None:
            raise NotFound("passkey_not_found", "No such passkey.")
        if len(remaining) == 1:
            raise Conflict("last_passkey", "This is your only passkey: add another one first.")
        remove_passkey_on_chain(passkey=passkey)
        end_signins_of_passkey(passkey=passkey, client=client)
        passkey.delete()
        record_event(
            kind=AuditEvent.Kind.PASSKEY_DELETED,
            user=user,
            client=client,
            passkey_id=passkey_id,
            name=passkey.name,
            **({"by_staff": operator.username} if operator is not None else {}),
        )
        notify_user(
            user=user,
            subject="A passkey was removed from your account",
            message=(
                f'The passkey "{passkey.name}" was removed from your account {user.username}. '
                "If this was not you, sign in and review your passkeys now."
            ),
        )


def begin_recovery_registration(*, user: User) -> CeremonyOptions:
    """Options to create a new passkey for `user`, who lost every device and is not signed in.
    The passkey is only verified here; it becomes theirs once a recovery adds it on chain."""
    ceremony = new_ceremony(purpose=Ceremony.Purpose.RECOVERY, user=user)
    options = webauthn.registration_options(
        challenge=bytes(ceremony.challenge),
        user_handle=bytes(user.user_handle),
        username=user.username,
        display_name=user.display_name,
        exclude=credential_descriptors(user=user),
    )
    return CeremonyOptions(ceremony=ceremony, public_key=options)


def verify_recovery_registration(
    *, user: User, ceremony_id: uuid.UUID, credential: dict[str, Any]
) -> webauthn.VerifiedRegistration:
    """The registration rules of sign-up, plus the chain's: the passkey is new and was made on
    the origin keys are registered under on chain. Nothing is stored."""
    parsed = webauthn.parse_registration_credential(credential)
    ceremony = consume_ceremony(
        ceremony_id=ceremony_id, purpose=Ceremony.Purpose.RECOVERY, user=user
    )
    verified = webauthn.verify_registration(credential=parsed, challenge=bytes(ceremony.challenge))
    origin = chain_origin()
    if webauthn.client_data_origin(parsed.response.client_data_json) != origin:
        raise PortalError(
            "origin_not_on_chain", f"Create the new passkey on {origin}: keys are bound to it."
        )
    _ensure_credential_new(verified.credential_id)
    return verified


def _onchain_state(*, user: User, credential_id: bytes) -> str:
    account = smart_account_of(user=user)
    if account is None:
        return Passkey.OnChain.PENDING
    credential = "0x" + credential_id.hex()
    latest = latest_key_events(chain_id=account.chain_id, keys=[(account.address, credential)])
    return {
        "PasskeyCreated": Passkey.OnChain.ACTIVE,
        "PasskeyRemoved": Passkey.OnChain.REMOVED,
    }.get(latest.get((account.address, credential), ""), Passkey.OnChain.PENDING)


@transaction.atomic
def store_recovered_passkey(
    *, user: User, verified: webauthn.VerifiedRegistration, name: str, client: ClientInfo | None
) -> Passkey:
    """Make a passkey that a recovery installed on chain one of the user's portal passkeys (its
    on-chain state read from the indexed events). Idempotent by credential id."""
    existing = Passkey.objects.filter(credential_id=verified.credential_id).first()
    if existing is not None:
        if existing.user_id != user.pk:
            raise Conflict("credential_already_registered", "This passkey is already registered.")
        return existing
    passkey = _store_passkey(user=user, verified=verified, name=name)
    passkey.last_used_at = None
    passkey.onchain = _onchain_state(user=user, credential_id=verified.credential_id)
    passkey.save(update_fields=["last_used_at", "onchain"])
    record_event(
        kind=AuditEvent.Kind.PASSKEY_ADDED,
        user=user,
        client=client,
        passkey_id=passkey.pk,
        name=passkey.name,
        via="recovery",
    )
    notify_user(
        user=user,
        subject="A passkey was added to your account by a recovery",
        message=(
            f'The passkey "{passkey.name}" was added to your account {user.username} by a '
            "recovery your guardians approved. If this was not you, sign in with a passkey you "
            "still have and remove it now."
        ),
    )
    return passkey
