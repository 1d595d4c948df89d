"""The account's ERC-1271 with ERC-7739 nested typed data and ERC-6492, on anvil, checked by the
account itself and by viem (a verifier nobody here wrote)."""

import os
from typing import Any

import pytest
from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from chain import erc7739, userops
from chain.devtools import devnet
from chain.devtools.authenticator import SoftwarePasskey
from chain.devtools.devkit import Harness
from tests.chain.viem import hex0x, viem_verify

pytestmark = pytest.mark.chain

MAGIC = bytes.fromhex("1626ba7e")
FAILED = bytes.fromhex("ffffffff")

MAIL: dict[str, Any] = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Person": [
            {"name": "name", "type": "string"},
            {"name": "wallet", "type": "address"},
        ],
        "Mail": [
            {"name": "from", "type": "Person"},
            {"name": "to", "type": "Person"},
            {"name": "contents", "type": "string"},
            {"name": "amounts", "type": "uint256[]"},
        ],
    },
    "primaryType": "Mail",
    "domain": {
        "name": "Ether Mail",
        "version": "1",
        "chainId": 31337,
        "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
    },
    "message": {
        "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
        "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
        "contents": "Hello, Bob!",
        "amounts": [1, 2, 3],
    },
}


def with_domain(typed: dict[str, Any], **domain: Any) -> dict[str, Any]:
    return {**typed, "domain": {**typed["domain"], **domain}}


def signed(harness: Harness, passkey: SoftwarePasskey, nested: erc7739.NestedMessage) -> bytes:
    """The ERC-1271 signature of `nested` by `passkey` (its assertion over the nested digest)."""
    return nested.signature(harness.encode(passkey.assertion(nested.digest)).encoded)


def is_valid(harness: Harness, account: str, hash_: bytes, signature: bytes) -> bytes:
    return bytes(harness.account(account).functions.isValidSignature(hash_, signature).call())


def viem(anvil: devnet.Anvil, harness: Harness, *checks: dict[str, Any]) -> list[bool]:
    return viem_verify(rpc_url=anvil.url, chain_id=harness.chain_id, checks=list(checks))


@pytest.fixture
def account(harness: Harness, passkey: SoftwarePasskey) -> str:
    address, _ = harness.deploy_account(passkey)
    return address


@pytest.fixture
def other_account(harness: Harness, passkey: SoftwarePasskey) -> str:
    """Another account holding the very same passkey."""
    address, _ = harness.deploy_account(passkey)
    return address


def test_the_account_answers_the_erc7739_probe(harness: Harness, account: str) -> None:
    probe = erc7739.ERC7739_PROBE_HASH
    assert is_valid(harness, account, probe, b"") == erc7739.ERC7739_SUPPORTED
    assert is_valid(harness, account, b"\x01" * 32, b"") == FAILED
    assert is_valid(harness, account, probe, b"\x00") == FAILED


def test_the_python_hashes_are_the_accounts(harness: Harness, account: str) -> None:
    contract = harness.account(account)
    _, name, version, chain_id, verifying, salt, _ = contract.functions.eip712Domain().call()
    assert (name, version, chain_id, verifying, salt) == (
        erc7739.ACCOUNT_DOMAIN_NAME,
        erc7739.ACCOUNT_DOMAIN_VERSION,
        harness.chain_id,
        account,
        bytes(32),
    )
    assert contract.functions.domainSeparator().call() == erc7739.account_domain_separator(
        account=account, chain_id=harness.chain_id
    )
    message_hash = erc7739.eip191_hash(b"hello")
    assert contract.functions.replaySafeHash(message_hash).call() == (
        erc7739.personal_sign_digest(
            account=account, chain_id=harness.chain_id, message_hash=message_hash
        )
    )


def test_a_personal_message_is_valid_for_its_account_only(
    anvil: devnet.Anvil,
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    other_account: str,
) -> None:
    text = "Sign in to example.org"
    nested = erc7739.personal_message(
        account=account, chain_id=harness.chain_id, message=text.encode()
    )
    signature = signed(harness, passkey, nested)
    assert is_valid(harness, account, nested.hash, signature) == MAGIC
    assert is_valid(harness, other_account, nested.hash, signature) == FAILED
    # The passkey signing the dapp's hash itself (no nesting) is refused: off chain too.
    raw = harness.encode(passkey.assertion(nested.hash)).encoded
    assert is_valid(harness, account, nested.hash, raw) == FAILED
    sig = hex0x(signature)
    assert viem(
        anvil,
        harness,
        {"kind": "message", "address": account, "message": text, "signature": sig},
        {"kind": "message", "address": other_account, "message": text, "signature": sig},
        {"kind": "message", "address": account, "message": text + ".", "signature": sig},
        {"kind": "message", "address": account, "message": text, "signature": hex0x(raw)},
    ) == [True, False, False, False]


