from typing import cast

from django.http import HttpRequest
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.models import User
from accounts.services import reauthenticated_until
from portal.errors import PortalError


def current_user(request: HttpRequest | Request) -> User:
    """The signed-in user of a view that requires one."""
    return cast(User, request.user)


def require_reauthentication(request: HttpRequest | Request) -> None:
    """Sensitive actions need a passkey assertion within PORTAL_REAUTH_WINDOW."""
    if reauthenticated_until(request=request) is None:
        raise PortalError(
            "reauthentication_required", "Confirm with one of your passkeys first.", status=403
        )


class ReauthenticatedRecently(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        require_reauthentication(request)
        return True
