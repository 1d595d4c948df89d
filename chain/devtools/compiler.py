"""Compile the Solidity contracts with the pinned solcjs and manage the committed artifacts.

The portal's own contracts are every `chain/contracts/*.sol` (the account proxy included);
OpenZeppelin's beacon and the reference SimpleAccount are compiled from node_modules too. Each
contract gets one artifact, `chain/contracts/build/<Name>.json`, holding its ABI, creation and
runtime bytecode and the compiler version and settings that produced them.

The EntryPoint is not compiled: its artifact is the one published in
`@account-abstraction/contracts` (the bytecode deployed at the canonical address on every chain),
copied as it is.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

CONTRACTS_DIR = Path(settings.BASE_DIR) / "chain" / "contracts"
BUILD_DIR = CONTRACTS_DIR / "build"
NODE_MODULES = Path(settings.BASE_DIR) / "node_modules"
COMPILE_SCRIPT = Path(__file__).resolve().parent / "solc_compile.js"

# Pinned compiler settings: changing any of them changes every bytecode and deployed address.
COMPILER_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 1_000_000},
    "viaIR": True,
    "evmVersion": "prague",
    "metadata": {"bytecodeHash": "none"},
}

# Library contracts compiled from node_modules: source unit → contract names to keep.
LIBRARY_CONTRACTS: dict[str, tuple[str, ...]] = {
    "@openzeppelin/contracts/proxy/beacon/UpgradeableBeacon.sol": ("UpgradeableBeacon",),
    "@account-abstraction/contracts/accounts/SimpleAccountFactory.sol": ("SimpleAccountFactory",),
    "@account-abstraction/contracts/accounts/SimpleAccount.sol": ("SimpleAccount",),
}

# Published artifacts used as they are (no compilation): name → path under node_modules.
PUBLISHED_ARTIFACTS: dict[str, str] = {
    "EntryPoint": "@account-abstraction/contracts/artifacts/EntryPoint.json",
}


class CompilationError(Exception):
    pass


@dataclass(frozen=True)
class Artifact:
    name: str
    source: str
    data: dict[str, Any]

    def dumps(self) -> str:
        return json.dumps(self.data, indent=2, sort_keys=True) + "\n"


def own_sources() -> dict[str, str]:
    """Source unit name → path of the portal's contracts (top level of chain/contracts)."""
    base = Path(settings.BASE_DIR)
    return {
        path.relative_to(base).as_posix(): path.as_posix()
        for path in sorted(CONTRACTS_DIR.glob("*.sol"))
    }


def published_artifacts() -> list[Artifact]:
    """The published artifacts, reduced to the fields every artifact has."""
    result = []
    for name, unit in PUBLISHED_ARTIFACTS.items():
        published = json.loads((NODE_MODULES / unit).read_text())
        data = {
            "contractName": published["contractName"],
            "sourceName": published["sourceName"],
            "abi": published["abi"],
            "bytecode": published["bytecode"],
            "deployedBytecode": published["deployedBytecode"],
            "compiler": {"published": unit},
        }
        result.append(Artifact(name=name, source=unit, data=data))
    return result


def compile_all() -> list[Artifact]:
    """Compile every contract and return its artifact (not written), published ones included."""
    sources: dict[str, str] = {}
    wanted: dict[str, tuple[str, ...] | None] = {}
    for unit, path in own_sources().items():
        sources[unit] = Path(path).read_text()
        wanted[unit] = None  # every contract defined in the file
    for unit, names in LIBRARY_CONTRACTS.items():
        sources[unit] = (NODE_MODULES / unit).read_text()
        wanted[unit] = names
    return sorted(
        compile_sources(sources, wanted=wanted) + published_artifacts(), key=lambda a: a.name
    )


def compile_sources(
    sources: dict[str, str], *, wanted: dict[str, tuple[str, ...] | None] | None = None
) -> list[Artifact]:
    """Compile source unit name → Solidity text with the pinned settings.

    Imports resolve against node_modules and the project root. `wanted` limits the artifacts per
    unit (None: every deployable contract of the unit; the default for all units).
    """
    wanted = wanted if wanted is not None else dict.fromkeys(sources)
    standard_input = {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sources.items()},
        "settings": {
            **COMPILER_SETTINGS,
            "outputSelection": {
                unit: {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
                for unit in sources
            },
        },
    }
    result = subprocess.run(  # noqa: S603
        ["node", str(COMPILE_SCRIPT)],  # noqa: S607
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
        check=False,
        cwd=settings.BASE_DIR,
    )
    if result.returncode != 0:
        raise CompilationError(result.stderr.strip() or "solc failed")
    output = json.loads(result.stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompilationError("\n".join(e.get("formattedMessage", e["message"]) for e in errors))
    version = output["compilerVersion"]
    artifacts: list[Artifact] = []
    for unit, contracts in sorted(output["contracts"].items()):
        keep = wanted.get(unit, ())
        for name, contract in sorted(contracts.items()):
            if keep is None:
                if not contract["evm"]["bytecode"]["object"]:
                    continue  # interfaces and abstract contracts
            elif name not in keep:
                continue
            artifacts.append(
                Artifact(
                    name=name,
                    source=unit,
                    data={
                        "contractName": name,
                        "sourceName": unit,
                        "abi": contract["abi"],
                        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
                        "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
                        "compiler": {"version": version, "settings": COMPILER_SETTINGS},
                    },
                )
            )
    return artifacts


def write_artifacts(artifacts: list[Artifact]) -> list[Path]:
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    names = {a.name for a in artifacts}
    for stale in BUILD_DIR.glob("*.json"):
        if stale.stem not in names:
            stale.unlink()
    for artifact in artifacts:
        path = BUILD_DIR / f"{artifact.name}.json"
        path.write_text(artifact.dumps())
        written.append(path)
    return written


def differences(artifacts: list[Artifact]) -> list[str]:
    """Names of artifacts whose committed file differs from `artifacts` (missing/extra included)."""
    problems = []
    fresh = {a.name: a for a in artifacts}
    on_disk = {p.stem: p for p in BUILD_DIR.glob("*.json")} if BUILD_DIR.exists() else {}
    for name, artifact in sorted(fresh.items()):
        path = on_disk.get(name)
        if path is None:
            problems.append(f"{name}: missing")
        elif path.read_text() != artifact.dumps():
            problems.append(f"{name}: differs from a fresh compile")
    for name in sorted(set(on_disk) - set(fresh)):
        problems.append(f"{name}: no longer produced by the sources")
    return problems
