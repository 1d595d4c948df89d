"""Browser fixtures: the portal on a live server at http://localhost:PORT, one headless Chromium for
the session, and a fresh CTAP2 virtual authenticator (via the Chrome DevTools Protocol) per test.

WebAuthn refuses IP addresses as RP IDs, so every URL uses the host name `localhost`, and the RP ID
and allowed origins are pointed at the live server for each test.
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_django.live_server_helper import LiveServer
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from .browser import Page, VirtualAuthenticator

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

CHROMIUM_ARGUMENTS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,900",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in CHROMIUM_ARGUMENTS:
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def portal_url(live_server: LiveServer, settings: Any) -> str:
    """The live server's URL on `localhost`; the portal's WebAuthn settings match it."""
    url = f"http://localhost:{live_server.thread.port}"
    settings.PORTAL_RP_ID = "localhost"
    settings.PORTAL_ORIGINS = [url]
    settings.CSRF_TRUSTED_ORIGINS = [url]
    return url


AUTHENTICATOR_OPTIONS = {
    "protocol": "ctap2",
    "ctap2Version": "ctap2_1",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


@pytest.fixture
def add_authenticator(browser: webdriver.Chrome) -> Iterator[Callable[..., VirtualAuthenticator]]:
    """Add virtual authenticators to the tab (CDP options override the defaults above, e.g.
    `transport="usb"` for a security key or `defaultBackupEligibility=True` for a synced passkey
    provider); all of them are removed, and the cookies deleted, after the test."""
    added: list[VirtualAuthenticator] = []
    browser.execute_cdp_cmd("WebAuthn.enable", {"enableUI": False})

    def add(**options: Any) -> VirtualAuthenticator:
        answer = browser.execute_cdp_cmd(
            "WebAuthn.addVirtualAuthenticator", {"options": {**AUTHENTICATOR_OPTIONS, **options}}
        )
        authenticator = VirtualAuthenticator(browser, answer["authenticatorId"])
        added.append(authenticator)
        return authenticator

    try:
        yield add
    finally:
        # Leave the page first: removing an authenticator under a pending request (e.g. /login's
        # autofill) can crash the tab.
        browser.get("about:blank")
        for authenticator in added:
            authenticator.remove()
        browser.delete_all_cookies()


@pytest.fixture
def virtual_authenticator(
    add_authenticator: Callable[..., VirtualAuthenticator],
) -> VirtualAuthenticator:
    """A fresh authenticator for one test (Chromium allows one internal authenticator per tab)."""
    return add_authenticator()


@pytest.fixture
def page(browser: webdriver.Chrome, portal_url: str) -> Page:
    return Page(browser, portal_url)


@pytest.fixture
def browser_sign_up(page: Page) -> Callable[..., None]:
    """Sign up through /signup with the current virtual authenticator; ends on /account."""

    def sign_up(username: str, display_name: str = "") -> None:
        page.open("/signup")
        page.fill("username", username)
        if display_name:
            page.fill("display-name", display_name)
        page.press("signup-button")
        page.wait_for_path("/account")

    return sign_up
