"""A JSON body nested deep enough to overflow the C stack is refused before any parser recurses
into it, and the worker that received it keeps answering. Request bodies are capped to what the
API needs, and the rate limit runs before the body is read."""

import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from passkeys.models import Ceremony
from tests.portal.server import BASE_DIR, Gunicorn

DEEP = 99_000


def deep_body(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


@pytest.fixture
def server(transactional_db: None, tmp_path: Path) -> Iterator[Gunicorn]:
    # The body cap raised to Django's own upload limit: the nesting bound is what is tested here.
    portal = Gunicorn(
        workers=1,
        log_path=tmp_path / "gunicorn.log",
        PORTAL_AUTH_RATE="1000/min",
        PORTAL_MAX_JSON_BYTES=str(256 * 1024),
    )
    portal.start()
    yield portal
    portal.stop()


def post(
    server: Gunicorn, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """POST over a fresh connection; a worker that dies answers with a dropped connection."""
    connection = http.client.HTTPConnection("localhost", server.port, timeout=30)
    try:
        connection.request(
            "POST", path, body, {"Content-Type": "application/json", **(headers or {})}
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def healthy(server: Gunicorn) -> bool:
    connection = http.client.HTTPConnection("localhost", server.port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/v1/auth/login/options", {}),
        ("/api/v1/auth/register/verify", {}),
        # Any CSRF cookie/header pair passes the CSRF check; the body is what is refused.
        ("/login/verify", {"Cookie": "csrftoken=" + "a" * 32, "X-CSRFToken": "a" * 32}),
    ],
)
def test_a_body_nested_99000_deep_is_a_400_and_the_worker_keeps_answering(
    server: Gunicorn, path: str, headers: dict[str, str]
) -> None:
    # A first request imports the whole portal (the chain libraries included) into the worker.
    assert post(server, "/api/v1/auth/login/options", b"{}")[0] == 200

    try:
        status, body = post(server, path, deep_body(DEEP), headers)
    except (ConnectionError, http.client.RemoteDisconnected) as exc:
        pytest.fail(f"the worker died on a deep body ({exc!r}): {server.log()[-1500:]}")

    assert status == 400, body
    assert body["code"] == "json_too_deep"
    assert healthy(server)
    assert post(server, "/api/v1/auth/login/options", b"{}")[0] == 200
    assert "Worker (pid" not in server.log()  # gunicorn's line for a worker that died


def test_the_recursion_limit_is_sane_once_the_chain_libraries_are_loaded() -> None:
    script = (
        "import sys, django; django.setup(); "
        "import chain.pipeline, accounts.smart_accounts, eth_account; "
        "print(sys.getrecursionlimit())"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
        env={"DJANGO_SETTINGS_MODULE": "portal.settings", "PATH": "/usr/bin:/bin"},
    )
    assert int(result.stdout.strip().splitlines()[-1]) <= 1000


pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("depth", [65, 500])
def test_nesting_beyond_the_bound_is_refused_before_parsing(
    api_client: APIClient, depth: int
) -> None:
    body = '{"username": ' + "[" * depth + "]" * depth + "}"

    response = api_client.generic(
        "POST", "/api/v1/auth/login/options", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "json_too_deep"
    assert not Ceremony.objects.exists()


def test_nesting_within_the_bound_reaches_validation(api_client: APIClient) -> None:
    body = '{"username": "x", "extra": ' + "[" * 63 + "]" * 63 + "}"

    response = api_client.generic(
        "POST", "/api/v1/auth/login/options", body, content_type="application/json"
    )

    assert response.status_code == 200


def test_brackets_inside_strings_do_not_count(api_client: APIClient) -> None:
    body = json.dumps({"username": "[" * 1000 + '\\"{' * 100})

    response = api_client.generic(
        "POST", "/api/v1/auth/login/options", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"  # too long a name, not too deep


def test_a_body_larger_than_the_api_needs_is_a_413(api_client: APIClient, settings: Any) -> None:
    body = json.dumps({"username": "alice", "padding": "x" * 70_000})
    assert len(body) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # below Django's own limit

    response = api_client.generic(
        "POST", "/api/v1/auth/register/options", body, content_type="application/json"
    )

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert not Ceremony.objects.exists()


def test_a_body_that_is_not_utf8_is_malformed(api_client: APIClient) -> None:
    body = json.dumps({"username": "alice"}).encode("utf-16")

    response = api_client.generic(
        "POST",
        "/api/v1/auth/register/options",
        body,  # type: ignore[arg-type]
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


def test_the_rate_limit_runs_before_the_page_verify_body_is_read(settings: Any) -> None:
    settings.PORTAL_AUTH_RATE = "1/min"
    client = APIClient(REMOTE_ADDR="198.51.100.9", enforce_csrf_checks=True)
    client.cookies["csrftoken"] = "a" * 32
    headers = {"X-CSRFToken": "a" * 32}
    unreadable = "{not json"
    first = client.generic(
        "POST", "/login/verify", unreadable, content_type="application/json", headers=headers
    )
    assert first.status_code == 400

    second = client.generic(
        "POST", "/login/verify", unreadable, content_type="application/json", headers=headers
    )

    assert second.status_code == 429
    assert second.json()["code"] == "rate_limited"
