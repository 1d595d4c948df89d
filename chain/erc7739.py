"""Messages signed by the portal's account, in the forms any ERC-1271 verifier accepts.

The account (`ModularSmartAccount.isValidSignature`) checks signatures the ERC-7739 way, as ZKsync
SSO's account does: what the passkey signs is never the dapp's hash itself but an EIP-712 hash that
also names the account, its chain and (for typed data) the app's domain, so a signature for one
account or app is useless for another.

- personal_sign: the verifier's hash is the EIP-191 hash of the message; the passkey signs
  EIP-712 `PersonalSign(bytes prefixed)` (prefixed = that hash) under the account's domain. The
  ERC-1271 signature is the validator signature alone.
- eth_signTypedData_v4: the verifier's hash is the EIP-712 hash of the typed data,
  keccak256(0x1901 ‖ APP_DOMAIN_SEPARATOR ‖ contents); the passkey signs, under the app's domain,
  `TypedDataSign(<contentsName> contents,string name,string version,uint256 chainId,address
  verifyingContract,bytes32 salt)<contentsType>` filled with the contents hash and the account's
  domain. The ERC-1271 signature is the validator signature ‖ APP_DOMAIN_SEPARATOR ‖ contents ‖
  contentsType ‖ uint16(len(contentsType)) (ERC-7739's implicit mode).
- Before the account is deployed, the signature is wrapped as ERC-6492:
  abi.encode(factory, factory calldata, signature) ‖ 0x6492…6492, so that a verifier can deploy
  the account in a simulation (MSAFactory.deployAccount(salt, initData)) and then ask it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi import encode
from eth_account._utils.encode_typed_data.encoding_and_hashing import (
    encode_type,
    find_type_dependencies,
)
from eth_account._utils.encode_typed_data.helpers import (
    EIP712_SOLIDITY_TYPES,
    parse_core_array_type,
)
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

# The account's EIP-712 domain (ModularSmartAccount's constructor; `eip712Domain()` reports it).
ACCOUNT_DOMAIN_NAME = "PasskeyPortalAccount"
ACCOUNT_DOMAIN_VERSION = "1"

EIP712_DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
PERSONAL_SIGN_TYPEHASH = keccak(text="PersonalSign(bytes prefixed)")
TYPED_DATA_SIGN_REST = (
    " contents,string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)"
)

ERC6492_SUFFIX = bytes.fromhex("6492" * 16)
ERC7739_PROBE_HASH = bytes.fromhex("7739" * 16)
ERC7739_SUPPORTED = bytes.fromhex("77390001")

PERSONAL_SIGN = "personal_sign"
TYPED_DATA = "typed_data"


class TypedDataRefused(ValueError):
    """Typed data that cannot be signed: `code` says why (`invalid_typed_data`, or
    `unsupported_typed_data` for what ERC-7739 cannot nest)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, kw_only=True)
class NestedMessage:
    """A message for one account: what a verifier passes to isValidSignature (`hash`), what the
    account's validator must have signed (`digest`: the passkey's challenge) and what follows the
    validator signature in the ERC-1271 signature (`trailer`)."""

    kind: str
    account: str
    chain_id: int
    hash: bytes
    digest: bytes
    trailer: bytes = b""

    def signature(self, validator_signature: bytes) -> bytes:
        """The ERC-1271 signature, given `validator (20 bytes) ‖ payload`."""
        return bytes(validator_signature) + self.trailer


def _typed_hash(separator: bytes, struct_hash: bytes) -> bytes:
    return keccak(b"\x19\x01" + separator + struct_hash)


def account_domain_separator(*, account: str, chain_id: int) -> bytes:
    """The account's EIP-712 domain separator (its `domainSeparator()`)."""
    return keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                EIP712_DOMAIN_TYPEHASH,
                keccak(text=ACCOUNT_DOMAIN_NAME),
                keccak(text=ACCOUNT_DOMAIN_VERSION),
                chain_id,
                to_checksum_address(account),
            ],
        )
    )


def eip191_hash(message: bytes) -> bytes:
    """personal_sign's hash: keccak256("\\x19Ethereum Signed Message:\\n" ‖ len ‖ message)."""
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


