"""Tracking operations in flight: receipts, confirmations, reorgs, lost and stuck transactions."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from eth_account.typed_transactions import TypedTransaction
from eth_utils import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD

from chain import userops
from chain.client import call_chain, entry_point, node, relayer_account
from chain.models import ChainOperation
from chain.pipeline.submit import (
    Outcome,
    decode_revert,
    fail_simulation,
    fees,
    send,
    sign_transaction,
    simulate,
    store_then_send,
)
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
    """Move a `submitted` or `included` operation on as far as the chain allows now."""
    operation = ChainOperation.objects.filter(pk=operation_id).first()
    if operation is None:
        return Outcome("missing", pending=False)
    w3 = node()
    if operation.status == Status.SUBMITTED:
        operation = _track_submitted(w3, operation)
    if operation.status == Status.INCLUDED:
        operation = _track_included(w3, operation)
    return Outcome(
        operation.status, pending=operation.status in (Status.SUBMITTED, Status.INCLUDED)
    )


def _receipt(w3: Web3, tx_hash: str) -> Any:
    try:
        return call_chain(w3.eth.get_transaction_receipt, tx_hash)
    except TransactionNotFound:
        return None


def _known(w3: Web3, tx_hash: str) -> bool:
    try:
        return call_chain(w3.eth.get_transaction, tx_hash) is not None
    except TransactionNotFound:
        return False


def _user_operation_result(w3: Web3, operation: ChainOperation, receipt: Any) -> str | None:
    """None when the user operation succeeded; its revert reason when it did not."""
    if not operation.user_op_hash:
        return None
    contract_ = entry_point(w3)
    wanted = bytes.fromhex(operation.user_op_hash.removeprefix("0x"))
    events = contract_.events.UserOperationEvent().process_receipt(receipt, errors=DISCARD)
    mine = [e for e in events if bytes(e["args"]["userOpHash"]) == wanted]
    if not mine:
        return "the transaction did not execute the user operation"
    if mine[0]["args"]["success"]:
        return None
    reverts = contract_.events.UserOperationRevertReason().process_receipt(receipt, errors=DISCARD)
    for event in reverts:
        if bytes(event["args"]["userOpHash"]) == wanted:
            return decode_revert(bytes(event["args"]["revertReason"]), "execution reverted")
    return "execution reverted"


def _safe_transition(operation: ChainOperation, **kwargs: Any) -> ChainOperation:
    try:
        return transition(operation_id=operation.pk, expect=operation.status, **kwargs)
    except TransitionRefused as exc:
        return exc.operation


def _track_submitted(w3: Web3, operation: ChainOperation) -> ChainOperation:
    hashes = list(operation.tx_hashes or [operation.tx_hash])
    for tx_hash in reversed(hashes):
        receipt = _receipt(w3, tx_hash)
        if receipt is None or receipt.get("blockNumber") is None:
            continue
        where = {
            "tx_hash": tx_hash,
            "block_number": int(receipt["blockNumber"]),
            "block_hash": "0x" + bytes(receipt["blockHash"]).hex(),
        }
        if receipt["status"] != 1:
            return _safe_transition(
                operation,
                to=Status.FAILED,
                revert_reason="the transaction reverted",
                last_error="the transaction reverted on chain",
                **where,
            )
        reason = _user_operation_result(w3, operation, receipt)
        if reason is not None:
            return _safe_transition(
                operation, to=Status.FAILED, revert_reason=reason, last_error=reason, **where
            )
        return _safe_transition(operation, to=Status.INCLUDED, last_error="", **where)

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
        send(w3, operation.pk, bytes(operation.raw_transaction or b""))
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
    key, sequence = op.nonce >> 64, op.nonce & (2**64 - 1)
    contract_ = entry_point(w3)
    if int(call_chain(contract_.functions.getNonce(op.sender, key).call)) <= sequence:
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


def _stored_gas(operation: ChainOperation) -> int:
    """The gas limit of the transaction last signed for the operation."""
    raw = bytes(operation.raw_transaction or b"")
    return int(TypedTransaction.from_bytes(HexBytes(raw)).as_dict()["gas"])


def _replace(w3: Web3, operation: ChainOperation) -> ChainOperation:
    """The same call at the same nonce with at least 12.5% higher fees; every hash is kept."""
    max_fee, priority = fees(w3)
    new_priority = _bump(operation.max_priority_fee_per_gas, priority)
    new_max_fee = max(_bump(operation.max_fee_per_gas, max_fee), new_priority)
    assert operation.relayer_nonce is not None  # noqa: S101 - submitted operations have one
    raw, tx_hash = sign_transaction(
        operation=operation,
        nonce=operation.relayer_nonce,
        gas=_stored_gas(operation),
        max_fee=new_max_fee,
        priority=new_priority,
    )
    replaced, changed = _resubmit_unless_moved(
        operation,
        raw_transaction=raw,
        tx_hash=tx_hash,
        tx_hashes=[*operation.tx_hashes, tx_hash],
        max_fee_per_gas=new_max_fee,
        max_priority_fee_per_gas=new_priority,
        attempts=operation.attempts + 1,
    )
    if changed:
        logger.info("operation %s: replaced %s with %s", operation.pk, operation.tx_hash, tx_hash)
        send(w3, operation.pk, raw)
    return replaced


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
    head = int(call_chain(lambda: w3.eth.block_number))
    return head - block_number + 1


def _track_included(w3: Web3, operation: ChainOperation) -> ChainOperation:
    assert operation.block_number is not None  # noqa: S101 - included operations have one
    block = call_chain(w3.eth.get_block, operation.block_number)
    on_chain = block is not None and "0x" + bytes(block["hash"]).hex() == operation.block_hash
    if not on_chain:
        logger.warning(
            "operation %s: block %s reorganised away", operation.pk, operation.block_hash
        )
        return _safe_transition(operation, to=Status.SUBMITTED, block_number=None, block_hash="")
    if _confirmations(w3, operation.block_number) >= settings.CHAIN_CONFIRMATIONS:
        return _safe_transition(operation, to=Status.CONFIRMED)
    return operation
