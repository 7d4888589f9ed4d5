"""Session fixtures for whole-DAG runs over the real Sparkify data.

Uploading the 14,896 song files to moto and staging them takes minutes, so it is done once per
session: every test that needs the real songs clones the template database this builds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import hours, load_dag, run_interval

from conftest import Bucket, aws_connection, create_bucket, create_database, real_data, s3_client

REAL_BUCKET = "sparkify-real"
SONG_COUNT = 14_896  # song files in the real data (SOURCES.md), all with distinct song_ids


def _upload(client, bucket: str, root: Path, paths: list[Path], threads: int = 8) -> None:
    def one(path: Path) -> None:
        client.put_object(Bucket=bucket, Key=path.relative_to(root).as_posix(), Body=path.read_bytes())

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, paths))


@pytest.fixture(scope="session")
def real_songs_warehouse_template(pg_server, moto_server, tables_template, airflow_db) -> tuple[str, str, str]:
    """``(template_db_name, bucket_name, endpoint)``: a bucket holding all the real data, and a database
    with every table whose ``staging_songs`` holds all its songs (staged by sparkify_etl's own
    Stage_songs task), ready to be cloned with ``create_database(pg_server, template=...)``.

    Only ``staging_songs``, ``load_manifest`` and ``load_listing`` are filled; the song listing
    is recorded as just done, so runs within ``song_listing_period_hours`` do not list again.
    Clone it, never connect to it: a template with an open connection cannot be cloned.
    Other test folders re-export this fixture (tests/backfill): it is built once per session.
    """
    return ensure_real_songs_template(pg_server, moto_server, tables_template)


def ensure_real_songs_template(pg_server, moto_server, tables_template) -> tuple[str, str, str]:
    """The real-songs template (see the fixture above), built unless it exists. Also called by the
    first xdist worker before its first test (tests/conftest.py, ``real_songs_template_early``)."""
    # Built once per session, by the first process that needs it: the xdist workers share the
    # servers, and wait for one another on an advisory lock. The finished template gets its final
    # name last (a rename), so a template of that name is always complete.
    data = real_data()

    def build(conn) -> None:
        building = _build_real_songs_template(data, pg_server, moto_server, tables_template)
        conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{TEMPLATE_DB}"')

    build_once(pg_server, TEMPLATE_LOCK, TEMPLATE_DB, build)
    return TEMPLATE_DB, REAL_BUCKET, moto_server.endpoint


TEMPLATE_DB = "real_songs_template"
TEMPLATE_LOCK = 0x5350524B  # any fixed key: the advisory lock the template's builders take


def build_once(pg_server, lock: int, name: str, build: Callable[[Any], None]) -> bool:
    """Call ``build(conn)`` unless the database ``name`` exists, holding the advisory lock ``lock``:
    the first xdist worker that needs a session template builds it, the others wait, then find it.
    ``build`` gives the database its name last. True when this call built it."""
    import psycopg

    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (lock,))
        try:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return False
            build(conn)
            return True
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (lock,))


def _build_real_songs_template(data: Path, pg_server, moto_server, tables_template) -> str:
    """A new database holding the real songs staged, from the real data uploaded to REAL_BUCKET."""
    from botocore.exceptions import ClientError

    try:
        bucket = create_bucket(moto_server.endpoint, REAL_BUCKET)
    except ClientError as err:  # left by a builder that failed earlier in this session: upload again
        if err.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise
        bucket = Bucket(REAL_BUCKET, s3_client(moto_server.endpoint))
    paths = [
        data / "log_json_path.json",
        *sorted((data / "log_data").rglob("*.json")),
        *sorted((data / "song_data").rglob("*.json")),
    ]
    _upload(bucket.client, bucket.name, data, paths)

    db = create_database(pg_server, template=tables_template)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_REDSHIFT", db.url)
        mp.setenv("AIRFLOW_CONN_AWS", aws_connection(moto_server.endpoint))
        dag = patched_for_dag_test(load_dag(), mp)
        # Run only Stage_songs; every other task is marked successful without running.
        run = run_only(dag, "Stage_songs", datetime(2018, 11, 1), s3_bucket=bucket.name)
    assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}
    staged = db.scalar("SELECT COUNT(*) FROM staging_songs")
    assert staged == SONG_COUNT, f"staged {staged} songs, expected {SONG_COUNT}"
    return db.name


# -- the real data's first days loaded hour by hour, shared by tests/dags and tests/backfill -----------

HOURLY_FROM = datetime(2018, 11, 5)
# The interval ends at which the hourly runs' warehouse is kept: after 48 and after 72 runs.
HOURLY_CHECKPOINTS = (datetime(2018, 11, 7), datetime(2018, 11, 8))
HOURLY_LOCK = 0x53505248  # the advisory lock of the hourly templates' builders


@dataclass(frozen=True)
class HourlyTemplates:
    """Template databases holding what the hourly runs from HOURLY_FROM loaded, one per checkpoint."""

    names: dict[datetime, str]  # checkpoint (the last run's interval end) -> database to clone
    seconds: float | None  # the runs' time, when this fixture made them (None: made earlier)

    def describe(self) -> str:
        return f"{self.seconds:.1f} s" if self.seconds is not None else "made earlier in this session"


@pytest.fixture(scope="session")
def hourly_runs_templates(real_songs_warehouse_template, pg_server) -> HourlyTemplates:
    """sparkify_etl run hour by hour with ``dag.test()`` from HOURLY_FROM on a clone of the real-songs
    template, every run successful, its warehouse kept as a template at each checkpoint.
    tests/dags/test_etl_real_data.py (48 runs) and tests/backfill/test_wide_intervals.py (72 runs)
    compare with them, so the first 48 runs are made once per session, not twice: built by the first
    worker that needs them while the others wait on an advisory lock; the last template is named
    last, so it exists only when both are complete. Clone them, never connect to them."""
    names = {end: f"hourly_to_{end:%Y%m%d}_template" for end in HOURLY_CHECKPOINTS}
    started = time.monotonic()
    built = build_once(pg_server, HOURLY_LOCK, names[HOURLY_CHECKPOINTS[-1]],
                       lambda conn: _build_hourly_templates(conn, names, pg_server, real_songs_warehouse_template))
    seconds = time.monotonic() - started if built else None
    return HourlyTemplates(names, seconds)


def _build_hourly_templates(conn, names: dict[datetime, str], pg_server, real_songs_template) -> None:
    template, bucket, endpoint = real_songs_template
    db = create_database(pg_server, template=template)
    with pytest.MonkeyPatch.context() as mp, faster_dag_test():
        mp.setenv("AIRFLOW_CONN_REDSHIFT", db.url)
        mp.setenv("AIRFLOW_CONN_AWS", aws_connection(endpoint))
        dag = patched_for_dag_test(load_dag(), mp, fail_fast=True)
        start = HOURLY_FROM
        for end in HOURLY_CHECKPOINTS:
            run_hours(dag, bucket, hours(start, end))
            start = end
            conn.execute(f'DROP DATABASE IF EXISTS "{names[end]}"')  # left by a builder that failed
            if end == HOURLY_CHECKPOINTS[-1]:
                conn.execute(f'ALTER DATABASE "{db.name}" RENAME TO "{names[end]}"')
            else:
                conn.execute(f'CREATE DATABASE "{names[end]}" TEMPLATE "{db.name}" STRATEGY FILE_COPY')


def run_hours(dag, bucket: str, starts: list[datetime]) -> None:
    """Run ``dag`` with ``dag.test()`` for each hour starting at ``starts``, in order; each must succeed."""
    for start in starts:
        run = run_interval(dag, start, s3_bucket=bucket)
        states = {ti.task_id: ti.state for ti in run.get_task_instances()}
        assert run.state == "success", f"run for {start:%Y-%m-%d %H}:00 ended {run.state}: {states}"


def patched_for_dag_test(dag, monkeypatch: pytest.MonkeyPatch, *, fail_fast: bool = False):
    """``dag``, patched (until ``monkeypatch`` undoes it) so that ``dag.test()`` can run it.

    Its late-run deadline is removed: on Airflow 3.3.2 ``dag.test()`` crashes when a run of a
    DAG with a ``DeadlineAlert`` succeeds (``DagRun.update_state`` looks the alerts up by id,
    but ``dag.test()``'s serialised copy holds them as dicts: "'dict' object has no attribute
    'hex'"). With ``fail_fast``, tasks do not retry, so a failure ends the run at once instead
    of ``dag.test()`` waiting out the 5-minute retry delay.

    The params' values are restored afterwards: the task runner's ``process_params`` resolves a
    run's conf into the DAG's own ``Param`` objects, so in ``dag.test()`` (one process) a conf
    value such as ``schema="bad;drop"`` would otherwise become the default of every later run.
    """
    for params in (dag.params, *(task.params for task in dag.tasks)):
        for param in params.values():
            monkeypatch.setattr(param, "value", param.value)
    monkeypatch.setattr(dag, "deadline", None)
    if fail_fast:
        for task in dag.tasks:
            monkeypatch.setattr(task, "retries", 0)
    return dag


def run_only(dag, task_id: str, interval_start: datetime, **conf):
    """Run ``task_id`` alone for the hour starting at ``interval_start``; every other task of the
    run is marked successful without running."""
    logical_date = interval_start.replace(tzinfo=UTC) + timedelta(hours=1)  # the interval's end, as run_interval
    return dag.test(logical_date=logical_date, run_conf=conf or None, mark_success_pattern=rf"(?!{task_id}$).*")


@contextmanager
def faster_dag_test() -> Iterator[None]:
    """Speed only: ``dag.test()`` as it is, without two costs repeated on every call.

    * It re-parses the DAG folder and writes it to the metadata database (apache/airflow#64884).
      The DAG files do not change during the tests: once sparkify_etl has a version in the
      database, the parse is skipped.
    * Serialising the DAG validates each param with ``jsonschema.validate``, which first checks the
      param's schema against JSON Schema's meta-schema, hundreds of times per run for the same
      eleven schemas. Each schema is checked once; every value is still validated.

    Together they were about two thirds of a run's time here. Any other Airflow or jsonschema than
    the one these hooks expect is left as it is.
    """
    with pytest.MonkeyPatch.context() as mp:
        try:
            import jsonschema
            from airflow.dag_processing import dagbag
            from airflow.models.dag_version import DagVersion

            real_bag, real_sync = dagbag.BundleDagBag, dagbag.sync_bag_to_db
            validator_for, best_match = jsonschema.validators.validator_for, jsonschema.exceptions.best_match
        except (ImportError, AttributeError):
            yield
            return

        def bag(*args: Any, **kwargs: Any):
            return None if DagVersion.get_version("sparkify_etl") else real_bag(*args, **kwargs)

        def sync(bag: Any, *args: Any, **kwargs: Any) -> None:
            if bag is not None:
                real_sync(bag, *args, **kwargs)

        checked: set[str] = set()

        def validate(instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
            cls = cls or validator_for(schema)
            key = f"{cls.__name__}:{json.dumps(schema, sort_keys=True, default=repr)}"
            if key not in checked:
                cls.check_schema(schema)
                checked.add(key)
            error = best_match(cls(schema, *args, **kwargs).iter_errors(instance))
            if error is not None:
                raise error

        mp.setattr(dagbag, "BundleDagBag", bag)
        mp.setattr(dagbag, "sync_bag_to_db", sync)
        mp.setattr(jsonschema, "validate", validate)
        yield
