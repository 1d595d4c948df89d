"""`/api/v1/me` and `/api/v1/auth/logout`: bearer tokens that are hashed, expiring, revocable."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import AuditEvent

pytestmark = pytest.mark.django_db


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_me_shows_the_signed_in_user(api_client: APIClient, sign_up: Any) -> None:
    token = sign_up("alice", display_name="Alice")["token"]

    response = api_client.get("/api/v1/me", headers=bearer(token))

    assert response.status_code == 200
    body = response.json()
    assert body["username"] == "alice"
    assert body["display_name"] == "Alice"
    assert body["email"] == ""
    assert {"id", "username", "display_name", "email"} <= set(body)


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer not-a-token", "Token abc", "Basic YWxpY2U6eA=="],
)
def test_me_without_a_valid_token_is_401(api_client: APIClient, header: str | None) -> None:
    response = api_client.get("/api/v1/me", headers={"Authorization": header} if header else {})

    assert response.status_code == 401
    assert response.json()["code"] in ("not_authenticated", "authentication_failed")


def test_token_is_stored_hashed(sign_up: Any) -> None:
    token = sign_up("alice")["token"]

    stored = AuthToken.objects.get()
    assert token not in (stored.digest, stored.token_key)
    assert token.startswith(stored.token_key)


def test_token_expires_after_the_configured_time(api_client: APIClient, sign_up: Any) -> None:
    token = sign_up("alice")["token"]
    stored = AuthToken.objects.get()
    assert stored.expiry is not None
    assert abs(stored.expiry - timezone.now() - timedelta(days=14)) < timedelta(minutes=1)
    AuthToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))

    assert api_client.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_logout_revokes_only_that_token(
    api_client: APIClient, sign_up: Any, login_options: Any, authenticator: Any
) -> None:
    first = sign_up("alice")["token"]
    options = login_options()
    second = api_client.post(
        "/api/v1/auth/login/verify",
        {
            "ceremony_id": options["ceremony_id"],
            "credential": authenticator.get(options["publicKey"]),
        },
        format="json",
    ).json()["token"]

    response = api_client.post("/api/v1/auth/logout", headers=bearer(first))

    assert response.status_code == 204
    assert api_client.get("/api/v1/me", headers=bearer(first)).status_code == 401
    assert api_client.get("/api/v1/me", headers=bearer(second)).status_code == 200
    assert AuditEvent.objects.filter(kind="token_revoked").count() == 1


def test_logout_without_a_token_is_401(api_client: APIClient) -> None:
    assert api_client.post("/api/v1/auth/logout").status_code == 401
