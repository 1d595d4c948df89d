"""Guardian recovery in Chromium: Alice adds Bob as a guardian, Bob accepts, Alice loses her
device, starts a recovery on a new one, Bob approves after hearing the code, 24 hours pass on
anvil, the beat task finalizes, and Alice signs in with the new passkey and removes the lost one.
Then: the owner cancels from a device that still works; a request expires after 72 hours.

The worker's part (submit, track), the indexer and beat's task run in the test process between
the steps a person takes. Bob is a person with his own device: his passkey is planted in a second
virtual authenticator, and his session is a signed-in cookie."""

from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from django.conf import settings
from django.test import Client
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

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
from tests.recovery.conftest import move_chain_time

from .browser import WAIT_SECONDS, Page, VirtualAuthenticator

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

Status = ChainOperation.Status
DAY = 24 * 3600


def settle_latest(page: Page, kind: str) -> ChainOperation:
    """Wait until the person approved the newest operation of `kind`, run it to the end, then
    index the chain."""
    try:
        WebDriverWait(page.driver, WAIT_SECONDS, poll_frequency=0.1).until(
            lambda _: (
                ChainOperation.objects.filter(kind=kind)
                .exclude(status=Status.AWAITING_SIGNATURE)
                .exists()
            )
        )
    except TimeoutException:
        said = page.driver.execute_script(
            "return [...document.querySelectorAll('.message')].map(e => e.textContent)"
        )
        raise AssertionError(f"{kind} was not approved; the page says {said}") from None
    operation = ChainOperation.objects.filter(kind=kind).latest("pk")
    advance(operation.pk, until={Status.CONFIRMED, Status.FAILED})
    operation.refresh_from_db()
    assert operation.status == Status.CONFIRMED, (operation.status, operation.revert_reason)
    index_chain()
    return operation


def wait_for(page: Page, selector: str) -> Any:
    return WebDriverWait(page.driver, WAIT_SECONDS).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector))
    )


def click(page: Page, selector: str) -> None:
    wait_for(page, selector).click()


