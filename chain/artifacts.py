"""Read the committed contract artifacts (chain/contracts/build/<Name>.json)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings

BUILD_DIR = Path(settings.BASE_DIR) / "chain" / "contracts" / "build"


@cache
def load(name: str) -> dict[str, Any]:
    """The artifact of contract `name`: abi, bytecode, deployedBytecode, compiler."""
    path = BUILD_DIR / f"{name}.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def abi(name: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = load(name)["abi"]
    return result


def bytecode(name: str) -> bytes:
    return bytes.fromhex(load(name)["bytecode"].removeprefix("0x"))


def deployed_bytecode(name: str) -> bytes:
    return bytes.fromhex(load(name)["deployedBytecode"].removeprefix("0x"))
