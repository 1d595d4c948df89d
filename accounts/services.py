import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import login, logout
from django.db import transaction
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone
from knox.models import AuthToken, get_digest_token
from knox.settings import CONSTANTS
from rest_framework.request import Request

from accounts.models import AuditEvent, SignIn, TokenReauthentication, User
from accounts.tasks import send_security_email
from portal.authentication import django_request
from portal.client_info import ClientInfo
from portal.errors import NotFound, PortalError
from portal.guards import check_sensitive_action

logger = logging.getLogger(__name__)

SESSION_REAUTHENTICATED_AT = "reauthenticated_at"
SESSION_SIGNIN_ID = "signin_id"
SESSION_SEEN_AT = "signin_seen_at"
# A sign-in's last_seen_at (and address) is written at most this often.
LAST_SEEN_EVERY = timedelta(minutes=1)


def new_event(
    *, kind: str, user: User | None, client: ClientInfo | None, **details: Any
) -> AuditEvent:
    """An audit event, not yet saved (record_event saves it)."""
    return AuditEvent(
        kind=kind,
        user=user,
        ip_address=client.ip_address if client else None,
        user_agent=client.user_agent if client else "",
        details=details,
    )


def record_event(
    *, kind: str, user: User | None, client: ClientInfo | None, **details: Any
) -> AuditEvent:
    event = new_event(kind=kind, user=user, client=client, **details)
    event.save(force_insert=True)
    return event


@contextmanager
def refusals_recorded(
    *, kind: str, user: User | None, client: ClientInfo | None, **details: Any
) -> Iterator[None]:
    """Record a refusal raised inside the block as an audit event (with its code as `reason`)
    before it propagates."""
    try:
        yield
    except PortalError as exc:
        record_event(kind=kind, user=user, client=client, reason=exc.code, **details)
        raise


def guard_sensitive_action(*, action: str, user: User, client: ClientInfo | None = None) -> None:
    """portal.guards' check of a sensitive action (the lockdown), its refusal audit-logged for
    the person. Call it before the action's transaction opens, so the record is kept."""
    with refusals_recorded(
        kind=AuditEvent.Kind.ACTION_REFUSED, user=user, client=client, action=action
    ):
        check_sensitive_action(action=action)


@dataclass(frozen=True)
class TokenSignIn:
    """A new API token and its sign-in, not yet saved; `token` is what the client is given
    (only its digest is stored)."""

    token: str
    auth_token: AuthToken
    signin: SignIn


def new_token_sign_in(*, user: User, passkey: Model, client: ClientInfo) -> TokenSignIn:
    """A new API token for a login that has just verified `passkey`, not yet saved. It starts
    out fresh: its creation is its first passkey confirmation (see reauthenticated_until)."""
    now = timezone.now()
    digest, token = get_digest_token()
    expiry = now + settings.PORTAL_TOKEN_TTL
    auth_token = AuthToken(
        digest=digest,
        token_key=token[: CONSTANTS.TOKEN_KEY_LENGTH],
        user=user,
        created=now,
        expiry=expiry,
    )
    signin = SignIn(
        user=user,
        kind=SignIn.Kind.TOKEN,
        token=auth_token,
        passkey_id=passkey.pk,
        ip_address=client.ip_address,
        user_agent=client.user_agent,
        created_at=now,
        last_seen_at=now,
        expires_at=expiry,
    )
    return TokenSignIn(token=token, auth_token=auth_token, signin=signin)


@transaction.atomic(savepoint=False)  # inside the sign-in's own transaction: no savepoint
def issue_token(*, user: User, passkey: Model, client: ClientInfo) -> str:
    """A new API token for a login that has just verified `passkey` (see new_token_sign_in)."""
    new = new_token_sign_in(user=user, passkey=passkey, client=client)
    new.auth_token.save(force_insert=True)
    new.signin.save(force_insert=True)
    return new.token


def start_session(*, request: HttpRequest, user: User, passkey: Model) -> None:
    """Sign `user` in on this browser (a new session key), fresh: `passkey` was just verified."""
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    now = timezone.now()
    client = ClientInfo.from_request(request)
    request.session[SESSION_REAUTHENTICATED_AT] = now.isoformat()
    request.session[SESSION_SEEN_AT] = now.isoformat()
    signin = SignIn.objects.create(
        user=user,
        kind=SignIn.Kind.SESSION,
        session_key=request.session.session_key,
        passkey_id=passkey.pk,
        ip_address=client.ip_address,
        user_agent=client.user_agent,
        created_at=now,
        last_seen_at=now,
        expires_at=request.session.get_expiry_date(),
    )
    request.session[SESSION_SIGNIN_ID] = signin.pk


