"""Bundles of the built-in relayer: many signed operations in one transaction.

Two kinds of bundles:

- `handle_ops`: up to CHAIN_BUNDLE_MAX_OPS signed user operations in one EntryPoint.handleOps. The
  EntryPoint runs each one on its own: a user operation whose call reverts is reported in its own
  UserOperationEvent / UserOperationRevertReason and the others go on.
- `relayer_calls`: up to CHAIN_BUNDLE_MAX_OPS relayer calls to MSAFactory (account deployments)
  in one RelayerBatch.callEach, which runs each call on its own and reports the ones that revert
  (CallFailed with the call's index). MSAFactory does not care who calls it, so a deployment
  through RelayerBatch lands where one sent alone would.

A worker that submits an operation claims it and the other `signed` operations of the same kind
(row locks, SKIP LOCKED: two workers build two bundles side by side, never the same one), then
simulates the bundle: a user operation that fails validation makes handleOps revert with
FailedOp(index, reason), and a deployment that would revert makes the strict RelayerBatch revert
with CallReverted(index, reason); that operation is failed with its reason (no nonce taken) and
the rest simulated again. Then, as for one operation, in the same database transaction: the
relayer's next nonce under its row lock, the signed transaction stored on every operation of the
bundle (the same raw bytes, hash and nonce; each with its `bundle_index`) and all moved to
`submitted`; only after the commit is it sent. Each operation keeps its own state: tracking reads
each one's result from the receipt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from eth_abi import decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.types import RPCEndpoint

from chain import userops
from chain.client import ChainUnavailable, call_chain, relayer_account
from chain.models import ChainOperation, Deployment
from chain.pipeline.submit import (
    CALL_REVERTED,
    FAILED_OP,
    FAILED_OP_WITH_REVERT,
    decode_revert,
    dispatch_submission,
    fees,
    revert_data,
    send,
    sign_call,
    simulate,
    take_nonce,
)
from chain.selectors import deployment_address
from chain.transitions import TransitionRefused, transition, transition_many

logger = logging.getLogger(__name__)
Status = ChainOperation.Status

HANDLE_OPS = "handle_ops"
RELAYER_CALLS = "relayer_calls"
# A bundle's gas limit stays within EIP-7825's per-transaction cap, whatever the block's.
TX_GAS_CAP = 2**24
# A bundle's gas limit: what its simulation used, this much more (calls forward 63/64 of what is
# left), and a fixed reserve.
GAS_MARGIN = 1.2
GAS_RESERVE = 50_000


def bundle_kind(operation: ChainOperation) -> str | None:
    """The kind of bundle an operation may join; None: it is sent alone."""
    if operation.user_operation is not None:
        return HANDLE_OPS
    try:
        factory = deployment_address("MSAFactory", chain_id=operation.chain_id)
        deployment_address("RelayerBatch", chain_id=operation.chain_id)
    except Deployment.DoesNotExist:  # no RelayerBatch recorded: sent alone
        return None
    if to_checksum_address(operation.tx_to) == to_checksum_address(factory):
        return RELAYER_CALLS
    return None


def _candidates(kind: str) -> QuerySet[ChainOperation]:
    signed = ChainOperation.objects.select_for_update(skip_locked=True).filter(
        chain_id=settings.CHAIN_ID, status=Status.SIGNED
    )
    if kind == HANDLE_OPS:
        return signed.filter(user_operation__isnull=False)
    return signed.filter(
        user_operation__isnull=True,
        tx_to=to_checksum_address(deployment_address("MSAFactory")),
    )


def _claim(operation_id: int, kind: str, limit: int) -> list[ChainOperation]:
    """The operation (when nobody holds it) and the oldest other signed operations of its kind
    that nobody holds, locked until the caller's transaction ends."""
    candidates = _candidates(kind)
    first = list(candidates.filter(pk=operation_id))
    others = list(
        candidates.exclude(pk=operation_id).order_by("signed_at", "pk")[: limit - len(first)]
    )
    return first + others


HANDLE_OPS_SELECTOR = keccak(text=f"handleOps({userops.USER_OP_ABI_TYPE}[],address)")[:4]
CALL_EACH_SELECTOR = keccak(text="callEach((address,bytes)[],bool)")[:4]


