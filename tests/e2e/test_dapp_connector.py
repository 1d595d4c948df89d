"""The portal's connector across two origins in Chromium: the demo dapp (its own origin, viem and
the portal's wagmi connector around its EIP-1193 provider) connects in the portal's /connect popup,
signs a Sign-In with Ethereum message that viem verifies (ERC-6492 before the account is deployed,
ERC-1271 after), sends a transaction and a two-call batch, grants a session key and uses it, then
disconnects; and every refusal: the person rejects, closes the popup, a wrong origin, a method the
portal does not support, a dapp that is not connected.

The pipeline (submit, track) and the indexer run in the test process between the steps.
"""

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from web3 import Web3
from web3.types import Wei

from accounts.models import SmartAccount
from chain.devtools import devnet
from chain.indexer import index_chain
from domains.services import set_lockdown
from sessionkeys.models import CallBundle, DappConnection, Session
from tests.chain import conftest as chain_fixtures
from tests.chain.conftest import advance

from . import test_session_dapp as session_dapp
from .browser import Page, VirtualAuthenticator

pytestmark = [pytest.mark.e2e, pytest.mark.chain, pytest.mark.django_db(transaction=True)]

addresses = chain_fixtures.addresses
anvil = chain_fixtures.anvil
pipeline_chain = chain_fixtures.pipeline_chain
redis_broker = chain_fixtures.redis_broker
w3 = chain_fixtures.w3
dapp_url = session_dapp.dapp_url

wait_until = session_dapp.wait_until
attribute = session_dapp.attribute
settle = session_dapp.settle

CAFE = Web3.to_checksum_address("0x000000000000000000000000000000000000cafe")
FOOD = Web3.to_checksum_address("0x000000000000000000000000000000000000f00d")
BEEF = Web3.to_checksum_address("0x000000000000000000000000000000000000beef")


class Dapp:
    """The demo dapp in the main tab and the portal's popup it opens (another tab, with its own
    virtual authenticator holding the person's passkey)."""

    def __init__(self, page: Page, authenticator: VirtualAuthenticator) -> None:
        self.page = page
        self.driver = page.driver
        self.authenticator = authenticator
        self.main = self.driver.current_window_handle
        self.popup: str | None = None

    def open(self, url: str) -> None:
        self.driver.get(url)
        wait_until(
            self.page,
            lambda d: d.execute_script("return Boolean(window.portalProvider)"),
            "the dapp's provider",
        )

    def press(self, button: str) -> None:
        """Press a button of the dapp; the first press that opens the popup gives it the passkey."""
        self.to_dapp()
        self.driver.execute_script(
            "for (const e of document.querySelectorAll('[data-code]')) e.dataset.code = ''"
        )
        self.page.press(button)

    def to_popup(self) -> None:
        if self.popup is None or self.popup not in self.driver.window_handles:
            wait_until(self.page, lambda d: len(d.window_handles) == 2, "the popup")
            self.popup = next(h for h in self.driver.window_handles if h != self.main)
            credentials = self.authenticator.credentials()
            self.driver.switch_to.window(self.popup)
            session_dapp.copy_passkeys_into_popup(self.page, credentials)
        self.driver.switch_to.window(self.popup)

    def to_dapp(self) -> None:
        self.driver.switch_to.window(self.main)

    def review(self, article: str) -> None:
        """In the popup: wait for the request's review, ready for a decision."""
        self.to_popup()
        try:
            wait_until(
                self.page,
                lambda d: (
                    d.find_element(By.ID, article).is_displayed()
                    and d.find_element(By.ID, "approve-button").is_enabled()
                ),
                f"the review ({article})",
            )
        except AssertionError:
            status = self.page.text("#connect-status")
            self.to_dapp()
            said = [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, "[role=status]")]
            raise AssertionError(
                f"no review ({article}); the popup says: {status}; the dapp: {said}"
            ) from None

    def decide(self, button: str) -> None:
        self.to_popup()
        self.page.press(button)

    def outcome(self, element_id: str) -> str:
        """The dapp's outcome of a request (the data-code of its result line)."""
        self.to_dapp()
        return str(
            wait_until(
                self.page,
                lambda d: attribute(self.page, element_id, "data-code") or None,
                f"the outcome in #{element_id}",
            )
        )

    def call(self, method: str, params: Any = None) -> dict[str, Any]:
        """provider.request({method, params}) in the dapp's page: {result} or {code, message}."""
        self.to_dapp()
        answer = self.driver.execute_async_script(
            """
            const [method, params, done] = arguments;
            window.portalProvider.request({ method, params }).then(
              (result) => done({ result }),
              (error) => done({ code: error.code, message: error.message, data: error.data }),
            );
            """,
            method,
            params,
        )
        return dict(answer)

    def start(self, method: str, params: Any = None) -> None:
        """Start provider.request({method, params}) in the dapp's page; `answer()` waits for it."""
        self.to_dapp()
        self.driver.execute_script(
            """
            const [method, params] = arguments;
            window.testAnswer = null;
            window.portalProvider.request({ method, params }).then(
              (result) => { window.testAnswer = { result }; },
              (error) => { window.testAnswer = { code: error.code, data: error.data || null }; },
            );
            """,
            method,
            params,
        )

    def answer(self) -> dict[str, Any]:
        self.to_dapp()
        return dict(
            wait_until(
                self.page, lambda d: d.execute_script("return window.testAnswer"), "the answer"
            )
        )

    def close_popup(self) -> None:
        if self.popup in self.driver.window_handles:
            self.driver.switch_to.window(self.popup)
            self.driver.close()
        self.popup = None
        self.to_dapp()


