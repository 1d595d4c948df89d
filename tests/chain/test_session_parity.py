"""Parity: for generated session specs and operations, the portal's off-chain evaluator
(sessionkeys.policy) gives the verdict the chain gives — the same refusal with the same error data,
or acceptance — and an accepted operation really goes through in a block with the same time and
base fee. Fixed seed (derandomized), 300 examples of 1-4 operations each on one anvil."""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain import artifacts, session_keys, userops
from chain.devtools.authenticator import SoftwarePasskey
from chain.devtools.devkit import OpFailure
from chain.devtools.devkit_sessions import SessionHarness
from chain.session_keys import (
    CallSpec,
    Condition,
    Constraint,
    LimitType,
    SessionSpec,
    TransferSpec,
    UsageLimit,
)
from sessionkeys import policy

pytestmark = pytest.mark.chain

TARGETS = [
    "0x000000000000000000000000000000000000A001",
    "0x000000000000000000000000000000000000a002",
    "0x000000000000000000000000000000000000a003",
]
SELECTORS = [keccak(text="transfer(address,uint256)")[:4], bytes.fromhex("12345678")]
FUNDS = 10 * 10**18
EXAMPLES = int(os.environ.get("SESSION_PARITY_EXAMPLES", "300"))  # 300 in make test


# --------------------------------------------------------------------------- strategies

periods = st.sampled_from([60, 60, 3600, 3600, 7, 2, 1, 0])


@st.composite
def usage_limits(draw: Any, *, allow_unlimited: bool = True, high: int = 300) -> UsageLimit:
    kinds = [LimitType.LIFETIME, LimitType.ALLOWANCE]
    if allow_unlimited:
        kinds = [LimitType.UNLIMITED, *kinds]
    kind = draw(st.sampled_from(kinds))
    if kind == LimitType.UNLIMITED:
        return session_keys.UNLIMITED
    limit = draw(st.integers(0, high))
    period = draw(periods) if kind == LimitType.ALLOWANCE else 0
    return UsageLimit(limit_type=kind, limit=limit, period=period)


@st.composite
def constraints(draw: Any) -> Constraint:
    return Constraint(
        condition=draw(st.sampled_from(list(Condition))),
        index=draw(st.integers(0, 3)),
        ref_value=draw(st.integers(0, 120)).to_bytes(32, "big"),
        limit=draw(usage_limits()),
    )


@st.composite
def call_specs(draw: Any) -> CallSpec:
    return CallSpec(
        target=draw(st.sampled_from(TARGETS)),
        selector=draw(st.sampled_from(SELECTORS)),
        max_value_per_use=draw(st.integers(0, 100)),
        value_limit=draw(usage_limits()),
        constraints=tuple(draw(st.lists(constraints(), max_size=3))),
    )


@st.composite
def transfer_specs(draw: Any) -> TransferSpec:
    return TransferSpec(
        target=draw(st.sampled_from(TARGETS)),
        max_value_per_use=draw(st.integers(0, 100)),
        value_limit=draw(usage_limits()),
    )


@dataclass(frozen=True)
class SpecDraft:
    """A spec without signer and absolute expiry (they depend on the key and the chain's clock)."""

    lifetime_seconds: int
    fee_limit: UsageLimit
    call_policies: tuple[CallSpec, ...]
    transfer_policies: tuple[TransferSpec, ...]

    def spec(self, *, signer: str, now: int) -> SessionSpec:
        return SessionSpec(
            signer=signer,
            expires_at=now + self.lifetime_seconds,
            fee_limit=self.fee_limit,
            call_policies=self.call_policies,
            transfer_policies=self.transfer_policies,
        )


@st.composite
def drafts(draw: Any) -> SpecDraft:
    fee_limit = draw(
        st.one_of(
            usage_limits(allow_unlimited=False, high=10**15),
            st.just(session_keys.lifetime(10**18)),
            st.just(session_keys.allowance(10**18, 3600)),
        )
    )
    return SpecDraft(
        lifetime_seconds=draw(st.sampled_from([60, 300, 3600, 7200])),
        fee_limit=fee_limit,
        call_policies=tuple(draw(st.lists(call_specs(), max_size=3))),
        transfer_policies=tuple(draw(st.lists(transfer_specs(), max_size=3))),
    )


@dataclass(frozen=True)
class Step:
    advance: int  # seconds to move the clock before the operation (-1: to the next minute boundary)
    call: userops.Call
    shape: str  # "single", "batch", "try"
    sponsored: bool
    gas_price: int
    low_priority: bool
    forged: bool
    default_nonce_key: bool


def near(value: int) -> list[int]:
    return [max(0, value - 1), value, value + 1]


