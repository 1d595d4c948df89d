"""viem's signature verification (npm `viem`, pinned in package.json), run by node against anvil:
a verifier of ERC-1271, ERC-6492 and Sign-In with Ethereum that nobody here wrote."""

import json
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "verifiers" / "viem_verify.mjs"


def hex0x(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def viem_verify(*, rpc_url: str, chain_id: int, checks: list[dict[str, Any]]) -> list[bool]:
    """One verdict per check (see the script for their shapes); signatures are 0x hex."""
    completed = subprocess.run(  # noqa: S603
        ["node", str(SCRIPT)],  # noqa: S607
        input=json.dumps({"rpc_url": rpc_url, "chain_id": chain_id, "checks": checks}),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    if completed.returncode != 0:
        raise AssertionError(f"viem verifier failed: {completed.stderr}")
    verdicts = json.loads(completed.stdout)
    assert isinstance(verdicts, list) and all(isinstance(v, bool) for v in verdicts), verdicts
    return verdicts
