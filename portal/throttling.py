import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from portal.cache import RedisCache
from portal.client_info import client_address

logger = logging.getLogger(__name__)

# Counters kept in this process while the shared cache (Redis) cannot be reached.
_fallback_cache = LocMemCache("portal-throttle-fallback", {"MAX_ENTRIES": 100_000})
# Addresses whose window this process saw used up at a refused verify (CeremonyVerifyThrottle).
_spent_windows = LocMemCache("portal-throttle-spent", {"MAX_ENTRIES": 100_000})
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
        if self.limit is None:
            return True
        return self.count(self.window_key(request, view)) <= self.limit

    def window_key(self, request: Request, view: APIView) -> str:
        """The counter of this address in the current window (sets `now` and `window_ends`)."""
        assert self.period is not None  # noqa: S101 - only called with a rate
        self.now = self.timer()
        window = int(self.now // self.period)
        self.window_ends = (window + 1) * self.period
        return f"{self.get_cache_key(request, view)}:{window}"

    def count(self, key: str) -> int:
        """Count one request on `key`; its number in the window."""
        try:
            # The backend itself, not DRF's proxy to it (which hides its class).
            return self._count(caches[DEFAULT_CACHE_ALIAS], key)
        except Exception as exc:  # the cache backend's own errors (redis, OSError, ...)
            _log_fallback(exc)
            return self._count(_fallback_cache, key)

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


class CeremonyVerifyThrottle(AuthRateThrottle):
    """PORTAL_AUTH_RATE for a verify endpoint, whose ceremony was begun by an options request
    that AuthRateThrottle counted.

    A verify that completes its ceremony was paid for by those options: it is not counted (no
    round trip to the cache). A refused one (bad input, used or unknown ceremony, wrong
    signature, missing CSRF token, ...) is counted after its answer (`count_refusal`, called by
    CeremonyVerifyAPIView). Once an address's refusals, with its options, reach the limit, this
    process remembers that window as spent and refuses that address's next requests before
    their body is read; another process learns it at that address's next refusal there, so a
    window admits at most one refusal per process beyond the limit.
    """

    def allow_request(self, request: Request, view: APIView) -> bool:
        if self.limit is None:
            return True
        return _spent_windows.get(self.spent_key(self.window_key(request, view))) is None

    def count_refusal(self, request: Request, view: APIView) -> None:
        if self.limit is None:
            return
        key = self.window_key(request, view)
        if self.count(key) >= self.limit:
            timeout = self.window_ends - self.now + 1
            _spent_windows.set(self.spent_key(key), True, timeout=timeout)

    @staticmethod
    def spent_key(key: str) -> str:
        # Named as the counter is in the shared cache (with its KEY_PREFIX).
        return str(caches[DEFAULT_CACHE_ALIAS].make_key(key))


class CeremonyVerifyAPIView(APIView):
    """A view that completes a ceremony: CeremonyVerifyThrottle, and its refusals counted (a 429
    is not counted again)."""

    throttle_classes = [CeremonyVerifyThrottle]

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400 and response.status_code != 429:
            CeremonyVerifyThrottle().count_refusal(request, self)
        return response
