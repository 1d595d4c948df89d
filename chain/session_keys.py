"""Session keys on chain (SessionKeyValidator, ZKsync SSO's interface): the SessionSpec types, their
ABI encoding and hash, the creation proof, the session user-operation signature and nonce, and the
account call data that installs the validator, creates and revokes sessions.

Pure (no chain access). Numbers are ints (wei, seconds); addresses are EIP-55 checksummed.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode, encode
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from chain import userops

UINT48_MAX = 2**48 - 1
UINT256_MAX = 2**256 - 1
MODULE_TYPE_VALIDATOR = 1
MIN_SESSION_LIFETIME = 60  # seconds: expiresAt ≥ now + 60 at creation


class Status(enum.IntEnum):
    NOT_INITIALIZED = 0
    ACTIVE = 1
    CLOSED = 2


class LimitType(enum.IntEnum):
    UNLIMITED = 0
    LIFETIME = 1
    ALLOWANCE = 2


class Condition(enum.IntEnum):
    UNCONSTRAINED = 0
    EQUAL = 1
    GREATER = 2
    LESS = 3
    GREATER_OR_EQUAL = 4
    LESS_OR_EQUAL = 5
    NOT_EQUAL = 6


USAGE_LIMIT = "(uint8,uint256,uint48)"
CONSTRAINT = f"(uint8,uint64,bytes32,{USAGE_LIMIT})"
CALL_SPEC = f"(address,bytes4,uint256,{USAGE_LIMIT},{CONSTRAINT}[])"
TRANSFER_SPEC = f"(address,uint256,{USAGE_LIMIT})"
SESSION_SPEC = f"(address,uint48,{USAGE_LIMIT},{CALL_SPEC}[],{TRANSFER_SPEC}[])"
LIMIT_STATE = "(uint256,address,bytes4,uint256)"
SESSION_STATE = f"(uint8,uint256,{LIMIT_STATE}[],{LIMIT_STATE}[],{LIMIT_STATE}[])"

CREATE_SESSION_SELECTOR = keccak(text=f"createSession({SESSION_SPEC},bytes)")[:4]
REVOKE_KEY_SELECTOR = keccak(text="revokeKey(bytes32)")[:4]
REVOKE_KEYS_SELECTOR = keccak(text="revokeKeys(bytes32[])")[:4]
INSTALL_MODULE_SELECTOR = keccak(text="installModule(uint256,address,bytes)")[:4]


@dataclass(frozen=True, kw_only=True)
class UsageLimit:
    limit_type: LimitType = LimitType.UNLIMITED
    limit: int = 0
    period: int = 0  # seconds, for ALLOWANCE

    def as_tuple(self) -> tuple[int, int, int]:
        return (int(self.limit_type), self.limit, self.period)

    @classmethod
    def from_tuple(cls, value: Sequence[Any]) -> UsageLimit:
        return cls(limit_type=LimitType(value[0]), limit=int(value[1]), period=int(value[2]))


UNLIMITED = UsageLimit()


def lifetime(limit: int) -> UsageLimit:
    return UsageLimit(limit_type=LimitType.LIFETIME, limit=limit)


def allowance(limit: int, period: int) -> UsageLimit:
    return UsageLimit(limit_type=LimitType.ALLOWANCE, limit=limit, period=period)


@dataclass(frozen=True, kw_only=True)
class Constraint:
    condition: Condition = Condition.UNCONSTRAINED
    index: int = 0  # the 32-byte argument word: at 4 + 32·index in the call data
    ref_value: bytes = b"\x00" * 32
    limit: UsageLimit = UNLIMITED

    def as_tuple(self) -> tuple[Any, ...]:
        return (int(self.condition), self.index, self.ref_value, self.limit.as_tuple())

    @classmethod
    def from_tuple(cls, value: Sequence[Any]) -> Constraint:
        return cls(
            condition=Condition(value[0]),
            index=int(value[1]),
            ref_value=bytes(value[2]),
            limit=UsageLimit.from_tuple(value[3]),
        )


@dataclass(frozen=True, kw_only=True)
class CallSpec:
    target: str
    selector: bytes
    max_value_per_use: int = 0
    value_limit: UsageLimit = UNLIMITED
    constraints: tuple[Constraint, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", to_checksum_address(self.target))
        if len(self.selector) != 4:
            raise ValueError("a selector is 4 bytes")

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.target,
            self.selector,
            self.max_value_per_use,
            self.value_limit.as_tuple(),
            [c.as_tuple() for c in self.constraints],
        )

    @classmethod
    def from_tuple(cls, value: Sequence[Any]) -> CallSpec:
        return cls(
            target=value[0],
            selector=bytes(value[1]),
            max_value_per_use=int(value[2]),
            value_limit=UsageLimit.from_tuple(value[3]),
            constraints=tuple(Constraint.from_tuple(c) for c in value[4]),
        )


@dataclass(frozen=True, kw_only=True)
class TransferSpec:
    target: str
    max_value_per_use: int = 0
    value_limit: UsageLimit = UNLIMITED

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", to_checksum_address(self.target))

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.target, self.max_value_per_use, self.value_limit.as_tuple())

    @classmethod
    def from_tuple(cls, value: Sequence[Any]) -> TransferSpec:
        return cls(
            target=value[0],
            max_value_per_use=int(value[1]),
            value_limit=UsageLimit.from_tuple(value[2]),
        )


@dataclass(frozen=True, kw_only=True)
class SessionSpec:
    signer: str
    expires_at: int
    fee_limit: UsageLimit
    call_policies: tuple[CallSpec, ...] = ()
    transfer_policies: tuple[TransferSpec, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "signer", to_checksum_address(self.signer))

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.signer,
            self.expires_at,
            self.fee_limit.as_tuple(),
            [c.as_tuple() for c in self.call_policies],
            [t.as_tuple() for t in self.transfer_policies],
        )

    @classmethod
    def from_tuple(cls, value: Sequence[Any]) -> SessionSpec:
        return cls(
            signer=value[0],
            expires_at=int(value[1]),
            fee_limit=UsageLimit.from_tuple(value[2]),
            call_policies=tuple(CallSpec.from_tuple(c) for c in value[3]),
            transfer_policies=tuple(TransferSpec.from_tuple(t) for t in value[4]),
        )

    def encode(self) -> bytes:
        """abi.encode(spec): a dynamic tuple, so it starts with the 0x20 offset word."""
        return encode([SESSION_SPEC], [self.as_tuple()])

    @classmethod
    def decode(cls, data: bytes) -> SessionSpec:
        (value,) = decode([SESSION_SPEC], data)
        return cls.from_tuple(value)

    @property
    def session_hash(self) -> bytes:
        return keccak(self.encode())


@dataclass(frozen=True, kw_only=True)
class LimitState:
    remaining: int
    target: str
    selector: bytes
    index: int


@dataclass(frozen=True, kw_only=True)
class SessionState:
    """`sessionState(account, spec)`: what is left of each limit now (current allowance periods)."""

    status: Status
    fees_remaining: int
    transfer_value: tuple[LimitState, ...] = ()
    call_value: tuple[LimitState, ...] = ()
    call_params: tuple[LimitState, ...] = ()

    @classmethod
    def from_tuple(cls, value: Sequence[Any]) -> SessionState:
        def states(items: Sequence[Any]) -> tuple[LimitState, ...]:
            return tuple(
                LimitState(
                    remaining=int(i[0]),
                    target=to_checksum_address(i[1]),
                    selector=bytes(i[2]),
                    index=int(i[3]),
                )
                for i in items
            )

        return cls(
            status=Status(value[0]),
            fees_remaining=int(value[1]),
            transfer_value=states(value[2]),
            call_value=states(value[3]),
            call_params=states(value[4]),
        )


# --- proofs, signatures, nonces ---------------------------------------------------------------


def proof_digest(*, session_hash: bytes, account: str) -> bytes:
    """What the session signer signs (raw, no EIP-191 prefix) to prove it holds the key."""
    return keccak(encode(["bytes32", "address"], [session_hash, to_checksum_address(account)]))


def session_proof(*, spec: SessionSpec, account: str, signer_key: str | bytes) -> bytes:
    """The createSession proof: the signer's 65-byte r ‖ s ‖ v over proof_digest."""
    digest = proof_digest(session_hash=spec.session_hash, account=account)
    return bytes(Account.unsafe_sign_hash(digest, signer_key).signature)


