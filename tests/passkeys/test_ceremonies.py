"""Ceremonies live server-side: single use, five minutes, never two successful verifies."""

import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import SignIn, User
from chain.devtools.authenticator import SoftAuthenticator
from passkeys.ceremonies import purge_stale_ceremonies
from passkeys.models import Ceremony

Options = Callable[..., dict[str, Any]]


def register_options(api_client: APIClient, username: str = "alice") -> dict[str, Any]:
    return dict(
        api_client.post(
            "/api/v1/auth/register/options", {"username": username}, format="json"
        ).json()
    )


@pytest.mark.django_db
def test_ceremony_expires_after_five_minutes(
    api_client: APIClient, authenticator: SoftAuthenticator
) -> None:
    options = register_options(api_client)
    ceremony = Ceremony.objects.get(ceremony_id=options["ceremony_id"])
    assert ceremony.expires_at - ceremony.created_at == timedelta(minutes=5)
    Ceremony.objects.filter(pk=ceremony.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = api_client.post(
        "/api/v1/auth/register/verify",
        {
            "ceremony_id": options["ceremony_id"],
            "credential": authenticator.create(options["publicKey"]),
        },
        format="json",
    )

    assert response.status_code == 410
    assert response.json()["code"] == "ceremony_expired"
    assert not User.objects.exists()


@pytest.mark.django_db
def test_ceremony_cannot_be_used_twice(
    api_client: APIClient, authenticator: SoftAuthenticator, sign_up: Any, login_options: Options
) -> None:
    sign_up("alice")
    options = login_options()
    credential = authenticator.get(options["publicKey"])
    body = {"ceremony_id": options["ceremony_id"], "credential": credential}
    assert api_client.post("/api/v1/auth/login/verify", body, format="json").status_code == 200

    replay = api_client.post("/api/v1/auth/login/verify", body, format="json")

    assert replay.status_code == 409
    assert replay.json()["code"] == "ceremony_used"


@pytest.mark.django_db
def test_a_failed_verify_uses_up_the_ceremony(
    api_client: APIClient, authenticator: SoftAuthenticator, sign_up: Any, login_options: Options
) -> None:
    sign_up("alice")
    options = login_options()
    bad = authenticator.get(options["publicKey"], tamper_signature=True)
    good = authenticator.get(options["publicKey"])
    url = "/api/v1/auth/login/verify"
    api_client.post(url, {"ceremony_id": options["ceremony_id"], "credential": bad}, format="json")

    retry = api_client.post(
        url, {"ceremony_id": options["ceremony_id"], "credential": good}, format="json"
    )

    assert retry.json()["code"] == "ceremony_used"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "ceremony_id", ["00000000-0000-0000-0000-000000000000", "registration-ceremony"]
)
def test_unknown_or_other_purpose_ceremony_is_not_found(
    api_client: APIClient, authenticator: SoftAuthenticator, sign_up: Any, ceremony_id: str
) -> None:
    sign_up("alice")
    registration = register_options(api_client, "bob")
    if ceremony_id == "registration-ceremony":
        ceremony_id = registration["ceremony_id"]
    credential = authenticator.get({"challenge": registration["publicKey"]["challenge"]})

    response = api_client.post(
        "/api/v1/auth/login/verify",
        {"ceremony_id": ceremony_id, "credential": credential},
        format="json",
    )

    assert response.status_code == 404
    assert response.json()["code"] == "ceremony_not_found"


def race(url: str, body: dict[str, Any], *, address: str, requests: int = 4) -> list[int]:
    """POST the same body from `requests` threads released at once; their status codes."""
    start = threading.Barrier(requests)
    results: list[int] = []

    def attempt() -> None:
        try:
            start.wait()
            response = APIClient(REMOTE_ADDR=address).post(url, body, format="json")
            results.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.postgresql  # SQLite's in-memory test database locks tables, never waits
@pytest.mark.django_db(transaction=True)
def test_concurrent_verifies_of_one_ceremony_only_one_wins(
    authenticator: SoftAuthenticator,
) -> None:
    """Two requests race with the same valid credential; exactly one gets a token."""
    client = APIClient(REMOTE_ADDR="203.0.113.7")
    options = register_options(client)
    credential = authenticator.create(options["publicKey"])
    body = {"ceremony_id": options["ceremony_id"], "credential": credential}

    results = race("/api/v1/auth/register/verify", body, address="203.0.113.8")

    assert sorted(results) == [201, 409, 409, 409]
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_stale_ceremonies_are_purged(api_client: APIClient) -> None:
    old = register_options(api_client, "alice")
    register_options(api_client, "bob")
    Ceremony.objects.filter(ceremony_id=old["ceremony_id"]).update(
        expires_at=timezone.now() - timedelta(days=2)
    )

    assert purge_stale_ceremonies() == 1
    assert list(Ceremony.objects.values_list("username", flat=True)) == ["bob"]


