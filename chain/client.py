"""Web3 access to the configured chain: connection, contract handles, signed transactions."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import requests
from django.conf import settings
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.types import TxParams, TxReceipt

from chain import artifacts
from chain.selectors import deployment_address
from portal.redaction import redact_urls


class TransactionFailed(Exception):
    def __init__(self, message: str, receipt: TxReceipt | None = None) -> None:
        super().__init__(message)
        self.receipt = receipt


class ChainUnavailable(Exception):
    """The RPC endpoint did not answer (or answered with a server error): try again later.

    Its text is for people (stored as an operation's error, shown by the API): it never quotes the
    transport's message, which holds the RPC URL and so a hosted provider's API key. `detail` is
    for the server's log, with URLs redacted."""

    PUBLIC_MESSAGE = "the chain's node did not answer; retrying"

    def __init__(self, detail: str = "") -> None:
        super().__init__(self.PUBLIC_MESSAGE)
        self.detail = redact_urls(detail)


def connect(rpc_url: str | None = None, *, timeout: float = 30) -> Web3:
    return Web3(
        Web3.HTTPProvider(rpc_url or settings.CHAIN_RPC_URL, request_kwargs={"timeout": timeout})
    )


@cache
def _node_at(rpc_url: str) -> Web3:
    return connect(rpc_url, timeout=10)


def node() -> Web3:
    """The configured chain's node (CHAIN_RPC_URL), one connection pool per URL."""
    return _node_at(settings.CHAIN_RPC_URL)


def relayer_account() -> LocalAccount:
    """The key that sends every transaction of the operation pipeline (CHAIN_RELAYER_KEY)."""
    return account_from_key(settings.CHAIN_RELAYER_KEY)


def call_chain(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one RPC call, turning transport failures into ChainUnavailable."""
    try:
        return function(*args, **kwargs)
    except (requests.RequestException, ConnectionError, TimeoutError) as exc:
        raise ChainUnavailable(f"{type(exc).__name__}: {exc}") from None


def contract(w3: Web3, name: str, address: str) -> Contract:
    """A handle on the deployed contract `name` (artifact ABI) at `address`."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifacts.abi(name))


def entry_point(w3: Web3) -> Contract:
    """The EntryPoint the portal's contracts were deployed against, on the configured chain."""
    return contract(w3, "EntryPoint", deployment_address("EntryPoint"))


def account_from_key(private_key: str) -> LocalAccount:
    key: LocalAccount = Account.from_key(private_key)
    return key


@dataclass(frozen=True)
class Sender:
    """Sends transactions signed locally with one key."""

    w3: Web3
    account: LocalAccount

    @property
    def address(self) -> ChecksumAddress:
        return self.account.address

    def send(
        self,
        *,
        to: str | None = None,
        data: bytes = b"",
        value: int = 0,
        gas: int | None = None,
        check: bool = True,
    ) -> TxReceipt:
        """Sign, send and wait for one transaction; raise TransactionFailed when it reverted."""
        tx: dict[str, Any] = {
            "from": self.address,
            "value": value,
            "data": data,
            "chainId": self.w3.eth.chain_id,
            "nonce": self.w3.eth.get_transaction_count(self.address, "pending"),
        }
        if to is not None:
            tx["to"] = Web3.to_checksum_address(to)
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
        priority = 1_000_000  # 0.001 gwei: enough on a dev chain
        tx["maxPriorityFeePerGas"] = priority
        tx["maxFeePerGas"] = 2 * base_fee + priority
        tx["gas"] = gas if gas is not None else self.w3.eth.estimate_gas(cast(TxParams, tx))
        signed = self.account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
        if check and receipt["status"] != 1:
            raise TransactionFailed(f"transaction {tx_hash.hex()} reverted", receipt)
        return receipt

    def transact(
        self,
        target: Contract,
        function: str,
        *args: Any,
        value: int = 0,
        gas: int | None = None,
        check: bool = True,
    ) -> TxReceipt:
        """Call `function(*args)` on `target` in a transaction: `transact(paymaster, "deposit")`."""
        data = target.encode_abi(function, args=list(args))
        return self.send(
            to=target.address,
            data=bytes.fromhex(data.removeprefix("0x")),
            value=value,
            gas=gas,
            check=check,
        )
