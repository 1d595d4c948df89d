"""The passkey account on a real anvil: deployment, sponsored operations, every refusal."""

import hashlib
import os
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from web3.logs import DISCARD

from chain import userops
from chain.client import Sender, TransactionFailed, account_from_key
from chain.devtools import devnet
from chain.devtools.authenticator import FLAG_UP, FLAG_UV, SoftwarePasskey
from chain.devtools.devkit import ANVIL_KEYS, Harness, OpFailure
from chain.passkey_signatures import P256_N
from chain.userops import PackedUserOperation
from tests.chain.conftest import ORIGIN

pytestmark = pytest.mark.chain

RECIPIENT = "0x000000000000000000000000000000000000bEEF"


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def fund(harness: Harness, address: str, wei: int) -> None:
    harness.sender.send(to=address, value=wei)


@pytest.fixture
def account(harness: Harness, passkey: SoftwarePasskey) -> str:
    address, _ = harness.deploy_account(passkey)
    fund(harness, address, 1_000)
    return address


def transfer_op(
    harness: Harness, account: str, *, value: int = 1, **build: Any
) -> PackedUserOperation:
    return harness.build(account, userops.execute_call_data(target=RECIPIENT, value=value), **build)


def balance(harness: Harness, address: str) -> int:
    return int(harness.w3.eth.get_balance(to_checksum_address(address)))


def deposit(harness: Harness) -> int:
    return int(harness.entry_point.functions.balanceOf(harness.paymaster.address).call())


# --------------------------------------------------------------------------- deployment & hashing


def test_account_is_deployed_with_the_passkey_for_its_origin(
    harness: Harness, passkey: SoftwarePasskey
) -> None:
    salt = os.urandom(32)
    init_data = harness.account_init_data(passkey)
    predicted = userops.predict_account_address(
        factory=harness.factory.address,
        beacon=harness.addresses["AccountBeacon"],
        salt=salt,
        init_data=init_data,
    )
    address, receipt = harness.deploy_account(passkey, salt=salt)
    assert address == predicted
    created = harness.factory.events.AccountDeployed().process_receipt(receipt, errors=DISCARD)
    assert created[0]["args"]["account"] == address and created[0]["args"]["salt"] == salt
    passkey_created = harness.validator.events.PasskeyCreated().process_receipt(
        receipt, errors=DISCARD
    )
    assert passkey_created[0]["args"]["keyOwner"] == address
    assert passkey_created[0]["args"]["domain"] == ORIGIN
    assert passkey_created[0]["args"]["credentialId"] == passkey.credential_id

    account = harness.account(address)
    assert account.functions.isModuleInstalled(1, harness.validator.address, b"").call()
    assert account.functions.entryPoint().call() == harness.entry_point.address
    key = harness.validator.functions.getAccountKey(ORIGIN, passkey.credential_id, address).call()
    assert [int.from_bytes(k, "big") for k in key] == list(passkey.public_key)
    assert harness.validator.functions.getAccountList(ORIGIN, passkey.credential_id).call() == [
        address
    ]
    # A beacon proxy of the account implementation.
    beacon_slot = 0xA3F0AD74E5423AEBFD80D3EF4346578335A9A72AEAEE59FF6CB3582B35133D50
    stored = harness.w3.eth.get_storage_at(to_checksum_address(address), beacon_slot)
    assert to_checksum_address(stored[-20:]) == harness.beacon.address
    assert harness.factory.functions.BEACON().call() == harness.beacon.address
    assert (
        harness.beacon.functions.implementation().call()
        == (harness.addresses["ModularSmartAccount"])
    )
    # A second initialisation is refused.
    with pytest.raises(TransactionFailed):
        harness.sender.send(to=address, data=init_data, gas=300_000)


