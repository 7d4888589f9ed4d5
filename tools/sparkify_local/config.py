"""The local run's settings: environment variables and ``.env`` (or ENV_FILE), checked and typed.

``Config.load`` is the one reader; every other module of the local stack takes a ``Config``.
``parse_moment`` is also what compose's minio-seed service uses to read START and END.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

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
    "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND",
})
SECRETS_BACKEND = "AIRFLOW__SECRETS__BACKEND"
LOCAL_FILESYSTEM_BACKEND = "airflow.secrets.local_filesystem.LocalFilesystemBackend"
# hour: Airflow's backfill, one run per hour; day: one run per UTC day of the window; window: one run.
GRAINS = ("hour", "day", "window")
# EXECUTOR: Airflow's LocalExecutor (tasks in the scheduler's processes) or CeleryExecutor (WORKERS
# Celery workers and a Redis broker, sparkify_local.workers and .broker).
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}


class RunnerError(RuntimeError):
    """A problem the user can fix; printed without a traceback, exit code 2."""


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
    executor: str = "local"  # a key of EXECUTORS
    workers: int = 2  # Celery workers (EXECUTOR=celery)
    broker_port: int | None = None

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
        executor = get("EXECUTOR", "local").lower()
        if executor not in EXECUTORS:
            raise RunnerError(f"EXECUTOR={get('EXECUTOR')!r}: use {' or '.join(EXECUTORS)}")
        workers = get("WORKERS", "2")
        if not workers.isdigit() or not 1 <= int(workers) <= 16:
            raise RunnerError(f"WORKERS={workers!r}: the number of Celery workers, 1 to 16")
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
            executor=executor, workers=int(workers), broker_port=port("BROKER_PORT"),
        )

    @property
    def celery(self) -> bool:
        return self.executor == "celery"

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
