"""The local run: the whole pipeline on one machine, with no AWS, no Docker and no database installed.

    python -m sparkify_local.runner run     # make run: load [START, END) through Airflow's scheduler
    python -m sparkify_local.runner up      # make up: leave the stack and the UI running
    python -m sparkify_local.runner down    # make down: stop what `up` started
    python -m sparkify_local.runner clean   # make clean: stop, then remove STATE_DIR
    python -m sparkify_local.runner airflow dags list   # make airflow ARGS="dags list": against `up`

It starts, on 127.0.0.1 with free ports: a private PostgreSQL (Airflow's metadata and, unless
WAREHOUSE_URL is given, the warehouse), moto's S3 server, and Airflow's api-server, scheduler,
dag-processor and triggerer (LocalExecutor). It seeds the bucket (generated demo data, or
SOURCE=<folder>), creates the tables, backfills `sparkify_etl` over the window with Airflow's
own backfill, waits for the runs and prints a summary. Settings: environment variables or
`.env` (see `.env.example`). State lives in STATE_DIR (default `.state/`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sparkify import settings
from sparkify.intervals import manual_logical_date
from sparkify_local.pgserver import PostgresError, PostgresServer
from sparkify_local.ports import free_port, port_in_use
from sparkify_local.s3server import MotoServer, S3ServerError

DAG_ID = "sparkify_etl"
# Settings of .env and the environment that reach Airflow's processes as they are.
PASSED_TO_AIRFLOW = ("SPARKIFY_", "AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")
# Airflow settings the local stack owns: where its home, metadata, DAGs, API and logs are. A user's
# value for one of these is ignored, with a message.
STACK_OWNED = frozenset({
    "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER", "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__API__HOST",
    "AIRFLOW__API__PORT", "AIRFLOW__API__BASE_URL", "AIRFLOW__LOGGING__BASE_LOG_FOLDER",
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
})
SECRETS_BACKEND = "AIRFLOW__SECRETS__BACKEND"
LOCAL_FILESYSTEM_BACKEND = "airflow.secrets.local_filesystem.LocalFilesystemBackend"
# hour: Airflow's backfill, one run per hour; day: one run per UTC day of the window; window: one run.
GRAINS = ("hour", "day", "window")
STAR_TABLES = ("songplays", "users", "songs", "artists", "time")


class RunnerError(RuntimeError):
    """A problem the user can fix; printed without a traceback, exit code 2."""


# -- configuration ------------------------------------------------------------------------------


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a .env file, parsed by python-dotenv (quotes, ``export``, comments);
    a line it cannot parse fails naming the file and line."""
    from dotenv.parser import parse_stream

    values: dict[str, str] = {}
    if not path.is_file():
        return values
    with path.open() as stream:
        for binding in parse_stream(stream):
            if binding.error:
                raise RunnerError(f"{path}, line {binding.original.line}: expected KEY=VALUE, "
                                  f"not {binding.original.string.strip()!r}")
            if binding.key:
                values[binding.key] = binding.value or ""
    return values


def parse_moment(value: str, name: str) -> datetime:
    """A UTC date (2018-11-05) or datetime (2018-11-05T03:00), truncated to the hour."""
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            moment = datetime.strptime(value.removesuffix("Z"), fmt)
            break
        except ValueError:
            continue
    else:
        raise RunnerError(f"{name}={value!r} is not a UTC date (2018-11-05) or datetime (2018-11-05T03:00)")
    if moment.minute or moment.second:
        raise RunnerError(f"{name}={value!r}: hourly runs start on the hour")
    return moment


