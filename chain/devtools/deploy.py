"""Deterministic deployment of the portal's contracts.

Every contract is created through the deterministic CREATE2 deployer
(0x4e59b44847b379578588920ca78fbf26c0b4956c, present on anvil and most public chains) with a fixed
salt, so its address depends only on its bytecode and constructor arguments. Deploying again finds
the code already there and changes nothing.

The EntryPoint is the canonical v0.8 one at 0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108: on a dev
chain (anvil's chain id) it is deployed there from the published artifact with the canonical salt;
any other chain must already have it.

Accounts are beacon proxies: the UpgradeableBeacon (owner: the deployer's address) is created
pointing at a bootstrap contract (the CREATE2 deployer itself) and then at the account
implementation, so its address, and the factory's, do not change when the implementation does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from web3 import Web3

from chain import artifacts
from chain.client import Sender, contract
from chain.devtools import devnet

CREATE2_DEPLOYER = "0x4e59b44847b379578588920ca78fbf26c0b4956c"
# The deployer's runtime code (Arachnid's deterministic-deployment-proxy), put on a dev chain
# that lacks it.
CREATE2_DEPLOYER_CODE = bytes.fromhex(
    "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe03601600081602082378035828234"
    "f58015156039578182fd5b8082525050506014600cf3"
)
DEPLOYMENT_SALT = keccak(text="passkey-portal.deployment.v1")

ENTRY_POINT_ADDRESS = "0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108"
ENTRY_POINT_SALT = bytes.fromhex("0a59dbff790c23c976a548690c27297883cc66b4c67024f9117b0238995e35e9")

# A known-good P256VERIFY input (Wycheproof, as OpenZeppelin's P256 uses it to probe 0x100).
P256_PRECOMPILE = "0x0000000000000000000000000000000000000100"
P256_PROBE = bytes.fromhex(
    "bb5a52f42f9c9261ed4361f59422a1e30036e7c32b270c8807a419feca605023"
    + "00" * 31
    + "05"
    + "00" * 31
    + "01"
    + "a71af64de5126a4a4e02b7922d66ce9415ce88a4c9d25514d91082c8725ac957"
    + "5d47723c8fbe580bb369fec9c2665d8e30a435b9932645482e7c9f11e872296b"
)

# The names written to the database and var/deployments/<chain id>.json. ModularSmartAccount is
# the implementation the beacon points at; AccountBeacon is an UpgradeableBeacon.
CONTRACT_NAMES = (
    "EntryPoint",
    "ModularSmartAccount",
    "AccountBeacon",
    "MSAFactory",
    "WebAuthnValidator",
    "SponsorPaymaster",
    "EOAKeyValidator",
    "GuardianExecutor",
    "SessionKeyValidator",
    "RelayerBatch",
)


class DeploymentError(Exception):
    pass


def init_code(name: str, constructor_types: list[str], constructor_args: list[object]) -> bytes:
    return artifacts.bytecode(name) + (
        encode(constructor_types, constructor_args) if constructor_types else b""
    )


def create2_address(
    init_code: bytes, *, salt: bytes = DEPLOYMENT_SALT, deployer: str = CREATE2_DEPLOYER
) -> str:
    digest = keccak(b"\xff" + bytes.fromhex(deployer[2:]) + salt + keccak(init_code))
    return to_checksum_address(digest[12:])


@dataclass
class DeploymentResult:
    addresses: dict[str, str]
    created: list[str] = field(default_factory=list)
    deposited_wei: int = 0


def deploy_create2(
    sender: Sender, init_code: bytes, *, salt: bytes = DEPLOYMENT_SALT
) -> tuple[str, bool]:
    """Deploy `init_code` via the CREATE2 deployer unless its code exists: (address, created)."""
    w3 = sender.w3
    address = create2_address(init_code, salt=salt)
    if w3.eth.get_code(to_checksum_address(address)):
        return address, False
    if not w3.eth.get_code(to_checksum_address(CREATE2_DEPLOYER)):
        raise DeploymentError(f"no CREATE2 deployer at {CREATE2_DEPLOYER} on this chain")
    sender.send(to=CREATE2_DEPLOYER, data=salt + init_code)
    if not w3.eth.get_code(to_checksum_address(address)):
        raise DeploymentError(f"deployment to {address} produced no code")
    return address, True


def is_dev_chain(w3: Web3) -> bool:
    return int(w3.eth.chain_id) == devnet.ANVIL_CHAIN_ID


def ensure_create2_deployer(w3: Web3, *, log: Callable[[str], None]) -> None:
    """The CREATE2 deployer must exist; on a dev chain without it (anvil --no-create2), put it."""
    deployer = to_checksum_address(CREATE2_DEPLOYER)
    if w3.eth.get_code(deployer):
        return
    if not is_dev_chain(w3):
        raise DeploymentError(f"no CREATE2 deployer at {deployer} on chain {w3.eth.chain_id}")
    url = w3.provider.endpoint_uri  # type: ignore[attr-defined]
    devnet.rpc(url, "anvil_setCode", [deployer, "0x" + CREATE2_DEPLOYER_CODE.hex()])
    log(f"CREATE2 deployer: {deployer} (code set on the dev chain)")


def ensure_entry_point(sender: Sender, *, log: Callable[[str], None]) -> tuple[str, bool]:
    """The canonical EntryPoint v0.8: deployed from the published artifact on a dev chain,
    required everywhere else."""
    w3 = sender.w3
    if w3.eth.get_code(to_checksum_address(ENTRY_POINT_ADDRESS)):
        log(f"EntryPoint: {ENTRY_POINT_ADDRESS} (already deployed)")
        return ENTRY_POINT_ADDRESS, False
    if not is_dev_chain(w3):
        raise DeploymentError(
            f"no EntryPoint v0.8 at its canonical address {ENTRY_POINT_ADDRESS} on chain "
            f"{w3.eth.chain_id}: the portal only works with the canonical EntryPoint, which this "
            "command deploys on a dev chain only"
        )
    address, _ = deploy_create2(sender, artifacts.bytecode("EntryPoint"), salt=ENTRY_POINT_SALT)
    if address != ENTRY_POINT_ADDRESS:
        raise DeploymentError(f"the EntryPoint landed at {address}, not {ENTRY_POINT_ADDRESS}")
    log(f"EntryPoint: {address} (deployed)")
    return address, True


def p256_precompile_available(w3: Web3) -> bool:
    """Whether 0x100 verifies a known P-256 signature (RIP-7212 / EIP-7951)."""
    result = w3.eth.call({"to": to_checksum_address(P256_PRECOMPILE), "data": P256_PROBE})
    return bytes(result) == (1).to_bytes(32, "big")


def deploy_all(
    *,
    sender: Sender,
    sponsor_address: str,
    paymaster_deposit_wei: int = 0,
    upgrade_accounts: bool = False,
    log: Callable[[str], None] = lambda _message: None,
) -> DeploymentResult:
    """Deploy (or find) every contract and top the paymaster's EntryPoint deposit up.

    The paymaster's and the beacon's owner is the deployer's address; the paymaster's sponsor is
    `sponsor_address`. A beacon already pointing at another implementation than this build's is
    left as it is unless `upgrade_accounts` (then the deployer, which must own it, upgrades it).
    """
    w3: Web3 = sender.w3
    result = DeploymentResult(addresses={})

    def step(name: str, init_code: bytes) -> str:
        address, created = deploy_create2(sender, init_code)
        result.addresses[name] = address
        if created:
            result.created.append(name)
        log(f"{name}: {address} ({'deployed' if created else 'already deployed'})")
        return address

    ensure_create2_deployer(w3, log=log)
    entry_point, created = ensure_entry_point(sender, log=log)
    result.addresses["EntryPoint"] = entry_point
    if created:
        result.created.append("EntryPoint")

    implementation = step(
        "ModularSmartAccount", init_code("ModularSmartAccount", ["address"], [entry_point])
    )
    beacon_address = step(
        "AccountBeacon",
        init_code(
            "UpgradeableBeacon",
            ["address", "address"],
            [to_checksum_address(CREATE2_DEPLOYER), sender.address],
        ),
    )
    beacon = contract(w3, "UpgradeableBeacon", beacon_address)
    current: str = to_checksum_address(beacon.functions.implementation().call())
    if current != implementation:
        fresh = current == to_checksum_address(CREATE2_DEPLOYER)
        if fresh or upgrade_accounts:
            owner = to_checksum_address(beacon.functions.owner().call())
            if owner != sender.address:
                raise DeploymentError(
                    f"the account beacon {beacon_address} is owned by {owner}: that owner must "
                    f"call upgradeTo({implementation})"
                )
            sender.transact(beacon, "upgradeTo", implementation)
            log(f"AccountBeacon: every account now runs {implementation} (was {current})")
            current = implementation
        else:
            log(
                f"AccountBeacon: accounts run {current}; this build's implementation is "
                f"{implementation} (deploycontracts --upgrade-accounts upgrades them)"
            )
    result.addresses["ModularSmartAccount"] = current
    step("MSAFactory", init_code("MSAFactory", ["address"], [beacon_address]))
    webauthn_validator = step("WebAuthnValidator", init_code("WebAuthnValidator", [], []))
    paymaster = step(
        "SponsorPaymaster",
        init_code(
            "SponsorPaymaster",
            ["address", "address", "address"],
            [entry_point, sender.address, to_checksum_address(sponsor_address)],
        ),
    )

    # Guardian recovery: the executor adds keys to these two validators (never removes any).
    eoa_validator = step("EOAKeyValidator", init_code("EOAKeyValidator", [], []))
    step(
        "GuardianExecutor",
        init_code("GuardianExecutor", ["address", "address"], [webauthn_validator, eoa_validator]),
    )
    step("SessionKeyValidator", init_code("SessionKeyValidator", [], []))
    # The relayer's bundles of account deployments (chain.pipeline.bundles).
    step("RelayerBatch", init_code("RelayerBatch", [], []))

    entry_point_contract = contract(w3, "EntryPoint", entry_point)
    balance = int(entry_point_contract.functions.balanceOf(paymaster).call())
    if balance < paymaster_deposit_wei:
        top_up = paymaster_deposit_wei - balance
        sender.transact(contract(w3, "SponsorPaymaster", paymaster), "deposit", value=top_up)
        result.deposited_wei = top_up
        log(f"SponsorPaymaster deposit: +{top_up} wei (now {paymaster_deposit_wei})")
    if not p256_precompile_available(w3):
        log(
            "P256VERIFY (0x100) is missing on this chain: passkey signatures are verified in "
            "Solidity (OpenZeppelin P256), which costs far more gas per operation"
        )
    return result
