"""Off-chain evaluation of session-key policies: the rules the SessionKeyValidator applies to a
session's user operation (ZKsync SSO §7.5), in the same order, so the portal can refuse an
operation with the rule it breaks before anything is sent, and can tell a person the most a
session can ever spend.

`evaluate_operation` mirrors validation exactly, given the session's usage now (`sessionState` read
from chain) and the time and base fee the operation would be validated at; the first failing rule
comes back as a `Refusal` with a stable `code` (for APIs) and the chain's own error name (`error`).
`maximum_spend` bounds what a session can move per token over its whole life.

Pure functions: no chain or database access here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_utils import keccak, to_checksum_address

from chain import userops
from chain.session_keys import (
    UINT48_MAX,
    CallSpec,
    Condition,
    LimitType,
    SessionSpec,
    SessionState,
    Status,
    TransferSpec,
    UsageLimit,
    nonce_key,
    period_id,
)

EXECUTE_SELECTOR = keccak(text="execute(bytes32,bytes)")[:4]
NATIVE = "native"

# ERC-20 functions that move or expose the account's tokens, and the argument word of the amount.
TOKEN_AMOUNT_ARGUMENT: dict[bytes, int] = {
    keccak(text="transfer(address,uint256)")[:4]: 1,
    keccak(text="approve(address,uint256)")[:4]: 1,
    keccak(text="increaseAllowance(address,uint256)")[:4]: 1,
    keccak(text="transferFrom(address,address,uint256)")[:4]: 2,
}


@dataclass(frozen=True)
class Refusal:
    """The first rule an operation breaks.

    `code`: stable, machine-readable (API `code`); `error`: what the chain reports — the validator's
    custom error name, `Panic`, `Revert` (no data), or the EntryPoint's `AA22`/`AA24`; `detail`:
    words for a person; `args`: the error's arguments as the chain would give them.
    """

    code: str
    error: str
    detail: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Operation:
    """What validation looks at in a session user operation."""

    call_data: bytes
    nonce: int | None = None  # None: not checked (the caller builds the nonce itself)
    sponsored: bool = False  # paymasterAndData non-empty: no fee accounting
    pre_verification_gas: int = 0
    verification_gas_limit: int = 0
    call_gas_limit: int = 0
    max_fee_per_gas: int = 0
    max_priority_fee_per_gas: int = 0
    signature: bytes | None = (
        None  # the session ECDSA signature, checked when user_op_hash is given
    )
    user_op_hash: bytes | None = None

    @classmethod
    def from_user_operation(
        cls,
        op: userops.PackedUserOperation,
        *,
        signature: bytes | None = None,
        user_op_hash: bytes | None = None,
    ) -> Operation:
        return cls(
            call_data=op.call_data,
            nonce=op.nonce,
            sponsored=bool(op.paymaster_and_data),
            pre_verification_gas=op.pre_verification_gas,
            verification_gas_limit=op.verification_gas_limit,
            call_gas_limit=op.call_gas_limit,
            max_fee_per_gas=op.max_fee_per_gas,
            max_priority_fee_per_gas=op.max_priority_fee_per_gas,
            signature=signature,
            user_op_hash=user_op_hash,
        )

    def fee(self, *, base_fee: int) -> int:
        gas_price = min(self.max_fee_per_gas, self.max_priority_fee_per_gas + base_fee)
        return gas_price * (
            self.pre_verification_gas + self.verification_gas_limit + self.call_gas_limit
        )


@dataclass
class _Range:
    valid_after: int = 0
    valid_until: int = UINT48_MAX


@dataclass(frozen=True)
class Evaluation:
    """The verdict: `refusal` is None when validation would pass; then `valid_after`/`valid_until`
    is the window the operation is valid in and `charges` what it uses of each limit."""

    refusal: Refusal | None
    valid_after: int = 0
    valid_until: int = 0
    charges: dict[str, int] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.refusal is None


class _Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal


def _refuse(code: str, error: str, detail: str, *args: Any) -> _Refused:
    return _Refused(Refusal(code=code, error=error, detail=detail, args=args))


def _use(
    limit: UsageLimit,
    *,
    value: int,
    remaining: int,
    now: int,
    window: _Range,
    code: str,
    what: str,
) -> None:
    """Charge `value` against a limit with `remaining` left now, narrowing the window, or refuse."""
    if limit.limit_type == LimitType.UNLIMITED:
        return
    used = limit.limit - remaining
    if value > remaining:
        if limit.limit_type == LimitType.LIFETIME:
            raise _refuse(
                code,
                "LifetimeUsageExceeded",
                f"{what}: {value} is more than the {remaining} left of {limit.limit} "
                "for the session",
                used,
                limit.limit,
            )
        period = period_id(limit, now=now)
        raise _refuse(
            code,
            "AllowanceExceeded",
            f"{what}: {value} is more than the {remaining} left of {limit.limit} "
            f"in this period of {limit.period} s",
            used,
            limit.limit,
            period,
        )
    if limit.limit_type == LimitType.ALLOWANCE:
        if limit.period == 0:
            raise _refuse(
                "zero_period",
                "Panic",
                f"{what}: an allowance with a zero period can never be used",
                0x11,
            )
        period = period_id(limit, now=now)
        start = period * limit.period
        end = (period + 1) * limit.period - 1
        if end > UINT48_MAX:
            raise _refuse("period_overflow", "Panic", f"{what}: the period overflows", 0x11)
        window.valid_after = max(window.valid_after, start)
        window.valid_until = min(window.valid_until, end)
        if window.valid_after > window.valid_until:
            raise _refuse(
                "empty_time_range",
                "EmptyTimeRange",
                "the operation's periods and the session's expiry leave no time it is valid in",
            )


def _satisfies(condition: Condition, param: int, ref: int) -> bool:
    return {
        Condition.UNCONSTRAINED: True,
        Condition.EQUAL: param == ref,
        Condition.GREATER: param > ref,
        Condition.LESS: param < ref,
        Condition.GREATER_OR_EQUAL: param >= ref,
        Condition.LESS_OR_EQUAL: param <= ref,
        Condition.NOT_EQUAL: param != ref,
    }[condition]


def decode_single_call(call_data: bytes) -> userops.Call:
    """The one call of an account `execute(single mode, target ‖ value ‖ data)` in its canonical
    encoding, refused as the validator refuses anything else (rules 6-11)."""
    if len(call_data) < 6:
        raise _refuse("malformed_call_data", "Revert", "the call data is too short")
    selector, call_type, exec_type = call_data[:4], call_data[4], call_data[5]
    if call_type != 0x00:
        raise _refuse(
            "invalid_call_type",
            "InvalidCallType",
            "a session may only make a single call (no batch, no delegatecall)",
            bytes([call_type]),
            b"\x00",
        )
    if exec_type not in (0x00, 0x01):
        raise _refuse(
            "invalid_exec_type", "InvalidExecType", "unknown execution type", bytes([exec_type])
        )
    if selector != EXECUTE_SELECTOR:
        raise _refuse(
            "invalid_top_level_selector",
            "InvalidTopLevelSelector",
            "a session may only call the account's execute(bytes32,bytes)",
            selector,
            EXECUTE_SELECTOR,
        )
    if len(call_data) < 68:
        raise _refuse("malformed_call_data", "Revert", "the call data is too short")
    if int.from_bytes(call_data[36:68], "big") != 0x40:
        raise _refuse("invalid_data", "InvalidData", "the call data is not canonically encoded")
    if len(call_data) < 100:
        raise _refuse("malformed_call_data", "Revert", "the call data is too short")
    length = int.from_bytes(call_data[68:100], "big")
    if 100 + length > len(call_data):
        raise _refuse("malformed_call_data", "Revert", "the call data is shorter than it says")
    execution = call_data[100 : 100 + length]
    if len(execution) < 52:
        raise _refuse("decoding_error", "DecodingError", "the execution data is too short")
    return userops.Call(
        target=to_checksum_address(execution[:20]),
        value=int.from_bytes(execution[20:52], "big"),
        data=execution[52:],
    )


def _param_state_index(spec: SessionSpec, policy_index: int, position: int) -> int:
    """Where sessionState.callParams holds constraint `position` of call policy `policy_index`."""
    index = 0
    for i, policy in enumerate(spec.call_policies):
        for j, constraint in enumerate(policy.constraints):
            if i == policy_index and j == position:
                return index
            if constraint.limit.limit_type != LimitType.UNLIMITED:
                index += 1
    raise IndexError(position)


def expected_period_ids(spec: SessionSpec, call: userops.Call, *, now: int) -> list[int]:
    """The periodIds a session op for `call` must carry at time `now` (fee, value, constraints)."""
    ids = [period_id(spec.fee_limit, now=now)]
    if len(call.data) >= 4:
        matched = first_call_policy(spec, call.target, call.data[:4])
        if matched is not None:
            policy = spec.call_policies[matched]
            return [
                *ids,
                period_id(policy.value_limit, now=now),
                *(period_id(c.limit, now=now) for c in policy.constraints),
            ]
    else:
        transfer = first_transfer_policy(spec, call.target)
        if transfer is not None:
            return [*ids, period_id(spec.transfer_policies[transfer].value_limit, now=now)]
    return [*ids, 0]


def first_call_policy(spec: SessionSpec, target: str, selector: bytes) -> int | None:
    target = to_checksum_address(target)
    for i, policy in enumerate(spec.call_policies):
        if policy.target == target and policy.selector == selector:
            return i
    return None


def first_transfer_policy(spec: SessionSpec, target: str) -> int | None:
    target = to_checksum_address(target)
    for i, policy in enumerate(spec.transfer_policies):
        if policy.target == target:
            return i
    return None


def evaluate_operation(
    *,
    spec: SessionSpec,
    operation: Operation,
    state: SessionState,
    now: int,
    base_fee: int,
    period_ids: Sequence[int] | None = None,
) -> Evaluation:
    """The validator's verdict on `operation` under `spec`, validated at `now` with `base_fee`,
    given `state` (sessionState at `now`). Rules in the validator's order, then the EntryPoint's
    time check. `period_ids`, when given, must be the current ones (anything else is refused here,
    stricter than the chain, which could only refuse it or charge another period).
    """
    window = _Range(valid_after=0, valid_until=spec.expires_at)
    charges: dict[str, int] = {}
    try:
        if int(spec.signer, 16) == 0:
            raise _refuse("zero_signer", "ZeroSigner", "the session has no signer")
        if operation.nonce is not None:
            key = operation.nonce >> 64
            if key != nonce_key(spec.signer):
                raise _refuse(
                    "invalid_nonce_key",
                    "InvalidNonceKey",
                    "the nonce key must be the session signer's address",
                    key,
                    nonce_key(spec.signer),
                )
        if state.status != Status.ACTIVE:
            raise _refuse(
                "session_not_active",
                "SessionNotActive",
                "the session does not exist or was revoked",
            )
        call = decode_single_call(operation.call_data)
        if period_ids is not None and list(period_ids) != expected_period_ids(spec, call, now=now):
            raise _refuse(
                "period_ids_mismatch", "AA22", "the operation's period ids are not the current ones"
            )
        if len(call.data) >= 4:
            _check_call(spec, call, state=state, now=now, window=window, charges=charges)
        else:
            _check_transfer(spec, call, state=state, now=now, window=window, charges=charges)
        if operation.user_op_hash is not None and not _signed_by(operation, spec.signer):
            raise _refuse(
                "invalid_signature", "AA24", "the operation is not signed by the session key"
            )
        if not operation.sponsored:
            fee = operation.fee(base_fee=base_fee)
            _use(
                spec.fee_limit,
                value=fee,
                remaining=state.fees_remaining,
                now=now,
                window=window,
                code="fee_limit_exceeded",
                what="fee",
            )
            charges["fee"] = fee
        if window.valid_until == 0:
            raise _refuse(
                "empty_time_range",
                "EmptyTimeRange",
                "the operation's periods leave no time it is valid in",
            )
        if now > window.valid_until:
            if now > spec.expires_at:
                raise _refuse("session_expired", "AA22", "the session has expired")
            raise _refuse("period_over", "AA22", "the operation's allowance period is over")
        if now <= window.valid_after:
            raise _refuse("not_due", "AA22", "the operation's allowance period has not started")
    except _Refused as refused:
        return Evaluation(refusal=refused.refusal)
    return Evaluation(
        refusal=None,
        valid_after=window.valid_after,
        valid_until=window.valid_until,
        charges=charges,
    )


def _signed_by(operation: Operation, signer: str) -> bool:
    signature = operation.signature or b""
    if len(signature) != 65 or operation.user_op_hash is None or signature[64] not in (27, 28):
        return False
    s = int.from_bytes(signature[32:64], "big")
    if s > 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0:
        return False
    try:
        recovered = Account._recover_hash(operation.user_op_hash, signature=signature)
    except Exception:
        return False
    return bool(recovered == to_checksum_address(signer))


def _check_call(
    spec: SessionSpec,
    call: userops.Call,
    *,
    state: SessionState,
    now: int,
    window: _Range,
    charges: dict[str, int],
) -> None:
    selector = call.data[:4]
    matched = first_call_policy(spec, call.target, selector)
    if matched is None:
        raise _refuse(
            "call_policy_violated",
            "CallPolicyViolated",
            f"the session may not call {selector.hex()} on {call.target}",
            call.target,
            selector,
        )
    policy: CallSpec = spec.call_policies[matched]
    if call.value > policy.max_value_per_use:
        raise _refuse(
            "max_value_exceeded",
            "MaxValueExceeded",
            f"{call.value} wei is more than the {policy.max_value_per_use} allowed per call",
            call.value,
            policy.max_value_per_use,
        )
    _use(
        policy.value_limit,
        value=call.value,
        remaining=state.call_value[matched].remaining,
        now=now,
        window=window,
        code="value_limit_exceeded",
        what="value",
    )
    charges["value"] = call.value
    for position, constraint in enumerate(policy.constraints):
        offset = 4 + 32 * constraint.index
        if len(call.data) < offset + 32:
            raise _refuse(
                "invalid_data_length",
                "InvalidDataLength",
                f"argument {constraint.index} is missing from the call",
                len(call.data),
                offset + 32,
            )
        word = call.data[offset : offset + 32]
        param = int.from_bytes(word, "big")
        if not _satisfies(constraint.condition, param, int.from_bytes(constraint.ref_value, "big")):
            raise _refuse(
                "condition_violated",
                "ConditionViolated",
                f"argument {constraint.index} breaks its rule "
                f"({constraint.condition.name.lower()})",
                word,
                constraint.ref_value,
                int(constraint.condition),
            )
        remaining = (
            state.call_params[_param_state_index(spec, matched, position)].remaining
            if constraint.limit.limit_type != LimitType.UNLIMITED
            else 0
        )
        _use(
            constraint.limit,
            value=param,
            remaining=remaining,
            now=now,
            window=window,
            code="parameter_limit_exceeded",
            what=f"argument {constraint.index}",
        )
        charges[f"param{position}"] = param


def _check_transfer(
    spec: SessionSpec,
    call: userops.Call,
    *,
    state: SessionState,
    now: int,
    window: _Range,
    charges: dict[str, int],
) -> None:
    if call.data:
        raise _refuse(
            "invalid_data_length",
            "InvalidDataLength",
            "a transfer carries no call data",
            len(call.data),
            0,
        )
    matched = first_transfer_policy(spec, call.target)
    if matched is None:
        raise _refuse(
            "transfer_policy_violated",
            "TransferPolicyViolated",
            f"the session may not send value to {call.target}",
            call.target,
        )
    policy: TransferSpec = spec.transfer_policies[matched]
    if call.value > policy.max_value_per_use:
        raise _refuse(
            "max_value_exceeded",
            "MaxValueExceeded",
            f"{call.value} wei is more than the {policy.max_value_per_use} allowed per transfer",
            call.value,
            policy.max_value_per_use,
        )
    _use(
        policy.value_limit,
        value=call.value,
        remaining=state.transfer_value[matched].remaining,
        now=now,
        window=window,
        code="value_limit_exceeded",
        what="value",
    )
    charges["value"] = call.value


# --- what a session can spend at most ---------------------------------------------------------


def usable_periods(limit: UsageLimit, *, now: int, expires_at: int) -> int:
    """How many periods of an Allowance a session can still use between `now` and its expiry.

    An op in period p is valid only for p·P < t ≤ min((p+1)·P - 1, expiry), so a period of 1 s (or
    0) is never usable, and a period starting at the expiry second is not either.
    """
    period = limit.period
    if period < 2 or now > expires_at:
        return 0
    first = now // period
    last = (expires_at - 1) // period
    return max(0, last - first + 1)


def limit_total(limit: UsageLimit, *, now: int, expires_at: int) -> int | None:
    """The most a limit lets through over the rest of the session (None: no bound)."""
    if now > expires_at:
        return 0
    if limit.limit_type == LimitType.UNLIMITED:
        return None
    if limit.limit_type == LimitType.LIFETIME:
        return limit.limit
    return limit.limit * usable_periods(limit, now=now, expires_at=expires_at)


def _min_bound(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _add_bound(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def _per_use_cap(condition: Condition, ref: int) -> int | None:
    if condition == Condition.EQUAL or condition == Condition.LESS_OR_EQUAL:
        return ref
    if condition == Condition.LESS:
        return max(0, ref - 1)
    return None


def maximum_spend(spec: SessionSpec, *, now: int) -> dict[str, int | None]:
    """For each token, the most the session can move out of the account from `now` until it
    expires: native value (key `native`) through every reachable transfer and call policy, and
    ERC-20 amounts (key = token address) through transfer/approve/increaseAllowance/transferFrom
    calls. Periods are counted (an allowance of L per P over the session is L x usable periods),
    a per-use cap of zero makes a policy spend nothing, and None means no bound at all. Only the
    first policy for a target (and selector) is reachable; later duplicates add nothing.
    """
    totals: dict[str, int | None] = {NATIVE: 0}
    expires = spec.expires_at

    def add(token: str, amount: int | None) -> None:
        totals[token] = _add_bound(totals.get(token, 0), amount)

    seen_transfers: set[str] = set()
    for transfer in spec.transfer_policies:
        if transfer.target in seen_transfers:
            continue
        seen_transfers.add(transfer.target)
        cap = transfer.max_value_per_use
        add(
            NATIVE,
            0 if cap == 0 else limit_total(transfer.value_limit, now=now, expires_at=expires),
        )

    seen_calls: set[tuple[str, bytes]] = set()
    for policy in spec.call_policies:
        key = (policy.target, policy.selector)
        if key in seen_calls:
            continue
        seen_calls.add(key)
        cap = policy.max_value_per_use
        add(NATIVE, 0 if cap == 0 else limit_total(policy.value_limit, now=now, expires_at=expires))
        argument = TOKEN_AMOUNT_ARGUMENT.get(policy.selector)
        if argument is None:
            continue
        total: int | None = None
        per_use: int | None = None
        for constraint in policy.constraints:
            if constraint.index != argument:
                continue
            ref = int.from_bytes(constraint.ref_value, "big")
            per_use = _min_bound(per_use, _per_use_cap(constraint.condition, ref))
            total = _min_bound(total, limit_total(constraint.limit, now=now, expires_at=expires))
        if now > expires or per_use == 0:
            total = 0
        add(policy.target, total)
    return totals


def maximum_fees(spec: SessionSpec, *, now: int) -> int | None:
    """The most the session can pay in gas fees itself (operations without a paymaster)."""
    return limit_total(spec.fee_limit, now=now, expires_at=spec.expires_at)
