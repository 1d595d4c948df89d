"""The event indexer on a real anvil: events of accounts and passkeys become ChainEvent rows and
the read models follow; re-reading changes nothing; reorgs are rolled back; one cursor per chain."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from web3 import Web3

from accounts.models import SmartAccount, User
from chain import userops
from chain.client import Sender, account_from_key
from chain.devtools import devnet
from chain.devtools.authenticator import SoftwarePasskey
from chain.devtools.devkit import ANVIL_KEYS, Harness
from chain.indexer import IndexResult, index_chain
from chain.models import ChainEvent, Deployment, IndexedBlock, IndexerCursor
from chain.tasks import index_chain_task
from passkeys.models import Passkey
from tests.chain.conftest import ORIGIN

pytestmark = [pytest.mark.chain, pytest.mark.django_db]

CHAIN_ID = 31337
ACTIVE, PENDING, REMOVED = (
    Passkey.OnChain.ACTIVE,
    Passkey.OnChain.PENDING,
    Passkey.OnChain.REMOVED,
)


@pytest.fixture
def deployed(addresses: dict[str, str], anvil: devnet.Anvil, settings: Any) -> dict[str, str]:
    """The session anvil is the portal's chain, its contracts recorded."""
    settings.CHAIN_RPC_URL = anvil.url
    settings.CHAIN_REORG_MARGIN = 2
    for name, address in addresses.items():
        Deployment.objects.update_or_create(
            chain_id=CHAIN_ID, name=name, defaults={"address": address, "code_hash": "0x"}
        )
    return addresses


@dataclass
class Person:
    user: User
    account: SmartAccount
    passkey: Passkey  # its row for the `SoftwarePasskey` it signed up with


def person_on_chain(harness: Harness, key: SoftwarePasskey, *, deploy: bool = True) -> Person:
    """A user whose smart account holds `key`, as sign-up leaves them: account `deploying`,
    passkey `pending`. With `deploy`, the account is deployed on chain too."""
    salt = os.urandom(32)
    init_data = harness.account_init_data(key)
    address = userops.predict_account_address(
        factory=harness.factory.address,
        beacon=harness.addresses["AccountBeacon"],
        salt=salt,
        init_data=init_data,
    )
    if deploy:
        deployed_address, _ = harness.deploy_account(key, salt=salt)
        assert deployed_address == address
    user = User.objects.create_user(f"user{os.urandom(3).hex()}")
    account = SmartAccount.objects.create(
        user=user,
        chain_id=CHAIN_ID,
        address=address,
        salt="0x" + salt.hex(),
        init_data=init_data,
        deployer=harness.relayer.address,
        status=SmartAccount.Status.DEPLOYING,
    )
    return Person(user=user, account=account, passkey=passkey_row(user, key))


def passkey_row(user: User, key: SoftwarePasskey) -> Passkey:
    return Passkey.objects.create(
        user=user, name="key", credential_id=key.credential_id, public_key=b"\x00"
    )


def validator_call(harness: Harness, function: str, *args: Any) -> bytes:
    data = harness.validator.encode_abi(function, args=list(args))
    return userops.execute_call_data(target=harness.validator.address, data=bytes.fromhex(data[2:]))


def add_key(harness: Harness, account: str, signer: SoftwarePasskey, new: SoftwarePasskey) -> None:
    call = validator_call(
        harness,
        "addValidationKey",
        new.credential_id,
        [k.to_bytes(32, "big") for k in new.public_key],
        ORIGIN,
    )
    op, _ = harness.sign(harness.sponsor(harness.build(account, call)), signer)
    harness.submit(op)


def remove_key(
    harness: Harness, account: str, signer: SoftwarePasskey, gone: SoftwarePasskey
) -> None:
    call = validator_call(harness, "removeValidationKey", gone.credential_id, ORIGIN)
    op, _ = harness.sign(harness.sponsor(harness.build(account, call)), signer)
    harness.submit(op)


def onchain(row: Passkey) -> str:
    row.refresh_from_db()
    return row.onchain


def status(account: SmartAccount) -> str:
    account.refresh_from_db()
    return account.status


