"""The local stack's servers and Airflow's processes, and the environment they run in.

``Stack`` starts, on 127.0.0.1 with free ports: a private PostgreSQL (Airflow's metadata and,
unless WAREHOUSE_URL is given, the warehouse), moto's S3 server, and Airflow's api-server,
scheduler, dag-processor and triggerer (LocalExecutor), or with EXECUTOR=celery a Redis broker
(:mod:`sparkify_local.broker`) and WORKERS Celery workers (:mod:`sparkify_local.workers`) beside them;
``stop()`` stops what it started.
``Stack.api``/``Stack.rest`` reach Airflow's REST API (see :mod:`sparkify_local.airflow_api`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sparkify_local import workers
from sparkify_local.airflow_api import AirflowApi, generated_password
from sparkify_local.broker import BrokerError, RedisServer
from sparkify_local.config import (
    EXECUTORS,
    LOCAL_FILESYSTEM_BACKEND,
    PASSED_TO_AIRFLOW,
    SECRETS_BACKEND,
    STACK_OWNED,
    Config,
    RunnerError,
)
from sparkify_local.pgserver import PostgresError, PostgresServer
from sparkify_local.ports import free_port, port_in_use
from sparkify_local.processes import stop_groups, uninterruptible
from sparkify_local.progress import say
from sparkify_local.s3server import MotoServer, S3ServerError


class Stack:
    """Every server of the local run; `stop()` stops what this object started, in reverse order."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.state = config.state
        self.pg: PostgresServer | None = None
        self.moto: MotoServer | None = None
        self.broker: RedisServer | None = None
        self.processes: dict[str, subprocess.Popen] = {}
        self.api_port: int | None = None
        self.scheduled_runs = True
        self.warehouse_url: str = ""
        self.metadata_url: str = ""  # for Airflow's processes; the runner itself uses the REST API
        self._rest: AirflowApi | None = None
        self._reserialize: Background | None = None
        self._commands: list[Background] = []  # every command started by _background

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
        if self.config.celery:
            self.start_broker()

    def start_broker(self) -> None:
        say("• starting the Celery broker (Redis, loopback)")
        try:
            self.broker = RedisServer(self.state / "redis", port=self.config.broker_port,
                                      log_file=self.logs / "redis.log").start()
        except BrokerError as err:
            raise RunnerError(str(err)) from None

    def airflow_env(self, scheduled_runs: bool = True) -> dict[str, str]:
        """The environment of every Airflow process (and of the runner's own commands that use Airflow's
        connections). In Airflow's order, a connection is looked up in the configured secrets backend
        first (connections.yaml, or the user's own backend such as Secrets Manager), then in
        AIRFLOW_CONN_* variables: the user's, from .env or the environment, and otherwise the stack's
        defaults for ``redshift`` (the embedded warehouse, or WAREHOUSE_URL) and ``aws`` (moto)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(PASSED_TO_AIRFLOW)}
        sql_url = self.metadata_url.replace("postgresql://", "postgresql+psycopg://", 1)
        # How often the dag-processor parses the DAG files again: every 10 s for `make up` (scheduled
        # runs), so that an edited DAG shows in the UI; `make run` parses them once at its start
        # (`dags reserialize`) and they do not change during its window, so rarely (each parse of the
        # folder costs the dag-processor about 0.4 CPU-s: about 5 of a 4-run `make run`'s 75).
        parse_every = "10" if scheduled_runs else "600"
        # Defaults the user may change (.env or the environment).
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__PARALLELISM": str(self.config.parallelism),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": parse_every,
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": parse_every,
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.config.parallelism),
                # CeleryExecutor: a task's message to the broker may take more than the default 1 s on
                # a busy machine (the task would be failed after three such tries).
                "AIRFLOW__CELERY__OPERATION_TIMEOUT": "10",
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
                "AIRFLOW__CORE__EXECUTOR": EXECUTORS[self.config.executor],
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
        if self.config.celery and self.broker:
            # The broker, and Airflow's metadata database as Celery's result backend (the workers and
            # the scheduler share it).
            env["AIRFLOW__CELERY__BROKER_URL"] = self.broker.url
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + sql_url
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
            from sparkify.warehouse import naive_utc
            from sparkify_local import demo_data

            now = naive_utc(datetime.now(UTC))
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
        """Migrate Airflow's metadata database and the warehouse's tables side by side (two processes,
        two databases: each is mostly a Python start-up and its migrations), then start parsing the
        DAGs (`airflow dags reserialize`) in the background: :meth:`start_api_server` waits for it
        once the api-server answers, so the two overlap."""
        self.api_port = self.config.airflow_port or free_port()
        self.airflow_home.mkdir(parents=True, exist_ok=True)
        say("• migrating Airflow's metadata database")
        migrate = self._background("db", "migrate")
        try:
            self.prepare_warehouse()
        except BaseException:
            stop_groups([migrate.process.pid])
            raise
        migrate.wait()
        say("• parsing the DAGs (airflow dags reserialize), while the api-server starts")
        self._reserialize = self._background("dags", "reserialize")

    def prepare_warehouse(self) -> None:
        # Roles belong to the whole server: they are created on the embedded one, never on yours.
        embedded = not self.config.warehouse_url and not self.redshift_elsewhere()
        steps = ["sparkify.tables migrate"] + (["sparkify.access grant"] if embedded else [])
        say("• creating or migrating the warehouse tables" + (", granting the analysts' and loader's roles"
                                                             if embedded else ""))
        results, errors = self.project_commands([f"{step} --conn-id redshift" for step in steps])
        for result in results:
            if result["code"]:
                raise RunnerError(f"python -m {result['command']} failed:\n{errors[-3000:]}")
            say("  " + (result["stdout"].strip().splitlines() or [""])[-1])  # the command's summary, not its logs

    def project_commands(self, commands: list[str]) -> tuple[list[dict], str]:
        """Run the project's commands (``"sparkify.tables migrate --conn-id redshift"``) in one Python
        process with Airflow's environment (:mod:`sparkify_local.steps`, which stops at the first that
        fails): a result per command run, and their stderr. Raises if the process itself fails."""
        result = subprocess.run(
            [sys.executable, "-m", "sparkify_local.steps", *commands], env=self.airflow_env(),
            capture_output=True, text=True, cwd=self.config.root,
        )
        try:
            results = json.loads(result.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise RunnerError(f"python -m sparkify_local.steps ({'; '.join(commands)}) failed:\n"
                              f"{(result.stderr or result.stdout)[-3000:]}") from None
        return results, result.stderr

    def _background(self, *args: str) -> Background:
        """An Airflow CLI command started in its own process group (stop() stops it if it still runs),
        its output in the logs folder."""
        log = self.logs / f"airflow-{'-'.join(args)}.log"
        self._commands.append(Background(args, self._airflow_process(list(args), log), log))
        return self._commands[-1]

    def running_commands(self) -> list[int]:
        """The process groups of the commands started by _background that still run (a Ctrl-C while
        the stack waits for one reaches only the runner: they are in sessions of their own)."""
        return [c.process.pid for c in self._commands if c.process.poll() is None]

    def start_api_server(self) -> None:
        """Start Airflow's api-server alone and wait until it answers: the REST API is how the runner
        reads and changes Airflow's state, before any scheduler runs (see runs.close_interrupted_runs)."""
        say(f"• starting Airflow's api-server on 127.0.0.1:{self.api_port}")
        if self.config.connections_file and SECRETS_BACKEND not in self.config.env:
            say(f"  connections: {self.config.connections_file} first (Airflow's local-filesystem secrets backend), "
                "then AIRFLOW_CONN_* variables")
        for name in self.ignored_settings():
            say(f"  ignoring {name} from the environment or .env: the local stack sets it")
        self._start("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(self.api_port)])
        self.wait_for_api()
        if self._reserialize is not None:  # started by prepare_airflow
            self._reserialize.wait()
            self._reserialize = None

    def start_airflow(self) -> None:
        """Start what of Airflow is not running yet: the api-server (if `start_api_server` did not),
        the scheduler, the dag-processor and the triggerer."""
        if "api-server" not in self.processes:
            self.start_api_server()
        say("• starting Airflow's scheduler, dag-processor and triggerer"
            + (f" ({EXECUTORS[self.config.executor]})" if self.config.celery else ""))
        for name, args in (("scheduler", ["scheduler", "--skip-serve-logs"]), ("dag-processor", ["dag-processor"]),
                           ("triggerer", ["triggerer", "--skip-serve-logs"])):
            self._start(name, args)
        if self.config.celery:
            self.start_workers()
        self.check_processes()

    def start_workers(self) -> None:
        """WORKERS Celery workers, each in its own process group, folder and TMPDIR (see
        :mod:`sparkify_local.workers`), then wait until each consumes from the broker."""
        slots = workers.concurrency(self.config.parallelism, self.config.workers)
        names = workers.names(self.config.workers)
        say(f"• starting {len(names)} Celery workers ({', '.join(names)}), {slots} task slots each")
        for name in names:
            self.start_worker(name, slots)
        workers.wait_until_ready({name: self.logs / f"{name}.log" for name in names}, self.check_processes)

    def start_worker(self, name: str, slots: int | None = None) -> None:
        home = workers.folder(self.state, name)
        home.mkdir(parents=True, exist_ok=True)
        slots = slots or workers.concurrency(self.config.parallelism, self.config.workers)
        env = self.airflow_env(self.scheduled_runs)
        env.update(workers.environment(self.state, name, [env["PYTHONPATH"], str(self.config.root / "tools")]))
        self._start(name, workers.command(name, slots, home / "worker.pid"), cwd=home, env=env)

    def _start(self, name: str, args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.processes[name] = self._airflow_process(args, self.logs / f"{name}.log", cwd, env)

    def _airflow_process(self, args: list[str], log: Path, cwd: Path | None = None,
                         env: dict[str, str] | None = None) -> subprocess.Popen:
        """``python -m airflow <args>`` in a process group of its own, its output appended to ``log``."""
        with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(
                [sys.executable, "-m", "airflow", *args], env=env or self.airflow_env(self.scheduled_runs),
                stdout=out, stderr=subprocess.STDOUT, cwd=cwd or self.config.root, start_new_session=True,
            )

    def check_processes(self, verb: str = "exited") -> None:
        """Raise if one of Airflow's processes has stopped."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RunnerError(f"Airflow's {name} {verb} (code {process.returncode}); see {self.logs / name}.log")

    def wait_for_api(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_processes()
            if self.rest.healthy():
                return
            time.sleep(0.5)
        raise RunnerError(f"Airflow's api-server did not answer within {timeout:g} s; see {self.logs}/api-server.log")

    def admin_password(self, timeout: float = 10) -> str | None:
        """The password the simple auth manager generated for `admin` (in AIRFLOW_HOME)."""
        return generated_password(self.airflow_home, "admin", timeout)

    @property
    def rest(self) -> AirflowApi:
        """Airflow's REST API as `admin` (loopback only), through the official client."""
        if self._rest is None or self._rest.base_url != f"http://127.0.0.1:{self.api_port}":
            self._rest = AirflowApi(f"http://127.0.0.1:{self.api_port}", "admin", self.admin_password)
        return self._rest

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        """Any REST API call as JSON (``path`` such as ``/api/v2/dags/sparkify_etl/dagRuns?limit=10``);
        raises :class:`~sparkify_local.airflow_api.ApiError` on an error status."""
        return self.rest.request(method, path, body)

    def write_stack_file(self) -> None:
        self.stack_file.write_text(json.dumps({
            "pids": {name: p.pid for name, p in self.processes.items()},
            "moto_pid": self.moto.process.pid if self.moto and self.moto.process else None,
            "broker_pid": self.broker.process.pid if self.broker and self.broker.process else None,
            "broker_url": self.broker.url if self.broker else None,
            "executor": self.config.executor,
            "pg_data": str(self.pg.data_dir) if self.pg else None,
            "api_port": self.api_port,
            "moto_endpoint": self.moto.endpoint if self.moto else None,
            "warehouse_url": self.warehouse_url,
            "metadata_url": self.metadata_url,
        }, indent=2))

    def stop(self, close_runs: bool = False) -> None:
        """Stop everything this object started. With ``close_runs`` (the run did not end normally), the
        scheduler, dag-processor and triggerer stop first, then the unfinished backfill and runs are
        closed through the REST API while the api-server still answers, then the rest stops."""
        from sparkify_local.runs import close_interrupted_runs

        with uninterruptible():
            api_server = self.processes.pop("api-server", None) if close_runs else None
            groups = [p.pid for p in self.processes.values()] + self.running_commands()
            if self.moto and self.moto.process:
                groups.append(self.moto.process.pid)
            stop_groups(groups)
            for process in self.processes.values():
                process.poll()
            self.processes.clear()
            if self.moto:
                self.moto.stop()
            if self.broker:
                self.broker.stop()
            if api_server is not None:
                if api_server.poll() is None:
                    try:
                        close_interrupted_runs(self)
                    except Exception as err:  # noqa: BLE001 - the next run closes them before it starts
                        say(f"  could not close the unfinished runs now ({str(err).strip()[:300]}); the next run will")
                stop_groups([api_server.pid])
                api_server.poll()
            if self.pg:
                self.pg.stop()


@dataclass
class Background:
    """An Airflow CLI command the stack started without waiting for it."""

    args: tuple[str, ...]
    process: subprocess.Popen
    log: Path

    def wait(self) -> None:
        if self.process.wait() != 0:
            output = self.log.read_text(errors="replace")
            raise RunnerError(f"`airflow {' '.join(self.args)}` failed (its log: {self.log}):\n{output[-3000:]}")


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
