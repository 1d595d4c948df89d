"""SessionKeyValidator on anvil: ZKsync SSO's interface and every rule of createSession, revocation,
the views and validateUserOp, in their order, with every refusal as a dapp or an attacker sees
it."""

from dataclasses import replace
from typing import Any

import pytest
from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from web3.contract import Contract
from web3.logs import DISCARD

from chain import artifacts, session_keys, userops
from chain.devtools.authenticator import SoftwarePasskey
from chain.devtools.devkit_sessions import RevertedCall, SessionHarness
from chain.session_keys import (
    UNLIMITED,
    CallSpec,
    Condition,
    Constraint,
    SessionSpec,
    Status,
    TransferSpec,
    UsageLimit,
    allowance,
    lifetime,
)
from tests.chain.session_fixtures import (
    error,
    failure_data,
    panic,
    selector,
    spec_for,
)

pytestmark = pytest.mark.chain

RECIPIENT = "0x000000000000000000000000000000000000bEEF"
OTHER = "0x000000000000000000000000000000000000cafE"
TRANSFER = selector("transfer(address,uint256)")
U256x2 = ["uint256", "uint256"]


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def transfer_spec(key: Any, sh: SessionHarness, **policy: Any) -> SessionSpec:
    values: dict[str, Any] = {
        "target": RECIPIENT,
        "max_value_per_use": 10**15,
        "value_limit": UNLIMITED,
    }
    values.update(policy)
    return spec_for(key.address, sh.now(), transfer_policies=(TransferSpec(**values),))


def call_spec_session(
    key: Any, sh: SessionHarness, *policies: CallSpec, **fields: Any
) -> SessionSpec:
    return spec_for(key.address, sh.now(), call_policies=policies, **fields)


def refused_with(sh: SessionHarness, op: userops.PackedUserOperation) -> bytes:
    return failure_data(sh.simulate_failure(op))


def create_refusal(
    sh: SessionHarness, account: str, spec: SessionSpec, key: Any, **kw: Any
) -> bytes:
    with pytest.raises(RevertedCall) as refused:
        sh.create_session(account, spec, key, **kw)
    return refused.value.data


def travel_to(sh: SessionHarness, timestamp: int) -> None:
    sh.rpc("evm_setNextBlockTimestamp", [timestamp])
    sh.rpc("evm_mine", [])


def transfer(value: int, target: str = RECIPIENT) -> userops.Call:
    return userops.Call(target=target, value=value)


def token_call(target: str, to: str, amount: int, *, value: int = 0) -> userops.Call:
    return userops.Call(
        target=target, value=value, data=TRANSFER + encode(["address", "uint256"], [to, amount])
    )


def balance(sh: SessionHarness, address: str) -> int:
    return int(sh.w3.eth.get_balance(to_checksum_address(address)))


# --------------------------------------------------------------------------- interface


def signature_of(entry: dict[str, Any]) -> str:
    def canonical(item: dict[str, Any]) -> str:
        kind = str(item["type"])
        if kind.startswith("tuple"):
            return "(" + ",".join(canonical(c) for c in item["components"]) + ")" + kind[5:]
        return kind

    return f"{entry['name']}({','.join(canonical(i) for i in entry['inputs'])})"


def test_abi_has_exactly_the_selectors_events_and_errors_of_sso() -> None:
    """sso-interfaces.md §7: 13 functions, 2 events, 27 errors, same mutability."""
    abi = artifacts.abi("SessionKeyValidator")

    def ids(kind: str) -> list[str]:
        size = 32 if kind == "event" else 4
        return sorted(keccak(text=signature_of(e))[:size].hex() for e in abi if e["type"] == kind)

    assert ids("function") == sorted(
        [
            "054608e9",
            "d60b347f",
            "ecd05961",
            "f551e2ee",
            "6d61fe70",
            "8a91b0e3",
            "572f2210",
            "3ec59279",
            "5dd48d06",
            "66740450",
            "59130708",
            "01ffc9a7",
            "97003203",
        ]
    )
    assert ids("event") == sorted(
        [
            "2fe3a315b5887bc614aaf65c4ed1b6f8f1b75530172d8dfbe1ea989e1b34b0d6",
            "006be5f629d8df9f032986474cfc3bfc82c9b1cd74dcb2fcb5b3d48f98a50024",
        ]
    )
    assert ids("error") == sorted(
        [
            "a494695a",
            "93360fbf",
            "52715752",
            "31430d1c",
            "78c19b49",
            "f645eedf",
            "fce698f7",
            "d78bce0c",
            "640783a4",
            "61b5251d",
            "5cb045db",
            "78ef8024",
            "30900f5a",
            "9f737fe2",
            "7ba5ffb5",
            "78bedf4d",
            "b9cf12b1",
            "5dd55ff1",
            "3fd65609",
            "f91bd6f1",
            "1f5807e8",
            "2aaa3bc4",
            "27406db9",
            "aa6a4d5c",
            "18ee80e7",
            "b40e017c",
            "e5c48ac5",
        ]
    )
    mutability = {e["name"]: e["stateMutability"] for e in abi if e["type"] == "function"}
    assert mutability["isValidSignatureWithSender"] == "pure"
    assert mutability["isModuleType"] == "pure"
    assert mutability["validateUserOp"] == "nonpayable"
    assert mutability["sessionState"] == "view"
    assert mutability["sessionSigner"] == "view"


