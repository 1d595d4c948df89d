"""Bundles of the built-in relayer: many signed user operations in one handleOps, many account
deployments in one RelayerBatch transaction. One bad operation does not sink the others: the
simulation names it, it fails with its own reason (no nonce taken) and the rest is sent; each
operation keeps its own state."""

from typing import Any

import pytest
from eth_typing import HexStr
from web3 import Web3

from chain import userops
from chain.client import relayer_account
from chain.devtools import devnet
from chain.indexer import index_chain
from chain.models import ChainEvent, ChainOperation
from chain.pipeline.bundles import RELAYER_CALLS, encode, lenient
from chain.pipeline.create import attach_signature, create_relayer_call
from chain.pipeline.submit import submit
from chain.pipeline.track import track
from passkeys.approvals import approval_options, approve_operation, request_approval
from portal.client_info import ClientInfo
from tests.chain.conftest import PipelineKit, advance

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

Status = ChainOperation.Status


def relayer_count(w3: Web3) -> int:
    return int(w3.eth.get_transaction_count(relayer_account().address, "latest"))


def signed(kit: PipelineKit, name: str, call_data: bytes | None = None) -> ChainOperation:
    user, _passkey, account = kit.deployed_account(name)
    operation = request_approval(
        user=user,
        account=account,
        kind="add_passkey",
        label="A test operation",
        call_data=call_data or kit.noop_call(),
        idempotency_key=f"op-{name}",
        details={},
    )
    _operation, options = approval_options(user=user, operation_id=operation.pk)
    return approve_operation(
        user=user,
        operation_id=operation.pk,
        credential=kit.authenticator.get(options),
        client=ClientInfo(ip_address="203.0.113.9", user_agent="test"),
    )


def badly_signed(kit: PipelineKit, name: str) -> ChainOperation:
    user, _passkey, account = kit.deployed_account(name)
    operation = request_approval(
        user=user,
        account=account,
        kind="add_passkey",
        label="A test operation",
        call_data=kit.noop_call(),
        idempotency_key=f"op-{name}",
        details={},
    )
    return attach_signature(
        operation_id=operation.pk,
        signature=bytes.fromhex(kit.validator.address[2:]) + b"\x01" * 64,
    )


def settle_all(ids: list[int]) -> dict[int, ChainOperation]:
    advance(ids[0], until={Status.CONFIRMED, Status.FAILED})
    for operation_id in ids:
        advance(operation_id, until={Status.CONFIRMED, Status.FAILED})
    return {op.pk: op for op in ChainOperation.objects.filter(pk__in=ids)}


def test_signed_user_operations_go_in_one_handle_ops_and_a_bad_one_is_dropped(
    pipeline_kit: PipelineKit, w3: Web3
) -> None:
    good = [signed(pipeline_kit, f"ann{i}") for i in range(4)]
    bad = badly_signed(pipeline_kit, "bob")
    ids = [good[0].pk, bad.pk, *(op.pk for op in good[1:])]
    before = relayer_count(w3)
    # One submission takes every signed user operation with it.
    submit(operation_id=good[0].pk)
    after = settle_all(ids)
    assert relayer_count(w3) == before + 1

    refused = after[bad.pk]
    assert refused.status == Status.FAILED
    assert "AA24" in refused.revert_reason
    assert refused.relayer_nonce is None and refused.tx_hash == "" and refused.attempts == 0

    sent = [after[op.pk] for op in good]
    assert {op.status for op in sent} == {Status.CONFIRMED}
    assert len({op.tx_hash for op in sent}) == 1 and len({op.relayer_nonce for op in sent}) == 1
    assert sorted(op.bundle_index or 0 for op in sent) == [0, 1, 2, 3]
    tx = w3.eth.get_transaction(HexStr(sent[0].tx_hash))
    assert tx["to"] == pipeline_kit.addresses["EntryPoint"]
    # Each one's UserOperationEvent is in that transaction, successful.
    index_chain()
    events = ChainEvent.objects.filter(name="UserOperationEvent", tx_hash=sent[0].tx_hash)
    assert {e.args["userOpHash"] for e in events} == {op.user_op_hash for op in sent}
    assert all(e.args["success"] for e in events)


def test_a_user_operation_that_reverts_in_a_bundle_fails_alone(
    pipeline_kit: PipelineKit, w3: Web3
) -> None:
    refused = pipeline_kit.factory.encode_abi("deployAccount", args=[b"\x01" * 32, b""])
    reverting = signed(
        pipeline_kit,
        "cid",
        userops.execute_call_data(
            target=pipeline_kit.factory.address, data=bytes.fromhex(refused[2:])
        ),
    )
    others = [signed(pipeline_kit, f"dan{i}") for i in range(2)]
    ids = [reverting.pk, *(op.pk for op in others)]
    submit(operation_id=others[0].pk)
    after = settle_all(ids)
    assert len({op.tx_hash for op in after.values()}) == 1
    assert after[reverting.pk].status == Status.FAILED
    assert after[reverting.pk].revert_reason
    assert after[reverting.pk].block_number == after[others[0].pk].block_number
    assert {after[op.pk].status for op in others} == {Status.CONFIRMED}


