"""Helpers the benchmarks share: a fresh database, and the CPU time processes spent (from /proc),
which shows what a change costs whatever else the machine is doing."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def fresh_database(server_url: str, name: str) -> str:
    """A new empty database `name` on the server of `server_url` (dropped first); its URL."""
    import psycopg

    parts = urlsplit(server_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The fields after the command name, which may hold spaces: state is field 3, utime 14.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (a prefork worker and its pool processes)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found.extend(process_tree(int(child)))
    return found


def database_backends(database: str, *, exclude: int | None = None) -> list[int]:
    """The PostgreSQL server processes serving connections to `database` (on this machine)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == exclude:
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if command.startswith("postgres:") and f" {database} " in command:
            pids.append(int(entry.name))
    return pids


class CpuMeter:
    """CPU seconds spent by a set of processes between `start()` and `stop()`; processes that
    appear in between count from zero (a new pool process, a new database connection)."""

    def __init__(self) -> None:
        self.before: dict[int, float] = {}
        self.seconds = 0.0

    def start(self, pids: list[int]) -> None:
        self.before = {pid: cpu_seconds(pid) for pid in pids}

    def stop(self, pids: list[int]) -> float:
        self.seconds = sum(cpu_seconds(pid) - self.before.get(pid, 0.0) for pid in set(pids))
        return self.seconds
