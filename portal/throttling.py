import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from portal.cache import RedisCache
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

    One counter per address and fixed window (DRF's own throttle keeps, and rewrites on every
    request, the time of each request in the window: its cost grows with the rate). The counters
    live in the cache (Redis in production). When it cannot be reached, the limit is counted in
    this process instead (logged), so that nobody is locked out of signing up, in or approving
    an operation because Redis is down.
    """

    scope = "auth"

    def __init__(self) -> None:
        super().__init__()
        limit, period = self.parse_rate(self.get_rate())
        self.limit: int | None = limit
        self.period: int | None = period
        self.now = 0.0
        self.window_ends = 0.0

    def get_rate(self) -> str:
        return str(settings.PORTAL_AUTH_RATE)

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}

    def allow_request(self, request: Request, view: APIView) -> bool:
        if self.limit is None or self.period is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.period)
        self.window_ends = (window + 1) * self.period
        key = f"{self.get_cache_key(request, view)}:{window}"
        try:
            # The backend itself, not DRF's proxy to it (which hides its class).
            count = self._count(caches[DEFAULT_CACHE_ALIAS], key)
        except Exception as exc:  # the cache backend's own errors (redis, OSError, ...)
            _log_fallback(exc)
            count = self._count(_fallback_cache, key)
        return count <= self.limit

    def _count(self, cache: Any, key: str) -> int:
        """This request's number in the window: one atomic increment (or the first add)."""
        assert self.period is not None  # noqa: S101 - checked by allow_request
        if isinstance(cache, RedisCache):
            return cache.count(key, timeout=self.period + 1)
        try:
            return int(cache.incr(key))
        except ValueError:  # no counter yet in this window
            if cache.add(key, 1, timeout=self.period + 1):
                return 1
            return int(cache.incr(key))

    def wait(self) -> float:
        return max(self.window_ends - self.now, 1.0)
