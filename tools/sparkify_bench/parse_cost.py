"""What a task process pays to parse a DAG file: CPU of importing it in a freshly forked child.

    .venv/bin/python -m sparkify_bench.parse_cost                      # sparkify_etl and the bench's floor DAG
    .venv/bin/python -m sparkify_bench.parse_cost --no-local-settings  # without plugins/airflow_local_settings.py
    .venv/bin/python -m sparkify_bench.parse_cost --module sparkify.s3 --module airflow.providers.amazon.aws.hooks.s3

Airflow's LocalExecutor worker forks one process per task, and that process imports the DAG file
to find its task. This script does the same: a parent imports Airflow's task runner (what the
worker has) and, unless ``--no-local-settings``, whatever ``airflow_local_settings`` preloads (as
Airflow does in each of its processes), then forks a child per sample that imports the module and
reports its CPU time. Median of ``--samples`` (default 5). docs/performance.md quotes its output.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def child_cost(module: str) -> tuple[float, float]:
    """(wall s, CPU s) of importing ``module`` in a forked child."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: import, report, leave without running the parent's cleanup
        os.close(read)
        before, began = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        importlib.import_module(module)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        os.write(write, json.dumps([time.perf_counter() - began, cpu]).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not data or status != 0:
        raise SystemExit(f"importing {module} failed in the child (status {status})")
    wall, cpu = json.loads(data)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", help="modules to import (default: the two DAG files)")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--no-local-settings", action="store_true",
                        help="do not preload what plugins/airflow_local_settings.py preloads")
    args = parser.parse_args(argv)
    # The DAG folder and the floor DAG's folder, then the plugins (as Airflow and the runner set it).
    sys.path[:0] = [str(ROOT / "dags"), str(ROOT / "tools" / "sparkify_bench"), str(ROOT / "plugins")]
    if args.no_local_settings:
        sys.modules["airflow_local_settings"] = None  # type: ignore[assignment] - "not there"
    import airflow.sdk.execution_time.task_runner  # noqa: F401 - what the LocalExecutor's worker has

    preloaded = [] if args.no_local_settings else list(importlib.import_module("airflow_local_settings").PRELOAD)
    modules = args.module or ["sparkify_etl", "floor_dag"]
    print(f"preloaded by airflow_local_settings: {', '.join(preloaded) or 'nothing'}")
    for module in modules:
        samples = [child_cost(module) for _ in range(args.samples)]
        wall = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples)
        print(f"{module:<45} import in a forked child: CPU {cpu:.3f} s, wall {wall:.3f} s "
              f"(median of {args.samples})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
