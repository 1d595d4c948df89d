"""One anvil per test session, contracts deployed once; each test runs in an EVM snapshot."""

from collections.abc import Iterator

import pytest
from web3 import Web3

from chain import deploy, devnet
from chain.client import Sender, account_from_key, connect
from chain.devkit import ANVIL_KEYS, Harness, SoftwarePasskey

ORIGIN = "https://portal.example"


@pytest.fixture(scope="session")
def anvil() -> Iterator[devnet.Anvil]:
    node = devnet.start_anvil()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def w3(anvil: devnet.Anvil) -> Web3:
    return connect(anvil.url)


@pytest.fixture(scope="session")
def addresses(w3: Web3) -> dict[str, str]:
    sender = Sender(w3=w3, account=account_from_key(ANVIL_KEYS[0]))
    result = deploy.deploy_all(
        sender=sender,
        sponsor_address=account_from_key(ANVIL_KEYS[1]).address,
        paymaster_deposit_wei=10**19,
    )
    return result.addresses


@pytest.fixture(autouse=True)
def _evm_snapshot(request: pytest.FixtureRequest) -> Iterator[None]:
    """Revert the chain after every test that touched it."""
    if "anvil" not in request.fixturenames:
        yield
        return
    node: devnet.Anvil = request.getfixturevalue("anvil")
    request.getfixturevalue("addresses")  # deploy before the first snapshot
    snapshot = devnet.rpc(node.url, "evm_snapshot")
    yield
    devnet.rpc(node.url, "evm_revert", [snapshot])


@pytest.fixture
def harness(w3: Web3, addresses: dict[str, str], anvil: devnet.Anvil) -> Harness:
    return Harness(w3=w3, addresses=addresses)


@pytest.fixture
def passkey() -> SoftwarePasskey:
    return SoftwarePasskey(origin=ORIGIN)