def nonce_key(signer: str) -> int:
    """The EntryPoint nonce key of a session's user operations: uint192(uint160(signer))."""
    return int(to_checksum_address(signer), 16)


def session_nonce(*, signer: str, sequence: int) -> int:
    return userops.nonce(key=nonce_key(signer), sequence=sequence)


def period_id(limit: UsageLimit, *, now: int) -> int:
    """The current period of an Allowance limit (any value does for the other types)."""
    if limit.limit_type != LimitType.ALLOWANCE or limit.period == 0:
        return 0
    return now // limit.period


def encode_session_signature(
    *, validator: str, signature: bytes, spec: SessionSpec, period_ids: Sequence[int]
) -> bytes:
    """userOp.signature = validator (20 bytes) ‖ abi.encode(bytes sig, SessionSpec, uint48[]
    periodIds)."""
    payload = encode(
        ["bytes", SESSION_SPEC, "uint48[]"], [signature, spec.as_tuple(), list(period_ids)]
    )
    return bytes.fromhex(to_checksum_address(validator)[2:]) + payload


def decode_session_signature(signature: bytes) -> tuple[str, bytes, SessionSpec, list[int]]:
    """(validator, ECDSA signature, spec, periodIds) of a session user operation's signature;
    ValueError when it is not one."""
    if len(signature) < 20:
        raise ValueError("too short for a validator address")
    try:
        sig, spec, period_ids = decode(["bytes", SESSION_SPEC, "uint48[]"], signature[20:])
    except Exception as exc:  # eth_abi raises several decoding errors
        raise ValueError(f"not a session signature: {exc}") from exc
    return (
        to_checksum_address(signature[:20]),
        bytes(sig),
        SessionSpec.from_tuple(spec),
        [int(i) for i in period_ids],
    )


