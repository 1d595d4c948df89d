"""/account shows who is signed in and their passkeys; logout is a CSRF-protected POST.

Also the rules every page keeps: a CSP without inline script or style, and no framing.
"""

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from passkeys.models import Passkey

pytestmark = pytest.mark.django_db

PAGES = ["/signup", "/login", "/account"]


def make_passkey(user: User, name: str, **fields: Any) -> Passkey:
    return Passkey.objects.create(
        user=user,
        name=name,
        credential_id=name.encode(),
        public_key=b"\xa5",
        **fields,
    )


@pytest.fixture
def ada() -> User:
    return User.objects.create_user("ada", display_name="Ada Lovelace", email="ada@example.org")


@pytest.fixture
def signed_in(client: Client, ada: User) -> Client:
    client.force_login(ada)
    return client


def passkey_rows(html: str) -> list[str]:
    """The passkey table's body rows, tags stripped and whitespace collapsed."""
    body = re.search(r'<table id="passkeys".*?<tbody>(.*?)</tbody>', html, re.S)
    assert body, "no passkey table"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]


def test_anonymous_visitors_are_sent_to_sign_in(client: Client) -> None:
    response = client.get("/account")

    assert response.status_code == 302
    assert response["Location"] == "/login?next=/account"


def test_the_home_page_sends_people_where_they_belong(client: Client, ada: User) -> None:
    assert client.get("/")["Location"] == "/login"
    client.force_login(ada)
    assert client.get("/")["Location"] == "/account"


def test_the_account_shows_the_person(signed_in: Client) -> None:
    html = signed_in.get("/account").text

    assert "<h1>Ada Lovelace</h1>" in html
    assert '<strong id="username">ada</strong>' in html
    assert "ada@example.org" in html


def test_without_a_display_name_or_email_the_username_stands_in(client: Client) -> None:
    client.force_login(User.objects.create_user("grace"))

    html = client.get("/account").text

    assert "<h1>grace</h1>" in html
    assert 'id="email"' not in html


def test_the_account_lists_the_persons_passkeys_read_only(signed_in: Client, ada: User) -> None:
    make_passkey(
        ada,
        "Laptop",
        transports=["internal"],
        created_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        last_used_at=None,
    )
    make_passkey(
        ada,
        "Phone",
        backup_eligible=True,
        backed_up=True,
        transports=["hybrid", "internal"],
        created_at=datetime(2026, 4, 2, 17, 5, tzinfo=UTC),
        last_used_at=datetime(2026, 5, 6, 8, 0, tzinfo=UTC),
    )
    make_passkey(User.objects.create_user("mallory"), "Not Adas")

    response = signed_in.get("/account")

    assert response.status_code == 200
    assert passkey_rows(response.text) == [
        "Laptop This device only No internal 1 Mar 2026, 09:30 UTC Never",
        "Phone Synced Yes hybrid, internal 2 Apr 2026, 17:05 UTC 6 May 2026, 08:00 UTC",
    ]
    passkey_list = response.text.split('id="passkey-list"', 1)[1].split("</section>", 1)[0]
    assert "<form" not in passkey_list, "the passkey list is read-only"


def test_a_passkey_without_known_transports_says_so(signed_in: Client, ada: User) -> None:
    make_passkey(ada, "Key", transports=[])

    assert "Key This device only No —" in passkey_rows(signed_in.get("/account").text)[0]


def test_the_account_page_has_a_logout_form_with_a_csrf_token(signed_in: Client) -> None:
    html = signed_in.get("/account").text

    form = re.search(r'<form[^>]*method="post" action="/logout">(.*?)</form>', html, re.S)
    assert form, "no logout form"
    assert 'name="csrfmiddlewaretoken"' in form.group(1)
    assert "Sign out" in form.group(1)


def test_logout_by_get_is_not_allowed(signed_in: Client) -> None:
    assert signed_in.get("/logout").status_code == 405
    assert signed_in.get("/account").status_code == 200


def test_logout_without_the_csrf_token_is_refused(ada: User) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(ada)

    assert browser.post("/logout").status_code == 403
    assert browser.get("/account").status_code == 200


