from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from portal.client_info import client_address


class AuthRateThrottle(SimpleRateThrottle):
    """PORTAL_AUTH_RATE per client address, shared by every ceremony endpoint."""

    scope = "auth"

    def get_rate(self) -> str:
        return str(settings.PORTAL_AUTH_RATE)

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}
