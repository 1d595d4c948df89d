"""Helpers for the module tests: run passkey-signed operations, read revert data, travel in time."""

from __future__ import annotations

from typing import Any

from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from chain import userops
from chain.devtools import devnet
from chain.devtools.authenticator import SoftwarePasskey
from chain.devtools.devkit import Harness


def error(signature: str, *args: Any) -> bytes:
    """The exact revert data of custom error `signature` with `args`."""
    types = signature[signature.index("(") + 1 : -1]
    head = keccak(text=signature)[:4]
    if not types:
        return head
    return head + encode(_split(types), list(args))


def _split(types: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in types:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    parts.append(current)
    return parts


def operation(
    harness: Harness, account: str, passkey: SoftwarePasskey, call_data: bytes
) -> TxReceipt:
    """Submit a sponsored user operation of `account` signed by `passkey` (the bundle is mined
    even when the operation's call reverts)."""
    op = harness.build(account, call_data, call_gas_limit=800_000)
    op, _ = harness.sign(harness.sponsor(op), passkey)
    return harness.submit(op)


def op_succeeds(
    harness: Harness, account: str, passkey: SoftwarePasskey, call_data: bytes
) -> TxReceipt:
    receipt = operation(harness, account, passkey, call_data)
    event = harness.entry_point.events.UserOperationEvent().process_receipt(
        receipt, errors=DISCARD
    )[0]["args"]
    reverts = harness.entry_point.events.UserOperationRevertReason().process_receipt(
        receipt, errors=DISCARD
    )
    assert event["success"], f"the user operation reverted: {reverts}"
    return receipt


def op_revert(harness: Harness, account: str, passkey: SoftwarePasskey, call_data: bytes) -> bytes:
    """The revert data of a user operation whose call fails (it is still included)."""
    receipt = operation(harness, account, passkey, call_data)
    event = harness.entry_point.events.UserOperationEvent().process_receipt(
        receipt, errors=DISCARD
    )[0]["args"]
    assert event["success"] is False
    revert = harness.entry_point.events.UserOperationRevertReason().process_receipt(
        receipt, errors=DISCARD
    )[0]["args"]
    return bytes(revert["revertReason"])


def call_revert(
    harness: Harness, *, sender: str, to: str, data: bytes, timestamp: int | None = None
) -> bytes:
    """The revert data of an eth_call (in a block at `timestamp` if given); fails if it passes."""
    url = harness.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    tx = {
        "from": to_checksum_address(sender),
        "to": to_checksum_address(to),
        "data": "0x" + data.hex(),
    }
    params: list[object] = [tx, "latest"]
    if timestamp is not None:
        params += [{}, {"time": hex(timestamp)}]
    try:
        result = devnet.rpc(url, "eth_call", params)
    except devnet.AnvilError as exc:
        details = exc.args[1] if len(exc.args) > 1 else {}
        return bytes.fromhex(str(details.get("data") or "0x").removeprefix("0x"))
    raise AssertionError(f"the call did not revert: {result}")


def set_next_timestamp(harness: Harness, timestamp: int) -> None:
    url = harness.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    devnet.rpc(url, "evm_setNextBlockTimestamp", [timestamp])


def logs(contract: Contract, event: str, receipt: TxReceipt) -> list[dict[str, Any]]:
    """The decoded arguments of `contract`'s `event` in the receipt."""
    return [
        dict(log["args"])
        for log in contract.events[event]().process_receipt(receipt, errors=DISCARD)
    ]


def fund(harness: Harness, address: str, wei: int = 10**15) -> None:
    harness.sender.send(to=address, value=wei)


def transfer(to: str, value: int = 1) -> bytes:
    return userops.execute_call_data(target=to, value=value)
