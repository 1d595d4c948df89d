"""The portal under gunicorn in a process of its own, on the test database: what a crash does to a
worker is seen by the test (a dropped connection), not suffered by the test runner."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from chain.devtools.devnet import free_port

BASE_DIR = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The URL of the database this (test) process uses."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    return (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


class Gunicorn:
    """`gunicorn portal.wsgi` on a free port; `env` adds or overrides environment variables."""

    def __init__(self, *, workers: int = 1, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.workers = workers
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self) -> None:
        environment: dict[str, Any] = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_DEBUG": "true",
            "DATABASE_URL": database_url(),
            "PORTAL_ORIGINS": self.url,
            **self.env,
        }
        environment = {key: value for key, value in environment.items() if value is not None}
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "portal.wsgi",
                "--workers",
                str(self.workers),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "60",
            ],
            cwd=BASE_DIR,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):  # noqa: S310
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn did not start: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