def test_raw_bytes_are_signed_as_personal_sign_signs_them(
    anvil: devnet.Anvil, harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    data = bytes(range(40))
    nested = erc7739.personal_message(account=account, chain_id=harness.chain_id, message=data)
    signature = hex0x(signed(harness, passkey, nested))
    assert viem(
        anvil,
        harness,
        {"kind": "message", "address": account, "raw": hex0x(data), "signature": signature},
        {"kind": "hash", "address": account, "hash": hex0x(nested.hash), "signature": signature},
    ) == [True, True]


def test_typed_data_is_valid_for_its_account_and_app_only(
    anvil: devnet.Anvil,
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    other_account: str,
) -> None:
    nested = erc7739.typed_message(account=account, chain_id=harness.chain_id, typed_data=MAIL)
    signature = signed(harness, passkey, nested)
    assert is_valid(harness, account, nested.hash, signature) == MAGIC
    assert is_valid(harness, other_account, nested.hash, signature) == FAILED
    other_app = with_domain(MAIL, name="Other Mail")
    other_hash = erc7739.typed_message(
        account=account, chain_id=harness.chain_id, typed_data=other_app
    ).hash
    # The same nested signature presented for another app's hash: PersonalSign mode, refused.
    assert is_valid(harness, account, other_hash, signature) == FAILED
    changed = {**MAIL, "message": {**MAIL["message"], "contents": "Hello, Eve!"}}
    sig = hex0x(signature)
    assert viem(
        anvil,
        harness,
        {"kind": "typed_data", "address": account, "typed_data": MAIL, "signature": sig},
        {"kind": "typed_data", "address": other_account, "typed_data": MAIL, "signature": sig},
        {"kind": "typed_data", "address": account, "typed_data": other_app, "signature": sig},
        {"kind": "typed_data", "address": account, "typed_data": changed, "signature": sig},
    ) == [True, False, False, False]


def test_the_trailer_must_describe_what_was_signed(
    harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    nested = erc7739.typed_message(account=account, chain_id=harness.chain_id, typed_data=MAIL)
    validator_signature = harness.encode(passkey.assertion(nested.digest)).encoded
    app_separator, contents = nested.trailer[:32], nested.trailer[32:64]
    description = nested.trailer[64:-2]

    def trailer(described: bytes) -> bytes:
        return app_separator + contents + described + len(described).to_bytes(2, "big")

    # Another contents type than the one signed.
    assert (
        is_valid(harness, account, nested.hash, validator_signature + trailer(b"Mail(string x)"))
        == FAILED
    )
    # A contents name ERC-7739 forbids is refused even when the passkey signed exactly it.
    for bad in (b"mail(string x)", b"(string x)", b"Ma,il(string x)", b"Ma il(string x)"):
        name = bad.split(b"(")[0].decode()
        typehash = keccak(f"TypedDataSign({name}{erc7739.TYPED_DATA_SIGN_REST}".encode() + bad)
        struct_hash = keccak(
            encode(
                ["bytes32", "bytes32", "bytes32", "bytes32", "uint256", "address", "bytes32"],
                [
                    typehash,
                    contents,
                    keccak(text=erc7739.ACCOUNT_DOMAIN_NAME),
                    keccak(text=erc7739.ACCOUNT_DOMAIN_VERSION),
                    harness.chain_id,
                    account,
                    bytes(32),
                ],
            )
        )
        digest = keccak(b"\x19\x01" + app_separator + struct_hash)
        forged = harness.encode(passkey.assertion(digest)).encoded + trailer(bad)
        assert is_valid(harness, account, nested.hash, forged) == FAILED, bad
    # Length bytes that claim more than there is: PersonalSign mode, refused.
    assert is_valid(harness, account, nested.hash, validator_signature + b"\xff\xff") == FAILED
    assert description.startswith(b"Mail(Person from,Person to,string contents,uint256[] amounts)")


def test_an_undeployed_account_signs_with_erc6492(
    anvil: devnet.Anvil, harness: Harness, passkey: SoftwarePasskey
) -> None:
    salt = os.urandom(32)
    init_data = harness.account_init_data(passkey)
    address = to_checksum_address(
        harness.factory.functions.predictAccountAddress(salt, init_data).call()
    )
    assert harness.w3.eth.get_code(address) == b""
    factory_calldata = userops.deploy_account_init_code(
        factory=harness.factory.address, salt=salt, init_data=init_data
    )[20:]
    text = "Sign in before the account exists"
    nested = erc7739.personal_message(
        account=address, chain_id=harness.chain_id, message=text.encode()
    )
    inner = signed(harness, passkey, nested)
    wrapped = erc7739.erc6492_wrap(
        factory=harness.factory.address, factory_calldata=factory_calldata, signature=inner
    )
    assert erc7739.is_erc6492(wrapped) and not erc7739.is_erc6492(inner)
    typed = erc7739.typed_message(account=address, chain_id=harness.chain_id, typed_data=MAIL)
    typed_wrapped = erc7739.erc6492_wrap(
        factory=harness.factory.address,
        factory_calldata=factory_calldata,
        signature=signed(harness, passkey, typed),
    )
    # Deploying another account (another salt) first does not make the signature valid.
    elsewhere = erc7739.erc6492_wrap(
        factory=harness.factory.address,
        factory_calldata=userops.deploy_account_init_code(
            factory=harness.factory.address, salt=os.urandom(32), init_data=init_data
        )[20:],
        signature=inner,
    )
    checks: list[dict[str, Any]] = [
        {"kind": "message", "address": address, "message": text, "signature": hex0x(wrapped)},
        {
            "kind": "typed_data",
            "address": address,
            "typed_data": MAIL,
            "signature": hex0x(typed_wrapped),
        },
        {"kind": "message", "address": address, "message": text, "signature": hex0x(inner)},
        {"kind": "message", "address": address, "message": text, "signature": hex0x(elsewhere)},
        {"kind": "message", "address": address, "message": "other", "signature": hex0x(wrapped)},
    ]
    assert viem(anvil, harness, *checks) == [True, True, False, False, False]
    # The verification deployed nothing.
    assert harness.w3.eth.get_code(address) == b""

    deployed, _ = harness.deploy_account(passkey, salt=salt)
    assert deployed == address
    # Once deployed, the wrapped signature still verifies (the account unwraps it itself), and
    # so does the plain one; a wrapper's factory call no longer matters (ERC-6492: the account
    # exists), only the passkey's signature does.
    assert is_valid(harness, address, nested.hash, wrapped) == MAGIC
    assert is_valid(harness, address, nested.hash, inner) == MAGIC
    assert is_valid(harness, address, nested.hash, elsewhere) == MAGIC
    assert viem(anvil, harness, *checks) == [True, True, True, True, False]


@pytest.mark.parametrize(
    "wrapper",
    [
        erc7739.ERC6492_SUFFIX,
        b"\x00" * 64 + erc7739.ERC6492_SUFFIX,
        b"\x00" * 64 + (2**255).to_bytes(32, "big") + erc7739.ERC6492_SUFFIX,
        b"\x00" * 64 + (64).to_bytes(32, "big") + erc7739.ERC6492_SUFFIX,
        b"\x00" * 64
        + (96).to_bytes(32, "big")
        + (2**200).to_bytes(32, "big")
        + erc7739.ERC6492_SUFFIX,
    ],
    ids=["suffix-only", "short", "offset-overflow", "offset-at-end", "length-overflow"],
)
def test_a_malformed_erc6492_wrapper_fails_without_reverting(
    harness: Harness, account: str, wrapper: bytes
) -> None:
    assert is_valid(harness, account, b"\x01" * 32, wrapper) == FAILED


def test_typed_data_of_a_type_that_is_not_the_root_of_types(
    anvil: devnet.Anvil, harness: Harness, passkey: SoftwarePasskey, account: str
) -> None:
    """viem signs any primaryType of `types` (others may be there too): so does the portal."""
    person = {**MAIL, "primaryType": "Person", "message": MAIL["message"]["from"]}
    nested = erc7739.typed_message(account=account, chain_id=harness.chain_id, typed_data=person)
    assert nested.trailer[64:-2] == b"Person(string name,address wallet)"
    signature = hex0x(signed(harness, passkey, nested))
    assert viem(
        anvil,
        harness,
        {"kind": "typed_data", "address": account, "typed_data": person, "signature": signature},
        {"kind": "typed_data", "address": account, "typed_data": MAIL, "signature": signature},
    ) == [True, False]


def test_the_domains_chain_id_may_be_written_as_a_string() -> None:
    account = "0x" + "12" * 20
    expected = erc7739.typed_message(account=account, chain_id=31337, typed_data=MAIL)
    for written in ("0x7a69", "31337"):
        nested = erc7739.typed_message(
            account=account, chain_id=31337, typed_data=with_domain(MAIL, chainId=written)
        )
        assert (nested.hash, nested.digest) == (expected.hash, expected.digest)
