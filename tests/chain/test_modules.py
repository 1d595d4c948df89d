"""The account's ERC-7579 module system: executors, fallback handlers and more validators install
through passkey-signed operations with no change to the account (as session keys and guardian
recovery will), plus the account's access rules."""

from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from chain import userops
from chain.client import Sender, TransactionFailed, account_from_key
from chain.devtools import compiler
from chain.devtools.authenticator import SoftwarePasskey
from chain.devtools.devkit import ANVIL_KEYS, Harness, OpFailure
from tests.chain.conftest import ORIGIN

pytestmark = pytest.mark.chain

MOCKS = Path(__file__).parent / "contracts" / "MockModules.sol"
RECIPIENT = "0x000000000000000000000000000000000000bEEF"


@pytest.fixture(scope="session")
def mock_artifacts() -> dict[str, dict[str, Any]]:
    unit = "tests/chain/contracts/MockModules.sol"
    return {a.name: a.data for a in compiler.compile_sources({unit: MOCKS.read_text()})}


@pytest.fixture
def mocks(
    w3: Web3, mock_artifacts: dict[str, dict[str, Any]], harness: Harness
) -> dict[str, Contract]:
    sender = Sender(w3=w3, account=account_from_key(ANVIL_KEYS[0]))
    deployed: dict[str, Contract] = {}
    for name, artifact in mock_artifacts.items():
        receipt = sender.send(data=bytes.fromhex(artifact["bytecode"][2:]))
        address = to_checksum_address(str(receipt["contractAddress"]))
        deployed[name] = w3.eth.contract(address=address, abi=artifact["abi"])
    return deployed


@pytest.fixture
def account(harness: Harness, passkey: SoftwarePasskey) -> str:
    address, _ = harness.deploy_account(passkey)
    harness.sender.send(to=address, value=1_000)
    return address


def self_calls(harness: Harness, account: str, *calls: tuple[str, list[Any]]) -> bytes:
    """Batch call data of the account calling its own functions."""
    contract = harness.account(account)
    return userops.execute_batch_call_data(
        calls=[
            userops.Call(target=account, data=bytes.fromhex(contract.encode_abi(fn, args=args)[2:]))
            for fn, args in calls
        ]
    )


def run(harness: Harness, account: str, passkey: SoftwarePasskey, call_data: bytes) -> Any:
    op = harness.build(account, call_data, call_gas_limit=800_000)
    op, _ = harness.sign(harness.sponsor(op), passkey)
    receipt = harness.submit(op)
    events = harness.entry_point.events.UserOperationEvent().process_receipt(
        receipt, errors=DISCARD
    )
    reverts = harness.entry_point.events.UserOperationRevertReason().process_receipt(
        receipt, errors=DISCARD
    )
    assert events[0]["args"]["success"], f"the user operation reverted: {reverts}"
    return receipt