def events(*names: str) -> list[tuple[str, str]]:
    rows = ChainEvent.objects.filter(chain_id=CHAIN_ID)
    if names:
        rows = rows.filter(name__in=names)
    return list(rows.values_list("name", "account"))


def mine_other_blocks(w3: Web3, count: int) -> None:
    """Blocks unlike the ones a revert threw away: each holds a transfer of its own."""
    sender = Sender(w3=w3, account=account_from_key(ANVIL_KEYS[3]))
    for _ in range(count):
        sender.send(to="0x000000000000000000000000000000000000dEaD", value=1)


def index(w3: Web3, **options: Any) -> IndexResult:
    result = index_chain(w3=w3, **options)
    assert not result.skipped
    assert result.at_head or options.get("max_blocks")
    return result


# ------------------------------------------------------------------------------------- events


def test_account_and_passkey_events_are_indexed_and_the_read_models_follow(
    w3: Web3, deployed: dict[str, str], harness: Harness, passkey: SoftwarePasskey
) -> None:
    alice = person_on_chain(harness, passkey)
    phone = SoftwarePasskey(origin=ORIGIN)
    phone_row = passkey_row(alice.user, phone)

    result = index(w3)
    assert result.from_block == 0 and result.to_block == w3.eth.block_number
    assert result.events_added == 2 and result.reorgs == 0
    assert sorted(events()) == [
        ("AccountDeployed", alice.account.address),
        ("PasskeyCreated", alice.account.address),
    ]
    alice.account.refresh_from_db()
    assert alice.account.status == SmartAccount.Status.DEPLOYED
    block_time = w3.eth.get_block(ChainEvent.objects.get(name="AccountDeployed").block_number)[
        "timestamp"
    ]
    assert alice.account.deployed_at is not None
    assert int(alice.account.deployed_at.timestamp()) == block_time
    assert onchain(alice.passkey) == ACTIVE
    assert onchain(phone_row) == PENDING
    created = ChainEvent.objects.get(name="PasskeyCreated")
    assert (
        created.contract == "WebAuthnValidator" and created.address == deployed["WebAuthnValidator"]
    )
    assert created.args == {
        "keyOwner": alice.account.address,
        "domain": ORIGIN,
        "credentialId": "0x" + passkey.credential_id.hex(),
    }

    # The first passkey approves the phone; the phone then removes the first one.
    add_key(harness, alice.account.address, passkey, phone)
    result = index(w3)
    assert result.events_added == 2  # PasskeyCreated + UserOperationEvent
    assert onchain(phone_row) == ACTIVE and onchain(alice.passkey) == ACTIVE
    operation = ChainEvent.objects.get(name="UserOperationEvent")
    assert operation.account == alice.account.address and operation.contract == "EntryPoint"
    assert operation.args["success"] is True
    assert operation.args["paymaster"] == deployed["SponsorPaymaster"]

    remove_key(harness, alice.account.address, phone, passkey)
    index(w3)
    assert onchain(alice.passkey) == REMOVED and onchain(phone_row) == ACTIVE
    assert [name for name, _ in events("PasskeyCreated", "PasskeyRemoved")] == [
        "PasskeyCreated",
        "PasskeyCreated",
        "PasskeyRemoved",
    ]


