"""With the Redis that holds the cache stopped, people still sign up and sign in: the rate limit
counts per process instead (and says so in the log); nothing else a request needs is in Redis."""

import logging
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from chain.devtools.authenticator import SoftAuthenticator
from tests.chain.conftest import RedisServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_cache(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisServer]:
    """A private redis-server holding the portal's cache, which a test may stop."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer()
    server.start()
    settings.CACHES = {
        "default": {
            "BACKEND": "portal.cache.RedisCache",
            "LOCATION": server.url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    monkeypatch.setattr("portal.throttling._last_logged", 0.0, raising=False)
    yield server
    server.stop()


def sign_up_and_in(client: APIClient) -> None:
    authenticator = SoftAuthenticator()
    options = client.post("/api/v1/auth/register/options", {"username": "alice"}, format="json")
    assert options.status_code == 200, options.content
    verified = client.post(
        "/api/v1/auth/register/verify",
        {
            "ceremony_id": options.json()["ceremony_id"],
            "credential": authenticator.create(options.json()["publicKey"]),
        },
        format="json",
    )
    assert verified.status_code == 201, verified.content
    options = client.post("/api/v1/auth/login/options", {"username": "alice"}, format="json")
    assert options.status_code == 200, options.content
    signed_in = client.post(
        "/api/v1/auth/login/verify",
        {
            "ceremony_id": options.json()["ceremony_id"],
            "credential": authenticator.get(options.json()["publicKey"]),
        },
        format="json",
    )
    assert signed_in.status_code == 200, signed_in.content
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {signed_in.json()['token']}"})
    assert me.json()["username"] == "alice"


def test_the_rate_limit_counts_in_redis_while_it_is_up(redis_cache: RedisServer) -> None:
    import redis

    client = APIClient(REMOTE_ADDR="198.51.100.20")
    assert client.post("/api/v1/auth/login/options", {}, format="json").status_code == 200

    assert client.post("/api/v1/auth/login/options", {}, format="json").status_code == 200

    server = redis.Redis.from_url(redis_cache.url)
    [key] = server.keys("*throttle_auth_198.51.100.20*")
    assert server.get(key) == b"2"
    assert 0 < server.ttl(key) <= 61  # the window's counter goes with the window


def test_with_redis_stopped_sign_up_and_sign_in_still_work(
    redis_cache: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    redis_cache.stop()
    client = APIClient(REMOTE_ADDR="198.51.100.21")

    with caplog.at_level(logging.WARNING, logger="portal.throttling"):
        sign_up_and_in(client)

    assert User.objects.filter(username="alice").exists()
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.throttling"]
    assert len(lines) == 1  # one line, not one per request
    assert "cache is unreachable" in lines[0] and "per process" in lines[0]


@pytest.mark.parametrize(
    ("url", "address", "answers"),
    [
        ("/api/v1/auth/login/options", "198.51.100.22", [200, 200, 200, 429]),
        # Refused verifies count (a verify that completes its ceremony does not).
        ("/api/v1/auth/login/verify", "198.51.100.24", [400, 400, 400, 429]),
    ],
)
def test_with_redis_stopped_the_limit_still_holds_per_process(
    redis_cache: RedisServer, settings: Any, url: str, address: str, answers: list[int]
) -> None:
    settings.PORTAL_AUTH_RATE = "3/min"
    redis_cache.stop()
    client = APIClient(REMOTE_ADDR=address)  # counted in this process: one address per case

    assert [client.post(url, {}, format="json").status_code for _ in range(4)] == answers


def test_the_page_sign_in_works_with_redis_stopped(redis_cache: RedisServer) -> None:
    from django.test import Client

    authenticator = SoftAuthenticator()
    api = APIClient(REMOTE_ADDR="198.51.100.23")
    registration = api.post("/api/v1/auth/register/options", {"username": "bob"}, format="json")
    api.post(
        "/api/v1/auth/register/verify",
        {
            "ceremony_id": registration.json()["ceremony_id"],
            "credential": authenticator.create(registration.json()["publicKey"]),
        },
        format="json",
    )
    redis_cache.stop()
    browser = Client(enforce_csrf_checks=True)
    browser.get("/login")
    options = browser.post("/api/v1/auth/login/options", {}, content_type="application/json")

    response = browser.post(
        "/login/verify",
        {
            "ceremony_id": options.json()["ceremony_id"],
            "credential": authenticator.get(options.json()["publicKey"]),
        },
        content_type="application/json",
        headers={"X-CSRFToken": browser.cookies["csrftoken"].value},
    )

    assert response.status_code == 200, response.content
    assert browser.get("/account").status_code == 200