def test_executor_fallback_and_validator_modules_install_without_account_changes(
    harness: Harness, passkey: SoftwarePasskey, account: str, mocks: dict[str, Contract]
) -> None:
    executor, fallback, ecdsa = (
        mocks["MockExecutor"],
        mocks["MockFallback"],
        mocks["MockEcdsaValidator"],
    )
    session_key = Account.create()
    who_called = keccak(text="whoCalled()")[:4]
    run(
        harness,
        account,
        passkey,
        self_calls(
            harness,
            account,
            ("installModule", [2, executor.address, b""]),
            ("installModule", [3, fallback.address, who_called + b"\x00"]),
            ("installModule", [1, ecdsa.address, encode(["address"], [session_key.address])]),
        ),
    )
    msa = harness.account(account)
    assert msa.functions.isModuleInstalled(2, executor.address, b"").call()
    assert msa.functions.isModuleInstalled(3, fallback.address, who_called.ljust(32, b"\0")).call()
    assert msa.functions.getValidators().call() == [harness.validator.address, ecdsa.address]

    # The executor moves funds through executeFromExecutor.
    harness.sender.transact(executor, "transfer", account, RECIPIENT, 7)
    assert harness.w3.eth.get_balance(to_checksum_address(RECIPIENT)) == 7

    # The fallback handler answers, seeing the original caller.
    handler = harness.w3.eth.contract(address=to_checksum_address(account), abi=fallback.abi)
    caller = "0x00000000000000000000000000000000000A11cE"
    assert handler.functions.whoCalled().call({"from": caller}) == [caller, account]

    # A user operation signed by the other validator is routed to it by its address prefix.
    op = harness.sponsor(
        harness.build(account, userops.execute_call_data(target=RECIPIENT, value=1))
    )
    signature = session_key.unsafe_sign_hash(harness.op_hash(op)).signature
    op = op.with_changes(signature=bytes.fromhex(ecdsa.address[2:]) + bytes(signature))
    assert harness.simulate_failure(op) is None
    harness.submit(op)
    assert harness.w3.eth.get_balance(to_checksum_address(RECIPIENT)) == 8

    # Uninstalled, the executor is refused.
    run(
        harness,
        account,
        passkey,
        self_calls(harness, account, ("uninstallModule", [2, executor.address, b""])),
    )
    with pytest.raises(TransactionFailed):
        harness.sender.transact(executor, "transfer", account, RECIPIENT, 1, gas=200_000)


