"""What a dapp asks for, turned into a SessionSpec: ERC-7715 `wallet_requestExecutionPermissions`
(PermissionRequest[]) for the permission types that map onto a session, and ZKsync SSO's session
config (`sso_createSession`). Pure: the same request always gives the same spec (expiries are
absolute timestamps in both shapes), so the popup can show the spec, have the dapp prove the
signer, and have it created without anything changing in between.

A request that cannot be mapped raises `RequestRefused` with an ERC-1193-style `rpc_code` (and a
stable `code` for the API).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import is_address, keccak, to_checksum_address

from chain.session_keys import (
    UINT48_MAX,
    UNLIMITED,
    CallSpec,
    Condition,
    Constraint,
    LimitType,
    SessionSpec,
    TransferSpec,
    UsageLimit,
    allowance,
    lifetime,
)

UINT256_MAX = 2**256 - 1
ERC7715_METHOD = "wallet_requestExecutionPermissions"
SSO_METHOD = "sso_createSession"
METHODS = (ERC7715_METHOD, SSO_METHOD)

# ERC-1193 / JSON-RPC error codes used in answers to the dapp.
USER_REJECTED = 4001
UNAUTHORIZED = 4100
UNSUPPORTED_METHOD = 4200
INVALID_PARAMS = -32602

TRANSFER = keccak(text="transfer(address,uint256)")[:4]

# ERC-7715 permission types this portal maps onto a session.
PERMISSION_TYPES = (
    "native-token-allowance",
    "native-token-periodic",
    "erc20-token-allowance",
    "erc20-token-periodic",
    "contract-call",
)
CONDITIONS = {
    "unconstrained": Condition.UNCONSTRAINED,
    "equal": Condition.EQUAL,
    "greater": Condition.GREATER,
    "less": Condition.LESS,
    "greaterorequal": Condition.GREATER_OR_EQUAL,
    "greater_or_equal": Condition.GREATER_OR_EQUAL,
    "lessorequal": Condition.LESS_OR_EQUAL,
    "less_or_equal": Condition.LESS_OR_EQUAL,
    "notequal": Condition.NOT_EQUAL,
    "not_equal": Condition.NOT_EQUAL,
}
LIMIT_TYPES = {
    "unlimited": LimitType.UNLIMITED,
    "lifetime": LimitType.LIFETIME,
    "allowance": LimitType.ALLOWANCE,
}
SIGNATURE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\([A-Za-z0-9_,\[\]() ]*\)$")


class RequestRefused(Exception):
    def __init__(self, code: str, message: str, *, rpc_code: int = INVALID_PARAMS, **data: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.rpc_code = rpc_code
        self.data = data


@dataclass(frozen=True)
class ParsedRequest:
    spec: SessionSpec
    # Function names the dapp gave for selectors (checked: keccak of the signature).
    function_names: dict[str, str]


def _invalid(message: str, **data: Any) -> RequestRefused:
    return RequestRefused("invalid_request", message, **data)


def _integer(value: Any, what: str, *, maximum: int = UINT256_MAX) -> int:
    """An integer given as a JSON number, a decimal string or a 0x-hex string."""
    if isinstance(value, bool):
        raise _invalid(f"{what} must be an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"0x[0-9a-fA-F]{1,64}", value):
        number = int(value, 16)
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{1,78}", value):
        number = int(value)
    else:
        raise _invalid(f"{what} must be an integer (a number, a decimal or 0x-hex string)")
    if not 0 <= number <= maximum:
        raise _invalid(f"{what} is out of range")
    return number


def _address(value: Any, what: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise _invalid(f"{what} must be an address")
    return str(to_checksum_address(value))


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _invalid(f"{what} must be an object")
    return value


def _list(value: Any, what: str, *, maximum: int = 32) -> Sequence[Any]:
    if not isinstance(value, list):
        raise _invalid(f"{what} must be a list")
    if len(value) > maximum:
        raise _invalid(f"{what} has more than {maximum} items")
    return value


def _selector(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not re.fullmatch(r"0x[0-9a-fA-F]{8}", value):
        raise _invalid(f"{what} must be a 4-byte selector (0x + 8 hex digits)")
    return bytes.fromhex(value[2:])


def _bytes32(value: Any, what: str) -> bytes:
    if isinstance(value, str) and re.fullmatch(r"0x[0-9a-fA-F]{64}", value):
        return bytes.fromhex(value[2:])
    if isinstance(value, str) and is_address(value):
        return bytes(12) + bytes.fromhex(value[2:])
    return _integer(value, what).to_bytes(32, "big")


def _enum(value: Any, names: Mapping[str, Any], what: str, size: int) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < size:
        return list(dict.fromkeys(names.values()))[value]
    if isinstance(value, str) and value.lower() in names:
        return names[value.lower()]
    raise _invalid(f"{what} must be one of {', '.join(dict.fromkeys(names))}")


def _usage_limit(value: Any, what: str) -> UsageLimit:
    if value is None:
        return UNLIMITED
    data = _object(value, what)
    limit_type = _enum(
        data.get("limitType", data.get("type", "unlimited")), LIMIT_TYPES, f"{what}.limitType", 3
    )
    return UsageLimit(
        limit_type=limit_type,
        limit=_integer(data.get("limit", 0), f"{what}.limit"),
        period=_integer(data.get("period", 0), f"{what}.period", maximum=UINT48_MAX),
    )


def _function(data: Mapping[str, Any], what: str, names: dict[str, str]) -> bytes:
    """The selector of a call policy: `selector`, or `functionSignature` (its name is kept)."""
    signature = data.get("functionSignature") or data.get("function")
    if signature is not None:
        if not isinstance(signature, str) or not SIGNATURE.match(signature.replace(" ", "")):
            raise _invalid(f"{what}.functionSignature must look like transfer(address,uint256)")
        compact = signature.replace(" ", "")
        selector = keccak(text=compact)[:4]
        if "selector" in data and _selector(data["selector"], f"{what}.selector") != selector:
            raise _invalid(f"{what}.selector is not the selector of {compact}")
        names["0x" + selector.hex()] = compact
        return selector
    return _selector(data.get("selector"), f"{what}.selector")


def _constraints(value: Any, what: str) -> tuple[Constraint, ...]:
    result = []
    for position, item in enumerate(_list(value or [], what)):
        data = _object(item, f"{what}[{position}]")
        result.append(
            Constraint(
                condition=_enum(
                    data.get("condition", "unconstrained"),
                    CONDITIONS,
                    f"{what}[{position}].condition",
                    7,
                ),
                index=_integer(
                    data.get("index", 0), f"{what}[{position}].index", maximum=2**64 - 1
                ),
                ref_value=_bytes32(data.get("refValue", 0), f"{what}[{position}].refValue"),
                limit=_usage_limit(data.get("limit"), f"{what}[{position}].limit"),
            )
        )
    return tuple(result)


# --- ERC-7715 ----------------------------------------------------------------------------------


def _recipients(data: Mapping[str, Any], what: str) -> list[str]:
    to = data.get("to", data.get("recipients"))
    if to is None:
        raise RequestRefused(
            "unsupported_permission",
            f"{what}: a session can only send value to named recipients (give data.to)",
            rpc_code=INVALID_PARAMS,
        )
    items = to if isinstance(to, list) else [to]
    if not items:
        raise _invalid(f"{what}.to is empty")
    return [_address(item, f"{what}.to") for item in _list(items, f"{what}.to")]


def _value_limit(data: Mapping[str, Any], what: str, *, periodic: bool) -> UsageLimit:
    if periodic:
        return allowance(
            _integer(data.get("periodAmount"), f"{what}.periodAmount"),
            _integer(data.get("periodDuration"), f"{what}.periodDuration", maximum=UINT48_MAX),
        )
    amount = _integer(data.get("allowance"), f"{what}.allowance")
    if data.get("period") is not None:
        return allowance(amount, _integer(data["period"], f"{what}.period", maximum=UINT48_MAX))
    return lifetime(amount)


def _permission(
    item: Mapping[str, Any],
    what: str,
    *,
    calls: list[CallSpec],
    transfers: list[TransferSpec],
    names: dict[str, str],
) -> None:
    permission = _object(item.get("permission"), f"{what}.permission")
    kind = permission.get("type")
    data = _object(permission.get("data", {}), f"{what}.permission.data")
    where = f"{what}.permission.data"
    if kind in ("native-token-allowance", "native-token-periodic"):
        limit = _value_limit(data, where, periodic=kind == "native-token-periodic")
        per_use = _integer(data.get("maxPerTransfer", limit.limit), f"{where}.maxPerTransfer")
        for recipient in _recipients(data, where):
            transfers.append(
                TransferSpec(target=recipient, max_value_per_use=per_use, value_limit=limit)
            )
    elif kind in ("erc20-token-allowance", "erc20-token-periodic"):
        token = _address(data.get("tokenAddress"), f"{where}.tokenAddress")
        limit = _value_limit(data, where, periodic=kind == "erc20-token-periodic")
        constraints = []
        if data.get("to") is not None:
            constraints.append(
                Constraint(
                    condition=Condition.EQUAL,
                    index=0,
                    ref_value=bytes(12) + bytes.fromhex(_address(data["to"], f"{where}.to")[2:]),
                )
            )
        constraints.append(Constraint(condition=Condition.UNCONSTRAINED, index=1, limit=limit))
        names["0x" + TRANSFER.hex()] = "transfer(address,uint256)"
        calls.append(CallSpec(target=token, selector=TRANSFER, constraints=tuple(constraints)))
    elif kind == "contract-call":
        calls.append(
            CallSpec(
                target=_address(data.get("address", data.get("target")), f"{where}.address"),
                selector=_function(data, where, names),
                max_value_per_use=_integer(
                    data.get("maxValuePerUse", 0), f"{where}.maxValuePerUse"
                ),
                value_limit=_usage_limit(data.get("valueLimit"), f"{where}.valueLimit"),
                constraints=_constraints(
                    data.get("rules", data.get("constraints")), f"{where}.rules"
                ),
            )
        )
    else:
        raise RequestRefused(
            "unsupported_permission",
            f"{what}: permission type {kind!r} is not supported "
            f"(supported: {', '.join(PERMISSION_TYPES)})",
            type=str(kind),
        )


def parse_erc7715(params: Any, *, chain_id: int, default_fee_limit: int) -> ParsedRequest:
    """PermissionRequest[] → one session: every request must name the same signer (`to`) and
    chain; the expiry is the earliest `expiry` rule; the fee limit is the portal's default."""
    requests = _list(params, "params", maximum=16)
    if not requests:
        raise _invalid("params is an empty list of permission requests")
    signer: str | None = None
    expiry: int | None = None
    calls: list[CallSpec] = []
    transfers: list[TransferSpec] = []
    names: dict[str, str] = {}
    for index, raw in enumerate(requests):
        what = f"params[{index}]"
        item = _object(raw, what)
        if _integer(item.get("chainId"), f"{what}.chainId") != chain_id:
            raise RequestRefused(
                "wrong_chain", f"{what}.chainId is not this portal's chain ({chain_id})"
            )
        to = item.get("to")
        if to is None and isinstance(item.get("signer"), Mapping):  # an earlier draft's shape
            signer_data = _object(item["signer"].get("data", {}), f"{what}.signer.data")
            to = signer_data.get("id", signer_data.get("address"))
        this_signer = _address(to, f"{what}.to")
        if signer is not None and this_signer != signer:
            raise _invalid("every permission request must name the same session signer (to)")
        signer = this_signer
        for position, rule in enumerate(_list(item.get("rules", []), f"{what}.rules")):
            rule = _object(rule, f"{what}.rules[{position}]")
            if rule.get("type") != "expiry":
                raise RequestRefused(
                    "unsupported_rule",
                    f"{what}.rules[{position}]: rule type {rule.get('type')!r} is not supported",
                    type=str(rule.get("type")),
                )
            data = _object(rule.get("data"), f"{what}.rules[{position}].data")
            timestamp = _integer(data.get("timestamp"), f"{what}.rules[{position}].data.timestamp")
            expiry = timestamp if expiry is None else min(expiry, timestamp)
        _permission(item, what, calls=calls, transfers=transfers, names=names)
    if expiry is None:
        raise _invalid("an expiry rule is required")
    assert signer is not None  # noqa: S101 - at least one request
    if expiry > UINT48_MAX:
        raise _invalid("the expiry is out of range")
    return ParsedRequest(
        spec=SessionSpec(
            signer=signer,
            expires_at=expiry,
            fee_limit=lifetime(default_fee_limit),
            call_policies=tuple(calls),
            transfer_policies=tuple(transfers),
        ),
        function_names=names,
    )


