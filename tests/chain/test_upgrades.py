"""Accounts are beacon proxies: upgrading the beacon upgrades every account, storage intact; only
the beacon's owner can. And passkeys still verify on a chain without the P256 precompile."""

from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_checksum_address
from web3 import Web3
from web3.logs import DISCARD

from chain import userops
from chain.client import Sender, TransactionFailed, account_from_key, connect
from chain.devtools import compiler, deploy, devnet
from chain.devtools.authenticator import SoftwarePasskey
from chain.devtools.devkit import ANVIL_KEYS, Harness
from tests.chain.conftest import ORIGIN

pytestmark = pytest.mark.chain

V2 = Path(__file__).parent / "contracts" / "AccountV2.sol"
RECIPIENT = "0x000000000000000000000000000000000000bEEF"


@pytest.fixture(scope="session")
def v2_artifact() -> dict[str, Any]:
    unit = "tests/chain/contracts/AccountV2.sol"
    built = compiler.compile_sources({unit: V2.read_text()}, wanted={unit: ("AccountV2",)})
    return built[0].data


def transfer(harness: Harness, account: str, passkey: SoftwarePasskey) -> None:
    op = harness.build(account, userops.execute_call_data(target=RECIPIENT, value=1))
    op, _ = harness.sign(harness.sponsor(op), passkey)
    receipt = harness.submit(op)
    event = harness.entry_point.events.UserOperationEvent().process_receipt(
        receipt, errors=DISCARD
    )[0]
    assert event["args"]["success"]


def test_upgrading_the_beacon_upgrades_existing_accounts_with_their_storage(
    harness: Harness, passkey: SoftwarePasskey, w3: Web3, v2_artifact: dict[str, Any]
) -> None:
    account, _ = harness.deploy_account(passkey)
    harness.sender.send(to=account, value=10)
    transfer(harness, account, passkey)
    msa = harness.account(account)
    validators = msa.functions.getValidators().call()
    nonce = harness.next_nonce(account)

    owner = Sender(w3=w3, account=account_from_key(ANVIL_KEYS[0]))
    assert harness.beacon.functions.owner().call() == owner.address
    code = bytes.fromhex(v2_artifact["bytecode"][2:])
    v2_address, _ = deploy.deploy_create2(
        owner, code + bytes.fromhex("00" * 12 + harness.entry_point.address[2:])
    )

    # Nobody but the owner can upgrade.
    stranger = Sender(w3=w3, account=account_from_key(ANVIL_KEYS[3]))
    with pytest.raises(TransactionFailed):
        stranger.transact(harness.beacon, "upgradeTo", v2_address, gas=200_000)

    owner.transact(harness.beacon, "upgradeTo", v2_address)
    upgraded = w3.eth.contract(address=to_checksum_address(account), abi=v2_artifact["abi"])
    assert upgraded.functions.version().call() == 2
    # Its storage is intact: modules, the initialisation, the nonce, the passkey still signs.
    assert upgraded.functions.getValidators().call() == validators
    assert harness.next_nonce(account) == nonce
    with pytest.raises(TransactionFailed):
        harness.sender.send(to=account, data=harness.account_init_data(passkey), gas=300_000)
    transfer(harness, account, passkey)
    assert w3.eth.get_balance(to_checksum_address(RECIPIENT)) >= 2

    # deploycontracts leaves an upgraded beacon alone unless told to upgrade to its build.
    sponsor = account_from_key(ANVIL_KEYS[1]).address
    messages: list[str] = []
    result = deploy.deploy_all(sender=owner, sponsor_address=sponsor, log=messages.append)
    assert harness.beacon.functions.implementation().call() == v2_address
    assert result.addresses["ModularSmartAccount"] == v2_address
    assert any("--upgrade-accounts" in m for m in messages)
    result = deploy.deploy_all(sender=owner, sponsor_address=sponsor, upgrade_accounts=True)
    build = harness.addresses["ModularSmartAccount"]
    assert harness.beacon.functions.implementation().call() == build
    assert result.addresses["ModularSmartAccount"] == build
    assert result.addresses["MSAFactory"] == harness.factory.address  # same factory, same beacon


def test_passkeys_verify_on_a_chain_without_the_p256_precompile() -> None:
    """Prague has no P256VERIFY at 0x100: OpenZeppelin's Solidity verifier takes over."""
    node = devnet.start_anvil(extra_args=["--hardfork", "prague"])
    try:
        w3 = connect(node.url)
        assert not deploy.p256_precompile_available(w3)
        messages: list[str] = []
        result = deploy.deploy_all(
            sender=Sender(w3=w3, account=account_from_key(ANVIL_KEYS[0])),
            sponsor_address=account_from_key(ANVIL_KEYS[1]).address,
            paymaster_deposit_wei=10**18,
            log=messages.append,
        )
        assert any("P256VERIFY (0x100) is missing" in m for m in messages)
        harness = Harness(w3=w3, addresses=result.addresses)
        passkey = SoftwarePasskey(origin=ORIGIN)
        account, _ = harness.deploy_account(passkey)
        harness.sender.send(to=account, value=10)
        op = harness.build(
            account,
            userops.execute_call_data(target=RECIPIENT, value=1),
            verification_gas_limit=1_000_000,
        )
        op, _ = harness.sign(harness.sponsor(op), passkey)
        assert harness.simulate_failure(op) is None
        transfer_receipt = harness.submit(op)
        assert harness.entry_point.events.UserOperationEvent().process_receipt(
            transfer_receipt, errors=DISCARD
        )[0]["args"]["success"]
        assert w3.eth.get_balance(to_checksum_address(RECIPIENT)) == 1
        # A wrong signature is still refused (and does not revert).
        other = SoftwarePasskey(origin=ORIGIN, credential_id=passkey.credential_id)
        op = harness.build(
            account, userops.execute_call_data(target=RECIPIENT), verification_gas_limit=1_000_000
        )
        op, _ = harness.sign(harness.sponsor(op), other)
        failure = harness.simulate_failure(op)
        assert failure is not None and failure.reason == "AA24 signature error"
    finally:
        node.stop()