def test_module_basics(sh: SessionHarness, session_account: str) -> None:
    sessions = sh.sessions.functions
    assert [sessions.isModuleType(t).call() for t in range(4)] == [False, True, False, False]
    for interface in ("6251d0ed", "dd2b238d", "01ffc9a7"):
        assert sessions.supportsInterface(bytes.fromhex(interface)).call() is True
    assert sessions.supportsInterface(b"\xff\xff\xff\xff").call() is False
    assert sessions.isInitialized(session_account).call() is True
    assert (
        sessions.isValidSignatureWithSender(session_account, b"\x01" * 32, b"x").call()
        == b"\xff\xff\xff\xff"
    )
    # onInstall takes any data and does nothing.
    sh.call_as(
        session_account,
        sh.sessions.address,
        selector("onInstall(bytes)") + encode(["bytes"], [b"junk"]),
    )


def test_session_is_created_with_sso_encodings(sh: SessionHarness, session_account: str) -> None:
    key = sh.new_key()
    spec = spec_for(
        key.address,
        sh.now(),
        fee_limit=allowance(10**16, 86400),
        call_policies=(
            CallSpec(
                target=OTHER,
                selector=TRANSFER,
                max_value_per_use=3,
                value_limit=lifetime(9),
                constraints=(
                    Constraint(
                        condition=Condition.LESS_OR_EQUAL,
                        index=1,
                        ref_value=word(5),
                        limit=allowance(7, 60),
                    ),
                ),
            ),
        ),
        transfer_policies=(TransferSpec(target=RECIPIENT, max_value_per_use=1),),
    )
    # sessionHash = keccak256(abi.encode(spec)), with the leading offset word.
    assert spec.encode()[:32] == word(0x20)
    assert SessionSpec.decode(spec.encode()) == spec
    receipt = sh.create_session(session_account, spec, key)
    created = sh.sessions.events.SessionCreated().process_receipt(receipt, errors=DISCARD)
    assert len(created) == 1
    assert created[0]["args"]["account"] == session_account
    assert created[0]["args"]["sessionHash"] == spec.session_hash
    # The event carries the full spec: decode its data part ourselves.
    raw = sh.w3.eth.get_transaction_receipt(receipt["transactionHash"])["logs"][0]
    assert SessionSpec.decode(bytes(raw["data"])) == spec
    assert sh.sessions.functions.sessionSigner(key.address).call() == spec.session_hash
    assert sh.sessions.functions.sessionStatus(session_account, spec.session_hash).call() == 1


# --------------------------------------------------------------------------- createSession §7.1


def test_create_session_requires_the_validator_installed(
    sh: SessionHarness, passkey: SoftwarePasskey
) -> None:
    # An account with the passkey validator only.
    address, _ = sh.deploy_account_without_sessions(passkey)
    key = sh.new_key()
    data = create_refusal(sh, address, transfer_spec(key, sh), key)
    assert data == error("NotInitialized(address)", ["address"], [address])


def test_create_session_refuses_banned_targets(
    sh: SessionHarness,
    passkey: SoftwarePasskey,
    session_account: str,
    test_contracts: dict[str, Contract],
) -> None:
    executor, fallback = test_contracts["MockExecutor"], test_contracts["MockFallback"]
    who_called = selector("whoCalled()")
    install = [
        (2, executor.address, b""),
        (3, fallback.address, who_called + b"\x00"),
    ]
    for module_type, module, data in install:
        sh.send_as(
            session_account,
            session_account,
            selector("installModule(uint256,address,bytes)")
            + encode(["uint256", "address", "bytes"], [module_type, module, data]),
        )
    any_selector = selector("anything()")
    banned = [
        (sh.sessions.address, any_selector),  # the validator itself
        (session_account, any_selector),  # the account
        (sh.validator.address, any_selector),  # an installed validator
        (executor.address, any_selector),  # an installed executor
        (fallback.address, who_called),  # the fallback handler of that selector
        ("0x0000000000000000000000000000000000000000", any_selector),  # no registry, no handler
    ]
    for target, sel in banned:
        key = sh.new_key()
        spec = call_spec_session(key, sh, CallSpec(target=target, selector=sel))
        assert create_refusal(sh, session_account, spec, key) == error(
            "CallPolicyBanned(address,bytes4)", ["address", "bytes4"], [target, sel]
        ), target
    # The fallback handler for another selector is an ordinary target.
    key = sh.new_key()
    spec = call_spec_session(key, sh, CallSpec(target=fallback.address, selector=any_selector))
    sh.create_session(session_account, spec, key)


def test_create_session_refuses_the_accounts_registry(
    sh: SessionHarness, session_account: str, test_contracts: dict[str, Contract]
) -> None:
    """SSO's module asks the account for getRegistry() (0x5ab1bd53) and bans it as a target."""
    registry = test_contracts["MockRegistry"]
    account = sh.account(session_account)
    assert account.functions.getRegistry().call() == "0x" + "00" * 20
    receipt = sh.send_as(
        session_account,
        session_account,
        selector("setRegistry(address,address[],uint8)")
        + encode(["address", "address[]", "uint8"], [registry.address, [OTHER], 1]),
    )
    assert (
        account.events.ERC7484RegistryConfigured().process_receipt(receipt, errors=DISCARD)[0][
            "args"
        ]["registry"]
        == registry.address
    )
    assert account.functions.getRegistry().call() == registry.address
    assert registry.functions.thresholds(session_account).call() == 1
    key = sh.new_key()
    spec = call_spec_session(key, sh, CallSpec(target=registry.address, selector=TRANSFER))
    assert create_refusal(sh, session_account, spec, key) == error(
        "CallPolicyBanned(address,bytes4)", ["address", "bytes4"], [registry.address, TRANSFER]
    )
    # With a registry set, address(0) is an ordinary target (no fallback for that selector aside).
    key = sh.new_key()
    zero = "0x0000000000000000000000000000000000000000"
    spec = call_spec_session(key, sh, CallSpec(target=zero, selector=TRANSFER))
    assert create_refusal(sh, session_account, spec, key)[:4] == selector(
        "CallPolicyBanned(address,bytes4)"
    )  # still banned: the account answers isModuleInstalled(3, 0, sel) for an unused selector


