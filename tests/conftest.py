import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from chain.devtools.authenticator import SoftAuthenticator


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgresql") and connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only (make test runs on it)")


@pytest.fixture(autouse=True)
def _isolated_cache(settings: Any) -> None:
    """A fresh cache namespace per test, so rate-limit counters never leak between tests."""
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
    }


@pytest.fixture
def api_client() -> APIClient:
    return APIClient(REMOTE_ADDR="203.0.113.7")


@pytest.fixture
def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator()


SignUp = Callable[..., dict[str, Any]]


@pytest.fixture
def sign_up(api_client: APIClient, authenticator: SoftAuthenticator, db: None) -> SignUp:
    """Sign up through the API with the software authenticator; returns the verify response."""

    def _sign_up(username: str = "alice", **body: Any) -> dict[str, Any]:
        options = api_client.post(
            "/api/v1/auth/register/options", {"username": username, **body}, format="json"
        )
        assert options.status_code == 200, options.content
        credential = authenticator.create(options.json()["publicKey"])
        verified = api_client.post(
            "/api/v1/auth/register/verify",
            {"ceremony_id": options.json()["ceremony_id"], "credential": credential},
            format="json",
        )
        assert verified.status_code == 201, verified.content
        return dict(verified.json())

    return _sign_up


@pytest.fixture
def login_options(api_client: APIClient) -> Callable[..., dict[str, Any]]:
    def _login_options(username: str | None = None) -> dict[str, Any]:
        body = {"username": username} if username else {}
        response = api_client.post("/api/v1/auth/login/options", body, format="json")
        assert response.status_code == 200, response.content
        return dict(response.json())

    return _login_options


@pytest.fixture
def celery_eager() -> Any:
    """Run Celery tasks in-process, for tests of what a task does rather than of delivery."""
    from portal.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False
