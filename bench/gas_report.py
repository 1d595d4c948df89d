"""Gas report: the passkey account against the ERC-4337 reference SimpleAccount and a plain EOA.

Runs on a fresh anvil (started and stopped here), deploys everything, and prints a Markdown table of
the gas used by each transaction (receipt gasUsed: what the bundler pays, calldata included). Every
transfer is a 1-wei transfer to an address that already holds ETH, made as the account's second
operation, so that first-use storage (nonce slot, deposit) is not counted. Run: `make gas`.
This is a report, not a test.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django

django.setup()

from eth_account import Account  # noqa: E402 (after django.setup())
from eth_utils import to_checksum_address  # noqa: E402 (after django.setup())
from web3.logs import DISCARD  # noqa: E402 (after django.setup())

from chain import userops  # noqa: E402 (after django.setup())
from chain.client import Sender, account_from_key, connect, contract  # noqa: E402 (after django.setup())
from chain.devtools import deploy, devnet  # noqa: E402 (after django.setup())
from chain.devtools.authenticator import SoftwarePasskey  # noqa: E402 (after django.setup())
from chain.devtools.devkit import ANVIL_KEYS, Harness  # noqa: E402 (after django.setup())

RECIPIENT = "0x000000000000000000000000000000000000bEEF"
ORIGIN = "https://portal.example"


def handle_ops_gas(harness: Harness, op: userops.PackedUserOperation) -> int:
    receipt = harness.submit(op)
    event = harness.entry_point.events.UserOperationEvent().process_receipt(
        receipt, errors=DISCARD
    )[0]
    if not event["args"]["success"]:
        raise SystemExit("a user operation failed")
    return int(receipt["gasUsed"])


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
        harness = Harness(w3=w3, addresses=result.addresses)
        deployer.send(to=RECIPIENT, value=1)
        rows: list[tuple[str, int]] = []

        # Passkey account: deployment through the factory (one validator, one passkey).
        passkey = SoftwarePasskey(origin=ORIGIN)
        account, receipt = harness.deploy_account(passkey)
        rows.append(("passkey account deployment (factory.deployAccount)", int(receipt["gasUsed"])))
        deployer.send(to=account, value=10**18)

        transfer = userops.execute_call_data(target=RECIPIENT, value=1)

        def passkey_op(call_data: bytes, *, sponsored: bool) -> userops.PackedUserOperation:
            op = harness.build(account, call_data)
            if sponsored:
                op = harness.sponsor(op)
            signed, _ = harness.sign(op, passkey)
            return signed

        handle_ops_gas(harness, passkey_op(transfer, sponsored=False))  # first operation
        passkey_self_paid = handle_ops_gas(harness, passkey_op(transfer, sponsored=False))
        passkey_sponsored = handle_ops_gas(harness, passkey_op(transfer, sponsored=True))
        second = SoftwarePasskey(origin=ORIGIN)
        add_key = harness.validator.encode_abi(
            "addValidationKey",
            args=[second.credential_id, [k.to_bytes(32, "big") for k in second.public_key], ORIGIN],
        )
        add_key_gas = handle_ops_gas(
            harness,
            passkey_op(
                userops.execute_call_data(
                    target=harness.validator.address, data=bytes.fromhex(add_key[2:])
                ),
                sponsored=True,
            ),
        )

        # Reference SimpleAccount (ECDSA owner), deployed through its factory by initCode.
        factory_address, _ = deploy.deploy_create2(
            deployer,
            deploy.init_code("SimpleAccountFactory", ["address"], [harness.entry_point.address]),
        )
        simple_factory = contract(w3, "SimpleAccountFactory", factory_address)
        owner = Account.create()
        simple_address = to_checksum_address(
            simple_factory.functions.getAddress(owner.address, 0).call()
        )
        deployer.send(to=simple_address, value=10**18)
        simple = contract(w3, "SimpleAccount", simple_address)
        simple_transfer = bytes.fromhex(
            simple.encode_abi("execute", args=[RECIPIENT, 1, b""]).removeprefix("0x")
        )
        create = simple_factory.encode_abi("createAccount", args=[owner.address, 0])
        init_code = bytes.fromhex(factory_address[2:]) + bytes.fromhex(create[2:])

        def simple_op(nonce: int, init: bytes = b"") -> userops.PackedUserOperation:
            op = harness.build(simple_address, simple_transfer, nonce=nonce, init_code=init)
            signature = owner.unsafe_sign_hash(harness.op_hash(op)).signature
            return op.with_changes(signature=bytes(signature))

        simple_first = handle_ops_gas(harness, simple_op(0, init_code))
        simple_second = handle_ops_gas(harness, simple_op(1))

        eoa = Sender(w3=w3, account=account_from_key(ANVIL_KEYS[3]))
        eoa_gas = int(eoa.send(to=RECIPIENT, value=1)["gasUsed"])

        rows += [
            ("passkey 1-wei transfer, 2nd op, account pays gas", passkey_self_paid),
            ("passkey 1-wei transfer, 2nd op, paymaster-sponsored", passkey_sponsored),
            ("passkey-signed addValidationKey, sponsored", add_key_gas),
            ("SimpleAccount deployment + 1st transfer (initCode)", simple_first),
            ("SimpleAccount 1-wei transfer, 2nd op, account pays gas", simple_second),
            ("plain EOA 1-wei transfer", eoa_gas),
        ]
        print("| operation | gas used | ratio to SimpleAccount transfer |")
        print("|---|---:|---:|")
        for label, gas in rows:
            print(f"| {label} | {gas:,} | {gas / simple_second:.2f} |")
        print()
        for label, gas, target in (
            ("self-paid", passkey_self_paid, 1.15),
            ("sponsored", passkey_sponsored, 1.25),
        ):
            ratio = gas / simple_second
            print(
                f"passkey transfer ({label}) / SimpleAccount transfer (self-paid): {ratio:.3f} "
                f"(target ≤ {target}: {'met' if ratio <= target else 'NOT met'})"
            )
    finally:
        node.stop()


if __name__ == "__main__":
    main()
