"""The recovery modules keep ZKsync SSO's ABI (selectors, event topics, error selectors, from
sso-interfaces.md §5 and §8) plus the portal's listed extensions, and chain.recovery_calls encodes
exactly what the ABI encodes."""

from typing import Any

from eth_account import Account
from eth_utils import keccak
from web3 import Web3

from chain import artifacts
from chain import recovery_calls as rc

# sso-interfaces.md §8 (GuardianExecutor) and §5 (EOAKeyValidator).
REFERENCE: dict[str, dict[str, set[str]]] = {
    "GuardianExecutor": {
        "function": {
            "0x7851fe0b EOA_VALIDATOR()",
            "0xfe8d85ab REQUEST_DELAY_TIME()",
            "0x32c768a9 REQUEST_VALIDITY_TIME()",
            "0xa703c498 WEBAUTHN_VALIDATOR()",
            "0x43e3cfc5 acceptGuardian(address)",
            "0x3d186f86 discardRecovery()",
            "0x32cde66a finalizeRecovery(address,bytes)",
            "0x921d2edd guardianStatusFor(address,address)",
            "0x29806a1c guardiansFor(address)",
            "0xb233b073 initializeRecovery(address,uint8,bytes)",
            "0xd60b347f isInitialized(address)",
            "0xecd05961 isModuleType(uint256)",
            "0x6d61fe70 onInstall(bytes)",
            "0x8a91b0e3 onUninstall(bytes)",
            "0xea969265 pendingRecovery(address)",
            "0xc304555f proposeGuardian(address)",
            "0x71404156 removeGuardian(address)",
            "0x01ffc9a7 supportsInterface(bytes4)",
        },
        "event": {
            "0xbc3292102fa77e083913064b282926717cdfaede4d35f553d66366c0a3da755a "
            "GuardianAdded(address,address)",
            "0xf1284770232ce131bb37044a576145e0b24fd6b24f5710624b11255d5ac61a81 "
            "GuardianProposed(address,address)",
            "0xee943cdb81826d5909c559c6b1ae6908fcaf2dbc16c4b730346736b486283e8b "
            "GuardianRemoved(address,address)",
            "0xb8150ac10bef5c47fd8b3e1d3f59adb966b629b4f635487f0741406ed1527ebc "
            "RecoveryDiscarded(address)",
            "0x67e7e71677fff5d10e5f4c8855a7c978cafa5e152631ba1a283fe64a83030e58 "
            "RecoveryFinished(address)",
            "0xbed910f1ec539b0aac75c812da94cc8cdcba0a9c75db9123f9f4874fbf141e90 "
            "RecoveryInitiated(address,address,(uint8,bytes32,uint48),bytes)",
        },
        "error": {
            "0x93360fbf AlreadyInitialized(address)",
            "0x7d157f7b EmptyRecoveryData()",
            "0x02b56686 EnumerableMapNonexistentKey(bytes32)",
            "0x5573b299 GuardianAlreadyPresent(address,address)",
            "0x9f5b3c26 GuardianInvalidAddress(address)",
            "0x670ed3c6 GuardianNotActive(address,address)",
            "0x925f444b GuardianNotFound(address,address)",
            "0xdb56b6e9 NoRecoveryInProgress(address)",
            "0xf91bd6f1 NotInitialized(address)",
            "0x0e982741 RecoveryDataMismatch(bytes32,bytes32)",
            "0xa3122b64 RecoveryInProgress(address)",
            "0xb1e03be4 RecoveryTimestampInvalid(uint48)",
            "0x27df9adf UnsupportedRecoveryType(uint8)",
            "0xaf84bf27 ValidatorNotInstalled(address,address)",
        },
    },
    "EOAKeyValidator": {
        "function": {
            "0x7065cb48 addOwner(address)",
            "0xd60b347f isInitialized(address)",
            "0xecd05961 isModuleType(uint256)",
            "0xf582bceb isOwnerOf(address,address)",
            "0xf551e2ee isValidSignatureWithSender(address,bytes32,bytes)",
            "0x6d61fe70 onInstall(bytes)",
            "0x8a91b0e3 onUninstall(bytes)",
            "0x173825d9 removeOwner(address)",
            "0x01ffc9a7 supportsInterface(bytes4)",
            "0x97003203 validateUserOp("
            "(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32)",
        },
        "event": {
            "0xc82bdbbf677a2462f2a7e22e4ba9abd209496b69cd7b868b3b1d28f76e09a40a "
            "OwnerAdded(address,address)",
            "0xe594d081b4382713733fe631966432c9cea5199afb2db5c3c1931f9f93003679 "
            "OwnerRemoved(address,address)",
        },
        "error": {
            "0x93360fbf AlreadyInitialized(address)",
            "0x78bedf4d InvalidTargetAddress(address)",
            "0xf91bd6f1 NotInitialized(address)",
            "0x18953024 OwnerAlreadyExists(address,address)",
            "0xebe8496e OwnerDoesNotExist(address,address)",
            "0xc80b8834 ZeroAddress(address)",
        },
    },
}

