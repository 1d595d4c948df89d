"""EOAKeyValidator on anvil: owners per account (install, add, remove, uninstall), user operations
and ERC-1271 signatures by an owner, and every refused signature or change."""

from typing import Any

import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_typing import Hash32
from eth_utils import to_checksum_address
from web3.contract import Contract

from chain import recovery_calls as rc
from chain import userops
from chain.client import contract
from chain.devtools.authenticator import SoftwarePasskey
from chain.devtools.devkit import Harness
from tests.chain.conftest import ORIGIN
from tests.chain.modules_support import error, fund, logs, op_revert, op_succeeds, transfer

pytestmark = pytest.mark.chain

RECIPIENT = "0x000000000000000000000000000000000000bEEF"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@pytest.fixture
def eoa_validator(harness: Harness) -> Contract:
    return contract(harness.w3, "EOAKeyValidator", harness.addresses["EOAKeyValidator"])


@pytest.fixture
def owner() -> LocalAccount:
    return Account.create()


@pytest.fixture
def account(harness: Harness, passkey: SoftwarePasskey) -> str:
    address, _ = harness.deploy_account(passkey)
    fund(harness, address)
    return address


def validator_call(eoa_validator: Contract, function: str, *args: Any) -> bytes:
    """User operation call data of the account calling the validator."""
    data = bytes.fromhex(eoa_validator.encode_abi(function, args=list(args))[2:])
    return userops.execute_call_data(target=eoa_validator.address, data=data)


def uninstall(harness: Harness, account: str, eoa_validator: Contract, owners: list[str]) -> bytes:
    data = harness.account(account).encode_abi(
        "uninstallModule", args=[1, eoa_validator.address, encode(["address[]"], [owners])]
    )
    return bytes.fromhex(data[2:])


def sign_op(
    harness: Harness, account: str, eoa_validator: Contract, signer: LocalAccount
) -> userops.PackedUserOperation:
    op = harness.sponsor(harness.build(account, transfer(RECIPIENT)))
    signature = bytes(signer.unsafe_sign_hash(Hash32(harness.op_hash(op))).signature)
    return op.with_changes(signature=bytes.fromhex(eoa_validator.address[2:]) + signature)


@pytest.fixture
def installed(
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    eoa_validator: Contract,
    owner: LocalAccount,
) -> str:
    """The account with the EOAKeyValidator installed and `owner` as its owner."""
    receipt = op_succeeds(
        harness,
        account,
        passkey,
        rc.install_eoa_validator(validator=eoa_validator.address, owners=[owner.address]),
    )
    assert logs(eoa_validator, "OwnerAdded", receipt) == [
        {"smartAccount": account, "owner": owner.address}
    ]
    return account


def test_module_identity(eoa_validator: Contract, account: str) -> None:
    assert [eoa_validator.functions.isModuleType(t).call() for t in range(4)] == [
        False,
        True,
        False,
        False,
    ]
    for interface, expected in [
        ("0x01ffc9a7", True),  # IERC165
        ("0xdd2b238d", True),  # IModule
        ("0x6251d0ed", True),  # IValidator
        ("0x00000000", False),
    ]:
        assert eoa_validator.functions.supportsInterface(interface).call() is expected, interface
    assert eoa_validator.functions.isInitialized(account).call() is False


def test_owners_are_installed_added_and_removed(
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    eoa_validator: Contract,
) -> None:
    first, second, third = (Account.create().address for _ in range(3))
    receipt = op_succeeds(
        harness,
        account,
        passkey,
        rc.install_eoa_validator(validator=eoa_validator.address, owners=[first, second]),
    )
    assert logs(eoa_validator, "OwnerAdded", receipt) == [
        {"smartAccount": account, "owner": first},
        {"smartAccount": account, "owner": second},
    ]
    assert eoa_validator.functions.isInitialized(account).call() is True
    is_owner = eoa_validator.functions.isOwnerOf
    assert is_owner(account, first).call() and is_owner(account, second).call()
    assert not is_owner(account, third).call()

    receipt = op_succeeds(
        harness, account, passkey, validator_call(eoa_validator, "addOwner", third)
    )
    assert logs(eoa_validator, "OwnerAdded", receipt) == [{"smartAccount": account, "owner": third}]
    receipt = op_succeeds(
        harness, account, passkey, validator_call(eoa_validator, "removeOwner", first)
    )
    assert logs(eoa_validator, "OwnerRemoved", receipt) == [
        {"smartAccount": account, "owner": first}
    ]
    assert not is_owner(account, first).call()

    # Owners are per account: another account's owner list is untouched.
    other, _ = harness.deploy_account(SoftwarePasskey(origin=ORIGIN))
    assert not is_owner(other, second).call()

    receipt = op_succeeds(
        harness, account, passkey, uninstall(harness, account, eoa_validator, [second, third])
    )
    assert logs(eoa_validator, "OwnerRemoved", receipt) == [
        {"smartAccount": account, "owner": second},
        {"smartAccount": account, "owner": third},
    ]
    assert eoa_validator.functions.isInitialized(account).call() is False