def test_logout_by_the_form_ends_the_session(ada: User) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(ada)
    html = browser.get("/account").text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert token

    response = browser.post("/logout", {"csrfmiddlewaretoken": token.group(1)})

    assert response.status_code == 302
    assert response["Location"] == "/login"
    assert browser.get("/account")["Location"] == "/login?next=/account"


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_a_strict_csp_and_cannot_be_framed(
    client: Client, ada: User, path: str
) -> None:
    if path == "/account":
        client.force_login(ada)

    response = client.get(path)

    assert response.status_code == 200
    csp = {
        directive.split()[0]: directive.split()[1:]
        for directive in response["Content-Security-Policy"].split(";")
        if directive.strip()
    }
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_accessible_and_free_of_inline_script_and_style(
    client: Client, ada: User, path: str
) -> None:
    if path == "/account":
        client.force_login(ada)

    html = client.get(path).text

    assert '<html lang="en">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert '<main id="main"' in html
    assert '<nav aria-label="Main">' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert "<style" not in html, "inline style element"
    assert not re.search(r"\sstyle=", html), "inline style attribute"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    for field_id in re.findall(r'<input[^>]*\bid="([^"]+)"', html):
        assert f'<label for="{field_id}"' in html, f"#{field_id} has no label"


def test_the_navigation_matches_whether_someone_is_signed_in(client: Client, ada: User) -> None:
    anonymous = client.get("/login").text
    assert 'href="/signup"' in anonymous
    assert 'action="/logout"' not in anonymous

    client.force_login(ada)
    signed_in = client.get("/account").text
    assert 'action="/logout"' in signed_in
    assert 'href="/login"' not in signed_in


# --- the resilience card and links ------------------------------------------------------------


def resilience_card(html: str) -> str:
    card = re.search(r'<article id="resilience".*?</article>', html, re.S)
    assert card, "no resilience card"
    return card.group(0)


def test_one_passkey_is_at_risk_and_the_fix_is_another_device(signed_in: Client, ada: User) -> None:
    make_passkey(ada, "Phone", backup_eligible=True, backed_up=True)

    card = resilience_card(signed_in.get("/account").text)

    assert 'class="resilience at-risk"' in card
    assert "You have only one passkey" in card
    assert card.count('role="button"') == 1, "one action"
    assert 'href="/account/passkeys?add=hybrid#add">Add a passkey on another device</a>' in card


def test_no_passkey_at_all_is_at_risk(signed_in: Client) -> None:
    card = resilience_card(signed_in.get("/account").text)

    assert "at-risk" in card and "Add a passkey on another device" in card


def test_only_device_bound_passkeys_are_at_risk_and_the_fix_is_a_synced_one(
    signed_in: Client, ada: User
) -> None:
    make_passkey(ada, "Laptop")
    make_passkey(ada, "Key", transports=["usb"])

    card = resilience_card(signed_in.get("/account").text)

    assert "at-risk" in card
    assert "none of them is synced" in card
    assert card.count('role="button"') == 1, "one action"
    assert 'href="/account/passkeys?add=client-device#add">Add a synced passkey</a>' in card


def test_two_passkeys_one_synced_is_ok(signed_in: Client, ada: User) -> None:
    make_passkey(ada, "Laptop")
    make_passkey(ada, "Phone", backup_eligible=True, backed_up=True)

    card = resilience_card(signed_in.get("/account").text)

    assert 'class="resilience ok"' in card
    assert "can survive a lost device" in card
    assert "role=" not in card


def test_the_account_shows_providers_and_links_to_manage_and_activity(
    signed_in: Client, ada: User
) -> None:
    from passkeys.models import AuthenticatorProvider

    aaguid = "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"
    AuthenticatorProvider.objects.create(
        aaguid=aaguid, name="Google Password Manager", icon_light="data:image/png;base64,AA=="
    )
    make_passkey(ada, "Phone", aaguid=aaguid, backup_eligible=True)

    html = signed_in.get("/account").text

    assert passkey_rows(html)[0].startswith("Phone Google Password Manager Synced")
    assert '<img class="provider-icon" src="data:image/png;base64,AA=="' in html
    assert 'href="/account/passkeys">Manage passkeys</a>' in html
    assert 'href="/account/activity">Activity</a>' in html


def test_the_details_form_shows_the_persons_name_and_email(signed_in: Client, ada: User) -> None:
    User.objects.filter(pk=ada.pk).update(display_name="Ada L.", email="ada@example.com")

    page = signed_in.get("/account").text

    assert 'id="details-form"' in page
    assert 'value="Ada L."' in page
    assert 'value="ada@example.com"' in page
    assert 'data-url="/api/v1/me"' in page
