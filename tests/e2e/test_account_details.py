"""A person edits their details on /account: the display name reaches their device (WebAuthn
signalCurrentUserDetails), and a new email address is confirmed with a passkey first."""

from collections.abc import Callable

import pytest

from accounts.models import AuditEvent, User

from .browser import Page, VirtualAuthenticator

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_change_display_name_and_email(
    page: Page,
    virtual_authenticator: VirtualAuthenticator,
    browser_sign_up: Callable[..., None],
) -> None:
    browser_sign_up("ada", display_name="Ada")
    page.expire_reauthentication()
    page.fill("details-display-name", "Ada Lovelace")
    page.fill("details-email", "ada@example.com")

    page.press("details-button")

    page.wait_for_saying("Your details are saved.")
    ada = User.objects.get(username="ada")
    assert ada.display_name == "Ada Lovelace"
    assert ada.email == "ada@example.com"
    assert AuditEvent.objects.filter(user=ada, kind="reauthenticated").count() == 1
    signalled = page.driver.execute_script(
        "return document.getElementById('details-form').dataset.signalled || null"
    )
    assert signalled == "details"
    [credential] = virtual_authenticator.credentials()
    assert credential["userDisplayName"] == "Ada Lovelace"  # the device took the new name


def test_a_refused_confirmation_changes_nothing(
    page: Page,
    virtual_authenticator: VirtualAuthenticator,
    browser_sign_up: Callable[..., None],
) -> None:
    browser_sign_up("ada")
    page.expire_reauthentication()
    virtual_authenticator.set_user_verified(False)
    page.fill("details-email", "mallory@example.com")

    page.press("details-button")

    assert page.wait_for_message()
    assert User.objects.get(username="ada").email == ""