def test_events_of_accounts_that_are_not_the_portals_are_not_stored(
    w3: Web3, deployed: dict[str, str], harness: Harness, passkey: SoftwarePasskey
) -> None:
    alice = person_on_chain(harness, passkey, deploy=False)
    harness.deploy_account(SoftwarePasskey(origin=ORIGIN))
    # The same credential id on someone else's account does not make alice's passkey active.
    harness.deploy_account(SoftwarePasskey(origin=ORIGIN, credential_id=passkey.credential_id))
    # Anyone may call the validator's onInstall: PasskeyCreated, here with alice's credential id,
    # for an address that is no account at all.
    spam = harness.validator.encode_abi(
        "onInstall",
        args=[
            userops.webauthn_install_data(
                credential_id=passkey.credential_id, public_key=(1, 2), origin=ORIGIN
            )
        ],
    )
    stranger_key = Sender(w3=w3, account=account_from_key(ANVIL_KEYS[3]))
    receipt = stranger_key.send(to=harness.validator.address, data=bytes.fromhex(spam[2:]))
    assert receipt["logs"]  # the event is on chain
    result = index(w3)
    assert result.events_added == 0 and result.updated.get("passkeys", 0) == 0
    assert result.updated.get("accounts", 0) == 0
    assert ChainEvent.objects.count() == 0
    assert status(alice.account) == SmartAccount.Status.DEPLOYING
    assert onchain(alice.passkey) == PENDING
    # Alice's own account, deployed: its events are stored.
    harness.deploy_account(passkey, salt=bytes.fromhex(alice.account.salt[2:]))
    assert index(w3).events_added == 2
    assert {e.account for e in ChainEvent.objects.all()} == {alice.account.address}


def test_indexing_again_changes_nothing(
    w3: Web3, deployed: dict[str, str], harness: Harness, passkey: SoftwarePasskey
) -> None:
    alice = person_on_chain(harness, passkey)
    add_key(harness, alice.account.address, passkey, SoftwarePasskey(origin=ORIGIN))
    first = index(w3)
    stored = list(ChainEvent.objects.order_by("pk").values())
    assert first.events_added == 4

    again = index(w3)
    assert (again.events_added, again.events_removed, again.updated.get("passkeys", 0)) == (0, 0, 0)
    # A full re-read from block 0, in one-block batches, finds the very same rows.
    backfill = index(w3, from_block=0, batch_blocks=1)
    assert backfill.batches == w3.eth.block_number + 1
    assert (backfill.events_added, backfill.events_removed, backfill.reorgs) == (0, 0, 0)
    assert list(ChainEvent.objects.order_by("pk").values()) == stored
    assert onchain(alice.passkey) == ACTIVE


def test_small_batches_and_bounded_runs_index_the_same_events(
    w3: Web3, deployed: dict[str, str], harness: Harness, passkey: SoftwarePasskey
) -> None:
    alice = person_on_chain(harness, passkey)
    for _ in range(3):
        add_key(harness, alice.account.address, passkey, SoftwarePasskey(origin=ORIGIN))
    head = w3.eth.block_number

    partial = index_chain(w3=w3, max_blocks=3, batch_blocks=2)
    assert partial.to_block == 2 and partial.batches == 2 and not partial.at_head
    assert IndexerCursor.objects.get(chain_id=CHAIN_ID).last_indexed_block == 2
    rest = index(w3, batch_blocks=2)
    assert rest.to_block == head
    # Each run re-reads CHAIN_REORG_MARGIN blocks below its cursor.
    assert rest.from_block == 3 - 2
    assert ChainEvent.objects.count() == 2 + 3 * 2


# ---------------------------------------------------------------------------------------- reorgs


def test_a_reorg_after_evm_revert_rolls_back_events_and_read_models(
    w3: Web3, anvil: devnet.Anvil, deployed: dict[str, str], harness: Harness
) -> None:
    key = SoftwarePasskey(origin=ORIGIN)
    alice = person_on_chain(harness, key, deploy=False)
    index(w3)
    before = ChainEvent.objects.count()

    snapshot = devnet.rpc(anvil.url, "evm_snapshot")
    harness.deploy_account(key, salt=bytes.fromhex(alice.account.salt[2:]))
    phone = SoftwarePasskey(origin=ORIGIN)
    phone_row = passkey_row(alice.user, phone)
    add_key(harness, alice.account.address, key, phone)
    index(w3)
    assert status(alice.account) == SmartAccount.Status.DEPLOYED
    assert onchain(alice.passkey) == ACTIVE and onchain(phone_row) == ACTIVE
    indexed_to = w3.eth.block_number

    # The blocks holding the deployment and the new key are replaced by longer, other ones.
    devnet.rpc(anvil.url, "evm_revert", [snapshot])
    mine_other_blocks(w3, 4)
    assert w3.eth.block_number > indexed_to

    result = index(w3)
    assert result.reorgs == 1 and result.events_removed == 4 and result.events_added == 0
    assert ChainEvent.objects.count() == before
    assert status(alice.account) == SmartAccount.Status.COUNTERFACTUAL
    alice.account.refresh_from_db()
    assert alice.account.deployed_at is None
    assert onchain(alice.passkey) == PENDING and onchain(phone_row) == PENDING
    assert IndexerCursor.objects.get(chain_id=CHAIN_ID).last_indexed_block == w3.eth.block_number
    assert (
        IndexedBlock.objects.get(number=w3.eth.block_number).hash
        == "0x" + bytes(w3.eth.get_block("latest")["hash"]).hex()
    )


