"""What the browser tests drive: Chromium's virtual authenticator (over CDP) and a page."""

import base64
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

WAIT_SECONDS = 10


@dataclass
class VirtualAuthenticator:
    """A CTAP2 platform authenticator living inside the browser tab, driven over CDP."""

    driver: webdriver.Chrome
    authenticator_id: str
    removed: bool = False

    def _cdp(self, command: str, **params: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.driver.execute_cdp_cmd(
            f"WebAuthn.{command}", {"authenticatorId": self.authenticator_id, **params}
        )
        return result

    def credentials(self) -> list[dict[str, Any]]:
        """The passkeys this authenticator holds (CDP `Credential` objects)."""
        return list(self._cdp("getCredentials")["credentials"])

    def remove(self) -> None:
        """Take the authenticator out of the tab (like unplugging a key); safe to repeat."""
        if self.removed:
            return
        self._cdp("removeVirtualAuthenticator")
        self.removed = True

    def clear_credentials(self) -> None:
        self._cdp("clearCredentials")

    def set_presence(self, *, automatic: bool) -> None:
        """Off: requests wait for a touch that never comes, like a prompt left open."""
        self._cdp("setAutomaticPresenceSimulation", enabled=automatic)

    def set_user_verified(self, verified: bool) -> None:
        """False makes every user-verification attempt fail, like a person dismissing the prompt."""
        self._cdp("setUserVerified", isUserVerified=verified)

    def add_credential(
        self, *, credential_id: bytes, private_key_pkcs8: bytes, rp_id: str, user_handle: bytes
    ) -> None:
        """Plant a discoverable passkey, e.g. one the portal has never seen."""

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        self._cdp(
            "addCredential",
            credential={
                "credentialId": b64(credential_id),
                "isResidentCredential": True,
                "rpId": rp_id,
                "privateKey": b64(private_key_pkcs8),
                "userHandle": b64(user_handle),
                "signCount": 0,
            },
        )


class Page:
    """Small helpers for what a person does on a page: open it, type, press, read."""

    def __init__(self, driver: webdriver.Chrome, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def fill(self, element_id: str, text: str) -> None:
        field = self.driver.find_element(By.ID, element_id)
        field.clear()
        field.send_keys(text)

    def press(self, element_id: str) -> None:
        self.driver.find_element(By.ID, element_id).click()

    def sign_out(self) -> None:
        """Press "Sign out" in the navigation and wait for the next page to load: a new document
        has a new window, without the mark this one gets. (Not staleness_of: asked about an element
        of a document being torn down, Chromium may answer "Node … does not belong to the document"
        instead of a stale element.)"""
        self.driver.execute_script("window.signingOut = true")
        self.driver.find_element(By.CSS_SELECTOR, "nav form button[type=submit]").click()
        WebDriverWait(self.driver, WAIT_SECONDS, ignored_exceptions=[WebDriverException]).until(
            lambda driver: driver.execute_script(
                "return window.signingOut === undefined && document.readyState === 'complete'"
            )
        )

    def wait_for_path(self, path: str) -> None:
        try:
            WebDriverWait(self.driver, WAIT_SECONDS).until(
                lambda driver: (
                    driver.current_url == self.base_url + path
                    and driver.execute_script("return document.readyState") == "complete"
                )
            )
        except TimeoutException:
            raise AssertionError(
                f"expected {path}, still on {self.driver.current_url}; "
                f"the page says: {self.message()!r}"
            ) from None

    def wait_for_autofill(self) -> None:
        """Wait until /login has started its passkey-autofill (conditional) request."""
        locator = (By.CSS_SELECTOR, 'form[data-autofill="pending"]')
        WebDriverWait(self.driver, WAIT_SECONDS).until(
            expected_conditions.presence_of_element_located(locator)
        )
        time.sleep(0.3)  # the request is async: let it reach the authenticator

    def expire_reauthentication(self) -> None:
        """Age the browser session's passkey confirmation, so the next sensitive action asks for
        one again (as it does once the re-authentication window has passed)."""
        from django.contrib.sessions.backends.db import SessionStore

        from accounts.services import SESSION_REAUTHENTICATED_AT

        cookie = self.driver.get_cookie(settings.SESSION_COOKIE_NAME)
        assert cookie, "not signed in"
        session = SessionStore(session_key=cookie["value"])
        session[SESSION_REAUTHENTICATED_AT] = "2000-01-01T00:00:00+00:00"
        session.save()

    def message(self) -> str:
        """What the page's live region says right now ('' when there is none)."""
        found = self.driver.find_elements(By.ID, "message")
        return str(found[0].text) if found else ""

    def wait_for_message(self, *, kind: str = "error") -> str:
        """The first text the page's live region shows with `kind` (error/info/success).

        Read in one script call: the page may replace the message right after (e.g. /login
        restarts its autofill request after a failure).
        """
        script = (
            "const region = document.getElementById('message');"
            "return region && region.dataset.kind === arguments[0] ? region.textContent : null;"
        )
        text = WebDriverWait(self.driver, WAIT_SECONDS, poll_frequency=0.05).until(
            lambda driver: driver.execute_script(script, kind)
        )
        assert self.driver.find_element(By.ID, "message").is_displayed()
        return str(text)

    def wait_for_saying(self, expected: str, *, kind: str = "success") -> None:
        """Wait until the live region says exactly `expected` with `kind` (e.g. after a reload)."""
        script = (
            "const region = document.getElementById('message');"
            "return region ? [region.dataset.kind || '', region.textContent] : null;"
        )
        try:
            WebDriverWait(self.driver, WAIT_SECONDS, poll_frequency=0.05).until(
                lambda driver: driver.execute_script(script) == [kind, expected]
            )
        except TimeoutException:
            raise AssertionError(
                f"expected the page to say {expected!r} ({kind}); it says {self.message()!r}"
            ) from None

    def text(self, selector: str = "main") -> str:
        return str(self.driver.find_element(By.CSS_SELECTOR, selector).text)

    def screenshot(self, name: str) -> None:
        """Save `<name>.png` under $E2E_SCREENSHOT_DIR when it is set (to look at the pages)."""
        directory = os.environ.get("E2E_SCREENSHOT_DIR")
        if directory:
            self.driver.save_screenshot(str(Path(directory) / f"{name}.png"))