@st.composite
def random_calls(draw: Any) -> userops.Call:
    target = draw(st.sampled_from(TARGETS))
    value = draw(st.sampled_from([0, 1, 5, 50, 100, 101, 150, 300]))
    kind = draw(st.sampled_from(["transfer", "call", "call", "odd"]))
    if kind == "transfer":
        return userops.Call(target=target, value=value)
    if kind == "odd":
        return userops.Call(target=target, value=value, data=b"\x01" * draw(st.integers(1, 3)))
    words = draw(st.lists(st.sampled_from([0, 1, 49, 50, 51, 100, 120, 2**255]), max_size=4))
    data = draw(st.sampled_from([*SELECTORS, b"\xde\xad\xbe\xef"])) + b"".join(
        w.to_bytes(32, "big") for w in words
    )
    return userops.Call(target=target, value=value, data=data)


@st.composite
def policy_calls(draw: Any, draft: SpecDraft) -> userops.Call:
    """A call aimed at one of the draft's policies, with values and arguments near its limits."""
    choices = [("call", i) for i in range(len(draft.call_policies))] + [
        ("transfer", i) for i in range(len(draft.transfer_policies))
    ]
    kind, index = draw(st.sampled_from(choices))
    if kind == "transfer":
        transfer = draft.transfer_policies[index]
        value = draw(st.sampled_from([0, *near(transfer.max_value_per_use), 1, 10]))
        return userops.Call(target=transfer.target, value=value)
    policy = draft.call_policies[index]
    value = draw(st.sampled_from([0, *near(policy.max_value_per_use), 1]))
    width = max([c.index + 1 for c in policy.constraints] or [0])
    width = draw(st.sampled_from([width, width, width, max(0, width - 1), width + 1]))
    words = []
    for position in range(width):
        refs = [
            int.from_bytes(c.ref_value, "big") for c in policy.constraints if c.index == position
        ]
        candidates = [v for ref in refs for v in near(ref)] or [0, 7]
        words.append(draw(st.sampled_from([*candidates, 1, 2**255])))
    data = policy.selector + b"".join(w.to_bytes(32, "big") for w in words)
    return userops.Call(target=policy.target, value=value, data=data)


def calls(draft: SpecDraft) -> st.SearchStrategy[userops.Call]:
    if not draft.call_policies and not draft.transfer_policies:
        return random_calls()
    return st.one_of(policy_calls(draft), policy_calls(draft), policy_calls(draft), random_calls())


@st.composite
def steps(draw: Any, draft: SpecDraft) -> Step:
    return Step(
        advance=draw(st.sampled_from([0, 0, 0, 0, 1, 30, 59, 61, 3600, 7201, -1])),
        call=draw(calls(draft)),
        shape=draw(st.sampled_from(["single"] * 10 + ["batch", "try"])),
        sponsored=draw(st.booleans()),
        gas_price=draw(st.sampled_from([1, 1000, 10**6, 10**9])),
        low_priority=draw(st.booleans()),
        forged=draw(st.sampled_from([False] * 15 + [True])),
        default_nonce_key=draw(st.sampled_from([False] * 20 + [True])),
    )


# --------------------------------------------------------------------------- chain side

ERRORS: dict[bytes, tuple[str, list[str]]] = {}
for entry in artifacts.abi("SessionKeyValidator"):
    if entry["type"] == "error":
        types = [i["type"] for i in entry["inputs"]]
        ERRORS[keccak(text=f"{entry['name']}({','.join(types)})")[:4]] = (entry["name"], types)
ERRORS[keccak(text="Panic(uint256)")[:4]] = ("Panic", ["uint256"])
ERRORS[keccak(text="DecodingError()")[:4]] = ("DecodingError", [])
TYPES_BY_NAME = {name: types for name, types in ERRORS.values()}


def chain_error(failure: OpFailure) -> str:
    if failure.reason.startswith("AA22"):
        return "AA22"
    if failure.reason.startswith("AA24"):
        return "AA24"
    assert failure.reason.startswith("AA23"), failure.reason
    if not failure.inner:
        return "Revert"
    return ERRORS[failure.inner[:4]][0]


def expected_revert_data(refusal: policy.Refusal) -> bytes:
    types = TYPES_BY_NAME[refusal.error]
    signature = f"{refusal.error}({','.join(types)})"
    return keccak(text=signature)[:4] + (encode(types, list(refusal.args)) if types else b"")


