"""Local processes for tests and benchmarks: a private Redis, Celery worker processes and the Alto
ERC-4337 bundler."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.request import Request, urlopen

from chain.devtools.devnet import free_port


class RedisServer:
    """A Redis of the caller's own on a free port: no other run shares its queue or cache, and it
    can be stopped (the broker goes away) and started again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def installed() -> bool:
        return shutil.which("redis-server") is not None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self.process = None


def start_celery_worker(
    *,
    name: str,
    env: Mapping[str, str],
    log_dir: Path,
    loglevel: str = "INFO",
    beat: bool = False,
    app: str = "portal",
    queues: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """`celery --app portal worker` (one prefork process) named `name`, logging to log_dir;
    `app`: another Celery app module (a benchmark's); `queues`: the ones it consumes besides the
    default. The caller waits for it to answer a ping."""
    log = (log_dir / f"{name.split('@')[0]}.log").open("wb")
    args = [
        str(Path(sys.executable).parent / "celery"),
        "--app",
        app,
        "worker",
        "--concurrency",
        "1",
        "--pool",
        "prefork",
        "--loglevel",
        loglevel,
        "--without-gossip",
        "--without-mingle",
        "-n",
        name,
    ]
    if queues:
        args += ["--queues", ",".join(["celery", *queues])]
    if beat:
        args += ["--beat", "--schedule", str(log_dir / f"beat-{name.split('@')[0]}")]
    return subprocess.Popen(  # noqa: S603
        args,
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate, then kill what does not stop within 15 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class AltoBundler:
    """Pimlico's Alto ERC-4337 bundler (npm @pimlico/alto) against a local chain, on a free port,
    for tests and benchmarks. It binds every interface (it has no host option): it is stopped by
    its process id. `--safe-mode false`: its ERC-7562 tracer does not run on anvil."""

    def __init__(
        self,
        *,
        rpc_url: str,
        entry_point: str,
        executor_keys: Sequence[str],
        utility_key: str,
        log_path: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.rpc_url = rpc_url
        self.entry_point = entry_point
        self.executor_keys = list(executor_keys)
        self.utility_key = utility_key
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def binary() -> Path:
        return Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "alto"

    @classmethod
    def installed(cls) -> bool:
        return cls.binary().exists()

    def start(self, *, timeout: float = 60) -> None:
        output = self.log_path.open("ab") if self.log_path is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(  # noqa: S603
            [
                str(self.binary()),
                "--entrypoints",
                self.entry_point,
                "--rpc-url",
                self.rpc_url,
                "--executor-private-keys",
                ",".join(self.executor_keys),
                "--utility-private-key",
                self.utility_key,
                "--safe-mode",
                "false",
                "--port",
                str(self.port),
                "--log-level",
                "warn",
                *self.extra_args,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"alto exited with code {self.process.returncode}")
            try:
                answer = _json_rpc(self.url, "eth_supportedEntryPoints")
                if isinstance(answer, list) and answer:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("alto did not start")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self.process = None


def _json_rpc(url: str, method: str, params: Sequence[object] = ()) -> object:
    payload = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = Request(  # noqa: S310 - a local process
        url, data=payload.encode(), headers={"Content-Type": "application/json"}
    )
    with urlopen(request, timeout=2) as response:  # noqa: S310
        return json.loads(response.read()).get("result")
