"""GuardianExecutor on anvil: guardians proposed by the account and accepted by an EOA or by a
portal smart account (passkey-signed), recovery started by an active guardian, finalized by anyone
strictly between 24 h and 72 h later, discarded by the account; every refusal and every event."""

from typing import Any

import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from web3.contract import Contract

from chain import recovery_calls as rc
from chain.client import Sender, account_from_key, contract
from chain.devtools.authenticator import SoftwarePasskey
from chain.devtools.devkit import ANVIL_KEYS, Harness
from tests.chain.conftest import ORIGIN
from tests.chain.modules_support import (
    call_revert,
    error,
    fund,
    logs,
    op_revert,
    op_succeeds,
    set_next_timestamp,
    transfer,
)

pytestmark = pytest.mark.chain

DAY = 24 * 60 * 60
RECIPIENT = "0x000000000000000000000000000000000000bEEF"


@pytest.fixture
def executor(harness: Harness) -> Contract:
    return contract(harness.w3, "GuardianExecutor", harness.addresses["GuardianExecutor"])


@pytest.fixture
def eoa_validator(harness: Harness) -> Contract:
    return contract(harness.w3, "EOAKeyValidator", harness.addresses["EOAKeyValidator"])


@pytest.fixture
def eoa_guardian(harness: Harness) -> Sender:
    """An EOA guardian (a hardware wallet, a friend's wallet)."""
    return Sender(w3=harness.w3, account=account_from_key(ANVIL_KEYS[3]))


@pytest.fixture
def stranger(harness: Harness) -> Sender:
    """Anyone: the portal's relayer key, which is no guardian."""
    return harness.sender


def deploy_with_executor(harness: Harness, passkey: SoftwarePasskey, executor: Contract) -> str:
    """A passkey account that installs the executor through a passkey-signed operation."""
    address, _ = harness.deploy_account(passkey)
    fund(harness, address)
    receipt = op_succeeds(
        harness, address, passkey, rc.install_guardian_executor(executor=executor.address)
    )
    installed = logs(harness.account(address), "ModuleInstalled", receipt)
    assert installed == [{"moduleTypeId": 2, "module": executor.address}]
    return address


@pytest.fixture
def account(harness: Harness, passkey: SoftwarePasskey, executor: Contract) -> str:
    return deploy_with_executor(harness, passkey, executor)


def as_account(executor: Contract, data: bytes) -> bytes:
    return rc.account_call(executor=executor.address, data=data)


def propose(
    harness: Harness, account: str, passkey: SoftwarePasskey, executor: Contract, guardian: str
) -> Any:
    return op_succeeds(
        harness, account, passkey, as_account(executor, rc.propose_guardian(guardian=guardian))
    )


def send(sender: Sender, executor: Contract, data: bytes, **options: Any) -> Any:
    """A transaction to the executor. The gas is fixed: an estimate would run in a block of the
    current time, not at the timestamp set for the next block."""
    options.setdefault("gas", 1_000_000)
    return sender.send(to=executor.address, data=data, **options)


@pytest.fixture
def active_guardian(
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    executor: Contract,
    eoa_guardian: Sender,
) -> Sender:
    propose(harness, account, passkey, executor, eoa_guardian.address)
    send(eoa_guardian, executor, rc.accept_guardian(account=account))
    return eoa_guardian


