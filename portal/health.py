"""`GET /healthz`: the database's status, and the broker's when one is configured."""

import logging

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


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
    checks = {"database": _database_status()}
    broker = _broker_status()
    if broker is not None:
        checks["broker"] = broker
    # Only the database takes the portal out of service: without a broker, sign-in still works.
    if checks["database"] != "ok":
        overall, code = "unavailable", 503
    elif broker not in (None, "ok"):
        overall, code = "degraded", 200
    else:
        overall, code = "ok", 200
    return JsonResponse({"status": overall, **checks}, status=code)
