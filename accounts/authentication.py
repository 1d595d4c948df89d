"""API tokens (knox) that keep their sign-in's last_seen_at current."""

from typing import Any

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from rest_framework.request import Request


class PortalTokenAuthentication(TokenAuthentication):
    def authenticate(self, request: Request) -> Any:
        result = super().authenticate(request)
        if result is not None and isinstance(result[1], AuthToken):
            from accounts.services import touch_token_signin

            touch_token_signin(request=request, token=result[1])
        return result


class PortalTokenScheme(KnoxTokenScheme):
    target_class = "accounts.authentication.PortalTokenAuthentication"
