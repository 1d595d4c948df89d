"""The browser's derivation (static/js/recovery-code.js, run by node with the ethers the pages
load) and the documented one (tests/recovery/recovery_code.py) give the same key for the same
code, however it is typed; its signatures are the ones the portal checks."""

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from chain import recovery_calls
from tests.recovery.recovery_code import ALPHABET, key_of, new_code, sign

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "js" / "derive.mjs"
TYPED = recovery_calls.initialize_recovery_typed_data(
    executor="0x00000000000000000000000000000000000000E1",
    chain_id=31337,
    account="0x00000000000000000000000000000000000000A1",
    guardian="0x00000000000000000000000000000000000000B2",
    recovery_type=recovery_calls.RecoveryType.PASSKEY,
    data=b"new passkey",
    nonce=3,
    deadline=1_900_000_000,
)


def browser(codes: list[str]) -> dict[str, Any]:
    completed = subprocess.run(  # noqa: S603
        ["node", str(SCRIPT)],  # noqa: S607
        input=json.dumps({"codes": codes, "typed_data": TYPED}),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return dict(json.loads(completed.stdout))


def test_the_browser_derives_the_documented_key_and_signs_what_the_portal_checks() -> None:
    code = new_code()
    sloppy = code.lower().replace("-", " ").replace("1", "l").replace("0", "o")
    fixed = "0000-0000-0000-0000-0000-0000-0000-0001"
    answer = browser([code, sloppy, fixed])
    key = key_of(code)
    assert [r["address"] for r in answer["results"]] == [
        key.address,
        key.address,
        key_of(fixed).address,
    ]
    signature = bytes.fromhex(answer["results"][0]["signature"][2:])
    assert signature == bytes.fromhex(sign(key, TYPED)[2:])
    assert recovery_calls.typed_data_signer(TYPED, signature) == key.address
    fresh = answer["fresh"]
    assert re.fullmatch(rf"([{ALPHABET}]{{4}}-){{7}}[{ALPHABET}]{{4}}", fresh), fresh
    assert fresh != browser([code])["fresh"]