def test_registry_vets_module_installs(
    sh: SessionHarness, session_account: str, test_contracts: dict[str, Contract]
) -> None:
    registry, executor = test_contracts["MockRegistry"], test_contracts["MockExecutor"]
    sh.sender.transact(registry, "refuse", executor.address)
    sh.send_as(
        session_account,
        session_account,
        selector("setRegistry(address,address[],uint8)")
        + encode(["address", "address[]", "uint8"], [registry.address, [], 0]),
    )
    install = selector("installModule(uint256,address,bytes)") + encode(
        ["uint256", "address", "bytes"], [2, executor.address, b""]
    )
    with pytest.raises(RevertedCall) as refused:
        sh.send_as(session_account, session_account, install)
    assert refused.value.data == error(
        "ModuleRefused(address,uint256)", ["address", "uint256"], [executor.address, 2]
    )
    # Removing the registry clears its attesters and lets the install through.
    sh.send_as(
        session_account,
        session_account,
        selector("setRegistry(address,address[],uint8)")
        + encode(["address", "address[]", "uint8"], ["0x" + "00" * 20, [], 0]),
    )
    sh.send_as(session_account, session_account, install)
    assert sh.account(session_account).functions.isModuleInstalled(2, executor.address, b"").call()


def test_create_session_refusals_in_order(sh: SessionHarness, session_account: str) -> None:
    key = sh.new_key()
    # ZeroSigner.
    zero = replace(transfer_spec(key, sh), signer="0x" + "00" * 20)
    assert create_refusal(sh, session_account, zero, key) == error("ZeroSigner()")

    spec = transfer_spec(key, sh)
    # A proof signed by another key, or for another account: InvalidSigner.
    other = sh.new_key()
    wrong = session_keys.session_proof(spec=spec, account=session_account, signer_key=other.key)
    data = create_refusal(sh, session_account, spec, key, proof=wrong)
    assert data == error(
        "InvalidSigner(address,address)", ["address", "address"], [other.address, key.address]
    )
    elsewhere = session_keys.session_proof(spec=spec, account=RECIPIENT, signer_key=key.key)
    assert create_refusal(sh, session_account, spec, key, proof=elsewhere)[:4] == selector(
        "InvalidSigner(address,address)"
    )
    # Malformed proofs: OZ ECDSA errors.
    good = session_keys.session_proof(spec=spec, account=session_account, signer_key=key.key)
    assert create_refusal(sh, session_account, spec, key, proof=good[:64]) == error(
        "ECDSAInvalidSignatureLength(uint256)", ["uint256"], [64]
    )
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(good[32:64], "big")
    high_s = good[:32] + (n - s).to_bytes(32, "big") + bytes([55 - good[64]])
    assert create_refusal(sh, session_account, spec, key, proof=high_s) == error(
        "ECDSAInvalidSignatureS(bytes32)", ["bytes32"], [(n - s).to_bytes(32, "big")]
    )
    assert create_refusal(sh, session_account, spec, key, proof=b"\x00" * 64 + b"\x1b") == error(
        "ECDSAInvalidSignature()"
    )
    # UnlimitedFees.
    unlimited = replace(spec, fee_limit=UNLIMITED)
    assert create_refusal(sh, session_account, unlimited, key) == error("UnlimitedFees()")


def test_session_expiry_boundary_at_creation(sh: SessionHarness, session_account: str) -> None:
    """expiresAt == block.timestamp + 60 is accepted; + 59 is refused (exact block times)."""
    key = sh.new_key()
    now = sh.now()
    base = transfer_spec(key, sh)
    too_soon = replace(base, expires_at=now + 100 + 59)
    data = session_keys.create_session_data(
        spec=too_soon,
        proof=session_keys.session_proof(
            spec=too_soon, account=session_account, signer_key=key.key
        ),
    )
    travel_to(sh, now + 100)  # eth_call runs at the latest block's timestamp
    with pytest.raises(RevertedCall) as refused:
        sh.call_as(session_account, sh.sessions.address, data)
    assert refused.value.data == error("SessionExpiresTooSoon(uint256)", ["uint256"], [now + 159])
    just = replace(base, expires_at=now + 160)
    ok = session_keys.create_session_data(
        spec=just,
        proof=session_keys.session_proof(spec=just, account=session_account, signer_key=key.key),
    )
    assert sh.call_as(session_account, sh.sessions.address, ok) == b""


def test_signers_are_unique_forever_across_accounts(
    sh: SessionHarness, passkey: SoftwarePasskey, session_account: str
) -> None:
    key = sh.new_key()
    spec = transfer_spec(key, sh)
    sh.create_session(session_account, spec, key)
    # Again on the same account (same hash): the signer check comes first.
    assert create_refusal(sh, session_account, spec, key) == error(
        "SignerAlreadyUsed(address)", ["address"], [key.address]
    )
    # Another account, even after revocation.
    second, _ = sh.deploy_account(SoftwarePasskey(origin=passkey.origin))
    sh.send_as(
        session_account,
        sh.sessions.address,
        session_keys.revoke_keys_data(session_hashes=[spec.session_hash]),
    )
    assert create_refusal(sh, second, spec, key)[:4] == selector("SignerAlreadyUsed(address)")