def start_recovery(
    executor: Contract, guardian: Sender, account: str, kind: rc.RecoveryType, data: bytes
) -> tuple[Any, int]:
    """initializeRecovery from an EOA guardian: (receipt, the request's timestamp)."""
    receipt = send(
        guardian,
        executor,
        rc.initialize_recovery(account=account, recovery_type=kind, data=data),
    )
    started = int(guardian.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    return receipt, started


def account_self_call(harness: Harness, account: str, function: str, *args: Any) -> bytes:
    """User operation call data calling one of the account's own functions directly."""
    return bytes.fromhex(harness.account(account).encode_abi(function, args=list(args))[2:])


def as_request(request: Any) -> tuple[int, bytes, int]:
    """The RecoveryRequest struct of an event as (recoveryType, hashedData, timestamp)."""
    return (request["recoveryType"], request["hashedData"], request["timestamp"])


def new_passkey_data(new_passkey: SoftwarePasskey) -> bytes:
    return rc.passkey_recovery_data(
        credential_id=new_passkey.credential_id,
        public_key=new_passkey.public_key,
        origin=new_passkey.origin,
    )


# --------------------------------------------------------------------------- the module itself


def test_module_identity_and_constants(
    harness: Harness, executor: Contract, account: str, passkey: SoftwarePasskey
) -> None:
    assert [executor.functions.isModuleType(t).call() for t in range(4)] == [
        False,
        False,
        True,
        False,
    ]
    for interface, expected in [
        ("0x01ffc9a7", True),  # IERC165
        ("0xdd2b238d", True),  # IModule
        ("0x00000000", True),  # IExecutor declares no function of its own
        ("0x6251d0ed", False),  # IValidator
        ("0xffffffff", False),
    ]:
        assert executor.functions.supportsInterface(interface).call() is expected, interface
    assert executor.functions.REQUEST_DELAY_TIME().call() == 86_400 == rc.REQUEST_DELAY_SECONDS
    assert executor.functions.REQUEST_VALIDITY_TIME().call() == 259_200
    assert rc.REQUEST_VALIDITY_SECONDS == 259_200
    assert executor.functions.WEBAUTHN_VALIDATOR().call() == harness.validator.address
    assert executor.functions.EOA_VALIDATOR().call() == harness.addresses["EOAKeyValidator"]
    assert executor.functions.isInitialized(account).call() is True
    other, _ = harness.deploy_account(SoftwarePasskey(origin=ORIGIN))
    assert executor.functions.isInitialized(other).call() is False
    assert executor.functions.guardiansFor(account).call() == []
    assert executor.functions.pendingRecovery(account).call() == [0, b"\0" * 32, 0]


# --------------------------------------------------------------------------- guardians


def test_an_eoa_guardian_is_proposed_accepted_and_removed(
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    executor: Contract,
    eoa_guardian: Sender,
) -> None:
    g = eoa_guardian.address
    receipt = propose(harness, account, passkey, executor, g)
    assert logs(executor, "GuardianProposed", receipt) == [{"account": account, "guardian": g}]
    assert executor.functions.guardianStatusFor(account, g).call() == [True, False]
    assert executor.functions.guardiansFor(account).call() == [g]

    accept = rc.accept_guardian(account=account)
    assert executor.functions.acceptGuardian(account).call({"from": g}) is True
    receipt = send(eoa_guardian, executor, accept)
    assert logs(executor, "GuardianAdded", receipt) == [{"account": account, "guardian": g}]
    assert executor.functions.guardianStatusFor(account, g).call() == [True, True]

    # Accepting again changes nothing: false, no event.
    assert executor.functions.acceptGuardian(account).call({"from": g}) is False
    receipt = send(eoa_guardian, executor, accept)
    assert receipt["logs"] == []

    receipt = op_succeeds(
        harness, account, passkey, as_account(executor, rc.remove_guardian(guardian=g))
    )
    assert logs(executor, "GuardianRemoved", receipt) == [{"account": account, "guardian": g}]
    assert logs(executor, "RecoveryDiscarded", receipt) == []  # nothing was pending
    assert executor.functions.guardianStatusFor(account, g).call() == [False, False]
    assert executor.functions.guardiansFor(account).call() == []
    # A removed guardian can no longer accept.
    assert call_revert(harness, sender=g, to=executor.address, data=accept) == error(
        "GuardianNotFound(address,address)", account, g
    )


def test_proposing_refusals(
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    executor: Contract,
    eoa_guardian: Sender,
) -> None:
    zero = "0x" + "00" * 20
    for candidate, expected in [
        (zero, error("GuardianInvalidAddress(address)", zero)),
        (account, error("GuardianInvalidAddress(address)", account)),
    ]:
        data = as_account(executor, rc.propose_guardian(guardian=candidate))
        assert op_revert(harness, account, passkey, data) == expected

    g = eoa_guardian.address
    propose(harness, account, passkey, executor, g)
    twice = as_account(executor, rc.propose_guardian(guardian=g))
    already = error("GuardianAlreadyPresent(address,address)", account, g)
    assert op_revert(harness, account, passkey, twice) == already
    send(eoa_guardian, executor, rc.accept_guardian(account=account))
    assert op_revert(harness, account, passkey, twice) == already  # active: still present
    assert executor.functions.guardianStatusFor(account, g).call() == [True, True]


def test_an_account_without_the_executor_cannot_manage_or_be_guarded(
    harness: Harness, executor: Contract, eoa_guardian: Sender
) -> None:
    passkey = SoftwarePasskey(origin=ORIGIN)
    bare, _ = harness.deploy_account(passkey)
    fund(harness, bare)
    g = eoa_guardian.address
    not_initialized = error("NotInitialized(address)", bare)
    for data in (rc.propose_guardian(guardian=g), rc.remove_guardian(guardian=g)):
        assert op_revert(harness, bare, passkey, as_account(executor, data)) == not_initialized
    assert (
        call_revert(harness, sender=g, to=executor.address, data=rc.accept_guardian(account=bare))
        == not_initialized
    )
    # Discarding never reverts, even with nothing to discard.
    receipt = op_succeeds(harness, bare, passkey, as_account(executor, rc.discard_recovery()))
    assert logs(executor, "RecoveryDiscarded", receipt) == []


def test_removing_or_accepting_someone_who_was_never_proposed_is_refused(
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    executor: Contract,
    eoa_guardian: Sender,
) -> None:
    g = eoa_guardian.address
    data = as_account(executor, rc.remove_guardian(guardian=g))
    assert op_revert(harness, account, passkey, data) == error(
        "GuardianNotFound(address,address)", account, g
    )
    assert call_revert(
        harness, sender=g, to=executor.address, data=rc.accept_guardian(account=account)
    ) == error("GuardianNotFound(address,address)", account, g)


def test_a_portal_account_is_a_guardian_through_passkey_signed_operations(
    harness: Harness, passkey: SoftwarePasskey, account: str, executor: Contract
) -> None:
    """Bob's smart account guards Alice's: Bob accepts and starts the recovery with his passkey."""
    bob_passkey = SoftwarePasskey(origin=ORIGIN)
    bob, _ = harness.deploy_account(bob_passkey)  # Bob's account needs no executor of its own
    fund(harness, bob)
    propose(harness, account, passkey, executor, bob)
    assert executor.functions.guardianStatusFor(account, bob).call() == [True, False]

    receipt = op_succeeds(
        harness, bob, bob_passkey, as_account(executor, rc.accept_guardian(account=account))
    )
    assert logs(executor, "GuardianAdded", receipt) == [{"account": account, "guardian": bob}]
    assert executor.functions.guardianStatusFor(account, bob).call() == [True, True]

    data = new_passkey_data(SoftwarePasskey(origin=ORIGIN))
    start = rc.initialize_recovery(
        account=account, recovery_type=rc.RecoveryType.PASSKEY, data=data
    )
    receipt = op_succeeds(harness, bob, bob_passkey, as_account(executor, start))
    started = int(harness.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    [event] = logs(executor, "RecoveryInitiated", receipt)
    assert event["account"] == account and event["guardian"] == bob
    assert as_request(event["request"]) == (2, keccak(data), started)
    assert event["recoveryData"] == data


# --------------------------------------------------------------------------- starting a recovery


def test_starting_a_recovery_is_for_active_guardians_only(
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    executor: Contract,
    eoa_guardian: Sender,
    stranger: Sender,
) -> None:
    data = new_passkey_data(SoftwarePasskey(origin=ORIGIN))
    start = rc.initialize_recovery(
        account=account, recovery_type=rc.RecoveryType.PASSKEY, data=data
    )
    g = eoa_guardian.address
    assert call_revert(harness, sender=stranger.address, to=executor.address, data=start) == error(
        "GuardianNotFound(address,address)", account, stranger.address
    )
    propose(harness, account, passkey, executor, g)
    assert call_revert(harness, sender=g, to=executor.address, data=start) == error(
        "GuardianNotActive(address,address)", account, g
    )
    assert executor.functions.pendingRecovery(account).call()[2] == 0


def test_starting_a_recovery_refusals(
    harness: Harness,
    account: str,
    executor: Contract,
    eoa_validator: Contract,
    active_guardian: Sender,
) -> None:
    g = active_guardian.address
    data = new_passkey_data(SoftwarePasskey(origin=ORIGIN))

    def refused(kind: int, payload: bytes) -> bytes:
        call = rc.INITIALIZE_RECOVERY + encode(
            ["address", "uint8", "bytes"], [account, kind, payload]
        )
        return call_revert(harness, sender=g, to=executor.address, data=call)

    assert refused(0, data) == error("UnsupportedRecoveryType(uint8)", 0)
    # EOA recovery needs the EOAKeyValidator, which this account has not installed.
    owner = rc.eoa_recovery_data(owner=Account.create().address)
    assert refused(1, owner) == error(
        "ValidatorNotInstalled(address,address)", account, eoa_validator.address
    )
    assert refused(2, b"") == error("EmptyRecoveryData()")
    assert refused(3, data) == b""  # not a RecoveryType: the ABI decoder refuses it
    assert executor.functions.pendingRecovery(account).call()[2] == 0


def test_one_live_recovery_at_a_time_until_it_expires_after_72_hours(
    harness: Harness,
    account: str,
    executor: Contract,
    active_guardian: Sender,
) -> None:
    first = new_passkey_data(SoftwarePasskey(origin=ORIGIN))
    second = new_passkey_data(SoftwarePasskey(origin=ORIGIN))
    _, started = start_recovery(executor, active_guardian, account, rc.RecoveryType.PASSKEY, first)
    again = rc.initialize_recovery(
        account=account, recovery_type=rc.RecoveryType.PASSKEY, data=second
    )
    in_progress = error("RecoveryInProgress(address)", account)
    g = active_guardian.address
    assert call_revert(harness, sender=g, to=executor.address, data=again) == in_progress
    # Still live at exactly 72 h (a real transaction in a block at that second fails too).
    at_72h = started + 3 * DAY
    assert (
        call_revert(harness, sender=g, to=executor.address, data=again, timestamp=at_72h)
        == in_progress
    )
    set_next_timestamp(harness, at_72h)
    assert send(active_guardian, executor, again, check=False)["status"] == 0

    # One second later the old request is expired: a new one replaces it.
    set_next_timestamp(harness, at_72h + 1)
    receipt = send(active_guardian, executor, again)
    [event] = logs(executor, "RecoveryInitiated", receipt)
    assert as_request(event["request"]) == (2, keccak(second), at_72h + 1)
    assert executor.functions.pendingRecovery(account).call() == [2, keccak(second), at_72h + 1]


# --------------------------------------------------------------------------- finalizing


def test_passkey_recovery_adds_a_key_that_signs_after_24_hours(
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    executor: Contract,
    active_guardian: Sender,
    stranger: Sender,
) -> None:
    new_passkey = SoftwarePasskey(origin=ORIGIN)
    data = new_passkey_data(new_passkey)
    receipt, started = start_recovery(
        executor, active_guardian, account, rc.RecoveryType.PASSKEY, data
    )
    [event] = logs(executor, "RecoveryInitiated", receipt)
    assert event["account"] == account and event["guardian"] == active_guardian.address
    assert as_request(event["request"]) == (2, keccak(data), started)
    assert event["recoveryData"] == data
    assert executor.functions.pendingRecovery(account).call() == [2, keccak(data), started]

    # Before finalization the new passkey cannot sign for the account.
    op, _ = harness.sign(harness.sponsor(harness.build(account, transfer(RECIPIENT))), new_passkey)
    failure = harness.simulate_failure(op)
    assert failure is not None and failure.reason.startswith("AA24")

    finalize = rc.finalize_recovery(account=account, data=data)
    too_early = error("RecoveryTimestampInvalid(uint48)", started)
    s = stranger.address
    assert call_revert(harness, sender=s, to=executor.address, data=finalize) == too_early
    # Exactly 24 h is still too early, as a real transaction in a block at that second.
    assert (
        call_revert(harness, sender=s, to=executor.address, data=finalize, timestamp=started + DAY)
        == too_early
    )
    set_next_timestamp(harness, started + DAY)
    assert send(stranger, executor, finalize, check=False)["status"] == 0

    # Other data than the request's is refused.
    other = new_passkey_data(SoftwarePasskey(origin=ORIGIN))
    assert call_revert(
        harness,
        sender=s,
        to=executor.address,
        data=rc.finalize_recovery(account=account, data=other),
        timestamp=started + DAY + 1,
    ) == error("RecoveryDataMismatch(bytes32,bytes32)", keccak(data), keccak(other))

    # One second after 24 h anyone (here the relayer) finalizes it.
    set_next_timestamp(harness, started + DAY + 1)
    receipt = send(stranger, executor, finalize)
    assert logs(executor, "RecoveryFinished", receipt) == [{"account": account}]
    assert logs(harness.validator, "PasskeyCreated", receipt) == [
        {"keyOwner": account, "domain": ORIGIN, "credentialId": new_passkey.credential_id}
    ]
    assert executor.functions.pendingRecovery(account).call() == [0, b"\0" * 32, 0]
    key = harness.validator.functions.getAccountKey(
        ORIGIN, new_passkey.credential_id, account
    ).call()
    assert [int.from_bytes(k, "big") for k in key] == list(new_passkey.public_key)

    # The new passkey signs a user operation; the old one still works (recovery only adds).
    op_succeeds(harness, account, new_passkey, transfer(RECIPIENT))
    op_succeeds(harness, account, passkey, transfer(RECIPIENT))
    assert harness.w3.eth.get_balance(to_checksum_address(RECIPIENT)) == 2

    # Finalizing twice: nothing is pending any more.
    assert call_revert(harness, sender=s, to=executor.address, data=finalize) == error(
        "UnsupportedRecoveryType(uint8)", 0
    )


def test_a_recovery_not_finalized_within_72_hours_expires(
    harness: Harness,
    account: str,
    executor: Contract,
    active_guardian: Sender,
    stranger: Sender,
) -> None:
    data = new_passkey_data(SoftwarePasskey(origin=ORIGIN))
    _, started = start_recovery(executor, active_guardian, account, rc.RecoveryType.PASSKEY, data)
    finalize = rc.finalize_recovery(account=account, data=data)
    too_late = error("RecoveryTimestampInvalid(uint48)", started)
    s = stranger.address
    for moment in (started + 3 * DAY, started + 3 * DAY + 1, started + 10 * DAY):
        assert (
            call_revert(harness, sender=s, to=executor.address, data=finalize, timestamp=moment)
            == too_late
        ), moment
    set_next_timestamp(harness, started + 3 * DAY)
    assert send(stranger, executor, finalize, check=False)["status"] == 0
    assert executor.functions.pendingRecovery(account).call()[2] == started


def test_finalizing_just_before_72_hours_still_succeeds(
    harness: Harness,
    account: str,
    executor: Contract,
    active_guardian: Sender,
    stranger: Sender,
) -> None:
    data = new_passkey_data(SoftwarePasskey(origin=ORIGIN))
    _, started = start_recovery(executor, active_guardian, account, rc.RecoveryType.PASSKEY, data)
    set_next_timestamp(harness, started + 3 * DAY - 1)
    receipt = send(stranger, executor, rc.finalize_recovery(account=account, data=data))
    assert logs(executor, "RecoveryFinished", receipt) == [{"account": account}]


def test_eoa_owner_recovery(
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    executor: Contract,
    eoa_validator: Contract,
    active_guardian: Sender,
    stranger: Sender,
) -> None:
    op_succeeds(
        harness, account, passkey, rc.install_eoa_validator(validator=eoa_validator.address)
    )
    new_owner = Account.create()
    data = rc.eoa_recovery_data(owner=new_owner.address)
    receipt, started = start_recovery(executor, active_guardian, account, rc.RecoveryType.EOA, data)
    [event] = logs(executor, "RecoveryInitiated", receipt)
    assert as_request(event["request"]) == (1, keccak(data), started)

    def owner_op() -> Any:
        op = harness.sponsor(harness.build(account, transfer(RECIPIENT)))
        signature = new_owner.unsafe_sign_hash(harness.op_hash(op)).signature
        return op.with_changes(signature=bytes.fromhex(eoa_validator.address[2:]) + signature)

    failure = harness.simulate_failure(owner_op())
    assert failure is not None and failure.reason.startswith("AA24")

    set_next_timestamp(harness, started + DAY + 1)
    receipt = send(stranger, executor, rc.finalize_recovery(account=account, data=data))
    assert logs(executor, "RecoveryFinished", receipt) == [{"account": account}]
    assert logs(eoa_validator, "OwnerAdded", receipt) == [
        {"smartAccount": account, "owner": new_owner.address}
    ]
    assert eoa_validator.functions.isOwnerOf(account, new_owner.address).call() is True

    op = owner_op()
    assert harness.simulate_failure(op) is None
    harness.submit(op)
    assert harness.w3.eth.get_balance(to_checksum_address(RECIPIENT)) == 1


def test_finalizing_needs_the_validator_still_installed(
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    executor: Contract,
    eoa_validator: Contract,
    active_guardian: Sender,
    stranger: Sender,
) -> None:
    op_succeeds(
        harness, account, passkey, rc.install_eoa_validator(validator=eoa_validator.address)
    )
    data = rc.eoa_recovery_data(owner=Account.create().address)
    _, started = start_recovery(executor, active_guardian, account, rc.RecoveryType.EOA, data)
    op_succeeds(
        harness,
        account,
        passkey,
        account_self_call(
            harness,
            account,
            "uninstallModule",
            1,
            eoa_validator.address,
            encode(["address[]"], [[]]),
        ),
    )
    assert call_revert(
        harness,
        sender=stranger.address,
        to=executor.address,
        data=rc.finalize_recovery(account=account, data=data),
        timestamp=started + DAY + 1,
    ) == error("ValidatorNotInstalled(address,address)", account, eoa_validator.address)


# --------------------------------------------------------------------------- stopping a recovery


def test_the_account_discards_a_pending_recovery(
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    executor: Contract,
    active_guardian: Sender,
    stranger: Sender,
) -> None:
    data = new_passkey_data(SoftwarePasskey(origin=ORIGIN))
    _, started = start_recovery(executor, active_guardian, account, rc.RecoveryType.PASSKEY, data)
    discard = as_account(executor, rc.discard_recovery())
    receipt = op_succeeds(harness, account, passkey, discard)
    assert logs(executor, "RecoveryDiscarded", receipt) == [{"account": account}]
    assert executor.functions.pendingRecovery(account).call() == [0, b"\0" * 32, 0]
    assert call_revert(
        harness,
        sender=stranger.address,
        to=executor.address,
        data=rc.finalize_recovery(account=account, data=data),
        timestamp=started + DAY + 1,
    ) == error("UnsupportedRecoveryType(uint8)", 0)
    # Discarding again is a no-op without an event; the guardian may start a new one at once.
    receipt = op_succeeds(harness, account, passkey, discard)
    assert logs(executor, "RecoveryDiscarded", receipt) == []
    start_recovery(executor, active_guardian, account, rc.RecoveryType.PASSKEY, data)


def test_removing_an_active_guardian_discards_the_pending_recovery(
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    executor: Contract,
    active_guardian: Sender,
) -> None:
    data = new_passkey_data(SoftwarePasskey(origin=ORIGIN))
    start_recovery(executor, active_guardian, account, rc.RecoveryType.PASSKEY, data)
    # Removing a guardian that is only proposed leaves the recovery alone.
    proposed = Account.create().address
    propose(harness, account, passkey, executor, proposed)
    receipt = op_succeeds(
        harness, account, passkey, as_account(executor, rc.remove_guardian(guardian=proposed))
    )
    assert logs(executor, "RecoveryDiscarded", receipt) == []
    assert executor.functions.pendingRecovery(account).call()[0] == 2

    g = active_guardian.address
    receipt = op_succeeds(
        harness, account, passkey, as_account(executor, rc.remove_guardian(guardian=g))
    )
    assert logs(executor, "RecoveryDiscarded", receipt) == [{"account": account}]
    assert logs(executor, "GuardianRemoved", receipt) == [{"account": account, "guardian": g}]
    assert executor.functions.pendingRecovery(account).call() == [0, b"\0" * 32, 0]


def test_uninstalling_the_executor_forgets_guardians_and_the_recovery(
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    executor: Contract,
    active_guardian: Sender,
) -> None:
    propose(harness, account, passkey, executor, Account.create().address)
    data = new_passkey_data(SoftwarePasskey(origin=ORIGIN))
    start_recovery(executor, active_guardian, account, rc.RecoveryType.PASSKEY, data)
    receipt = op_succeeds(
        harness,
        account,
        passkey,
        account_self_call(harness, account, "uninstallModule", 2, executor.address, b""),
    )
    assert logs(executor, "RecoveryDiscarded", receipt) == [{"account": account}]
    assert logs(executor, "GuardianRemoved", receipt) == []
    assert executor.functions.guardiansFor(account).call() == []
    assert executor.functions.pendingRecovery(account).call()[2] == 0
    assert executor.functions.isInitialized(account).call() is False


# --------------------------------------------------------------------------- by signature


def sign_typed(key: Any, typed_data: dict[str, Any]) -> bytes:
    message = encode_typed_data(
        domain_data=typed_data["domain"],
        message_types=typed_data["types"],
        message_data=typed_data["message"],
    )
    return bytes(key.sign_message(message).signature)


def test_a_key_with_no_eth_accepts_and_starts_a_recovery_by_signature(
    harness: Harness,
    passkey: SoftwarePasskey,
    account: str,
    executor: Contract,
    stranger: Sender,
) -> None:
    key = Account.create()
    g = key.address
    chain_id = harness.w3.eth.chain_id
    deadline = harness.w3.eth.get_block("latest")["timestamp"] + 3600
    assert harness.w3.eth.get_balance(g) == 0
    propose(harness, account, passkey, executor, g)
    accept_typed = rc.accept_guardian_typed_data(
        executor=executor.address,
        chain_id=chain_id,
        account=account,
        guardian=g,
        nonce=0,
        deadline=deadline,
    )
    accept_signature = sign_typed(key, accept_typed)
    assert rc.typed_data_signer(accept_typed, accept_signature) == g
    accept = rc.accept_guardian_with_signature(
        account=account, guardian=g, deadline=deadline, signature=accept_signature
    )
    receipt = send(stranger, executor, accept)
    assert logs(executor, "GuardianAdded", receipt) == [{"account": account, "guardian": g}]
    assert executor.functions.guardianNonces(g).call() == 1
    # The same signature is spent: its nonce is no longer the next one.
    assert call_revert(harness, sender=stranger.address, to=executor.address, data=accept) == (
        error("InvalidGuardianSignature(address)", g)
    )

    data = new_passkey_data(SoftwarePasskey(origin=ORIGIN))

    def start_typed(nonce: int, when: int) -> dict[str, Any]:
        return rc.initialize_recovery_typed_data(
            executor=executor.address,
            chain_id=chain_id,
            account=account,
            guardian=g,
            recovery_type=rc.RecoveryType.PASSKEY,
            data=data,
            nonce=nonce,
            deadline=when,
        )

    def start(signature: bytes, when: int, payload: bytes = data) -> bytes:
        return rc.initialize_recovery_with_signature(
            account=account,
            recovery_type=rc.RecoveryType.PASSKEY,
            data=payload,
            guardian=g,
            deadline=when,
            signature=signature,
        )

    good = sign_typed(key, start_typed(1, deadline))
    stranger_signature = sign_typed(Account.create(), start_typed(1, deadline))
    for refused in (
        start(stranger_signature, deadline),  # another key
        start(good, deadline + 1),  # another deadline than signed
        start(good, deadline, new_passkey_data(SoftwarePasskey(origin=ORIGIN))),  # other data
        start(sign_typed(key, start_typed(0, deadline)), deadline),  # a spent nonce
        start(good[:64], deadline),  # malformed
    ):
        assert call_revert(harness, sender=stranger.address, to=executor.address, data=refused) == (
            error("InvalidGuardianSignature(address)", g)
        )
    late = sign_typed(key, start_typed(1, deadline - 7200))
    assert call_revert(
        harness, sender=stranger.address, to=executor.address, data=start(late, deadline - 7200)
    ) == error("SignatureExpired(uint256)", deadline - 7200)

    receipt = send(stranger, executor, start(good, deadline))
    [initiated] = logs(executor, "RecoveryInitiated", receipt)
    assert initiated["guardian"] == g and initiated["recoveryData"] == data
    assert executor.functions.guardianNonces(g).call() == 2
    assert harness.w3.eth.get_balance(g) == 0