@dataclass
class Config:
    root: Path
    state: Path
    start: datetime
    end: datetime
    source: Path | None
    warehouse_url: str | None
    pg_port: int | None
    s3_port: int | None
    airflow_port: int | None
    max_active_runs: int
    parallelism: int
    reprocess: str
    bucket: str
    run_backwards: bool = False
    grain: str = "hour"
    env: dict[str, str] = field(default_factory=dict)  # SPARKIFY_*, AIRFLOW__*, AIRFLOW_CONN_*, AIRFLOW_VAR_*
    connections_file: Path | None = None  # connections.yaml: Airflow's local-filesystem secrets backend

    @classmethod
    def load(cls, root: Path, environ: dict[str, str] | None = None) -> Config:
        environ = dict(os.environ if environ is None else environ)
        env_file = Path(environ.get("ENV_FILE") or root / ".env")
        if environ.get("ENV_FILE") and not env_file.is_file():
            raise RunnerError(f"ENV_FILE={environ['ENV_FILE']}: no such file")
        values = {**read_dotenv(env_file), **environ}

        def get(name: str, default: str = "") -> str:
            return values.get(name, default).strip()

        def port(name: str) -> int | None:
            text = get(name)
            if not text:
                return None
            if not text.isdigit() or not 0 < int(text) < 65536:
                raise RunnerError(f"{name}={text!r} is not a TCP port")
            return int(text)

        start = parse_moment(get("START", "2018-11-01"), "START")
        end = parse_moment(get("END", "2018-11-02"), "END")
        if start >= end:
            raise RunnerError(f"START ({start:%Y-%m-%dT%H:%M}) must be before END ({end:%Y-%m-%dT%H:%M})")
        source = None
        if get("SOURCE"):
            source = (root / get("SOURCE")).resolve() if not Path(get("SOURCE")).is_absolute() else Path(get("SOURCE"))
            if not source.is_dir():
                raise RunnerError(f"SOURCE={get('SOURCE')}: no such folder ({source})")
            if not (source / "log_data").is_dir() or not (source / "song_data").is_dir():
                raise RunnerError(f"SOURCE={get('SOURCE')}: expected log_data/ and song_data/ in {source}")
        grain = get("GRAIN", "hour")
        if grain not in GRAINS:
            raise RunnerError(f"GRAIN={grain!r}: use {', '.join(GRAINS)}")
        reprocess = get("REPROCESS", "failed")
        if reprocess not in ("none", "failed", "completed"):
            raise RunnerError(f"REPROCESS={reprocess!r}: use none, failed or completed")
        warehouse_url = get("WAREHOUSE_URL") or None
        if warehouse_url and not warehouse_url.startswith(("postgresql://", "postgres://")):
            raise RunnerError("WAREHOUSE_URL must be a postgresql://user[:password]@host:port/database URL")
        try:
            max_active_runs = int(get("MAX_ACTIVE_RUNS", "4"))
            parallelism = int(get("AIRFLOW_PARALLELISM", "8"))
        except ValueError as err:
            raise RunnerError(f"MAX_ACTIVE_RUNS and AIRFLOW_PARALLELISM are whole numbers ({err})") from None
        state = Path(get("STATE_DIR", str(root / ".state")))
        # What reaches Airflow's processes: the pipeline's settings, the user's Airflow settings,
        # connections and variables, from .env or the environment (the environment wins).
        passed = {k: v for k, v in values.items() if k.startswith(PASSED_TO_AIRFLOW)}
        connections = get("CONNECTIONS_FILE", str(root / "connections.yaml"))
        connections_file = (root / connections).resolve() if not Path(connections).is_absolute() else Path(connections)
        if get("CONNECTIONS_FILE") and not connections_file.is_file():
            raise RunnerError(f"CONNECTIONS_FILE={get('CONNECTIONS_FILE')}: no such file ({connections_file})")
        return cls(
            root=root, state=state.resolve(), start=start, end=end, source=source, warehouse_url=warehouse_url,
            pg_port=port("PG_PORT"), s3_port=port("S3_PORT"), airflow_port=port("AIRFLOW_PORT"),
            max_active_runs=max_active_runs, parallelism=parallelism, reprocess=reprocess,
            bucket=get("BUCKET", "sparkify-local"), run_backwards=get("RUN_BACKWARDS", "") in ("1", "true", "yes"),
            grain=grain, env=passed, connections_file=connections_file if connections_file.is_file() else None,
        )

    @property
    def hours(self) -> int:
        return int((self.end - self.start).total_seconds() // 3600)

    def intervals(self) -> list[tuple[datetime, datetime]]:
        """The data intervals of the window's runs in this grain, in order."""
        if self.grain == "window":
            return [(self.start, self.end)]
        step = timedelta(hours=1) if self.grain == "hour" else timedelta(days=1)
        out, start = [], self.start
        while start < self.end:
            midnight = datetime.combine(start.date() + step, datetime.min.time())
            out.append((start, min(start + step if self.grain == "hour" else midnight, self.end)))
            start = out[-1][1]
        return out


# -- the stack ------------------------------------------------------------------------------------


_STARTED = time.monotonic()


def say(message: str) -> None:
    """Print a progress line, stamped with the seconds since the command started."""
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}" if message else "", flush=True)