@transaction.atomic
def revoke_token(*, token: AuthToken, client: ClientInfo) -> None:
    user = token.user
    token.delete()
    record_event(kind=AuditEvent.Kind.TOKEN_REVOKED, user=user, client=client, via="api")


def end_session(*, request: HttpRequest | Request, via: str) -> None:
    """Sign this browser out: its session and its sign-in end."""
    http_request = django_request(request)
    user = http_request.user
    if user.is_authenticated:
        record_event(
            kind=AuditEvent.Kind.LOGOUT,
            user=user,  # type: ignore[misc]
            client=ClientInfo.from_request(http_request),
            via=via,
        )
    session_key = http_request.session.session_key
    if session_key:
        SignIn.objects.filter(session_key=session_key).delete()
    logout(http_request)


# --- where a person is signed in -----------------------------------------------------------------


def current_signin_id(*, request: HttpRequest | Request) -> int | None:
    """The sign-in behind this request: its token's, or its session's."""
    token = getattr(request, "auth", None)
    if isinstance(token, AuthToken):
        return SignIn.objects.filter(token=token).values_list("pk", flat=True).first()
    signin_id = django_request(request).session.get(SESSION_SIGNIN_ID)
    return int(signin_id) if signin_id is not None else None


def _session_store() -> Any:
    return import_module(settings.SESSION_ENGINE).SessionStore


def end_signins(
    *, signins: Iterable[SignIn], client: ClientInfo | None, reason: str
) -> list[SignIn]:
    """End sign-ins: each one's token or session is deleted (its sudo mode with it), and each
    ending is audited. Sessions and tokens also go when a sign-in row is deleted any other way
    (accounts.signals); this is the audited way."""
    ended = []
    for signin in signins:
        record_event(
            kind=AuditEvent.Kind.SIGNIN_ENDED,
            user=signin.user,
            client=client,
            signin_id=signin.pk,
            signin_kind=signin.kind,
            passkey_id=signin.passkey_id,
            reason=reason,
        )
        signin.delete()
        ended.append(signin)
    return ended


def end_signins_of_passkey(*, passkey: Model, client: ClientInfo | None) -> list[SignIn]:
    """A passkey is being deleted: whatever it signed in ends with it."""
    signins = SignIn.objects.select_related("user").filter(passkey_id=passkey.pk)
    return end_signins(signins=list(signins), client=client, reason="passkey_deleted")


@transaction.atomic
def end_signin(*, user: User, signin_id: int, client: ClientInfo) -> None:
    """Sign out one of the user's other sign-ins (the caller checked sudo mode)."""
    signin = SignIn.objects.select_related("user").filter(user=user, pk=signin_id).first()
    if signin is None or signin.expires_at <= timezone.now():
        raise NotFound("signin_not_found", "No such sign-in.")
    end_signins(signins=[signin], client=client, reason="signed_out_elsewhere")


@transaction.atomic
def end_other_signins(*, user: User, current_id: int | None, client: ClientInfo) -> int:
    """Sign out everywhere but here (the caller checked sudo mode)."""
    others = SignIn.objects.select_related("user").filter(user=user)
    if current_id is not None:
        others = others.exclude(pk=current_id)
    return len(end_signins(signins=list(others), client=client, reason="signed_out_others"))


def touch_signin(
    *, request: HttpRequest | Request, signin_id: int, seen_at: datetime | None
) -> bool:
    """Keep a browser sign-in's last_seen_at and address current, writing at most once a minute
    (`seen_at`: when it was last written). True when it wrote."""
    now = timezone.now()
    if seen_at is not None and now - seen_at < LAST_SEEN_EVERY:
        return False
    SignIn.objects.filter(pk=signin_id).update(
        last_seen_at=now, ip_address=ClientInfo.from_request(django_request(request)).ip_address
    )
    return True


def touch_token_signin(*, request: HttpRequest | Request, token: AuthToken) -> None:
    """The same for an API token: one UPDATE that changes nothing within the minute."""
    now = timezone.now()
    SignIn.objects.filter(token=token, last_seen_at__lt=now - LAST_SEEN_EVERY).update(
        last_seen_at=now, ip_address=ClientInfo.from_request(django_request(request)).ip_address
    )


