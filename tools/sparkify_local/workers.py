"""The Celery workers of `make run EXECUTOR=celery WORKERS=N`: what each one is and how it is told apart.

Each worker is ``airflow celery worker`` in a process group of its own, with its own working
directory and temporary folder (``STATE_DIR/workers/worker-N/``, ``TMPDIR`` there), so no task can
read a file another task wrote but through S3, the warehouse or XCom. Each has a name of its own:
Celery's node name ``worker-N@<host>`` (``--celery-hostname``) and the same string as the
hostname Airflow records in the task instance (``[core] hostname_callable`` is :func:`hostname`),
which two workers on one machine would otherwise share. They run with ``--skip-serve-logs``: the
task logs are files in the stack's one log folder, read from there by the api-server.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparkify_local.stack import Stack

# The worker's name, in its environment (not a SPARKIFY_* setting: the stack sets it).
NAME_VARIABLE = "STACK_WORKER_NAME"
HOSTNAME_CALLABLE = "sparkify_local.workers.hostname"


def hostname() -> str:
    """Airflow's ``[core] hostname_callable`` in a worker: ``worker-N@<host>``, Celery's node name
    (``%h`` in ``--celery-hostname`` is the host name, not the fully qualified one)."""
    name = os.environ.get(NAME_VARIABLE)
    host = socket.gethostname()
    return f"{name}@{host}" if name else host


def names(count: int) -> list[str]:
    return [f"worker-{n}" for n in range(1, count + 1)]


def concurrency(parallelism: int, workers: int) -> int:
    """Task slots per worker: Airflow's parallelism shared out, at least one each."""
    return max(1, math.ceil(parallelism / workers))


def folder(state: Path, name: str) -> Path:
    return state / "workers" / name


def command(name: str, slots: int, pid_file: Path) -> list[str]:
    """``airflow …`` arguments of one worker."""
    return ["celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", str(slots),
            "--skip-serve-logs", "--without-mingle", "--without-gossip", "--pid", str(pid_file)]


def environment(state: Path, name: str, python_path: list[str]) -> dict[str, str]:
    """What one worker's environment adds to the stack's Airflow environment (``python_path``: the
    stack's PYTHONPATH and tools/, where :func:`hostname` is imported from)."""
    tmp = folder(state, name) / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return {
        NAME_VARIABLE: name,
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
        "TMPDIR": str(tmp),
        "PYTHONPATH": os.pathsep.join(p for p in python_path if p),
    }


def wait_until_ready(log_files: dict[str, Path], exited: Callable[[], None], timeout: float = 180) -> None:
    """Wait until each worker's log has Celery's ``<node> ready.`` line (it consumes from the broker);
    ``exited()`` raises when a process stopped."""
    from sparkify_local.config import RunnerError

    deadline = time.monotonic() + timeout
    waiting = dict(log_files)
    while waiting:
        for name, log in list(waiting.items()):
            text = log.read_text(errors="replace") if log.exists() else ""
            if f"{name}@" in text and " ready." in text:
                del waiting[name]
        if not waiting:
            return
        exited()
        if time.monotonic() > deadline:
            raise RunnerError(f"Celery worker(s) {', '.join(waiting)} not ready within {timeout:g} s; "
                              f"see {', '.join(str(p) for p in waiting.values())}")
        time.sleep(0.5)


def tasks_per_worker(stack: Stack, dag_id: str) -> Counter:
    """How many task instances of the window's runs each worker ran last (their ``hostname``), through
    the REST API (``~``: every run of the DAG, filtered by logical date)."""
    config = stack.config
    counts: Counter = Counter()
    offset = 0
    while True:
        page = stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/~/taskInstances?limit=100&offset={offset}"
                                f"&logical_date_gte={config.start:%Y-%m-%dT%H:%M:%S}Z"
                                f"&logical_date_lt={config.end:%Y-%m-%dT%H:%M:%S}Z")
        rows = page.get("task_instances", [])
        # Begin/End (EmptyOperator) are marked done by the scheduler: no worker, no hostname.
        counts.update(ti["hostname"] for ti in rows if ti.get("hostname"))
        offset += 100
        if len(rows) < 100:
            return counts
