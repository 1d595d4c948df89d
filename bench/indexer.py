"""Indexer benchmark: events indexed per second by chain.indexer.index_chain.

Starts a fresh anvil, deploys the contracts, deploys one passkey account and has it add thousands
of keys to the WebAuthnValidator (batches of addValidationKey calls in sponsored user operations,
with empty blocks mined between them), then times `index_chain` from block 0 to the head: reading
the logs, decoding them, storing ChainEvent rows, and turning the matching Passkey rows `active`.
Runs on a throwaway test database (test_<name> of DATABASE_URL, or SQLite in memory), so the dev
database is untouched. Run: `.venv/bin/python bench/indexer.py [--events N] [--batch-blocks N]`,
with DATABASE_URL=postgres://... for PostgreSQL's figure. A report, not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django

django.setup()  # chain.client imports models

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from eth_abi import encode  # noqa: E402
from eth_utils import keccak  # noqa: E402

from chain import userops  # noqa: E402
from chain.client import Sender, account_from_key, connect  # noqa: E402
from chain.devtools import deploy, devnet  # noqa: E402
from chain.devtools.authenticator import SoftwarePasskey  # noqa: E402
from chain.devtools.devkit import ANVIL_KEYS, Harness  # noqa: E402

ORIGIN = "https://portal.example"
KEYS_PER_OPERATION = 200
EMPTY_BLOCKS_BETWEEN = 40


def add_keys_call(harness: Harness, credential_ids: list[bytes]) -> bytes:
    key = [b"\x01" * 32, b"\x02" * 32]  # addValidationKey only refuses an all-zero key
    selector = keccak(text="addValidationKey(bytes,bytes32[2],string)")[:4]
    calls = [
        userops.Call(
            target=harness.validator.address,
            data=selector + encode(["bytes", "bytes32[2]", "string"], [credential_id, key, ORIGIN]),
        )
        for credential_id in credential_ids
    ]
    return userops.execute_batch_call_data(calls=calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="PasskeyCreated events to make")
    parser.add_argument("--batch-blocks", type=int, default=None, help="CHAIN_INDEXER_BATCH_BLOCKS")
    options = parser.parse_args()
    batch_blocks = options.batch_blocks or settings.CHAIN_INDEXER_BATCH_BLOCKS

    node = devnet.start_anvil(extra_args=["--gas-limit", "100000000"])
    databases = setup_databases(verbosity=0, interactive=False)
    try:
        from accounts.models import SmartAccount, User
        from chain.indexer import index_chain
        from chain.models import ChainEvent, Deployment
        from passkeys.models import Passkey

        w3 = connect(node.url)
        result = deploy.deploy_all(
            sender=Sender(w3=w3, account=account_from_key(ANVIL_KEYS[0])),
            sponsor_address=account_from_key(ANVIL_KEYS[1]).address,
            paymaster_deposit_wei=10**20,
        )
        for name, address in result.addresses.items():
            Deployment.objects.create(
                chain_id=w3.eth.chain_id, name=name, address=address, code_hash="0x"
            )
        harness = Harness(w3=w3, addresses=result.addresses)
        passkey = SoftwarePasskey(origin=ORIGIN)
        account, _ = harness.deploy_account(passkey)
        user = User.objects.create_user("bench")
        SmartAccount.objects.create(
            user=user,
            chain_id=w3.eth.chain_id,
            address=account,
            salt="0x",
            init_data=b"",
            deployer=harness.relayer.address,
            status=SmartAccount.Status.DEPLOYING,
        )

        print(f"making {options.events} PasskeyCreated events on {node.url} ...", flush=True)
        started = time.perf_counter()
        credential_ids = [os.urandom(32) for _ in range(options.events)]
        for start in range(0, len(credential_ids), KEYS_PER_OPERATION):
            chunk = credential_ids[start : start + KEYS_PER_OPERATION]
            op = harness.build(
                account,
                add_keys_call(harness, chunk),
                call_gas_limit=150_000 * len(chunk) + 100_000,
            )
            op = userops.sponsor_user_operation(
                op,
                paymaster=harness.paymaster.address,
                sponsor_key=harness.sponsor_key,
                chain_id=harness.chain_id,
                valid_until=harness.now() + 600,
                valid_after=0,
                verification_gas_limit=1_000_000,  # it hashes the whole (large) operation
            )
            op, _ = harness.sign(op, passkey)
            harness.submit(op)
            devnet.rpc(node.url, "anvil_mine", [hex(EMPTY_BLOCKS_BETWEEN)])
        Passkey.objects.bulk_create(
            Passkey(user=user, name=f"key {n}", credential_id=credential_id, public_key=b"\x00")
            for n, credential_id in enumerate(credential_ids)
        )
        head = w3.eth.block_number
        print(f"  done in {time.perf_counter() - started:.1f}s; head is block {head}")

        started = time.perf_counter()
        indexed = index_chain(w3=w3, batch_blocks=batch_blocks)
        elapsed = time.perf_counter() - started
        assert indexed.to_block == head, indexed
        assert indexed.events_added == ChainEvent.objects.count(), indexed
        active = Passkey.objects.filter(onchain=Passkey.OnChain.ACTIVE).count()
        assert active == options.events, active

        started = time.perf_counter()
        idle = index_chain(w3=w3)
        idle_elapsed = time.perf_counter() - started
        assert idle.events_added == 0

        print(
            f"\n{connection.vendor}, batches of {batch_blocks} blocks: "
            f"{indexed.events_added} events ({options.events} PasskeyCreated) in {head + 1} "
            f"blocks, {indexed.batches} batches, indexed in {elapsed:.2f}s "
            f"= {indexed.events_added / elapsed:,.0f} events/s; "
            f"{indexed.updated.get('passkeys', 0)} passkeys turned active\n"
            f"a run with nothing new: {idle_elapsed * 1000:.0f} ms"
        )
    finally:
        teardown_databases(databases, verbosity=0)
        node.stop()


if __name__ == "__main__":
    main()
