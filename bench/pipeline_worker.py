"""The Celery app of bench/pipeline.py's workers: the portal's, plus what the bench reads back.

Each pool process counts the SQL statements it runs and its tasks, and with BENCH_PROFILE_DIR set
profiles itself (cProfile, in CPU time); it writes both to BENCH_STATS_DIR when it is told to
(`write_stats`, a broadcast: the bench asks before it stops the workers).
"""

from __future__ import annotations

import cProfile
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from celery.signals import task_postrun, worker_process_init

from portal.celery import app

counts: Counter[str] = Counter()
profiler: cProfile.Profile | None = None


def _count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    counts["queries"] += 1
    return execute(sql, params, many, context)


def _counted(sender: Any, connection: Any, **kwargs: Any) -> None:
    # Once per connection object: Django reuses it when it reconnects.
    if _count not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count)


@worker_process_init.connect
def _start_counting(**kwargs: Any) -> None:
    global profiler
    from django.db.backends.signals import connection_created

    connection_created.connect(_counted, weak=False)
    if os.environ.get("BENCH_PROFILE_DIR"):
        profiler = cProfile.Profile(time.process_time)  # CPU time: what the load does not skew
        profiler.enable()


@task_postrun.connect
def _count_task(sender: Any = None, **kwargs: Any) -> None:
    counts[f"task:{getattr(sender, 'name', '?')}"] += 1


@app.task(name="bench.write_stats")
def write_stats(label: str) -> None:
    """Write this process's counters (and profile) under BENCH_STATS_DIR, then start again."""
    directory = Path(os.environ["BENCH_STATS_DIR"])
    (directory / f"{label}-{os.getpid()}.json").write_text(json.dumps(counts))
    counts.clear()
    profile_dir = os.environ.get("BENCH_PROFILE_DIR")
    if profiler is not None and profile_dir:
        profiler.disable()
        profiler.dump_stats(str(Path(profile_dir) / f"{label}-{os.getpid()}.prof"))
        profiler.clear()
        profiler.enable()