class ParityRun:
    def __init__(self, sh: SessionHarness, account: str) -> None:
        self.sh = sh
        self.account = account
        self.checked = 0
        self.accepted = 0
        self.refusals: dict[str, int] = {}

    def block(self) -> tuple[int, int]:
        latest = self.sh.w3.eth.get_block("latest")
        return int(latest["timestamp"]), int(latest.get("baseFeePerGas", 0) or 0)

    def mine_at(self, timestamp: int) -> None:
        self.sh.rpc("evm_setNextBlockTimestamp", [timestamp])
        self.sh.rpc("evm_mine", [])

    def run(self, key_seed: int, draft: SpecDraft, ops: list[Step]) -> None:
        sh = self.sh
        key = Account.from_key(key_seed.to_bytes(32, "big"))
        # anvil's clock keeps the offsets of earlier time travel across reverts: take the time of a
        # fresh block, and create the session in a block of that same second.
        sh.rpc("evm_mine", [])
        now, _ = self.block()
        spec = draft.spec(signer=key.address, now=now)
        sh.rpc("evm_setNextBlockTimestamp", [now])
        sh.create_session(self.account, spec, key)
        for step in ops:
            now, _ = self.block()
            if step.advance == -1:
                self.mine_at((now // 60 + 1) * 60)
            elif step.advance:
                self.mine_at(now + step.advance)
            self.check(spec, key, step)

    def check(self, spec: SessionSpec, key: Any, step: Step) -> None:
        sh = self.sh
        now, base_fee = self.block()
        call = step.call
        if step.shape == "batch":
            call_data = userops.execute_batch_call_data(calls=[call])
        else:
            mode = b"\x00" + (b"\x01" if step.shape == "try" else b"\x00") + b"\x00" * 30
            execution = bytes.fromhex(call.target[2:]) + call.value.to_bytes(32, "big") + call.data
            call_data = userops.EXECUTE_SELECTOR + encode(["bytes32", "bytes"], [mode, execution])
        period_ids = policy.expected_period_ids(spec, call, now=now)
        nonce_key = 0 if step.default_nonce_key else session_keys.nonce_key(spec.signer)
        nonce = sh.next_nonce(self.account, nonce_key)
        priority = 1 if step.low_priority else step.gas_price
        op = sh.build(self.account, call_data, nonce=nonce, verification_gas_limit=1_000_000)
        op = op.with_changes(
            gas_fees=userops.pack_uint128_pair(priority, step.gas_price),
        )
        if step.sponsored:
            op = sh.sponsor(op, valid_for=10**6)
        signer = Account.create() if step.forged else key
        op = session_keys.sign_session_operation(
            op,
            validator=sh.sessions.address,
            spec=spec,
            signer_key=signer.key,
            period_ids=period_ids,
            entry_point=sh.entry_point.address,
            chain_id=sh.chain_id,
        )
        state = sh.state(self.account, spec)
        op_hash = sh.op_hash(op)
        signature = bytes(Account.unsafe_sign_hash(op_hash, signer.key).signature)
        verdict = policy.evaluate_operation(
            spec=spec,
            operation=policy.Operation.from_user_operation(
                op, signature=signature, user_op_hash=op_hash
            ),
            state=state,
            now=now,
            base_fee=base_fee,
        )
        failure = sh.simulate_failure(op)
        context = f"spec={spec}\nstep={step}\nnow={now} state={state}\nverdict={verdict}"
        self.checked += 1
        if failure is None:
            assert verdict.accepted, f"chain accepted, evaluator refused\n{context}"
            self.accepted += 1
            # The same block environment: it must go through, and be charged as evaluated.
            sh.rpc("evm_setNextBlockTimestamp", [now])
            sh.rpc("anvil_setNextBlockBaseFeePerGas", [hex(base_fee)])
            sh.submit(op, gas=8_000_000)
            return
        refusal = verdict.refusal
        assert refusal is not None, f"chain refused ({failure}), evaluator accepted\n{context}"
        got = chain_error(failure)
        self.refusals[got] = self.refusals.get(got, 0) + 1
        assert refusal.error == got, f"chain {failure}, evaluator {refusal}\n{context}"
        if got not in ("AA22", "AA24", "Revert"):
            assert failure.inner == expected_revert_data(refusal), (
                f"error data differs: chain 0x{failure.inner.hex()}\n{context}"
            )


@pytest.fixture
def parity(sh: SessionHarness) -> Iterator[ParityRun]:
    passkey = SoftwarePasskey(origin="https://portal.example")
    account, _ = sh.deploy_account(passkey)
    sh.sender.send(to=account, value=FUNDS)
    run = ParityRun(sh, account)
    yield run
    # The generated cases reach acceptance and most refusals (else the comparison proves little).
    print(f"\nparity: {run.checked} operations, {run.accepted} accepted, refusals {run.refusals}")
    if run.checked >= 600:
        assert run.accepted >= run.checked // 20
        assert len(run.refusals) >= 10, run.refusals


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(key_seed=st.integers(1, 2**64), draft=drafts(), data=st.data())
def test_evaluator_verdicts_equal_the_chains(
    parity: ParityRun, key_seed: int, draft: SpecDraft, data: st.DataObject
) -> None:
    ops = data.draw(st.lists(steps(draft), min_size=1, max_size=4), label="ops")
    snapshot = parity.sh.rpc("evm_snapshot")
    try:
        parity.run(key_seed, draft, ops)
    finally:
        parity.sh.rpc("evm_revert", [snapshot])