def encode(
    w3: Web3, kind: str, operations: Sequence[ChainOperation], *, strict: bool
) -> tuple[str, bytes]:
    """(to, data) of the bundle's transaction (eth_abi directly: web3's encode_abi takes ~5 ms
    per user operation)."""
    if kind == HANDLE_OPS:
        ops = [
            userops.user_operation_from_json(op.user_operation).as_tuple()  # type: ignore[arg-type]
            for op in operations
        ]
        data = HANDLE_OPS_SELECTOR + abi_encode(
            [f"{userops.USER_OP_ABI_TYPE}[]", "address"], [ops, relayer_account().address]
        )
        return deployment_address("EntryPoint"), data
    calls = [(to_checksum_address(op.tx_to), bytes(op.tx_data)) for op in operations]
    data = CALL_EACH_SELECTOR + abi_encode(["(address,bytes)[]", "bool"], [calls, strict])
    return deployment_address("RelayerBatch"), data


def lenient(strict_call_each: bytes) -> bytes:
    """callEach(calls, false) from the calldata of callEach(calls, true): the flag is the second
    word of the arguments' head (after the calls' offset), the rest is the same."""
    flag = 4 + 32
    return strict_call_each[:flag] + (0).to_bytes(32, "big") + strict_call_each[flag + 32 :]


def failed_index(data: bytes) -> tuple[int | None, str]:
    """(index of the operation that made the bundle revert, its reason), from FailedOp,
    FailedOpWithRevert or CallReverted; (None, reason) when the revert names none."""
    try:
        if data[:4] in (FAILED_OP, FAILED_OP_WITH_REVERT):
            return int(decode(["uint256"], data[4:36])[0]), decode_revert(data)
        if data[:4] == CALL_REVERTED:
            index, inner = decode(["uint256", "bytes"], data[4:])
            return int(index), decode_revert(bytes(inner), "the call reverted")
    except Exception:  # noqa: S110 - undecodable: no index
        pass
    return None, decode_revert(data)


# The gas per operation of the last bundle of each kind simulated in this process: a bundle claims
# no more operations than fit under TX_GAS_CAP (deployments: about 28 of ~490,000 gas).
_gas_per_operation: dict[str, float] = {}


def claim_limit(kind: str) -> int:
    """How many operations a new bundle of `kind` claims: CHAIN_BUNDLE_MAX_OPS, or fewer when
    that many would not fit under the gas cap."""
    limit = int(settings.CHAIN_BUNDLE_MAX_OPS)
    per_operation = _gas_per_operation.get(kind)
    if per_operation:
        fit = int((TX_GAS_CAP - GAS_RESERVE) / (GAS_MARGIN * per_operation))
        limit = min(limit, max(2, fit))
    return limit


def _gas_used(w3: Web3, tx: dict[str, Any]) -> int:
    """The gas the transaction uses now, from one execution (eth_createAccessList's gasUsed: a
    node's eth_estimateGas runs it a dozen times over); eth_estimateGas where the node has no
    eth_createAccessList. Raises the node's revert error."""
    params = {**tx, "data": "0x" + bytes(tx["data"]).hex()}
    response = call_chain(
        w3.provider.make_request, RPCEndpoint("eth_createAccessList"), [params, "pending"]
    )
    error = response.get("error")
    if error:
        message = str(error.get("message", ""))
        if "revert" in message.lower() or error.get("data"):
            raise ContractLogicError(message, data=error.get("data"))
        return int(call_chain(w3.eth.estimate_gas, tx, "pending"))
    return int(str(response["result"]["gasUsed"]), 16)


def _reserve(kind: str, operations: Sequence[ChainOperation]) -> int:
    """Gas the EntryPoint requires to be left before a user operation's call (its call gas limit,
    the paymaster's postOp limit) beyond what the run used: it refuses the bundle (AA95) without."""
    if kind != HANDLE_OPS:
        return 0
    reserve = 0
    for operation in operations:
        op = userops.user_operation_from_json(operation.user_operation)  # type: ignore[arg-type]
        post_op = int.from_bytes(op.paymaster_and_data[36:52], "big")
        reserve = max(reserve, op.call_gas_limit + post_op + op.verification_gas_limit)
    return reserve