class Stack:
    """Every server of the local run; `stop()` stops what this object started, in reverse order."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.state = config.state
        self.pg: PostgresServer | None = None
        self.moto: MotoServer | None = None
        self.processes: dict[str, subprocess.Popen] = {}
        self.api_port: int | None = None
        self.scheduled_runs = True
        self.warehouse_url: str = ""
        self.metadata_url: str = ""

    # paths
    @property
    def airflow_home(self) -> Path:
        return self.state / "airflow"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def stack_file(self) -> Path:
        return self.state / "stack.json"

    def start_servers(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.state.chmod(0o755)
        self.logs.mkdir(exist_ok=True)
        for name, port in (("PG_PORT", self.config.pg_port), ("S3_PORT", self.config.s3_port),
                           ("AIRFLOW_PORT", self.config.airflow_port)):
            if port is not None and port_in_use(port):
                raise RunnerError(f"{name}={port}: port {port} on 127.0.0.1 is already in use; choose another")
        say("• starting PostgreSQL (Airflow metadata" + ("" if self.config.warehouse_url else " and warehouse") + ")")
        try:
            self.pg = PostgresServer(self.state / "pg" / "data", port=self.config.pg_port).start()
        except PostgresError as err:
            raise RunnerError(str(err)) from None
        self.metadata_url = self.pg.ensure_database("airflow")
        if self.config.warehouse_url:
            self.warehouse_url = self.config.warehouse_url
            check_warehouse(self.warehouse_url)
        else:
            self.warehouse_url = self.pg.ensure_database("sparkify")
        say("• starting moto's S3 server")
        try:
            self.moto = MotoServer(port=self.config.s3_port, log_file=self.logs / "moto.log").start()
        except S3ServerError as err:
            raise RunnerError(str(err)) from None

    def airflow_env(self, scheduled_runs: bool = True) -> dict[str, str]:
        """The environment of every Airflow process (and of the runner's own commands that use Airflow's
        connections). In Airflow's order, a connection is looked up in the configured secrets backend
        first (connections.yaml, or the user's own backend such as Secrets Manager), then in
        AIRFLOW_CONN_* variables: the user's, from .env or the environment, and otherwise the stack's
        defaults for ``redshift`` (the embedded warehouse, or WAREHOUSE_URL) and ``aws`` (moto)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(PASSED_TO_AIRFLOW)}
        sql_url = self.metadata_url.replace("postgresql://", "postgresql+psycopg://", 1)
        # Defaults the user may change (.env or the environment).
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__PARALLELISM": str(self.config.parallelism),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "10",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.config.parallelism),
                "AIRFLOW_CONN_REDSHIFT": self.warehouse_url,
                "AIRFLOW_CONN_AWS": json.dumps(
                    {
                        "conn_type": "aws",
                        "login": "local",
                        "password": "local-secret",
                        "extra": {"endpoint_url": self.moto.endpoint, "region_name": "us-west-2"},
                    }
                ),
                "SPARKIFY_S3_BUCKET": self.config.bucket,
            }
        )
        if self.config.connections_file and SECRETS_BACKEND not in self.config.env:
            env[SECRETS_BACKEND] = LOCAL_FILESYSTEM_BACKEND
            env["AIRFLOW__SECRETS__BACKEND_KWARGS"] = json.dumps(
                {"connections_file_path": str(self.config.connections_file)})
        env.update({k: v for k, v in self.config.env.items() if k not in STACK_OWNED})
        # What the stack owns.
        env.update(
            {
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.config.root / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.config.root / "plugins"),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.airflow_home / "logs"),
                # `make run` only backfills: no scheduled run of the current hour beside it.
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(scheduled_runs),
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(self.config.root / "plugins"), os.environ.get("PYTHONPATH", "")) if p
                ),
            }
        )
        return env

    def redshift_elsewhere(self) -> str | None:
        """Where the `redshift` connection comes from when it is not the stack's default: the
        connections file, the user's own secrets backend, or AIRFLOW_CONN_REDSHIFT."""
        if self.config.env.get(SECRETS_BACKEND):
            return f"the secrets backend {self.config.env[SECRETS_BACKEND]} (if it holds one)"
        if self.config.connections_file and "redshift" in connection_ids(self.config.connections_file):
            return str(self.config.connections_file)
        if "AIRFLOW_CONN_REDSHIFT" in self.config.env:
            return "AIRFLOW_CONN_REDSHIFT"
        return None

    def ignored_settings(self) -> list[str]:
        """The user's Airflow settings the stack overrides (said once, when Airflow starts)."""
        return sorted(k for k in self.config.env if k in STACK_OWNED)

    def airflow(self, *args: str, check: bool = True, quiet: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args], env=self.airflow_env(self.scheduled_runs), capture_output=True,
            text=True,
            cwd=self.config.root,
        )
        if check and result.returncode != 0:
            raise RunnerError(f"`airflow {' '.join(args)}` failed:\n{(result.stderr or result.stdout)[-3000:]}")
        return result

    def seed(self, until_now: bool) -> None:
        from sparkify_local import seed

        if self.config.source:
            say(f"• uploading {self.config.source} to s3://{self.config.bucket}/ (unchanged objects are skipped)")
            source = self.config.source
            last_day = (self.config.end - timedelta(microseconds=1)).date()
            window = (self.config.start.date(), last_day + timedelta(days=1))
        else:
            from sparkify_local import demo_data

            now = datetime.now(UTC).replace(tzinfo=None)
            end_day = self.config.end.date() + timedelta(days=1 if self.config.end.hour else 0)
            source = self.state / "demo"
            summary = demo_data.generate(source, self.config.start.date(), end_day, now=now)
            say(f"• generated demo data in {source}: {summary}")
            if until_now and end_day <= now.date():
                # `make up`'s hourly schedule runs the latest hour: its day and the one before, not
                # every day since START (years of demo data: minutes and gigabytes in moto's memory).
                recent = max(end_day, now.date() - timedelta(days=1))
                summary = demo_data.generate(source, recent, now.date() + timedelta(days=1), now=now)
                say(f"  and for the scheduled runs, {recent} to today: {summary}")
            window = None
        summary = seed.seed(
            source, endpoint=self.moto.endpoint, bucket=self.config.bucket,
            start=window[0] if window else None, end=window[1] if window else None,
        )
        say(f"  {summary}")

    def prepare_airflow(self) -> None:
        self.api_port = self.config.airflow_port or free_port()
        self.airflow_home.mkdir(parents=True, exist_ok=True)
        # Roles belong to the whole server: they are created on the embedded one, never on yours.
        embedded = not self.config.warehouse_url and not self.redshift_elsewhere()
        steps = [["sparkify.tables", "migrate"]] + ([["sparkify.access", "grant"]] if embedded else [])
        say("• creating or migrating the warehouse tables" + (", granting the analysts' and loader's roles"
                                                             if embedded else ""))
        env = self.airflow_env()
        for step in steps:
            result = subprocess.run(
                [sys.executable, "-m", *step, "--conn-id", "redshift"],
                env=env, capture_output=True, text=True, cwd=self.config.root,
            )
            if result.returncode != 0:
                raise RunnerError(f"python -m {' '.join(step)} failed:\n{result.stderr[-3000:]}")
            say("  " + (result.stdout.strip().splitlines() or [""])[-1])  # the command's summary, not its logs
        say("• migrating Airflow's metadata database and parsing the DAGs")
        self.airflow("db", "migrate")
        self.airflow("dags", "reserialize")

    def start_airflow(self) -> None:
        say(f"• starting Airflow (api-server on 127.0.0.1:{self.api_port}, scheduler, dag-processor, triggerer)")
        if self.config.connections_file and SECRETS_BACKEND not in self.config.env:
            say(f"  connections: {self.config.connections_file} first (Airflow's local-filesystem secrets backend), "
                "then AIRFLOW_CONN_* variables")
        for name in self.ignored_settings():
            say(f"  ignoring {name} from the environment or .env: the local stack sets it")
        commands = {
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(self.api_port)],
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer", "--skip-serve-logs"],
        }
        env = self.airflow_env(self.scheduled_runs)
        for name, args in commands.items():
            log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.config.root, start_new_session=True,
            )
        self.wait_for_api()

    def wait_for_api(self, timeout: float = 120) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    log = self.logs / f"{name}.log"
                    raise RunnerError(f"Airflow's {name} exited (code {process.returncode}); see {log}")
            try:
                health = f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health"
                urllib.request.urlopen(health, timeout=2).close()
                return
            except OSError:
                time.sleep(0.5)
        raise RunnerError(f"Airflow's api-server did not answer within {timeout:g} s; see {self.logs}/api-server.log")

    def admin_password(self, timeout: float = 10) -> str | None:
        """The password the simple auth manager generated for `admin` (in AIRFLOW_HOME)."""
        path = self.airflow_home / "simple_auth_manager_passwords.json.generated"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists():
                return json.loads(path.read_text()).get("admin")
            time.sleep(0.5)
        return None

    def api(self, method: str, path: str, body: dict | None = None, timeout: float = 30) -> dict:
        """Call Airflow's REST API as `admin` (loopback only)."""
        import urllib.request

        base = f"http://127.0.0.1:{self.api_port}"
        if not getattr(self, "_token", None):
            request = urllib.request.Request(
                base + "/auth/token", method="POST", headers={"Content-Type": "application/json"},
                data=json.dumps({"username": "admin", "password": self.admin_password()}).encode(),
            )
            with urllib.request.urlopen(request, timeout=timeout) as response:
                self._token = json.loads(response.read())["access_token"]
        request = urllib.request.Request(
            base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._token}"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")

    def close_interrupted_runs(self) -> None:
        """Close what an interrupted run left in Airflow's metadata, while no scheduler runs: its unfinished
        backfill (Airflow allows one per DAG, and a scheduler would resume it) and the runs left queued or
        running (of that backfill or in this window), marked failed as Airflow's "mark failed" does
        (running tasks failed, pending ones skipped), so that the next backfill reruns them."""
        import psycopg

        window = (self.config.start.replace(tzinfo=UTC), self.config.end.replace(tzinfo=UTC))
        with psycopg.connect(self.metadata_url, connect_timeout=10) as conn:  # one transaction
            if conn.execute("SELECT to_regclass('backfill') IS NULL").fetchone()[0]:
                return  # Airflow's metadata database is not migrated yet: nothing ran
            backfills = [row[0] for row in conn.execute(
                "UPDATE backfill SET is_paused = TRUE, completed_at = now() "
                "WHERE dag_id = %s AND completed_at IS NULL RETURNING id", (DAG_ID,),
            )]
            runs = conn.execute(
                "UPDATE dag_run SET state = 'failed', end_date = now() "
                "WHERE dag_id = %s AND state IN ('queued', 'running') "
                "AND (backfill_id = ANY(%s) OR (data_interval_start >= %s AND data_interval_start < %s)) "
                "RETURNING run_id, data_interval_start",
                (DAG_ID, backfills, *window),
            ).fetchall()
            run_ids = [run_id for run_id, _ in runs]
            conn.execute(
                "UPDATE task_instance SET state = CASE WHEN state IN "
                "('running', 'deferred', 'up_for_reschedule', 'awaiting_input') THEN 'failed' ELSE 'skipped' END, "
                "end_date = now() WHERE dag_id = %s AND run_id = ANY(%s) AND (state IS NULL OR state NOT IN "
                "('success', 'failed', 'skipped', 'upstream_failed', 'removed'))",
                (DAG_ID, run_ids),
            )
        for backfill_id in backfills:
            say(f"• closed backfill {backfill_id}, left unfinished by an interrupted run")
        if runs:
            hours = ", ".join(f"{start:%Y-%m-%dT%H:%M}" for _, start in sorted(runs, key=lambda r: r[1]))
            say(f"  its unfinished runs are marked failed ({hours}); REPROCESS=failed reruns them")

    def write_stack_file(self) -> None:
        self.stack_file.write_text(json.dumps({
            "pids": {name: p.pid for name, p in self.processes.items()},
            "moto_pid": self.moto.process.pid if self.moto and self.moto.process else None,
            "pg_data": str(self.pg.data_dir) if self.pg else None,
            "api_port": self.api_port,
            "moto_endpoint": self.moto.endpoint if self.moto else None,
            "warehouse_url": self.warehouse_url,
            "metadata_url": self.metadata_url,
        }, indent=2))

    def stop(self, close_runs: bool = False) -> None:
        """Stop everything, Airflow's processes and moto first; with ``close_runs`` (the run did not end
        normally), close its unfinished backfill and runs before PostgreSQL stops."""
        with uninterruptible():
            groups = [p.pid for p in self.processes.values()]
            if self.moto and self.moto.process:
                groups.append(self.moto.process.pid)
            stop_groups(groups)
            for process in self.processes.values():
                process.poll()
            self.processes.clear()
            if self.moto:
                self.moto.stop()
            if close_runs and self.metadata_url:
                try:
                    self.close_interrupted_runs()
                except Exception as err:  # noqa: BLE001 - the next run closes them before it starts
                    say(f"  could not close the unfinished runs now ({str(err).strip()}); the next run will")
            if self.pg:
                self.pg.stop()