@pytest.fixture
def dapp(
    page: Page, virtual_authenticator: VirtualAuthenticator, portal_url: str
) -> Iterator[Dapp]:
    """The dapp driver; any popup left open (a failed test) is closed before the authenticator
    fixture cleans up, so nothing cascades into the next test."""
    page.driver.set_script_timeout(30)
    driver = Dapp(page, virtual_authenticator)
    try:
        yield driver
    finally:
        for handle in driver.driver.window_handles:
            if handle != driver.main:
                driver.driver.switch_to.window(handle)
                driver.driver.close()
        driver.driver.switch_to.window(driver.main)


def signed_up(browser_sign_up: Callable[..., None], username: str) -> SmartAccount:
    browser_sign_up(username)
    account = SmartAccount.objects.get(user__username=username)
    assert account.deployment is not None
    return account


def deploy_and_fund(account: SmartAccount, w3: Web3) -> None:
    assert account.deployment is not None
    assert advance(account.deployment.pk, until="confirmed") == "confirmed"
    index_chain()
    w3.eth.send_transaction(
        {"from": w3.eth.accounts[0], "to": account.address, "value": Wei(10**18)}
    )


def connect(dapp: Dapp) -> None:
    dapp.press("connect-button")
    dapp.review("connection-review")
    dapp.decide("approve-button")
    assert dapp.outcome("connect-result") == "connected"


