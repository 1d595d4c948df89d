import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.request import Request

from accounts.models import AuditEvent, TokenReauthentication, User
from accounts.tasks import send_security_email
from portal.client_info import ClientInfo
from portal.errors import PortalError
from portal.guards import check_sensitive_action

logger = logging.getLogger(__name__)

SESSION_REAUTHENTICATED_AT = "reauthenticated_at"


def record_event(
    *, kind: str, user: User | None, client: ClientInfo | None, **details: Any
) -> AuditEvent:
    return AuditEvent.objects.create(
        kind=kind,
        user=user,
        ip_address=client.ip_address if client else None,
        user_agent=client.user_agent if client else "",
        details=details,
    )


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


@transaction.atomic
def issue_token(*, user: User) -> str:
    """A new API token for a login that has just verified a passkey (so it starts out fresh)."""
    instance, token = AuthToken.objects.create(user=user, expiry=settings.PORTAL_TOKEN_TTL)
    TokenReauthentication.objects.create(token=instance, verified_at=timezone.now())
    return token


@transaction.atomic
def revoke_token(*, token: AuthToken, client: ClientInfo) -> None:
    user = token.user
    token.delete()
    record_event(kind=AuditEvent.Kind.TOKEN_REVOKED, user=user, client=client, via="api")


# --- re-authentication ("sudo mode") ---------------------------------------------------------


def mark_reauthenticated(*, request: HttpRequest | Request) -> datetime:
    """Record a passkey assertion by the user behind this request's token or session."""
    now = timezone.now()
    token = getattr(request, "auth", None)
    if isinstance(token, AuthToken):
        TokenReauthentication.objects.update_or_create(token=token, defaults={"verified_at": now})
    else:
        request.session[SESSION_REAUTHENTICATED_AT] = now.isoformat()
    return now + settings.PORTAL_REAUTH_WINDOW


def reauthenticated_until(*, request: HttpRequest | Request) -> datetime | None:
    token = getattr(request, "auth", None)
    verified_at: datetime | None
    if isinstance(token, AuthToken):
        verified_at = (
            TokenReauthentication.objects.filter(token=token)
            .values_list("verified_at", flat=True)
            .first()
        )
    else:
        stamp = request.session.get(SESSION_REAUTHENTICATED_AT)
        verified_at = datetime.fromisoformat(stamp) if stamp else None
    if verified_at is None:
        return None
    until: datetime = verified_at + settings.PORTAL_REAUTH_WINDOW
    return until if until > timezone.now() else None


# --- profile -----------------------------------------------------------------------------------


@transaction.atomic
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
        check_sensitive_action(action="account.email_change")
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
                    f"{previous_email or '(none)'} to {user.email or '(none)'}. If this was not "
                    "you, sign in and review your passkeys now."
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