def test_deployments_go_in_one_relayer_batch_and_one_that_would_revert_is_dropped(
    pipeline_kit: PipelineKit, w3: Web3
) -> None:
    accounts = []
    ids = []
    for i in range(4):
        user = pipeline_kit.user(f"eva{i}")
        account, operation = pipeline_kit.deployment(user, pipeline_kit.passkey(user))
        accounts.append(account)
        ids.append(operation.pk)
    refused = pipeline_kit.factory.encode_abi("deployAccount", args=[b"\x01" * 32, b""])
    broken = create_relayer_call(
        kind="deploy_account",
        label="Deploy the smart account",
        to=pipeline_kit.factory.address,
        data=bytes.fromhex(refused[2:]),
        idempotency_key="broken",
        details={},
    )
    before = relayer_count(w3)
    submit(operation_id=ids[0])
    after = settle_all([*ids, broken.pk])
    assert relayer_count(w3) == before + 1

    assert after[broken.pk].status == Status.FAILED
    assert after[broken.pk].revert_reason and after[broken.pk].relayer_nonce is None
    deployed = [after[pk] for pk in ids]
    assert {op.status for op in deployed} == {Status.CONFIRMED}
    assert len({op.tx_hash for op in deployed}) == 1
    tx = w3.eth.get_transaction(HexStr(deployed[0].tx_hash))
    assert tx["to"] == pipeline_kit.addresses["RelayerBatch"]
    for account in accounts:
        assert w3.eth.get_code(Web3.to_checksum_address(account.address)) != b""
        account.refresh_from_db()
        assert account.status == "deployed"
    index_chain()
    assert set(
        ChainEvent.objects.filter(name="AccountDeployed").values_list("account", flat=True)
    ) >= {account.address for account in accounts}


def test_more_deployments_than_one_transaction_can_hold_all_confirm(
    pipeline_kit: PipelineKit, w3: Web3, settings: Any
) -> None:
    # Some 400,000 gas each: 64 of them need more than the block's gas limit (30M), let alone
    # EIP-7825's per-transaction cap (2**24). The simulation runs out of gas part-way, and the
    # deployment it stopped at is not a bad one.
    settings.CHAIN_BUNDLE_MAX_OPS = 64
    ids = []
    for i in range(64):
        user = pipeline_kit.user(f"hal{i}")
        _account, operation = pipeline_kit.deployment(user, pipeline_kit.passkey(user))
        ids.append(operation.pk)
    before = relayer_count(w3)
    submit(operation_id=ids[0])
    assert not ChainOperation.objects.filter(pk__in=ids, status=Status.FAILED).exists()
    first = ChainOperation.objects.filter(pk__in=ids).exclude(tx_hash="").count()
    assert 1 < first < len(ids)
    after = settle_all(ids)
    assert {op.status for op in after.values()} == {Status.CONFIRMED}
    assert {op.revert_reason for op in after.values()} == {""}
    assert relayer_count(w3) - before < len(ids)


def test_a_stuck_bundle_is_replaced_as_one_transaction(
    pipeline_kit: PipelineKit, w3: Web3, anvil: devnet.Anvil, settings: Any
) -> None:
    ids = []
    for i in range(3):
        user = pipeline_kit.user(f"fay{i}")
        _account, operation = pipeline_kit.deployment(user, pipeline_kit.passkey(user))
        ids.append(operation.pk)
    devnet.rpc(anvil.url, "evm_setAutomine", [False])
    try:
        assert submit(operation_id=ids[0]).status == Status.SUBMITTED
        first = ChainOperation.objects.get(pk=ids[0]).tx_hash
        settings.CHAIN_REPLACE_AFTER_SECONDS = 0
        track(operation_id=ids[1])
        settings.CHAIN_REPLACE_AFTER_SECONDS = 3600
        operations = list(ChainOperation.objects.filter(pk__in=ids))
        assert {len(op.tx_hashes) for op in operations} == {2}
        assert {op.tx_hashes[0] for op in operations} == {first}
        assert len({op.tx_hash for op in operations}) == 1
        assert operations[0].tx_hash != first
        devnet.rpc(anvil.url, "evm_mine")
    finally:
        devnet.rpc(anvil.url, "evm_setAutomine", [True])
    after = settle_all(ids)
    assert {op.status for op in after.values()} == {Status.CONFIRMED}
    assert {op.tx_hash for op in after.values()} == {after[ids[0]].tx_hashes[1]}


def test_a_bundle_size_of_one_sends_each_operation_alone(
    pipeline_kit: PipelineKit, w3: Web3, settings: Any
) -> None:
    settings.CHAIN_BUNDLE_MAX_OPS = 1
    ids = []
    for i in range(2):
        user = pipeline_kit.user(f"gil{i}")
        _account, operation = pipeline_kit.deployment(user, pipeline_kit.passkey(user))
        ids.append(operation.pk)
    before = relayer_count(w3)
    after = settle_all(ids)
    assert relayer_count(w3) == before + 2
    assert {op.status for op in after.values()} == {Status.CONFIRMED}
    assert {op.bundle_index for op in after.values()} == {None}
    assert all(
        w3.eth.get_transaction(HexStr(op.tx_hash))["to"] == pipeline_kit.addresses["MSAFactory"]
        for op in after.values()
    )


def test_a_bundle_of_deployments_is_sent_without_the_strict_flag_it_was_simulated_with(
    pipeline_kit: PipelineKit,
) -> None:
    operations = []
    for i in range(3):
        user = pipeline_kit.user(f"ivy{i}")
        operations.append(pipeline_kit.deployment(user, pipeline_kit.passkey(user))[1])
    _to, strict = encode(pipeline_kit.w3, RELAYER_CALLS, operations, strict=True)
    _to, relaxed = encode(pipeline_kit.w3, RELAYER_CALLS, operations, strict=False)
    assert strict != relaxed
    assert lenient(strict) == relaxed