class uninterruptible:  # noqa: N801 - used as a statement: `with uninterruptible():`
    """Ignore Ctrl-C and SIGTERM while stopping: a second Ctrl-C must not leave servers behind
    (stopping takes seconds; it is bounded by the timeouts below)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> None:
        self.saved = {}
        for sig in self.SIGNALS:
            try:
                self.saved[sig] = signal.signal(sig, signal.SIG_IGN)
            except ValueError:  # not the main thread
                pass

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def stop_groups(pids: list[int], timeout: float = 20, group_after: float = 2) -> None:
    """Stop processes started in process groups of their own (``start_new_session``) and every
    descendant, all at once. SIGTERM to each process first: it stops its children its own way
    (Airflow's scheduler sends its executor's workers a last message; they would ignore a SIGTERM).
    After ``group_after`` seconds, SIGTERM to the rest of each group (the api-server's and the
    dag-processor's children wait for one). After ``timeout`` seconds (the triggerer waits 10 s for
    its triggers; a scheduler waits for running tasks), SIGKILL to each group and to every
    descendant seen, those in groups of their own (Airflow's task processes) included."""
    import psutil

    tracked: dict[int, psutil.Process] = {}
    groups = set(pids)

    def track() -> None:
        # Every member of the groups, whether or not its leader is alive (a SIGKILLed scheduler's
        # LocalExecutor workers stay in its group, orphaned), and every descendant of what is tracked.
        for proc in psutil.process_iter():
            try:
                if proc.pid != os.getpid() and os.getpgid(proc.pid) in groups:
                    tracked.setdefault(proc.pid, proc)
            except (psutil.Error, ProcessLookupError, PermissionError):
                pass
        for proc in [*tracked.values()]:
            try:
                for child in proc.children(recursive=True):
                    tracked.setdefault(child.pid, child)
            except psutil.Error:
                pass

    def alive() -> list[psutil.Process]:
        found = []
        for proc in tracked.values():
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
            except psutil.Error:
                pass
        return found

    def reap() -> None:
        for pid in [*tracked]:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass

    for pid in pids:
        try:
            tracked[pid] = psutil.Process(pid)
        except psutil.NoSuchProcess:
            pass
    track()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            # The leader is gone: what is left of its group gets the SIGTERM at once.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
    started = time.monotonic()
    grouped = False
    while time.monotonic() - started < timeout:
        track()
        reap()
        if not alive():
            return
        if not grouped and time.monotonic() - started >= group_after:
            grouped = True
            for pid in pids:
                try:
                    os.killpg(pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
        time.sleep(0.2)
    track()
    left = alive()
    names: dict[str, int] = {}
    for proc in left:
        try:
            words = " ".join(proc.cmdline()).split() or [proc.name()]
        except psutil.Error:
            continue
        words = words[2:] if words[1:2] == ["-m"] else [Path(words[0]).name, *words[1:]]
        names[" ".join(words[:2])] = names.get(" ".join(words[:2]), 0) + 1
    listed = ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in names.items())
    say(f"  killing what did not stop within {timeout:g} s: {listed}")
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for proc in left:
        try:
            proc.kill()
        except psutil.Error:
            pass
    deadline = time.monotonic() + 5
    while alive() and time.monotonic() < deadline:
        reap()
        time.sleep(0.1)
    reap()


def stop_group(pid: int, name: str, timeout: float = 20) -> None:
    """SIGTERM a process started in a group of its own, then SIGKILL what is left of it (see stop_groups)."""
    stop_groups([pid], timeout=timeout)


def check_warehouse(url: str) -> None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        safe = redact_url(url)
        raise RunnerError(f"WAREHOUSE_URL {safe} is not reachable: {str(err).strip().splitlines()[0]}") from None


def redact_url(url: str) -> str:
    """The URL with any password replaced, for printing."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def connection_ids(path: Path) -> set[str]:
    """The connection ids a connections file (YAML or JSON, Airflow's local-filesystem format) defines."""
    import yaml

    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise RunnerError(f"{path}: cannot read the connections ({err})") from None
    if not isinstance(document, dict):
        raise RunnerError(f"{path}: expected a mapping of connection ids to connections")
    return set(document)


# -- the backfill -------------------------------------------------------------------------------


def metadata_query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]


def create_backfill(stack: Stack) -> int | None:
    """Start Airflow's backfill over the window; its id, or None when no run was left to do."""
    config = stack.config
    before = metadata_query(stack.metadata_url, "SELECT COALESCE(MAX(id), 0) FROM backfill")[0][0]
    last_start = config.end - timedelta(hours=1)  # --to-date is inclusive
    args = [
        "backfill", "create", "--dag-id", DAG_ID,
        "--from-date", config.start.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "--to-date", last_start.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "--max-active-runs", str(config.max_active_runs),
        "--reprocess-behavior", config.reprocess,
    ]
    if config.run_backwards:
        args.append("--run-backwards")
    say(f"• airflow {' '.join(args)}")
    result = stack.airflow(*args, check=False)
    if result.returncode != 0:
        if "No runs to create" in result.stdout + result.stderr or "NoBackfillRunsToCreate" in result.stderr:
            # Airflow creates no backfill only when no hour of the window has ended yet.
            say("  no run to create: no hour of the window has ended yet")
            return None
        raise RunnerError(f"airflow backfill create failed:\n{(result.stderr or result.stdout)[-3000:]}")
    rows = metadata_query(stack.metadata_url, "SELECT id FROM backfill WHERE id > %s AND dag_id = %s ORDER BY id",
                          (before, DAG_ID))
    if not rows:
        raise RunnerError(f"airflow backfill create reported success but no backfill exists:\n{result.stdout[-2000:]}")
    backfill_id = rows[-1][0]
    # Hours whose run is kept (REPROCESS) get a backfill row without a run ("already exists").
    to_run, kept = metadata_query(
        stack.metadata_url,
        "SELECT COUNT(dag_run_id), COUNT(*) - COUNT(dag_run_id) FROM backfill_dag_run WHERE backfill_id = %s",
        (backfill_id,),
    )[0]
    if not to_run:
        done = "succeeded" if config.reprocess == "failed" else "ran"
        say(f"  every run of the window already {done} (REPROCESS={config.reprocess}); "
            "REPROCESS=completed reloads them")
        return None
    if kept:
        say(f"  {kept} run(s) of the window already ran and are kept (REPROCESS={config.reprocess})")
    return backfill_id


def wait_for_backfill(stack: Stack, backfill_id: int, poll: float = 2.0) -> None:
    """Wait until every run of the backfill has finished, printing progress as it changes."""
    last = None
    while True:
        rows = metadata_query(
            stack.metadata_url,
            "SELECT dr.state, dr.data_interval_start FROM backfill_dag_run b JOIN dag_run dr ON dr.id = b.dag_run_id "
            "WHERE b.backfill_id = %s",
            (backfill_id,),
        )
        total = len(rows)
        done = [r for r in rows if r[0] in ("success", "failed")]
        ok = sum(1 for r in rows if r[0] == "success")
        running = sorted(r[1] for r in rows if r[0] == "running")
        current = f"{running[0]:%Y-%m-%dT%H:%M}" if running else "-"
        line = f"  runs {len(done)}/{total} done ({ok} succeeded, {len(done) - ok} failed); running: {current}"
        if line != last:
            say(line)
            last = line
        if total and len(done) == total:
            return
        if not total and metadata_query(
            stack.metadata_url, "SELECT completed_at IS NOT NULL FROM backfill WHERE id = %s", (backfill_id,)
        )[0][0]:
            return  # a backfill with no run to wait for
        for name, process in stack.processes.items():
            if process.poll() is not None:
                raise RunnerError(f"Airflow's {name} stopped (code {process.returncode}); see {stack.logs / name}.log")
        time.sleep(poll)


def manual_run_body(start: datetime, end: datetime, grain: str) -> dict[str, Any]:
    """The body of ``POST /api/v2/dags/sparkify_etl/dagRuns`` for one run over ``[start, end)``:
    what the UI's Trigger form sends with a manual data interval."""
    def iso(moment: datetime) -> str:
        return f"{moment:%Y-%m-%dT%H:%M:%S}Z"

    return {
        "dag_run_id": f"manual__{grain}__{start:%Y-%m-%dT%H}--{end:%Y-%m-%dT%H}",
        "logical_date": iso(manual_logical_date(start, end)),
        "data_interval_start": iso(start),
        "data_interval_end": iso(end),
        "conf": {},
        "note": f"make run GRAIN={grain}",
    }


def run_intervals(stack: Stack, poll: float = 2.0) -> None:
    """GRAIN=day or window: trigger one run per interval through the REST API (at most MAX_ACTIVE_RUNS
    unfinished at a time), keeping or clearing runs that exist as REPROCESS says, and wait for all."""
    config = stack.config
    planned = config.intervals()
    say(f"• {len(planned)} run(s) over [{config.start:%Y-%m-%dT%H:%M}, {config.end:%Y-%m-%dT%H:%M}) "
        f"(GRAIN={config.grain}), at most {config.max_active_runs} at a time, "
        f"through POST /api/v2/dags/{DAG_ID}/dagRuns")
    waiting = list(planned)
    mine: dict[tuple[datetime, datetime], str] = {}  # interval -> run id, of the runs this command waits for
    kept = 0
    last = None
    while True:
        states = dict(metadata_query(
            stack.metadata_url, "SELECT run_id, state FROM dag_run WHERE dag_id = %s AND run_id = ANY(%s)",
            (DAG_ID, list(mine.values())),
        )) if mine else {}
        unfinished = [r for r in mine.values() if states.get(r) not in ("success", "failed")]
        while waiting and len(unfinished) < config.max_active_runs:
            start, end = waiting.pop(0)
            logical = manual_logical_date(start, end).replace(tzinfo=UTC)
            existing = metadata_query(
                stack.metadata_url, "SELECT run_id, state FROM dag_run WHERE dag_id = %s AND logical_date = %s",
                (DAG_ID, logical),
            )
            if not existing:
                run_id = stack.api("POST", f"/api/v2/dags/{DAG_ID}/dagRuns",
                                   manual_run_body(start, end, config.grain))["dag_run_id"]
            else:
                run_id, state = existing[0]
                redo = {"none": (), "failed": ("failed",), "completed": ("failed", "success")}[config.reprocess]
                if state in ("success", "failed") and state not in redo:
                    kept += 1
                    continue
                if state in redo:
                    stack.api("POST", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/clear", {"dry_run": False})
            mine[(start, end)] = run_id
            unfinished.append(run_id)
        done = [r for r in mine.values() if states.get(r) in ("success", "failed")]
        ok = sum(1 for r in done if states[r] == "success")
        running = sorted(i[0] for i, r in mine.items() if states.get(r) == "running")
        current = f"{running[0]:%Y-%m-%dT%H:%M}" if running else "-"
        line = (f"  runs {len(done)}/{len(planned) - kept} done ({ok} succeeded, {len(done) - ok} failed); "
                f"running: {current}")
        if line != last:
            say(line)
            last = line
        if not waiting and len(done) == len(mine):
            if kept:
                done_word = "succeeded" if config.reprocess == "failed" else "ran"
                say(f"  {kept} run(s) of the window already {done_word} and are kept (REPROCESS={config.reprocess})")
            return
        for name, process in stack.processes.items():
            if process.poll() is not None:
                raise RunnerError(f"Airflow's {name} stopped (code {process.returncode}); see {stack.logs / name}.log")
        time.sleep(poll)


# -- the summary ----------------------------------------------------------------------------------


@dataclass
class Summary:
    succeeded: int
    failed: list[tuple[str, str, str, Path, str]]  # (interval, task, state, log path, run id)
    missing: int
    table_rows: dict[str, int]
    quality: dict[str, int]
    analysis: str
    failed_checks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # run id -> failed checks


def summarise(stack: Stack) -> Summary:
    config = stack.config
    planned = {(start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)) for start, end in config.intervals()}
    rows = metadata_query(
        stack.metadata_url,
        "SELECT DISTINCT ON (data_interval_start, data_interval_end) run_id, state, data_interval_start, "
        "data_interval_end FROM dag_run WHERE dag_id = %s AND data_interval_start >= %s AND data_interval_end <= %s "
        "ORDER BY data_interval_start, data_interval_end, id DESC",
        (DAG_ID, config.start.replace(tzinfo=UTC), config.end.replace(tzinfo=UTC)),
    )
    # The runs of this grain's intervals (a window may also hold runs of another grain).
    runs = [(run_id, state, start) for run_id, state, start, end in rows if (start, end) in planned]
    succeeded = sum(1 for r in runs if r[1] == "success")
    failed = []
    for run_id, state, interval in runs:
        if state == "success":
            continue
        tasks = metadata_query(
            stack.metadata_url,
            "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = %s AND run_id = %s "
            "AND state IN ('failed', 'upstream_failed', 'up_for_retry') ORDER BY start_date NULLS LAST",
            (DAG_ID, run_id),
        )
        for task_id, task_state, try_number in tasks or [("?", state, 1)]:
            if task_state == "upstream_failed":
                continue
            log = (stack.airflow_home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
                   / f"attempt={max(try_number, 1)}.log")
            failed.append((f"{interval:%Y-%m-%dT%H:%M}", task_id, task_state, log, run_id))
    env = stack.airflow_env()
    # Through Airflow's `redshift` connection, as the tasks saw it (connections.yaml or the user's
    # AIRFLOW_CONN_REDSHIFT may point it elsewhere than the embedded warehouse).
    counted = subprocess.run(
        [sys.executable, "-m", "sparkify.tables", "counts", "--conn-id", "redshift",
         "--start", config.start.isoformat(), "--end", config.end.isoformat()],
        env=env, capture_output=True, text=True, cwd=config.root,
    )
    if counted.returncode != 0:
        raise RunnerError(f"counting the warehouse's rows failed:\n{counted.stderr[-2000:]}")
    figures = json.loads(counted.stdout.strip().splitlines()[-1])
    table_rows, quality = figures["tables"], figures["quality"]
    # The checks that failed in each failed run's last data-quality attempt.
    failed_runs = {run_id for run_id, state, _ in runs if state != "success"}
    last = {}
    for failure in figures.get("failures", []):
        if failure["run_id"] in failed_runs:
            last[failure["run_id"]] = max(last.get(failure["run_id"], ""), failure["checked_at"])
    checks: dict[str, list[dict[str, Any]]] = {}
    for failure in figures.get("failures", []):
        if failure["checked_at"] == last.get(failure["run_id"]):
            checks.setdefault(failure["run_id"], []).append(failure)
    result = subprocess.run(
        [sys.executable, "-m", "sparkify.analysis", "--conn-id", "redshift"], env=env, capture_output=True,
        text=True, cwd=config.root,
    )
    answers = result.stdout if result.returncode == 0 else f"(analysis failed: {result.stderr[-500:]})"
    return Summary(succeeded, failed, len(planned) - len(runs), table_rows, quality, answers, checks)


def print_summary(stack: Stack, summary: Summary, wall: float) -> None:
    config = stack.config
    say("")
    count = len(config.intervals())
    runs = {"hour": f"{count} hourly runs", "day": f"{count} daily run{'s' if count != 1 else ''}",
            "window": "1 run over the whole window"}[config.grain]
    say(f"=== sparkify_etl over [{config.start:%Y-%m-%dT%H:%M}, {config.end:%Y-%m-%dT%H:%M}) UTC: {runs} ===")
    say(f"runs succeeded: {summary.succeeded}   failed: {len(set(f[0] for f in summary.failed))}"
        + (f"   not run: {summary.missing}" if summary.missing else ""))
    say(f"wall time: {wall:.1f} s")
    for interval, task, state, log, run_id in summary.failed:
        say(f"  FAILED {interval}  {task} ({state})  log: {log}")
        if task == "Run_data_quality_checks":
            for check in summary.failed_checks.get(run_id, []):
                where = check["table"] + (f".{check['column']}" if check["column"] else "")
                say(f"    {check['check']} on {where}: actual {check['actual']}, expected {check['expected']}")
                if check["description"]:
                    say(f"      checks: {check['description']}")
                if check["samples"]:
                    say("      offending rows (up to 5):")
                    for sample in check["samples"].splitlines():
                        say(f"        {sample}")
    say("rows per table: " + ", ".join(f"{t} {n}" for t, n in summary.table_rows.items()))
    say("data-quality results in the window: " + (", ".join(f"{k} {v}" for k, v in sorted(summary.quality.items()))
                                                   or "none recorded"))
    elsewhere = stack.redshift_elsewhere()
    if elsewhere:
        say(f"warehouse: the `redshift` connection of {elsewhere}")
    else:
        say(f"warehouse: {redact_url(stack.warehouse_url)}   (psql '{redact_url(stack.warehouse_url)}')")
    say("")
    say(summary.analysis.rstrip())


# -- commands ---------------------------------------------------------------------------------------


def running_stack(config: Config) -> dict[str, Any] | None:
    path = config.state / "stack.json"
    if not path.exists():
        return None
    info = json.loads(path.read_text())
    alive = [pid for pid in info.get("pids", {}).values() if _alive(pid)]
    return info if alive else None


def _ours(pid: int) -> bool:
    """Whether ``pid`` is still one of the stack's servers (not a process that reused the id)."""
    import psutil

    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False
    return "airflow" in cmdline or "moto" in cmdline


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


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
        # Before any scheduler starts: what an interrupted run left unfinished (normally closed when
        # it stopped; not if it was killed).
        stack.close_interrupted_runs()
        stack.start_airflow()
        # The scheduler starts no run of a paused DAG, backfill runs included.
        stack.airflow("dags", "unpause", DAG_ID)
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
        stack.airflow("dags", "unpause", DAG_ID)
        stack.write_stack_file()
    except BaseException:
        stack.stop()
        raise
    password = stack.admin_password() or f"(see {stack.airflow_home}/simple_auth_manager_passwords.json.generated)"
    say("")
    say(f"Airflow UI: http://127.0.0.1:{stack.api_port}/dags/{DAG_ID}   login: admin / {password}")
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
    pids = [*info.get("pids", {}).values(), *([info["moto_pid"]] if info.get("moto_pid") else [])]
    with uninterruptible():
        stop_groups([pid for pid in pids if _ours(pid)])
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
    parser = argparse.ArgumentParser(prog="python -m sparkify_local.runner", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "up", "down", "clean", "airflow"])
    parser.add_argument("args", nargs=argparse.REMAINDER, help="airflow: the Airflow CLI command and its arguments")
    args = parser.parse_args(argv)
    root = settings.PROJECT_ROOT
    try:
        config = Config.load(root)
        if args.command == "airflow":
            return command_airflow(config, args.args)
        handler = {"run": command_run, "up": command_up, "down": command_down, "clean": command_clean}[args.command]
        return handler(config)
    except RunnerError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr, flush=True)
        return 130


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)
    raise SystemExit(main())