def test_a_dapp_connects_signs_sends_a_transaction_and_a_batch_gets_a_session_key_and_disconnects(
    portal_url: str,
    dapp_url: str,
    anvil: devnet.Anvil,
    pipeline_chain: dict[str, str],
    w3: Web3,
    page: Page,
    dapp: Dapp,
    browser_sign_up: Callable[..., None],
) -> None:
    account = signed_up(browser_sign_up, "fay")
    dapp.open(f"{dapp_url}/?portal={quote(portal_url)}&rpc={quote(anvil.url)}")

    # Connect: the popup names the dapp and warns that it was never connected before.
    dapp.press("connect-button")
    dapp.review("connection-review")
    assert dapp_url in page.text("#dapp-origin")
    assert page.driver.find_elements(By.CSS_SELECTOR, '[data-flag="new_origin"]')
    dapp.decide("approve-button")
    assert dapp.outcome("connect-result") == "connected"
    assert account.address in page.text("#account")
    connection = DappConnection.objects.get()
    assert (connection.origin, connection.disconnected_at) == (dapp_url, None)

    # A Sign-In with Ethereum message, before the account is deployed: viem verifies it (ERC-6492).
    dapp.press("sign-button")
    dapp.review("message-review")
    assert f"{dapp_url.removeprefix('http://')} wants you to sign in" in page.text("#message-text")
    assert "Sign in to the demo dapp." in page.text("#message-text")
    dapp.decide("approve-button")
    assert dapp.outcome("sign-result") == "valid-ERC-6492"
    assert not w3.eth.get_code(Web3.to_checksum_address(account.address))

    # Deployed: the same kind of message (and typed data) checks through ERC-1271.
    deploy_and_fund(account, w3)
    dapp.press("sign-button")
    dapp.review("message-review")
    dapp.decide("approve-button")
    assert dapp.outcome("sign-result") == "valid-ERC-1271"
    dapp.press("typed-button")
    dapp.review("message-review")
    assert "message.text: Hello from the demo dapp" in page.text("#message-fields")
    dapp.decide("approve-button")
    assert dapp.outcome("typed-result") == "valid-ERC-1271"

    # A transaction: the popup shows the call, its value and the simulated balance change.
    before = w3.eth.get_balance(CAFE)
    dapp.press("tx-button")
    dapp.review("calls-review")
    assert CAFE.lower() in page.text("#calls-list").lower()
    assert "0.000000000000001 ETH" in page.text("#calls-value")
    assert page.text("#calls-simulation") == "Succeeds"
    assert "ETH: -0.000000000000001 ETH" in page.text("#calls-balance")
    dapp.decide("approve-button")
    settle("dapp.calls")
    assert dapp.outcome("tx-result") == "confirmed"
    assert w3.eth.get_balance(CAFE) == before + 1000

    # Two calls in one user operation (EIP-5792), followed with wallet_getCallsStatus.
    before_cafe, before_food = w3.eth.get_balance(CAFE), w3.eth.get_balance(FOOD)
    dapp.press("batch-button")
    dapp.review("calls-review")
    assert len(page.driver.find_elements(By.CSS_SELECTOR, "#calls-list li")) == 2
    assert "0.0000000000000003 ETH" in page.text("#calls-value")
    dapp.decide("approve-button")
    settle("dapp.calls", count=2)
    assert dapp.outcome("batch-result") == "success"
    assert w3.eth.get_balance(CAFE) == before_cafe + 100
    assert w3.eth.get_balance(FOOD) == before_food + 200
    assert '"status": "success"' in page.text("#batch-status")
    assert CallBundle.objects.count() == 2

    # A session key through the provider (wallet_requestExecutionPermissions), used by the dapp.
    dapp.press("session-button")
    dapp.review("review")
    assert "at most 0.0000000000000015 ETH" in page.text("#review-spend")
    dapp.decide("approve-button")
    settle("create_session")
    assert dapp.outcome("session-result") == "granted"
    assert Session.objects.get().origin == dapp_url
    before = w3.eth.get_balance(BEEF)
    dapp.press("send-button")
    settle("session_operation")
    assert dapp.outcome("transfer-result") == "confirmed"
    assert w3.eth.get_balance(BEEF) == before + 1000

    # The dapp gives it back (wallet_revokeExecutionPermission), approved with the passkey.
    dapp.press("revoke-button")
    dapp.review("revoke-review")
    dapp.decide("approve-button")
    settle("revoke_sessions")
    assert dapp.outcome("session-result") == "revoked"
    assert Session.objects.get().status == "revoked"

    # Disconnect: the popup tells the portal and closes; the dapp has no account any more.
    dapp.press("disconnect-button")
    assert dapp.outcome("connect-result") == "disconnected"
    wait_until(page, lambda d: len(d.window_handles) == 1, "the popup to close")
    assert dapp.call("eth_accounts") == {"result": []}
    connection.refresh_from_db()
    assert connection.disconnected_at is not None
    assert dapp.call("personal_sign", ["0x68", account.address])["code"] == 4100