# --------------------------------------------------------------------------- revocation §7.2


def test_revocation(sh: SessionHarness, session_account: str) -> None:
    keys = [sh.new_key() for _ in range(3)]
    specs = [transfer_spec(k, sh) for k in keys]
    for spec, key in zip(specs, keys, strict=True):
        sh.create_session(session_account, spec, key)
    validator = sh.sessions.address
    receipt = sh.send_as(
        session_account, validator, selector("revokeKey(bytes32)") + specs[0].session_hash
    )
    revoked = sh.sessions.events.SessionRevoked().process_receipt(receipt, errors=DISCARD)
    assert revoked[0]["args"]["account"] == session_account
    assert revoked[0]["args"]["sessionHash"] == specs[0].session_hash
    status = sh.sessions.functions.sessionStatus
    assert status(session_account, specs[0].session_hash).call() == Status.CLOSED
    # Revoking twice, or a session that never existed, or another account's: SessionNotActive.
    for data in (
        selector("revokeKey(bytes32)") + specs[0].session_hash,
        selector("revokeKey(bytes32)") + b"\x07" * 32,
    ):
        with pytest.raises(RevertedCall) as refused:
            sh.send_as(session_account, validator, data)
        assert refused.value.data == error("SessionNotActive()")
    with pytest.raises(RevertedCall):
        sh.send_as(RECIPIENT, validator, selector("revokeKey(bytes32)") + specs[1].session_hash)
    # revokeKeys is all-or-nothing.
    with pytest.raises(RevertedCall):
        sh.send_as(
            session_account,
            validator,
            session_keys.revoke_keys_data(
                session_hashes=[specs[1].session_hash, specs[0].session_hash]
            ),
        )
    assert status(session_account, specs[1].session_hash).call() == Status.ACTIVE
    sh.send_as(
        session_account,
        validator,
        session_keys.revoke_keys_data(session_hashes=[specs[1].session_hash]),
    )
    assert status(session_account, specs[1].session_hash).call() == Status.CLOSED
    # A revoked session's operations are refused.
    op = sh.session_op(session_account, specs[1], keys[1], transfer(1))
    assert refused_with(sh, op) == error("SessionNotActive()")


def test_uninstall_revokes_the_given_sessions(sh: SessionHarness, session_account: str) -> None:
    key = sh.new_key()
    spec = transfer_spec(key, sh)
    sh.create_session(session_account, spec, key)
    uninstall = selector("uninstallModule(uint256,address,bytes)")

    def data(hashes: list[bytes]) -> bytes:
        return uninstall + encode(
            ["uint256", "address", "bytes"],
            [1, sh.sessions.address, encode(["bytes32[]"], [hashes])],
        )

    with pytest.raises(RevertedCall) as refused:
        sh.send_as(session_account, session_account, data([b"\x01" * 32]))
    assert refused.value.data == error("SessionNotActive()")
    with pytest.raises(RevertedCall):  # empty data does not decode
        sh.send_as(
            session_account,
            session_account,
            uninstall + encode(["uint256", "address", "bytes"], [1, sh.sessions.address, b""]),
        )
    sh.send_as(session_account, session_account, data([spec.session_hash]))
    assert sh.sessions.functions.sessionStatus(session_account, spec.session_hash).call() == 2
    assert sh.sessions.functions.isInitialized(session_account).call() is False


# --------------------------------------------------------------------------- views §7.3


