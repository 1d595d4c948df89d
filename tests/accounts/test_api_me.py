"""`/api/v1/me` resilience and `/api/v1/me/activity`."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent, User
from passkeys.models import Passkey

pytestmark = pytest.mark.django_db


def me(api_client: APIClient, token: str) -> dict[str, Any]:
    return dict(api_client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json())


def add_passkey(user: User, *, synced: bool, number: int) -> None:
    Passkey.objects.create(
        user=user,
        name=f"Extra {number}",
        credential_id=bytes([number]) * 16,
        public_key=b"\x00",
        backup_eligible=synced,
    )


@pytest.mark.parametrize(
    ("extra", "level", "reasons"),
    [
        ([], "at_risk", ["single_passkey", "no_synced_passkey"]),
        ([False], "at_risk", ["no_synced_passkey"]),
        ([True], "ok", []),
        ([False, False, False], "at_risk", ["no_synced_passkey"]),
    ],
)
def test_resilience(
    api_client: APIClient, sign_up: Any, extra: list[bool], level: str, reasons: list[str]
) -> None:
    token = sign_up("alice")["token"]
    user = User.objects.get()
    for number, synced in enumerate(extra, start=1):
        add_passkey(user, synced=synced, number=number)

    assert me(api_client, token)["resilience"] == {
        "level": level,
        "reasons": reasons,
        # No smart account here, so no guardian: the recovery app's warning.
        "warnings": ["no_guardian"],
        "facts": {"guardians": 0, "recovery_keys": 0},
    }


def test_one_synced_passkey_alone_is_still_at_risk(
    api_client: APIClient, sign_up: Any, authenticator: Any
) -> None:
    authenticator.backup_eligible = True
    token = sign_up("alice")["token"]

    assert me(api_client, token)["resilience"] == {
        "level": "at_risk",
        "reasons": ["single_passkey"],
        "warnings": ["no_guardian"],
        "facts": {"guardians": 0, "recovery_keys": 0},
    }


def test_activity_is_the_users_own_newest_first_and_paginated(
    api_client: APIClient, sign_up: Any, login_options: Any, authenticator: Any
) -> None:
    token = sign_up("alice")["token"]
    for _ in range(3):
        options = login_options()
        api_client.post(
            "/api/v1/auth/login/verify",
            {
                "ceremony_id": options["ceremony_id"],
                "credential": authenticator.get(options["publicKey"]),
            },
            format="json",
        )
    sign_up("bob")

    response = api_client.get(
        "/api/v1/me/activity?page_size=2", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert [e["kind"] for e in body["results"]] == ["login_succeeded", "login_succeeded"]
    assert body["next"]
    last = api_client.get(body["next"], headers={"Authorization": f"Bearer {token}"}).json()
    assert [e["kind"] for e in last["results"]] == ["login_succeeded", "signup"]
    assert set(body["results"][0]) == {
        "id",
        "kind",
        "created_at",
        "ip_address",
        "user_agent",
        "details",
    }
    assert AuditEvent.objects.filter(user__username="bob").exists()


def test_activity_needs_a_signed_in_user(api_client: APIClient) -> None:
    assert api_client.get("/api/v1/me/activity").status_code == 401
