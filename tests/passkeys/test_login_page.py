"""/login: the page with passkey autofill, and the JSON endpoint its script posts to."""

import re
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from accounts.models import User
from chain.devtools.authenticator import SoftAuthenticator

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


def post_json(client: Client, path: str, body: dict[str, Any], **extra: Any) -> Any:
    return client.post(path, body, content_type="application/json", **extra)


@pytest.fixture
def registered(authenticator: SoftAuthenticator) -> User:
    """Ada, whose passkey lives in `authenticator` (signed up through the API)."""
    options = post_json(Client(), "/api/v1/auth/register/options", {"username": "ada"}).json()
    credential = authenticator.create(options["publicKey"])
    verified = post_json(
        Client(),
        "/api/v1/auth/register/verify",
        {"ceremony_id": options["ceremony_id"], "credential": credential},
    )
    assert verified.status_code == 201, verified.content
    return User.objects.get(username="ada")


def login_options(client: Client, **body: str) -> dict[str, Any]:
    response = post_json(client, "/api/v1/auth/login/options", body)
    assert response.status_code == 200, response.content
    return dict(response.json())


def csrf_token_of(client: Client) -> str:
    page = client.get("/login")
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert match, "the sign-in form carries no CSRF token"
    return match.group(1)


def test_the_page_offers_passkey_autofill_and_a_button(client: Client) -> None:
    response = client.get("/login")

    assert response.status_code == 200
    html = response.text
    assert 'autocomplete="username webauthn"' in html
    assert '<label for="username">Username' in html
    assert ">Sign in with a passkey</button>" in html
    assert 'aria-live="polite"' in html
    assert 'href="/signup"' in html


def test_the_page_loads_the_webauthn_library_and_its_own_module(client: Client) -> None:
    html = client.get("/login").text

    library = "/static/vendor/simplewebauthn-browser.umd.min.js"
    assert f'<script defer src="{library}" integrity="sha384-' in html
    assert '<script type="module" src="/static/js/login.js" integrity="sha384-' in html
    assert 'data-options-url="/api/v1/auth/login/options"' in html
    assert 'action="/login/verify"' in html
    assert finders.find("js/login.js")


def test_a_signed_in_person_is_sent_to_their_account(client: Client) -> None:
    client.force_login(User.objects.create_user("ada"))

    response = client.get("/login")

    assert response.status_code == 302
    assert response["Location"] == "/account"


def test_the_page_answers_get_only(client: Client) -> None:
    assert client.post("/login").status_code == 405


def test_verify_without_the_csrf_token_is_refused(
    browser: Client, authenticator: SoftAuthenticator, registered: User
) -> None:
    options = login_options(browser)
    credential = authenticator.get(options["publicKey"])

    response = post_json(
        browser, "/login/verify", {"ceremony_id": options["ceremony_id"], "credential": credential}
    )

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert "_auth_user_id" not in browser.session


def test_verify_with_a_wrong_csrf_token_is_refused(
    browser: Client, authenticator: SoftAuthenticator, registered: User
) -> None:
    csrf_token_of(browser)
    options = login_options(browser)
    credential = authenticator.get(options["publicKey"])

    response = post_json(
        browser,
        "/login/verify",
        {"ceremony_id": options["ceremony_id"], "credential": credential},
        headers={"X-CSRFToken": "x" * 32},
    )

    assert response.status_code == 403
    assert "_auth_user_id" not in browser.session


@pytest.mark.parametrize("username_first", [False, True], ids=["discoverable", "username-first"])
def test_verify_with_the_page_token_signs_in(
    browser: Client, authenticator: SoftAuthenticator, registered: User, username_first: bool
) -> None:
    token = csrf_token_of(browser)
    options = login_options(browser, **({"username": "ada"} if username_first else {}))
    credential = authenticator.get(options["publicKey"])

    response = post_json(
        browser,
        "/login/verify",
        {"ceremony_id": options["ceremony_id"], "credential": credential},
        headers={"X-CSRFToken": token},
    )

    assert response.status_code == 200, response.content
    assert response.json() == {"redirect": "/account"}
    assert browser.session["_auth_user_id"] == str(registered.pk)
    assert browser.get("/login")["Location"] == "/account"


def test_an_unknown_passkey_is_refused_with_a_readable_detail(
    browser: Client, registered: User
) -> None:
    stranger = SoftAuthenticator()
    stranger.create({"user": {"id": "c3RyYW5nZXI"}, "challenge": "AA"})
    token = csrf_token_of(browser)
    options = login_options(browser)
    credential = stranger.get(options["publicKey"])

    response = post_json(
        browser,
        "/login/verify",
        {"ceremony_id": options["ceremony_id"], "credential": credential},
        headers={"X-CSRFToken": token},
    )

    assert response.status_code == 400
    assert response.json() == {
        "code": "unknown_credential",
        "detail": "This passkey is not registered here.",
    }
    assert "_auth_user_id" not in browser.session