@dataclass
class Simulated:
    gas: int | None  # None: no bundle passes (see `kept`)
    kept: list[ChainOperation]
    dropped: list[tuple[ChainOperation, str]]  # (operation, why it would fail)
    data: bytes = b""  # the calldata simulated for `kept`


def simulate_bundle(w3: Web3, kind: str, operations: list[ChainOperation]) -> Simulated:
    """The gas limit of a bundle of the operations, with each operation the simulation names as
    failing dropped, until the rest passes."""
    kept = list(operations)
    dropped: list[tuple[ChainOperation, str]] = []
    sender = relayer_account().address
    while kept:
        to, data = encode(w3, kind, kept, strict=True)
        try:
            used = _gas_used(w3, {"from": sender, "to": to, "data": data})
        except (ContractLogicError, Web3RPCError) as exc:
            message = str(exc)
            if isinstance(exc, Web3RPCError) and "revert" not in message.lower():
                raise ChainUnavailable(message) from exc
            index, reason = failed_index(revert_data(exc))
            if (
                index is not None
                and 0 < index < len(kept)
                and not simulate(w3, kept[index], sender)[1]
            ):
                # It passes alone: the bundle ran out of gas there (the node runs the
                # simulation under the per-transaction cap). The ones before it go now.
                kept = kept[:index]
                continue
            if index is not None and 0 <= index < len(kept):
                dropped.append((kept.pop(index), reason))
                continue
            # A revert that names no operation: simulate each alone, drop those that fail.
            failing = [(op, why) for op in kept for why in [simulate(w3, op, sender)[1]] if why]
            if not failing:  # each passes alone, not together: keep the first only
                return Simulated(None, kept[:1], dropped)
            dropped.extend(failing)
            kept = [op for op in kept if all(op.pk != bad.pk for bad, _ in failing)]
            continue
        reserve = _reserve(kind, kept) + GAS_RESERVE
        _gas_per_operation[kind] = used / len(kept)
        gas = int(used * GAS_MARGIN) + reserve
        if gas > TX_GAS_CAP and len(kept) > 1:
            # As many as fit, by this run's gas per operation.
            fit = int((TX_GAS_CAP - reserve) / (GAS_MARGIN * _gas_per_operation[kind]))
            kept = kept[: max(1, min(fit, len(kept) - 1))]
            continue
        return Simulated(gas, kept, dropped, data)
    return Simulated(None, kept, dropped)


@dataclass
class _Plan:
    sent: list[int] = field(default_factory=list)
    raw: bytes = b""
    tx_hash: str = ""
    nonce: int | None = None
    alone: int | None = None  # sent by the single path after the commit
    released: list[int] = field(default_factory=list)  # dispatched again after the commit


def submit_bundle(w3: Web3, *, operation_id: int, kind: str) -> list[int]:
    """Claim, simulate, store and send a bundle with the operation (or, when another worker holds
    it, with other signed operations of its kind). Returns the ids sent in the bundle."""
    try:
        with transaction.atomic():
            claimed = _claim(operation_id, kind, claim_limit(kind))
            if len(claimed) <= 1:
                plan = _Plan(alone=claimed[0].pk if claimed else None)
            else:
                plan = _store(w3, kind, claimed)
    except TransitionRefused:
        # One of them moved meanwhile (possible only without row locks, e.g. SQLite): nothing
        # was stored; each is looked at again.
        plan = _Plan(released=[op.pk for op in claimed])
    if plan.sent:
        send(w3, plan.sent[0], plan.raw)
        logger.info(
            "bundle of %d %s sent as %s (nonce %s)", len(plan.sent), kind, plan.tx_hash, plan.nonce
        )
    if plan.alone is not None:
        from chain.pipeline.submit import submit_alone

        submit_alone(w3, operation_id=plan.alone)
    for left in plan.released:
        dispatch_submission(left)
    return plan.sent