def personal_sign_digest(*, account: str, chain_id: int, message_hash: bytes) -> bytes:
    """What the validator must sign for isValidSignature(message_hash, …) in PersonalSign mode
    (the account's `replaySafeHash`)."""
    struct_hash = keccak(encode(["bytes32", "bytes32"], [PERSONAL_SIGN_TYPEHASH, message_hash]))
    return _typed_hash(account_domain_separator(account=account, chain_id=chain_id), struct_hash)


def personal_message(*, account: str, chain_id: int, message: bytes) -> NestedMessage:
    """personal_sign of `message` (the bytes; text is its UTF-8) by `account`."""
    message_hash = eip191_hash(message)
    return NestedMessage(
        kind=PERSONAL_SIGN,
        account=to_checksum_address(account),
        chain_id=chain_id,
        hash=message_hash,
        digest=personal_sign_digest(account=account, chain_id=chain_id, message_hash=message_hash),
    )


def contents_name_is_valid(name: str) -> bool:
    """ERC-7739's rule for a contents (primary type) name: not empty, not starting with a
    lowercase letter or '(', and without ', ', ')', '(' or NUL (the account refuses others)."""
    return (
        bool(name)
        and not ("a" <= name[0] <= "z")
        and not any(c in name for c in ", ()\x00")
        and name.isascii()
    )


def typed_data_sign_digest(
    *, account: str, chain_id: int, app_separator: bytes, contents: bytes, contents_type: str
) -> bytes:
    """What the validator must sign for typed data in TypedDataSign mode."""
    name = contents_type.split("(", 1)[0]
    typehash = keccak(text=f"TypedDataSign({name}{TYPED_DATA_SIGN_REST}{contents_type}")
    struct_hash = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "bytes32", "uint256", "address", "bytes32"],
            [
                typehash,
                contents,
                keccak(text=ACCOUNT_DOMAIN_NAME),
                keccak(text=ACCOUNT_DOMAIN_VERSION),
                chain_id,
                to_checksum_address(account),
                bytes(32),
            ],
        )
    )
    return _typed_hash(app_separator, struct_hash)


def _check_shape(type_name: str, types: Mapping[str, Any], value: Any, depth: int = 0) -> None:
    """Every struct value names exactly its type's fields (no missing or extra member), arrays
    are lists: eth_account would fill or ignore them silently, where another encoder refuses."""
    if depth > 32:
        raise TypedDataRefused("invalid_typed_data", "The typed data is nested too deeply.")
    if type_name.endswith("]"):
        if not isinstance(value, list):
            raise TypedDataRefused("invalid_typed_data", f"A {type_name} must be a list.")
        inner = type_name[: type_name.rindex("[")]
        for item in value:
            _check_shape(inner, types, item, depth + 1)
        return
    if type_name not in types:
        return
    if not isinstance(value, dict):
        raise TypedDataRefused("invalid_typed_data", f"A {type_name} must be an object.")
    names = [field["name"] for field in types[type_name]]
    if set(value) != set(names):
        raise TypedDataRefused(
            "invalid_typed_data", f"The members of a {type_name} must be exactly {names}."
        )
    for field in types[type_name]:
        _check_shape(field["type"], types, value[field["name"]], depth + 1)


def _check_types(types: Any) -> dict[str, list[dict[str, str]]]:
    if not isinstance(types, dict) or not types:
        raise TypedDataRefused("invalid_typed_data", "`types` must be an object of struct types.")
    for name, fields in types.items():
        if not isinstance(fields, list) or not all(
            isinstance(f, dict)
            and set(f) == {"name", "type"}
            and isinstance(f["name"], str)
            and isinstance(f["type"], str)
            for f in fields
        ):
            raise TypedDataRefused(
                "invalid_typed_data", f"Type {name} must be a list of {{name, type}} fields."
            )
        for field in fields:
            core = parse_core_array_type(field["type"])
            if core not in types and core not in EIP712_SOLIDITY_TYPES:
                raise TypedDataRefused("invalid_typed_data", f"Unknown type {field['type']}.")
    return types


