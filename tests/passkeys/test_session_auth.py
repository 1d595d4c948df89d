"""Pages call the API with their session: CSRF applies, and sudo mode is per session."""

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.services import SESSION_REAUTHENTICATED_AT
from chain.devtools.authenticator import SoftAuthenticator
from passkeys.models import Passkey

pytestmark = pytest.mark.django_db


def page_login(client: Client, authenticator: SoftAuthenticator, **extra: Any) -> Any:
    options = client.post("/api/v1/auth/login/options", {}, content_type="application/json").json()
    return client.post(
        "/login/verify",
        {
            "ceremony_id": options["ceremony_id"],
            "credential": authenticator.get(options["publicKey"]),
            **extra,
        },
        content_type="application/json",
        headers={"X-CSRFToken": client.cookies["csrftoken"].value},
    )


@pytest.fixture
def browser(sign_up: Any, authenticator: SoftAuthenticator) -> Client:
    sign_up("alice")
    client = Client(enforce_csrf_checks=True)
    client.get("/login")
    assert page_login(client, authenticator).status_code == 200
    return client


def test_page_login_starts_a_fresh_session(browser: Client) -> None:
    assert browser.get("/account").status_code == 200
    assert browser.session[SESSION_REAUTHENTICATED_AT]


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/account/passkeys", "/account/passkeys"),
        ("https://evil.example/", "/account"),
        ("//evil.example/", "/account"),
        ("", "/account"),
    ],
)
def test_page_login_follows_only_a_local_next(
    sign_up: Any, authenticator: SoftAuthenticator, next_url: str, expected: str
) -> None:
    sign_up("alice")
    client = Client(enforce_csrf_checks=True)
    client.get("/login")

    response = page_login(client, authenticator, next=next_url)

    assert response.json() == {"redirect": expected}


def test_session_api_calls_need_the_csrf_token(browser: Client) -> None:
    passkey_id = Passkey.objects.get().pk
    url = f"/api/v1/passkeys/{passkey_id}"

    refused = browser.patch(url, {"name": "Laptop"}, content_type="application/json")
    assert refused.status_code == 403
    assert Passkey.objects.get().name == "Passkey"

    allowed = browser.patch(
        url,
        {"name": "Laptop"},
        content_type="application/json",
        headers={"X-CSRFToken": browser.cookies["csrftoken"].value},
    )
    assert allowed.status_code == 200
    assert browser.get("/api/v1/passkeys").json()[0]["name"] == "Laptop"


def test_session_sudo_mode_expires_and_is_renewed_by_reauth(
    browser: Client, authenticator: SoftAuthenticator
) -> None:
    csrf = {"X-CSRFToken": browser.cookies["csrftoken"].value}
    session = browser.session
    session[SESSION_REAUTHENTICATED_AT] = (timezone.now() - timedelta(minutes=6)).isoformat()
    session.save()

    stale = browser.post(
        "/api/v1/passkeys/register/options", {}, content_type="application/json", headers=csrf
    )
    assert stale.json()["code"] == "reauthentication_required"

    options = browser.post(
        "/api/v1/auth/reauth/options", {}, content_type="application/json", headers=csrf
    ).json()
    verified = browser.post(
        "/api/v1/auth/reauth/verify",
        {
            "ceremony_id": options["ceremony_id"],
            "credential": authenticator.get(options["publicKey"]),
        },
        content_type="application/json",
        headers=csrf,
    )
    assert verified.status_code == 200
    fresh = browser.post(
        "/api/v1/passkeys/register/options", {}, content_type="application/json", headers=csrf
    )
    assert fresh.status_code == 200


def test_page_verify_refuses_without_csrf(sign_up: Any, authenticator: SoftAuthenticator) -> None:
    sign_up("alice")
    client = Client(enforce_csrf_checks=True)
    options = client.post("/api/v1/auth/login/options", {}, content_type="application/json").json()

    response = client.post(
        "/login/verify",
        {
            "ceremony_id": options["ceremony_id"],
            "credential": authenticator.get(options["publicKey"]),
        },
        content_type="application/json",
    )

    assert response.status_code == 403
    assert "_auth_user_id" not in client.session