def test_the_person_rejects_or_closes_the_popup_and_the_dapp_gets_4001(
    portal_url: str,
    dapp_url: str,
    anvil: devnet.Anvil,
    pipeline_chain: dict[str, str],
    w3: Web3,
    page: Page,
    dapp: Dapp,
    browser_sign_up: Callable[..., None],
) -> None:
    account = signed_up(browser_sign_up, "gus")
    deploy_and_fund(account, w3)
    dapp.open(f"{dapp_url}/?portal={quote(portal_url)}&rpc={quote(anvil.url)}")

    # Rejecting the connection; meanwhile a forged answer (right id, wrong origin and window) is
    # ignored by the provider.
    page.driver.execute_script("crypto.randomUUID = () => 'known-id'")
    dapp.press("connect-button")
    dapp.review("connection-review")
    dapp.to_dapp()
    page.driver.execute_script(
        """
        const forged = { type: "portal:response", id: "known-id", result: [arguments[0]] };
        window.postMessage(forged, "*");
        """,
        BEEF,
    )
    time.sleep(1)
    assert attribute(page, "connect-result", "data-code") == ""
    dapp.decide("reject-button")
    assert dapp.outcome("connect-result") == "4001"
    assert attribute(page, "account", "textContent") == "not connected"
    assert not DappConnection.objects.exists()

    # Closing the popup while it shows the connection.
    dapp.close_popup()
    dapp.press("connect-button")
    dapp.review("connection-review")
    dapp.close_popup()
    assert dapp.outcome("connect-result") == "4001"
    assert not DappConnection.objects.exists()

    # Connected: a batch that requires a capability the portal lacks is refused before any
    # review (EIP-5792 5700); one for another chain is invalid.
    connect(dapp)
    batch = {"version": "2.0.0", "chainId": "0x7a69", "from": account.address}
    calls = [{"to": CAFE, "value": "0x1"}]
    paymaster = {"paymasterService": {"url": "https://paymaster.example"}}
    dapp.start("wallet_sendCalls", [{**batch, "calls": calls, "capabilities": paymaster}])
    assert dapp.answer() == {"code": 5700, "data": {"code": "unsupported_capability"}}
    dapp.start("wallet_sendCalls", [{**batch, "chainId": "0x1", "calls": calls}])
    assert dapp.answer() == {"code": -32602, "data": {"code": "wrong_chain"}}

    # Rejecting a message, then closing the popup on a transaction's review.
    dapp.press("sign-button")
    dapp.review("message-review")
    dapp.decide("reject-button")
    assert dapp.outcome("sign-result") == "4001"
    dapp.to_popup()
    assert attribute(page, "connect", "data-result") == "rejected"
    dapp.press("tx-button")
    dapp.review("calls-review")
    dapp.close_popup()
    assert dapp.outcome("tx-result") == "4001"
    assert not CallBundle.objects.exists()
    assert dapp.call("eth_accounts") == {"result": [account.address]}


def test_methods_the_portal_does_not_support_and_a_dapp_not_connected_are_refused_without_a_popup(
    portal_url: str,
    dapp_url: str,
    pipeline_chain: dict[str, str],
    page: Page,
    dapp: Dapp,
    browser_sign_up: Callable[..., None],
) -> None:
    account = signed_up(browser_sign_up, "hal")
    dapp.open(f"{dapp_url}/?portal={quote(portal_url)}")

    for method, params in [
        ("eth_sign", [account.address, "0x68"]),
        ("eth_signTransaction", [{"to": account.address}]),
        ("wallet_switchEthereumChain", [{"chainId": "0x1"}]),
    ]:
        assert dapp.call(method, params)["code"] == 4200, method
    for method, params in [
        ("personal_sign", ["0x68", account.address]),
        ("eth_signTypedData_v4", [account.address, "{}"]),
        ("eth_sendTransaction", [{"to": account.address, "value": "0x1"}]),
        ("wallet_sendCalls", [{"version": "2.0.0", "calls": [{"to": account.address}]}]),
    ]:
        assert dapp.call(method, params)["code"] == 4100, method
    assert dapp.call("eth_accounts") == {"result": []}
    assert dapp.call("eth_chainId") == {"result": "0x7a69"}
    assert len(page.driver.window_handles) == 1

    # Public answers, without a popup: the capabilities, and an unknown bundle (EIP-5792 5730).
    capabilities = dapp.call("wallet_getCapabilities", [account.address, ["0x7a69"]])["result"]
    assert capabilities["0x7a69"]["atomic"] == {"status": "supported"}
    assert dapp.call("wallet_getCallsStatus", ["0x" + "ab" * 32])["code"] == 5730
    assert len(page.driver.window_handles) == 1


