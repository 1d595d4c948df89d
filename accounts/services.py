from typing import Any

from django.conf import settings
from django.db import transaction
from knox.models import AuthToken

from accounts.models import AuditEvent, User
from portal.client_info import ClientInfo


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


def issue_token(*, user: User) -> str:
    """A new API token for one login: random, stored hashed, expiring after PORTAL_TOKEN_TTL."""
    _, token = AuthToken.objects.create(user=user, expiry=settings.PORTAL_TOKEN_TTL)
    return token


@transaction.atomic
def revoke_token(*, token: AuthToken, client: ClientInfo) -> None:
    user = token.user
    token.delete()
    record_event(kind=AuditEvent.Kind.LOGOUT, user=user, client=client, via="api")
