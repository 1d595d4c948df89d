import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from portal.client_info import client_address

logger = logging.getLogger(__name__)

# Counters kept in this process while the shared cache (Redis) cannot be reached.
_fallback_cache = LocMemCache("portal-throttle-fallback", {"MAX_ENTRIES": 100_000})
_LOG_EVERY_SECONDS = 60.0
_last_logged = 0.0


def _log_fallback(exc: Exception) -> None:
    """One line a minute at most, however many requests fall back."""
    global _last_logged
    now = time.monotonic()
    if now - _last_logged >= _LOG_EVERY_SECONDS:
        _last_logged = now
        logger.warning(
            "rate limit: the cache is unreachable (%s: %s); counting per process until it is back",
            type(exc).__name__,
            exc,
        )


class AuthRateThrottle(SimpleRateThrottle):
    """PORTAL_AUTH_RATE per client address, shared by every ceremony endpoint.

    The counters live in the cache (Redis in production). When it cannot be reached, the limit
    is counted in this process instead (logged), so that nobody is locked out of signing up, in
    or approving an operation because Redis is down.
    """

    scope = "auth"

    def get_rate(self) -> str:
        return str(settings.PORTAL_AUTH_RATE)

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}

    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            return bool(super().allow_request(request, view))
        except Exception as exc:  # the cache backend's own errors (redis, OSError, ...)
            if self.cache is _fallback_cache:
                raise
            _log_fallback(exc)
            self.cache: Any = _fallback_cache
            return bool(super().allow_request(request, view))
