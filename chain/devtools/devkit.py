"""Development kit for driving the contracts on a dev chain: a harness that deploys accounts and
builds, signs (with chain.devtools.authenticator's software passkeys) and submits user operations.

Used by the tests, the gas report and the browser test; not by the portal's request path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from eth_abi import decode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.types import TxReceipt

from chain import userops
from chain.client import Sender, account_from_key, contract
from chain.devtools import devnet
from chain.devtools.authenticator import Assertion, SoftwarePasskey
from chain.passkey_signatures import PasskeySignature, passkey_signature

# anvil's well-known accounts 0..3 (dev only).
ANVIL_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
)

# EntryPoint errors
FAILED_OP = keccak(text="FailedOp(uint256,string)")[:4]
FAILED_OP_WITH_REVERT = keccak(text="FailedOpWithRevert(uint256,string,bytes)")[:4]


@dataclass
class OpFailure:
    reason: str  # "AA24 signature error", ...
    inner: bytes = b""  # revert data of the account/paymaster for FailedOpWithRevert

    @property
    def inner_selector(self) -> bytes:
        return self.inner[:4]


class Harness:
    """Deploys accounts and builds, sponsors, signs and submits user operations."""

    def __init__(
        self,
        *,
        w3: Web3,
        addresses: dict[str, str],
        sponsor_key: str = ANVIL_KEYS[1],
        relayer_key: str = ANVIL_KEYS[2],
    ) -> None:
        self.w3 = w3
        self.chain_id = w3.eth.chain_id
        self.addresses = addresses
        self.entry_point = contract(w3, "EntryPoint", addresses["EntryPoint"])
        self.factory = contract(w3, "MSAFactory", addresses["MSAFactory"])
        self.validator = contract(w3, "WebAuthnValidator", addresses["WebAuthnValidator"])
        self.paymaster = contract(w3, "SponsorPaymaster", addresses["SponsorPaymaster"])
        self.beacon = contract(w3, "UpgradeableBeacon", addresses["AccountBeacon"])
        self.sponsor_key = sponsor_key
        self.relayer: LocalAccount = account_from_key(relayer_key)
        self.sender = Sender(w3=w3, account=self.relayer)

    # -- accounts

    def account_init_data(self, passkey: SoftwarePasskey) -> bytes:
        return userops.initialize_account_data(
            modules=[self.validator.address], data=[passkey.install_data()]
        )

    def deploy_account(
        self,
        passkey: SoftwarePasskey,
        *,
        salt: bytes | None = None,
        init_data: bytes | None = None,
    ) -> tuple[str, TxReceipt]:
        """Deploy an account whose validator holds `passkey` (the relayer calls the factory),
        initialised with `account_init_data(passkey)` unless `init_data` is given."""
        salt = salt or os.urandom(32)
        init_data = self.account_init_data(passkey) if init_data is None else init_data
        address = self.factory.functions.predictAccountAddress(salt, init_data).call()
        receipt = self.sender.transact(self.factory, "deployAccount", salt, init_data)
        return to_checksum_address(address), receipt

    def account(self, address: str) -> Any:
        return contract(self.w3, "ModularSmartAccount", address)

    # -- user operations

    def next_nonce(self, account: str, key: int = 0) -> int:
        return int(self.entry_point.functions.getNonce(to_checksum_address(account), key).call())

    def build(
        self,
        account: str,
        call_data: bytes,
        *,
        nonce: int | None = None,
        init_code: bytes = b"",
        verification_gas_limit: int = 400_000,
        call_gas_limit: int = 200_000,
        pre_verification_gas: int = 60_000,
    ) -> userops.PackedUserOperation:
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
        return userops.build_user_operation(
            sender=account,
            nonce=self.next_nonce(account) if nonce is None else nonce,
            init_code=init_code,
            call_data=call_data,
            verification_gas_limit=verification_gas_limit,
            call_gas_limit=call_gas_limit,
            pre_verification_gas=pre_verification_gas,
            max_fee_per_gas=2 * base_fee + 1_000_000,
            max_priority_fee_per_gas=1_000_000,
        )

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def sponsor(
        self,
        op: userops.PackedUserOperation,
        *,
        valid_for: int = 600,
        valid_until: int | None = None,
        valid_after: int = 0,
        sponsor_key: str | None = None,
        max_cost: int | None = None,
    ) -> userops.PackedUserOperation:
        return userops.sponsor_user_operation(
            op,
            paymaster=self.paymaster.address,
            sponsor_key=sponsor_key or self.sponsor_key,
            chain_id=self.chain_id,
            valid_until=self.now() + valid_for if valid_until is None else valid_until,
            valid_after=valid_after,
            max_cost=max_cost,
        )

    def op_hash(self, op: userops.PackedUserOperation) -> bytes:
        return userops.user_operation_hash(
            op, entry_point=self.entry_point.address, chain_id=self.chain_id
        )

    def sign(
        self, op: userops.PackedUserOperation, passkey: SoftwarePasskey, **assertion_options: Any
    ) -> tuple[userops.PackedUserOperation, PasskeySignature]:
        """Sign `op` with `passkey` (options are passed to SoftwarePasskey.assertion)."""
        assertion = passkey.assertion(self.op_hash(op), **assertion_options)
        signature = self.encode(assertion)
        return op.with_changes(signature=signature.encoded), signature

    def encode(self, assertion: Assertion) -> PasskeySignature:
        return passkey_signature(
            validator=self.validator.address,
            authenticator_data=assertion.authenticator_data,
            client_data_json=assertion.client_data_json,
            signature_der=assertion.signature_der,
            credential_id=assertion.credential_id,
        )

    def handle_ops_data(self, ops: list[userops.PackedUserOperation]) -> bytes:
        data = self.entry_point.encode_abi(
            "handleOps", args=[[op.as_tuple() for op in ops], self.relayer.address]
        )
        return bytes.fromhex(data.removeprefix("0x"))

    def submit(
        self, *ops: userops.PackedUserOperation, gas: int | None = None, check: bool = True
    ) -> TxReceipt:
        """EntryPoint.handleOps from the relayer; TransactionFailed on revert when `check`."""
        return self.sender.send(
            to=self.entry_point.address, data=self.handle_ops_data(list(ops)), gas=gas, check=check
        )

    def simulate_failure(self, op: userops.PackedUserOperation) -> OpFailure | None:
        """Run handleOps([op]) in eth_call: the EntryPoint's refusal, or None if it would pass."""
        tx = {
            "from": self.relayer.address,
            "to": self.entry_point.address,
            "data": "0x" + self.handle_ops_data([op]).hex(),
        }
        url = self.w3.provider.endpoint_uri  # type: ignore[attr-defined]
        try:
            devnet.rpc(url, "eth_call", [tx, "latest"])
        except devnet.AnvilError as exc:
            error = exc.args[1] if len(exc.args) > 1 else {}
            data = bytes.fromhex(str(error.get("data", "0x")).removeprefix("0x"))
            if data[:4] == FAILED_OP:
                (_, reason) = decode(["uint256", "string"], data[4:])
                return OpFailure(reason=reason)
            if data[:4] == FAILED_OP_WITH_REVERT:
                (_, reason, inner) = decode(["uint256", "string", "bytes"], data[4:])
                return OpFailure(reason=reason, inner=inner)
            return OpFailure(reason=f"revert 0x{data.hex()}")
        return None
