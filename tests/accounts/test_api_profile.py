"""`PATCH /api/v1/me`: the display name, and the email address security notices go to."""

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import AuditEvent, TokenReauthentication, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(sign_up: Any) -> dict[str, str]:
    token = sign_up("alice", display_name="Alice")["token"]
    return {"Authorization": f"Bearer {token}"}


def stale(headers: dict[str, str]) -> None:
    """As if the sign-in and any later confirmation were six minutes ago."""
    six_minutes_ago = timezone.now() - timedelta(minutes=6)
    AuthToken.objects.update(created=six_minutes_ago)
    TokenReauthentication.objects.update(verified_at=six_minutes_ago)


def test_change_the_display_name(api_client: APIClient, alice: dict[str, str]) -> None:
    stale(alice)  # not a sensitive change

    response = api_client.patch(
        "/api/v1/me", {"display_name": "  Alice Liddell "}, format="json", headers=alice
    )

    assert response.status_code == 200
    assert response.json()["display_name"] == "Alice Liddell"
    event = AuditEvent.objects.get(kind="profile_updated")
    assert event.details == {"display_name": {"old": "Alice", "new": "Alice Liddell"}}


def test_setting_an_email_needs_a_fresh_passkey_confirmation(
    api_client: APIClient, alice: dict[str, str]
) -> None:
    stale(alice)

    response = api_client.patch(
        "/api/v1/me", {"email": "alice@example.com"}, format="json", headers=alice
    )

    assert response.status_code == 403
    assert response.json()["code"] == "reauthentication_required"
    assert User.objects.get().email == ""


def test_changing_the_email_tells_the_old_and_the_new_address(
    api_client: APIClient,
    alice: dict[str, str],
    celery_eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    User.objects.update(email="old@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.patch(
            "/api/v1/me", {"email": "new@example.com"}, format="json", headers=alice
        )

    assert response.status_code == 200
    assert response.json()["email"] == "new@example.com"
    assert sorted(m.to[0] for m in mail.outbox) == ["new@example.com", "old@example.com"]
    assert all("old@example.com to new@example.com" in m.body for m in mail.outbox)


def test_the_same_email_in_another_case_needs_no_confirmation(
    api_client: APIClient, alice: dict[str, str]
) -> None:
    User.objects.update(email="alice@example.com")
    stale(alice)

    response = api_client.patch(
        "/api/v1/me",
        {"display_name": "A", "email": "alice@example.com"},
        format="json",
        headers=alice,
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not an email"},
        {"email": 5},
        {"display_name": "x" * 65},
        {"display_name": "bad\u202ename"},
        {"display_name": ["a"]},
    ],
)
def test_bad_details_are_refused(
    api_client: APIClient, alice: dict[str, str], body: dict[str, Any]
) -> None:
    response = api_client.patch("/api/v1/me", body, format="json", headers=alice)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert User.objects.get().display_name == "Alice"
    assert not AuditEvent.objects.filter(kind="profile_updated").exists()


def test_nothing_changed_records_nothing(api_client: APIClient, alice: dict[str, str]) -> None:
    response = api_client.patch(
        "/api/v1/me", {"display_name": "Alice"}, format="json", headers=alice
    )

    assert response.status_code == 200
    assert not AuditEvent.objects.filter(kind="profile_updated").exists()


def test_needs_a_signed_in_user(api_client: APIClient) -> None:
    assert api_client.patch("/api/v1/me", {"display_name": "x"}, format="json").status_code == 401
