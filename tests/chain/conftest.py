"""One anvil per test session, contracts deployed once; each test runs in an EVM snapshot."""

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from chain.client import Sender, account_from_key, connect, contract
from chain.devtools import deploy, devnet
from chain.devtools.authenticator import SoftwarePasskey
from chain.devtools.devkit import ANVIL_KEYS, Harness
from chain.devtools.processes import RedisServer, start_celery_worker, stop_process

ORIGIN = "https://portal.example"


@pytest.fixture(scope="session")
def anvil() -> Iterator[devnet.Anvil]:
    node = devnet.start_anvil()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def w3(anvil: devnet.Anvil) -> Web3:
    return connect(anvil.url)


@pytest.fixture(scope="session")
def addresses(w3: Web3) -> dict[str, str]:
    sender = Sender(w3=w3, account=account_from_key(ANVIL_KEYS[0]))
    result = deploy.deploy_all(
        sender=sender,
        sponsor_address=account_from_key(ANVIL_KEYS[1]).address,
        paymaster_deposit_wei=10**19,
    )
    return result.addresses


@pytest.fixture(autouse=True)
def _evm_snapshot(request: pytest.FixtureRequest) -> Iterator[None]:
    """Revert the chain after every test that touched it."""
    if "anvil" not in request.fixturenames:
        yield
        return
    node: devnet.Anvil = request.getfixturevalue("anvil")
    request.getfixturevalue("addresses")  # deploy before the first snapshot
    snapshot = devnet.rpc(node.url, "evm_snapshot")
    yield
    devnet.rpc(node.url, "evm_revert", [snapshot])
    # anvil keeps a base fee a test forced (anvil_setNextBlockBaseFeePerGas) across the revert:
    # bring the next block's back to the restored head's.
    head: Any = devnet.rpc(node.url, "eth_getBlockByNumber", ["latest", False])
    devnet.rpc(node.url, "anvil_setNextBlockBaseFeePerGas", [head["baseFeePerGas"]])


@pytest.fixture
def harness(w3: Web3, addresses: dict[str, str], anvil: devnet.Anvil) -> Harness:
    return Harness(w3=w3, addresses=addresses)


@pytest.fixture
def passkey() -> SoftwarePasskey:
    return SoftwarePasskey(origin=ORIGIN)


# --- the operation pipeline: a private Redis broker, real Celery workers, accounts on chain ------


def use_broker(url: str) -> None:
    """Point this process's Celery app at `url` (dropping pooled connections)."""
    from portal.celery import app

    app.conf.update(broker_url=url)
    pool = getattr(app, "_pool", None)
    if pool is not None:
        pool.force_close_all()
    app._pool = None  # type: ignore[attr-defined]
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@pytest.fixture(scope="session")
def redis_broker() -> Iterator[RedisServer]:
    from portal.celery import app

    if not RedisServer.installed():
        pytest.skip("redis-server is not installed")
    server = RedisServer()
    server.start()
    previous = app.conf.broker_url
    use_broker(server.url)
    yield server
    use_broker(previous)
    server.stop()


@pytest.fixture
def pipeline_chain(
    anvil: devnet.Anvil,
    addresses: dict[str, str],
    settings: Any,
    transactional_db: None,
    redis_broker: RedisServer,
) -> Iterator[dict[str, str]]:
    """The session anvil as the portal's chain: CHAIN_RPC_URL and the Deployment rows. Tasks go
    to the session's private broker, purged afterwards."""
    from chain.models import Deployment
    from portal.celery import app

    settings.CHAIN_RPC_URL = anvil.url
    for name, address in addresses.items():
        Deployment.objects.update_or_create(
            chain_id=settings.CHAIN_ID, name=name, defaults={"address": address, "code_hash": "0x"}
        )
    yield addresses
    if redis_broker.process is not None:
        app.control.purge()