def test_the_address_does_not_depend_on_who_deploys(
    harness: Harness, passkey: SoftwarePasskey
) -> None:
    """Rotating the relayer key keeps the address of an account not yet deployed; whoever
    deploys it first gets the same account with the same passkey, and a later deployment
    finds it there."""
    salt = os.urandom(32)
    init_data = harness.account_init_data(passkey)
    predicted = harness.factory.functions.predictAccountAddress(salt, init_data).call()
    stranger = Sender(w3=harness.w3, account=account_from_key(ANVIL_KEYS[3]))
    for caller in (harness.relayer.address, stranger.address, "0x" + "11" * 20):
        assert (
            harness.factory.functions.deployAccount(salt, init_data).call({"from": caller})
            == predicted
        )
    stranger.transact(harness.factory, "deployAccount", salt, init_data)
    key = harness.validator.functions.getAccountKey(ORIGIN, passkey.credential_id, predicted).call()
    assert [int.from_bytes(k, "big") for k in key] == list(passkey.public_key)
    receipt = harness.sender.transact(harness.factory, "deployAccount", salt, init_data)
    assert receipt["status"] == 1
    assert not harness.factory.events.AccountDeployed().process_receipt(receipt, errors=DISCARD)
    # Another set-up (here another passkey) with the same salt lands elsewhere.
    other = harness.account_init_data(SoftwarePasskey(origin=ORIGIN))
    assert harness.factory.functions.predictAccountAddress(salt, other).call() != predicted


def test_user_operation_hash_matches_the_entry_point(harness: Harness, account: str) -> None:
    op = harness.sponsor(transfer_op(harness, account, nonce=userops.nonce(key=7, sequence=3)))
    op = op.with_changes(init_code=b"\x12" * 40, signature=b"ignored")
    expected = harness.entry_point.functions.getUserOpHash(op.as_tuple()).call()
    assert harness.op_hash(op) == expected


def test_sponsor_hash_matches_the_paymaster(harness: Harness, account: str) -> None:
    op = harness.sponsor(transfer_op(harness, account), valid_until=123456, valid_after=42)
    cap = userops.required_prefund(op)
    assert int.from_bytes(op.paymaster_and_data[64:80], "big") == cap
    expected = harness.paymaster.functions.getHash(op.as_tuple(), 123456, 42, cap).call()
    assert (
        userops.sponsor_hash(
            op,
            paymaster=harness.paymaster.address,
            chain_id=harness.chain_id,
            valid_until=123456,
            valid_after=42,
            max_cost=cap,
        )
        == expected
    )


# --------------------------------------------------------------------------- accepted operations