# The portal's additions to the reference (signature-based accept and start, for recovery keys):
# nothing else may appear.
EXTENSIONS: dict[str, dict[str, set[str]]] = {
    "GuardianExecutor": {
        "function": {
            "0x71b26da4 ACCEPT_GUARDIAN_TYPEHASH()",
            "0x66736ba9 INITIALIZE_RECOVERY_TYPEHASH()",
            "0xb9d19bf7 acceptGuardianWithSignature(address,address,uint256,bytes)",
            "0xf698da25 domainSeparator()",
            "0xeac43b4a guardianNonces(address)",
            "0xc85c1a98 initializeRecoveryWithSignature(address,uint8,bytes,address,uint256,bytes)",
        },
        "event": set(),
        "error": {
            "0x82d3b471 InvalidGuardianSignature(address)",
            "0xcd21db4f SignatureExpired(uint256)",
        },
    },
}

# Mutability that the reference declares (a view onInstall, view validation).
REFERENCE_MUTABILITY = {
    "GuardianExecutor": {
        "onInstall": "view",
        "isModuleType": "pure",
        "discardRecovery": "nonpayable",
    },
    "EOAKeyValidator": {
        "validateUserOp": "view",
        "isModuleType": "pure",
        "supportsInterface": "pure",
    },
}


def _type(entry: dict[str, Any]) -> str:
    if entry["type"].startswith("tuple"):
        inner = ",".join(_type(c) for c in entry["components"])
        return f"({inner}){entry['type'][5:]}"
    return str(entry["type"])


def abi_entries(name: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"function": set(), "event": set(), "error": set()}
    for entry in artifacts.abi(name):
        if entry["type"] not in found:
            continue
        signature = f"{entry['name']}({','.join(_type(i) for i in entry['inputs'])})"
        digest = keccak(text=signature)
        ident = digest if entry["type"] == "event" else digest[:4]
        found[entry["type"]].add(f"0x{ident.hex()} {signature}")
    return found


def test_the_abis_are_the_references() -> None:
    for name, reference in REFERENCE.items():
        added = EXTENSIONS.get(name, {})
        expected = {kind: entries | added.get(kind, set()) for kind, entries in reference.items()}
        assert abi_entries(name) == expected, name
        mutability = {
            e["name"]: e["stateMutability"] for e in artifacts.abi(name) if e["type"] == "function"
        }
        for function, wanted in REFERENCE_MUTABILITY[name].items():
            assert mutability[function] == wanted, (name, function)
    constructor = next(e for e in artifacts.abi("GuardianExecutor") if e["type"] == "constructor")
    assert [i["type"] for i in constructor["inputs"]] == ["address", "address"]


def test_call_data_is_what_the_abi_encodes() -> None:
    w3 = Web3()
    address = Web3.to_checksum_address("0x000000000000000000000000000000000000dEaD")
    executor = w3.eth.contract(address=address, abi=artifacts.abi("GuardianExecutor"))
    account = w3.eth.contract(address=address, abi=artifacts.abi("ModularSmartAccount"))
    webauthn = w3.eth.contract(address=address, abi=artifacts.abi("WebAuthnValidator"))
    eoa = w3.eth.contract(address=address, abi=artifacts.abi("EOAKeyValidator"))
    someone = Account.create().address
    data = b"\x01\x02"

    def abi(contract: Any, function: str, *args: Any) -> bytes:
        return bytes.fromhex(contract.encode_abi(function, args=list(args))[2:])

    assert rc.propose_guardian(guardian=someone) == abi(executor, "proposeGuardian", someone)
    assert rc.accept_guardian(account=someone) == abi(executor, "acceptGuardian", someone)
    assert rc.remove_guardian(guardian=someone) == abi(executor, "removeGuardian", someone)
    assert rc.discard_recovery() == abi(executor, "discardRecovery")
    assert rc.initialize_recovery(
        account=someone, recovery_type=rc.RecoveryType.PASSKEY, data=data
    ) == abi(executor, "initializeRecovery", someone, 2, data)
    assert rc.finalize_recovery(account=someone, data=data) == abi(
        executor, "finalizeRecovery", someone, data
    )
    assert rc.install_guardian_executor(executor=someone) == abi(
        account, "installModule", 2, someone, b""
    )
    signature = b"\x05" * 65
    assert rc.accept_guardian_with_signature(
        account=someone, guardian=address, deadline=9, signature=signature
    ) == abi(executor, "acceptGuardianWithSignature", someone, address, 9, signature)
    assert rc.initialize_recovery_with_signature(
        account=someone,
        recovery_type=rc.RecoveryType.PASSKEY,
        data=data,
        guardian=address,
        deadline=9,
        signature=signature,
    ) == abi(executor, "initializeRecoveryWithSignature", someone, 2, data, address, 9, signature)
    assert rc.guardian_nonce_call(guardian=someone) == abi(executor, "guardianNonces", someone)

    # Recovery data are the arguments of the validator function finalizeRecovery calls.
    credential_id, key, origin = b"\x07" * 16, (3, 4), "https://portal.example"
    passkey = rc.passkey_recovery_data(credential_id=credential_id, public_key=key, origin=origin)
    words = [k.to_bytes(32, "big") for k in key]
    assert rc.ADD_VALIDATION_KEY + passkey == abi(
        webauthn, "addValidationKey", credential_id, words, origin
    )
    assert rc.ADD_OWNER + rc.eoa_recovery_data(owner=someone) == abi(eoa, "addOwner", someone)
    assert rc.recovery_data_hash(passkey) == keccak(passkey)
    assert rc.TOPICS["RecoveryInitiated"].hex().startswith("bed910f1")
