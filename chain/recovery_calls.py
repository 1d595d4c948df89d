"""Call data for guardian recovery: GuardianExecutor's functions, the recovery data of its two
recovery types, and installing the executor (and the EOAKeyValidator) on an existing account.

Pure functions like `chain.userops` (no chain access). Who sends what:

- the account itself, in a passkey-approved user operation whose call data is
  `account_call(executor=..., data=...)`: `propose_guardian`, `remove_guardian`, `discard_recovery`;
  installing a module is a call to the account's own `installModule`, so `install_*` return the
  user operation's call data directly;
- the guardian (an EOA sends the function data to the executor; a portal account wraps it in
  `account_call`): `accept_guardian`, `initialize_recovery`;
- anyone, e.g. the portal's relayer, once the delay has passed: `finalize_recovery`;
- anyone, with an EOA guardian's EIP-712 signature (`*_typed_data`):
  `accept_guardian_with_signature`, `initialize_recovery_with_signature` (a recovery key with no
  ETH of its own).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys.exceptions import BadSignature
from eth_utils import keccak, to_checksum_address

from chain import userops

# GuardianExecutor's constants (seconds): finalizing is possible strictly after DELAY and strictly
# before VALIDITY from the start of the request; a new request may start only after VALIDITY.
REQUEST_DELAY_SECONDS = 24 * 60 * 60
REQUEST_VALIDITY_SECONDS = 72 * 60 * 60

SECP256K1_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
MODULE_TYPE_VALIDATOR = 1
MODULE_TYPE_EXECUTOR = 2


class RecoveryType(enum.IntEnum):
    NONE = 0
    EOA = 1
    PASSKEY = 2


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


INSTALL_MODULE = _selector("installModule(uint256,address,bytes)")
PROPOSE_GUARDIAN = _selector("proposeGuardian(address)")
ACCEPT_GUARDIAN = _selector("acceptGuardian(address)")
REMOVE_GUARDIAN = _selector("removeGuardian(address)")
INITIALIZE_RECOVERY = _selector("initializeRecovery(address,uint8,bytes)")
FINALIZE_RECOVERY = _selector("finalizeRecovery(address,bytes)")
DISCARD_RECOVERY = _selector("discardRecovery()")
# What finalizeRecovery calls from the account, with the recovery data as arguments.
ADD_OWNER = _selector("addOwner(address)")
ADD_VALIDATION_KEY = _selector("addValidationKey(bytes,bytes32[2],string)")

# Event topics, for whoever indexes them.
TOPICS = {
    name: keccak(text=signature)
    for name, signature in {
        "GuardianProposed": "GuardianProposed(address,address)",
        "GuardianAdded": "GuardianAdded(address,address)",
        "GuardianRemoved": "GuardianRemoved(address,address)",
        "RecoveryInitiated": "RecoveryInitiated(address,address,(uint8,bytes32,uint48),bytes)",
        "RecoveryFinished": "RecoveryFinished(address)",
        "RecoveryDiscarded": "RecoveryDiscarded(address)",
    }.items()
}


def _address(value: str) -> str:
    return to_checksum_address(value)


# --- installing the modules on an existing account (user operation call data) ----------------


def install_module(*, module_type: int, module: str, init_data: bytes = b"") -> bytes:
    """`installModule(type, module, initData)`: call data of a user operation of the account."""
    return INSTALL_MODULE + encode(
        ["uint256", "address", "bytes"], [module_type, _address(module), init_data]
    )


def install_guardian_executor(*, executor: str) -> bytes:
    """Install GuardianExecutor (type 2; its onInstall ignores the data) on the account."""
    return install_module(module_type=MODULE_TYPE_EXECUTOR, module=executor)


def install_eoa_validator(*, validator: str, owners: Sequence[str] = ()) -> bytes:
    """Install EOAKeyValidator (type 1) with `owners` (possibly none) on the account. EOA
    recovery needs it installed: it adds an owner there."""
    return install_module(
        module_type=MODULE_TYPE_VALIDATOR,
        module=validator,
        init_data=encode(["address[]"], [[_address(o) for o in owners]]),
    )


def account_call(*, executor: str, data: bytes) -> bytes:
    """User operation call data of an account calling the executor with `data`."""
    return userops.execute_call_data(target=executor, data=data)


# --- GuardianExecutor function call data ------------------------------------------------------


def propose_guardian(*, guardian: str) -> bytes:
    return PROPOSE_GUARDIAN + encode(["address"], [_address(guardian)])


def accept_guardian(*, account: str) -> bytes:
    return ACCEPT_GUARDIAN + encode(["address"], [_address(account)])


def remove_guardian(*, guardian: str) -> bytes:
    return REMOVE_GUARDIAN + encode(["address"], [_address(guardian)])


def initialize_recovery(*, account: str, recovery_type: RecoveryType, data: bytes) -> bytes:
    return INITIALIZE_RECOVERY + encode(
        ["address", "uint8", "bytes"], [_address(account), int(recovery_type), data]
    )


def finalize_recovery(*, account: str, data: bytes) -> bytes:
    return FINALIZE_RECOVERY + encode(["address", "bytes"], [_address(account), data])


def discard_recovery() -> bytes:
    return DISCARD_RECOVERY


# --- recovery data: the arguments of the validator call that finalizeRecovery makes ------------


def passkey_recovery_data(
    *, credential_id: bytes, public_key: tuple[int, int], origin: str
) -> bytes:
    """`abi.encode(bytes credentialId, bytes32[2] publicKey, string domain)`: the arguments of
    WebAuthnValidator.addValidationKey (the same bytes as its install data)."""
    return userops.webauthn_install_data(
        credential_id=credential_id, public_key=public_key, origin=origin
    )


def eoa_recovery_data(*, owner: str) -> bytes:
    """`abi.encode(address newOwner)`: the argument of EOAKeyValidator.addOwner."""
    return encode(["address"], [_address(owner)])


def recovery_data_hash(data: bytes) -> bytes:
    """What `pendingRecovery(account).hashedData` holds for a request started with `data`."""
    return keccak(data)


# --- a guardian's EIP-712 signature, submitted by anyone (the portal's relayer) -----------------

ACCEPT_GUARDIAN_WITH_SIGNATURE = _selector(
    "acceptGuardianWithSignature(address,address,uint256,bytes)"
)
INITIALIZE_RECOVERY_WITH_SIGNATURE = _selector(
    "initializeRecoveryWithSignature(address,uint8,bytes,address,uint256,bytes)"
)
GUARDIAN_NONCES = _selector("guardianNonces(address)")
SIGNATURE_TYPES: dict[str, list[dict[str, str]]] = {
    "AcceptGuardian": [
        {"name": "account", "type": "address"},
        {"name": "guardian", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    "InitializeRecovery": [
        {"name": "account", "type": "address"},
        {"name": "guardian", "type": "address"},
        {"name": "recoveryType", "type": "uint8"},
        {"name": "dataHash", "type": "bytes32"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
}


def guardian_nonce_call(*, guardian: str) -> bytes:
    """`guardianNonces(guardian)`: the nonce its next signature must name."""
    return GUARDIAN_NONCES + encode(["address"], [_address(guardian)])


def _typed_data(
    primary: str, *, executor: str, chain_id: int, message: dict[str, object]
) -> dict[str, object]:
    """EIP-712 typed data in the JSON shape wallets (and ethers' signTypedData) take; the
    EIP712Domain type is implied by the domain's fields."""
    return {
        "domain": {
            "name": "GuardianExecutor",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": _address(executor),
        },
        "types": {primary: SIGNATURE_TYPES[primary]},
        "primaryType": primary,
        "message": message,
    }


def accept_guardian_typed_data(
    *, executor: str, chain_id: int, account: str, guardian: str, nonce: int, deadline: int
) -> dict[str, object]:
    return _typed_data(
        "AcceptGuardian",
        executor=executor,
        chain_id=chain_id,
        message={
            "account": _address(account),
            "guardian": _address(guardian),
            "nonce": nonce,
            "deadline": deadline,
        },
    )


def initialize_recovery_typed_data(
    *,
    executor: str,
    chain_id: int,
    account: str,
    guardian: str,
    recovery_type: RecoveryType,
    data: bytes,
    nonce: int,
    deadline: int,
) -> dict[str, object]:
    return _typed_data(
        "InitializeRecovery",
        executor=executor,
        chain_id=chain_id,
        message={
            "account": _address(account),
            "guardian": _address(guardian),
            "recoveryType": int(recovery_type),
            "dataHash": "0x" + keccak(data).hex(),
            "nonce": nonce,
            "deadline": deadline,
        },
    )


def typed_data_signer(typed_data: dict[str, Any], signature: bytes) -> str | None:
    """The address whose key made `signature` over `typed_data`; None when it is malformed or
    has a high s (the executor refuses those)."""
    if len(signature) != 65 or int.from_bytes(signature[32:64], "big") > SECP256K1_HALF_ORDER:
        return None
    message = encode_typed_data(
        domain_data=typed_data["domain"],
        message_types=typed_data["types"],
        message_data=typed_data["message"],
    )
    try:
        return str(Account.recover_message(message, signature=signature))
    except (ValueError, BadSignature):
        return None


def accept_guardian_with_signature(
    *, account: str, guardian: str, deadline: int, signature: bytes
) -> bytes:
    return ACCEPT_GUARDIAN_WITH_SIGNATURE + encode(
        ["address", "address", "uint256", "bytes"],
        [_address(account), _address(guardian), deadline, signature],
    )


def initialize_recovery_with_signature(
    *,
    account: str,
    recovery_type: RecoveryType,
    data: bytes,
    guardian: str,
    deadline: int,
    signature: bytes,
) -> bytes:
    return INITIALIZE_RECOVERY_WITH_SIGNATURE + encode(
        ["address", "uint8", "bytes", "address", "uint256", "bytes"],
        [_address(account), int(recovery_type), data, _address(guardian), deadline, signature],
    )