# --- ZKsync SSO's session config ---------------------------------------------------------------


def parse_sso_config(params: Any) -> ParsedRequest:
    """`{sessionConfig: {signer, expiresAt, feeLimit, callPolicies, transferPolicies}}` (SSO's
    SessionConfig, numbers as JSON numbers or strings) → the spec, field for field."""
    params = _object(params, "params")
    config = _object(params.get("sessionConfig", params), "params.sessionConfig")
    names: dict[str, str] = {}
    calls = []
    for index, raw in enumerate(_list(config.get("callPolicies", []), "callPolicies")):
        what = f"callPolicies[{index}]"
        data = _object(raw, what)
        calls.append(
            CallSpec(
                target=_address(data.get("target"), f"{what}.target"),
                selector=_function(data, what, names),
                max_value_per_use=_integer(data.get("maxValuePerUse", 0), f"{what}.maxValuePerUse"),
                value_limit=_usage_limit(data.get("valueLimit"), f"{what}.valueLimit"),
                constraints=_constraints(data.get("constraints"), f"{what}.constraints"),
            )
        )
    transfers = []
    for index, raw in enumerate(_list(config.get("transferPolicies", []), "transferPolicies")):
        what = f"transferPolicies[{index}]"
        data = _object(raw, what)
        transfers.append(
            TransferSpec(
                target=_address(data.get("target"), f"{what}.target"),
                max_value_per_use=_integer(data.get("maxValuePerUse", 0), f"{what}.maxValuePerUse"),
                value_limit=_usage_limit(data.get("valueLimit"), f"{what}.valueLimit"),
            )
        )
    fee_limit = _usage_limit(config.get("feeLimit"), "feeLimit")
    return ParsedRequest(
        spec=SessionSpec(
            signer=_address(config.get("signer"), "signer"),
            expires_at=_integer(config.get("expiresAt"), "expiresAt", maximum=UINT48_MAX),
            fee_limit=fee_limit,
            call_policies=tuple(calls),
            transfer_policies=tuple(transfers),
        ),
        function_names=names,
    )


