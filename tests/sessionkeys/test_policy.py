"""The off-chain evaluator on its own: stable codes for each rule, the order they apply in, and the
maximum a session can spend (its agreement with the chain is tests/chain/test_session_parity.py)."""

from typing import Any

from eth_abi import encode
from eth_utils import keccak

from chain import userops
from chain.session_keys import (
    UNLIMITED,
    CallSpec,
    Condition,
    Constraint,
    LimitState,
    SessionSpec,
    SessionState,
    Status,
    TransferSpec,
    UsageLimit,
    allowance,
    lifetime,
    nonce_key,
)
from sessionkeys import policy

SIGNER = "0x00000000000000000000000000000000000051Fe"
TOKEN = "0x000000000000000000000000000000000000700c"
DAPP = "0x0000000000000000000000000000000000000DA9"
RECIPIENT = "0x000000000000000000000000000000000000bEEF"
TRANSFER = keccak(text="transfer(address,uint256)")[:4]
APPROVE = keccak(text="approve(address,uint256)")[:4]
NOW = 1_800_000_000
DAY = 86_400


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def spec(**fields: object) -> SessionSpec:
    values: dict[str, object] = {
        "signer": SIGNER,
        "expires_at": NOW + 7 * DAY,
        "fee_limit": lifetime(10**16),
    }
    values.update(fields)
    return SessionSpec(**values)  # type: ignore[arg-type]


def fresh_state(s: SessionSpec) -> SessionState:
    """sessionState of a just-created session: every limit untouched."""

    def left(limit: UsageLimit) -> int:
        return 2**256 - 1 if limit.limit_type == 0 else limit.limit

    return SessionState(
        status=Status.ACTIVE,
        fees_remaining=left(s.fee_limit),
        transfer_value=tuple(
            LimitState(remaining=left(t.value_limit), target=t.target, selector=b"\0" * 4, index=0)
            for t in s.transfer_policies
        ),
        call_value=tuple(
            LimitState(remaining=left(c.value_limit), target=c.target, selector=c.selector, index=0)
            for c in s.call_policies
        ),
        call_params=tuple(
            LimitState(remaining=left(k.limit), target=c.target, selector=c.selector, index=k.index)
            for c in s.call_policies
            for k in c.constraints
            if k.limit.limit_type != 0
        ),
    )


def evaluate(
    s: SessionSpec,
    call: userops.Call,
    *,
    state: SessionState | None = None,
    now: int = NOW + 10,
    sponsored: bool = True,
    **op: object,
) -> policy.Evaluation:
    operation = policy.Operation(
        call_data=userops.execute_call_data(target=call.target, value=call.value, data=call.data),
        nonce=(nonce_key(s.signer) << 64),
        sponsored=sponsored,
        **op,  # type: ignore[arg-type]
    )
    return policy.evaluate_operation(
        spec=s, operation=operation, state=state or fresh_state(s), now=now, base_fee=10**9
    )


def code(evaluation: policy.Evaluation) -> str | None:
    return evaluation.refusal.code if evaluation.refusal else None


def test_transfers_within_and_beyond_the_policy() -> None:
    s = spec(transfer_policies=(TransferSpec(target=RECIPIENT, max_value_per_use=5),))
    accepted = evaluate(s, userops.Call(target=RECIPIENT, value=5))
    assert accepted.accepted and accepted.valid_until == s.expires_at
    assert code(evaluate(s, userops.Call(target=RECIPIENT, value=6))) == "max_value_exceeded"
    assert code(evaluate(s, userops.Call(target=DAPP, value=1))) == "transfer_policy_violated"
    odd = userops.Call(target=RECIPIENT, value=1, data=b"\x01")
    assert code(evaluate(s, odd)) == "invalid_data_length"