def sign_in_as(page: Page, user: Any) -> None:
    """A signed-in browser session for `user` (as if they had signed in on their device)."""
    client = Client()
    client.force_login(user)
    page.driver.delete_all_cookies()
    page.open("/healthz")
    page.driver.add_cookie(
        {
            "name": settings.SESSION_COOKIE_NAME,
            "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        }
    )


def bobs_device(
    kit: PipelineKit, add_authenticator: Callable[..., VirtualAuthenticator], page: Page
) -> tuple[Any, VirtualAuthenticator]:
    """Bob, deployed on chain, with his passkey in a security key plugged into the browser."""
    bob, passkey, _account = kit.deployed_account("bob")
    software = kit.authenticator.credentials[bytes(passkey.credential_id)]
    Passkey.objects.filter(pk=passkey.pk).update(transports=["usb"])
    key = add_authenticator(transport="usb")
    key.add_credential(
        credential_id=bytes(passkey.credential_id),
        private_key_pkcs8=software.private_key.private_bytes(
            Encoding.DER, PrivateFormat.PKCS8, NoEncryption()
        ),
        rp_id="localhost",
        user_handle=bytes(bob.user_handle),
    )
    return bob, key


def alice_with_bob_as_guardian(
    page: Page,
    kit: PipelineKit,
    alice_device: VirtualAuthenticator,
    add_authenticator: Callable[..., VirtualAuthenticator],
    browser_sign_up: Callable[..., None],
) -> tuple[Any, VirtualAuthenticator]:
    browser_sign_up("alice")
    account = SmartAccount.objects.get(user__username="alice")
    assert account.deployment is not None
    advance(account.deployment.pk, until=Status.CONFIRMED)
    index_chain()
    bob, bob_key = bobs_device(kit, add_authenticator, page)
    bob_key.set_presence(automatic=False)

    # Alice proposes Bob on /account/recovery and approves with her passkey.
    page.open("/account/recovery")
    assert "No guardian" in page.text("#resilience")
    page.fill("guardian-username", "bob")
    page.press("guardian-propose")
    settle_latest(page, "propose_guardian")
    guardian = Guardian.objects.get()
    assert guardian.proposed_on_chain

    # Bob, on his device, sees the invitation on his account page and accepts with his passkey.
    alice_device.set_presence(automatic=False)
    bob_key.set_presence(automatic=True)
    sign_in_as(page, bob)
    page.open("/account")
    assert "alice asks you to be a recovery guardian" in page.text("#recovery-notices")
    click(page, f"#guardian-invitation-{guardian.pk} .guardian-accept")
    settle_latest(page, "accept_guardian")
    guardian.refresh_from_db()
    assert guardian.status == Guardian.Status.ACTIVE
    page.screenshot("recovery-guardian-accepted")
    return bob, bob_key


def start_on_new_device(
    page: Page, add_authenticator: Callable[..., VirtualAuthenticator]
) -> tuple[VirtualAuthenticator, str, RecoveryRequest]:
    new_device = add_authenticator()
    page.driver.delete_all_cookies()
    page.open("/recover")
    page.fill("recover-username", "alice")
    page.fill("recover-passkey-name", "New phone")
    page.press("recover-button")
    code_element = wait_for(page, "#recovery-code-card:not([hidden]) #recovery-code")
    code = str(code_element.text)
    request = RecoveryRequest.objects.get(status=RecoveryRequest.Status.PENDING_APPROVAL)
    assert page.driver.current_url.endswith(f"/recover/{request.public_id}")
    assert request.fingerprint in page.text("#recovery-fingerprint")
    page.screenshot("recovery-started")
    return new_device, code, request


def bob_approves(page: Page, bob: Any, request: RecoveryRequest, code: str) -> None:
    sign_in_as(page, bob)
    page.open("/account/recovery")
    banner = f"#recovery-guardian-{request.public_id}"
    assert request.fingerprint in page.text(banner)
    page.fill(f"approve-code-{request.public_id}", code)
    click(page, f"{banner} .recovery-approve-button")
    settle_latest(page, "initialize_recovery")
    request.refresh_from_db()
    assert request.status == RecoveryRequest.Status.INITIATED


def test_alice_recovers_with_bob_and_removes_the_lost_passkey(
    page: Page,
    pipeline_kit: PipelineKit,  # noqa: F811
    anvil: devnet.Anvil,  # noqa: F811
    virtual_authenticator: VirtualAuthenticator,
    add_authenticator: Callable[..., VirtualAuthenticator],
    browser_sign_up: Callable[..., None],
) -> None:
    bob, bob_key = alice_with_bob_as_guardian(
        page, pipeline_kit, virtual_authenticator, add_authenticator, browser_sign_up
    )
    lost = Passkey.objects.get(user__username="alice")

    # Alice loses her phone.
    virtual_authenticator.remove()
    bob_key.set_presence(automatic=False)
    new_device, code, request = start_on_new_device(page, add_authenticator)

    new_device.set_presence(automatic=False)
    bob_key.set_presence(automatic=True)
    bob_approves(page, bob, request, code)

    # A day passes on chain; beat's task finalizes.
    move_chain_time(anvil, DAY + 5)
    assert recovery_deadlines() == {"finalizing": 1, "expired": 0}
    settle_latest(page, "finalize_recovery")
    request.refresh_from_db()
    assert request.status == RecoveryRequest.Status.FINALIZED
    assert request.passkey is not None and request.passkey.onchain == Passkey.OnChain.ACTIVE

    # Alice's countdown page says so; she signs in with the new passkey.
    bob_key.set_presence(automatic=False)
    new_device.set_presence(automatic=True)
    page.driver.delete_all_cookies()
    page.open(f"/recover/{request.public_id}")
    wait_for(page, '#recovery-status[data-status="finalized"]')
    page.screenshot("recovery-finalized")
    new_device.set_presence(automatic=False)
    page.open("/login")
    page.wait_for_autofill()
    new_device.set_presence(automatic=True)
    page.fill("username", "alice")
    page.press("passkey-button")
    page.wait_for_path("/account")

    # ... and removes the lost one, approving its removal on chain with the new passkey.
    page.open("/account/passkeys")
    page.driver.find_element(By.CSS_SELECTOR, f"#passkey-{lost.pk} .delete-button").click()
    WebDriverWait(page.driver, WAIT_SECONDS).until(expected_conditions.alert_is_present()).accept()
    WebDriverWait(page.driver, WAIT_SECONDS).until(
        lambda _: not Passkey.objects.filter(pk=lost.pk).exists()
    )
    page.open("/account/passkeys")
    click(page, '#operations li[data-kind="remove_passkey"] .approve-operation')
    settle_latest(page, "remove_passkey")
    assert list(Passkey.objects.filter(user__username="alice")) == [request.passkey]


def test_the_owner_cancels_from_a_device_that_still_works(
    page: Page,
    pipeline_kit: PipelineKit,  # noqa: F811
    anvil: devnet.Anvil,  # noqa: F811
    virtual_authenticator: VirtualAuthenticator,
    add_authenticator: Callable[..., VirtualAuthenticator],
    browser_sign_up: Callable[..., None],
) -> None:
    bob, bob_key = alice_with_bob_as_guardian(
        page, pipeline_kit, virtual_authenticator, add_authenticator, browser_sign_up
    )
    alice = SmartAccount.objects.get(user__username="alice").user
    # Someone else starts a recovery of Alice's account (here, from this browser, with a usb key).
    bob_key.set_presence(automatic=False)
    virtual_authenticator.set_presence(automatic=False)
    stranger = add_authenticator(transport="usb")
    page.driver.delete_all_cookies()
    page.open("/recover")
    page.fill("recover-username", "alice")
    page.press("recover-button")
    code = str(wait_for(page, "#recovery-code-card:not([hidden]) #recovery-code").text)
    request = RecoveryRequest.objects.get()
    stranger.set_presence(automatic=False)
    bob_key.set_presence(automatic=True)
    bob_approves(page, bob, request, code)

    # Alice's phone still works: every page shows the recovery, with a cancel button.
    bob_key.set_presence(automatic=False)
    virtual_authenticator.set_presence(automatic=True)
    sign_in_as(page, alice)
    page.open("/account")
    banner = f"#recovery-owner-{request.public_id}"
    assert "Someone is recovering your account" in page.text(banner)
    page.screenshot("recovery-owner-banner")
    click(page, f"{banner} .recovery-discard")
    settle_latest(page, "discard_recovery")
    request.refresh_from_db()
    assert request.status == RecoveryRequest.Status.DISCARDED

    # The requester's page says so.
    page.driver.delete_all_cookies()
    page.open(f"/recover/{request.public_id}")
    wait_for(page, '#recovery-status[data-status="discarded"]')
    WebDriverWait(page.driver, WAIT_SECONDS).until(
        lambda _: "cancelled it" in page.text("#recovery-countdown")
    )


def test_a_request_expires_after_72_hours(
    page: Page,
    pipeline_kit: PipelineKit,  # noqa: F811
    anvil: devnet.Anvil,  # noqa: F811
    virtual_authenticator: VirtualAuthenticator,
    add_authenticator: Callable[..., VirtualAuthenticator],
    browser_sign_up: Callable[..., None],
) -> None:
    bob, bob_key = alice_with_bob_as_guardian(
        page, pipeline_kit, virtual_authenticator, add_authenticator, browser_sign_up
    )
    virtual_authenticator.remove()
    bob_key.set_presence(automatic=False)
    new_device, code, request = start_on_new_device(page, add_authenticator)
    new_device.set_presence(automatic=False)
    bob_key.set_presence(automatic=True)
    bob_approves(page, bob, request, code)

    move_chain_time(anvil, 3 * DAY)
    assert recovery_deadlines() == {"finalizing": 0, "expired": 1}
    page.driver.delete_all_cookies()
    page.open(f"/recover/{request.public_id}")
    wait_for(page, '#recovery-status[data-status="expired"]')
    WebDriverWait(page.driver, WAIT_SECONDS).until(
        lambda _: "72-hour window" in page.text("#recovery-countdown")
    )
    page.screenshot("recovery-expired")