def parse_request(
    *, method: str, params: Any, chain_id: int, default_fee_limit: int
) -> ParsedRequest:
    if method == ERC7715_METHOD:
        return parse_erc7715(params, chain_id=chain_id, default_fee_limit=default_fee_limit)
    if method == SSO_METHOD:
        return parse_sso_config(params)
    raise RequestRefused(
        "unsupported_method", f"method {method!r} is not supported", rpc_code=UNSUPPORTED_METHOD
    )


# --- JSON forms --------------------------------------------------------------------------------


def limit_json(limit: UsageLimit) -> dict[str, Any]:
    return {
        "limitType": limit.limit_type.name.lower(),
        "limit": str(limit.limit),
        "period": limit.period,
    }


def spec_json(spec: SessionSpec) -> dict[str, Any]:
    """The spec in SSO's SessionConfig shape (amounts as decimal strings)."""
    return {
        "signer": spec.signer,
        "expiresAt": spec.expires_at,
        "feeLimit": limit_json(spec.fee_limit),
        "callPolicies": [
            {
                "target": call.target,
                "selector": "0x" + call.selector.hex(),
                "maxValuePerUse": str(call.max_value_per_use),
                "valueLimit": limit_json(call.value_limit),
                "constraints": [
                    {
                        "condition": c.condition.name.lower(),
                        "index": c.index,
                        "refValue": "0x" + c.ref_value.hex(),
                        "limit": limit_json(c.limit),
                    }
                    for c in call.constraints
                ],
            }
            for call in spec.call_policies
        ],
        "transferPolicies": [
            {
                "target": transfer.target,
                "maxValuePerUse": str(transfer.max_value_per_use),
                "valueLimit": limit_json(transfer.value_limit),
            }
            for transfer in spec.transfer_policies
        ],
    }