def _chain_id_of(value: Any) -> int:
    """An EIP-712 domain's chainId as a number (JSON number, decimal or 0x hex string)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            return int(value, 16) if value.lower().startswith("0x") else int(value, 10)
        raise TypeError
    except (TypeError, ValueError) as exc:
        raise TypedDataRefused(
            "invalid_typed_data", "The domain's chainId is not a number."
        ) from exc


def typed_message(*, account: str, chain_id: int, typed_data: Mapping[str, Any]) -> NestedMessage:
    """eth_signTypedData_v4 of `typed_data` ({types, primaryType, domain, message}) by `account`.

    Raises TypedDataRefused for data that does not encode, for a domain of another chain
    (`chain_mismatch`, as wallets refuse it) and for a primary type ERC-7739 cannot nest
    (EIP712Domain itself, or a name it forbids)."""
    if not isinstance(typed_data, Mapping) or set(typed_data) - {
        "types",
        "primaryType",
        "domain",
        "message",
    }:
        raise TypedDataRefused(
            "invalid_typed_data", "Typed data is {types, primaryType, domain, message}."
        )
    types = _check_types(typed_data.get("types"))
    primary = typed_data.get("primaryType")
    domain = typed_data.get("domain")
    message = typed_data.get("message")
    if (
        not isinstance(primary, str)
        or not isinstance(domain, dict)
        or not isinstance(message, dict)
    ):
        raise TypedDataRefused(
            "invalid_typed_data", "primaryType, domain and message are required."
        )
    if primary == "EIP712Domain" or primary not in types:
        raise TypedDataRefused(
            "unsupported_typed_data", "The primary type must be a struct other than the domain."
        )
    if not contents_name_is_valid(primary):
        raise TypedDataRefused(
            "unsupported_typed_data",
            "ERC-7739 cannot nest a primary type whose name starts with a lowercase letter "
            "or holds a space, comma or parenthesis.",
        )
    if "chainId" in domain and _chain_id_of(domain["chainId"]) != chain_id:
        raise TypedDataRefused(
            "chain_mismatch",
            f"The typed data is for another chain than this account's ({chain_id}).",
        )
    # Only the types the primary type uses (a dapp may send others, as viem allows).
    message_types = {name: types[name] for name in find_type_dependencies(primary, types)}
    _check_shape(primary, message_types, message)
    full_message = {
        "types": {**{k: v for k, v in types.items() if k == "EIP712Domain"}, **message_types},
        "primaryType": primary,
        "domain": domain,
        "message": message,
    }
    try:
        signable = encode_typed_data(full_message=full_message)
        contents_type = encode_type(primary, message_types)
    except TypedDataRefused:
        raise
    except Exception as exc:  # untrusted input to eth_account/eth_abi: any failure is a refusal
        raise TypedDataRefused(
            "invalid_typed_data", f"The typed data does not encode: {str(exc)[:200]}"
        ) from exc
    app_separator, contents = bytes(signable.header), bytes(signable.body)
    description = contents_type.encode()
    if len(description) > 0xFFFF:
        raise TypedDataRefused("unsupported_typed_data", "The type description is too long.")
    return NestedMessage(
        kind=TYPED_DATA,
        account=to_checksum_address(account),
        chain_id=chain_id,
        hash=_typed_hash(app_separator, contents),
        digest=typed_data_sign_digest(
            account=account,
            chain_id=chain_id,
            app_separator=app_separator,
            contents=contents,
            contents_type=contents_type,
        ),
        trailer=app_separator + contents + description + len(description).to_bytes(2, "big"),
    )


def erc6492_wrap(*, factory: str, factory_calldata: bytes, signature: bytes) -> bytes:
    """An ERC-6492 signature: valid before the account exists, for a verifier that deploys it
    with `factory_calldata` sent to `factory` first (in a simulation)."""
    return (
        encode(
            ["address", "bytes", "bytes"],
            [to_checksum_address(factory), factory_calldata, signature],
        )
        + ERC6492_SUFFIX
    )


def is_erc6492(signature: bytes) -> bool:
    return len(signature) >= 32 and signature[-32:] == ERC6492_SUFFIX
