"""Calls a connected dapp asks the account to make (eth_sendTransaction, EIP-5792
wallet_sendCalls), all in one user operation: the review the person reads before the passkey
prompt (decoded calls, a simulation on the chain, flags), the passkey-approved operation
(`passkeys.approvals.request_approval`), and the EIP-5792 status of the bundle.

The simulation runs the account's own `execute` as the EntryPoint calls it, in `eth_simulateV1`
(falling back to `eth_call` on a node without it), between two reads of the account's balance by
a probe contract set in the simulation's state: the difference is the native balance change, and
the ERC-20 Transfer logs of the execution give the token changes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from eth_abi import decode
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from accounts.models import AuditEvent, SmartAccount, User
from accounts.services import guard_sensitive_action, record_event, refusals_recorded
from chain import userops
from chain.client import ChainUnavailable, call_chain, node
from chain.models import ChainOperation
from chain.ownership import changes_ownership
from chain.pipeline.create import chain_unavailable_error
from chain.pipeline.submit import decode_revert
from chain.selectors import deployment_addresses
from passkeys.approvals import request_approval
from portal.client_info import ClientInfo
from portal.errors import Conflict, NotFound, PortalError
from sessionkeys import connections
from sessionkeys.models import CallBundle, DappConnection
from sessionkeys.requests import PERMISSION_TYPES
from sessionkeys.selectors import APPROVAL_SELECTORS, function_name

MAX_CALLS = 16
DAPP_CALLS = "dapp.calls"
TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")
USER_OPERATION_EVENT = keccak(
    text="UserOperationEvent(bytes32,address,address,uint256,bool,uint256,uint256)"
)
BEFORE_EXECUTION = keccak(text="BeforeExecution()")
# Code set at BALANCE_PROBE in the simulation: returns the balance of the address it is given
# (PUSH1 0 CALLDATALOAD BALANCE PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN).
BALANCE_PROBE = "0x000000000000000000000000000000000000BA1A"
BALANCE_PROBE_CODE = "0x6000353160005260206000f3"
WEI_PER_ETH = Decimal(10**18)

Status = ChainOperation.Status


# --- decoding -----------------------------------------------------------------------------------


def _split_types(inner: str) -> list[str]:
    """The top-level argument types of a signature's parameter list."""
    types, depth, start = [], 0, 0
    for index, char in enumerate(inner):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            types.append(inner[start:index])
            start = index + 1
    if inner[start:]:
        types.append(inner[start:])
    return types