def test_the_last_validator_cannot_be_removed(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    remove = self_calls(
        harness,
        account,
        ("uninstallModule", [1, harness.validator.address, encode(["(string,bytes)[]"], [[]])]),
    )
    op, _ = harness.sign(harness.sponsor(harness.build(account, remove)), passkey)
    receipt = harness.submit(op)
    event = harness.entry_point.events.UserOperationEvent().process_receipt(
        receipt, errors=DISCARD
    )[0]["args"]
    assert event["success"] is False
    revert = harness.entry_point.events.UserOperationRevertReason().process_receipt(
        receipt, errors=DISCARD
    )[0]["args"]
    assert revert["revertReason"][:4] == keccak(text="CannotRemoveLastValidator()")[:4]


def test_installing_a_module_as_the_wrong_type_or_twice_is_refused(
    harness: Harness, passkey: SoftwarePasskey, account: str, mocks: dict[str, Contract]
) -> None:
    for call, error in [
        (
            ("installModule", [1, mocks["MockExecutor"].address, b""]),
            "MismatchModuleTypeId(uint256)",
        ),
        (("installModule", [1, harness.validator.address, b""]), "AlreadyInstalled(address)"),
    ]:
        op, _ = harness.sign(
            harness.sponsor(harness.build(account, self_calls(harness, account, call))), passkey
        )
        receipt = harness.submit(op)
        revert = harness.entry_point.events.UserOperationRevertReason().process_receipt(
            receipt, errors=DISCARD
        )[0]["args"]
        assert revert["revertReason"][:4] == keccak(text=error)[:4]


def test_only_the_entry_point_or_the_account_itself_may_execute(
    harness: Harness, account: str
) -> None:
    msa = harness.account(account)
    stranger = Sender(w3=harness.w3, account=account_from_key(ANVIL_KEYS[3]))
    calls: list[tuple[str, list[Any]]] = [
        ("execute", [b"\x00" * 32, bytes.fromhex(RECIPIENT[2:]) + (1).to_bytes(32, "big")]),
        ("installModule", [2, RECIPIENT, b""]),
        (
            "executeFromExecutor",
            [b"\x00" * 32, bytes.fromhex(RECIPIENT[2:]) + (1).to_bytes(32, "big")],
        ),
    ]
    for fn, args in calls:
        with pytest.raises(TransactionFailed):
            stranger.transact(msa, fn, *args, gas=300_000)
    with pytest.raises(TransactionFailed):
        stranger.send(
            to=account,
            data=bytes.fromhex(
                msa.encode_abi(
                    "validateUserOp", args=[harness.build(account, b"").as_tuple(), b"\0" * 32, 0]
                )[2:]
            ),
            gas=300_000,
        )
    assert harness.w3.eth.get_balance(to_checksum_address(RECIPIENT)) == 0


def test_account_capabilities(harness: Harness, account: str) -> None:
    msa = harness.account(account)
    assert [msa.functions.supportsModule(t).call() for t in range(5)] == [
        False,
        True,
        True,
        True,
        False,
    ]
    single, batch, delegate, static = (bytes([t]) + b"\0" * 31 for t in (0x00, 0x01, 0xFF, 0xFE))
    try_single = b"\x00\x01" + b"\0" * 30
    assert all(
        msa.functions.supportsExecutionMode(m).call() for m in (single, batch, delegate, try_single)
    )
    assert not msa.functions.supportsExecutionMode(static).call()
    # Token receiver hooks are answered without a fallback handler.
    for signature in ("onERC721Received(address,address,uint256,bytes)",):
        selector = keccak(text=signature)[:4]
        data = selector + encode(
            ["address", "address", "uint256", "bytes"], [RECIPIENT, RECIPIENT, 1, b""]
        )
        result = harness.w3.eth.call({"to": account, "data": data})
        assert result[:4] == selector


def test_try_mode_reports_failures_instead_of_reverting(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    mode = b"\x01\x01" + b"\0" * 30  # batch, try
    execution = encode(
        ["(address,uint256,bytes)[]"],
        [[(RECIPIENT, 1, b""), (harness.validator.address, 5, b""), (RECIPIENT, 1, b"")]],
    )
    call_data = keccak(text="execute(bytes32,bytes)")[:4] + encode(
        ["bytes32", "bytes"], [mode, execution]
    )
    receipt = run(harness, account, passkey, call_data)
    failures = (
        harness.account(account)
        .events.TryExecuteUnsuccessful()
        .process_receipt(receipt, errors=DISCARD)
    )
    assert [f["args"]["batchExecutionIndex"] for f in failures] == [1]
    assert harness.w3.eth.get_balance(to_checksum_address(RECIPIENT)) == 2


def revert_selector(harness: Harness, receipt: Any) -> bytes:
    """The selector of the (only) user operation's revert reason in `receipt`."""
    reverts = harness.entry_point.events.UserOperationRevertReason().process_receipt(
        receipt, errors=DISCARD
    )
    assert reverts, "the user operation did not revert"
    return bytes(reverts[0]["args"]["revertReason"][:4])


@pytest.mark.parametrize("signature", ["onInstall(bytes)", "onUninstall(bytes)"])
def test_no_fallback_handler_for_a_module_entry_point(
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    mocks: dict[str, Contract],
    signature: str,
) -> None:
    """A handler for onInstall/onUninstall would let anyone call a module's entry points with the
    account as msg.sender (e.g. add a key to its validator) through the account."""
    selector = keccak(text=signature)[:4]
    call = self_calls(
        harness, account, ("installModule", [3, mocks["MockFallback"].address, selector + b"\0"])
    )
    op, _ = harness.sign(harness.sponsor(harness.build(account, call)), passkey)
    receipt = harness.submit(op)
    assert revert_selector(harness, receipt) == keccak(text="ForbiddenFallbackSelector(bytes4)")[:4]
    assert (
        not harness.account(account)
        .functions.isModuleInstalled(3, mocks["MockFallback"].address, selector.ljust(32, b"\0"))
        .call()
    )


def test_keys_do_not_survive_uninstalling_the_validator(
    harness: Harness, passkey: SoftwarePasskey, account: str, mocks: dict[str, Contract]
) -> None:
    """A removed passkey never comes back by reinstalling the WebAuthnValidator: uninstalling
    must remove every key, and an unlink that left keys blocks the reinstall until they go."""
    ecdsa = mocks["MockEcdsaValidator"]
    session_key = Account.create()
    webauthn = harness.validator.address
    run(
        harness,
        account,
        passkey,
        self_calls(
            harness,
            account,
            ("installModule", [1, ecdsa.address, encode(["address"], [session_key.address])]),
        ),
    )

    def by_session_key(call_data: bytes) -> Any:
        op = harness.sponsor(harness.build(account, call_data, call_gas_limit=800_000))
        signature = session_key.unsafe_sign_hash(harness.op_hash(op)).signature
        return harness.submit(
            op.with_changes(signature=bytes.fromhex(ecdsa.address[2:]) + bytes(signature))
        )

    def passkeys(*keys: SoftwarePasskey) -> bytes:
        return encode(["(string,bytes)[]"], [[(ORIGIN, k.credential_id) for k in keys]])

    def key_of(key: SoftwarePasskey) -> list[bytes]:
        return list(
            harness.validator.functions.getAccountKey(ORIGIN, key.credential_id, account).call()
        )

    # Uninstalling while keys remain is refused.
    receipt = by_session_key(
        self_calls(harness, account, ("uninstallModule", [1, webauthn, passkeys()]))
    )
    assert revert_selector(harness, receipt) == keccak(text="KeysRemaining(uint256)")[:4]
    assert harness.validator.functions.keyCount(account).call() == 1

    # Listing every key uninstalls it and clears them; reinstalled, the old passkey is no key.
    by_session_key(
        self_calls(harness, account, ("uninstallModule", [1, webauthn, passkeys(passkey)]))
    )
    assert not harness.account(account).functions.isModuleInstalled(1, webauthn, b"").call()
    assert key_of(passkey) == [b"\0" * 32] * 2
    by_session_key(self_calls(harness, account, ("installModule", [1, webauthn, b""])))
    assert harness.account(account).functions.isModuleInstalled(1, webauthn, b"").call()
    op, _ = harness.sign(
        harness.sponsor(harness.build(account, userops.execute_call_data(target=RECIPIENT))),
        passkey,
    )
    assert harness.simulate_failure(op) == OpFailure(reason="AA24 signature error")

    # A key added now, then an unlink (whose failing onUninstall is ignored) leaves it behind:
    # reinstalling is refused until the account removes it.
    phone = SoftwarePasskey(origin=ORIGIN)
    add = harness.validator.encode_abi(
        "addValidationKey",
        args=[phone.credential_id, [k.to_bytes(32, "big") for k in phone.public_key], ORIGIN],
    )
    by_session_key(userops.execute_call_data(target=webauthn, data=bytes.fromhex(add[2:])))
    receipt = by_session_key(
        self_calls(harness, account, ("unlinkModule", [1, webauthn, passkeys()]))
    )
    unlinked = (
        harness.account(account).events.ModuleUnlinked().process_receipt(receipt, errors=DISCARD)
    )
    assert unlinked and unlinked[0]["args"]["module"] == webauthn
    assert key_of(phone) != [b"\0" * 32] * 2
    receipt = by_session_key(self_calls(harness, account, ("installModule", [1, webauthn, b""])))
    assert revert_selector(harness, receipt) == keccak(text="AlreadyInitialized(address)")[:4]
    remove = harness.validator.encode_abi("removeValidationKey", args=[phone.credential_id, ORIGIN])
    install = harness.account(account).encode_abi("installModule", args=[1, webauthn, b""])
    by_session_key(
        userops.execute_batch_call_data(
            calls=[
                userops.Call(target=webauthn, data=bytes.fromhex(remove[2:])),
                userops.Call(target=account, data=bytes.fromhex(install[2:])),
            ]
        )
    )
    assert harness.account(account).functions.isModuleInstalled(1, webauthn, b"").call()
    assert key_of(phone) == [b"\0" * 32] * 2
    op, _ = harness.sign(
        harness.sponsor(harness.build(account, userops.execute_call_data(target=RECIPIENT))),
        phone,
    )
    assert harness.simulate_failure(op) == OpFailure(reason="AA24 signature error")
