"""/signup: the page, and the JSON endpoint its script posts the new passkey to."""

import re
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from accounts.models import User
from chain.devtools.authenticator import SoftAuthenticator
from passkeys.models import Passkey

pytestmark = pytest.mark.django_db

ORIGIN = "http://localhost:8000"


@pytest.fixture(autouse=True)
def _portal_at_localhost(settings: Any) -> None:
    settings.PORTAL_RP_ID = "localhost"
    settings.PORTAL_ORIGINS = [ORIGIN]


@pytest.fixture
def browser() -> Client:
    """A client that, like a browser, is held to the CSRF check."""
    return Client(enforce_csrf_checks=True)


def register_options(client: Client, username: str, display_name: str = "") -> dict[str, Any]:
    response = client.post(
        "/api/v1/auth/register/options",
        {"username": username, "display_name": display_name},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return dict(response.json())


def csrf_token_of(client: Client) -> str:
    """What the page's script reads from the rendered {% csrf_token %}."""
    page = client.get("/signup")
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert match, "the sign-up form carries no CSRF token"
    return match.group(1)


def test_the_page_asks_for_a_username_and_an_optional_display_name(client: Client) -> None:
    response = client.get("/signup")

    assert response.status_code == 200
    html = response.text
    assert '<label for="username">Username</label>' in html
    assert 'pattern="[a-z0-9_.\\-]{3,32}"' in html
    assert "3 to 32 characters: lower-case letters" in html
    assert "digits" in html
    assert "and _ . -</small>" in html
    assert 'id="display-name" name="display_name"' in html
    assert "(optional)" in html
    assert "Create account with a passkey" in html
    assert 'aria-live="polite"' in html
    assert 'href="/login"' in html


def test_the_page_loads_the_webauthn_library_and_its_own_module(client: Client) -> None:
    html = client.get("/signup").text

    library = "/static/vendor/simplewebauthn-browser.umd.min.js"
    assert f'<script defer src="{library}" integrity="sha384-' in html
    assert '<script type="module" src="/static/js/signup.js" integrity="sha384-' in html
    assert 'data-options-url="/api/v1/auth/register/options"' in html
    assert 'action="/signup/verify"' in html


def test_the_static_files_it_names_exist() -> None:
    for path in (
        "js/signup.js",
        "js/ceremony.js",
        "css/portal.css",
        "vendor/pico.min.css",
        "vendor/simplewebauthn-browser.umd.min.js",
    ):
        assert finders.find(path), f"{path} is missing (run make setup for vendor/)"


def test_a_signed_in_person_is_sent_to_their_account(client: Client) -> None:
    client.force_login(User.objects.create_user("ada"))

    response = client.get("/signup")

    assert response.status_code == 302
    assert response["Location"] == "/account"


def test_the_page_answers_get_only(client: Client) -> None:
    assert client.post("/signup").status_code == 405


def test_verify_without_the_csrf_token_is_refused_and_creates_nobody(
    browser: Client, authenticator: SoftAuthenticator
) -> None:
    options = register_options(browser, "ada")
    credential = authenticator.create(options["publicKey"])

    response = browser.post(
        "/signup/verify",
        {"ceremony_id": options["ceremony_id"], "credential": credential},
        content_type="application/json",
    )

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not User.objects.filter(username="ada").exists()
    assert "_auth_user_id" not in browser.session


def test_verify_with_the_page_token_creates_the_account_and_signs_in(
    browser: Client, authenticator: SoftAuthenticator
) -> None:
    token = csrf_token_of(browser)
    options = register_options(browser, "ada", "Ada Lovelace")
    credential = authenticator.create(options["publicKey"])

    response = browser.post(
        "/signup/verify",
        {"ceremony_id": options["ceremony_id"], "credential": credential},
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )

    assert response.status_code == 200, response.content
    assert response.json() == {"redirect": "/account"}
    user = User.objects.get(username="ada")
    assert user.display_name == "Ada Lovelace"
    assert Passkey.objects.filter(user=user).count() == 1
    account = browser.get("/account")
    assert account.status_code == 200
    assert "Ada Lovelace" in account.text


def test_a_refused_passkey_comes_back_as_code_and_detail_for_the_page(
    browser: Client, authenticator: SoftAuthenticator
) -> None:
    token = csrf_token_of(browser)
    options = register_options(browser, "ada")
    credential = authenticator.create(options["publicKey"], user_verified=False)

    response = browser.post(
        "/signup/verify",
        {"ceremony_id": options["ceremony_id"], "credential": credential},
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "user_verification_missing"
    assert response.json()["detail"] == "The authenticator did not verify the user."
    assert not User.objects.filter(username="ada").exists()
    assert "_auth_user_id" not in browser.session