def test_a_reorg_to_a_shorter_chain_is_rolled_back(
    w3: Web3, anvil: devnet.Anvil, deployed: dict[str, str], harness: Harness
) -> None:
    key = SoftwarePasskey(origin=ORIGIN)
    alice = person_on_chain(harness, key)
    index(w3)
    snapshot = devnet.rpc(anvil.url, "evm_snapshot")
    phone = SoftwarePasskey(origin=ORIGIN)
    phone_row = passkey_row(alice.user, phone)
    add_key(harness, alice.account.address, key, phone)
    mine_other_blocks(w3, 2)
    index(w3)
    assert onchain(phone_row) == ACTIVE

    # Back to before the new key, and no block since: the cursor's block does not exist any more.
    devnet.rpc(anvil.url, "evm_revert", [snapshot])
    cursor = IndexerCursor.objects.get(chain_id=CHAIN_ID)
    assert cursor.last_indexed_block is not None
    assert w3.eth.block_number < cursor.last_indexed_block
    result = index(w3)
    assert result.reorgs == 1 and result.events_removed == 2
    assert onchain(phone_row) == PENDING and onchain(alice.passkey) == ACTIVE
    assert IndexerCursor.objects.get(chain_id=CHAIN_ID).last_indexed_block == w3.eth.block_number


def test_a_reorg_below_every_kept_block_hash_reads_the_chain_again_from_the_start(
    w3: Web3, anvil: devnet.Anvil, deployed: dict[str, str], harness: Harness
) -> None:
    key = SoftwarePasskey(origin=ORIGIN)
    alice = person_on_chain(harness, key)
    snapshot = devnet.rpc(anvil.url, "evm_snapshot")
    phone = SoftwarePasskey(origin=ORIGIN)
    phone_row = passkey_row(alice.user, phone)
    add_key(harness, alice.account.address, key, phone)
    index(w3)  # one batch: its end, above the fork, is the only block hash kept
    assert IndexedBlock.objects.count() == 1 and onchain(phone_row) == ACTIVE

    devnet.rpc(anvil.url, "evm_revert", [snapshot])
    mine_other_blocks(w3, 3)
    result = index(w3)
    assert result.reorgs == 1 and result.from_block == 0
    assert (result.events_removed, result.events_added) == (4, 2)
    assert onchain(phone_row) == PENDING and onchain(alice.passkey) == ACTIVE
    assert status(alice.account) == SmartAccount.Status.DEPLOYED


def test_anvil_reorg_dropping_a_removal_makes_the_passkey_active_again(
    w3: Web3, anvil: devnet.Anvil, deployed: dict[str, str], harness: Harness
) -> None:
    key = SoftwarePasskey(origin=ORIGIN)
    alice = person_on_chain(harness, key)
    phone = SoftwarePasskey(origin=ORIGIN)
    phone_row = passkey_row(alice.user, phone)
    add_key(harness, alice.account.address, key, phone)
    index(w3)
    remove_key(harness, alice.account.address, key, phone)
    index(w3)
    assert onchain(phone_row) == REMOVED

    # Replace the last block (the removal) by one without it.
    devnet.rpc(anvil.url, "anvil_reorg", [1, []])
    result = index(w3)
    assert result.reorgs == 1 and result.events_removed == 2  # PasskeyRemoved, UserOperationEvent
    assert onchain(phone_row) == ACTIVE and onchain(alice.passkey) == ACTIVE
    assert not events("PasskeyRemoved")