def test_each_rule_has_a_stable_code_and_the_chains_error() -> None:
    token_policy = CallSpec(
        target=TOKEN,
        selector=TRANSFER,
        constraints=(
            Constraint(condition=Condition.EQUAL, index=0, ref_value=word(int(DAPP, 16))),
            Constraint(index=1, limit=allowance(100, DAY)),
        ),
    )
    s = spec(call_policies=(token_policy,))

    def send(to: str, amount: int) -> userops.Call:
        return userops.Call(
            target=TOKEN, data=TRANSFER + encode(["address", "uint256"], [to, amount])
        )

    assert evaluate(s, send(DAPP, 100)).accepted
    refusal = evaluate(s, send(RECIPIENT, 1)).refusal
    assert refusal is not None
    assert (refusal.code, refusal.error) == ("condition_violated", "ConditionViolated")
    assert refusal.args == (word(int(RECIPIENT, 16)), word(int(DAPP, 16)), 1)
    refusal = evaluate(s, send(DAPP, 101)).refusal
    assert refusal is not None
    assert (refusal.code, refusal.error) == ("parameter_limit_exceeded", "AllowanceExceeded")
    assert refusal.args == (0, 100, (NOW + 10) // DAY)
    short = userops.Call(target=TOKEN, data=TRANSFER + word(int(DAPP, 16)))
    assert code(evaluate(s, short)) == "invalid_data_length"
    unknown = userops.Call(target=TOKEN, data=APPROVE + word(0) * 2)
    assert code(evaluate(s, unknown)) == "call_policy_violated"
    # The allowance window: the period's start is "not due" (the EntryPoint needs now > validAfter).
    start = (NOW // DAY + 1) * DAY
    assert code(evaluate(s, send(DAPP, 1), now=start)) == "not_due"
    # Expired.
    assert code(evaluate(s, send(DAPP, 1), now=s.expires_at + 1)) in {
        "session_expired",
        "empty_time_range",
    }


def test_rules_apply_in_the_validators_order() -> None:
    s = spec(transfer_policies=(TransferSpec(target=RECIPIENT, max_value_per_use=1),))
    # Not active beats a broken policy.
    revoked = SessionState(status=Status.CLOSED, fees_remaining=0)
    assert code(evaluate(s, userops.Call(target=DAPP, value=9), state=revoked)) == (
        "session_not_active"
    )
    # A wrong nonce key beats the status.
    operation = policy.Operation(
        call_data=userops.execute_call_data(target=RECIPIENT, value=1), nonce=0
    )
    verdict = policy.evaluate_operation(
        spec=s, operation=operation, state=revoked, now=NOW, base_fee=0
    )
    assert code(verdict) == "invalid_nonce_key"
    # Batch and other shapes are refused before any policy.
    batch = policy.Operation(
        call_data=userops.execute_batch_call_data(calls=[userops.Call(target=RECIPIENT)]),
        nonce=nonce_key(SIGNER) << 64,
    )
    verdict = policy.evaluate_operation(
        spec=s, operation=batch, state=fresh_state(s), now=NOW, base_fee=0
    )
    assert code(verdict) == "invalid_call_type"
    # The fee comes last, and only without a paymaster.
    gas: dict[str, Any] = {
        "pre_verification_gas": 50_000,
        "verification_gas_limit": 400_000,
        "call_gas_limit": 100_000,
        "max_fee_per_gas": 10**11,
        "max_priority_fee_per_gas": 10**9,
    }
    call = userops.Call(target=RECIPIENT, value=1)
    verdict = evaluate(s, call, sponsored=False, **gas)
    assert verdict.accepted and verdict.charges["fee"] == (10**9 + 10**9) * 550_000
    expensive = {**gas, "max_priority_fee_per_gas": 10**11}
    assert code(evaluate(s, call, sponsored=False, **expensive)) == "fee_limit_exceeded"
    assert evaluate(s, call, sponsored=True, **expensive).accepted
    assert code(
        evaluate(s, userops.Call(target=RECIPIENT, value=2), sponsored=False, **expensive)
    ) == ("max_value_exceeded")


def test_first_matching_policy_wins() -> None:
    s = spec(
        call_policies=(
            CallSpec(target=TOKEN, selector=TRANSFER, max_value_per_use=0),
            CallSpec(target=TOKEN, selector=TRANSFER, max_value_per_use=10**18),
        )
    )
    call = userops.Call(target=TOKEN, value=1, data=TRANSFER)
    assert code(evaluate(s, call)) == "max_value_exceeded"


def test_the_signature_is_checked_when_the_hash_is_given() -> None:
    from eth_account import Account

    key = Account.create()
    s = spec(
        signer=key.address, transfer_policies=(TransferSpec(target=RECIPIENT, max_value_per_use=1),)
    )
    op_hash = b"\x42" * 32
    good = bytes(Account.unsafe_sign_hash(op_hash, key.key).signature)
    bad = bytes(Account.unsafe_sign_hash(op_hash, Account.create().key).signature)
    call = userops.Call(target=RECIPIENT, value=1)
    assert evaluate(s, call, signature=good, user_op_hash=op_hash).accepted
    assert code(evaluate(s, call, signature=bad, user_op_hash=op_hash)) == "invalid_signature"
    assert code(evaluate(s, call, signature=good[:64], user_op_hash=op_hash)) == "invalid_signature"


def test_maximum_spend_counts_periods_and_per_use_caps() -> None:
    s = spec(
        expires_at=NOW - NOW % DAY + 7 * DAY,  # exactly 7 day periods from today's
        transfer_policies=(
            TransferSpec(
                target=RECIPIENT, max_value_per_use=10**16, value_limit=allowance(10**16, DAY)
            ),
            TransferSpec(
                target=RECIPIENT, max_value_per_use=10**18, value_limit=UNLIMITED
            ),  # unreachable
            TransferSpec(target=DAPP, max_value_per_use=0, value_limit=UNLIMITED),  # per use 0
        ),
        call_policies=(
            CallSpec(
                target=TOKEN,
                selector=TRANSFER,
                max_value_per_use=5,
                value_limit=lifetime(20),
                constraints=(
                    Constraint(index=1, limit=allowance(1000, DAY)),
                    Constraint(index=1, limit=lifetime(5000)),
                    Constraint(index=0, limit=lifetime(1)),  # not the amount
                ),
            ),
            CallSpec(
                target=DAPP,
                selector=APPROVE,
                constraints=(Constraint(condition=Condition.LESS, index=1, ref_value=word(1)),),
            ),
        ),
    )
    spend = policy.maximum_spend(s, now=NOW)
    assert spend == {
        policy.NATIVE: 7 * 10**16 + 20,
        TOKEN: 5000,  # min(7 days x 1000, 5000)
        DAPP: 0,  # amount < 1: nothing
    }
    assert policy.maximum_fees(s, now=NOW) == 10**16
    # Unbounded: a token transfer with no limit on the amount, or value with no limit.
    loose = spec(call_policies=(CallSpec(target=TOKEN, selector=TRANSFER, max_value_per_use=1),))
    assert policy.maximum_spend(loose, now=NOW) == {policy.NATIVE: None, TOKEN: None}
    # Nothing once expired.
    assert policy.maximum_spend(s, now=s.expires_at + 1) == {
        policy.NATIVE: 0,
        TOKEN: 0,
        DAPP: 0,
    }


def test_usable_periods() -> None:
    day = allowance(1, DAY)
    midnight = NOW - NOW % DAY
    assert policy.usable_periods(day, now=midnight + 5, expires_at=midnight + DAY) == 1
    assert policy.usable_periods(day, now=midnight + 5, expires_at=midnight + DAY + 1) == 2
    assert policy.usable_periods(day, now=midnight + 5, expires_at=midnight + 3 * DAY - 1) == 3
    # Periods of 0 or 1 s can never validate (empty window).
    assert policy.usable_periods(allowance(1, 1), now=NOW, expires_at=NOW + DAY) == 0
    assert policy.usable_periods(allowance(1, 0), now=NOW, expires_at=NOW + DAY) == 0


def test_session_signatures_decode_back() -> None:
    from chain import session_keys

    s = spec(transfer_policies=(TransferSpec(target=RECIPIENT, max_value_per_use=1),))
    encoded = session_keys.encode_session_signature(
        validator=DAPP, signature=b"\x01" * 65, spec=s, period_ids=[3, 4]
    )
    assert session_keys.decode_session_signature(encoded) == (DAPP, b"\x01" * 65, s, [3, 4])
    for junk in (b"", b"\x00" * 20, b"\x00" * 20 + b"\x01" * 40):
        try:
            session_keys.decode_session_signature(junk)
        except ValueError:
            continue
        raise AssertionError(f"decoded {junk!r}")
