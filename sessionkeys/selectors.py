"""Reads: a person's sessions, what is left of each limit (sessionState on chain), and the review
of a request a person approves — who asks, until when, the most it can spend, what it can call,
and the risks."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address

from accounts.models import SmartAccount, User
from chain import artifacts
from chain.client import ChainUnavailable, call_chain, contract, node
from chain.selectors import deployment_addresses
from chain.session_keys import (
    SESSION_SPEC,
    SESSION_STATE,
    UINT256_MAX,
    LimitType,
    SessionSpec,
    SessionState,
    UsageLimit,
)
from portal.errors import NotFound
from sessionkeys import policy
from sessionkeys.models import Session, SessionPreset
from sessionkeys.requests import limit_json

APPROVAL_SELECTORS = {
    keccak(text="approve(address,uint256)")[:4]: "approve(address,uint256)",
    keccak(text="increaseAllowance(address,uint256)")[:4]: "increaseAllowance(address,uint256)",
    keccak(text="setApprovalForAll(address,bool)")[:4]: "setApprovalForAll(address,bool)",
}
STANDARD_FUNCTIONS = (
    "transfer(address,uint256)",
    "transferFrom(address,address,uint256)",
    "approve(address,uint256)",
    "increaseAllowance(address,uint256)",
    "decreaseAllowance(address,uint256)",
    "setApprovalForAll(address,bool)",
    "safeTransferFrom(address,address,uint256)",
    "safeTransferFrom(address,address,uint256,bytes)",
    "safeTransferFrom(address,address,uint256,uint256,bytes)",
    "mint(address,uint256)",
    "burn(uint256)",
    "deposit()",
    "withdraw(uint256)",
)
# Contracts of the portal a session may never target (the chain refuses them too).
MODULE_CONTRACTS = (
    "WebAuthnValidator",
    "SessionKeyValidator",
    "EOAKeyValidator",
    "GuardianExecutor",
    "AccountBeacon",
    "MSAFactory",
)


def sessions_of(*, user: User) -> QuerySet[Session]:
    return Session.objects.filter(account__user=user, chain_id=settings.CHAIN_ID).select_related(
        "account", "create_operation", "revoke_operation"
    )


def session_of(*, user: User, session_id: int) -> Session:
    session = sessions_of(user=user).filter(pk=session_id).first()
    if session is None:
        raise NotFound("session_not_found", "No such session.")
    return session


def context_hash(context: str) -> str:
    """The session hash an ERC-7715 permission context (the encoded spec, 0x hex) names."""
    return "0x" + keccak(bytes.fromhex(context[2:])).hex()


def spec_of(session: Session) -> SessionSpec:
    return SessionSpec.decode(bytes(session.spec))


def origin_seen(*, user: User, origin: str) -> bool:
    """Whether the person has ever had a session created for `origin`."""
    return Session.objects.filter(
        account__user=user,
        origin=origin,
        status__in=(Session.Status.ACTIVE, Session.Status.EXPIRED, Session.Status.REVOKED),
    ).exists()


# --- chain reads --------------------------------------------------------------------------------


SESSION_STATE_SELECTOR = keccak(text=f"sessionState(address,{SESSION_SPEC})")[:4]


def read_state(*, account: str, spec: SessionSpec) -> SessionState:
    """sessionState(account, spec) now; ChainUnavailable when the chain does not answer.
    Encoded and decoded with eth_abi (web3's contract layer costs ~100 ms a call for this ABI)."""
    data = SESSION_STATE_SELECTOR + encode(
        ["address", SESSION_SPEC], [to_checksum_address(account), spec.as_tuple()]
    )
    raw = call_chain(
        node().eth.call,
        {"to": deployment_addresses()["SessionKeyValidator"], "data": data},  # type: ignore[typeddict-item]
    )
    (state,) = decode([SESSION_STATE], bytes(raw))
    return SessionState.from_tuple(state)


def validator_installed(*, account: str) -> bool:
    w3 = node()
    validator = deployment_addresses()["SessionKeyValidator"]
    msa = contract(w3, "ModularSmartAccount", account)
    return bool(call_chain(msa.functions.isModuleInstalled(1, validator, b"").call))


@dataclass(frozen=True)
class Limit:
    what: str  # "fee", "transfer", "call value", "argument"
    target: str
    selector: str
    index: int
    limit: UsageLimit
    remaining: int | None  # None: unknown (chain not read) or unlimited

    def as_json(self) -> dict[str, Any]:
        used = None
        if self.remaining is not None and self.limit.limit_type != LimitType.UNLIMITED:
            used = max(0, self.limit.limit - self.remaining)
        return {
            "what": self.what,
            "target": self.target,
            "selector": self.selector,
            "function": function_name(self.selector) if self.selector else "",
            "index": self.index,
            "limit": limit_json(self.limit),
            "remaining": None if self.remaining is None else str(self.remaining),
            "used": None if used is None else str(used),
            "percent_left": (
                None
                if self.remaining is None or self.limit.limit_type == LimitType.UNLIMITED
                else (
                    100 if self.limit.limit == 0 else round(100 * self.remaining / self.limit.limit)
                )
            ),
        }


def limits(spec: SessionSpec, state: SessionState | None) -> list[Limit]:
    """Every limited quantity of the session, with what is left of it now (from `state`)."""

    def left(limit: UsageLimit, value: int | None) -> int | None:
        if limit.limit_type == LimitType.UNLIMITED or value is None or value == UINT256_MAX:
            return None
        return value

    result = [
        Limit(
            what="fee",
            target="",
            selector="",
            index=0,
            limit=spec.fee_limit,
            remaining=left(spec.fee_limit, state.fees_remaining if state else None),
        )
    ]
    for i, transfer in enumerate(spec.transfer_policies):
        result.append(
            Limit(
                what="transfer",
                target=transfer.target,
                selector="",
                index=0,
                limit=transfer.value_limit,
                remaining=left(
                    transfer.value_limit, state.transfer_value[i].remaining if state else None
                ),
            )
        )
    params = 0
    for i, call in enumerate(spec.call_policies):
        selector = "0x" + call.selector.hex()
        if call.max_value_per_use > 0:
            result.append(
                Limit(
                    what="call value",
                    target=call.target,
                    selector=selector,
                    index=0,
                    limit=call.value_limit,
                    remaining=left(
                        call.value_limit, state.call_value[i].remaining if state else None
                    ),
                )
            )
        for constraint in call.constraints:
            if constraint.limit.limit_type == LimitType.UNLIMITED:
                continue
            remaining = state.call_params[params].remaining if state else None
            params += 1
            result.append(
                Limit(
                    what="argument",
                    target=call.target,
                    selector=selector,
                    index=constraint.index,
                    limit=constraint.limit,
                    remaining=remaining,
                )
            )
    return result


def remaining_of(session: Session) -> tuple[list[dict[str, Any]], bool]:
    """(limits with what is left, whether the chain was read)."""
    spec = spec_of(session)
    state: SessionState | None = None
    if session.status in (Session.Status.ACTIVE, Session.Status.EXPIRED):
        try:
            state = read_state(account=session.account.address, spec=spec)
        except (ChainUnavailable, KeyError):
            state = None
    return [limit.as_json() for limit in limits(spec, state)], state is not None


# --- the review a person approves ---------------------------------------------------------------


@cache
def known_functions() -> dict[str, str]:
    """Selector (0x-hex) → function signature: standard token functions and the portal's ABIs."""
    names = {"0x" + keccak(text=sig)[:4].hex(): sig for sig in STANDARD_FUNCTIONS}
    for name in (
        "ModularSmartAccount",
        "SessionKeyValidator",
        "WebAuthnValidator",
        "EOAKeyValidator",
        "GuardianExecutor",
    ):
        for item in artifacts.abi(name):
            if item.get("type") == "function":
                types = ",".join(_abi_type(i) for i in item["inputs"])
                signature = f"{item['name']}({types})"
                names.setdefault("0x" + keccak(text=signature)[:4].hex(), signature)
    return names


def _abi_type(item: dict[str, Any]) -> str:
    type_ = str(item["type"])
    if not type_.startswith("tuple"):
        return type_
    inner = ",".join(_abi_type(c) for c in item["components"])
    return f"({inner}){type_.removeprefix('tuple')}"


def function_name(selector: str, extra: dict[str, str] | None = None) -> str:
    return (extra or {}).get(selector) or known_functions().get(selector, "")


def _amount(value: int | None) -> str | None:
    return None if value is None else str(value)


def review(
    *,
    spec: SessionSpec,
    account: SmartAccount,
    origin: str,
    function_names: dict[str, str] | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """What the approval screen shows, in data: the origin (and whether it is new to this person),
    the expiry, the most each token can lose, each contract and function, the fee limit, flags."""
    now = int(timezone.now().timestamp()) if now is None else now
    names = function_names or {}
    spend = policy.maximum_spend(spec, now=now)
    flags: list[dict[str, str]] = []
    calls = []
    for call in spec.call_policies:
        selector = "0x" + call.selector.hex()
        name = function_name(selector, names)
        calls.append(
            {
                "target": call.target,
                "selector": selector,
                "function": name,
                "named_by": "dapp"
                if selector in names and selector not in known_functions()
                else "",
                "max_value_per_use": str(call.max_value_per_use),
                "value_limit": limit_json(call.value_limit),
                "constraints": len(call.constraints),
            }
        )
        if call.selector in APPROVAL_SELECTORS:
            flags.append(
                {
                    "code": "approval_call",
                    "severity": "danger",
                    "text": f"{APPROVAL_SELECTORS[call.selector]} on {call.target}: an allowance "
                    "it grants outlives the session (revoking the session does not undo it).",
                }
            )
        if call.max_value_per_use > 0 and call.value_limit.limit_type == LimitType.UNLIMITED:
            flags.append(
                {
                    "code": "unlimited_amount",
                    "severity": "danger",
                    "text": f"Calls to {call.target} may send ETH without a total limit.",
                }
            )
    for transfer in spec.transfer_policies:
        if (
            transfer.max_value_per_use > 0
            and transfer.value_limit.limit_type == LimitType.UNLIMITED
        ):
            flags.append(
                {
                    "code": "unlimited_amount",
                    "severity": "danger",
                    "text": f"ETH sent to {transfer.target} has no total limit.",
                }
            )
    for token, amount in spend.items():
        if amount is None and token != policy.NATIVE:
            flags.append(
                {
                    "code": "unlimited_amount",
                    "severity": "danger",
                    "text": f"Token {token} can be moved without limit.",
                }
            )
    if spec.expires_at - now > settings.PORTAL_SESSION_LONG_SECONDS:
        flags.append(
            {
                "code": "long_expiry",
                "severity": "warning",
                "text": f"The session lasts {(spec.expires_at - now) // 86400} days.",
            }
        )
    addresses = deployment_addresses()
    own = {account.address: "your account itself"}
    own.update({addresses[n]: n for n in MODULE_CONTRACTS if n in addresses})
    for target in {c.target for c in spec.call_policies} | {
        t.target for t in spec.transfer_policies
    }:
        if target in own:
            flags.append(
                {
                    "code": "targets_account",
                    "severity": "danger",
                    "text": f"The session may act on {own[target]} ({target}).",
                }
            )
    seen = origin_seen(user=account.user, origin=origin)
    if not seen:
        flags.insert(
            0,
            {
                "code": "new_origin",
                "severity": "warning",
                "text": f"You have never given {origin} a session before.",
            },
        )
    fees = policy.maximum_fees(spec, now=now)
    return {
        "origin": origin,
        "origin_seen": seen,
        "account": account.address,
        "signer": spec.signer,
        "expires_at": spec.expires_at,
        "seconds": max(0, spec.expires_at - now),
        "maximum_spend": [
            {"token": token, "amount": _amount(amount)} for token, amount in spend.items()
        ],
        "transfers": [
            {
                "target": t.target,
                "max_value_per_use": str(t.max_value_per_use),
                "value_limit": limit_json(t.value_limit),
            }
            for t in spec.transfer_policies
        ],
        "calls": calls,
        "fee_limit": limit_json(spec.fee_limit),
        "maximum_fees": _amount(fees),
        "flags": flags,
        "presets": [p.name for p in matching_presets(spec=spec, origin=origin, now=now)],
    }


def matching_presets(*, spec: SessionSpec, origin: str, now: int) -> list[SessionPreset]:
    """The operators' presets this request stays within: ETH only, at most the preset's amount
    per period (counted over the session), its duration and its fee limit."""
    if spec.call_policies:
        return []
    spend = policy.maximum_spend(spec, now=now)
    fees = policy.maximum_fees(spec, now=now)
    if any(token != policy.NATIVE for token in spend) or spend[policy.NATIVE] is None:
        return []
    matched = []
    for preset in SessionPreset.objects.filter(enabled=True):
        if preset.origin and preset.origin != origin:
            continue
        duration = spec.expires_at - now
        periods = -(-max(duration, 1) // max(1, preset.period_seconds)) or 1
        if duration > preset.duration_seconds:
            continue
        if int(spend[policy.NATIVE] or 0) > int(preset.native_per_period_wei) * periods:
            continue
        if fees is None or fees > int(preset.fee_limit_wei):
            continue
        matched.append(preset)
    return matched
