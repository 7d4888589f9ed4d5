"""The local run: the whole pipeline on one machine, with no AWS, no Docker and no database installed.

    python -m sparkify_local run     # make run: load [START, END) through Airflow's scheduler
    python -m sparkify_local up      # make up: leave the stack and the UI running
    python -m sparkify_local down    # make down: stop what `up` started
    python -m sparkify_local clean   # make clean: stop, then remove STATE_DIR
    python -m sparkify_local airflow dags list   # make airflow ARGS="dags list": against `up`

It starts the local stack (:mod:`sparkify_local.stack`), seeds the bucket (generated demo data, or
SOURCE=<folder>), creates the tables, backfills `sparkify_etl` over the window with Airflow's own
backfill through the REST API (:mod:`sparkify_local.runs`), waits for the runs and prints a summary
(:mod:`sparkify_local.summary`). Settings: environment variables or `.env` (see `.env.example`,
:mod:`sparkify_local.config`). State lives in STATE_DIR (default `.state/`).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sparkify_local.airflow_api import ApiError
from sparkify_local.broker import RedisServer
from sparkify_local.config import DAG_ID, Config, RunnerError
from sparkify_local.pgserver import PostgresServer
from sparkify_local.processes import alive, ours, stop_groups, uninterruptible
from sparkify_local.progress import say
from sparkify_local.runs import close_interrupted_runs, create_backfill, run_intervals, wait_for_backfill
from sparkify_local.s3server import MotoServer
from sparkify_local.stack import Stack, redact_url
from sparkify_local.summary import print_summary, summarise

# The project's root (the runner is tools/sparkify_local/runner.py), found without importing the
# pipeline's package: that imports Airflow, about 2.7 CPU-s, which `make down`, `make clean` and a
# run stopped by a bad setting never need.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def running_stack(config: Config) -> dict[str, Any] | None:
    path = config.state / "stack.json"
    if not path.exists():
        return None
    info = json.loads(path.read_text())
    return info if any(alive(pid) for pid in info.get("pids", {}).values()) else None


def command_run(config: Config) -> int:
    if running_stack(config):
        raise RunnerError(
            f"`make up` is running on this state folder ({config.state}); "
            "backfill from its UI or CLI, or `make down` first"
        )
    started = time.monotonic()
    stack = Stack(config)
    stack.scheduled_runs = False
    ended = False
    try:
        stack.start_servers()
        stack.seed(until_now=False)
        stack.prepare_airflow()
        # The api-server alone first: through it, close what an interrupted run left unfinished
        # (normally closed when it stopped; not if it was killed) before a scheduler could resume it.
        stack.start_api_server()
        close_interrupted_runs(stack)
        stack.start_airflow()
        # The scheduler starts no run of a paused DAG, backfill runs included.
        stack.rest.unpause(DAG_ID)
        if config.grain == "hour":
            backfill_id = create_backfill(stack)
            if backfill_id is not None:
                wait_for_backfill(stack, backfill_id)
        else:
            run_intervals(stack)
        ended = True
        summary = summarise(stack)
        print_summary(stack, summary, time.monotonic() - started)
        return 1 if summary.failed or summary.missing else 0
    finally:
        say("• stopping everything this run started")
        stack.stop(close_runs=not ended)


def command_up(config: Config) -> int:
    if running_stack(config):
        raise RunnerError(f"the stack is already up ({config.state / 'stack.json'}); `make down` stops it")
    stack = Stack(config)
    try:
        stack.start_servers()
        stack.seed(until_now=True)
        stack.prepare_airflow()
        stack.start_airflow()
        stack.rest.unpause(DAG_ID)
        stack.write_stack_file()
    except BaseException:
        stack.stop()
        raise
    password = stack.admin_password() or f"(see {stack.airflow_home}/simple_auth_manager_passwords.json.generated)"
    say("")
    say(f"Airflow UI: http://127.0.0.1:{stack.api_port}/dags/{DAG_ID}   login: admin / {password}")
    say(f"quality:    http://127.0.0.1:{stack.api_port}/plugin/sparkify-quality/sparkify/quality/?dag_id={DAG_ID}"
        f"&start={config.start:%Y-%m-%dT%H:%M}&end={config.end:%Y-%m-%dT%H:%M}   (checks per hour; docs/quality.md)")
    say(f"warehouse:  {redact_url(stack.warehouse_url)}")
    say(f"S3:         {stack.moto.endpoint} bucket {config.bucket}"
        + ("" if config.source else " (demo data: the days of the window and the last day)"))
    say(f"logs:       {stack.logs}   state: {config.state}")
    say("The DAG is unpaused on its hourly schedule; backfill from the UI (Trigger → Backfill) or with")
    say(f'  make airflow ARGS="backfill create --dag-id {DAG_ID} --from-date … --to-date …"')
    say("`make down` stops everything.")
    return 0


def command_down(config: Config) -> int:
    path = config.state / "stack.json"
    if not path.exists():
        say("nothing is running (no stack.json)")
        return 0
    info = json.loads(path.read_text())
    pids = [*info.get("pids", {}).values(), *([info["moto_pid"]] if info.get("moto_pid") else []),
            *([info["broker_pid"]] if info.get("broker_pid") else [])]
    with uninterruptible():
        stop_groups([pid for pid in pids if ours(pid)])
    if info.get("pg_data"):
        server = PostgresServer(config.state / "pg" / "data")
        server.stop()
    path.unlink()
    say("stopped")
    return 0


def command_airflow(config: Config, args: list[str]) -> int:
    """make airflow ARGS="…": any Airflow CLI command against the stack `make up` left running, with its
    metadata database, connections and settings (not the SQLite a bare `airflow` would use)."""
    info = running_stack(config)
    if info is None:
        raise RunnerError(f"no stack is up on this state folder ({config.state}): start it with `make up`")
    if not args:
        raise RunnerError('give the command in ARGS, for example: make airflow ARGS="dags list"')
    stack = Stack(config)
    stack.metadata_url, stack.warehouse_url = info["metadata_url"], info["warehouse_url"]
    stack.api_port = info["api_port"]
    stack.moto = MotoServer(int(info["moto_endpoint"].rsplit(":", 1)[1]))
    if info.get("broker_url"):  # make up EXECUTOR=celery: the CLI sees the same executor and broker
        stack.config.executor = info.get("executor", "celery")
        stack.broker = RedisServer(config.state / "redis", port=int(info["broker_url"].rsplit(":", 1)[1].split("/")[0]))
    env = stack.airflow_env()
    sys.stdout.flush()
    return subprocess.run([sys.executable, "-m", "airflow", *args], env=env, cwd=config.root).returncode


def command_clean(config: Config) -> int:
    """make clean: stop what `up` left running, then remove the state folder (STATE_DIR, from the
    environment or .env) and the PostgreSQL data kept outside it when its user could not reach it."""
    import shutil

    state = config.state
    if state in (Path("/"), Path.home(), config.root) or config.root.is_relative_to(state):
        raise RunnerError(f"STATE_DIR={state} is not a folder `make clean` may remove")
    command_down(config)
    location = state / "pg" / "data.location"
    if location.is_file():
        elsewhere = Path(location.read_text().strip())
        if elsewhere.name == "data" and elsewhere.parent.name.startswith("sparkify-pg-"):
            shutil.rmtree(elsewhere.parent, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)
    say(f"removed {state}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparkify_local", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "up", "down", "clean", "airflow"])
    parser.add_argument("args", nargs=argparse.REMAINDER, help="airflow: the Airflow CLI command and its arguments")
    args = parser.parse_args(argv)
    root = PROJECT_ROOT
    try:
        config = Config.load(root)
        if args.command == "airflow":
            return command_airflow(config, args.args)
        handler = {"run": command_run, "up": command_up, "down": command_down, "clean": command_clean}[args.command]
        return handler(config)
    except (RunnerError, ApiError) as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr, flush=True)
        return 130


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP stop the run as Ctrl-C does (everything started is stopped)."""
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)


if __name__ == "__main__":
    install_signal_handlers()
    raise SystemExit(main())
