"""`GET /healthz`: the database's status, the broker's when one is configured, and what the apps
above register (`register_health_check`: the chain's balances)."""

import logging
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

# name → a check returning {"status": "ok" | "degraded", ...} or None (nothing to report).
HealthCheck = Callable[[], dict[str, Any] | None]
_checks: dict[str, HealthCheck] = {}


def register_health_check(name: str, check: HealthCheck) -> None:
    """Show `check`'s answer under `name` in /healthz; `degraded` degrades the whole."""
    _checks[name] = check


def _database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        logger.warning("health: database unreachable: %s", type(exc).__name__)
        return "unavailable"
    return "ok"


def _broker_status() -> str | None:
    if not settings.REDIS_URL:
        return None
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
        client.ping()
    except redis.RedisError as exc:
        logger.warning("health: broker unreachable: %s", type(exc).__name__)
        return "unavailable"
    return "ok"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, Any] = {"database": _database_status()}
    broker = _broker_status()
    if broker is not None:
        checks["broker"] = broker
    degraded = broker not in (None, "ok")
    if checks["database"] == "ok":
        for name, check in _checks.items():
            report = check()
            if report is not None:
                checks[name] = report
                degraded = degraded or report.get("status") != "ok"
    # Only the database takes the portal out of service: without a broker, sign-in still works.
    if checks["database"] != "ok":
        overall, code = "unavailable", 503
    elif degraded:
        overall, code = "degraded", 200
    else:
        overall, code = "ok", 200
    return JsonResponse({"status": overall, **checks}, status=code)