# ------------------------------------------------------------------------- cursor, task, command


def test_the_cursor_is_kept_per_chain(
    w3: Web3, deployed: dict[str, str], harness: Harness, passkey: SoftwarePasskey
) -> None:
    other = IndexerCursor.objects.create(chain_id=10, last_indexed_block=123)
    person_on_chain(harness, passkey)
    first = index(w3)
    cursor = IndexerCursor.objects.get(chain_id=CHAIN_ID)
    assert cursor.last_indexed_block == first.to_block == w3.eth.block_number
    other.refresh_from_db()
    assert other.last_indexed_block == 123

    mine_other_blocks(w3, 3)
    second = index(w3)
    assert second.from_block == first.to_block + 1 - 2  # type: ignore[operator]
    assert IndexerCursor.objects.get(chain_id=CHAIN_ID).last_indexed_block == second.to_block
    assert IndexerCursor.objects.filter(chain_id=CHAIN_ID).count() == 1
    # Only the latest CHECKPOINTS_KEPT batch ends are kept; here: one per run.
    assert IndexedBlock.objects.filter(chain_id=CHAIN_ID).count() == 2


def test_nothing_happens_until_the_contracts_are_deployed(settings: Any) -> None:
    settings.CHAIN_RPC_URL = "http://127.0.0.1:9"  # never called
    result = index_chain(chain_id=CHAIN_ID)
    assert result.skipped == "not deployed" and result.to_block is None
    assert index_chain_task() is None
    assert not IndexerCursor.objects.exists() and not ChainEvent.objects.exists()


def test_the_beat_task_indexes_the_configured_chain(
    w3: Web3, deployed: dict[str, str], harness: Harness, passkey: SoftwarePasskey
) -> None:
    alice = person_on_chain(harness, passkey)
    assert index_chain_task() == 2
    assert index_chain_task() == 0
    assert onchain(alice.passkey) == ACTIVE


def test_the_task_survives_an_unreachable_chain(deployed: dict[str, str], settings: Any) -> None:
    settings.CHAIN_RPC_URL = f"http://127.0.0.1:{devnet.free_port()}"
    assert index_chain_task() is None


def test_indexchain_command_reindexes_from_a_block(
    w3: Web3,
    deployed: dict[str, str],
    harness: Harness,
    passkey: SoftwarePasskey,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alice = person_on_chain(harness, passkey)
    call_command("indexchain")
    assert "2 events added" in capsys.readouterr().out
    # An operator wiped the read model by mistake: a re-index from the account's block repairs it.
    Passkey.objects.filter(pk=alice.passkey.pk).update(onchain=PENDING)
    deployed_in = ChainEvent.objects.get(name="AccountDeployed").block_number
    call_command("indexchain", "--from-block", str(deployed_in))
    assert "0 events added, 0 removed, 0 reorgs; updated: 0 accounts, 1 passkeys" in (
        capsys.readouterr().out
    )
    assert onchain(alice.passkey) == ACTIVE
    call_command("indexchain", "--from-block", "0", "--batch-blocks", "1")
    assert ChainEvent.objects.count() == 2
    assert IndexerCursor.objects.get(chain_id=CHAIN_ID).last_indexed_block == w3.eth.block_number


@pytest.mark.django_db(transaction=True)
def test_a_second_indexer_skips_while_the_first_holds_the_cursor(
    w3: Web3, deployed: dict[str, str], harness: Harness, passkey: SoftwarePasskey
) -> None:
    person_on_chain(harness, passkey)
    IndexerCursor.objects.create(chain_id=CHAIN_ID)
    outcome: list[IndexResult] = []

    def second_run() -> None:
        try:
            outcome.append(index_chain(w3=w3))
        finally:
            connection.close()

    with transaction.atomic():
        IndexerCursor.objects.select_for_update().get(chain_id=CHAIN_ID)  # a run in progress
        thread = threading.Thread(target=second_run)
        thread.start()
        thread.join(timeout=30)
    assert outcome[0].skipped == "busy" and not ChainEvent.objects.exists()
    assert index(w3).events_added == 2
