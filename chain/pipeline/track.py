"""Tracking operations in flight: receipts, confirmations, reorgs, lost and stuck transactions."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from eth_abi import decode
from eth_account.typed_transactions import TypedTransaction
from eth_utils import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import RPCEndpoint

from chain import userops
from chain.client import ChainUnavailable, call_chain, entry_point, node, relayer_account
from chain.models import ChainOperation
from chain.pipeline.bundles import bundle_of, move_bundle, raw_transaction
from chain.pipeline.submit import (
    Outcome,
    decode_revert,
    fail_simulation,
    fees,
    rpc,
    send,
    sign_call,
    simulate,
    store_then_send,
)
from chain.selectors import deployment_address
from chain.transitions import TransitionRefused, transition

logger = logging.getLogger(__name__)
Status = ChainOperation.Status

# A replacement must pay at least 12.5% more than the transaction it replaces (geth, anvil).
REPLACEMENT_BUMP_NUMERATOR, REPLACEMENT_BUMP_DENOMINATOR = 1125, 1000
USER_OPERATION_EVENT = (
    "0x"
    + keccak(text="UserOperationEvent(bytes32,address,address,uint256,bool,uint256,uint256)").hex()
)
# How far back to look for the transaction that executed a user operation (blocks).
EXECUTED_LOOKBACK_BLOCKS = 5000


def track(*, operation_id: int) -> Outcome:
    """Move a `submitted` or `included` operation (with the others of its bundle) on as far as
    the chain allows now."""
    operation = ChainOperation.objects.filter(pk=operation_id).first()
    if operation is None:
        return Outcome("missing", pending=False)
    return track_loaded(operation)


def track_loaded(operation: ChainOperation) -> Outcome:
    """`track` of an operation just read."""
    if operation.status not in (Status.SUBMITTED, Status.INCLUDED):
        return Outcome(operation.status, pending=False)
    w3 = node()
    if operation.status == Status.SUBMITTED and operation.submitted_via == "bundler":
        from chain.pipeline import bundler

        operation = bundler.track_submitted(w3, operation)
    elif operation.status == Status.SUBMITTED:
        operation = _track_submitted(w3, operation)
    if operation.status == Status.INCLUDED:
        operation = _track_included(w3, operation)
    pending = operation.status in (Status.SUBMITTED, Status.INCLUDED)
    return Outcome(operation.status, pending=pending, follow=operation.pk if pending else None)


def _receipt(w3: Web3, tx_hash: str) -> dict[str, Any] | None:
    """The transaction's receipt as the node sends it (hex strings), None before it is mined.
    Not web3's get_transaction_receipt: its formatters took ~0.1 s of CPU for the logs of a
    bundle of 24 deployments, more than the rest of tracking that bundle."""
    response = call_chain(
        w3.provider.make_request, RPCEndpoint("eth_getTransactionReceipt"), [tx_hash]
    )
    if response.get("error"):
        raise ChainUnavailable(str(response["error"].get("message", response["error"])))
    receipt = response.get("result")
    if not receipt or receipt.get("blockNumber") is None:
        return None
    return dict(receipt)


def _known(w3: Web3, tx_hash: str) -> bool:
    try:
        return call_chain(w3.eth.get_transaction, tx_hash) is not None
    except TransactionNotFound:
        return False


USER_OPERATION_REVERT_REASON = (
    "0x" + keccak(text="UserOperationRevertReason(bytes32,address,uint256,bytes)").hex()
)
CALL_FAILED = "0x" + keccak(text="CallFailed(uint256,bytes)").hex()


def _topic(log: dict[str, Any], index: int) -> str:
    return str(log["topics"][index]).lower()


def _data(log: dict[str, Any]) -> bytes:
    return bytes.fromhex(str(log["data"]).removeprefix("0x"))


def receipt_results(
    receipt: dict[str, Any], operations: list[ChainOperation], *, batch: str = ""
) -> dict[int, str | None]:
    """Operation id → None when it succeeded in the mined transaction `receipt` (as the node
    sends it: hex strings), else its revert reason. A user operation by its UserOperationEvent
    (and UserOperationRevertReason); a relayer call in a RelayerBatch (`batch`: its address) by
    the CallFailed of its index."""
    if int(receipt["status"], 16) != 1:
        return dict.fromkeys((op.pk for op in operations), "the transaction reverted")
    succeeded: dict[str, bool] = {}
    reverted: dict[str, bytes] = {}
    failed_calls: dict[int, bytes] = {}
    for log in receipt["logs"]:
        if not log["topics"]:
            continue
        topic = _topic(log, 0)
        if topic == USER_OPERATION_EVENT:
            (success,) = decode(["bool"], _data(log)[32:64])
            succeeded.setdefault(_topic(log, 1), bool(success))
        elif topic == USER_OPERATION_REVERT_REASON:
            (_nonce, reason) = decode(["uint256", "bytes"], _data(log))
            reverted.setdefault(_topic(log, 1), bytes(reason))
        elif topic == CALL_FAILED and batch and str(log["address"]).lower() == batch.lower():
            (reason,) = decode(["bytes"], _data(log))
            failed_calls[int(_topic(log, 1), 16)] = bytes(reason)
    results: dict[int, str | None] = {}
    for operation in operations:
        if operation.user_op_hash:
            wanted = operation.user_op_hash.lower()
            if wanted not in succeeded:
                results[operation.pk] = "the transaction did not execute the user operation"
            elif succeeded[wanted]:
                results[operation.pk] = None
            elif wanted in reverted:
                results[operation.pk] = decode_revert(reverted[wanted], "execution reverted")
            else:
                results[operation.pk] = "execution reverted"
        elif operation.bundle_index is not None and operation.bundle_index in failed_calls:
            results[operation.pk] = decode_revert(
                failed_calls[operation.bundle_index], "the call reverted"
            )
        else:
            results[operation.pk] = None
    return results


def _batch_address(operations: list[ChainOperation]) -> str:
    if all(op.bundle_index is None or op.user_op_hash for op in operations):
        return ""
    return deployment_address("RelayerBatch", chain_id=operations[0].chain_id)


def _safe_transition(operation: ChainOperation, **kwargs: Any) -> ChainOperation:
    try:
        return transition(operation_id=operation.pk, expect=operation.status, **kwargs)
    except TransitionRefused as exc:
        return exc.operation


def _track_submitted(w3: Web3, operation: ChainOperation) -> ChainOperation:
    hashes = list(operation.tx_hashes or [operation.tx_hash])
    for tx_hash in reversed(hashes):
        receipt = _receipt(w3, tx_hash)
        if receipt is None:
            continue
        where = {
            "tx_hash": tx_hash,
            "block_number": int(receipt["blockNumber"], 16),
            "block_hash": str(receipt["blockHash"]).lower(),
        }
        # Every operation of the bundle is settled from this one receipt.
        operations = bundle_of(operation)
        results = receipt_results(receipt, operations, batch=_batch_address(operations))
        included = [op for op in operations if results[op.pk] is None]
        failed = [op for op in operations if results[op.pk] is not None]
        after = move_bundle(included, to=Status.INCLUDED, last_error="", **where)
        after.update(
            move_bundle(
                failed,
                to=Status.FAILED,
                fields={
                    op.pk: {"revert_reason": results[op.pk], "last_error": results[op.pk]}
                    for op in failed
                },
                **where,
            )
        )
        return after.get(operation.pk) or ChainOperation.objects.get(pk=operation.pk)

    if not any(_known(w3, tx_hash) for tx_hash in hashes):
        latest_nonce = int(call_chain(w3.eth.get_transaction_count, operation.relayer, "latest"))
        if operation.relayer_nonce is not None and latest_nonce > operation.relayer_nonce:
            # Our nonce was used by a transaction that is not ours. If that transaction (or any)
            # already executed our user operation, follow it; otherwise send with a new nonce.
            landed = _executed_by(w3, operation)
            if landed is None:
                return _resubmit_with_new_nonce(w3, operation)
            if not landed:
                ChainOperation.objects.filter(pk=operation.pk).update(
                    last_error="the user operation was executed by a transaction not found"
                )
                return ChainOperation.objects.get(pk=operation.pk)
            followed, _changed = _resubmit_unless_moved(
                operation, tx_hash=landed, tx_hashes=[*operation.tx_hashes, landed]
            )
            return followed
        # The node lost it (restarted, dropped from its pool): the same bytes again.
        logger.info("operation %s: transaction unknown to the node, sending it again", operation.pk)
        ChainOperation.objects.filter(pk=operation.pk).update(attempts=operation.attempts + 1)
        send(w3, operation.pk, raw_transaction(operation))
        return ChainOperation.objects.get(pk=operation.pk)

    pending_for = timezone.now() - (operation.submitted_at or operation.updated_at)
    if pending_for.total_seconds() >= settings.CHAIN_REPLACE_AFTER_SECONDS:
        return _replace(w3, operation)
    return operation


def _bump(old: int | None, floor: int) -> int:
    bumped = -(-(old or 0) * REPLACEMENT_BUMP_NUMERATOR // REPLACEMENT_BUMP_DENOMINATOR)
    return max(bumped, floor, (old or 0) + 1)


def _executed_by(w3: Web3, operation: ChainOperation) -> str | None:
    """For a user operation the EntryPoint has already consumed the nonce of: the hash of the
    transaction that executed it ("" when not found nearby). None when it has not been executed
    (or the operation is a plain relayer call)."""
    if not operation.user_operation or not operation.user_op_hash:
        return None
    op = userops.user_operation_from_json(operation.user_operation)
    contract_ = entry_point(w3)
    # getNonce answers key ‖ the next sequence: above the operation's nonce once it is used.
    if int(call_chain(contract_.functions.getNonce(op.sender, op.nonce >> 64).call)) <= op.nonce:
        return None
    head = int(call_chain(lambda: w3.eth.block_number))
    logs = call_chain(
        w3.eth.get_logs,
        {
            "address": contract_.address,
            "fromBlock": max(0, head - EXECUTED_LOOKBACK_BLOCKS),
            "toBlock": head,
            "topics": [USER_OPERATION_EVENT, operation.user_op_hash],
        },
    )
    return "0x" + bytes(logs[-1]["transactionHash"]).hex() if logs else ""


def _stored_transaction(operation: ChainOperation) -> dict[str, Any]:
    """The fields (to, data, gas, ...) of the transaction last signed for the operation."""
    raw = raw_transaction(operation)
    return dict(TypedTransaction.from_bytes(HexBytes(raw)).as_dict())


def _replace(w3: Web3, operation: ChainOperation) -> ChainOperation:
    """The same transaction at the same nonce with at least 12.5% higher fees, for every operation
    of its bundle; every hash is kept."""
    max_fee, priority = fees(w3)
    new_priority = _bump(operation.max_priority_fee_per_gas, priority)
    new_max_fee = max(_bump(operation.max_fee_per_gas, max_fee), new_priority)
    assert operation.relayer_nonce is not None  # noqa: S101 - submitted operations have one
    stored = _stored_transaction(operation)
    raw, tx_hash = sign_call(
        to=stored["to"],
        data=bytes(HexBytes(stored["data"])),
        nonce=operation.relayer_nonce,
        gas=int(stored["gas"]),
        max_fee=new_max_fee,
        priority=new_priority,
    )
    with transaction.atomic():
        locked = ChainOperation.objects.select_for_update().get(pk=operation.pk)
        if not _unmoved(operation, locked):
            return locked
        operations = bundle_of(locked)
        moved = move_bundle(
            operations,
            to=Status.SUBMITTED,
            fields={
                op.pk: {
                    "tx_hashes": [*op.tx_hashes, tx_hash],
                    "attempts": op.attempts + 1,
                    "raw_transaction": raw if op.pk == operations[0].pk else None,
                }
                for op in operations
            },
            tx_hash=tx_hash,
            max_fee_per_gas=new_max_fee,
            max_priority_fee_per_gas=new_priority,
        )
    logger.info("operations %s: replaced %s with %s", sorted(moved), operation.tx_hash, tx_hash)
    send(w3, operation.pk, raw)
    return moved.get(operation.pk) or ChainOperation.objects.get(pk=operation.pk)


def _unmoved(operation: ChainOperation, locked: ChainOperation) -> bool:
    """Nobody else (the tick and a task tracking the same operation) changed the operation's
    status or transaction since `operation` was read."""
    return locked.status == Status.SUBMITTED and locked.tx_hash == operation.tx_hash


def _resubmit_unless_moved(operation: ChainOperation, **fields: Any) -> tuple[ChainOperation, bool]:
    """SUBMITTED → SUBMITTED with `fields`, unless someone else moved the operation meanwhile:
    then (their version, False)."""
    with transaction.atomic():
        locked = ChainOperation.objects.select_for_update().get(pk=operation.pk)
        if not _unmoved(operation, locked):
            return locked, False
        return (
            transition(
                operation_id=operation.pk, to=Status.SUBMITTED, expect=Status.SUBMITTED, **fields
            ),
            True,
        )


def _resubmit_with_new_nonce(w3: Web3, operation: ChainOperation) -> ChainOperation:
    gas, reason = simulate(w3, operation, relayer_account().address)
    if gas is None:
        return fail_simulation(operation, reason)
    resubmitted, _sent = store_then_send(
        w3,
        operation_id=operation.pk,
        expect=Status.SUBMITTED,
        unchanged=lambda locked: _unmoved(operation, locked),
        gas=gas,
        fees=fees(w3),
    )
    return resubmitted


def _confirmations(w3: Web3, block_number: int) -> int:
    head = int(rpc(w3, "eth_blockNumber", []), 16)
    return head - block_number + 1


def _track_included(w3: Web3, operation: ChainOperation) -> ChainOperation:
    assert operation.block_number is not None  # noqa: S101 - included operations have one
    block = rpc(w3, "eth_getBlockByNumber", [hex(operation.block_number), False])
    on_chain = block is not None and str(block["hash"]).lower() == operation.block_hash
    operations = bundle_of(operation) if operation.submitted_via == "relayer" else [operation]
    if not on_chain:
        logger.warning(
            "operation %s: block %s reorganised away", operation.pk, operation.block_hash
        )
        moved = move_bundle(operations, to=Status.SUBMITTED, block_number=None, block_hash="")
        return moved.get(operation.pk) or ChainOperation.objects.get(pk=operation.pk)
    if _confirmations(w3, operation.block_number) >= settings.CHAIN_CONFIRMATIONS:
        moved = move_bundle(operations, to=Status.CONFIRMED)
        return moved.get(operation.pk) or ChainOperation.objects.get(pk=operation.pk)
    return operation
