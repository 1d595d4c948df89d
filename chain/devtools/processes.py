"""Local processes for tests and benchmarks: a private Redis and Celery worker processes."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

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
) -> subprocess.Popen[bytes]:
    """`celery --app portal worker` (one prefork process) named `name`, logging to log_dir.
    The caller waits for it to answer a ping."""
    log = (log_dir / f"{name.split('@')[0]}.log").open("wb")
    args = [
        str(Path(sys.executable).parent / "celery"),
        "--app",
        "portal",
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