def _json_value(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return to_checksum_address(value)
    return value


def _arguments(signature: str, data: bytes) -> list[Any] | None:
    types = _split_types(signature[signature.index("(") + 1 : -1])
    try:
        return [_json_value(value) for value in decode(types, data[4:])]
    except Exception:  # call data that does not match the signature: shown undecoded
        return None


def eth(value: int) -> str:
    """Wei as ETH, exactly, without trailing zeros."""
    text = format(Decimal(value) / WEI_PER_ETH, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def decoded(call: userops.Call) -> dict[str, Any]:
    selector = "0x" + call.data[:4].hex() if len(call.data) >= 4 else None
    signature = function_name(selector) if selector else ""
    return {
        "target": call.target,
        "value": str(call.value),
        "value_eth": eth(call.value),
        "data": "0x" + call.data.hex(),
        "selector": selector,
        "function": signature or None,
        "arguments": _arguments(signature, call.data) if signature else None,
    }


def call_data_of(calls: list[userops.Call]) -> bytes:
    """The account's execute: single for one call, batch for several."""
    if len(calls) == 1:
        call = calls[0]
        return userops.execute_call_data(target=call.target, value=call.value, data=call.data)
    return userops.execute_batch_call_data(calls=calls)


def check_calls(calls: list[userops.Call]) -> None:
    if not calls:
        raise PortalError("invalid_calls", "Give at least one call.")
    if len(calls) > MAX_CALLS:
        raise PortalError("invalid_calls", f"At most {MAX_CALLS} calls go in one operation.")


# --- simulation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Simulation:
    success: bool
    revert_reason: str | None
    native: int | None
    tokens: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "revert_reason": self.revert_reason,
            "balance_change": None
            if self.native is None
            else {
                "native": str(self.native),
                "tokens": [
                    {"token": token, "change": str(change)}
                    for token, change in sorted(self.tokens.items())
                    if change
                ],
            },
        }


def _word(address: str) -> str:
    return "0x" + bytes.fromhex(address[2:]).rjust(32, b"\0").hex()


def _token_changes(account: str, logs: list[dict[str, Any]]) -> dict[str, int]:
    changes: dict[str, int] = {}
    mine = _word(account).lower()
    for log in logs:
        topics = [str(topic).lower() for topic in log.get("topics") or []]
        data = bytes(HexBytes(log.get("data") or "0x"))
        # ERC-20 Transfer: three topics and the amount as data (ERC-721's has four).
        if len(topics) != 3 or topics[0] != "0x" + TRANSFER_TOPIC.hex() or len(data) != 32:
            continue
        amount = int.from_bytes(data, "big")
        token = to_checksum_address(log["address"])
        if topics[1] == mine:
            changes[token] = changes.get(token, 0) - amount
        if topics[2] == mine:
            changes[token] = changes.get(token, 0) + amount
    return changes


def _reason(error: dict[str, Any] | None, return_data: str | None) -> str:
    raw = (error or {}).get("data") or return_data or "0x"
    data = bytes(HexBytes(raw)) if isinstance(raw, str) else b""
    if data:
        return decode_revert(data, "the call reverted")
    return str((error or {}).get("message") or "the call reverted")


def simulate(*, account: str, call_data: bytes) -> Simulation:
    """The account executing `call_data` now, as the EntryPoint would have it (gas is the
    sponsor's, so the balance change is the calls' own)."""
    entry_point = deployment_addresses().get("EntryPoint")
    if entry_point is None:
        raise Conflict("chain_not_configured", "The portal's contracts are not deployed.")
    w3 = node()
    probe = {"to": BALANCE_PROBE, "data": _word(account)}
    execution = {"from": entry_point, "to": account, "data": "0x" + call_data.hex()}
    payload = {
        "blockStateCalls": [
            {
                "stateOverrides": {BALANCE_PROBE: {"code": BALANCE_PROBE_CODE}},
                "calls": [probe, execution, probe],
            }
        ],
        "validation": False,
    }
    try:
        answer = call_chain(w3.provider.make_request, "eth_simulateV1", [payload, "latest"])
    except ChainUnavailable as exc:
        raise chain_unavailable_error() from exc
    results = (answer.get("result") or [{}])[0].get("calls") if "result" in answer else None
    if not results or len(results) != 3:
        return _simulate_with_call(w3, execution)
    before, run, after = results
    if run.get("status") != "0x1":
        return Simulation(
            success=False,
            revert_reason=_reason(run.get("error"), run.get("returnData")),
            native=None,
            tokens={},
        )
    return Simulation(
        success=True,
        revert_reason=None,
        native=int(after["returnData"], 16) - int(before["returnData"], 16),
        tokens=_token_changes(account, run.get("logs") or []),
    )


def _simulate_with_call(w3: Any, execution: dict[str, str]) -> Simulation:
    """A node without eth_simulateV1: success or the revert reason, no balance change."""
    try:
        answer = call_chain(w3.provider.make_request, "eth_call", [execution, "latest"])
    except ChainUnavailable as exc:
        raise chain_unavailable_error() from exc
    if "error" in answer:
        return Simulation(
            success=False, revert_reason=_reason(answer["error"], None), native=None, tokens={}
        )
    return Simulation(success=True, revert_reason=None, native=None, tokens={})


# --- the review ---------------------------------------------------------------------------------


def _deployed_account(connection: DappConnection) -> SmartAccount:
    account = connection.account
    if account.status != SmartAccount.Status.DEPLOYED:
        raise Conflict("account_not_deployed", "Your account is not deployed on chain yet.")
    return account


def _refuse_under_lockdown(
    *, user: User, account: SmartAccount, call_data: bytes, client: ClientInfo | None
) -> None:
    """Ownership-changing calls wait while the lockdown is on (423 `lockdown`)."""
    if changes_ownership(
        call_data=call_data, account=account.address, addresses=deployment_addresses()
    ):
        guard_sensitive_action(action="sponsor.ownership_call", user=user, client=client)


def _flags(
    *,
    origin: str,
    seen: bool,
    account: SmartAccount,
    calls: list[userops.Call],
    call_data: bytes,
    balance: int,
    simulation: Simulation,
) -> list[dict[str, str]]:
    flags: list[dict[str, str]] = []

    def flag(code: str, severity: str, text: str) -> None:
        flags.append({"code": code, "severity": severity, "text": text})

    if not seen:
        flag("new_origin", "warning", f"You have never approved anything for {origin} before.")
    total = sum(call.value for call in calls)
    if total > balance:
        flag(
            "value_exceeds_balance",
            "danger",
            f"The calls send {eth(total)} ETH; your account holds {eth(balance)} ETH.",
        )
    if any(call.target.lower() == account.address.lower() for call in calls):
        flag(
            "calls_account",
            "danger",
            "A call goes to your account itself: it can change its modules or keys.",
        )
    if changes_ownership(
        call_data=call_data, account=account.address, addresses=deployment_addresses()
    ):
        flag(
            "ownership_change",
            "danger",
            "These calls change who controls your account (keys, modules or guardians).",
        )
    for call in calls:
        if call.data[:4] in APPROVAL_SELECTORS:
            flag(
                "approval_call",
                "warning",
                f"{APPROVAL_SELECTORS[call.data[:4]]} on {call.target}: it lets another address "
                "spend your tokens until you take it back.",
            )
    if not simulation.success:
        flag(
            "simulation_failed",
            "danger",
            f"The calls would fail now: {simulation.revert_reason}.",
        )
    return flags


def _balance(account: str) -> int:
    try:
        return int(call_chain(node().eth.get_balance, to_checksum_address(account), "latest"))
    except ChainUnavailable as exc:
        raise chain_unavailable_error() from exc


def preview(
    *, user: User, origin: str, calls: list[userops.Call], client: ClientInfo | None
) -> dict[str, Any]:
    """What the person reads before approving: the decoded calls, the simulation, the flags."""
    check_calls(calls)
    connection = connections.require_connection(user=user, origin=origin)
    account = _deployed_account(connection)
    call_data = call_data_of(calls)
    _refuse_under_lockdown(user=user, account=account, call_data=call_data, client=client)
    simulation = simulate(account=account.address, call_data=call_data)
    seen = connections.origin_seen(user=user, origin=origin)
    return {
        "origin": origin,
        "origin_seen": seen,
        "account": account.address,
        "calls": [decoded(call) for call in calls],
        "simulation": simulation.as_json(),
        "flags": _flags(
            origin=origin,
            seen=seen,
            account=account,
            calls=calls,
            call_data=call_data,
            balance=_balance(account.address),
            simulation=simulation,
        ),
    }


# --- the approval -------------------------------------------------------------------------------


def _stored(calls: list[userops.Call]) -> list[dict[str, str]]:
    return [
        {"to": call.target, "value": str(call.value), "data": "0x" + call.data.hex()}
        for call in calls
    ]


def _label(origin: str, calls: list[userops.Call]) -> str:
    if len(calls) == 1:
        call = calls[0]
        what = (
            f"send {eth(call.value)} ETH to {call.target}"
            if not call.data
            else f"call {function_name('0x' + call.data[:4].hex()) or '0x' + call.data[:4].hex()}"
            f" on {call.target}"
        )
    else:
        what = f"{len(calls)} calls"
    return f"{origin}: {what}"[:200]


@dataclass(frozen=True)
class Requested:
    bundle: CallBundle
    created: bool


def request_calls(
    *,
    user: User,
    origin: str,
    calls: list[userops.Call],
    idempotency_key: str,
    client: ClientInfo | None,
) -> Requested:
    """The calls as one user operation waiting for the person's passkey. The same key gives the
    same bundle back (409 `idempotency_key_reused` when the calls differ)."""
    check_calls(calls)
    with refusals_recorded(
        kind=AuditEvent.Kind.DAPP_CALLS_REFUSED, user=user, client=client, origin=origin
    ):
        connection = connections.require_connection(user=user, origin=origin)
        existing = CallBundle.objects.filter(
            connection=connection, idempotency_key=idempotency_key
        ).first()
        if existing is not None:
            return Requested(bundle=_same_calls(existing, calls), created=False)
        account = _deployed_account(connection)
        call_data = call_data_of(calls)
        _refuse_under_lockdown(user=user, account=account, call_data=call_data, client=client)
        digest = hashlib.sha256(f"{origin}\n{idempotency_key}".encode()).hexdigest()[:48]
        try:
            with transaction.atomic():
                operation = request_approval(
                    user=user,
                    account=account,
                    kind=DAPP_CALLS,
                    label=_label(origin, calls),
                    call_data=call_data,
                    idempotency_key=f"dapp-calls:{user.pk}:{digest}",
                    details={"origin": origin, "calls": len(calls)},
                )
                bundle = CallBundle.objects.create(
                    bundle_id="0x" + secrets.token_bytes(32).hex(),
                    connection=connection,
                    account=account,
                    origin=origin,
                    calls=_stored(calls),
                    idempotency_key=idempotency_key,
                    operation=operation,
                )
                record_event(
                    kind=AuditEvent.Kind.DAPP_CALLS_REQUESTED,
                    user=user,
                    client=client,
                    origin=origin,
                    bundle_id=bundle.bundle_id,
                    operation_id=operation.pk,
                    calls=_stored(calls),
                )
        except IntegrityError:  # the same key at the same moment
            bundle = CallBundle.objects.get(connection=connection, idempotency_key=idempotency_key)
            return Requested(bundle=_same_calls(bundle, calls), created=False)
    return Requested(bundle=bundle, created=True)


def _same_calls(bundle: CallBundle, calls: list[userops.Call]) -> CallBundle:
    if bundle.calls != _stored(calls):
        raise Conflict("idempotency_key_reused", "This idempotency key was used for other calls.")
    return bundle


# --- EIP-5792 status ----------------------------------------------------------------------------

PENDING, CONFIRMED, FAILED_OFFCHAIN, REVERTED = 100, 200, 400, 500


def bundle_by_id(bundle_id: str) -> CallBundle:
    bundle = (
        CallBundle.objects.filter(bundle_id=bundle_id.lower()).select_related("operation").first()
    )
    if bundle is None:
        raise NotFound("unknown_calls", "No calls have this id.")
    return bundle


def status_code(operation: ChainOperation) -> int:
    if operation.status in (Status.INCLUDED, Status.CONFIRMED):
        return CONFIRMED
    if operation.status == Status.FAILED:
        return REVERTED if operation.block_number is not None else FAILED_OFFCHAIN
    if operation.status == Status.EXPIRED:
        return FAILED_OFFCHAIN
    return PENDING


def _receipt(operation: ChainOperation) -> dict[str, Any]:
    """The transaction's receipt, with only this user operation's logs (those between the
    previous operation's UserOperationEvent, or BeforeExecution, and its own)."""
    try:
        receipt = call_chain(node().eth.get_transaction_receipt, operation.tx_hash)
    except ChainUnavailable as exc:
        raise chain_unavailable_error() from exc
    wanted = operation.user_op_hash.lower()
    start, logs, gas_used = 0, [], int(receipt["gasUsed"])
    for index, log in enumerate(receipt["logs"]):
        topics = ["0x" + bytes(topic).hex() for topic in log["topics"]]
        if not topics:
            continue
        if topics[0] == "0x" + BEFORE_EXECUTION.hex():
            start = index + 1
        elif topics[0] == "0x" + USER_OPERATION_EVENT.hex():
            if len(topics) > 1 and topics[1] == wanted:
                logs = receipt["logs"][start:index]
                gas_used = int.from_bytes(bytes(log["data"])[96:128], "big")
                break
            start = index + 1
    return {
        "logs": [
            {
                "address": to_checksum_address(log["address"]),
                "data": "0x" + bytes(log["data"]).hex(),
                "topics": ["0x" + bytes(topic).hex() for topic in log["topics"]],
            }
            for log in logs
        ],
        "status": "0x1" if operation.status != Status.FAILED else "0x0",
        "blockHash": "0x" + bytes(receipt["blockHash"]).hex(),
        "blockNumber": hex(int(receipt["blockNumber"])),
        "gasUsed": hex(gas_used),
        "transactionHash": "0x" + bytes(receipt["transactionHash"]).hex(),
    }


def calls_status(*, bundle_id: str) -> dict[str, Any]:
    """EIP-5792 v2 GetCallsStatus of a bundle; the receipt is read from the chain once the
    operation is in a block, and kept once it is final."""
    bundle = bundle_by_id(bundle_id)
    operation = bundle.operation
    code = status_code(operation)
    receipts: list[dict[str, Any]] = []
    if code in (CONFIRMED, REVERTED) and operation.tx_hash:
        receipt = bundle.receipt
        if receipt is None:
            receipt = _receipt(operation)
            if operation.status in (Status.CONFIRMED, Status.FAILED):
                CallBundle.objects.filter(pk=bundle.pk).update(receipt=receipt)
        receipts = [receipt]
    return {
        "version": "2.0.0",
        "id": bundle.bundle_id,
        "chainId": hex(settings.CHAIN_ID),
        "atomic": True,
        "status": code,
        "receipts": receipts,
        "operation": {"id": operation.pk, "status": operation.status},
    }


def capabilities() -> dict[str, Any]:
    """EIP-5792 wallet_getCapabilities, keyed by the chain id."""
    sessions = "SessionKeyValidator" in deployment_addresses()
    return {
        hex(settings.CHAIN_ID): {
            "atomic": {"status": "supported"},
            "paymasterService": {"supported": False},
            "permissions": {
                "supported": sessions,
                "signerTypes": ["key"] if sessions else [],
                "permissionTypes": list(PERMISSION_TYPES) if sessions else [],
            },
        }
    }
