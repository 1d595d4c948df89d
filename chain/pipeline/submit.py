"""Submitting operations: dispatch, simulation, and one store-then-send path under the relayer's
nonce lock."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from eth_abi import decode
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.types import RPCEndpoint

from chain.client import ChainUnavailable, call_chain, node, relayer_account
from chain.models import ChainOperation, RelayerAccount
from chain.transitions import TransitionRefused, transition
from portal.redaction import redact_urls

logger = logging.getLogger(__name__)
Status = ChainOperation.Status


@dataclass(frozen=True)
class Outcome:
    """What a submit or track step left behind: the operation's status, whether it is still in
    flight, and which operation to track later to move it on (None: nothing for this caller to
    follow; an operation of a bundle is moved with the bundle's first one)."""

    status: str
    pending: bool
    follow: int | None = None


# --- dispatch ------------------------------------------------------------------------------------


def dispatch_submission(operation_id: int) -> bool:
    """Publish the submit task now; False (logged) when the broker cannot take it."""
    from chain.tasks import submit_operation

    try:
        submit_operation.delay(operation_id)
    except Exception:  # any broker failure: the tick dispatches it later
        logger.warning(
            "operation %s: could not queue its submission; the pipeline tick will",
            operation_id,
            exc_info=True,
        )
        return False
    return True


def queue_submission(*, operation_id: int) -> None:
    """Queue the submission when the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: dispatch_submission(operation_id))


MIN_PRIORITY_FEE = 1_000_000  # wei: 0.001 gwei, the floor on a dev chain


def rpc(w3: Web3, method: str, params: list[Any]) -> Any:
    """One JSON-RPC call's raw result (hex strings): for the pipeline's hot paths, where web3's
    result formatters cost more CPU than the call. Web3RPCError on an error answer."""
    response = call_chain(w3.provider.make_request, RPCEndpoint(method), params)
    if response.get("error"):
        raise Web3RPCError(str(response["error"].get("message", response["error"])))
    return response.get("result")


def fees(w3: Web3) -> tuple[int, int]:
    """(maxFeePerGas, maxPriorityFeePerGas) for a transaction sent now."""
    block = rpc(w3, "eth_getBlockByNumber", ["latest", False])
    base_fee = int(block.get("baseFeePerGas") or "0x0", 16)
    try:
        priority = max(int(rpc(w3, "eth_maxPriorityFeePerGas", []), 16), MIN_PRIORITY_FEE)
    except Web3RPCError:
        priority = MIN_PRIORITY_FEE
    return 2 * base_fee + priority, priority


# --- revert reasons ------------------------------------------------------------------------------

FAILED_OP = keccak(text="FailedOp(uint256,string)")[:4]
FAILED_OP_WITH_REVERT = keccak(text="FailedOpWithRevert(uint256,string,bytes)")[:4]
CALL_REVERTED = keccak(text="CallReverted(uint256,bytes)")[:4]  # RelayerBatch, strict
ERROR_STRING = keccak(text="Error(string)")[:4]


def revert_data(exc: BaseException) -> bytes:
    """The revert data carried by a web3 error, b"" when there is none."""
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return b""
    return b""


def decode_revert(data: bytes, fallback: str = "reverted") -> str:
    """A readable reason from revert data: the EntryPoint's FailedOp, Error(string), or hex."""
    try:
        if data[:4] == FAILED_OP:
            (_, reason) = decode(["uint256", "string"], data[4:])
            return str(reason)
        if data[:4] == FAILED_OP_WITH_REVERT:
            (_, reason, inner) = decode(["uint256", "string", "bytes"], data[4:])
            return f"{reason} (0x{bytes(inner).hex()})" if inner else str(reason)
        if data[:4] == CALL_REVERTED:
            (_, inner) = decode(["uint256", "bytes"], data[4:])
            return decode_revert(bytes(inner), "the call reverted")
        if data[:4] == ERROR_STRING:
            (reason,) = decode(["string"], data[4:])
            return str(reason)
    except Exception:  # noqa: S110 - undecodable: shown as hex below
        pass
    return f"{fallback}: 0x{data.hex()}" if data else fallback


# --- one transaction of the relayer --------------------------------------------------------------


def simulate(w3: Web3, operation: ChainOperation, sender: str) -> tuple[int | None, str]:
    """(gas limit, "") when the call would succeed now, (None, reason) when it reverts."""
    tx = {"from": sender, "to": operation.tx_to, "data": bytes(operation.tx_data)}
    try:
        estimate = int(call_chain(w3.eth.estimate_gas, tx, "pending"))
    except ContractLogicError as exc:
        return None, decode_revert(revert_data(exc), str(exc.message or "reverted"))
    except Web3RPCError as exc:
        message = str(exc)
        if "revert" in message.lower():
            return None, decode_revert(revert_data(exc), message)
        raise ChainUnavailable(message) from exc
    return estimate * 3 // 2 + 50_000, ""


def sign_call(
    *, to: str, data: bytes, nonce: int, gas: int, max_fee: int, priority: int
) -> tuple[bytes, str]:
    """The relayer's signed EIP-1559 transaction calling `to` with `data`: (raw bytes, hash)."""
    tx = {
        "type": 2,
        "chainId": settings.CHAIN_ID,
        "nonce": nonce,
        "to": to_checksum_address(to),
        "data": bytes(data),
        "value": 0,
        "gas": gas,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": priority,
    }
    signed = relayer_account().sign_transaction(tx)
    return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()


def sign_transaction(
    *, operation: ChainOperation, nonce: int, gas: int, max_fee: int, priority: int
) -> tuple[bytes, str]:
    """The relayer's signed EIP-1559 transaction of the operation's call: (raw bytes, hash)."""
    return sign_call(
        to=operation.tx_to,
        data=bytes(operation.tx_data),
        nonce=nonce,
        gas=gas,
        max_fee=max_fee,
        priority=priority,
    )


def take_nonce(w3: Web3, address: str) -> int:
    """The relayer's next nonce, under its row lock (call inside a transaction). The counter
    starts at the chain's pending nonce and skips ahead if the key was used elsewhere; it never
    goes back, so two operations never share one."""
    chain_id = settings.CHAIN_ID
    if not RelayerAccount.objects.filter(chain_id=chain_id, address=address).exists():
        pending = int(call_chain(w3.eth.get_transaction_count, address, "pending"))
        try:
            with transaction.atomic():
                RelayerAccount.objects.create(
                    chain_id=chain_id, address=address, next_nonce=pending
                )
        except IntegrityError:
            pass  # another worker created it first
    row = RelayerAccount.objects.select_for_update().get(chain_id=chain_id, address=address)
    on_chain = int(call_chain(w3.eth.get_transaction_count, address, "pending"))
    nonce = max(row.next_nonce, on_chain)
    row.next_nonce = nonce + 1
    row.save(update_fields=["next_nonce"])
    return nonce


def send(w3: Web3, operation_id: int, raw: bytes) -> None:
    """Send stored bytes; a node that already has them is fine, anything else is recorded and the
    tracker sends them again."""
    try:
        call_chain(w3.eth.send_raw_transaction, raw)
    except Web3RPCError as exc:
        message = str(exc)
        lowered = message.lower()
        if "already known" in lowered or "already imported" in lowered:
            return
        logger.warning("operation %s: send refused: %s", operation_id, message)
        ChainOperation.objects.filter(pk=operation_id).update(
            last_error=redact_urls(message)[:2000]
        )


def store_then_send(
    w3: Web3,
    *,
    operation_id: int,
    expect: str,
    unchanged: Callable[[ChainOperation], bool],
    gas: int,
    fees: tuple[int, int],
) -> tuple[ChainOperation, bool]:
    """Take a new relayer nonce, sign the operation's transaction, store it and move the operation
    to `submitted`, all in one database transaction; only after the commit send the stored bytes.
    A crash in between means sending these same bytes again, never a second transaction.

    Nothing happens when `unchanged(locked operation)` is false (someone else moved it on):
    then (that operation, False); else (the submitted operation, True)."""
    max_fee, priority = fees
    sender = relayer_account().address
    with transaction.atomic():
        locked = ChainOperation.objects.select_for_update().get(pk=operation_id)
        if not unchanged(locked):
            return locked, False
        nonce = take_nonce(w3, sender)
        raw, tx_hash = sign_transaction(
            operation=locked, nonce=nonce, gas=gas, max_fee=max_fee, priority=priority
        )
        submitted = transition(
            operation_id=operation_id,
            to=Status.SUBMITTED,
            expect=expect,
            relayer=sender,
            relayer_nonce=nonce,
            max_fee_per_gas=max_fee,
            max_priority_fee_per_gas=priority,
            raw_transaction=raw,
            tx_hash=tx_hash,
            tx_hashes=[*locked.tx_hashes, tx_hash],
            attempts=locked.attempts + 1,
            submitted_via="relayer",
            bundle_index=None,
        )
    send(w3, operation_id, raw)
    return submitted, True


def fail_simulation(operation: ChainOperation, reason: str) -> ChainOperation:
    """The call would revert: the operation fails with the reason (unless it moved on)."""
    try:
        return transition(
            operation_id=operation.pk,
            to=Status.FAILED,
            expect=operation.status,
            revert_reason=reason,
            last_error=f"simulation reverted: {reason}",
        )
    except TransitionRefused as exc:
        return exc.operation


def submit(*, operation_id: int) -> Outcome:
    """Send a `signed` operation (or look after one already sent): see the package docstring.
    A user operation goes to the ERC-4337 bundler when CHAIN_BUNDLER_URL is set; otherwise it,
    and any account deployment, goes in a relayer bundle (chain.pipeline.bundles) with the other
    signed operations of its kind, or alone."""
    from chain.pipeline.track import track, track_loaded

    # Most nudges find their operation sent already in a bundle: its status first, cheaply.
    found = ChainOperation.objects.filter(pk=operation_id).values_list("status", "bundle_index")
    if not found:
        return Outcome("missing", pending=False)
    status, bundle_index = found[0]
    if status != Status.SIGNED and bundle_index:
        # Sent in a bundle by another operation's submission, which follows the bundle (the
        # tick, when that one is lost): tracking this one too would only repeat it.
        return Outcome(status, pending=status in (Status.SUBMITTED, Status.INCLUDED))
    operation = ChainOperation.objects.get(pk=operation_id)
    if operation.status != Status.SIGNED:
        return track_loaded(operation)
    w3 = node()
    if operation.user_operation is not None and settings.CHAIN_BUNDLER_URL:
        from chain.pipeline import bundler

        bundler.submit(w3, operation)
        return track(operation_id=operation_id)
    if settings.CHAIN_BUNDLE_MAX_OPS > 1:
        from chain.pipeline import bundles

        kind = bundles.bundle_kind(operation)
        if kind is not None:
            sent = bundles.submit_bundle(w3, operation_id=operation_id, kind=kind)
            if not sent or operation_id in sent:
                return track(operation_id=operation_id)
            # Another worker holds this one: follow the bundle sent instead.
            followed = track(operation_id=sent[0])
            status = ChainOperation.objects.values_list("status", flat=True).get(pk=operation_id)
            in_flight = status in (Status.SUBMITTED, Status.INCLUDED)
            return Outcome(status, pending=in_flight, follow=followed.follow)
    submit_alone(w3, operation_id=operation_id)
    return track(operation_id=operation_id)


def submit_alone(w3: Web3, *, operation_id: int) -> None:
    """Simulate the operation's own call and send it in a transaction of its own."""
    operation = ChainOperation.objects.filter(pk=operation_id).first()
    if operation is None or operation.status != Status.SIGNED:
        return
    gas, reason = simulate(w3, operation, relayer_account().address)
    if gas is None:
        fail_simulation(operation, reason)
        return
    store_then_send(
        w3,
        operation_id=operation_id,
        expect=Status.SIGNED,
        unchanged=lambda locked: locked.status == Status.SIGNED,
        gas=gas,
        fees=fees(w3),
    )


def note_error(*, operation_id: int, error: str) -> None:
    """Show why an operation is waiting (the chain is unreachable, ...); its status is unchanged."""
    ChainOperation.objects.filter(pk=operation_id).update(last_error=redact_urls(error)[:2000])
