"""Gas report: validation of a session-key transfer against a passkey transfer.

Runs on a fresh anvil (started and stopped here), deploys everything, opens an account with the
passkey and the SessionKeyValidator, creates a session (1-wei transfers to one address, a lifetime
value limit and a lifetime fee limit) and sends 1-wei transfers signed by each. "Validation" is the
gas of the EntryPoint's call to the account's validateUserOp (from a callTracer trace of handleOps:
the account, the validator and, for sessions, the limit trackers); "handleOps" is the whole
transaction's gasUsed. The first session operation writes its trackers fresh (zero to non-zero
storage); later ones update them. Run: `python bench/session_gas.py`. A report, not a test.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

from web3.logs import DISCARD

from chain import session_keys, userops
from chain.client import Sender, account_from_key, connect
from chain.devtools import deploy, devnet
from chain.devtools.authenticator import SoftwarePasskey
from chain.devtools.devkit import ANVIL_KEYS
from chain.devtools.devkit_sessions import SessionHarness

RECIPIENT = "0x000000000000000000000000000000000000bEEF"
ORIGIN = "https://portal.example"
VALIDATE_USER_OP = "0x19822f7c"


def validation_gas(harness: SessionHarness, tx_hash: Any, account: str) -> int:
    trace = harness.rpc(
        "debug_traceTransaction", ["0x" + bytes(tx_hash).hex(), {"tracer": "callTracer"}]
    )
    stack = [trace]
    while stack:
        frame = stack.pop()
        if str(frame.get("to", "")).lower() == account.lower() and str(
            frame.get("input", "")
        ).startswith(VALIDATE_USER_OP):
            return int(frame["gasUsed"], 16)
        stack.extend(frame.get("calls", []))
    raise SystemExit("no validateUserOp call in the trace")


def run(harness: SessionHarness, op: userops.PackedUserOperation, account: str) -> tuple[int, int]:
    receipt = harness.submit(op)
    event = harness.entry_point.events.UserOperationEvent().process_receipt(
        receipt, errors=DISCARD
    )[0]
    if not event["args"]["success"]:
        raise SystemExit("a user operation failed")
    return validation_gas(harness, receipt["transactionHash"], account), int(receipt["gasUsed"])


def main() -> None:
    node = devnet.start_anvil()
    try:
        w3 = connect(node.url)
        deployer = Sender(w3=w3, account=account_from_key(ANVIL_KEYS[0]))
        result = deploy.deploy_all(
            sender=deployer,
            sponsor_address=account_from_key(ANVIL_KEYS[1]).address,
            paymaster_deposit_wei=10**19,
        )
        harness = SessionHarness(w3=w3, addresses=result.addresses)
        deployer.send(to=RECIPIENT, value=1)
        passkey = SoftwarePasskey(origin=ORIGIN)
        account, _ = harness.deploy_account(passkey)
        deployer.send(to=account, value=10**18)
        transfer = userops.execute_call_data(target=RECIPIENT, value=1)

        def passkey_op(*, sponsored: bool) -> userops.PackedUserOperation:
            op = harness.build(account, transfer)
            if sponsored:
                op = harness.sponsor(op)
            signed, _ = harness.sign(op, passkey)
            return signed

        key = harness.new_key()
        spec = session_keys.SessionSpec(
            signer=key.address,
            expires_at=harness.now() + 86_400,
            fee_limit=session_keys.lifetime(10**17),
            transfer_policies=(
                session_keys.TransferSpec(
                    target=RECIPIENT, max_value_per_use=1, value_limit=session_keys.lifetime(100)
                ),
            ),
        )
        proof = session_keys.session_proof(spec=spec, account=account, signer_key=key.key)
        create = session_keys.create_session_call_data(
            validator=harness.sessions.address, spec=spec, proof=proof
        )
        create_op, _ = harness.sign(
            harness.sponsor(harness.build(account, create, call_gas_limit=400_000)), passkey
        )
        _, create_gas = run(harness, create_op, account)

        def session_op(*, sponsored: bool) -> userops.PackedUserOperation:
            return harness.session_op(
                account, spec, key, userops.Call(target=RECIPIENT, value=1), sponsored=sponsored
            )

        run(harness, passkey_op(sponsored=False), account)  # the account's first operation
        rows = [
            ("passkey transfer, account pays", *run(harness, passkey_op(sponsored=False), account)),
            ("passkey transfer, sponsored", *run(harness, passkey_op(sponsored=True), account)),
            (
                "session transfer, 1st (fresh trackers), account pays",
                *run(harness, session_op(sponsored=False), account),
            ),
            (
                "session transfer, 2nd, account pays",
                *run(harness, session_op(sponsored=False), account),
            ),
            (
                "session transfer, sponsored (no fee tracking)",
                *run(harness, session_op(sponsored=True), account),
            ),
        ]
        base = rows[0][1]
        print("| operation | validation gas | ratio to passkey | handleOps gasUsed |")
        print("|---|---:|---:|---:|")
        for name, validation, total in rows:
            print(f"| {name} | {validation:,} | {validation / base:.2f} | {total:,} |")
        print(f"| createSession (passkey-signed, sponsored) | | | {create_gas:,} |")
    finally:
        node.stop()


if __name__ == "__main__":
    main()
