"""ERC-4337 v0.8 user operations: building, hashing, account call data and sponsor (paymaster) data.

Everything here is pure (no chain access): the ChainOperation pipeline builds on these functions.
Addresses are accepted in any case and returned EIP-55 checksummed; byte strings are `bytes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak, to_checksum_address

from chain import artifacts

# --- EntryPoint v0.8 -------------------------------------------------------------------------

PACKED_USER_OP_TYPEHASH = keccak(
    text="PackedUserOperation(address sender,uint256 nonce,bytes initCode,bytes callData,"
    "bytes32 accountGasLimits,uint256 preVerificationGas,bytes32 gasFees,bytes paymasterAndData)"
)
EIP712_DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
ENTRY_POINT_DOMAIN_NAME = "ERC4337"
ENTRY_POINT_DOMAIN_VERSION = "1"
USER_OP_ABI_TYPE = "(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)"

UINT128_MAX = 2**128 - 1
UINT48_MAX = 2**48 - 1


def pack_uint128_pair(high: int, low: int) -> bytes:
    """Two uint128 in one bytes32 (accountGasLimits, gasFees, paymaster gas limits)."""
    if not (0 <= high <= UINT128_MAX and 0 <= low <= UINT128_MAX):
        raise ValueError("value does not fit in uint128")
    return high.to_bytes(16, "big") + low.to_bytes(16, "big")


@dataclass(frozen=True, kw_only=True)
class PackedUserOperation:
    """An EntryPoint v0.8 PackedUserOperation, field for field."""

    sender: str
    nonce: int
    init_code: bytes = b""
    call_data: bytes = b""
    account_gas_limits: bytes = b"\x00" * 32
    pre_verification_gas: int = 0
    gas_fees: bytes = b"\x00" * 32
    paymaster_and_data: bytes = b""
    signature: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sender", to_checksum_address(self.sender))
        if len(self.account_gas_limits) != 32 or len(self.gas_fees) != 32:
            raise ValueError("account_gas_limits and gas_fees are 32 bytes")

    @property
    def verification_gas_limit(self) -> int:
        return int.from_bytes(self.account_gas_limits[:16], "big")

    @property
    def call_gas_limit(self) -> int:
        return int.from_bytes(self.account_gas_limits[16:], "big")

    @property
    def max_priority_fee_per_gas(self) -> int:
        return int.from_bytes(self.gas_fees[:16], "big")

    @property
    def max_fee_per_gas(self) -> int:
        return int.from_bytes(self.gas_fees[16:], "big")

    def as_tuple(self) -> tuple[str, int, bytes, bytes, bytes, int, bytes, bytes, bytes]:
        """The ABI tuple, as passed to handleOps/getUserOpHash."""
        return (
            self.sender,
            self.nonce,
            self.init_code,
            self.call_data,
            self.account_gas_limits,
            self.pre_verification_gas,
            self.gas_fees,
            self.paymaster_and_data,
            self.signature,
        )

    def with_changes(self, **changes: object) -> PackedUserOperation:
        return replace(self, **changes)  # type: ignore[arg-type]


def user_operation_to_json(op: PackedUserOperation) -> dict[str, str]:
    """The ERC-4337 v0.8 JSON form of a packed user operation (hex strings)."""
    return {
        "sender": op.sender,
        "nonce": hex(op.nonce),
        "initCode": "0x" + op.init_code.hex(),
        "callData": "0x" + op.call_data.hex(),
        "accountGasLimits": "0x" + op.account_gas_limits.hex(),
        "preVerificationGas": hex(op.pre_verification_gas),
        "gasFees": "0x" + op.gas_fees.hex(),
        "paymasterAndData": "0x" + op.paymaster_and_data.hex(),
        "signature": "0x" + op.signature.hex(),
    }


def user_operation_from_json(data: dict[str, str]) -> PackedUserOperation:
    def raw(name: str) -> bytes:
        return bytes.fromhex(data[name].removeprefix("0x"))

    return PackedUserOperation(
        sender=data["sender"],
        nonce=int(data["nonce"], 16),
        init_code=raw("initCode"),
        call_data=raw("callData"),
        account_gas_limits=raw("accountGasLimits"),
        pre_verification_gas=int(data["preVerificationGas"], 16),
        gas_fees=raw("gasFees"),
        paymaster_and_data=raw("paymasterAndData"),
        signature=raw("signature"),
    )


def build_user_operation(
    *,
    sender: str,
    nonce: int,
    call_data: bytes,
    verification_gas_limit: int,
    call_gas_limit: int,
    pre_verification_gas: int,
    max_fee_per_gas: int,
    max_priority_fee_per_gas: int,
    init_code: bytes = b"",
    paymaster_and_data: bytes = b"",
    signature: bytes = b"",
) -> PackedUserOperation:
    return PackedUserOperation(
        sender=sender,
        nonce=nonce,
        init_code=init_code,
        call_data=call_data,
        account_gas_limits=pack_uint128_pair(verification_gas_limit, call_gas_limit),
        pre_verification_gas=pre_verification_gas,
        gas_fees=pack_uint128_pair(max_priority_fee_per_gas, max_fee_per_gas),
        paymaster_and_data=paymaster_and_data,
        signature=signature,
    )


def entry_point_domain_separator(*, entry_point: str, chain_id: int) -> bytes:
    return keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                EIP712_DOMAIN_TYPEHASH,
                keccak(text=ENTRY_POINT_DOMAIN_NAME),
                keccak(text=ENTRY_POINT_DOMAIN_VERSION),
                chain_id,
                to_checksum_address(entry_point),
            ],
        )
    )


def user_operation_hash(op: PackedUserOperation, *, entry_point: str, chain_id: int) -> bytes:
    """EntryPoint v0.8 `getUserOpHash`: the EIP-712 hash the account's signer signs (32 bytes).

    (The EntryPoint's EIP-7702 initCode rule, for 0x7702-prefixed initCode, is not supported here.)
    """
    if op.init_code[:2] == b"\x77\x02":
        raise ValueError("EIP-7702 initCode is not supported")
    struct_hash = keccak(
        encode(
            [
                "bytes32",
                "address",
                "uint256",
                "bytes32",
                "bytes32",
                "bytes32",
                "uint256",
                "bytes32",
                "bytes32",
            ],
            [
                PACKED_USER_OP_TYPEHASH,
                op.sender,
                op.nonce,
                keccak(op.init_code),
                keccak(op.call_data),
                op.account_gas_limits,
                op.pre_verification_gas,
                op.gas_fees,
                keccak(op.paymaster_and_data),
            ],
        )
    )
    separator = entry_point_domain_separator(entry_point=entry_point, chain_id=chain_id)
    return keccak(b"\x19\x01" + separator + struct_hash)


def nonce(*, key: int = 0, sequence: int) -> int:
    """The 256-bit EntryPoint nonce from a 192-bit key and 64-bit sequence."""
    return (key << 64) | sequence


# --- ModularSmartAccount call data -------------------------------------------------------------

EXECUTE_SELECTOR = keccak(text="execute(bytes32,bytes)")[:4]
INITIALIZE_ACCOUNT_SELECTOR = keccak(text="initializeAccount(address[],bytes[])")[:4]
DEPLOY_ACCOUNT_SELECTOR = keccak(text="deployAccount(bytes32,bytes)")[:4]
MODE_SINGLE = b"\x00" * 32
MODE_BATCH = b"\x01" + b"\x00" * 31


@dataclass(frozen=True, kw_only=True)
class Call:
    target: str
    value: int = 0
    data: bytes = b""


def execute_call_data(*, target: str, value: int = 0, data: bytes = b"") -> bytes:
    """`execute(mode single, target ‖ value ‖ data)` on the account."""
    execution = bytes.fromhex(to_checksum_address(target)[2:]) + value.to_bytes(32, "big") + data
    return EXECUTE_SELECTOR + encode(["bytes32", "bytes"], [MODE_SINGLE, execution])


def execute_batch_call_data(*, calls: Sequence[Call]) -> bytes:
    """`execute(mode batch, abi.encode(Execution[]))` on the account."""
    execution = encode(
        ["(address,uint256,bytes)[]"],
        [[(to_checksum_address(c.target), c.value, c.data) for c in calls]],
    )
    return EXECUTE_SELECTOR + encode(["bytes32", "bytes"], [MODE_BATCH, execution])


def initialize_account_data(*, modules: Sequence[str], data: Sequence[bytes]) -> bytes:
    """`initializeAccount(modules, data)`: the factory's initData."""
    if len(modules) != len(data):
        raise ValueError("one data entry per module")
    return INITIALIZE_ACCOUNT_SELECTOR + encode(
        ["address[]", "bytes[]"], [[to_checksum_address(m) for m in modules], list(data)]
    )


def webauthn_install_data(
    *, credential_id: bytes, public_key: tuple[int, int], origin: str
) -> bytes:
    """WebAuthnValidator onInstall data: abi.encode(bytes credentialId, bytes32[2] key, string)."""
    x, y = public_key
    return encode(
        ["bytes", "bytes32[2]", "string"],
        [credential_id, [x.to_bytes(32, "big"), y.to_bytes(32, "big")], origin],
    )


def deploy_account_init_code(*, factory: str, salt: bytes, init_data: bytes) -> bytes:
    """ERC-4337 initCode that deploys the account through MSAFactory.deployAccount."""
    call = DEPLOY_ACCOUNT_SELECTOR + encode(["bytes32", "bytes"], [salt, init_data])
    return bytes.fromhex(to_checksum_address(factory)[2:]) + call


def predict_account_address(*, factory: str, beacon: str, salt: bytes, init_data: bytes) -> str:
    """The address MSAFactory.deployAccount(salt, init_data) deploys to, whoever calls it.

    Same as the factory's `predictAccountAddress` view, without a chain call: CREATE2 of an
    AccountProxy(beacon, init_data) (the committed artifact's creation code).
    """
    init_code = artifacts.bytecode("AccountProxy") + encode(
        ["address", "bytes"], [to_checksum_address(beacon), init_data]
    )
    digest = keccak(
        b"\xff" + bytes.fromhex(to_checksum_address(factory)[2:]) + salt + keccak(init_code)
    )
    return to_checksum_address(digest[12:])


# --- SponsorPaymaster ------------------------------------------------------------------------

PAYMASTER_DATA_OFFSET = 52
SPONSOR_SIGNATURE_LENGTH = 65


def required_prefund(op: PackedUserOperation) -> int:
    """The EntryPoint's required prefund of `op`: every gas limit times maxFeePerGas (wei).

    `op.paymaster_and_data` must already hold the paymaster's two gas limits, if any.
    """
    return total_gas_limit(op) * op.max_fee_per_gas


def total_gas_limit(op: PackedUserOperation) -> int:
    """Every gas limit of `op` (its paymaster's two included, when it has one)."""
    paymaster_gas = op.paymaster_and_data[20:PAYMASTER_DATA_OFFSET]
    paymaster_limits = (
        int.from_bytes(paymaster_gas[:16], "big") + int.from_bytes(paymaster_gas[16:], "big")
        if len(paymaster_gas) == 32
        else 0
    )
    return (
        op.verification_gas_limit + op.call_gas_limit + paymaster_limits + op.pre_verification_gas
    )


def sponsor_hash(
    op: PackedUserOperation,
    *,
    paymaster: str,
    chain_id: int,
    valid_until: int,
    valid_after: int,
    max_cost: int,
) -> bytes:
    """SponsorPaymaster.getHash: what the sponsor key signs (as an EIP-191 message).

    The sponsor signs the account, nonce, initCode and callData, the window and `max_cost`, the
    most wei the operation may cost (the paymaster refuses an operation whose gas limits and
    maxFeePerGas could cost more); gas limits and fees themselves are bounded by that cap.
    """
    return keccak(
        encode(
            [
                "address",
                "uint256",
                "bytes32",
                "bytes32",
                "uint256",
                "address",
                "uint48",
                "uint48",
                "uint128",
            ],
            [
                op.sender,
                op.nonce,
                keccak(op.init_code),
                keccak(op.call_data),
                chain_id,
                to_checksum_address(paymaster),
                valid_until,
                valid_after,
                max_cost,
            ],
        )
    )


def sponsor_user_operation(
    op: PackedUserOperation,
    *,
    paymaster: str,
    sponsor_key: str,
    chain_id: int,
    valid_until: int,
    valid_after: int = 0,
    verification_gas_limit: int = 60_000,
    post_op_gas_limit: int = 0,
    max_cost: int | None = None,
) -> PackedUserOperation:
    """Return `op` with paymasterAndData signed by the sponsor key for the window [after, until]
    and a cost cap: `max_cost` wei, by default exactly what `op`'s gas limits and fee allow.

    Sign the user operation (userOpHash) only after this: the hash covers paymasterAndData.
    """
    if not (0 <= valid_after <= UINT48_MAX and 0 <= valid_until <= UINT48_MAX):
        raise ValueError("validity window must fit in uint48")
    head = bytes.fromhex(to_checksum_address(paymaster)[2:]) + pack_uint128_pair(
        verification_gas_limit, post_op_gas_limit
    )
    unsigned = op.with_changes(paymaster_and_data=head)
    cap = required_prefund(unsigned) if max_cost is None else max_cost
    if not 0 <= cap <= UINT128_MAX:
        raise ValueError("max_cost must fit in uint128")
    digest = sponsor_hash(
        unsigned,
        paymaster=paymaster,
        chain_id=chain_id,
        valid_until=valid_until,
        valid_after=valid_after,
        max_cost=cap,
    )
    signature = Account.sign_message(
        encode_defunct(primitive=digest), private_key=sponsor_key
    ).signature
    data = valid_until.to_bytes(6, "big") + valid_after.to_bytes(6, "big") + cap.to_bytes(16, "big")
    return op.with_changes(paymaster_and_data=head + data + bytes(signature))
