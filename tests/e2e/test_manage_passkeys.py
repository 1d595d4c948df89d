"""A person manages their passkeys at /account/passkeys in a real browser.

Chromium allows one internal (platform) virtual authenticator per tab, so a second passkey lives on
a second authenticator with the "usb" transport: a security key. While the key is in use the
internal authenticator's automatic presence is off, so only the key answers the browser's request
(the portal's excludeCredentials would make the internal one refuse anyway).
"""

from collections.abc import Callable

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from accounts.models import AuditEvent, User
from passkeys.models import Passkey

from .browser import WAIT_SECONDS, Page, VirtualAuthenticator

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECURITY_KEY = {"transport": "usb"}
SYNCED = {"defaultBackupEligibility": True, "defaultBackupState": True}


def cards(page: Page) -> list[str]:
    """The passkey cards' texts, in page order."""
    return [card.text for card in page.driver.find_elements(By.CSS_SELECTOR, "article.passkey")]


def open_passkeys(page: Page) -> None:
    page.open("/account/passkeys")
    WebDriverWait(page.driver, WAIT_SECONDS).until(
        expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, '#passkey-list[data-ready="true"]')
        )
    )


def add_passkey(page: Page, *, hint: str, name: str, expected: str) -> None:
    page.press(f"hint-{hint}")
    if name:
        page.fill("new-name", name)
    page.press("add-button")
    page.wait_for_saying(f"Added “{expected}”.")


def delete_passkey(page: Page, passkey: Passkey) -> None:
    page.driver.find_element(By.CSS_SELECTOR, f"#passkey-{passkey.pk} .delete-button").click()
    alert = WebDriverWait(page.driver, WAIT_SECONDS).until(expected_conditions.alert_is_present())
    assert passkey.name in alert.text
    alert.accept()


def test_add_a_security_key_rename_it_delete_the_first_and_sign_in_with_the_key(
    page: Page,
    virtual_authenticator: VirtualAuthenticator,
    add_authenticator: Callable[..., VirtualAuthenticator],
    browser_sign_up: Callable[..., None],
) -> None:
    browser_sign_up("ada")
    assert "Add a passkey on another device" in page.text("#resilience")
    open_passkeys(page)
    assert len(cards(page)) == 1
    assert "This device only" in cards(page)[0]
    page.screenshot("manage-one")

    key = add_authenticator(**SECURITY_KEY)
    virtual_authenticator.set_presence(automatic=False)
    add_passkey(page, hint="security-key", name="Blue key", expected="Blue key")

    assert len(key.credentials()) == 1
    first, second = Passkey.objects.order_by("created_at")
    assert second.name == "Blue key"
    assert second.transports == ["usb"]
    texts = cards(page)
    assert len(texts) == 2
    assert "Blue key" in texts[1] and "This device only" in texts[1] and "usb" in texts[1]
    # Two passkeys, both bound to their device: the card now asks for a synced one.
    assert "Add a synced passkey" in page.text("#resilience")
    page.screenshot("manage-two")

    # Rename: an empty name is refused with the API's words, then a good one is saved.
    page.driver.find_element(By.CSS_SELECTOR, f"#passkey-{second.pk} summary").click()
    page.fill(f"rename-{second.pk}", "   ")
    page.driver.find_element(By.CSS_SELECTOR, f"#passkey-{second.pk} form button").click()
    error = page.wait_for_message()
    assert error
    assert page.text(f"#rename-{second.pk}-error") == error
    field = page.driver.find_element(By.ID, f"rename-{second.pk}")
    assert field.get_attribute("aria-invalid") == "true"
    page.screenshot("manage-rename-refused")
    page.fill(f"rename-{second.pk}", "Red key")
    page.driver.find_element(By.CSS_SELECTOR, f"#passkey-{second.pk} form button").click()
    page.wait_for_saying("Renamed to “Red key”.")
    assert "Red key" in cards(page)[1]

    # Deleting the passkey this browser signed in with would sign it out: confirm with the key
    # first, which then holds the sign-in.
    page.expire_reauthentication()
    delete_passkey(page, first)
    page.wait_for_saying(f"Deleted “{first.name}”.")
    assert [p.pk for p in Passkey.objects.all()] == [second.pk]
    assert len(cards(page)) == 1 and "Red key" in cards(page)[0]
    # signalAllAcceptedCredentials told the device: Chromium drops the deleted passkey, the key's
    # passkey stays.
    assert virtual_authenticator.credentials() == []
    assert len(key.credentials()) == 1

    # The device's own passkey is gone (as if the laptop were lost): only the key can sign in.
    # Without a platform authenticator Chromium offers no passkey autofill on /login: the person
    # types their name and presses the button, and the key answers.
    virtual_authenticator.remove()
    page.sign_out()
    page.wait_for_path("/login")
    page.fill("username", "ada")
    page.press("passkey-button")
    page.wait_for_path("/account")
    assert "Signed in as ada" in page.text()
    second.refresh_from_db()
    assert second.last_used_at is not None


