"""Deterministic deployment of the portal's contracts.

Every contract is created through the deterministic CREATE2 deployer
(0x4e59b44847b379578588920ca78fbf26c0b4956c, present on anvil and most public chains) with a fixed
salt, so its address depends only on its bytecode and constructor arguments. Deploying again finds
the code already there and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from web3 import Web3

from chain import artifacts
from chain.client import Sender, contract

CREATE2_DEPLOYER = "0x4e59b44847b379578588920ca78fbf26c0b4956c"
DEPLOYMENT_SALT = keccak(text="passkey-portal.deployment.v1")

# The names written to the database and var/deployments/<chain id>.json.
CONTRACT_NAMES = (
    "EntryPoint",
    "ModularSmartAccount",
    "MSAFactory",
    "WebAuthnValidator",
    "SponsorPaymaster",
    "SessionKeyValidator",
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


def deploy_all(
    *,
    sender: Sender,
    sponsor_address: str,
    entry_point: str = "",
    paymaster_deposit_wei: int = 0,
    log: Callable[[str], None] = lambda _message: None,
) -> DeploymentResult:
    """Deploy (or find) every contract and top the paymaster's EntryPoint deposit up.

    The paymaster's owner is the deployer's address; its sponsor is `sponsor_address`.
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

    if entry_point:
        entry_point = to_checksum_address(entry_point)
        if not w3.eth.get_code(entry_point):
            raise DeploymentError(f"CHAIN_ENTRYPOINT_ADDRESS {entry_point} has no code")
        result.addresses["EntryPoint"] = entry_point
        log(f"EntryPoint: {entry_point} (configured)")
    else:
        entry_point = step("EntryPoint", init_code("EntryPoint", [], []))

    implementation = step(
        "ModularSmartAccount", init_code("ModularSmartAccount", ["address"], [entry_point])
    )
    step("MSAFactory", init_code("MSAFactory", ["address"], [implementation]))
    step("WebAuthnValidator", init_code("WebAuthnValidator", [], []))
    paymaster = step(
        "SponsorPaymaster",
        init_code(
            "SponsorPaymaster",
            ["address", "address", "address"],
            [entry_point, sender.address, to_checksum_address(sponsor_address)],
        ),
    )
    step("SessionKeyValidator", init_code("SessionKeyValidator", [], []))

    entry_point_contract = contract(w3, "EntryPoint", entry_point)
    balance = int(entry_point_contract.functions.balanceOf(paymaster).call())
    if balance < paymaster_deposit_wei:
        top_up = paymaster_deposit_wei - balance
        sender.transact(contract(w3, "SponsorPaymaster", paymaster), "deposit", value=top_up)
        result.deposited_wei = top_up
        log(f"SponsorPaymaster deposit: +{top_up} wei (now {paymaster_deposit_wei})")
    return result