def test_passkey_signed_operation_executes_with_gas_paid_by_the_paymaster(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    deposit_before = deposit(harness)
    op, _ = harness.sign(harness.sponsor(transfer_op(harness, account, value=1)), passkey)
    assert harness.simulate_failure(op) is None
    receipt = harness.submit(op)

    events = harness.entry_point.events.UserOperationEvent().process_receipt(
        receipt, errors=DISCARD
    )
    assert events[0]["args"]["success"] is True
    assert events[0]["args"]["paymaster"] == harness.paymaster.address
    assert balance(harness, RECIPIENT) == 1
    assert balance(harness, account) == 999  # the transfer only: no gas from the account
    assert deposit(harness) == deposit_before - events[0]["args"]["actualGasCost"]
    assert harness.next_nonce(account) == 1


def test_operation_without_paymaster_is_paid_by_the_account(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    fund(harness, account, 10**17)
    before = balance(harness, account)
    op, _ = harness.sign(transfer_op(harness, account, value=1), passkey)
    receipt = harness.submit(op)
    event = harness.entry_point.events.UserOperationEvent().process_receipt(
        receipt, errors=DISCARD
    )[0]["args"]
    assert event["success"] and event["paymaster"] == "0x" + "0" * 40
    # The account prefunds the maximum cost; the EntryPoint keeps the unused part as its deposit.
    account_deposit = int(harness.entry_point.functions.balanceOf(account).call())
    assert balance(harness, account) + account_deposit == before - 1 - event["actualGasCost"]


def test_first_operation_deploys_the_account_through_init_code(
    harness: Harness, passkey: SoftwarePasskey
) -> None:
    salt = os.urandom(32)
    init_data = harness.account_init_data(passkey)
    sender_creator = harness.entry_point.functions.senderCreator().call()
    address = harness.factory.functions.predictAccountAddress(salt, init_data).call()
    # The same address as when the relayer deploys it: the caller does not matter.
    assert address == harness.factory.functions.deployAccount(salt, init_data).call(
        {"from": sender_creator}
    )
    init_code = userops.deploy_account_init_code(
        factory=harness.factory.address, salt=salt, init_data=init_data
    )
    op = harness.build(
        address,
        userops.execute_call_data(target=RECIPIENT),
        init_code=init_code,
        nonce=0,
        verification_gas_limit=700_000,
    )
    op, _ = harness.sign(harness.sponsor(op), passkey)
    receipt = harness.submit(op)
    assert (
        harness.entry_point.events.AccountDeployed().process_receipt(receipt, errors=DISCARD)[0][
            "args"
        ]["sender"]
        == address
    )
    assert harness.entry_point.events.UserOperationEvent().process_receipt(receipt, errors=DISCARD)[
        0
    ]["args"]["success"]
    assert harness.w3.eth.get_code(address)


def test_passkey_adds_another_passkey_which_can_then_sign(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    phone = SoftwarePasskey(origin=ORIGIN)
    call = harness.validator.encode_abi(
        "addValidationKey",
        args=[phone.credential_id, [k.to_bytes(32, "big") for k in phone.public_key], ORIGIN],
    )
    add = userops.execute_call_data(target=harness.validator.address, data=bytes.fromhex(call[2:]))
    op, _ = harness.sign(harness.sponsor(harness.build(account, add)), passkey)
    receipt = harness.submit(op)
    assert (
        harness.validator.events.PasskeyCreated().process_receipt(receipt, errors=DISCARD)[0][
            "args"
        ]["keyOwner"]
        == account
    )

    op, _ = harness.sign(harness.sponsor(transfer_op(harness, account)), phone)
    assert harness.simulate_failure(op) is None
    harness.submit(op)
    assert balance(harness, RECIPIENT) == 1


def test_high_s_from_the_authenticator_is_normalised_and_accepted(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    op = harness.sponsor(transfer_op(harness, account))
    op, signature = harness.sign(op, passkey, high_s=True)
    assert signature.was_high_s
    assert harness.simulate_failure(op) is None


def test_extra_client_data_members_and_absent_cross_origin_are_accepted(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    op = harness.sponsor(transfer_op(harness, account))
    challenge = harness.op_hash(op)
    assertion = passkey.assertion(challenge, cross_origin=None)
    # Chrome may add members; members may come in any order, with nested values.
    assertion.client_data_json = (
        b'{"other_keys_can_be_added_here":"do not compare clientDataJSON against a template",'
        b'"tokenBinding":{"status":"present","id":["x",{"y":"}"}]},'
        + assertion.client_data_json[1:]
    )
    # Re-sign the modified client data.

    message = assertion.authenticator_data + hashlib.sha256(assertion.client_data_json).digest()
    assertion.signature_der = passkey.private_key.sign(message, ec.ECDSA(hashes.SHA256()))
    op = op.with_changes(signature=harness.encode(assertion).encoded)
    assert harness.simulate_failure(op) is None


def test_erc1271_signature_is_bound_to_the_account(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    other, _ = harness.deploy_account(passkey)
    message_hash = keccak(text="hello")
    digest = harness.account(account).functions.replaySafeHash(message_hash).call()
    signature = harness.encode(passkey.assertion(digest)).encoded
    assert harness.account(account).functions.isValidSignature(
        message_hash, signature
    ).call() == bytes.fromhex("1626ba7e")
    assert harness.account(other).functions.isValidSignature(
        message_hash, signature
    ).call() == bytes.fromhex("ffffffff")


# --------------------------------------------------------------------------- refusals

SIGNATURE_ERROR = "AA24 signature error"


def refused_on_chain(harness: Harness, op: PackedUserOperation) -> tuple[str, bytes]:
    """Submit the operation for real and check it reverted with nothing moved; return the reason."""
    failure = harness.simulate_failure(op)
    assert failure is not None, "the operation would have been accepted"
    recipient_before = balance(harness, RECIPIENT)
    receipt = harness.submit(op, gas=3_000_000, check=False)
    assert receipt["status"] == 0
    assert balance(harness, RECIPIENT) == recipient_before
    return failure.reason, failure.inner


def signed_transfer(
    harness: Harness,
    account: str,
    passkey: SoftwarePasskey,
    *,
    value: int = 1,
    abi_form: bool = False,
    **options: Any,
) -> PackedUserOperation:
    """A sponsored transfer signed by `passkey`: the compact signature form when clientDataJSON
    allows it (the default), ZKsync SSO's ABI form with `abi_form`."""
    op = harness.sponsor(transfer_op(harness, account, value=value))
    op, signature = harness.sign(op, passkey, **options)
    return op.with_changes(signature=signature.encoded_abi) if abi_form else op


@pytest.mark.parametrize("cross_origin", [None, False], ids=["no-crossOrigin", "crossOrigin-false"])
def test_both_signature_forms_are_accepted(
    harness: Harness, passkey: SoftwarePasskey, account: str, cross_origin: bool | None
) -> None:
    op = harness.sponsor(transfer_op(harness, account))
    op, signature = harness.sign(op, passkey, cross_origin=cross_origin)
    compact = signature.compact_payload
    assert compact is not None and compact[0] == (2 if cross_origin is False else 1)
    assert op.signature == bytes.fromhex(harness.validator.address[2:]) + compact
    assert len(signature.encoded) < len(signature.encoded_abi) - 300
    assert harness.simulate_failure(op) is None
    assert harness.simulate_failure(op.with_changes(signature=signature.encoded_abi)) is None
    # The compact form stands for exactly one clientDataJSON: the other crossOrigin variant of it
    # is a different message, which the passkey did not sign.
    other = bytes([3 - compact[0]]) + compact[1:]
    op_other = op.with_changes(signature=op.signature[:20] + other)
    assert refused_on_chain(harness, op_other) == (SIGNATURE_ERROR, b"")
    digest = keccak(text="a message")
    for form in ("encoded", "encoded_abi"):
        signed = getattr(
            harness.encode(
                passkey.assertion(harness.account(account).functions.replaySafeHash(digest).call())
            ),
            form,
        )
        assert harness.account(account).functions.isValidSignature(digest, signed).call() == (
            bytes.fromhex("1626ba7e")
        )


def test_refuses_a_signature_over_another_challenge(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    op = harness.sponsor(transfer_op(harness, account))
    assertion = passkey.assertion(keccak(text="some other operation"))
    op = op.with_changes(signature=harness.encode(assertion).encoded)
    assert refused_on_chain(harness, op) == (SIGNATURE_ERROR, b"")


def test_refuses_another_origin(harness: Harness, passkey: SoftwarePasskey, account: str) -> None:
    op = signed_transfer(harness, account, passkey, origin="https://evil.example")
    assert refused_on_chain(harness, op) == (SIGNATURE_ERROR, b"")


# Bad flags, a bad type, a cross-origin or malformed assertion are invalid signatures: validation
# returns SIG_VALIDATION_FAILED (AA24) instead of reverting (AA23), so that a bundler's gas
# estimation with a dummy signature runs the whole validation.


def test_refuses_cross_origin_true(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    op = signed_transfer(harness, account, passkey, cross_origin=True)
    assert refused_on_chain(harness, op) == (SIGNATURE_ERROR, b"")


@pytest.mark.parametrize(
    "flags", [FLAG_UV, FLAG_UP], ids=["user-presence-missing", "user-verification-missing"]
)
def test_refuses_missing_flags(
    harness: Harness, passkey: SoftwarePasskey, account: str, flags: int
) -> None:
    op = signed_transfer(harness, account, passkey, flags=flags)
    assert refused_on_chain(harness, op) == (SIGNATURE_ERROR, b"")


def test_refuses_the_wrong_type(harness: Harness, passkey: SoftwarePasskey, account: str) -> None:
    op = signed_transfer(harness, account, passkey, type_="webauthn.create")
    assert refused_on_chain(harness, op) == (SIGNATURE_ERROR, b"")


def _with_client_data(
    harness: Harness, passkey: SoftwarePasskey, op: PackedUserOperation, client_data: bytes
) -> PackedUserOperation:
    """`op` signed by `passkey` over `client_data` (whatever it is)."""
    assertion = passkey.assertion(harness.op_hash(op))
    assertion.client_data_json = client_data
    message = assertion.authenticator_data + hashlib.sha256(client_data).digest()
    assertion.signature_der = passkey.private_key.sign(message, ec.ECDSA(hashes.SHA256()))
    return op.with_changes(signature=harness.encode(assertion).encoded)


@pytest.mark.parametrize(
    "malform",
    [
        lambda sig, _validator: sig[:20],  # the validator address alone
        lambda sig, _validator: sig[:10],  # not even a validator address
        lambda sig, _validator: b"",
        lambda sig, _validator: sig[:200],  # truncated payload
        lambda sig, _validator: sig[:20] + b"\xff" * 160,  # offsets past the end
        lambda sig, validator: (
            validator
            + encode(  # authenticatorData too short for flags
                ["bytes", "string", "bytes32[2]", "bytes"],
                [b"\x05" * 20, "{}", [b"\0" * 32] * 2, b""],
            )
        ),
        lambda sig, _validator: sig[:20] + b"\x00" * 64 + b"\x12" * 1000,  # random
    ],
    ids=[
        "validator-only",
        "shorter-than-address",
        "empty",
        "truncated",
        "offsets-out-of-range",
        "short-authenticator-data",
        "garbage",
    ],
)
def test_malformed_signatures_fail_validation_without_reverting(
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    malform: Callable[[bytes, bytes], bytes],
) -> None:
    op = signed_transfer(harness, account, passkey, abi_form=True)
    validator = bytes.fromhex(harness.validator.address[2:])
    op = op.with_changes(signature=malform(op.signature, validator))
    assert refused_on_chain(harness, op) == (SIGNATURE_ERROR, b"")


def _compact(
    payload: bytes, *, auth_length: int | None = None, id_length: int | None = None
) -> bytes:
    """A compact payload with its length fields replaced."""
    auth = int.from_bytes(payload[65:67], "big")
    out = bytearray(payload)
    if auth_length is not None:
        out[65:67] = auth_length.to_bytes(2, "big")
    if id_length is not None:
        out[67 + auth : 69 + auth] = id_length.to_bytes(2, "big")
    return bytes(out)


@pytest.mark.parametrize(
    "malform",
    [
        lambda p: p[:68],  # shorter than its fixed part
        lambda p: p[:67],
        lambda p: _compact(p, auth_length=0xFFFF),  # authenticatorData past the end
        lambda p: _compact(p, id_length=0xFFFF),  # credential id past the end
        lambda p: _compact(
            p, id_length=len(p)
        ),  # credential id swallowing the origin, past the end
        lambda p: _compact(p, auth_length=36, id_length=0),  # authenticatorData too short for flags
        lambda p: b"\x03" + p[1:],  # unknown form
        lambda p: p + b'"',  # a quote in the origin
        lambda p: p[:-6] + b"\\" + p[-5:],  # a backslash in the origin
        lambda p: p[:-1],  # another origin
    ],
    ids=[
        "fixed-part",
        "no-credential-length",
        "authenticator-data-past-end",
        "credential-id-past-end",
        "credential-id-too-long",
        "short-authenticator-data",
        "unknown-form",
        "quote-in-origin",
        "backslash-in-origin",
        "other-origin",
    ],
)
def test_malformed_compact_signatures_fail_validation_without_reverting(
    harness: Harness, passkey: SoftwarePasskey, account: str, malform: Callable[[bytes], bytes]
) -> None:
    op = signed_transfer(harness, account, passkey)
    assert op.signature[20] in (1, 2)
    op = op.with_changes(signature=op.signature[:20] + malform(op.signature[20:]))
    assert refused_on_chain(harness, op) == (SIGNATURE_ERROR, b"")
    assert harness.account(account).functions.isValidSignature(
        b"\1" * 32, op.signature
    ).call() == bytes.fromhex("ffffffff")


@pytest.mark.parametrize(
    "client_data",
    [
        b"not json",
        b'{"type":"webauthn.get","challenge":"unterminated',
        b'{"type":"webauthn.get","challenge":',
        b'{"type":"webauthn.get" "challenge":"x"}',
        b'{"type":["webauthn.get",',
        b"{}",
        b'{"type":"webauthn.get","challenge":42,"origin":"https://portal.example"}',
    ],
    ids=["text", "open-string", "no-value", "no-comma", "open-array", "empty-object", "number"],
)
def test_malformed_client_data_fails_validation_without_reverting(
    harness: Harness, passkey: SoftwarePasskey, account: str, client_data: bytes
) -> None:
    op = harness.sponsor(transfer_op(harness, account))
    op = _with_client_data(harness, passkey, op, client_data)
    assert refused_on_chain(harness, op) == (SIGNATURE_ERROR, b"")
    # ERC-1271 says no instead of reverting, too.
    assert harness.account(account).functions.isValidSignature(
        b"\1" * 32, op.signature
    ).call() == bytes.fromhex("ffffffff")


def test_refuses_high_s(harness: Harness, passkey: SoftwarePasskey, account: str) -> None:
    op, signature = harness.sign(harness.sponsor(transfer_op(harness, account)), passkey)
    # Put the malleable twin (r, N - s) on chain, bypassing the encoder's normalisation.
    high = signature.__class__(**{**signature.__dict__, "s": P256_N - signature.s})
    assert high.s > P256_N // 2
    op = op.with_changes(signature=high.encoded)
    assert refused_on_chain(harness, op) == (SIGNATURE_ERROR, b"")


def test_refuses_another_accounts_passkey(harness: Harness, account: str) -> None:
    stranger = SoftwarePasskey(origin=ORIGIN)
    harness.deploy_account(stranger)
    op = signed_transfer(harness, account, stranger)
    assert refused_on_chain(harness, op) == (SIGNATURE_ERROR, b"")


def test_refuses_a_removed_passkey(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    # A second passkey removes the first one, through a user operation.
    laptop = SoftwarePasskey(origin=ORIGIN)
    add = harness.validator.encode_abi(
        "addValidationKey",
        args=[laptop.credential_id, [k.to_bytes(32, "big") for k in laptop.public_key], ORIGIN],
    )
    remove = harness.validator.encode_abi(
        "removeValidationKey", args=[passkey.credential_id, ORIGIN]
    )
    calls = [
        userops.Call(target=harness.validator.address, data=bytes.fromhex(add[2:])),
        userops.Call(target=harness.validator.address, data=bytes.fromhex(remove[2:])),
    ]
    op, _ = harness.sign(
        harness.sponsor(harness.build(account, userops.execute_batch_call_data(calls=calls))),
        passkey,
    )
    receipt = harness.submit(op)
    removed = harness.validator.events.PasskeyRemoved().process_receipt(receipt, errors=DISCARD)
    assert removed[0]["args"]["credentialId"] == passkey.credential_id
    assert harness.validator.functions.getAccountList(ORIGIN, passkey.credential_id).call() == []

    assert refused_on_chain(harness, signed_transfer(harness, account, passkey)) == (
        SIGNATURE_ERROR,
        b"",
    )
    assert harness.simulate_failure(signed_transfer(harness, account, laptop)) is None


@pytest.mark.parametrize(
    ("abi_form", "tamper"),
    [
        (True, lambda sig: sig[:-40] + bytes([sig[-40] ^ 1]) + sig[-39:]),  # credential id / r, s
        (True, lambda sig: sig[:200] + bytes([sig[200] ^ 0x20]) + sig[201:]),  # signed data
        (False, lambda sig: sig[:30] + bytes([sig[30] ^ 1]) + sig[31:]),  # r
        (False, lambda sig: sig[:60] + bytes([sig[60] ^ 1]) + sig[61:]),  # s
        (False, lambda sig: sig[:100] + bytes([sig[100] ^ 1]) + sig[101:]),  # authenticatorData
        (False, lambda sig: sig[:130] + bytes([sig[130] ^ 1]) + sig[131:]),  # credential id
    ],
    ids=[
        "abi-credential-or-rs",
        "abi-signed-data",
        "r",
        "s",
        "authenticator-data",
        "credential-id",
    ],
)
def test_refuses_a_tampered_signature(
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    abi_form: bool,
    tamper: Callable[[bytes], bytes],
) -> None:
    op = signed_transfer(harness, account, passkey, abi_form=abi_form)
    op = op.with_changes(signature=tamper(op.signature))
    assert refused_on_chain(harness, op) == (SIGNATURE_ERROR, b"")


def test_refuses_a_tampered_operation(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    op = signed_transfer(harness, account, passkey)
    tampered = op.with_changes(call_data=userops.execute_call_data(target=RECIPIENT, value=2))
    reason, _ = refused_on_chain(harness, tampered)
    assert reason.startswith("AA")  # the sponsor's or the passkey's signature no longer matches


def test_refuses_an_operation_the_sponsor_did_not_sign(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    op = harness.sponsor(transfer_op(harness, account), sponsor_key=ANVIL_KEYS[3])
    op, _ = harness.sign(op, passkey)
    assert refused_on_chain(harness, op) == ("AA34 signature error", b"")


def test_refuses_an_operation_costing_more_than_the_sponsor_signed_for(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    op = transfer_op(harness, account)
    head = harness.sponsor(op)
    cap = userops.required_prefund(head)
    op, _ = harness.sign(harness.sponsor(op, max_cost=cap - 1), passkey)
    assert refused_on_chain(harness, op) == ("AA34 signature error", b"")

    # The sponsor's signature bounds the cost, not the exact limits: the same paymaster data
    # with a higher fee is refused, with a lower one it pays.
    sponsored = harness.sponsor(transfer_op(harness, account))
    fees = sponsored.gas_fees
    dearer = sponsored.with_changes(
        gas_fees=userops.pack_uint128_pair(
            sponsored.max_priority_fee_per_gas, sponsored.max_fee_per_gas + 1
        )
    )
    op, _ = harness.sign(dearer, passkey)
    assert refused_on_chain(harness, op) == ("AA34 signature error", b"")
    cheaper = sponsored.with_changes(
        gas_fees=userops.pack_uint128_pair(
            sponsored.max_priority_fee_per_gas, sponsored.max_fee_per_gas - 1
        )
    )
    assert cheaper.gas_fees != fees
    op, _ = harness.sign(cheaper, passkey)
    assert harness.simulate_failure(op) is None


def test_paymaster_validation_reads_no_storage(harness: Harness, account: str) -> None:
    """ERC-7562: an unstaked paymaster may not read its own storage in validation."""
    op = harness.sponsor(transfer_op(harness, account))
    data = harness.paymaster.encode_abi(
        "validatePaymasterUserOp", args=[op.as_tuple(), b"\0" * 32, userops.required_prefund(op)]
    )
    call = {"from": harness.entry_point.address, "to": harness.paymaster.address, "data": data}
    url = harness.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    result: Any = devnet.rpc(url, "eth_createAccessList", [call, "latest"])
    touched = {to_checksum_address(e["address"]): e["storageKeys"] for e in result["accessList"]}
    assert touched.get(harness.paymaster.address, []) == []
    assert harness.paymaster.functions.sponsor().call() == account_from_key(ANVIL_KEYS[1]).address


def test_refuses_an_expired_sponsor_window(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    op = harness.sponsor(transfer_op(harness, account), valid_until=harness.now() - 1)
    op, _ = harness.sign(op, passkey)
    assert refused_on_chain(harness, op) == ("AA32 paymaster expired or not due", b"")


def test_refuses_a_sponsor_window_not_yet_open(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    op = harness.sponsor(transfer_op(harness, account), valid_after=harness.now() + 3600)
    op, _ = harness.sign(op, passkey)
    assert refused_on_chain(harness, op) == ("AA32 paymaster expired or not due", b"")


def test_refuses_a_replayed_operation(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    op = signed_transfer(harness, account, passkey)
    harness.submit(op)
    assert balance(harness, RECIPIENT) == 1
    assert refused_on_chain(harness, op) == ("AA25 invalid account nonce", b"")
    assert balance(harness, RECIPIENT) == 1


def test_refuses_an_unknown_validator(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    op = signed_transfer(harness, account, passkey)
    op = op.with_changes(signature=bytes.fromhex(RECIPIENT[2:]) + op.signature[20:])
    assert refused_on_chain(harness, op) == (SIGNATURE_ERROR, b"")


def test_long_origins_are_matched_exactly(harness: Harness) -> None:
    origin = "https://a-rather-long-subdomain.accounts.portal.example.com:8443"
    passkey = SoftwarePasskey(origin=origin)
    account, _ = harness.deploy_account(passkey)
    assert harness.simulate_failure(signed_transfer(harness, account, passkey, value=0)) is None
    for other in (origin + "x", origin[:-1], origin.replace("8443", "8444")):
        op = signed_transfer(harness, account, passkey, origin=other)
        assert harness.simulate_failure(op) == OpFailure(reason=SIGNATURE_ERROR)


def test_refuses_an_escaped_origin(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    op = harness.sponsor(transfer_op(harness, account))
    assertion = passkey.assertion(harness.op_hash(op))
    assertion.client_data_json = assertion.client_data_json.replace(b"https://", b"https:\\/\\/")
    message = assertion.authenticator_data + hashlib.sha256(assertion.client_data_json).digest()
    assertion.signature_der = passkey.private_key.sign(message, ec.ECDSA(hashes.SHA256()))
    op = op.with_changes(signature=harness.encode(assertion).encoded)
    assert refused_on_chain(harness, op) == (SIGNATURE_ERROR, b"")


def _hashes_for_every_base64_boundary() -> list[bytes]:
    """Hashes whose base64url characters hit every range edge (0, 25, 26, 51, 52, 61, 62, 63) in
    every position, plus all-zero, all-one and random ones."""
    hashes = [b"\0" * 32, b"\xff" * 32] + [os.urandom(32) for _ in range(8)]
    for value in (0, 25, 26, 51, 52, 61, 62, 63):
        bits = format(value, "06b") * 43  # 258 bits: the 43 characters all equal to `value`
        hashes.append(int(bits[:256], 2).to_bytes(32, "big"))
    return hashes


def test_the_challenge_of_any_hash_is_checked_exactly(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    check = harness.validator.functions.isValidSignatureWithSender
    for digest in _hashes_for_every_base64_boundary():
        signature = harness.encode(passkey.assertion(digest))
        assert signature.compact_payload is not None
        for payload in (signature.compact_payload, signature.abi_payload):
            assert check(account, digest, payload).call({"from": account}) == bytes.fromhex(
                "1626ba7e"
            )
            # the same signature over any other hash (here: its last bit flipped, which only
            # changes the 43rd character) is refused
            other = digest[:31] + bytes([digest[31] ^ 1])
            assert check(account, other, payload).call({"from": account}) == bytes.fromhex(
                "ffffffff"
            )
