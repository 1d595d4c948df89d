"""In a real browser: sign up → the smart account is deployed on anvil → a second passkey is added
and approved on the same page with the first one → the validator on chain holds both keys.

The worker's part (submit, track) and the indexer run in the test process, in between the steps a
person takes, so that every step is observed in order.
"""

from collections.abc import Callable
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait
from web3 import Web3

from accounts.models import SmartAccount
from accounts.smart_accounts import chain_origin
from chain.client import contract
from chain.indexer import index_chain
from chain.models import ChainOperation
from passkeys.models import Passkey
from passkeys.onchain import ADD_PASSKEY

# The chain fixtures (a session anvil with the contracts, a private Redis broker, the Deployment
# rows) live with the chain tests; importing them makes them available here.
from tests.chain.conftest import (  # noqa: F401
    addresses,
    advance,
    anvil,
    pipeline_chain,
    redis_broker,
    w3,
)

from .browser import WAIT_SECONDS, Page, VirtualAuthenticator

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

Status = ChainOperation.Status


def settle(operation: ChainOperation) -> ChainOperation:
    advance(operation.pk, until={Status.CONFIRMED, Status.FAILED})
    operation.refresh_from_db()
    return operation


def wait_for(page: Page, selector: str) -> None:
    WebDriverWait(page.driver, WAIT_SECONDS).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector))
    )


def key_of(web3: Web3, validator: str, account: str, passkey: Passkey) -> list[bytes]:
    handle = contract(web3, "WebAuthnValidator", validator)
    key = handle.functions.getAccountKey(
        chain_origin(), bytes(passkey.credential_id), Web3.to_checksum_address(account)
    ).call()
    return [bytes(part) for part in key]


def test_sign_up_deploys_the_account_and_a_second_passkey_is_approved_by_the_first(
    portal_url: str,
    pipeline_chain: dict[str, str],  # noqa: F811 - the fixture imported above
    w3: Web3,  # noqa: F811
    page: Page,
    virtual_authenticator: VirtualAuthenticator,
    add_authenticator: Callable[..., VirtualAuthenticator],
    browser_sign_up: Callable[..., None],
    settings: Any,
) -> None:
    browser_sign_up("ada")
    account = SmartAccount.objects.get(user__username="ada")
    assert account.status == SmartAccount.Status.DEPLOYING
    assert account.address in page.text("#smart-account")
    wait_for(page, '#operations li[data-kind="deploy_account"]')

    assert account.deployment is not None
    assert settle(account.deployment).status == Status.CONFIRMED
    index_chain()
    wait_for(page, '#account-status[data-status="deployed"]')
    assert w3.eth.get_code(Web3.to_checksum_address(account.address)) != b""
    first = Passkey.objects.get(user__username="ada")
    assert first.onchain == Passkey.OnChain.ACTIVE
    page.screenshot("account-deployed")

    # Add a security key from the passkeys page: the internal authenticator stays out of it.
    page.open("/account/passkeys")
    wait_for(page, '#passkey-list[data-ready="true"]')
    key = add_authenticator(transport="usb")
    virtual_authenticator.set_presence(automatic=False)
    page.press("hint-security-key")
    page.fill("new-name", "Blue key")
    page.press("add-button")
    page.wait_for_saying("Added “Blue key”.")
    second = Passkey.objects.get(user__username="ada", name="Blue key")
    assert second.onchain == Passkey.OnChain.PENDING

    # "Approve with a passkey you already have": only the first passkey is on chain.
    wait_for(page, '#operations li[data-kind="add_passkey"][data-status="awaiting_signature"]')
    key.set_presence(automatic=False)
    virtual_authenticator.set_presence(automatic=True)
    page.driver.find_element(By.CSS_SELECTOR, ".approve-operation").click()
    wait_for(
        page, '#operations li[data-kind="add_passkey"]:not([data-status="awaiting_signature"])'
    )
    operation = ChainOperation.objects.get(kind=ADD_PASSKEY)
    assert operation.status == Status.SIGNED

    assert settle(operation).status == Status.CONFIRMED
    index_chain()
    wait_for(page, '#operations li[data-kind="add_passkey"][data-status="confirmed"]')
    page.screenshot("passkey-approved-on-chain")

    second.refresh_from_db()
    assert second.onchain == Passkey.OnChain.ACTIVE
    validator = pipeline_chain["WebAuthnValidator"]
    for passkey in (first, second):
        assert key_of(w3, validator, account.address, passkey) != [bytes(32), bytes(32)]
