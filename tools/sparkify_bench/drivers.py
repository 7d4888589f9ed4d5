"""The subcommands the bench runs as subprocesses, each printing one JSON line, in the stack's environment:

    PYTHONPATH=plugins:tools .venv/bin/python -m sparkify_bench _stage …   # StageToRedshiftOperator.execute() once
    PYTHONPATH=plugins:tools .venv/bin/python -m sparkify_bench _get …     # boto3 GET of a list of keys, N threads
    PYTHONPATH=plugins:tools .venv/bin/python -m sparkify_bench _shape DAG_FOLDER   # task ids, edges, operators

run_driver() starts one (``python -m sparkify_bench``, so the package is found through PYTHONPATH) and
returns its JSON; driver_command() is how the report shows it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sparkify_bench.plan import ETL, ROOT
from sparkify_local.config import RunnerError

PYTHONPATH = ("plugins", "tools")


def driver_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the project's plugins/ and tools/ first on PYTHONPATH (what `make bench` exports)."""
    paths = [str(ROOT / p) for p in PYTHONPATH]
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in paths]
    return {**env, "PYTHONPATH": os.pathsep.join(paths + rest)}


def driver_command(argv: list[str]) -> str:
    """The command line of a driver, as one would type it from the project's folder."""
    return f"PYTHONPATH={':'.join(PYTHONPATH)} .venv/bin/python -m sparkify_bench {shlex.join(argv)}"


def run_driver(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``python -m sparkify_bench <argv>`` in ``env``; the last JSON line it printed."""
    result = subprocess.run([sys.executable, "-m", "sparkify_bench", *argv], env=driver_env(env),
                            capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RunnerError(f"`python -m sparkify_bench {' '.join(argv[:3])} …` failed ({result.returncode}):\n"
                          f"{(result.stderr or result.stdout)[-3000:]}")
    return json.loads(lines[-1])


def driver_stage(argv: list[str]) -> int:
    """`python -m sparkify_bench _stage …`: StageToRedshiftOperator.execute() once; prints one JSON line."""
    import resource

    parser = argparse.ArgumentParser(prog="python -m sparkify_bench _stage")
    parser.add_argument("--table", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key")
    parser.add_argument("--prefix")
    parser.add_argument("--json-format", default="auto")
    parser.add_argument("--dedupe-key")
    parser.add_argument("--source-key-column")
    parser.add_argument("--hour-counts", action="store_true")
    parser.add_argument("--listing-period-hours", type=float, default=24)
    parser.add_argument("--fetch-threads", type=int, default=16)
    parser.add_argument("--interval-start", default="2018-11-05T00:00:00")
    args = parser.parse_args(argv)
    import logging

    import psutil

    logging.basicConfig(level=logging.WARNING)
    from sparkify.operators import StageToRedshiftOperator
    from sparkify.resources import peak_rss_mb

    op = StageToRedshiftOperator(
        task_id="Stage_songs" if args.prefix else "Stage_events", table=args.table, s3_bucket=args.bucket,
        s3_key=args.key, s3_prefix=args.prefix, json_format=args.json_format, dedupe_key=args.dedupe_key,
        source_key_column=args.source_key_column, hour_counts=args.hour_counts,
        listing_period_hours=args.listing_period_hours, fetch_threads=args.fetch_threads,
    )
    start = datetime.fromisoformat(args.interval_start).replace(tzinfo=UTC)
    context = {"run_id": f"bench__{time.time_ns()}", "data_interval_start": start,
               "data_interval_end": start + timedelta(hours=1), "logical_date": start,
               "dag": argparse.Namespace(dag_id=ETL), "params": {}}
    baseline = psutil.Process().memory_info().rss / 2**20
    usage0, began = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    result = op.execute(context)
    wall = time.perf_counter() - began
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    print(json.dumps({"result": result, "wall": wall, "cpu": cpu, "baseline_rss_mb": baseline,
                      "peak_rss_mb": peak_rss_mb()}, default=str))
    return 0


def driver_get(argv: list[str]) -> int:
    """`python -m sparkify_bench _get …`: GET every key of a list with boto3 on N threads; prints one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m sparkify_bench _get")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--keys-file", type=Path, required=True)
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args(argv)
    from sparkify_local.seed import s3_client

    keys = args.keys_file.read_text().split()
    client = s3_client(args.endpoint, threads=args.threads)

    def get(key: str) -> int:
        return len(client.get_object(Bucket=args.bucket, Key=key)["Body"].read())

    began = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        total = sum(pool.map(get, keys))
    wall = time.perf_counter() - began
    print(json.dumps({"objects": len(keys), "bytes": total, "wall": wall}))
    return 0


def driver_shape(argv: list[str]) -> int:
    """`python -m sparkify_bench _shape FOLDER`: task ids, edges and operator kinds of the DAGs in a folder."""
    from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=argv[0])
    if bag.import_errors:
        print(json.dumps({"errors": {k: str(v)[-500:] for k, v in bag.import_errors.items()}}))
        return 1
    shape = {
        dag_id: {t.task_id: {"downstream": sorted(t.downstream_task_ids), "kind": t.task_type}
                 for t in dag.tasks}
        for dag_id, dag in bag.dags.items()
    }
    print(json.dumps({"dags": shape}))
    return 0


DRIVERS = {"_stage": driver_stage, "_get": driver_get, "_shape": driver_shape}
