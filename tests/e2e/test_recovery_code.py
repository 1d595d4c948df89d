"""The recovery code in Chromium: Alice makes a code on /account/recovery (drawn and turned into
a key by her browser, shown once on a printable sheet) and installs it with her passkey; she
loses her device, types her username and the code on /recover on a new one, and her browser
starts the recovery on chain through the portal's relayer; 24 hours pass on anvil, beat's task
finalizes, and she signs in with the new passkey."""

from collections.abc import Callable

import pytest
from selenium.webdriver.common.by import By

from accounts.models import SmartAccount
from chain.devtools import devnet
from chain.indexer import index_chain
from chain.models import ChainOperation
from passkeys.models import Passkey
from recovery.models import Guardian, RecoveryRequest
from recovery.tasks import recovery_deadlines
from tests.chain.conftest import (  # noqa: F401
    PipelineKit,
    addresses,
    advance,
    anvil,
    pipeline_chain,
    pipeline_kit,
    redis_broker,
    w3,
)
from tests.e2e.test_recovery import click, settle_latest, wait_for
from tests.recovery.conftest import move_chain_time
from tests.recovery.recovery_code import key_of

from .browser import Page, VirtualAuthenticator

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

Status = ChainOperation.Status
DAY = 24 * 3600


def test_alice_recovers_with_her_recovery_code(
    page: Page,
    pipeline_kit: PipelineKit,  # noqa: F811
    anvil: devnet.Anvil,  # noqa: F811
    virtual_authenticator: VirtualAuthenticator,
    add_authenticator: Callable[..., VirtualAuthenticator],
    browser_sign_up: Callable[..., None],
) -> None:
    browser_sign_up("alice")
    account = SmartAccount.objects.get(user__username="alice")
    assert account.deployment is not None
    advance(account.deployment.pk, until=Status.CONFIRMED)
    index_chain()

    page.open("/account/recovery")
    assert "You have no recovery code" in page.text("#recovery-code-section")
    click(page, "#recovery-code-create")
    code = str(wait_for(page, "#recovery-code-sheet:not([hidden]) #recovery-code-value").text)
    guardian = Guardian.objects.get(kind=Guardian.Kind.RECOVERY_KEY)
    assert guardian.address == key_of(code).address  # the documented derivation
    assert "alice" in page.text("#recovery-code-sheet")
    page.screenshot("recovery-code-sheet")
    # Printed, the sheet is all there is on the page.
    page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    visibility = page.driver.execute_script(
        "return ['#guardians', '#recovery-code-heading', '#recovery-code-value', "
        "'#recovery-code-print'].map(s => { const e = document.querySelector(s); "
        "if (e.getClientRects().length === 0) return 'not rendered'; "
        "return getComputedStyle(e).visibility; })"
    )
    assert visibility == ["hidden", "hidden", "visible", "not rendered"]
    page.driver.execute_script("window.scrollTo(0, 0)")
    page.screenshot("recovery-code-printed")
    page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    click(page, "#recovery-code-install")
    settle_latest(page, "create_recovery_code")
    guardian.refresh_from_db()
    assert guardian.status == Guardian.Status.ACTIVE
    page.open("/account/recovery")
    assert "You have an active recovery code" in page.text("#recovery-code-section")
    assert code not in page.driver.page_source

    # Alice loses her phone; on a new device she types her username and the code.
    virtual_authenticator.remove()
    new_device = add_authenticator()
    page.driver.delete_all_cookies()
    page.open("/recover")
    page.fill("recover-username", "alice")
    page.fill("recover-passkey-name", "New phone")
    page.fill("recover-code", code.lower())
    page.press("recover-button")
    wait_for(page, "#recovery-status")
    operation = settle_latest(page, "initialize_recovery_with_code")
    assert operation.user_operation is None  # the relayer's own transaction
    request = RecoveryRequest.objects.get()
    assert request.status == RecoveryRequest.Status.INITIATED
    assert request.initiated_by == guardian.address
    wait_for(page, '#recovery-status[data-status="initiated"]')
    assert page.driver.find_element(By.ID, "recovery-code-form").get_attribute("hidden")
    page.screenshot("recovery-code-started")

    move_chain_time(anvil, DAY + 5)
    assert recovery_deadlines() == {"finalizing": 1, "expired": 0}
    settle_latest(page, "finalize_recovery")
    request.refresh_from_db()
    assert request.status == RecoveryRequest.Status.FINALIZED
    assert request.passkey is not None and request.passkey.onchain == Passkey.OnChain.ACTIVE

    new_device.set_presence(automatic=False)
    page.open("/login")
    page.wait_for_autofill()
    new_device.set_presence(automatic=True)
    page.fill("username", "alice")
    page.press("passkey-button")
    page.wait_for_path("/account")


def test_a_mistyped_code_is_caught_before_any_passkey_is_made(
    page: Page,
    pipeline_kit: PipelineKit,  # noqa: F811
    virtual_authenticator: VirtualAuthenticator,
    browser_sign_up: Callable[..., None],
) -> None:
    browser_sign_up("alice")
    page.driver.delete_all_cookies()
    page.open("/recover")
    page.fill("recover-username", "alice")
    page.fill("recover-code", "ABCD-EFGH-JKMN")
    page.press("recover-button")
    assert "32 letters and digits" in page.wait_for_message()
    assert not RecoveryRequest.objects.exists()
