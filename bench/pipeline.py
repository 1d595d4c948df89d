"""Operation pipeline benchmark: operations confirmed per second, with 1 and 2 Celery workers,
next to anvil's own rate for plain transfers in the same run.

Starts its own anvil (auto-mining), its own Redis (the broker) and real Celery worker processes
(prefork, concurrency 1; the portal's app with the bench's counters, bench/pipeline_worker.py) on
a fresh PostgreSQL database, then for each configuration queues N operations that are already
`signed` and measures the time from the first nudge to the last `confirmed`:

- deploy_account: relayer calls (MSAFactory.deployAccount), one per new account;
- user operation: passkey-signed, sponsored user operations (EntryPoint.handleOps), one per account.

The relayer bundles them (CHAIN_BUNDLE_MAX_OPS per transaction, `--bundle-max-ops`). Before each
configuration, anvil's rate for plain ETH transfers is measured too (signed in advance, sent one
after the other, each mined on arrival): the ceiling one transaction at a time would have.

Wall-clock rates depend on what else the machine runs; next to them the report gives what each
confirmed operation cost, whatever the load: CPU milliseconds of the workers, of PostgreSQL (the
bench database's connections) and of anvil, SQL statements and Celery tasks. With
`--profile DIR`, each worker process writes a cProfile file per configuration there.

Run: `make bench-pipeline` or `python bench/pipeline.py [--operations N]`. Needs PostgreSQL
(DATABASE_URL's server; a database named portal_bench_pipeline, or `--database-name`, is dropped
and created) and redis-server on PATH. A report, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

from bench.support import CpuMeter, database_backends, fresh_database, process_tree  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=300, help="operations per run")
    parser.add_argument(
        "--bundle-max-ops",
        type=int,
        default=None,
        help="CHAIN_BUNDLE_MAX_OPS for the workers (default: the setting's default)",
    )
    parser.add_argument("--transfers", type=int, default=300, help="plain transfers per measure")
    parser.add_argument(
        "--workers", default="1,2", help="the worker counts to measure, comma-separated"
    )
    parser.add_argument(
        "--database-server",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL URL; the benchmark uses its own database on that server",
    )
    parser.add_argument("--database-name", default="portal_bench_pipeline")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile files here")
    args = parser.parse_args()

    # only settings-free helpers before django.setup()
    from chain.devtools import devnet
    from chain.devtools.processes import RedisServer, stop_process

    database_url = fresh_database(args.database_server, args.database_name)
    if not RedisServer.installed():
        raise SystemExit("redis-server is not installed")
    redis = RedisServer()
    redis.start()
    logs = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis.url,
            "DJANGO_LOG_LEVEL": "WARNING",
            "BENCH_STATS_DIR": str(logs),
            # The gas budgets are not what this measures (1,200 operations exceed the default).
            "CHAIN_RELAYER_GAS_PER_HOUR": str(10**12),
            "CHAIN_RELAYER_GAS_PER_DAY": str(10**12),
            "CHAIN_PAYMASTER_GAS_PER_HOUR": str(10**12),
            "CHAIN_PAYMASTER_GAS_PER_DAY": str(10**12),
        }
    )
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        os.environ["BENCH_PROFILE_DIR"] = str(args.profile.resolve())
    if args.bundle_max_ops is not None:
        os.environ["CHAIN_BUNDLE_MAX_OPS"] = str(args.bundle_max_ops)
    import django

    django.setup()
    node = devnet.start_anvil()
    os.environ["CHAIN_RPC_URL"] = node.url
    from django.conf import settings

    settings.CHAIN_RPC_URL = node.url
    workers: list[subprocess.Popen[bytes]] = []
    try:
        run(
            args.operations,
            workers,
            logs,
            transfers=args.transfers,
            worker_counts=[int(n) for n in args.workers.split(",")],
            database=args.database_name,
            anvil_pid=node.process.pid,
        )
    finally:
        for worker in workers:
            stop_process(worker)
        node.stop()
        redis.stop()


@dataclass
class Measure:
    label: str
    workers: int
    operations: int
    seconds: float
    anvil_rate: float
    worker_cpu: float
    main_cpu: float  # of worker_cpu: Celery's main processes (broker, dispatch to the pool)
    database_cpu: float
    anvil_cpu: float
    queries: int
    tasks: int
    load: float


def transfer_rate(w3: Any, count: int) -> float:
    """anvil's rate for plain ETH transfers: `count` transfers signed in advance, sent one after
    the other (each mined on arrival), timed until the last receipt."""
    from eth_typing import HexStr

    from chain.client import account_from_key
    from chain.devtools.devkit import ANVIL_KEYS

    key = account_from_key(ANVIL_KEYS[3])
    nonce = int(w3.eth.get_transaction_count(key.address, "pending"))
    base_fee = int(w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
    raws = [
        key.sign_transaction(
            {
                "type": 2,
                "chainId": w3.eth.chain_id,
                "nonce": nonce + i,
                "to": HexStr("0x000000000000000000000000000000000000dEaD"),
                "value": 1,
                "gas": 21_000,
                "maxFeePerGas": 4 * base_fee + 10**9,
                "maxPriorityFeePerGas": 10**6,
            }
        ).raw_transaction
        for i in range(count)
    ]
    started = time.monotonic()
    last = None
    for raw in raws:
        last = w3.eth.send_raw_transaction(raw)
    w3.eth.wait_for_transaction_receipt(last, timeout=120, poll_latency=0.01)
    return count / (time.monotonic() - started)


def run(
    count: int,
    workers: list[subprocess.Popen[bytes]],
    logs: Path,
    *,
    transfers: int,
    worker_counts: list[int],
    database: str,
    anvil_pid: int,
) -> None:
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)

    from accounts.models import SmartAccount, User
    from chain import userops
    from chain.client import Sender, account_from_key, connect
    from chain.devtools import deploy
    from chain.devtools.authenticator import SoftAuthenticator
    from chain.devtools.devkit import ANVIL_KEYS
    from chain.devtools.processes import start_celery_worker, stop_process
    from chain.models import ChainOperation, Deployment
    from chain.pipeline.submit import dispatch_submission
    from passkeys.approvals import approval_options, approve_operation, request_approval
    from passkeys.models import Passkey
    from passkeys.onchain import open_account_for
    from portal.celery import app
    from portal.client_info import ClientInfo

    w3 = connect()
    addresses = deploy.deploy_all(
        sender=Sender(w3=w3, account=account_from_key(ANVIL_KEYS[0])),
        sponsor_address=account_from_key(ANVIL_KEYS[1]).address,
        paymaster_deposit_wei=10**20,
    ).addresses
    for contract_name, address in addresses.items():
        Deployment.objects.update_or_create(
            chain_id=w3.eth.chain_id,
            name=contract_name,
            defaults={"address": address, "code_hash": "0x"},
        )
    authenticator = SoftAuthenticator()
    client = ClientInfo(ip_address=None, user_agent="bench")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own_backend = int(cursor.fetchone()[0])

    def new_person(label: str) -> tuple[Any, Any, Any, int]:
        user = User.objects.create_user(f"{label}-{uuid.uuid4().hex[:8]}")
        key = authenticator.add_credential(user_handle=bytes(user.user_handle))
        passkey = Passkey.objects.create(
            user=user,
            name="bench",
            credential_id=key.credential_id,
            public_key=key.cose_public_key,
        )
        account = open_account_for(user=user, passkey=passkey)
        assert account is not None and account.deployment_id is not None
        return user, passkey, account, account.deployment_id

    def worker_stats(names: list[str], label: str) -> tuple[int, int]:
        """(SQL statements, Celery tasks) the workers' pool processes ran since they started."""
        from bench.pipeline_worker import write_stats

        for name in names:
            write_stats.apply_async((label,), queue=f"stats-{name}")
        deadline = time.monotonic() + 30
        while len(list(logs.glob(f"{label}-*.json"))) < len(names):
            if time.monotonic() > deadline:
                raise SystemExit(f"workers wrote no statistics; logs in {logs}")
            time.sleep(0.05)
        queries = tasks = 0
        for path in logs.glob(f"{label}-*.json"):
            counts = json.loads(path.read_text())
            queries += counts.get("queries", 0)
            tasks += sum(n for key, n in counts.items() if key.startswith("task:chain."))
        return queries, tasks

    def measure(label: str, ids: list[int], worker_count: int, anvil_rate: float) -> Measure:
        app.control.purge()  # the nudges sent while preparing: the run sends its own
        names = []
        for _ in range(worker_count):
            name = f"bench-{uuid.uuid4().hex[:6]}@localhost"
            process = start_celery_worker(
                name=name,
                env=os.environ,
                log_dir=logs,
                loglevel="WARNING",
                app="bench.pipeline_worker",
                queues=[f"stats-{name}"],
            )
            workers.append(process)
            names.append(name)
        deadline = time.monotonic() + 60
        while len(app.control.ping(destination=names, timeout=0.5) or []) < worker_count:
            if time.monotonic() > deadline:
                raise SystemExit(f"workers did not start; logs in {logs}")
        stats_label = f"{label.split()[0]}-{worker_count}"
        worker_stats(names, f"start-{stats_label}")  # the pool processes are up and counting
        worker_cpu, main_cpu = CpuMeter(), CpuMeter()
        database_cpu, anvil_cpu = CpuMeter(), CpuMeter()
        worker_pids = [pid for process in workers for pid in process_tree(process.pid)]
        worker_cpu.start(worker_pids)
        main_cpu.start([process.pid for process in workers])
        database_cpu.start(database_backends(database, exclude=own_backend))
        anvil_cpu.start([anvil_pid])
        started = time.monotonic()
        for operation_id in ids:
            dispatch_submission(operation_id)
        final = {"confirmed", "failed", "expired"}
        while True:
            done = ChainOperation.objects.filter(pk__in=ids, status__in=final).count()
            if done == len(ids):
                break
            if time.monotonic() - started > 600:
                raise SystemExit("timed out")
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        load = os.getloadavg()[0]
        time.sleep(0.5)  # the tasks still running for operations already confirmed
        worker_cpu.stop([pid for process in workers for pid in process_tree(process.pid)])
        main_cpu.stop([process.pid for process in workers])
        database_cpu.stop(database_backends(database, exclude=own_backend))
        anvil_cpu.stop([anvil_pid])
        failed = ChainOperation.objects.filter(pk__in=ids).exclude(status="confirmed").count()
        if failed:
            raise SystemExit(f"{failed} operations did not confirm; logs in {logs}")
        queries, tasks = worker_stats(names, f"end-{stats_label}")
        while workers:
            stop_process(workers.pop())
        return Measure(
            label=label,
            workers=worker_count,
            operations=len(ids),
            seconds=elapsed,
            anvil_rate=anvil_rate,
            worker_cpu=worker_cpu.seconds,
            main_cpu=main_cpu.seconds,
            database_cpu=database_cpu.seconds,
            anvil_cpu=anvil_cpu.seconds,
            queries=queries,
            tasks=tasks,
            load=load,
        )

    results: list[Measure] = []
    people: dict[int, list[tuple[Any, Any, Any]]] = {}
    for worker_count in worker_counts:
        batch = [new_person(f"w{worker_count}") for _ in range(count)]
        anvil_rate = transfer_rate(w3, transfers)
        results.append(
            measure(
                "deploy_account (relayer call)",
                [item[3] for item in batch],
                worker_count,
                anvil_rate,
            )
        )
        people[worker_count] = [item[:3] for item in batch]
        for _user, passkey, account, _ in batch:
            SmartAccount.objects.filter(pk=account.pk).update(status=SmartAccount.Status.DEPLOYED)
            Passkey.objects.filter(pk=passkey.pk).update(onchain=Passkey.OnChain.ACTIVE)

    noop = userops.execute_call_data(target="0x000000000000000000000000000000000000dEaD")
    for worker_count in worker_counts:
        ids = []
        for user, _passkey, account in people[worker_count]:
            account.refresh_from_db()
            operation = request_approval(
                user=user,
                account=account,
                kind="add_passkey",
                label="A test operation",
                call_data=noop,
                idempotency_key=f"bench-{uuid.uuid4().hex}",
                details={},
            )
            _operation, options = approval_options(user=user, operation_id=operation.pk)
            approve_operation(
                user=user,
                operation_id=operation.pk,
                credential=authenticator.get(options),
                client=client,
            )
            ids.append(operation.pk)
        anvil_rate = transfer_rate(w3, transfers)
        results.append(measure("passkey user operation (handleOps)", ids, worker_count, anvil_rate))

    from django.conf import settings

    bundle = os.environ.get("CHAIN_BUNDLE_MAX_OPS", str(settings.CHAIN_BUNDLE_MAX_OPS))
    transactions = ChainOperation.objects.exclude(tx_hash="").values("tx_hash").distinct().count()
    print(f"CHAIN_BUNDLE_MAX_OPS={bundle}; {transactions} relayer transactions in all")
    print(
        "| operation | workers | operations | seconds | confirmed/s | anvil transfers/s "
        "| worker CPU ms/op (main) | database CPU ms/op | anvil CPU ms/op | queries/op | tasks/op "
        "| load (1 min) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in results:
        per = 1000 / m.operations
        print(
            f"| {m.label} | {m.workers} | {m.operations} | {m.seconds:.2f} "
            f"| {m.operations / m.seconds:.1f} | {m.anvil_rate:.0f} "
            f"| {m.worker_cpu * per:.2f} ({m.main_cpu * per:.2f}) "
            f"| {m.database_cpu * per:.2f} | {m.anvil_cpu * per:.2f} "
            f"| {m.queries / m.operations:.1f} | {m.tasks / m.operations:.2f} | {m.load:.2f} |"
        )


if __name__ == "__main__":
    main()