def forget_ended_session(*, request: HttpRequest | Request) -> None:
    """When this request's own sign-in was just ended (e.g. its passkey deleted), drop the
    session it still holds in memory, so that nothing saves it again."""
    http_request = django_request(request)
    signin_id = http_request.session.get(SESSION_SIGNIN_ID)
    if signin_id is not None and not SignIn.objects.filter(pk=signin_id).exists():
        logout(http_request)


# --- re-authentication ("sudo mode") ---------------------------------------------------------


def mark_reauthenticated(
    *, request: HttpRequest | Request, passkey: Model | None = None
) -> datetime:
    """Record a passkey assertion by the user behind this request's token or session. The
    sign-in is then held by `passkey`: deleting the passkey it signed in with no longer ends it,
    deleting this one does."""
    now = timezone.now()
    token = getattr(request, "auth", None)
    if isinstance(token, AuthToken):
        TokenReauthentication.objects.update_or_create(token=token, defaults={"verified_at": now})
        signins = SignIn.objects.filter(token=token)
    else:
        session = django_request(request).session
        session[SESSION_REAUTHENTICATED_AT] = now.isoformat()
        signin_id = session.get(SESSION_SIGNIN_ID)
        signins = (
            SignIn.objects.filter(pk=signin_id) if signin_id is not None else SignIn.objects.none()
        )
    if passkey is not None:
        signins.exclude(passkey_id=passkey.pk).update(passkey_id=passkey.pk)
    return now + settings.PORTAL_REAUTH_WINDOW


def reauthenticated_until(*, request: HttpRequest | Request) -> datetime | None:
    token = getattr(request, "auth", None)
    verified_at: datetime | None
    if isinstance(token, AuthToken):
        confirmed = (
            TokenReauthentication.objects.filter(token=token)
            .values_list("verified_at", flat=True)
            .first()
        )
        # Tokens are only issued by a passkey sign-in: creating one was its first confirmation.
        verified_at = max(confirmed, token.created) if confirmed else token.created
    else:
        stamp = request.session.get(SESSION_REAUTHENTICATED_AT)
        verified_at = datetime.fromisoformat(stamp) if stamp else None
    if verified_at is None:
        return None
    until: datetime = verified_at + settings.PORTAL_REAUTH_WINDOW
    return until if until > timezone.now() else None


# --- profile -----------------------------------------------------------------------------------


def update_profile(
    *,
    user: User,
    client: ClientInfo,
    display_name: str | None = None,
    email: str | None = None,
) -> User:
    """Change the display name and/or the email address (where security notices go).

    A new email address is told to the old one too: someone who took over a session cannot
    quietly redirect the notices.
    """
    if email is not None and email != user.email:
        guard_sensitive_action(action="account.email_change", user=user, client=client)
    with transaction.atomic():
        changes: dict[str, Any] = {}
        previous_email = user.email
        if display_name is not None and display_name != user.display_name:
            changes["display_name"] = {"old": user.display_name, "new": display_name}
            user.display_name = display_name
        if email is not None and email != user.email:
            changes["email"] = {"old": user.email, "new": email}
            user.email = email
        if not changes:
            return user
        user.save(update_fields=[field for field in ("display_name", "email") if field in changes])
        record_event(kind=AuditEvent.Kind.PROFILE_UPDATED, user=user, client=client, **changes)
        if "email" in changes:
            for address in {previous_email, user.email} - {""}:
                notify_address(
                    address=address,
                    subject="The email address of your account changed",
                    message=(
                        f"The email address of your account {user.username} changed from "
                        f"{previous_email or '(none)'} to {user.email or '(none)'}. "
                        "If this was not you, sign in and review your passkeys now."
                    ),
                )
        return user


# --- notifications ---------------------------------------------------------------------------


def notify_user(*, user: User, subject: str, message: str) -> None:
    """Email the user after the current transaction commits, when they have an address."""
    if user.email:
        notify_address(address=user.email, subject=subject, message=message)


def notify_address(*, address: str, subject: str, message: str) -> None:
    """Queue a security email once the current transaction commits.

    Best effort: a broker that cannot take the message is logged, and the action still stands.
    """

    def send() -> None:
        try:
            send_security_email.delay(to=address, subject=subject, message=message)
        except Exception as exc:
            logger.warning("could not queue a security email (%s): %s", subject, exc)

    transaction.on_commit(send)
