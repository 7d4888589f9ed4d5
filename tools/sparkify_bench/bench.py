"""Bench: one bench run on its private stack: setup, the staging driver, Airflow backfills (timed, with
the CPU of the stack's processes), the warm-up, and running the sections (staging.py, backfills.py,
month.py) into ``results``."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sparkify_bench import airflow_api
from sparkify_bench.drivers import driver_command, run_driver
from sparkify_bench.machine import machine
from sparkify_bench.plan import (
    DATA,
    ETL,
    FLOOR,
    FLOOR_DAG_FILE,
    MONTH,
    OUT,
    RESET_EVENT_TABLES,
    ROOT,
    SECTIONS,
    WARM_UP_HOUR,
    Plan,
)
from sparkify_bench.stack import BenchStack
from sparkify_bench.warehouse import LockWaits, explain, pg_execute, pg_query
from sparkify_local.airflow_api import ApiError
from sparkify_local.config import Config, RunnerError
from sparkify_local.progress import say
from sparkify_local.stack import redact_url


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


@dataclass
class Backfill:
    dag_id: str
    runs: int
    wall: float  # backfill created -> last run finished, both from Airflow (the backfill's created_at, runs' end_date)
    cpu: dict[str, float]
    succeeded: int
    command: str
    max_active_runs: int
    parallelism: int
    completions: list[float] = field(default_factory=list)  # minutes after creation, per run
    failures: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    longest_lock_wait: float = 0.0  # seconds, the longest any warehouse lock request waited (LockWaits)


class Bench:
    def __init__(self, args: argparse.Namespace, plan: Plan) -> None:
        self.args, self.plan = args, plan
        self.results: dict[str, Any] = {"plan": {k: (v.isoformat() if isinstance(v, datetime) else v)
                                                 for k, v in plan.__dict__.items()},
                                        "quick": args.quick, "sections": {}}
        self.state = OUT / "state"
        self.source = DATA
        self.stack: BenchStack | None = None
        self.song_keys: list[str] = []
        self.bench_dbs: dict[str, str] = {}
        self.idle: dict[str, float] = {"airflow": 0.0, "postgres": 0.0, "moto": 0.0, "broker": 0.0}

    # -- setup ------------------------------------------------------------------------------------

    def prepare_state(self) -> None:
        """A fresh state folder (stopping a PostgreSQL left running there by an interrupted bench)."""
        from sparkify_local.pgserver import PostgresServer

        data = self.state / "pg" / "data"
        location = self.state / "pg" / "data.location"
        if data.exists() or location.exists():
            real = Path(location.read_text().strip()) if location.exists() else data
            PostgresServer(data).stop()
            if location.exists():
                shutil.rmtree(real.parent, ignore_errors=True)
        shutil.rmtree(self.state, ignore_errors=True)
        self.state.mkdir(parents=True)
        if self.plan.songs:  # a source folder with the first N song files and every daily log
            self.source = self.state / "source"
            songs = sorted((DATA / "song_data").rglob("*.json"))[: self.plan.songs]
            for path in songs:
                target = self.source / path.relative_to(DATA)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(path)
            (self.source / "log_data").symlink_to(DATA / "log_data")
            (self.source / "log_json_path.json").symlink_to(DATA / "log_json_path.json")
        self.song_keys = sorted(p.relative_to(self.source).as_posix()
                                for p in (self.source / "song_data").rglob("*.json"))
        dags = self.state / "dags"
        dags.mkdir()
        shutil.copy2(ROOT / "dags" / f"{ETL}.py", dags / f"{ETL}.py")
        floor = FLOOR_DAG_FILE.read_text()
        if self.args.floor_all_tasks:
            floor = floor.replace("\nEMPTY_ENDS = True\n", "\nEMPTY_ENDS = False\n")
        (dags / f"{FLOOR}.py").write_text(floor)

    def start(self) -> None:
        self.prepare_state()
        environ = {
            "STATE_DIR": str(self.state), "SOURCE": str(self.source), "START": "2018-11-01", "END": "2018-12-01",
            "WAREHOUSE_URL": "", "PG_PORT": "", "S3_PORT": "", "AIRFLOW_PORT": "",
            "MAX_ACTIVE_RUNS": str(self.args.max_active_runs), "AIRFLOW_PARALLELISM": str(self.args.parallelism),
            "REPROCESS": "completed", "BUCKET": "sparkify-bench",
        }
        config = Config.load(ROOT, environ)
        max_parallelism = max([self.args.parallelism, *self.plan.sweep_parallelism])
        self.stack = BenchStack(config, self.state / "dags", max_parallelism)
        self.stack.scheduled_runs = False
        self.stack.start_servers()
        self.stack.airflow_home.mkdir(parents=True, exist_ok=True)
        say(f"• seeding s3://{config.bucket}/ from {self.source} ({len(self.song_keys)} song objects, 30 daily logs)")
        began = time.monotonic()
        self.stack.seed(until_now=False)
        self.results["seed_seconds"] = time.monotonic() - began

    def ensure_airflow(self) -> None:
        stack = self.stack
        if stack.airflow_ready:
            return
        stack.prepare_airflow()
        shape = self.driver(["_shape", str(stack.dags_folder)], env=stack.airflow_env(False))
        if "errors" in shape:
            raise RunnerError(f"the bench DAG folder does not parse: {shape['errors']}")
        etl, floor = shape["dags"][ETL], shape["dags"][FLOOR]
        edges = {t: v["downstream"] for t, v in etl.items()}
        if edges != {t: v["downstream"] for t, v in floor.items()}:
            raise RunnerError(f"{FLOOR} does not have {ETL}'s shape: {floor} vs {etl}")
        self.results["floor_shape"] = {t: f"{etl[t]['kind']} -> {floor[t]['kind']}" for t in etl}
        say(f"  {FLOOR} has {ETL}'s {len(etl)} task ids and edges; operators: "
            + ", ".join(f"{t} {v}" for t, v in self.results["floor_shape"].items()))
        stack.start_airflow()
        for dag_id in (ETL, FLOOR):
            stack.rest.unpause(dag_id)
        stack.airflow_ready = True

    def bench_db(self, name: str, fresh: bool = False) -> str:
        """A separate warehouse database with every table, for the staging drivers."""
        stack = self.stack
        if fresh and name in self.bench_dbs:
            pg_execute(stack.pg.url(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.bench_dbs.pop(name)
        if name not in self.bench_dbs:
            url = stack.pg.ensure_database(name)
            env = {**stack.airflow_env(False), "AIRFLOW_CONN_REDSHIFT": url}
            result = subprocess.run([sys.executable, "-m", "sparkify.tables", "create", "--conn-id", "redshift"],
                                    env=env, capture_output=True, text=True, cwd=ROOT)
            if result.returncode != 0:
                raise RunnerError(f"creating the tables in {name} failed:\n{result.stderr[-2000:]}")
            self.bench_dbs[name] = url
        return self.bench_dbs[name]

    def driver(self, argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
        """Run a driver subcommand (drivers.py) in the stack's environment; its JSON."""
        return run_driver(argv, env or self.stack.airflow_env(False))

    def stage(self, db: str, *, bucket: str, prefix: str | None = None, key: str | None = None,
              listing_period_hours: float = 24) -> tuple[dict[str, Any], str]:
        """Run the staging driver on warehouse ``db``; (its figures, the command that produced them)."""
        if prefix:
            argv = ["_stage", "--table", "staging_songs", "--bucket", bucket, "--prefix", prefix, "--json-format",
                    "auto", "--dedupe-key", "song_id"]
        else:
            argv = ["_stage", "--table", "staging_events", "--bucket", bucket, "--key", key, "--json-format",
                    f"s3://{bucket}/log_json_path.json", "--source-key-column", "source_key", "--hour-counts"]
        argv += ["--listing-period-hours", f"{listing_period_hours:g}"]
        env = {**self.stack.airflow_env(False), "AIRFLOW_CONN_REDSHIFT": self.bench_dbs[db]}
        command = f"{driver_command(argv)}   # StageToRedshiftOperator.execute() as in {ETL}, warehouse database {db}"
        return self.driver(argv, env=env), command

    # -- backfills ----------------------------------------------------------------------------------

    def settle(self) -> None:
        """Wait until Airflow has marked every backfill complete (a few seconds after its last run)."""
        deadline = time.monotonic() + self.plan.settle_timeout
        while True:
            open_ids = airflow_api.open_backfill_ids(self.stack, (ETL, FLOOR))
            if not open_ids:
                return
            if time.monotonic() > deadline:
                for backfill_id in open_ids:
                    self.stack.api("PUT", f"/api/v2/backfills/{backfill_id}/cancel")
                time.sleep(2)
                return
            time.sleep(1)

    def backfill(self, dag_id: str, start: datetime, hours: int, max_active_runs: int | None = None,
                 quiet: bool = False) -> Backfill:
        stack = self.stack
        self.settle()
        mar = max_active_runs or self.args.max_active_runs
        last = start + timedelta(hours=hours - 1)  # --to-date is inclusive
        body = {"dag_id": dag_id, "from_date": iso(start), "to_date": iso(last), "max_active_runs": mar,
                "reprocess_behavior": "completed"}
        command = (f"airflow backfill create --dag-id {dag_id} --from-date {iso(start)} --to-date {iso(last)} "
                   f"--max-active-runs {mar} --reprocess-behavior completed   "
                   f"# [core] parallelism {stack.config.parallelism}, "
                   + (f"CeleryExecutor, {stack.config.workers} workers" if stack.config.celery else "LocalExecutor")
                   + ("" if self.args.via_cli else "; sent as POST /api/v2/backfills"))
        cpu0 = stack.cpu()
        waits = LockWaits(stack.warehouse_url).__enter__()
        if self.args.via_cli:
            args = command.split("#")[0].split()[1:]
            stack.airflow(*args)
            backfill_id = airflow_api.latest_backfill_id(stack, dag_id)
            if backfill_id is None:
                raise RunnerError(f"`{command.split('#')[0].strip()}` created no backfill")
        else:
            backfill_id = stack.api("POST", "/api/v2/backfills", body)["id"]
        info = airflow_api.backfill(stack, backfill_id)
        if not quiet:
            say(f"  {command}")
        poll, last_report, began = (1.0 if hours <= 48 else 2.0), time.monotonic(), time.monotonic()
        total = airflow_api.count_backfill_runs(stack, info)
        if not total:
            raise RunnerError(f"backfill {backfill_id} of {dag_id} has no run to wait for (every hour kept?)")
        while True:
            done = total - airflow_api.count_backfill_runs(stack, info, airflow_api.UNFINISHED)
            if total and done == total:
                break
            for name, process in stack.processes.items():
                if process.poll() is not None:
                    raise RunnerError(f"Airflow's {name} stopped; see {stack.logs / name}.log")
            if time.monotonic() - last_report > 60:
                say(f"    {done}/{total} runs done after {time.monotonic() - began:.0f} s")
                last_report = time.monotonic()
            time.sleep(poll)
        cpu1 = stack.cpu()
        waits.__exit__(None, None, None)
        runs = airflow_api.backfill_runs(stack, info)
        total, ok = len(runs), sum(1 for r in runs if r["state"] == "success")
        created = airflow_api.when(info["created_at"])
        ends = [airflow_api.when(r["end_date"]) for r in runs if r.get("end_date")]
        wall = (max(ends) - created).total_seconds()
        failures = []
        for run in runs:
            if run["state"] != "success":
                failed = airflow_api.failed_task_ids(stack, dag_id, run["dag_run_id"])
                failures.append(f"{run['dag_run_id']}: {', '.join(failed) or run['state']}")
        result = Backfill(dag_id=dag_id, runs=total, wall=wall,
                          cpu={k: cpu1[k] - cpu0[k] for k in cpu0}, succeeded=ok, command=command,
                          max_active_runs=mar, parallelism=stack.config.parallelism,
                          completions=sorted((end - created).total_seconds() / 60 for end in ends),
                          failures=failures, run_ids=[r["dag_run_id"] for r in runs],
                          longest_lock_wait=waits.longest)
        if not quiet:
            say(f"    {dag_id}: {ok}/{total} runs succeeded, wall {wall:.1f} s, Airflow CPU "
                f"{result.cpu['airflow']:.1f} s (PostgreSQL {result.cpu['postgres']:.1f} s, "
                f"moto {result.cpu['moto']:.1f} s); longest lock wait {waits.longest:.2f} s")
            for failure in failures[:5]:
                say(f"    FAILED {failure} (logs in {stack.airflow_home / 'logs'})")
        return result

    def reset_events(self) -> None:
        """Empty what the hourly loads wrote; the songs stay staged and loaded."""
        pg_execute(self.stack.warehouse_url, *RESET_EVENT_TABLES)

    def warm_up(self) -> None:
        if self.results.get("warm_up"):
            return
        say(f"• warm-up (untimed): one run of each DAG for {WARM_UP_HOUR:%Y-%m-%dT%H:%M}; "
            f"{ETL}'s stages the {len(self.song_keys)} songs and lists song_data/ once")
        etl = self.backfill(ETL, WARM_UP_HOUR, 1)
        floor = self.backfill(FLOOR, WARM_UP_HOUR, 1)
        if etl.succeeded != 1 or floor.succeeded != 1:
            raise RunnerError(f"the warm-up runs failed: {etl.failures + floor.failures}")
        self.results["warm_up"] = {"etl_wall": etl.wall, "floor_wall": floor.wall}
        self.settle()
        say(f"• idle: CPU of the stack's processes over {self.plan.idle_seconds:g} s with nothing to run")
        cpu0, began = self.stack.cpu(), time.monotonic()
        time.sleep(self.plan.idle_seconds)
        cpu1, seconds = self.stack.cpu(), time.monotonic() - began
        self.idle = {k: (cpu1[k] - cpu0[k]) / seconds for k in cpu0}
        self.results["idle_cpu_per_s"] = self.idle
        say("    " + ", ".join(f"{k} {v:.3f} CPU-s/s" for k, v in self.idle.items()))

    @property
    def month(self) -> tuple[datetime, datetime]:
        """November 2018; with --quick, its first two days."""
        return (MONTH[0], MONTH[0] + timedelta(days=2)) if self.args.quick else MONTH

    # -- the run --------------------------------------------------------------------------------------

    def sections(self) -> dict[str, Callable[[Bench], dict[str, Any]]]:
        from sparkify_bench import backfills, month, staging

        return {"staging": staging.section_staging, "incremental": staging.section_incremental,
                "memory": staging.section_memory, "backfill": backfills.section_backfill,
                "scale": backfills.section_scale, "sweep": backfills.section_sweep, "month": month.section_month,
                "celery": backfills.section_celery}

    def run(self, sections: list[str]) -> int:
        self.results["machine"] = machine()
        failed = False
        run_section = self.sections()
        try:
            self.start()
            for name in SECTIONS:
                if name not in sections:
                    continue
                try:
                    self.results["sections"][name] = run_section[name](self)
                except (RunnerError, ApiError, subprocess.SubprocessError, OSError, KeyError, ValueError) as err:
                    failed = True
                    say(f"  section {name} failed: {err}")
                    self.results["sections"][name] = {"error": str(err)[-3000:]}
                # What is measured so far survives an interrupted run (the full bench takes hours).
                (OUT / "results.partial.json").write_text(json.dumps(self.results, indent=2, default=str))
            if "explain" not in self.results and self.stack.airflow_ready:
                try:
                    self.results["explain"] = explain(self.stack.warehouse_url)
                except Exception as err:  # noqa: BLE001 - the report goes on without it
                    self.results["explain"] = {"error": str(err)}
            self.results["machine"]["loadavg_end"] = os.getloadavg()
            self.results["machine"]["postgresql"] = pg_query(self.stack.warehouse_url, "SHOW server_version")[0][0]
            self.results["stack"] = {"warehouse": redact_url(self.stack.warehouse_url),
                                     "s3": self.stack.moto.endpoint, "state": str(self.state)}
        finally:
            if self.stack:
                say("• stopping everything the bench started")
                self.stack.stop()
        return 1 if failed else 0
