"""Sign-in benchmark: sign-ins per second through gunicorn against a bare-verify floor.

A sign-in is two requests, `POST /api/v1/auth/login/options` then `POST /api/v1/auth/login/verify`
(a token comes back). The floor is one request to a bare Django view in the same server that only
runs py_webauthn's verify_authentication_response (bench/login_urls.py). Both are measured in the
same run, alternately, through `gunicorn --workers 2` on PostgreSQL, with N client processes
(default 4) each signing in as its own user with a software authenticator (real P-256 keys).
Phases alternate in rounds (bare, then sign-in): each round's ratio compares two phases run
back to back, under much the same load from anything else on the machine, and the report gives
the medians over rounds. It also gives the SQL statements of one options and one verify request.
Set REDIS_URL as in production: the rate limit then counts in Redis (the report says where).

Runs on a throwaway test database (test_<name> of DATABASE_URL). Run:
`DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/login.py [--seconds S]
[--rounds N] [--clients N]`.
A report, not a test.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

ORIGIN_HOST = "localhost"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the clients ---------------------------------------------------------------------------------


# Who signs in: (username, state) per client, set before the client processes are forked (keys
# cannot be pickled). Signature counters come from the clock, so that whichever process signs
# for a person next, the counter still increases.
PEOPLE: list[tuple[str, dict[str, Any]]] = []
EPOCH = time.time()


def _sign_count() -> int:
    return int((time.time() - EPOCH) * 100_000) + 1


def _sign_ins(base: str, username: str, authenticator: Any, deadline: float) -> int:
    import requests

    session = requests.Session()
    done = 0
    while time.monotonic() < deadline:
        options = session.post(f"{base}/api/v1/auth/login/options", json={"username": username})
        options.raise_for_status()
        body = options.json()
        verified = session.post(
            f"{base}/api/v1/auth/login/verify",
            json={
                "ceremony_id": body["ceremony_id"],
                "credential": authenticator.get(body["publicKey"], sign_count=_sign_count()),
            },
        )
        verified.raise_for_status()
        done += 1
    return done


def _bare(base: str, authenticator: Any, challenge: str, deadline: float) -> int:
    import requests

    session = requests.Session()
    done = 0
    options = {"challenge": challenge, "allowCredentials": []}
    while time.monotonic() < deadline:
        response = session.post(
            f"{base}/bench/bare-verify",
            json={"credential": authenticator.get(options, sign_count=1)},
        )
        response.raise_for_status()
        done += 1
    return done


def client(args: tuple[str, str, int, float, float]) -> int:
    kind, base, index, start, seconds = args
    username, state = PEOPLE[index]
    authenticator = state["authenticator"]
    while time.monotonic() < start:
        time.sleep(0.001)
    deadline = start + seconds
    if kind == "signin":
        return _sign_ins(base, username, authenticator, deadline)
    return _bare(base, state["floor_authenticator"], state["challenge"], deadline)


def run_phase(pool: Any, kind: str, base: str, seconds: float) -> float:
    start = time.monotonic() + 0.5
    counts = pool.map(client, [(kind, base, index, start, seconds) for index in range(len(PEOPLE))])
    return sum(counts) / seconds


# --- setup ---------------------------------------------------------------------------------------


def queries_per_request(username: str, authenticator: Any) -> tuple[int, int, list[str]]:
    """SQL statements of one options and one verify request, run in this process."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    api = APIClient(REMOTE_ADDR="192.0.2.1", SERVER_NAME="localhost")
    with CaptureQueriesContext(connection) as options_queries:
        options = api.post("/api/v1/auth/login/options", {"username": username}, format="json")
    with CaptureQueriesContext(connection) as verify_queries:
        verified = api.post(
            "/api/v1/auth/login/verify",
            {
                "ceremony_id": options.json()["ceremony_id"],
                "credential": authenticator.get(
                    options.json()["publicKey"], sign_count=_sign_count()
                ),
            },
            format="json",
        )
    assert verified.status_code == 200, verified.content
    statements = [q["sql"][:110] for q in [*options_queries, *verify_queries]]
    return len(options_queries), len(verify_queries), statements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=8, help="bare/sign-in phase pairs")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--show-sql", action="store_true")
    options = parser.parse_args()

    port = free_port()
    base = f"http://{ORIGIN_HOST}:{port}"
    os.environ["PORTAL_ORIGINS"] = base
    os.environ["PORTAL_AUTH_RATE"] = "1000000/min"
    # As in production: debug off (debug mode records every SQL statement), plain HTTP here.
    os.environ.setdefault("DJANGO_DEBUG", "false")
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "localhost")

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases
    from rest_framework.test import APIClient

    from chain.devtools.authenticator import SoftAuthenticator, b64url

    if connection.vendor != "postgresql":
        print("note: DATABASE_URL is not PostgreSQL; the issue's figures are on PostgreSQL")
    # As in production when REDIS_URL is set; without it, in each worker's memory.
    limiter = "Redis" if settings.CACHES["default"]["BACKEND"].endswith("RedisCache") else "memory"
    databases = setup_databases(verbosity=0, interactive=False)
    server = None
    try:
        people: list[tuple[str, dict[str, Any]]] = []
        for index in range(options.clients):
            authenticator = SoftAuthenticator(origin=base)
            api = APIClient(REMOTE_ADDR="192.0.2.1", SERVER_NAME="localhost")
            username = f"bench{index}"
            registration = api.post(
                "/api/v1/auth/register/options", {"username": username}, format="json"
            ).json()
            created = api.post(
                "/api/v1/auth/register/verify",
                {
                    "ceremony_id": registration["ceremony_id"],
                    "credential": authenticator.create(registration["publicKey"]),
                },
                format="json",
            )
            assert created.status_code == 201, created.content
            people.append((username, {"authenticator": authenticator}))

        options_count, verify_count, statements = queries_per_request(
            people[0][0], people[0][1]["authenticator"]
        )

        # The bare view's key and challenge: each client's own key would do; one is enough.
        floor_authenticator = people[0][1]["authenticator"]
        credential = next(iter(floor_authenticator.credentials.values()))
        challenge = secrets.token_bytes(32)
        for _, state in people:
            state["challenge"] = b64url(challenge)
        for _, state in people:
            state["floor_authenticator"] = floor_authenticator
        PEOPLE.extend(people)

        db = settings.DATABASES["default"]
        database_url = (
            f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
            if connection.vendor == "postgresql"
            else os.environ.get("DATABASE_URL", "")
        )
        log = Path(tempfile.mkstemp(prefix="bench-login-", suffix=".log")[1]).open("wb")  # noqa: SIM115 - open while gunicorn runs
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.login_settings",
            "DATABASE_URL": database_url,
            "BENCH_PUBLIC_KEY": credential.cose_public_key.hex(),
            "BENCH_CHALLENGE": challenge.hex(),
            "DJANGO_LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen(  # noqa: S603
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "portal.wsgi",
                "--workers",
                str(options.workers),
                "--bind",
                f"127.0.0.1:{port}",
                "--preload",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)  # noqa: S310
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start, see {log.name}") from None
                time.sleep(0.1)

        context = multiprocessing.get_context("fork")
        with context.Pool(options.clients) as pool:
            run_phase(pool, "signin", base, 1.0)  # warm up both
            run_phase(pool, "bare", base, 1.0)
            bare_rates, signin_rates = [], []
            for _ in range(options.rounds):
                bare_rates.append(run_phase(pool, "bare", base, options.seconds))
                signin_rates.append(run_phase(pool, "signin", base, options.seconds))

        # Each round's two phases ran back to back, under much the same load from whatever else
        # runs on the machine: the ratio is taken within a round, then the median over rounds.
        ratios = [s / b for s, b in zip(signin_rates, bare_rates, strict=True)]
        print(
            f"gunicorn --workers {options.workers}, {options.clients} clients, "
            f"{connection.vendor}, rate limit counted in {limiter}, "
            f"{options.rounds} rounds x {options.seconds:.0f} s per phase"
        )
        for name, rates, unit in (
            ("bare py_webauthn verify ", bare_rates, "/s"),
            ("sign-in (options+verify)", signin_rates, "/s"),
            ("ratio sign-in / bare    ", ratios, ""),
        ):
            each = ", ".join(f"{r:.3f}" if not unit else f"{r:.1f}" for r in rates)
            value = f"{median(rates):8.3f}" if not unit else f"{median(rates):8.1f} {unit}"
            print(f"{name}: {value}   (median; each round: {each})")
        print(f"SQL statements          : options {options_count}, verify {verify_count}")
        if options.show_sql:
            for statement in statements:
                print("   ", statement)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=15)
        teardown_databases(databases, verbosity=0)


if __name__ == "__main__":
    main()
