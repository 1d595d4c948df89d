"""Start and stop a local anvil (the npm platform binary) for `manage.py devchain` and tests."""

from __future__ import annotations

import json
import platform
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.error import URLError
from urllib.request import Request, urlopen

from django.conf import settings

ANVIL_CHAIN_ID = 31337


class AnvilError(Exception):
    pass


def anvil_binary() -> Path:
    """The anvil executable shipped by the @foundry-rs/anvil npm package for this platform."""
    system = platform.system().lower()
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    path = (
        Path(settings.BASE_DIR)
        / "node_modules"
        / "@foundry-rs"
        / f"anvil-{system}-{machine}"
        / "bin"
        / "anvil"
    )
    if not path.exists():
        raise AnvilError(f"anvil not found at {path}; run `make setup`")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Anvil:
    process: subprocess.Popen[bytes]
    host: str
    port: int
    args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10) -> None:
        """Stop anvil with SIGTERM (it dumps its state, if configured, on the way out)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)


def rpc(url: str, method: str, params: Sequence[object] = (), timeout: float = 10) -> object:
    """One JSON-RPC call without web3 (used to probe and control anvil)."""
    payload = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = Request(  # noqa: S310 (the URL is the configured chain)
        url, data=payload.encode(), headers={"Content-Type": "application/json"}
    )
    with urlopen(request, timeout=timeout) as response:  # noqa: S310
        body = json.loads(response.read())
    if "error" in body:
        raise AnvilError(f"{method}: {body['error']}", body["error"])
    return body["result"]


def wait_for_rpc(
    url: str, *, timeout: float = 30, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise AnvilError(f"anvil exited with code {process.returncode}")
        try:
            rpc(url, "eth_chainId", timeout=1)
            return
        except (OSError, URLError, AnvilError):
            if time.monotonic() > deadline:
                raise AnvilError(f"no JSON-RPC answer at {url} after {timeout}s") from None
            time.sleep(0.1)


def start_anvil(
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    chain_id: int = ANVIL_CHAIN_ID,
    state_path: Path | None = None,
    state_interval: int | None = None,
    extra_args: Sequence[str] = (),
    output: IO[bytes] | int | None = subprocess.DEVNULL,
    timeout: float = 30,
) -> Anvil:
    """Start anvil and wait until it answers JSON-RPC.

    With `state_path`, the chain is loaded from that file if it exists and dumped to it on exit
    (and every `state_interval` seconds).
    """
    port = port or free_port(host)
    args = [
        str(anvil_binary()),
        "--host",
        host,
        "--port",
        str(port),
        "--chain-id",
        str(chain_id),
    ]
    if state_path is not None:
        state_path.parent.mkdir(parents=True, exist_ok=True)
        args += ["--state", str(state_path)]
        if state_interval:
            args += ["--state-interval", str(state_interval)]
    args += list(extra_args)
    process = subprocess.Popen(args, stdout=output, stderr=output)  # noqa: S603
    anvil = Anvil(process=process, host=host, port=port, args=args)
    try:
        wait_for_rpc(anvil.url, timeout=timeout, process=process)
    except BaseException:
        anvil.stop()
        raise
    return anvil