# --- sign-in ceremonies: nothing written by the options, used up by the verify -------------------


def sign_in_body(authenticator: SoftAuthenticator, options: dict[str, Any]) -> dict[str, Any]:
    return {
        "ceremony_id": options["ceremony_id"],
        "credential": authenticator.get(options["publicKey"]),
    }


@pytest.mark.django_db
def test_sign_in_options_write_nothing(sign_up: Any, login_options: Options) -> None:
    sign_up("alice")
    before = Ceremony.objects.count()

    login_options("alice")
    login_options("nobody")
    login_options()

    assert Ceremony.objects.count() == before


@pytest.mark.django_db
def test_a_sign_in_ceremony_expires(
    api_client: APIClient,
    authenticator: SoftAuthenticator,
    sign_up: Any,
    login_options: Options,
    settings: Any,
) -> None:
    sign_up("alice")
    settings.PORTAL_CEREMONY_TTL = timedelta(0)
    options = login_options()
    settings.PORTAL_CEREMONY_TTL = timedelta(minutes=5)

    response = api_client.post(
        "/api/v1/auth/login/verify", sign_in_body(authenticator, options), format="json"
    )

    assert response.status_code == 410
    assert response.json()["code"] == "ceremony_expired"


@pytest.mark.django_db
def test_a_sign_in_cannot_be_replayed_after_signing_out(
    api_client: APIClient, authenticator: SoftAuthenticator, sign_up: Any, login_options: Options
) -> None:
    """The used ceremony outlives the sign-in it opened: ending the sign-in frees nothing."""
    sign_up("alice")
    body = sign_in_body(authenticator, login_options())
    token = api_client.post("/api/v1/auth/login/verify", body, format="json").json()["token"]
    logout = api_client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert logout.status_code == 204

    replay = api_client.post("/api/v1/auth/login/verify", body, format="json")

    assert replay.status_code == 409
    assert replay.json()["code"] == "ceremony_used"


@pytest.mark.django_db
def test_an_assertion_for_another_sign_in_ceremony_is_refused(
    api_client: APIClient, authenticator: SoftAuthenticator, sign_up: Any, login_options: Options
) -> None:
    """An assertion made for one ceremony, sent with the id of another live one: refused, and
    that other ceremony is used up."""
    sign_up("alice")
    captured = authenticator.get(login_options()["publicKey"])
    other = login_options()
    url = "/api/v1/auth/login/verify"

    response = api_client.post(
        url, {"ceremony_id": other["ceremony_id"], "credential": captured}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "challenge_mismatch"
    retry = api_client.post(url, sign_in_body(authenticator, other), format="json")
    assert retry.json()["code"] == "ceremony_used"


@pytest.mark.django_db
@pytest.mark.parametrize("flip", [0, 9, 15])
def test_a_made_up_sign_in_ceremony_id_is_not_found(
    api_client: APIClient,
    authenticator: SoftAuthenticator,
    sign_up: Any,
    login_options: Options,
    flip: int,
) -> None:
    """An id the portal did not make (here: one of its own with a byte changed, in its expiry,
    its random part or its HMAC) is not found, whatever challenge the credential answers."""
    sign_up("alice")
    options = login_options()
    forged = bytearray(uuid.UUID(options["ceremony_id"]).bytes)
    forged[flip] ^= 0x01

    response = api_client.post(
        "/api/v1/auth/login/verify",
        {
            "ceremony_id": str(uuid.UUID(bytes=bytes(forged))),
            "credential": authenticator.get(options["publicKey"]),
        },
        format="json",
    )

    assert response.status_code == 404
    assert response.json()["code"] == "ceremony_not_found"


@pytest.mark.postgresql  # SQLite's in-memory test database locks tables, never waits
@pytest.mark.django_db(transaction=True)
def test_concurrent_sign_ins_with_one_ceremony_only_one_wins(
    authenticator: SoftAuthenticator,
) -> None:
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    registration = register_options(client)
    created = client.post(
        "/api/v1/auth/register/verify",
        {
            "ceremony_id": registration["ceremony_id"],
            "credential": authenticator.create(registration["publicKey"]),
        },
        format="json",
    )
    assert created.status_code == 201
    options = client.post("/api/v1/auth/login/options", {}, format="json").json()
    body = sign_in_body(authenticator, options)

    results = race("/api/v1/auth/login/verify", body, address="203.0.113.10")

    assert sorted(results) == [200, 409, 409, 409]
    assert SignIn.objects.count() == 2  # the sign-up's and one sign-in's
