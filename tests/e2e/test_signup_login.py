"""A person signs up and signs in with a passkey, in a real browser with a virtual authenticator.

Chromium's virtual authenticator answers a conditional (autofill) request by itself, so a test that
wants the "Sign in with a passkey" button turns automatic presence off while /login loads: the
autofill request then stays pending, as it does while a person has not picked a passkey yet.
"""

import secrets
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from selenium.webdriver.common.by import By

from accounts.models import User

from .browser import Page, VirtualAuthenticator

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CANCELLED = "The passkey prompt was closed or timed out. Try again."


def open_login_with_autofill_pending(page: Page, authenticator: VirtualAuthenticator) -> None:
    """Land on /login with its autofill request started but not answered."""
    authenticator.set_presence(automatic=False)
    if page.driver.current_url.endswith("/account"):
        page.sign_out()
    else:
        page.open("/login")
    page.wait_for_path("/login")
    page.wait_for_autofill()
    authenticator.set_presence(automatic=True)
    assert page.driver.current_url == page.base_url + "/login"


def test_sign_up_sign_out_and_sign_in_with_the_button(
    page: Page, virtual_authenticator: VirtualAuthenticator, browser_sign_up: Callable[..., None]
) -> None:
    page.open("/signup")
    page.screenshot("signup")
    browser_sign_up("ada.l", "Ada Lovelace")

    assert page.text("h1") == "Ada Lovelace"
    assert "Signed in as ada.l" in page.text()
    rows = page.driver.find_elements(By.CSS_SELECTOR, "#passkeys tbody tr")
    assert len(rows) == 1
    assert "This device only" in rows[0].text
    assert "internal" in rows[0].text
    assert len(virtual_authenticator.credentials()) == 1
    page.screenshot("account")

    open_login_with_autofill_pending(page, virtual_authenticator)
    page.screenshot("login")
    page.press("passkey-button")

    page.wait_for_path("/account")
    assert page.text("h1") == "Ada Lovelace"
    assert "Signed in as ada.l" in page.text()


def test_username_first_sign_in(
    page: Page, virtual_authenticator: VirtualAuthenticator, browser_sign_up: Callable[..., None]
) -> None:
    browser_sign_up("grace")
    open_login_with_autofill_pending(page, virtual_authenticator)

    page.fill("username", "Grace")
    page.press("passkey-button")

    page.wait_for_path("/account")
    assert page.text("h1") == "grace"


def test_passkey_autofill_signs_in_from_the_login_page(
    page: Page, virtual_authenticator: VirtualAuthenticator, browser_sign_up: Callable[..., None]
) -> None:
    browser_sign_up("linus")
    page.sign_out()

    # The autofill request started on page load; the authenticator answers it with its passkey.
    page.wait_for_path("/account")
    assert "Signed in as linus" in page.text()


def test_taken_username_is_explained(
    page: Page, virtual_authenticator: VirtualAuthenticator
) -> None:
    User.objects.create_user("taken")
    page.open("/signup")
    page.fill("username", "taken")
    page.press("signup-button")

    assert page.wait_for_message() == "That username is taken."
    assert virtual_authenticator.credentials() == []


def test_cancelled_sign_up_says_so_and_can_be_retried(
    page: Page, virtual_authenticator: VirtualAuthenticator
) -> None:
    virtual_authenticator.set_user_verified(False)
    page.open("/signup")
    page.fill("username", "hesitant")
    page.press("signup-button")

    assert page.wait_for_message() == CANCELLED
    page.screenshot("signup-cancelled")
    assert page.driver.current_url == page.base_url + "/signup"
    assert not User.objects.filter(username="hesitant").exists()

    virtual_authenticator.set_user_verified(True)
    page.press("signup-button")
    page.wait_for_path("/account")
    assert User.objects.filter(username="hesitant").exists()


def test_cancelled_sign_in_says_so(
    page: Page, virtual_authenticator: VirtualAuthenticator, browser_sign_up: Callable[..., None]
) -> None:
    browser_sign_up("alan")
    open_login_with_autofill_pending(page, virtual_authenticator)
    virtual_authenticator.set_user_verified(False)

    page.press("passkey-button")

    assert page.wait_for_message() == CANCELLED
    assert page.driver.current_url == page.base_url + "/login"


def test_unknown_passkey_is_refused_with_a_readable_message(
    page: Page, virtual_authenticator: VirtualAuthenticator
) -> None:
    # A passkey made for this site (RP ID localhost) that the portal has never registered.
    key = ec.generate_private_key(ec.SECP256R1())
    virtual_authenticator.add_credential(
        credential_id=secrets.token_bytes(32),
        private_key_pkcs8=key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption()),
        rp_id="localhost",
        user_handle=secrets.token_bytes(32),
    )
    open_login_with_autofill_pending(page, virtual_authenticator)

    page.press("passkey-button")

    assert page.wait_for_message() == "This passkey is not registered here."
    page.screenshot("login-refused")
    assert page.driver.current_url == page.base_url + "/login"