def sign_session_operation(
    op: userops.PackedUserOperation,
    *,
    validator: str,
    spec: SessionSpec,
    signer_key: str | bytes,
    period_ids: Sequence[int],
    entry_point: str,
    chain_id: int,
) -> userops.PackedUserOperation:
    """`op` signed by the session key (raw ECDSA over the userOpHash)."""
    op_hash = userops.user_operation_hash(op, entry_point=entry_point, chain_id=chain_id)
    signature = bytes(Account.unsafe_sign_hash(op_hash, signer_key).signature)
    return op.with_changes(
        signature=encode_session_signature(
            validator=validator, signature=signature, spec=spec, period_ids=period_ids
        )
    )


# --- account call data ------------------------------------------------------------------------


def create_session_data(*, spec: SessionSpec, proof: bytes) -> bytes:
    """SessionKeyValidator.createSession(spec, proof) (called by the account)."""
    return CREATE_SESSION_SELECTOR + encode([SESSION_SPEC, "bytes"], [spec.as_tuple(), proof])


def revoke_keys_data(*, session_hashes: Sequence[bytes]) -> bytes:
    return REVOKE_KEYS_SELECTOR + encode(["bytes32[]"], [list(session_hashes)])


def create_session_call_data(*, validator: str, spec: SessionSpec, proof: bytes) -> bytes:
    """Account call data (execute, single) creating the session."""
    return userops.execute_call_data(
        target=validator, data=create_session_data(spec=spec, proof=proof)
    )


def revoke_keys_call_data(*, validator: str, session_hashes: Sequence[bytes]) -> bytes:
    return userops.execute_call_data(
        target=validator, data=revoke_keys_data(session_hashes=session_hashes)
    )


def install_validator_call_data(*, account: str, validator: str) -> bytes:
    """Account call data installing the SessionKeyValidator (type 1, empty init data): the account
    calls its own installModule through execute."""
    install = INSTALL_MODULE_SELECTOR + encode(
        ["uint256", "address", "bytes"],
        [MODULE_TYPE_VALIDATOR, to_checksum_address(validator), b""],
    )
    return userops.execute_call_data(target=account, data=install)
