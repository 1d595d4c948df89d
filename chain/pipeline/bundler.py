"""Submission through an ERC-4337 bundler (CHAIN_BUNDLER_URL), instead of the built-in relayer.

Same states and guarantees as the relayer's path:

- submit: the bundler is asked first whether it serves the portal's EntryPoint
  (eth_supportedEntryPoints, once per process and URL); then the signed user operation is
  simulated there (eth_estimateUserOperationGas: an operation the bundler would refuse fails now
  with its reason, nothing sent); then the operation is moved to `submitted` (submitted_via
  "bundler") in its own database transaction, and only after the commit sent with
  eth_sendUserOperation. The operation is known by its userOpHash: sending it again is harmless
  (the bundler already has it, or the EntryPoint has used its nonce), so a crash between the commit
  and the send only means sending it again.
- track: eth_getUserOperationReceipt gives the transaction, its block and the operation's success
  (→ `included`, or `failed` with the revert reason); confirmations and reorgs are followed as for
  the relayer's transactions. An operation the bundler no longer knows (restarted, dropped) whose
  nonce the EntryPoint has not used is sent again; one whose nonce is used is followed to the
  transaction that executed it.

The portal's gas limits and fees are those the passkey signed (the signature covers them), so
estimation never changes the operation.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from web3 import Web3

from chain import userops
from chain.client import ChainUnavailable, call_chain, entry_point
from chain.models import ChainOperation
from chain.pipeline.submit import decode_revert
from chain.transitions import TransitionRefused, transition

logger = logging.getLogger(__name__)
Status = ChainOperation.Status

# JSON-RPC error codes of ERC-4337 (and "invalid params"): the bundler refuses this operation.
REFUSAL_CODES = frozenset({-32500, -32501, -32502, -32503, -32504, -32505, -32506, -32507, -32602})
TIMEOUT = 10
# An operation the bundler does not show is sent again only this long after it was last sent.
RESEND_AFTER = timedelta(seconds=3)
_supported: dict[str, frozenset[str]] = {}


class BundlerError(ChainUnavailable):
    """The bundler did not answer, or answered with an error that is not about the operation:
    try again later (the operation's last_error says why)."""


class BundlerRefused(Exception):
    """The bundler refused the operation itself (validation, signature, gas, ...)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message
        self.data = data


def call(method: str, params: list[Any], *, url: str | None = None) -> Any:
    """One JSON-RPC call to the bundler."""
    url = url or settings.CHAIN_BUNDLER_URL
    try:
        response = requests.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            timeout=TIMEOUT,
        )
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise BundlerError(f"bundler {method}: {type(exc).__name__}: {exc}") from exc
    error = body.get("error") if isinstance(body, dict) else None
    if error:
        code = int(error.get("code", 0))
        message = str(error.get("message", "error"))
        if code in REFUSAL_CODES:
            raise BundlerRefused(code, message, error.get("data"))
        raise BundlerError(f"bundler {method}: {message} (code {code})")
    return body.get("result")


def ensure_supported(entry_point_address: str) -> None:
    """The bundler must serve the portal's EntryPoint (asked once per process and URL)."""
    url = settings.CHAIN_BUNDLER_URL
    if url not in _supported:
        answer = call("eth_supportedEntryPoints", [])
        if not isinstance(answer, list):
            raise BundlerError(f"bundler eth_supportedEntryPoints: unexpected answer {answer!r}")
        _supported[url] = frozenset(str(address).lower() for address in answer)
    if entry_point_address.lower() not in _supported[url]:
        raise BundlerError(
            f"the bundler at CHAIN_BUNDLER_URL does not serve the EntryPoint "
            f"{entry_point_address} (it serves {sorted(_supported[url])})"
        )


def rpc_user_operation(op: userops.PackedUserOperation) -> dict[str, Any]:
    """The unpacked JSON form of a v0.7/v0.8 user operation that bundlers take."""
    body: dict[str, Any] = {
        "sender": op.sender,
        "nonce": hex(op.nonce),
        "callData": "0x" + op.call_data.hex(),
        "callGasLimit": hex(op.call_gas_limit),
        "verificationGasLimit": hex(op.verification_gas_limit),
        "preVerificationGas": hex(op.pre_verification_gas),
        "maxFeePerGas": hex(op.max_fee_per_gas),
        "maxPriorityFeePerGas": hex(op.max_priority_fee_per_gas),
        "signature": "0x" + op.signature.hex(),
    }
    if op.init_code:
        body["factory"] = Web3.to_checksum_address(op.init_code[:20])
        body["factoryData"] = "0x" + op.init_code[20:].hex()
    if op.paymaster_and_data:
        pm = op.paymaster_and_data
        body["paymaster"] = Web3.to_checksum_address(pm[:20])
        body["paymasterVerificationGasLimit"] = hex(int.from_bytes(pm[20:36], "big"))
        body["paymasterPostOpGasLimit"] = hex(int.from_bytes(pm[36:52], "big"))
        body["paymasterData"] = "0x" + pm[52:].hex()
    return body


def _params(w3: Web3, operation: ChainOperation) -> tuple[dict[str, Any], str]:
    op = userops.user_operation_from_json(operation.user_operation)  # type: ignore[arg-type]
    address = entry_point(w3).address
    return rpc_user_operation(op), address


def _fail(operation: ChainOperation, reason: str, *, error: str) -> ChainOperation:
    try:
        return transition(
            operation_id=operation.pk,
            to=Status.FAILED,
            expect=operation.status,
            revert_reason=reason,
            last_error=error,
        )
    except TransitionRefused as exc:
        return exc.operation


def submit(w3: Web3, operation: ChainOperation) -> ChainOperation:
    """Simulate a `signed` user operation at the bundler, store it as `submitted`, then send it."""
    body, address = _params(w3, operation)
    ensure_supported(address)
    try:
        call("eth_estimateUserOperationGas", [body, address])
    except BundlerRefused as exc:
        return _fail(operation, exc.message, error=f"bundler refused it: {exc}")
    with transaction.atomic():
        locked = ChainOperation.objects.select_for_update().get(pk=operation.pk)
        if locked.status != Status.SIGNED:
            return locked
        submitted = transition(
            operation_id=operation.pk,
            to=Status.SUBMITTED,
            expect=Status.SIGNED,
            submitted_via="bundler",
            attempts=locked.attempts + 1,
            last_error="",
        )
    return send(w3, submitted)


def send(w3: Web3, operation: ChainOperation) -> ChainOperation:
    """eth_sendUserOperation; a refusal fails the operation unless its nonce is already used
    (then it was sent before: the tracker follows it)."""
    body, address = _params(w3, operation)
    try:
        answer = call("eth_sendUserOperation", [body, address])
    except BundlerRefused as exc:
        if _nonce_used(w3, operation) or "already" in exc.message.lower():
            return operation
        return _fail(operation, exc.message, error=f"bundler refused it: {exc}")
    except BundlerError as exc:
        logger.warning("operation %s: bundler send failed: %s", operation.pk, exc)
        ChainOperation.objects.filter(pk=operation.pk).update(last_error=str(exc)[:2000])
        return operation
    if str(answer).lower() != operation.user_op_hash.lower():
        logger.error(
            "operation %s: the bundler answered hash %s, ours is %s",
            operation.pk,
            answer,
            operation.user_op_hash,
        )
    return operation


def _nonce_used(w3: Web3, operation: ChainOperation) -> bool:
    """Whether the EntryPoint has used the operation's nonce (getNonce: key ‖ next sequence)."""
    op = userops.user_operation_from_json(operation.user_operation)  # type: ignore[arg-type]
    return (
        int(call_chain(entry_point(w3).functions.getNonce(op.sender, op.nonce >> 64).call))
        > op.nonce
    )


# Alto's (and Pimlico's) status of an operation it holds; the standard methods only see mined ones.
HELD = frozenset({"not_submitted", "submitted", "queued", "included"})


def _bundler_holds(operation: ChainOperation) -> bool:
    """Whether the bundler still has the operation (in its mempool, or sent). Asked with
    pimlico_getUserOperationStatus where the bundler has it, else eth_getUserOperationByHash
    (which some bundlers answer for mined operations only: then the operation is sent again,
    which a bundler that has it takes as a no-op)."""
    try:
        status = call("pimlico_getUserOperationStatus", [operation.user_op_hash])
    except (BundlerError, BundlerRefused):
        return bool(call("eth_getUserOperationByHash", [operation.user_op_hash]))
    return isinstance(status, dict) and status.get("status") in HELD


def track_submitted(w3: Web3, operation: ChainOperation) -> ChainOperation:
    """Move a `submitted` operation on from what the bundler (or the chain) knows of it."""
    receipt = call("eth_getUserOperationReceipt", [operation.user_op_hash])
    if receipt:
        tx = receipt.get("receipt") or {}
        where = {
            "tx_hash": str(tx.get("transactionHash", "")).lower(),
            "tx_hashes": sorted({*operation.tx_hashes, str(tx.get("transactionHash", "")).lower()}),
            "block_number": int(str(tx.get("blockNumber", "0x0")), 16),
            "block_hash": str(tx.get("blockHash", "")).lower(),
        }
        success = receipt.get("success")
        if success is True or str(success).lower() == "true":
            to, extra = Status.INCLUDED, {"last_error": ""}
        else:
            raw = receipt.get("reason") or "0x"
            reason = decode_revert(bytes.fromhex(str(raw).removeprefix("0x")), "execution reverted")
            to, extra = Status.FAILED, {"revert_reason": reason, "last_error": reason}
        try:
            return transition(
                operation_id=operation.pk, to=to, expect=Status.SUBMITTED, **where, **extra
            )
        except TransitionRefused as exc:
            return exc.operation
    if _bundler_holds(operation):
        return operation  # pending there
    if _nonce_used(w3, operation):
        # Executed, but the bundler does not say where (a receipt it has forgotten, another
        # bundler): the relayer's tracker finds the transaction from the EntryPoint's logs.
        from chain.pipeline.track import _executed_by

        landed = _executed_by(w3, operation)
        if landed:
            receipt_tx = w3.eth.get_transaction_receipt(landed)  # type: ignore[arg-type]
            try:
                return transition(
                    operation_id=operation.pk,
                    to=Status.INCLUDED,
                    expect=Status.SUBMITTED,
                    tx_hash=landed,
                    tx_hashes=[*operation.tx_hashes, landed],
                    block_number=int(receipt_tx["blockNumber"]),
                    block_hash="0x" + bytes(receipt_tx["blockHash"]).hex(),
                )
            except TransitionRefused as exc:
                return exc.operation
        return operation
    if timezone.now() - operation.updated_at < RESEND_AFTER:
        return operation  # just sent: a bundler may take a moment to show it
    # The bundler lost it (restarted, dropped from its mempool): the same operation again.
    logger.info("operation %s: unknown to the bundler, sending it again", operation.pk)
    operation.attempts += 1
    operation.updated_at = timezone.now()
    ChainOperation.objects.filter(pk=operation.pk).update(
        attempts=operation.attempts, updated_at=operation.updated_at
    )
    return send(w3, operation)
