"""Which user operations change who controls an account: the sponsor pays for none of them while a
guard (the domain watch's lockdown) refuses `sponsor.ownership_call`."""

from __future__ import annotations

from eth_abi import decode
from eth_utils import to_checksum_address

from chain.userops import EXECUTE_SELECTOR

# Every call to these changes keys, owners, guardians or a recovery.
OWNERSHIP_CONTRACTS = ("WebAuthnValidator", "EOAKeyValidator", "GuardianExecutor")
CALLTYPE_SINGLE, CALLTYPE_BATCH = 0x00, 0x01


def changes_ownership(*, call_data: bytes, account: str, addresses: dict[str, str]) -> bool:
    """Whether `call_data` (a user operation's) touches who controls `account`: a call to the
    key, owner or guardian modules, to the account itself (modules, registry), a delegatecall, or
    anything but `execute` (the account's own functions, called by the EntryPoint)."""
    if call_data[:4] != EXECUTE_SELECTOR:
        return True
    try:
        mode, execution = decode(["bytes32", "bytes"], call_data[4:])
        if mode[0] == CALLTYPE_SINGLE:
            targets = [execution[:20]]
        elif mode[0] == CALLTYPE_BATCH:
            (calls,) = decode(["(address,uint256,bytes)[]"], execution)
            targets = [bytes.fromhex(target[2:]) for target, _, _ in calls]
        else:
            return True  # delegatecall (or unknown): it can do anything
    except Exception:  # undecodable: the account would revert it; sponsor nothing unclear
        return True
    sensitive = {account.lower()} | {
        addresses[name].lower() for name in OWNERSHIP_CONTRACTS if name in addresses
    }
    return any(to_checksum_address(target).lower() in sensitive for target in targets)
