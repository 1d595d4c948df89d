"""Fixtures shared by the session-key tests: a SessionHarness, test contracts, an account with the
SessionKeyValidator installed and funded, and helpers to read refusals."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract

from chain.client import Sender, account_from_key
from chain.devtools import compiler, devnet
from chain.devtools.authenticator import SoftwarePasskey
from chain.devtools.devkit import ANVIL_KEYS, OpFailure
from chain.devtools.devkit_sessions import SessionHarness
from chain.session_keys import SessionSpec, UsageLimit, lifetime

CONTRACTS = Path(__file__).parent / "contracts"
FUNDS = 10**18


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def error(signature: str, types: list[str] | None = None, values: list[Any] | None = None) -> bytes:
    """Revert data of custom error `signature` with `values`."""
    return selector(signature) + (encode(types, values or []) if types else b"")


PANIC = selector("Panic(uint256)")


def panic(code: int) -> bytes:
    return error("Panic(uint256)", ["uint256"], [code])


@pytest.fixture(scope="session")
def test_contract_artifacts() -> dict[str, dict[str, Any]]:
    units = {
        f"tests/chain/contracts/{name}.sol": (CONTRACTS / f"{name}.sol").read_text()
        for name in ("SessionMocks", "MockModules")
    }
    return {a.name: a.data for a in compiler.compile_sources(units)}


@pytest.fixture
def test_contracts(
    w3: Web3, test_contract_artifacts: dict[str, dict[str, Any]], anvil: devnet.Anvil
) -> dict[str, Contract]:
    sender = Sender(w3=w3, account=account_from_key(ANVIL_KEYS[0]))
    deployed: dict[str, Contract] = {}
    for name, artifact in test_contract_artifacts.items():
        receipt = sender.send(data=bytes.fromhex(artifact["bytecode"][2:]))
        address = to_checksum_address(str(receipt["contractAddress"]))
        deployed[name] = w3.eth.contract(address=address, abi=artifact["abi"])
    return deployed


@pytest.fixture
def sh(w3: Web3, addresses: dict[str, str], anvil: devnet.Anvil) -> SessionHarness:
    return SessionHarness(w3=w3, addresses=addresses)


@pytest.fixture
def session_account(sh: SessionHarness, passkey: SoftwarePasskey) -> Iterator[str]:
    """An account with the passkey and the SessionKeyValidator, holding 1 ETH."""
    address, _ = sh.deploy_account(passkey)
    sh.sender.send(to=address, value=FUNDS)
    yield address


def fee_limit(limit: int = 10**18) -> UsageLimit:
    return lifetime(limit)


def spec_for(signer: str, now: int, **fields: Any) -> SessionSpec:
    values: dict[str, Any] = {
        "signer": signer,
        "expires_at": now + 3600,
        "fee_limit": fee_limit(),
    }
    values.update(fields)
    return SessionSpec(**values)


def failure_data(failure: OpFailure | None) -> bytes:
    """The validator's revert data inside an EntryPoint refusal (AA23)."""
    assert failure is not None, "the operation was accepted"
    assert failure.reason.startswith("AA23"), failure.reason
    return failure.inner


def decode_error(data: bytes, types: list[str]) -> tuple[Any, ...]:
    return tuple(decode(types, data[4:]))