class Workers:
    """Celery worker processes (`celery --app portal worker`) on the test database and chain."""

    def __init__(self, *, broker: RedisServer, rpc_url: str, log_dir: Path) -> None:
        self.broker = broker
        self.rpc_url = rpc_url
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def environment(self, **extra: str) -> dict[str, str]:
        from django.conf import settings

        db = settings.DATABASES["default"]
        database_url = (
            f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        )
        return {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": self.broker.url,
            "CHAIN_RPC_URL": self.rpc_url,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            **extra,
        }

    def start(self, *, beat: bool = False, **env: str) -> subprocess.Popen[bytes]:
        from portal.celery import app

        name = f"pipeline-{len(self.processes)}-{uuid.uuid4().hex[:6]}@localhost"
        process = start_celery_worker(
            name=name, env=self.environment(**env), log_dir=self.log_dir, beat=beat
        )
        self.processes.append(process)
        deadline = time.monotonic() + 30
        while not app.control.ping(destination=[name], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {name} did not start; see its log in {self.log_dir}")
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        stop_process(process)

    def stop_all(self) -> None:
        for process in self.processes:
            self.stop(process)


@pytest.fixture
def celery_workers(
    redis_broker: RedisServer, pipeline_chain: dict[str, str], anvil: devnet.Anvil, tmp_path: Path
) -> Iterator[Workers]:
    """Start workers with `celery_workers.start()`; the queue is purged first, and every worker is
    stopped before the test database is flushed."""
    from portal.celery import app

    app.control.purge()
    workers = Workers(broker=redis_broker, rpc_url=anvil.url, log_dir=tmp_path)
    yield workers
    workers.stop_all()
    app.control.purge()


def advance(operation_id: int, *, until: str | set[str], timeout: float = 10) -> str:
    """Run the pipeline in-process (submit, then track) until the operation reaches `until` or
    stops moving. anvil's automine may answer a send before the block exists: poll a little."""
    from chain.pipeline.submit import submit
    from chain.pipeline.track import track

    wanted = {until} if isinstance(until, str) else until
    deadline = time.monotonic() + timeout
    outcome = submit(operation_id=operation_id)
    while outcome.status not in wanted and outcome.pending and time.monotonic() < deadline:
        time.sleep(0.05)
        outcome = track(operation_id=operation_id)
    return str(outcome.status)


class PipelineKit:
    """People with passkeys and smart accounts deployed through the pipeline itself."""

    def __init__(self, *, w3: Web3, addresses: dict[str, str]) -> None:
        from chain.devtools.authenticator import SoftAuthenticator

        self.w3 = w3
        self.addresses = addresses
        self.authenticator = SoftAuthenticator()
        self.factory = contract(w3, "MSAFactory", addresses["MSAFactory"])
        self.validator = contract(w3, "WebAuthnValidator", addresses["WebAuthnValidator"])

    def user(self, username: str) -> Any:
        from accounts.models import User

        return User.objects.create_user(username)

    def passkey(self, user: Any, *, authenticator: Any = None) -> Any:
        """A passkey of `user` held by the kit's authenticator (or `authenticator`)."""
        from passkeys.models import Passkey

        holder = authenticator or self.authenticator
        key = holder.add_credential(user_handle=bytes(user.user_handle))
        return Passkey.objects.create(
            user=user,
            name=f"key {key.credential_id.hex()[:6]}",
            credential_id=key.credential_id,
            public_key=key.cose_public_key,
            transports=["internal"],
        )

    def install_data(self, passkey: Any) -> bytes:
        from accounts.smart_accounts import validation_key_data

        return validation_key_data(
            credential_id=bytes(passkey.credential_id), cose_public_key=bytes(passkey.public_key)
        )

    def deployment(self, user: Any, passkey: Any) -> tuple[Any, Any]:
        """The user's SmartAccount (counterfactual), opened as sign-up opens it, and the relayer
        call that deploys it."""
        from passkeys.onchain import open_account_for

        account = open_account_for(user=user, passkey=passkey)
        assert account is not None, "the contracts are recorded by pipeline_chain"
        return account, account.deployment

    def mark_deployed(self, account: Any, passkey: Any) -> None:
        """What the deployment's receiver and the indexer record once it is on chain."""
        from accounts.models import SmartAccount
        from passkeys.models import Passkey

        SmartAccount.objects.filter(pk=account.pk).update(status=SmartAccount.Status.DEPLOYED)
        Passkey.objects.filter(pk=passkey.pk).update(onchain=Passkey.OnChain.ACTIVE)
        account.refresh_from_db()
        passkey.refresh_from_db()

    def deployed_account(self, username: str) -> tuple[Any, Any, Any]:
        """(user, passkey, account): the account deployed by running the pipeline in-process."""

        user = self.user(username)
        passkey = self.passkey(user)
        account, operation = self.deployment(user, passkey)
        status = advance(operation.pk, until="confirmed")
        operation.refresh_from_db()
        assert status == "confirmed", (status, operation.last_error, operation.tx_hash)
        self.mark_deployed(account, passkey)
        return user, passkey, account

    def noop_call(self) -> bytes:
        """Account call data that changes nothing: execute() of an empty call to an EOA."""
        from chain import userops

        return userops.execute_call_data(target="0x000000000000000000000000000000000000dEaD")

    def add_key_call(self, passkey: Any) -> bytes:
        """Account call data adding `passkey` to the account's WebAuthnValidator for the origin."""
        from django.conf import settings

        from chain import userops
        from chain.passkey_signatures import public_key_from_cose

        x, y = public_key_from_cose(bytes(passkey.public_key))
        data = self.validator.encode_abi(
            "addValidationKey",
            args=[
                bytes(passkey.credential_id),
                [x.to_bytes(32, "big"), y.to_bytes(32, "big")],
                settings.PORTAL_ORIGINS[0],
            ],
        )
        return userops.execute_call_data(
            target=self.validator.address, data=bytes.fromhex(data.removeprefix("0x"))
        )


@pytest.fixture
def pipeline_kit(w3: Web3, pipeline_chain: dict[str, str]) -> PipelineKit:
    return PipelineKit(w3=w3, addresses=pipeline_chain)


# Session-key fixtures (sh, session_account, test_contracts).
from tests.chain.session_fixtures import (  # noqa: E402, F401
    session_account,
    sh,
    test_contract_artifacts,
    test_contracts,
)