def test_sensitive_actions_ask_for_a_passkey_inline_and_carry_on(
    page: Page,
    virtual_authenticator: VirtualAuthenticator,
    add_authenticator: Callable[..., VirtualAuthenticator],
    browser_sign_up: Callable[..., None],
) -> None:
    browser_sign_up("grace")
    open_passkeys(page)

    # The only passkey cannot be deleted (the portal answers before asking for a confirmation).
    only = Passkey.objects.get()
    delete_passkey(page, only)
    page.wait_for_saying("This is your only passkey: add another one first.", kind="error")
    assert Passkey.objects.count() == 1

    # Adding after the sign-in's confirmation has expired: the page asks the device's passkey
    # first, then the security key creates the new one.
    page.expire_reauthentication()
    key = add_authenticator(**SECURITY_KEY)
    add_passkey(page, hint="security-key", name="Key", expected="Key")
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.REAUTHENTICATED).count() == 1
    assert len(key.credentials()) == 1

    # Deleting after it expired again: confirm with a passkey (the key: confirming with the one
    # being deleted would sign this browser out with it), then the deletion goes through.
    page.expire_reauthentication()
    virtual_authenticator.set_presence(automatic=False)
    delete_passkey(page, only)
    page.wait_for_saying(f"Deleted “{only.name}”.")
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.REAUTHENTICATED).count() == 2
    assert list(Passkey.objects.values_list("name", flat=True)) == ["Key"]


def test_a_synced_passkey_shows_as_synced_and_the_resilience_card_follows(
    page: Page,
    add_authenticator: Callable[..., VirtualAuthenticator],
    browser_sign_up: Callable[..., None],
) -> None:
    synced = add_authenticator(**SYNCED)
    browser_sign_up("linus")

    passkey = Passkey.objects.get()
    assert passkey.backup_eligible and passkey.backed_up
    row = page.text("#passkeys tbody tr")
    assert "Synced" in row and "Yes" in row
    # Synced, but alone: one more passkey on another device is what is missing.
    assert "You have only one passkey" in page.text("#resilience")
    assert "Add a passkey on another device" in page.text("#resilience")
    page.screenshot("account-synced-at-risk")

    page.driver.find_element(By.ID, "resilience-action").click()
    page.wait_for_path("/account/passkeys?add=hybrid#add")
    assert page.driver.find_element(By.ID, "hint-hybrid").is_selected()
    assert "Synced" in cards(page)[0] and "Backed up now\nYes" in cards(page)[0]

    add_authenticator(**SECURITY_KEY)
    synced.set_presence(automatic=False)
    add_passkey(page, hint="security-key", name="", expected="Passkey 2")
    assert page.driver.find_elements(By.CSS_SELECTOR, "#resilience.ok")
    assert "can survive a lost device" in page.text("#resilience")

    page.open("/account")
    assert "can survive a lost device" in page.text("#resilience")
    page.screenshot("account-ok")


def test_the_device_is_told_which_passkeys_remain_and_which_are_unknown(
    page: Page,
    virtual_authenticator: VirtualAuthenticator,
    add_authenticator: Callable[..., VirtualAuthenticator],
    browser_sign_up: Callable[..., None],
) -> None:
    browser_sign_up("ken")
    open_passkeys(page)
    assert page.driver.find_elements(By.CSS_SELECTOR, '#passkey-list[data-signalled="accepted"]')

    # A passkey deleted here but still on the device: the login page signals it as unknown.
    key = add_authenticator(**SECURITY_KEY)
    virtual_authenticator.set_presence(automatic=False)
    add_passkey(page, hint="security-key", name="Key", expected="Key")
    key.set_presence(automatic=False)
    Passkey.objects.filter(name="Key").delete()  # e.g. deleted from another browser
    page.sign_out()
    page.wait_for_path("/login")
    virtual_authenticator.remove()
    key.set_presence(automatic=True)
    page.press("passkey-button")

    assert page.wait_for_message() == "This passkey is not registered here."
    WebDriverWait(page.driver, WAIT_SECONDS).until(
        expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, '#login-form[data-signalled="unknown"]')
        )
    )
    # Chromium's authenticator acts on the signal: the unknown passkey is gone from the key.
    assert key.credentials() == []


def test_signing_in_from_the_admin_returns_to_the_admin(
    page: Page,
    add_authenticator: Callable[..., VirtualAuthenticator],
    browser_sign_up: Callable[..., None],
) -> None:
    # A security key, no platform authenticator: /login then has no passkey autofill that the
    # virtual authenticator answers by itself. (With one, the autofill request that the page
    # starts after load could be answered as soon as presence came back on, and its sign-in
    # navigated to /admin/ while the button was being clicked: a click on a node of the page
    # that had just gone, "Node with given id does not belong to the document".) The button's
    # request is the only one.
    add_authenticator(**SECURITY_KEY)
    browser_sign_up("root")
    User.objects.filter(username="root").update(is_staff=True, is_superuser=True)
    page.sign_out()
    page.open("/login?next=/admin/")
    page.press("passkey-button")

    page.wait_for_path("/admin/")


def test_the_activity_page_and_narrow_screens(
    page: Page, virtual_authenticator: VirtualAuthenticator, browser_sign_up: Callable[..., None]
) -> None:
    browser_sign_up("barbara")
    page.open("/account/activity")
    assert page.text("h1") == "Activity"
    rows = page.driver.find_elements(By.CSS_SELECTOR, "#activity tbody tr")
    assert len(rows) == 1
    assert "Signed up" in rows[0].text and "Chrome on Linux" in rows[0].text
    page.screenshot("activity")

    size = page.driver.get_window_size()
    page.driver.set_window_size(390, 844)
    try:
        page.screenshot("activity-narrow")
        open_passkeys(page)
        page.screenshot("manage-narrow")
        page.open("/account")
        page.screenshot("account-narrow")
    finally:
        page.driver.set_window_size(size["width"], size["height"])
