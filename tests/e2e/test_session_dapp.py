"""Session keys across two origins in Chromium: the demo dapp (its own origin) asks for a session
in the portal's /connect popup → the person approves with the virtual authenticator → the dapp's
transfer through the relay succeeds → an over-limit transfer is refused with its reason → the
person revokes on /account/sessions → the dapp is refused.

The pipeline (submit, track) and the indexer run in the test process between the steps.
"""

import functools
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait
from web3 import Web3
from web3.types import Wei

from accounts.models import AuditEvent, SmartAccount
from chain.indexer import index_chain
from chain.models import ChainOperation
from sessionkeys.models import Session
from tests.chain import conftest as chain_fixtures
from tests.chain.conftest import advance

from .browser import Page, VirtualAuthenticator

pytestmark = [pytest.mark.e2e, pytest.mark.chain, pytest.mark.django_db(transaction=True)]

addresses = chain_fixtures.addresses
anvil = chain_fixtures.anvil
pipeline_chain = chain_fixtures.pipeline_chain
redis_broker = chain_fixtures.redis_broker
w3 = chain_fixtures.w3

DEMO = Path(__file__).resolve().parents[2] / "demo" / "dapp"
RECIPIENT = Web3.to_checksum_address("0x000000000000000000000000000000000000beef")
WAIT = 30


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def dapp_url() -> Iterator[str]:
    """The demo dapp, served as `make run` serves it, on a second origin."""
    if not (DEMO / "vendor" / "dapp.js").exists():
        pytest.skip("demo/dapp/vendor is filled by make setup")
    server = http.server.ThreadingHTTPServer(
        ("localhost", 0), functools.partial(_Quiet, directory=str(DEMO))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()


def wait_until(page: Page, condition: Callable[[Any], Any], what: str) -> Any:
    try:
        return WebDriverWait(page.driver, WAIT).until(condition)
    except Exception:
        raise AssertionError(
            f"waited for {what}; page: {page.driver.page_source[-2000:]}"
        ) from None


def attribute(page: Page, element_id: str, name: str) -> str:
    return str(page.driver.find_element(By.ID, element_id).get_attribute(name) or "")


def settle(kind: str, *, count: int = 1) -> ChainOperation:
    """Wait for the `count`-th operation of `kind` to be signed, then run it and index."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        operations = list(
            ChainOperation.objects.filter(kind=kind).exclude(status="awaiting_signature")
        )
        if len(operations) >= count:
            operation = sorted(operations, key=lambda o: o.pk)[count - 1]
            status = advance(operation.pk, until={"confirmed", "failed"})
            assert status == "confirmed", (status, operation.pk)
            index_chain()
            return ChainOperation.objects.get(pk=operation.pk)
        time.sleep(0.2)
    raise AssertionError(f"no signed {kind} operation")


CREDENTIAL_FIELDS = (
    "credentialId",
    "isResidentCredential",
    "rpId",
    "privateKey",
    "userHandle",
    "signCount",
)


def plant(page: Page, authenticator_id: str, credentials: list[dict[str, Any]]) -> None:
    for credential in credentials:
        page.driver.execute_cdp_cmd(
            "WebAuthn.addCredential",
            {
                "authenticatorId": authenticator_id,
                "credential": {k: credential[k] for k in CREDENTIAL_FIELDS if k in credential},
            },
        )


def copy_passkeys_into_popup(page: Page, credentials: list[dict[str, Any]]) -> str:
    """The popup is another tab: give it its own virtual authenticator holding the same passkey
    (the same key and signature counter); its id."""
    driver = page.driver
    driver.execute_cdp_cmd("WebAuthn.enable", {"enableUI": False})
    answer = driver.execute_cdp_cmd(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "ctap2Version": "ctap2_1",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    plant(page, answer["authenticatorId"], credentials)
    return str(answer["authenticatorId"])


def send(page: Page, amount: int) -> str:
    page.fill("amount", str(amount))
    page.driver.find_element(By.ID, "transfer-result").get_attribute("data-code")
    page.driver.execute_script("document.getElementById('transfer-result').dataset.code = ''")
    page.press("send-button")
    return str(
        wait_until(
            page,
            lambda d: attribute(page, "transfer-result", "data-code") or None,
            "the transfer's outcome",
        )
    )


def test_a_dapp_gets_a_session_uses_it_within_its_limit_and_loses_it_when_revoked(
    portal_url: str,
    dapp_url: str,
    pipeline_chain: dict[str, str],
    w3: Web3,
    page: Page,
    virtual_authenticator: VirtualAuthenticator,
    browser_sign_up: Callable[..., None],
) -> None:
    browser_sign_up("dana")
    account = SmartAccount.objects.get(user__username="dana")
    assert account.deployment is not None
    assert advance(account.deployment.pk, until="confirmed") == "confirmed"
    index_chain()
    w3.eth.send_transaction(
        {"from": w3.eth.accounts[0], "to": account.address, "value": Wei(10**18)}
    )

    # The dapp asks; the portal's popup shows the request.
    driver = page.driver
    main = driver.current_window_handle
    driver.get(f"{dapp_url}/?portal={portal_url}")
    page.press("session-button")
    wait_until(page, lambda d: len(d.window_handles) == 2, "the popup")
    popup = next(handle for handle in driver.window_handles if handle != main)
    credentials = virtual_authenticator.credentials()
    driver.switch_to.window(popup)
    popup_authenticator = copy_passkeys_into_popup(page, credentials)
    wait_until(
        page,
        lambda d: d.find_element(By.ID, "approve-button").is_enabled(),
        "the review with the dapp's proof",
    )
    assert f"{dapp_url} (never seen before)" in page.text("#review-origin")
    assert driver.find_elements(By.CSS_SELECTOR, '[data-flag="new_origin"]')
    assert "at most 0.0000000000000015 ETH" in page.text("#review-spend")
    page.press("approve-button")
    settle("create_session")
    wait_until(
        page,
        lambda d: d.find_element(By.ID, "connect").get_attribute("data-result"),
        "the popup's answer",
    )
    assert attribute(page, "connect", "data-result") == "approved"
    # The passkey signed in the popup: bring its counter back to the main tab's authenticator.
    used = driver.execute_cdp_cmd(
        "WebAuthn.getCredentials", {"authenticatorId": popup_authenticator}
    )["credentials"]
    driver.close()
    driver.switch_to.window(main)
    virtual_authenticator.clear_credentials()
    plant(page, virtual_authenticator.authenticator_id, used)
    wait_until(
        page,
        lambda d: attribute(page, "session-result", "data-kind") == "success",
        "the granted session",
    )
    assert account.address in page.text("#session-response")
    assert Session.objects.get().status == "active"

    # A transfer within the limit goes through the relay.
    before = w3.eth.get_balance(RECIPIENT)
    page.fill("amount", "1000")
    page.press("send-button")
    settle("session_operation")
    wait_until(
        page,
        lambda d: attribute(page, "transfer-result", "data-code") == "confirmed",
        "the confirmed transfer",
    )
    assert w3.eth.get_balance(RECIPIENT) == before + 1000

    # 1000 more would pass the 1500 allowance: refused with the reason, nothing sent.
    assert send(page, 1000) == "value_limit_exceeded"
    assert "value_limit_exceeded" in page.text("#transfer-result")
    assert ChainOperation.objects.filter(kind="session_operation").count() == 1

    # The person revokes it on /account/sessions.
    page.open("/account/sessions")
    wait_until(
        page, lambda d: d.find_elements(By.CSS_SELECTOR, ".revoke-session"), "the session card"
    )
    assert driver.find_elements(By.CSS_SELECTOR, '.session-limit[data-what="transfer"] progress')
    driver.find_element(By.CSS_SELECTOR, ".revoke-session").click()
    settle("revoke_sessions")
    wait_until(page, lambda d: "Revoked on chain" in page.text("#sessions-message"), "revoked")
    assert Session.objects.get().status == "revoked"

    # Back on the dapp: the same key is refused now.
    driver.get(f"{dapp_url}/?portal={portal_url}")
    wait_until(page, lambda d: d.find_element(By.ID, "send-button").is_enabled(), "the dapp")
    assert send(page, 1) == "session_not_active"


def test_the_person_signs_in_in_the_popup_then_rejects_or_closes_it_and_the_dapp_is_told(
    portal_url: str,
    dapp_url: str,
    pipeline_chain: dict[str, str],
    page: Page,
    virtual_authenticator: VirtualAuthenticator,
    browser_sign_up: Callable[..., None],
) -> None:
    browser_sign_up("erin")
    account = SmartAccount.objects.get(user__username="erin")
    assert account.deployment is not None
    assert advance(account.deployment.pk, until="confirmed") == "confirmed"
    index_chain()
    # The popup signs the person in itself. Signed out, /login starts a passkey autofill request
    # that the virtual authenticator would answer by itself (signing in again): presence is off
    # until the test has left the page, and the sign-out has landed before it leaves.
    virtual_authenticator.set_presence(automatic=False)
    page.sign_out()
    page.wait_for_path("/login")
    driver = page.driver
    main = driver.current_window_handle
    driver.get(f"{dapp_url}/?portal={portal_url}")
    virtual_authenticator.set_presence(automatic=True)

    for action in ("reject", "close"):
        page.press("session-button")
        wait_until(page, lambda d: len(d.window_handles) == 2, "the popup")
        popup = next(handle for handle in driver.window_handles if handle != main)
        credentials = virtual_authenticator.credentials()
        driver.switch_to.window(popup)
        copy_passkeys_into_popup(page, credentials)
        if action == "reject":
            wait_until(
                page, lambda d: d.find_element(By.ID, "sign-in").is_displayed(), "the sign-in"
            )
            page.press("sign-in-button")
        wait_until(
            page, lambda d: d.find_element(By.ID, "reject-button").is_displayed(), "the review"
        )
        if action == "reject":
            page.press("reject-button")
            wait_until(
                page,
                lambda d: attribute(page, "connect", "data-result") == "rejected",
                "the rejection",
            )
        driver.close()
        driver.switch_to.window(main)
        wait_until(page, lambda d: attribute(page, "session-result", "data-code") == "4001", "4001")
        driver.execute_script("document.getElementById('session-result').dataset.code = ''")
    assert not Session.objects.exists()
    # The rejection was posted with the CSRF token the popup's sign-in rotated.
    assert AuditEvent.objects.filter(kind="session_rejected", user__username="erin").count() == 1