def _store(w3: Web3, kind: str, claimed: list[ChainOperation]) -> _Plan:
    """In the caller's transaction, with the operations locked: simulate, fail those that would
    fail, and store the bundle's transaction on the rest (moved to `submitted`)."""
    simulated = simulate_bundle(w3, kind, claimed)
    gas, kept, dropped = simulated.gas, simulated.kept, simulated.dropped
    for operation, reason in dropped:
        transition(
            operation_id=operation.pk,
            to=Status.FAILED,
            expect=Status.SIGNED,
            revert_reason=reason,
            last_error=f"simulation reverted: {reason}",
        )
    gone = {op.pk for op in kept} | {op.pk for op, _ in dropped}
    plan = _Plan(released=[op.pk for op in claimed if op.pk not in gone])
    if gas is None or not kept:
        # They pass one by one but not together: the first goes alone, the others again later.
        if kept:
            plan.alone = kept[0].pk
            plan.released = [op.pk for op in kept[1:]] + plan.released
        return plan
    if kind == HANDLE_OPS:  # no strict mode: the calldata simulated
        to, data = deployment_address("EntryPoint"), simulated.data
    else:
        to, data = deployment_address("RelayerBatch"), lenient(simulated.data)
    max_fee, priority = fees(w3)
    sender = relayer_account().address
    nonce = take_nonce(w3, sender)
    raw, tx_hash = sign_call(
        to=to, data=data, nonce=nonce, gas=gas, max_fee=max_fee, priority=priority
    )
    transition_many(
        operation_ids=[op.pk for op in kept],
        to=Status.SUBMITTED,
        expect=Status.SIGNED,
        fields={
            op.pk: {
                "tx_hashes": [*op.tx_hashes, tx_hash],
                "attempts": op.attempts + 1,
                "bundle_index": index,
                # The bundle's raw transaction is kept once, on its first operation (a signed
                # operation has none yet).
                **({"raw_transaction": raw} if index == 0 else {}),
            }
            for index, op in enumerate(kept)
        },
        relayer=sender,
        relayer_nonce=nonce,
        max_fee_per_gas=max_fee,
        max_priority_fee_per_gas=priority,
        tx_hash=tx_hash,
        submitted_via="relayer",
    )
    plan.sent = [op.pk for op in kept]
    plan.raw, plan.tx_hash, plan.nonce = raw, tx_hash, nonce
    return plan


def bundle_of(operation: ChainOperation) -> list[ChainOperation]:
    """The operations sent in the same transaction as `operation` (itself included) that are in
    the same state, sharing its nonce and current hash."""
    if operation.bundle_index is None or operation.relayer_nonce is None:
        return [operation]
    siblings = list(
        ChainOperation.objects.filter(
            chain_id=operation.chain_id,
            relayer=operation.relayer,
            relayer_nonce=operation.relayer_nonce,
            tx_hash=operation.tx_hash,
            status=operation.status,
            bundle_index__isnull=False,
        ).order_by("pk")
    )
    return siblings if any(s.pk == operation.pk for s in siblings) else [operation]


def raw_transaction(operation: ChainOperation) -> bytes:
    """The signed transaction last stored for the operation: its own, or for an operation of a
    bundle the one stored on the bundle's first operation."""
    if operation.raw_transaction is not None or operation.bundle_index is None:
        return bytes(operation.raw_transaction or b"")
    carrier = (
        ChainOperation.objects.filter(
            chain_id=operation.chain_id,
            relayer=operation.relayer,
            relayer_nonce=operation.relayer_nonce,
            tx_hash=operation.tx_hash,
            raw_transaction__isnull=False,
        )
        .values_list("raw_transaction", flat=True)
        .first()
    )
    return bytes(carrier or b"")


def move_bundle(
    operations: Sequence[ChainOperation],
    *,
    to: str,
    fields: dict[int, dict[str, object]] | None = None,
    **common: object,
) -> dict[int, ChainOperation]:
    """Move operations of a bundle that are all in one state; one that moved meanwhile is left as
    it is (the others still move). Returns id → the operation after, for those moved."""
    if not operations:
        return {}
    moved = transition_many(
        operation_ids=[op.pk for op in operations],
        to=to,
        expect=operations[0].status,
        fields=fields,
        partial=True,
        **common,
    )
    return {op.pk: op for op in moved}
