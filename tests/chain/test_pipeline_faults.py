"""The pipeline with real Celery worker processes (prefork), a real Redis broker, PostgreSQL and
anvil — and the faults of issue 5 §6: a worker killed mid-submission, the broker unreachable when
a person approves, anvil stopped while a transaction is pending, two workers racing for nonces."""

import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from eth_typing import HexStr
from rest_framework.test import APIClient
from web3 import Web3

from chain.client import Sender, account_from_key, connect, relayer_account
from chain.devtools import deploy, devnet
from chain.devtools.devkit import ANVIL_KEYS
from chain.models import ChainOperation, RelayerAccount
from chain.pipeline.submit import dispatch_submission
from passkeys.approvals import approval_options, approve_operation, request_approval
from portal.celery import app
from portal.client_info import ClientInfo
from tests.chain.conftest import PipelineKit, RedisServer, Workers

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

Status = ChainOperation.Status
FINAL = {Status.CONFIRMED, Status.FAILED, Status.EXPIRED}


def wait_for(
    predicate: Callable[[], bool], *, timeout: float = 60, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def statuses(ids: Iterable[int]) -> dict[int, str]:
    return dict(ChainOperation.objects.filter(pk__in=list(ids)).values_list("pk", "status"))


def wait_final(ids: list[int], *, timeout: float = 90) -> dict[int, str]:
    wait_for(
        lambda: set(statuses(ids).values()) <= FINAL,
        timeout=timeout,
        what=f"operations to finish: {statuses(ids)}",
    )
    return statuses(ids)


def relayer_count(w3: Web3) -> int:
    return int(w3.eth.get_transaction_count(relayer_account().address, "latest"))


def assert_each_sent_once(w3: Web3, ids: list[int]) -> int:
    """Each operation executed by exactly one mined transaction of the relayer; operations of one
    bundle share it (and its nonce), no two transactions share a nonce. Returns the number of
    transactions."""
    operations = list(ChainOperation.objects.filter(pk__in=ids))
    by_nonce: dict[int | None, set[str]] = {}
    for operation in operations:
        by_nonce.setdefault(operation.relayer_nonce, set()).add(operation.tx_hash)
        mined = [
            h for h in operation.tx_hashes if _receipt(w3, h) is not None
        ]  # replacements share a nonce: at most one of them can be mined
        assert mined == [operation.tx_hash], (operation.pk, operation.tx_hashes)
        receipt = w3.eth.get_transaction_receipt(HexStr(operation.tx_hash))
        assert receipt["status"] == 1
        assert w3.eth.get_transaction(HexStr(operation.tx_hash))["nonce"] == operation.relayer_nonce
    assert None not in by_nonce
    assert all(len(hashes) == 1 for hashes in by_nonce.values()), by_nonce
    return len(by_nonce)


def _receipt(w3: Web3, tx_hash: str) -> Any:
    from web3.exceptions import TransactionNotFound

    try:
        return w3.eth.get_transaction_receipt(HexStr(tx_hash))
    except TransactionNotFound:
        return None


def deployments(kit: PipelineKit, count: int, prefix: str) -> list[int]:
    ids = []
    for i in range(count):
        user = kit.user(f"{prefix}{i}")
        _account, operation = kit.deployment(user, kit.passkey(user))
        ids.append(operation.pk)
    return ids


def pool_children(worker: Any) -> list[int]:
    path = Path(f"/proc/{worker.pid}/task/{worker.pid}/children")
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def test_a_worker_sends_and_confirms_operations(
    pipeline_kit: PipelineKit, celery_workers: Workers, w3: Web3
) -> None:
    celery_workers.start()
    before = relayer_count(w3)
    ids = deployments(pipeline_kit, 3, "sam")
    assert set(wait_final(ids).values()) == {Status.CONFIRMED}
    assert relayer_count(w3) == before + assert_each_sent_once(w3, ids)


def test_twenty_operations_for_twenty_accounts_by_two_workers(
    pipeline_kit: PipelineKit, celery_workers: Workers, w3: Web3
) -> None:
    """Passkey-signed user operations, queued while no worker runs, then taken by two at once."""
    people = [pipeline_kit.deployed_account(f"tia{i}") for i in range(20)]
    before = relayer_count(w3)
    ids = []
    for user, _passkey, account in people:
        operation = request_approval(
            user=user,
            account=account,
            kind="add_passkey",
            label="A test operation",
            call_data=pipeline_kit.noop_call(),
            idempotency_key=f"noop-{user.pk}",
            details={},
        )
        # The services the API calls (the API's rate limit is not under test here).
        _operation, options = approval_options(user=user, operation_id=operation.pk)
        signed = approve_operation(
            user=user,
            operation_id=operation.pk,
            credential=pipeline_kit.authenticator.get(options),
            client=ClientInfo(ip_address="203.0.113.9", user_agent="test"),
        )
        assert signed.status == Status.SIGNED
        ids.append(operation.pk)
    assert set(statuses(ids).values()) == {Status.SIGNED}

    # Both workers up first, then all twenty nudges at once (as the tick sends them).
    app.control.purge()
    first = celery_workers.start()
    second = celery_workers.start()
    for operation_id in ids:
        assert dispatch_submission(operation_id)
    assert set(wait_final(ids).values()) == {Status.CONFIRMED}
    transactions = assert_each_sent_once(w3, ids)
    assert relayer_count(w3) == before + transactions
    # In bundles (CHAIN_BUNDLE_MAX_OPS): fewer transactions than operations, nonces in a row.
    assert transactions < 20
    nonces = {o.relayer_nonce or 0 for o in ChainOperation.objects.filter(pk__in=ids)}
    assert nonces == set(range(before, before + transactions))
    assert RelayerAccount.objects.get().next_nonce == before + transactions
    # Both workers took part.
    celery_workers.stop(first)
    celery_workers.stop(second)
    logs = [p.read_text() for p in sorted(celery_workers.log_dir.glob("pipeline-*.log"))]
    assert all("chain.tasks.submit_operation" in log and "succeeded" in log for log in logs)


def test_a_worker_killed_mid_submission_leaves_every_operation_confirmed_once(
    pipeline_kit: PipelineKit, celery_workers: Workers, w3: Web3
) -> None:
    from portal.celery import app

    before = relayer_count(w3)
    ids = deployments(pipeline_kit, 24, "uma")
    # Nothing may run before the worker is up and the test watches: drop the nudges queued as the
    # operations were created, start the worker, then queue them all at once.
    app.control.purge()
    worker = celery_workers.start(CHAIN_BUNDLE_MAX_OPS="2")
    for operation_id in ids:
        assert dispatch_submission(operation_id)

    # SIGKILL the pool process while it is working through the queue: its task is re-delivered
    # (acks_late, reject_on_worker_lost) to the replacement process.
    def some_submitted() -> bool:
        values = list(statuses(ids).values())
        return any(v != Status.SIGNED for v in values)

    wait_for(some_submitted, timeout=60, what="a first submission")
    for pid in pool_children(worker):
        os.kill(pid, signal.SIGKILL)
    in_between = statuses(ids)
    assert Status.SIGNED in in_between.values(), "the kill came after every submission"

    # Then the whole worker, main process included: what it held is unacknowledged. A new worker
    # with beat's tick finds it all in the database.
    wait_for(
        lambda: sum(v != Status.SIGNED for v in statuses(ids).values()) > len(ids) // 2,
        timeout=60,
        what="more submissions",
    )
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    celery_workers.start(beat=True, CHAIN_TICK_SECONDS="1", CHAIN_BUNDLE_MAX_OPS="2")

    assert set(wait_final(ids).values()) == {Status.CONFIRMED}
    assert relayer_count(w3) == before + assert_each_sent_once(w3, ids)


def test_an_unreachable_broker_leaves_the_signed_operation_for_the_tick(
    pipeline_kit: PipelineKit, celery_workers: Workers, redis_broker: RedisServer, w3: Web3
) -> None:
    user, _passkey, account = pipeline_kit.deployed_account("vic")
    operation = request_approval(
        user=user,
        account=account,
        kind="add_passkey",
        label="A test operation",
        call_data=pipeline_kit.noop_call(),
        idempotency_key="while-the-broker-is-down",
        details={},
    )
    client = APIClient()
    client.force_authenticate(user)
    options = client.post(f"/api/v1/operations/{operation.pk}/options").json()["publicKey"]
    credential = pipeline_kit.authenticator.get(options)

    redis_broker.stop()
    try:
        started = time.monotonic()
        response = client.post(
            f"/api/v1/operations/{operation.pk}/sign", {"credential": credential}, format="json"
        )
        elapsed = time.monotonic() - started
    finally:
        redis_broker.start()
    # The person's approval is kept: signed, durably, in the database; the request did not hang.
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "signed"
    assert elapsed < 10, elapsed
    operation.refresh_from_db()
    assert operation.status == Status.SIGNED and operation.relayer_nonce is None

    # The broker is back; a worker with beat's tick picks the operation up.
    celery_workers.start(beat=True, CHAIN_TICK_SECONDS="1")
    assert wait_final([operation.pk]) == {operation.pk: Status.CONFIRMED}
    assert_each_sent_once(w3, [operation.pk])


@pytest.fixture
def own_anvil(
    tmp_path: Path, settings: Any, pipeline_chain: dict[str, str]
) -> Iterator[dict[str, Any]]:
    """An anvil of this test's own, with a state file, that the test may stop and restart."""
    state = tmp_path / "anvil-state.json"
    node = devnet.start_anvil(state_path=state)
    w3 = connect(node.url)
    addresses = deploy.deploy_all(
        sender=Sender(w3=w3, account=account_from_key(ANVIL_KEYS[0])),
        sponsor_address=account_from_key(ANVIL_KEYS[1]).address,
        paymaster_deposit_wei=10**19,
    ).addresses
    assert addresses == pipeline_chain  # deterministic deployment: the same Deployment rows
    settings.CHAIN_RPC_URL = node.url
    holder: dict[str, Any] = {"node": node, "state": state}
    yield holder
    holder["node"].stop()


def test_anvil_stopped_while_submitted_the_transaction_is_sent_again_once(
    pipeline_kit: PipelineKit, celery_workers: Workers, own_anvil: dict[str, Any]
) -> None:
    node: devnet.Anvil = own_anvil["node"]
    w3 = connect(node.url)
    user = pipeline_kit.user("walt")
    passkey = pipeline_kit.passkey(user)
    devnet.rpc(node.url, "evm_setAutomine", [False])
    celery_workers.rpc_url = node.url
    celery_workers.start(beat=True, CHAIN_TICK_SECONDS="1")
    before = relayer_count(w3)
    _account, operation = pipeline_kit.deployment(user, passkey)
    wait_for(
        lambda: statuses([operation.pk])[operation.pk] == Status.SUBMITTED,
        what="the submission",
    )
    operation.refresh_from_db()
    sent = operation.tx_hash
    assert w3.eth.get_transaction(HexStr(sent)) is not None

    # anvil goes away with the transaction in its pool, and comes back without it.
    node.stop()
    time.sleep(3)  # the worker's calls fail meanwhile, and are retried
    assert statuses([operation.pk])[operation.pk] == Status.SUBMITTED
    # Stopped while anvil comes back, the worker cannot send the transaction again before the
    # check that anvil lost it (on a busy machine it otherwise may).
    celery_workers.stop_all()
    restarted = devnet.start_anvil(port=node.port, state_path=own_anvil["state"])
    own_anvil["node"] = restarted
    w3 = connect(restarted.url)
    assert relayer_count(w3) == before  # the pending transaction did not survive
    celery_workers.start(beat=True, CHAIN_TICK_SECONDS="1")

    assert wait_final([operation.pk]) == {operation.pk: Status.CONFIRMED}
    operation.refresh_from_db()
    assert operation.tx_hashes == [sent] and operation.tx_hash == sent
    assert operation.attempts >= 2
    assert relayer_count(w3) == before + 1
    assert_each_sent_once(w3, [operation.pk])
    assert settings.CHAIN_CONFIRMATIONS == 1
