"""Call data for guardian recovery: GuardianExecutor's functions, the recovery data of its two
recovery types, and installing the executor (and the EOAKeyValidator) on an existing account.

Pure functions like `chain.userops` (no chain access). Who sends what:

- the account itself, in a passkey-approved user operation whose call data is
  `account_call(executor=..., data=...)`: `propose_guardian`, `remove_guardian`, `discard_recovery`;
  installing a module is a call to the account's own `installModule`, so `install_*` return the
  user operation's call data directly;
- the guardian (an EOA sends the function data to the executor; a portal account wraps it in
  `account_call`): `accept_guardian`, `initialize_recovery`;
- anyone, e.g. the portal's relayer, once the delay has passed: `finalize_recovery`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from chain import userops

# GuardianExecutor's constants (seconds): finalizing is possible strictly after DELAY and strictly
# before VALIDITY from the start of the request; a new request may start only after VALIDITY.
REQUEST_DELAY_SECONDS = 24 * 60 * 60
REQUEST_VALIDITY_SECONDS = 72 * 60 * 60

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