def test_owner_changes_that_are_refused(
    harness: Harness,
    passkey: SoftwarePasskey,
    installed: str,
    eoa_validator: Contract,
    owner: LocalAccount,
) -> None:
    account = installed
    zero = "0x" + "00" * 20
    stranger = Account.create().address
    for call, expected in [
        (
            validator_call(eoa_validator, "addOwner", zero),
            error("ZeroAddress(address)", account),
        ),
        (
            validator_call(eoa_validator, "addOwner", owner.address),
            error("OwnerAlreadyExists(address,address)", account, owner.address),
        ),
        (
            validator_call(eoa_validator, "removeOwner", stranger),
            error("OwnerDoesNotExist(address,address)", account, stranger),
        ),
        (
            uninstall(harness, account, eoa_validator, [stranger]),
            error("OwnerDoesNotExist(address,address)", account, stranger),
        ),
    ]:
        assert op_revert(harness, account, passkey, call) == expected
    assert eoa_validator.functions.isOwnerOf(account, owner.address).call() is True


def test_installing_with_a_duplicate_owner_or_adding_without_the_module_is_refused(
    harness: Harness, passkey: SoftwarePasskey, account: str, eoa_validator: Contract
) -> None:
    duplicate = Account.create().address
    install = rc.install_eoa_validator(
        validator=eoa_validator.address, owners=[duplicate, duplicate]
    )
    assert op_revert(harness, account, passkey, install) == error(
        "OwnerAlreadyExists(address,address)", account, duplicate
    )
    assert eoa_validator.functions.isInitialized(account).call() is False
    add = validator_call(eoa_validator, "addOwner", duplicate)
    assert op_revert(harness, account, passkey, add) == error("NotInitialized(address)", account)
    assert eoa_validator.functions.isOwnerOf(account, duplicate).call() is False


def test_an_owner_signs_user_operations(
    harness: Harness, installed: str, eoa_validator: Contract, owner: LocalAccount
) -> None:
    op = sign_op(harness, installed, eoa_validator, owner)
    assert harness.simulate_failure(op) is None
    harness.submit(op)
    assert harness.w3.eth.get_balance(to_checksum_address(RECIPIENT)) == 1


def test_signatures_that_are_refused(
    harness: Harness, installed: str, eoa_validator: Contract, owner: LocalAccount
) -> None:
    op = harness.sponsor(harness.build(installed, transfer(RECIPIENT)))
    digest = harness.op_hash(op)
    signed = owner.unsafe_sign_hash(Hash32(digest))
    r, s, v = signed.r.to_bytes(32, "big"), signed.s, signed.v
    high_s = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # same key, malleated
    compact = r + ((v - 27) << 255 | s).to_bytes(32, "big")  # EIP-2098, 64 bytes
    prefixed = bytes(
        owner.sign_message(encode_defunct(primitive=digest)).signature
    )  # EIP-191, not raw
    not_owner = bytes(Account.create().unsafe_sign_hash(Hash32(digest)).signature)
    v_zero = bytes(signed.signature)[:64] + bytes([v - 27])
    for name, signature in [
        ("high s", high_s),
        ("64-byte compact", compact),
        ("EIP-191 prefixed", prefixed),
        ("not an owner", not_owner),
        ("v of 0/1", v_zero),
        ("empty", b""),
    ]:
        forged = op.with_changes(signature=bytes.fromhex(eoa_validator.address[2:]) + signature)
        failure = harness.simulate_failure(forged)
        assert failure is not None and failure.reason.startswith("AA24"), name

    # An owner of one account does not sign for another that installed the validator too.
    other_passkey = SoftwarePasskey(origin=ORIGIN)
    other, _ = harness.deploy_account(other_passkey)
    fund(harness, other)
    op_succeeds(
        harness,
        other,
        other_passkey,
        rc.install_eoa_validator(validator=eoa_validator.address, owners=[]),
    )
    failure = harness.simulate_failure(sign_op(harness, other, eoa_validator, owner))
    assert failure is not None
    assert failure.reason.startswith("AA24"), failure.reason


def test_erc1271_signatures_of_an_owner(
    harness: Harness, installed: str, eoa_validator: Contract, owner: LocalAccount
) -> None:
    account = harness.account(installed)
    message_hash = b"\x42" * 32
    digest = account.functions.replaySafeHash(message_hash).call()
    prefix = bytes.fromhex(eoa_validator.address[2:])
    good = prefix + bytes(owner.unsafe_sign_hash(Hash32(digest)).signature)
    assert account.functions.isValidSignature(message_hash, good).call() == bytes.fromhex(
        "1626ba7e"
    )
    # Signing the raw hash instead of the account-bound digest, or by someone else, fails.
    for bad in (
        prefix + bytes(owner.unsafe_sign_hash(Hash32(message_hash)).signature),
        prefix + bytes(Account.create().unsafe_sign_hash(Hash32(digest)).signature),
    ):
        assert account.functions.isValidSignature(message_hash, bad).call() == b"\xff" * 4
