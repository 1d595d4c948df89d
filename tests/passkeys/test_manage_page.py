"""/account/passkeys: each passkey for what it is, the forms that change them, and what the page's
script needs for the WebAuthn Signal API (RP ID, user handle and credential ids in base64url)."""

import base64
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from passkeys.models import AuthenticatorProvider, Passkey

pytestmark = pytest.mark.django_db

ICLOUD = uuid.UUID("fbfc3007-154e-4ecc-8c0b-6e020557d7bd")
LIGHT = "data:image/svg+xml;base64,bGlnaHQ="
DARK = "data:image/svg+xml;base64,ZGFyaw=="


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_passkey(user: User, name: str, **fields: Any) -> Passkey:
    return Passkey.objects.create(
        user=user,
        name=name,
        credential_id=name.encode() + b"\xfb\xff",
        public_key=b"\xa5",
        **fields,
    )


@pytest.fixture
def ada() -> User:
    return User.objects.create_user("ada")


@pytest.fixture
def signed_in(client: Client, ada: User) -> Client:
    client.force_login(ada)
    return client


def cards(html: str) -> dict[str, str]:
    """Each passkey card's text (tags stripped, whitespace collapsed), by passkey id."""
    found = re.findall(r'<article class="passkey" id="passkey-(\d+)".*?</article>', html, re.S)
    bodies = re.findall(r'(<article class="passkey".*?</article>)', html, re.S)
    return {
        pk: " ".join(re.sub(r"<[^>]+>", " ", body).split())
        for pk, body in zip(found, bodies, strict=True)
    }


def test_anonymous_visitors_are_sent_to_sign_in(client: Client) -> None:
    response = client.get("/account/passkeys")

    assert response.status_code == 302
    assert response["Location"] == "/login?next=/account/passkeys"


def test_only_get_is_allowed(signed_in: Client) -> None:
    assert signed_in.post("/account/passkeys").status_code == 405


def test_each_passkey_shows_what_it_is(signed_in: Client, ada: User) -> None:
    AuthenticatorProvider.objects.create(
        aaguid=ICLOUD, name="iCloud Keychain", icon_light=LIGHT, icon_dark=DARK
    )
    laptop = make_passkey(
        ada,
        "Laptop",
        transports=["internal"],
        created_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
    )
    phone = make_passkey(
        ada,
        "Phone",
        aaguid=ICLOUD,
        backup_eligible=True,
        backed_up=True,
        transports=["hybrid", "internal"],
        created_at=datetime(2026, 4, 2, 17, 5, tzinfo=UTC),
        last_used_at=datetime(2026, 5, 6, 8, 0, tzinfo=UTC),
    )
    pending = make_passkey(ada, "New phone", backup_eligible=True, backed_up=False)
    make_passkey(User.objects.create_user("mallory"), "Not Adas")

    html = signed_in.get("/account/passkeys").text
    shown = cards(html)

    assert list(shown) == [str(laptop.pk), str(phone.pk), str(pending.pk)]
    assert shown[str(laptop.pk)].startswith(
        "Laptop This device only Provider Unknown Backed up now No Transports internal "
        "Created 1 Mar 2026, 09:30 UTC Last used Never"
    )
    assert shown[str(phone.pk)].startswith(
        "Phone Synced Provider iCloud Keychain Backed up now Yes Transports hybrid, internal "
        "Created 2 Apr 2026, 17:05 UTC Last used 6 May 2026, 08:00 UTC"
    )
    assert "Synced Provider Unknown Backed up now Not yet" in shown[str(pending.pk)]
    assert "Not Adas" not in html
    # The provider's icon follows the colour scheme.
    assert f'<source srcset="{DARK}" media="(prefers-color-scheme: dark)">' in html
    assert f'<img class="provider-icon" src="{LIGHT}" alt=""' in html
    assert "(3)" in html


def test_the_page_carries_what_the_signal_api_needs(
    signed_in: Client, ada: User, settings: Any
) -> None:
    settings.PORTAL_RP_ID = "portal.example"
    laptop = make_passkey(ada, "Laptop")

    html = signed_in.get("/account/passkeys").text

    assert 'data-rp-id="portal.example"' in html
    assert f'data-user-id="{b64url(bytes(ada.user_handle))}"' in html
    assert f'data-credential-id="{b64url(bytes(laptop.credential_id))}"' in html
    assert "=" not in b64url(bytes(laptop.credential_id))


def test_every_passkey_has_a_rename_form_and_a_delete_button(signed_in: Client, ada: User) -> None:
    laptop = make_passkey(ada, "Laptop")

    html = signed_in.get("/account/passkeys").text

    assert f'data-url="/api/v1/passkeys/{laptop.pk}"' in html
    assert f'<label for="rename-{laptop.pk}">' in html
    assert re.search(
        rf'<input id="rename-{laptop.pk}" name="name" type="text" value="Laptop"', html
    )
    assert 'class="delete-button' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_names_are_escaped(signed_in: Client, ada: User) -> None:
    make_passkey(ada, "<b>bold</b>")

    html = signed_in.get("/account/passkeys").text

    assert "<b>bold</b>" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


@pytest.mark.parametrize(
    ("query", "checked"),
    [
        ("", "client-device"),
        ("?add=hybrid", "hybrid"),
        ("?add=security-key", "security-key"),
        ("?add=nonsense", "client-device"),
    ],
)
def test_the_add_form_offers_hints_and_preselects_one(
    signed_in: Client, query: str, checked: str
) -> None:
    html = signed_in.get("/account/passkeys" + query).text

    radios = re.findall(r'<input type="radio" id="hint-([a-z-]+)"[^>]*?( checked)?>', html)
    assert [hint for hint, _ in radios] == ["client-device", "security-key", "hybrid"]
    assert [hint for hint, on in radios if on] == [checked]
    assert 'data-options-url="/api/v1/passkeys/register/options"' in html
    assert 'data-verify-url="/api/v1/passkeys/register/verify"' in html


def test_the_resilience_card_is_shown_here_too(signed_in: Client, ada: User) -> None:
    make_passkey(ada, "Laptop")

    html = signed_in.get("/account/passkeys").text

    assert 'id="resilience"' in html
    assert "Add a passkey on another device" in html


def test_the_page_is_free_of_inline_script_and_style(signed_in: Client, ada: User) -> None:
    make_passkey(ada, "Laptop", aaguid=ICLOUD)
    AuthenticatorProvider.objects.create(aaguid=ICLOUD, name="iCloud Keychain", icon_light=LIGHT)

    response = signed_in.get("/account/passkeys")
    html = response.text

    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)
    for field_id in re.findall(r'<input[^>]*\bid="([^"]+)"', html):
        assert f'<label for="{field_id}"' in html, f"#{field_id} has no label"
    assert '<script type="module" src="/static/js/manage.js" integrity="sha384-' in html