def test_session_state_reports_what_is_left(
    sh: SessionHarness, session_account: str, test_contracts: dict[str, Contract]
) -> None:
    sink = test_contracts["Sink"].address
    key = sh.new_key()
    spec = spec_for(
        key.address,
        sh.now(),
        fee_limit=lifetime(10**17),
        call_policies=(
            CallSpec(
                target=sink,
                selector=TRANSFER,
                max_value_per_use=10,
                value_limit=allowance(25, 3600),
                constraints=(
                    Constraint(condition=Condition.EQUAL, index=0, ref_value=word(int(OTHER, 16))),
                    Constraint(index=1, limit=lifetime(1000)),
                    Constraint(index=1, limit=allowance(300, 60)),
                ),
            ),
        ),
        transfer_policies=(
            TransferSpec(target=RECIPIENT, max_value_per_use=100, value_limit=UNLIMITED),
            TransferSpec(target=OTHER, max_value_per_use=200, value_limit=lifetime(500)),
        ),
    )
    state = sh.state(session_account, spec)
    assert state.status == Status.NOT_INITIALIZED
    sh.create_session(session_account, spec, key)
    op = sh.session_op(session_account, spec, key, token_call(sink, OTHER, 200, value=7))
    sh.submit(op)
    sh.submit(sh.session_op(session_account, spec, key, transfer(120, OTHER)))
    state = sh.state(session_account, spec)
    assert state.status == Status.ACTIVE
    assert [(s.remaining, s.target, s.selector, s.index) for s in state.transfer_value] == [
        (2**256 - 1, RECIPIENT, b"\0" * 4, 0),
        (380, to_checksum_address(OTHER), b"\0" * 4, 0),
    ]
    assert [(s.remaining, s.selector, s.index) for s in state.call_value] == [(18, TRANSFER, 0)]
    # One entry per limited constraint (the EQUAL one is unlimited), index = the constraint's index.
    assert [(s.remaining, s.index) for s in state.call_params] == [(800, 1), (100, 1)]
    assert 0 < state.fees_remaining < 10**17
    # A new minute restores the per-minute allowance, not the lifetime one.
    travel_to(sh, (sh.now() // 60 + 1) * 60 + 1)
    state = sh.state(session_account, spec)
    assert [s.remaining for s in state.call_params] == [800, 300]
    # Expired but not revoked: still Active (as SSO).
    travel_to(sh, spec.expires_at + 1)
    assert sh.sessions.functions.sessionStatus(session_account, spec.session_hash).call() == 1


# --------------------------------------------------------------------------- validateUserOp §7.5


def test_transfer_within_policy_is_executed_and_counted(
    sh: SessionHarness, session_account: str
) -> None:
    key = sh.new_key()
    spec = transfer_spec(key, sh, max_value_per_use=100, value_limit=lifetime(150))
    sh.create_session(session_account, spec, key)
    op = sh.session_op(session_account, spec, key, transfer(100))
    assert op.nonce >> 64 == int(key.address, 16)
    assert sh.simulate_failure(op) is None
    sh.submit(op)
    assert balance(sh, RECIPIENT) == 100
    assert sh.state(session_account, spec).transfer_value[0].remaining == 50
    op = sh.session_op(session_account, spec, key, transfer(51))
    assert refused_with(sh, op) == error(
        "LifetimeUsageExceeded(uint256,uint256)", U256x2, [100, 150]
    )
    sh.submit(sh.session_op(session_account, spec, key, transfer(50)))
    assert balance(sh, RECIPIENT) == 150


def test_refusals_before_the_policies(sh: SessionHarness, session_account: str) -> None:
    key = sh.new_key()
    spec = transfer_spec(key, sh)
    sh.create_session(session_account, spec, key)
    call = transfer(1)
    # ZeroSigner: a spec without a signer in the signature.
    zero = replace(spec, signer="0x" + "00" * 20)
    op = sh.session_op(session_account, zero, key, call, nonce=0)
    assert refused_with(sh, op) == error("ZeroSigner()")
    # InvalidNonceKey: the default key 0, or another signer's key.
    op = sh.session_op(session_account, spec, key, call, nonce=0)
    assert refused_with(sh, op) == error(
        "InvalidNonceKey(uint192,uint192)", ["uint192", "uint192"], [0, int(key.address, 16)]
    )
    # SessionNotActive: a spec that was never created (another signer).
    other = sh.new_key()
    op = sh.session_op(session_account, transfer_spec(other, sh), other, call)
    assert refused_with(sh, op) == error("SessionNotActive()")
    # Call data shapes.
    execution = bytes.fromhex(RECIPIENT[2:]) + word(1)
    execute = userops.EXECUTE_SELECTOR

    def raw(call_data: bytes) -> bytes:
        return refused_with(
            sh, sh.session_op(session_account, spec, key, call, call_data=call_data)
        )

    batch = userops.execute_batch_call_data(calls=[userops.Call(target=RECIPIENT, value=1)])
    assert raw(batch) == error(
        "InvalidCallType(bytes1,bytes1)", ["bytes1", "bytes1"], [b"\x01", b"\x00"]
    )
    delegate = execute + encode(["bytes32", "bytes"], [b"\xff" + b"\0" * 31, execution])
    assert raw(delegate)[:4] == selector("InvalidCallType(bytes1,bytes1)")
    bad_exec = execute + encode(["bytes32", "bytes"], [b"\x00\x02" + b"\0" * 30, execution])
    assert raw(bad_exec) == error("InvalidExecType(bytes1)", ["bytes1"], [b"\x02"])
    other_selector = selector("executeFromExecutor(bytes32,bytes)") + encode(
        ["bytes32", "bytes"], [b"\0" * 32, execution]
    )
    assert raw(other_selector) == error(
        "InvalidTopLevelSelector(bytes4,bytes4)",
        ["bytes4", "bytes4"],
        [selector("executeFromExecutor(bytes32,bytes)"), execute],
    )
    canonical = userops.execute_call_data(target=RECIPIENT, value=1)
    non_canonical = canonical[:36] + word(0x60) + word(0) + canonical[68:]
    assert raw(non_canonical) == error("InvalidData()")
    short = execute + encode(["bytes32", "bytes"], [b"\0" * 32, execution[:51]])
    assert raw(short) == selector("DecodingError()")
    # try mode (exec type 1) is a single call too: accepted.
    try_mode = execute + encode(["bytes32", "bytes"], [b"\x00\x01" + b"\0" * 30, execution])
    assert (
        sh.simulate_failure(sh.session_op(session_account, spec, key, call, call_data=try_mode))
        is None
    )


def test_call_policies_first_match_value_and_limits(
    sh: SessionHarness, session_account: str, test_contracts: dict[str, Contract]
) -> None:
    sink = test_contracts["Sink"]
    key = sh.new_key()
    spec = call_spec_session(
        key,
        sh,
        CallSpec(target=sink.address, selector=TRANSFER, max_value_per_use=0),
        # A later duplicate is never reached.
        CallSpec(target=sink.address, selector=TRANSFER, max_value_per_use=10**18),
        CallSpec(
            target=sink.address,
            selector=selector("pay()"),
            max_value_per_use=10,
            value_limit=allowance(15, 3600),
        ),
    )
    sh.create_session(session_account, spec, key)
    assert refused_with(
        sh, sh.session_op(session_account, spec, key, token_call(sink.address, OTHER, 1, value=1))
    ) == error("MaxValueExceeded(uint256,uint256)", U256x2, [1, 0])
    unknown = userops.Call(target=sink.address, data=selector("steal()"))
    assert refused_with(sh, sh.session_op(session_account, spec, key, unknown)) == error(
        "CallPolicyViolated(address,bytes4)",
        ["address", "bytes4"],
        [sink.address, selector("steal()")],
    )
    elsewhere = userops.Call(target=OTHER, data=TRANSFER)
    assert refused_with(sh, sh.session_op(session_account, spec, key, elsewhere))[:4] == selector(
        "CallPolicyViolated(address,bytes4)"
    )
    pay = userops.Call(target=sink.address, value=10, data=selector("pay()"))
    sh.submit(sh.session_op(session_account, spec, key, pay))
    assert sink.functions.calls().call() == 1
    assert balance(sh, sink.address) == 10
    period = sh.now() // 3600
    assert refused_with(sh, sh.session_op(session_account, spec, key, pay)) == error(
        "AllowanceExceeded(uint256,uint256,uint64)",
        ["uint256", "uint256", "uint64"],
        [10, 15, period],
    )
    # The next hour has a fresh allowance (anvil time travel).
    travel_to(sh, (period + 1) * 3600 + 5)
    sh.submit(sh.session_op(session_account, spec, key, pay))
    assert balance(sh, sink.address) == 20


def test_transfer_policies(sh: SessionHarness, session_account: str) -> None:
    key = sh.new_key()
    spec = spec_for(
        key.address,
        sh.now(),
        transfer_policies=(
            TransferSpec(target=RECIPIENT, max_value_per_use=5),
            TransferSpec(target=RECIPIENT, max_value_per_use=500),  # never reached
        ),
    )
    sh.create_session(session_account, spec, key)
    assert refused_with(sh, sh.session_op(session_account, spec, key, transfer(6))) == error(
        "MaxValueExceeded(uint256,uint256)", U256x2, [6, 5]
    )
    assert refused_with(sh, sh.session_op(session_account, spec, key, transfer(1, OTHER))) == error(
        "TransferPolicyViolated(address)", ["address"], [OTHER]
    )
    # 1-3 bytes of call data is neither a call nor a transfer.
    odd = userops.Call(target=RECIPIENT, value=1, data=b"\x01\x02\x03")
    assert refused_with(sh, sh.session_op(session_account, spec, key, odd)) == error(
        "InvalidDataLength(uint256,uint256)", U256x2, [3, 0]
    )
    sh.submit(sh.session_op(session_account, spec, key, transfer(5)))
    assert balance(sh, RECIPIENT) == 5


@pytest.mark.parametrize(
    ("condition", "ok", "bad"),
    [
        (Condition.EQUAL, 50, 51),
        (Condition.GREATER, 51, 50),
        (Condition.LESS, 49, 50),
        (Condition.GREATER_OR_EQUAL, 50, 49),
        (Condition.LESS_OR_EQUAL, 50, 51),
        (Condition.NOT_EQUAL, 49, 50),
        (Condition.UNCONSTRAINED, 2**256 - 1, None),
    ],
)
def test_constraint_conditions(
    sh: SessionHarness,
    session_account: str,
    test_contracts: dict[str, Contract],
    condition: Condition,
    ok: int,
    bad: int | None,
) -> None:
    sink = test_contracts["Sink"].address
    key = sh.new_key()
    spec = call_spec_session(
        key,
        sh,
        CallSpec(
            target=sink,
            selector=TRANSFER,
            constraints=(Constraint(condition=condition, index=1, ref_value=word(50)),),
        ),
    )
    sh.create_session(session_account, spec, key)
    assert (
        sh.simulate_failure(sh.session_op(session_account, spec, key, token_call(sink, OTHER, ok)))
        is None
    )
    if bad is not None:
        assert refused_with(
            sh, sh.session_op(session_account, spec, key, token_call(sink, OTHER, bad))
        ) == error(
            "ConditionViolated(bytes32,bytes32,uint8)",
            ["bytes32", "bytes32", "uint8"],
            [word(bad), word(50), int(condition)],
        )


def test_constraint_positions_and_parameter_limits(
    sh: SessionHarness, session_account: str, test_contracts: dict[str, Contract]
) -> None:
    """Constraints read the argument word at 4 + 32·index; their limits are tracked per position
    in the list (two constraints on the same argument are two trackers)."""
    sink = test_contracts["Sink"].address
    key = sh.new_key()
    spec = call_spec_session(
        key,
        sh,
        CallSpec(
            target=sink,
            selector=TRANSFER,
            constraints=(
                Constraint(condition=Condition.EQUAL, index=0, ref_value=word(int(OTHER, 16))),
                Constraint(index=1, limit=lifetime(100)),
                Constraint(index=1, limit=allowance(60, 3600)),
                Constraint(condition=Condition.EQUAL, index=2, ref_value=word(0)),
            ),
        ),
    )
    sh.create_session(session_account, spec, key)
    # The third argument word is missing: InvalidDataLength(68, 100).
    assert refused_with(
        sh, sh.session_op(session_account, spec, key, token_call(sink, OTHER, 1))
    ) == error("InvalidDataLength(uint256,uint256)", U256x2, [68, 100])

    def call(to: str, amount: int) -> userops.Call:
        return userops.Call(
            target=sink,
            data=TRANSFER + encode(["address", "uint256", "uint256"], [to, amount, 0]),
        )

    assert refused_with(sh, sh.session_op(session_account, spec, key, call(RECIPIENT, 1)))[
        :4
    ] == selector("ConditionViolated(bytes32,bytes32,uint8)")
    sh.submit(sh.session_op(session_account, spec, key, call(OTHER, 50)))
    period = sh.now() // 3600
    # 11 more: within the lifetime 100 (50 left), over the hourly 60 (10 left) — the later one.
    assert refused_with(sh, sh.session_op(session_account, spec, key, call(OTHER, 11))) == error(
        "AllowanceExceeded(uint256,uint256,uint64)",
        ["uint256", "uint256", "uint64"],
        [50, 60, period],
    )
    travel_to(sh, (period + 1) * 3600 + 1)
    sh.submit(sh.session_op(session_account, spec, key, call(OTHER, 50)))
    assert refused_with(sh, sh.session_op(session_account, spec, key, call(OTHER, 1))) == error(
        "LifetimeUsageExceeded(uint256,uint256)", U256x2, [100, 100]
    )


def test_signature_must_be_the_session_keys(sh: SessionHarness, session_account: str) -> None:
    key = sh.new_key()
    spec = transfer_spec(key, sh, value_limit=lifetime(10))
    sh.create_session(session_account, spec, key)
    forged = sh.session_op(session_account, spec, key, transfer(10), signer=sh.new_key())
    failure = sh.simulate_failure(forged)
    assert failure is not None and failure.reason == "AA24 signature error"
    # Its usage was not kept: the whole bundle reverts.
    assert sh.state(session_account, spec).transfer_value[0].remaining == 10


def test_expiry_and_periods_bound_the_operation_in_time(
    sh: SessionHarness, session_account: str
) -> None:
    key = sh.new_key()
    spec = transfer_spec(key, sh, value_limit=allowance(10, 600))
    sh.create_session(session_account, spec, key)
    now = sh.now()
    current = now // 600
    # A past period's window is over: AA22.
    stale = sh.session_op(session_account, spec, key, transfer(1), period_ids=[0, current - 1])
    failure = sh.simulate_failure(stale)
    assert failure is not None and failure.reason == "AA22 expired or not due"
    # A future period's window has not started: AA22.
    future = sh.session_op(session_account, spec, key, transfer(1), period_ids=[0, current + 1])
    failure = sh.simulate_failure(future)
    assert failure is not None and failure.reason == "AA22 expired or not due"
    # A period after the expiry: the windows do not meet.
    late = (spec.expires_at // 600) + 2
    op = sh.session_op(session_account, spec, key, transfer(1), period_ids=[0, late])
    assert refused_with(sh, op) == error("EmptyTimeRange()")
    # Too few period ids: a panic (array index out of bounds).
    op = sh.session_op(session_account, spec, key, transfer(1), period_ids=[0])
    assert refused_with(sh, op) == panic(0x32)
    # After the expiry every operation is refused.
    travel_to(sh, spec.expires_at + 1)
    failure = sh.simulate_failure(sh.session_op(session_account, spec, key, transfer(1)))
    assert failure is not None and failure.reason == "AA22 expired or not due"


def test_degenerate_allowance_periods(sh: SessionHarness, session_account: str) -> None:
    """A zero period panics; a one-second period with period id 0 cannot make an op valid
    forever (the window would end at 0, which the EntryPoint reads as no expiry)."""
    key = sh.new_key()
    spec = transfer_spec(key, sh, value_limit=UsageLimit(limit_type=2, limit=10, period=0))  # type: ignore[arg-type]
    sh.create_session(session_account, spec, key)
    assert refused_with(sh, sh.session_op(session_account, spec, key, transfer(1))) == panic(0x11)
    key = sh.new_key()
    spec = transfer_spec(key, sh, value_limit=allowance(10, 1))
    sh.create_session(session_account, spec, key)
    op = sh.session_op(session_account, spec, key, transfer(1), period_ids=[0, 0])
    assert refused_with(sh, op) == error("EmptyTimeRange()")


def test_fee_limit_without_and_with_a_paymaster(sh: SessionHarness, session_account: str) -> None:
    key = sh.new_key()
    spec = spec_for(
        key.address,
        sh.now(),
        fee_limit=lifetime(3 * 10**15),
        transfer_policies=(TransferSpec(target=RECIPIENT, max_value_per_use=10),),
    )
    sh.create_session(session_account, spec, key)
    gas: dict[str, Any] = {
        "verification_gas_limit": 500_000,
        "call_gas_limit": 100_000,
        "pre_verification_gas": 60_000,
    }
    # The fee is min(maxFeePerGas, maxPriorityFeePerGas + basefee) x all three gas limits.
    sh.rpc("anvil_setNextBlockBaseFeePerGas", [hex(10**9)])
    sh.rpc("evm_mine", [])
    base_fee = int(sh.w3.eth.get_block("latest")["baseFeePerGas"])
    op = sh.session_op(session_account, spec, key, transfer(1), **gas)
    expected = min(op.max_fee_per_gas, op.max_priority_fee_per_gas + base_fee) * 660_000
    assert sh.simulate_failure(op) is None
    before = sh.state(session_account, spec).fees_remaining
    sh.rpc("anvil_setNextBlockBaseFeePerGas", [hex(base_fee)])
    sh.submit(op)
    assert before - sh.state(session_account, spec).fees_remaining == expected
    # Over the limit: LifetimeUsageExceeded for the fee, checked after the signature.
    left = sh.state(session_account, spec).fees_remaining
    big = sh.session_op(
        session_account, spec, key, transfer(1), **{**gas, "call_gas_limit": 10_000_000}
    )
    assert refused_with(sh, big) == error(
        "LifetimeUsageExceeded(uint256,uint256)", U256x2, [3 * 10**15 - left, 3 * 10**15]
    )
    forged = sh.session_op(
        session_account,
        spec,
        key,
        transfer(1),
        signer=sh.new_key(),
        **{**gas, "call_gas_limit": 10_000_000},
    )
    failure = sh.simulate_failure(forged)
    assert failure is not None and failure.reason == "AA24 signature error"
    # With the portal's paymaster the session's fee limit is not charged.
    sponsored = sh.session_op(
        session_account,
        spec,
        key,
        transfer(1),
        sponsored=True,
        **{**gas, "call_gas_limit": 10_000_000},
    )
    assert sh.simulate_failure(sponsored) is None
    sh.submit(sponsored)
    assert sh.state(session_account, spec).fees_remaining == left


def test_fee_allowance_resets_each_period(sh: SessionHarness, session_account: str) -> None:
    key = sh.new_key()
    spec = spec_for(
        key.address,
        sh.now(),
        fee_limit=allowance(10**15, 3600),
        transfer_policies=(TransferSpec(target=RECIPIENT, max_value_per_use=10),),
    )
    sh.create_session(session_account, spec, key)
    gas: dict[str, Any] = {
        "verification_gas_limit": 400_000,
        "call_gas_limit": 100_000,
        "pre_verification_gas": 60_000,
    }
    spent = 0
    period = sh.now() // 3600
    while True:
        op = sh.session_op(session_account, spec, key, transfer(1), **gas)
        if sh.simulate_failure(op) is not None:
            break
        sh.submit(op)
        spent += 1
    assert spent >= 1
    assert refused_with(sh, op)[:4] == selector("AllowanceExceeded(uint256,uint256,uint64)")
    travel_to(sh, (period + 1) * 3600 + 1)
    assert (
        sh.simulate_failure(sh.session_op(session_account, spec, key, transfer(1), **gas)) is None
    )


def test_session_created_by_a_passkey_approved_operation(
    sh: SessionHarness, session_account: str, passkey: SoftwarePasskey
) -> None:
    """The real path: the account's passkey signs execute(createSession) and the session key then
    acts; revokeKeys likewise."""
    key = sh.new_key()
    spec = transfer_spec(key, sh, value_limit=lifetime(5))
    proof = session_keys.session_proof(spec=spec, account=session_account, signer_key=key.key)
    call_data = session_keys.create_session_call_data(
        validator=sh.sessions.address, spec=spec, proof=proof
    )
    op, _ = sh.sign(
        sh.sponsor(sh.build(session_account, call_data, call_gas_limit=600_000)), passkey
    )
    receipt = sh.submit(op)
    assert sh.sessions.events.SessionCreated().process_receipt(receipt, errors=DISCARD)
    sh.submit(sh.session_op(session_account, spec, key, transfer(5)))
    assert balance(sh, RECIPIENT) == 5
    revoke = session_keys.revoke_keys_call_data(
        validator=sh.sessions.address, session_hashes=[spec.session_hash]
    )
    op, _ = sh.sign(sh.sponsor(sh.build(session_account, revoke)), passkey)
    sh.submit(op)
    assert refused_with(sh, sh.session_op(session_account, spec, key, transfer(0))) == error(
        "SessionNotActive()"
    )


def test_existing_accounts_install_the_validator_with_a_passkey(
    sh: SessionHarness, passkey: SoftwarePasskey
) -> None:
    address, _ = sh.deploy_account_without_sessions(passkey)
    call_data = session_keys.install_validator_call_data(
        account=address, validator=sh.sessions.address
    )
    op, _ = sh.sign(sh.sponsor(sh.build(address, call_data, call_gas_limit=300_000)), passkey)
    sh.submit(op)
    assert sh.sessions.functions.isInitialized(address).call() is True


def test_registry_vets_executor_and_fallback_calls(
    sh: SessionHarness, session_account: str, test_contracts: dict[str, Contract]
) -> None:
    registry = test_contracts["MockRegistry"]
    executor, fallback = test_contracts["MockExecutor"], test_contracts["MockFallback"]
    who_called = selector("whoCalled()")
    install = selector("installModule(uint256,address,bytes)")
    for module_type, module, data in [
        (2, executor.address, b""),
        (3, fallback.address, who_called + b"\x00"),
    ]:
        sh.send_as(
            session_account,
            session_account,
            install + encode(["uint256", "address", "bytes"], [module_type, module, data]),
        )
    sh.send_as(
        session_account,
        session_account,
        selector("setRegistry(address,address[],uint8)")
        + encode(["address", "address[]", "uint8"], [registry.address, [], 0]),
    )
    handler = sh.w3.eth.contract(address=to_checksum_address(session_account), abi=fallback.abi)
    assert handler.functions.whoCalled().call()[1] == session_account
    sh.sender.transact(executor, "transfer", session_account, RECIPIENT, 3)
    assert balance(sh, RECIPIENT) == 3
    sh.sender.transact(registry, "refuse", executor.address)
    sh.sender.transact(registry, "refuse", fallback.address)
    with pytest.raises(RevertedCall) as refused:
        sh.call_as(
            RECIPIENT,
            executor.address,
            selector("transfer(address,address,uint256)")
            + encode(["address", "address", "uint256"], [session_account, RECIPIENT, 1]),
        )
    assert refused.value.data == error(
        "ModuleRefused(address,uint256)", ["address", "uint256"], [executor.address, 2]
    )
    with pytest.raises(RevertedCall) as refused:
        sh.call_as(RECIPIENT, session_account, who_called)
    assert refused.value.data == error(
        "ModuleRefused(address,uint256)", ["address", "uint256"], [fallback.address, 3]
    )