def test_the_popup_answers_only_the_origin_it_was_opened_for_and_never_the_portal_itself(
    portal_url: str,
    dapp_url: str,
    page: Page,
    dapp: Dapp,
    browser_sign_up: Callable[..., None],
) -> None:
    browser_sign_up("ida")
    dapp.open(f"{dapp_url}/?portal={quote(portal_url)}")

    # The dapp opens /connect for another origin (127.0.0.1 is not localhost): the popup's ready
    # message is addressed to that origin, so the dapp never hears it, and the dapp's requests
    # (from the wrong origin) are ignored.
    other = dapp_url.replace("localhost", "127.0.0.1")
    heard = page.driver.execute_async_script(
        """
        const [portal, other, done] = arguments;
        const heard = [];
        window.addEventListener("message", (event) => {
          if (event.origin === portal) heard.push(event.data);
        });
        const popup = window.open(`${portal}/connect?origin=${encodeURIComponent(other)}`, "wrong");
        setTimeout(() => {
          popup.postMessage({ type: "portal:request", id: 1, method: "eth_requestAccounts" }, "*");
        }, 2000);
        setTimeout(() => done(heard), 4000);
        """,
        portal_url,
        other,
    )
    assert heard == []
    dapp.to_popup()
    assert page.text("#dapp-origin") == other
    assert (
        page.text("#connect-status")
        == "Waiting for the dapp\N{RIGHT SINGLE QUOTATION MARK}s request…"
    )
    assert not page.driver.find_element(By.ID, "decision").is_displayed()
    dapp.close_popup()

    # The same page with the right origin hears the ready message, and the popup refuses a
    # method it does not support with 4200.
    answer = page.driver.execute_async_script(
        """
        const [portal, done] = arguments;
        const url = `${portal}/connect?origin=${encodeURIComponent(location.origin)}`;
        const popup = window.open(url, "right");
        window.addEventListener("message", (event) => {
          if (event.origin !== portal || event.source !== popup) return;
          if (event.data.type === "portal:ready") {
            const request = { type: "portal:request", id: "x", method: "eth_sign", params: [] };
            popup.postMessage(request, portal);
          } else if (event.data.type === "portal:response") {
            done(event.data);
          }
        });
        """,
        portal_url,
    )
    assert answer["id"] == "x"
    assert answer["error"]["code"] == 4200
    dapp.close_popup()

    # The portal's own origin (and anything that is not an origin) cannot open /connect.
    for origin in (portal_url, "javascript:alert(1)", f"{dapp_url}/path"):
        page.open(f"/connect?origin={quote(origin, safe='')}")
        assert "This link is not valid" in page.text("h1"), origin
        assert not page.driver.find_elements(By.ID, "connect")


def test_under_lockdown_the_popup_refuses_a_call_that_changes_who_controls_the_account(
    portal_url: str,
    dapp_url: str,
    anvil: devnet.Anvil,
    pipeline_chain: dict[str, str],
    w3: Web3,
    page: Page,
    dapp: Dapp,
    browser_sign_up: Callable[..., None],
) -> None:
    account = signed_up(browser_sign_up, "joan")
    deploy_and_fund(account, w3)
    dapp.open(f"{dapp_url}/?portal={quote(portal_url)}&rpc={quote(anvil.url)}")
    connect(dapp)
    set_lockdown(enabled=True, reason="CAA changed", actor=None, client=None)

    # A call to the account itself (its modules decide who controls it): refused, shown, 4100.
    dapp.start("eth_sendTransaction", [{"to": account.address, "data": "0x12345678"}])
    assert dapp.answer() == {"code": 4100, "data": {"code": "lockdown"}}
    dapp.to_popup()
    assert "lockdown" in page.text("#connect-status")
    assert attribute(page, "connect", "data-result") == "failed"
    assert not page.driver.find_element(By.ID, "calls-review").is_displayed()
    assert not CallBundle.objects.exists()

    # A plain transfer still goes to the review.
    dapp.start("eth_sendTransaction", [{"to": CAFE, "value": "0x1"}])
    dapp.review("calls-review")
    dapp.decide("reject-button")
    assert dapp.answer()["code"] == 4001


def test_a_blocked_popup_is_4900_and_nothing_is_asked(
    portal_url: str, dapp_url: str, page: Page, dapp: Dapp
) -> None:
    dapp.open(f"{dapp_url}/?portal={quote(portal_url)}")
    page.driver.execute_script("window.open = () => null")  # what a popup blocker does
    answer = dapp.call("eth_requestAccounts")
    assert answer["code"] == 4900
    assert "allow popups" in answer["message"]
    assert dapp.call("eth_accounts") == {"result": []}
