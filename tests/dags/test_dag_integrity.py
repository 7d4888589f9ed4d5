"""The DAG files load, and sparkify_etl has the shape, the settings and the SQL it promises.

Fast: no warehouse and no S3, except one ``dag.test()`` run (a bad param must fail the run at
once, without retries) that needs only Airflow's metadata database.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airflow.sdk import Asset, CronDataIntervalTimetable
from airflow.sdk.exceptions import AirflowFailException
from tests.helpers import load_dag, run_interval

from sparkify import settings, warehouse
from sparkify.quality import load_checks
from sparkify.tables import STAGING_COLUMNS, STAR_TABLES

from .conftest import patched_for_dag_test

ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = ROOT / "dags"
SQL_DIR = settings.SQL_DIR

EXPECTED_DOWNSTREAM = {
    "Begin_execution": {"Stage_events", "Stage_songs"},
    "Stage_events": {"Load_songplays_fact_table"},
    "Stage_songs": {"Load_songplays_fact_table"},
    "Load_songplays_fact_table": {
        "Load_user_dim_table", "Load_song_dim_table", "Load_artist_dim_table", "Load_time_dim_table",
    },
    "Load_user_dim_table": {"Run_data_quality_checks"},
    "Load_song_dim_table": {"Run_data_quality_checks"},
    "Load_artist_dim_table": {"Run_data_quality_checks"},
    "Load_time_dim_table": {"Run_data_quality_checks"},
    "Run_data_quality_checks": {"End_execution"},
    "End_execution": set(),
}
# Tasks that write a warehouse table, and the table each one writes.
LOAD_TASKS = {
    "Stage_events": "staging_events",
    "Stage_songs": "staging_songs",
    "Load_songplays_fact_table": "songplays",
    "Load_user_dim_table": "users",
    "Load_song_dim_table": "songs",
    "Load_artist_dim_table": "artists",
    "Load_time_dim_table": "time",
}
SQL_TASKS = [*LOAD_TASKS, "Run_data_quality_checks"]
DIALECTS = ("redshift", "postgres")


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


@pytest.fixture(scope="module")
def dag(dag_bag):
    return dag_bag.dags["sparkify_etl"]


# -- loading ----------------------------------------------------------------------------------------


def test_dag_files_import_without_errors(dag_bag):
    assert dag_bag.import_errors == {}
    assert "sparkify_etl" in dag_bag.dags
    assert Path(dag_bag.dags["sparkify_etl"].fileloc) == DAGS_DIR / "sparkify_etl.py"


# -- structure and settings ---------------------------------------------------------------------------


def test_graph(dag):
    assert set(dag.task_dict) == set(EXPECTED_DOWNSTREAM)
    for task_id, downstream in EXPECTED_DOWNSTREAM.items():
        assert dag.get_task(task_id).downstream_task_ids == downstream, task_id
    upstream = {t: {u for u, d in EXPECTED_DOWNSTREAM.items() if t in d} for t in EXPECTED_DOWNSTREAM}
    for task_id, expected in upstream.items():
        assert dag.get_task(task_id).upstream_task_ids == expected, task_id


def test_default_args(dag):
    args = dag.default_args
    assert args["retries"] == 3
    assert args["retry_delay"] == timedelta(minutes=5)
    assert args["depends_on_past"] is False
    assert args["email_on_retry"] is False
    for task in dag.tasks:
        assert task.depends_on_past is False, task.task_id
        assert task.email_on_retry is False, task.task_id
        assert task.retry_delay == timedelta(minutes=5), task.task_id
        # The data-quality task fails without retries: rerunning does not fix data.
        assert task.retries == (0 if task.task_id == "Run_data_quality_checks" else 3), task.task_id


def test_schedule_is_hourly_data_intervals_in_utc(dag):
    assert dag.catchup is False
    timetable = dag.timetable
    assert isinstance(timetable, CronDataIntervalTimetable)
    assert timetable.expression == "0 * * * *"
    assert str(timetable.timezone) in ("UTC", "Timezone('UTC')")
    assert dag.start_date == datetime(2018, 11, 1, tzinfo=UTC)
    assert dag.start_date.utcoffset() == timedelta(0)

    import pendulum
    from airflow.serialization.encoders import coerce_to_core_timetable

    # A manual run at 11:00 owns [10:00, 11:00): what tests.helpers.run_interval relies on.
    run_after = pendulum.datetime(2018, 11, 5, 11, tz="UTC")
    interval = coerce_to_core_timetable(timetable).infer_manual_data_interval(run_after=run_after)
    assert (interval.start, interval.end) == (datetime(2018, 11, 5, 10, tzinfo=UTC), run_after)


def test_docs_and_tags(dag):
    assert dag.doc_md and dag.doc_md.strip()
    assert dag.description
    assert {"sparkify", "etl"} <= set(dag.tags)
    for task in dag.tasks:
        assert task.doc_md and task.doc_md.strip(), f"{task.task_id} has no doc_md"


def test_every_load_task_has_its_table_as_asset_outlet(dag):
    uris = set()
    for task_id, table in LOAD_TASKS.items():
        outlets = dag.get_task(task_id).outlets
        assets = [o for o in outlets if isinstance(o, Asset)]
        assert assets, f"{task_id} has no Asset outlet"
        assert [a.uri for a in assets] == [f"x-sparkify://warehouse/{table}"], task_id
        uris.add(assets[0].uri)
    assert len(uris) == len(LOAD_TASKS)


def test_load_tasks_use_files_and_tables_that_exist(dag):
    for task_id, table in LOAD_TASKS.items():
        task = dag.get_task(task_id)
        assert task.table == table
        if task_id.startswith("Load_"):
            assert table in STAR_TABLES
            assert (SQL_DIR / task.select).is_file(), task.select
        else:
            assert table in STAGING_COLUMNS


def test_params_default_to_settings(dag):
    params = dag.params
    expected = {
        "s3_bucket": settings.DEFAULTS.s3_bucket,
        "schema": settings.DEFAULTS.schema,
        "redshift_conn_id": settings.DEFAULTS.redshift_conn_id,
        "aws_conn_id": settings.DEFAULTS.aws_conn_id,
        "log_prefix": settings.DEFAULTS.log_prefix,
        "song_prefix": settings.DEFAULTS.song_prefix,
        "log_jsonpath": settings.DEFAULTS.log_jsonpath,
    }
    for name, value in expected.items():
        assert params[name] == value, name


# -- SQL templates ------------------------------------------------------------------------------------

SQL_FILES = sorted(p.relative_to(SQL_DIR).as_posix() for p in SQL_DIR.rglob("*.sql"))

# How each file is rendered by the code that uses it (plugins/sparkify/**): its Jinja context.
_LOAD = {"schema": "public", "personal_data": "keep"}
_MODE = {"schema": "public", "personal_data": "keep", "table": "songplays", "columns": STAR_TABLES["songplays"].columns,
         "key": STAR_TABLES["songplays"].key, "text_columns": STAR_TABLES["songplays"].text,
         "scope_column": "start_time", "select": "load/songplays.sql"}
_CONTEXTS: dict[str, dict] = {
    "load/count_rows.sql": {"schema": "public", "table": "time", "scope_column": "start_time"},
    "load/modes/truncate_insert.sql": _MODE,
    "lineage/column_lineage.sql": {**_LOAD, "table": "songs", "columns": STAR_TABLES["songs"].columns,
                                   "select": "load/songs.sql"},
    "load/modes/upsert.sql": {**_MODE, "table": "songs", "columns": STAR_TABLES["songs"].columns,
                              "key": STAR_TABLES["songs"].key, "text_columns": STAR_TABLES["songs"].text,
                              "scope_column": None, "select": "load/songs.sql"},
    "quality/column_check.sql": {"schema": "public", "table": "songplays", "scope_column": "start_time",
                                 "expression": "COUNT(*) - COUNT(DISTINCT(songplay_id)) AS unique_check",
                                 "expression_postgres":
                                     "COUNT(*) - COUNT(DISTINCT(RTRIM(songplay_id))) AS unique_check"},
    "quality/table_check.sql": {"schema": "public", "table": "users", "scope_column": None,
                                "check_statement": "level IN ('free', 'paid')"},
    "quality/samples/column.sql": {"schema": "public", "table": "songplays", "scope_column": "start_time",
                                   "check_type": "null_check", "column": "user_id",
                                   "shown": ["songplay_id", "user_id"]},
    "quality/samples/table_check.sql": {"schema": "public", "table": "users", "scope_column": None,
                                        "check_statement": "level IN ('free', 'paid')", "shown": ["user_id", "level"]},
    "quality/record_results.sql": {"schema": "public", "count": 2},
    "stage/add_listing.sql": {"count": 2},
    "stage/todo.sql": {"schema": "public", "limit": 2000},
    "quality/events_source_staged.sql": {"schema": "public", "source_keys": ["source_key_0", "source_key_1"]},
    "refresh/owed.sql": {"schema": "public", "table": "songplays"},
    "refresh/note.sql": {"schema": "public", "tables": ("songplays", "users")},
    "stage/add_batch_objects.sql": {"count": 2},
    "stage/load_errors_sys.sql": {"count": 2},
    "stage/load_errors_stl.sql": {"count": 2},
    "stage/copy_postgres.sql": {"columns": STAGING_COLUMNS["staging_events"]},
    "stage/copy_redshift.sql": {
        "columns": [c for c in STAGING_COLUMNS["staging_events"] if c != "source_key"],
        "manifest_url": "s3://manifests/sparkify/run/Stage_events-0.manifest",
        "credentials": "aws_iam_role=arn:aws:iam::123456789012:role/redshift",
        "json_format": "s3://udacity-dend/log_json_path.json", "region": "us-west-2",
    },
    "stage/create_batch.sql": {"schema": "public", "table": "staging_events"},
    "stage/drop_batch.sql": {},
    "stage/replace_rows.sql": {"schema": "public", "table": "staging_songs", "source_key_column": None,
                               "dedupe_key": "song_id"},
    "stage/set_batch_source_key.sql": {"source_key_column": "source_key"},
    "stage/table_columns.sql": {},
    "maintenance/vacuum_analyze.sql": {"schema": "public", "table": "songplays", "vacuum": True, "analyze": True,
                                       "threshold": 95},
    "maintenance/tables_with_rows.sql": {"schema": "public", "tables": ("songplays", "users")},
    "access/create_role.sql": {"role": "sparkify_analyst"},
    "access/grant_analyst.sql": {"schema": "public", "role": "sparkify_analyst", "readable": ("songplays", "users"),
                                 "private": ("staging_events",)},
    "access/grant_loader.sql": {"schema": "public", "role": "sparkify_loader", "tables": ("songplays",)},
}
# Only ever run on one dialect: the bulk-load statement of each.
_DIALECT_ONLY = {"stage/copy_redshift.sql": "redshift", "stage/copy_postgres.sql": "postgres"}
# Not portable to Redshift (the data contract's "SQL dialect" rule): must not appear in any statement.
_NOT_PORTABLE = re.compile(
    r"\bDISTINCT\s+ON\b|\bON\s+CONFLICT\b|\bRETURNING\b|\bSERIAL\b|\bdayofweek\b", re.IGNORECASE
)
_REDSHIFT_ONLY = re.compile(r"\b(DISTKEY|SORTKEY|DISTSTYLE|ENCODE|IDENTITY)\b|\bFROM\s+'s3://", re.IGNORECASE)


def _check_rendered(path: str, dialect: str, sql: str) -> list[str]:
    assert not re.search(r"\{\{|\{%|\{#|#\}|%\}|\}\}", sql), f"{path}: Jinja left in the output"
    statements = warehouse.split(sql)
    assert statements, f"{path} ({dialect}) renders to no statement"
    for statement in statements:
        # Parameters are bound pyformat-style: every other '%' must be written '%%'.
        leftover = re.sub(r"%\(\w+\)s|%%", "", statement)
        assert "%" not in leftover, f"{path} ({dialect}): stray '%' in {statement!r}"
        if path not in _DIALECT_ONLY:
            assert not _NOT_PORTABLE.search(statement), f"{path} ({dialect}): not portable: {statement!r}"
        if dialect == "postgres" and path not in _DIALECT_ONLY:
            assert not _REDSHIFT_ONLY.search(statement), f"{path} (postgres): Redshift-only clause: {statement!r}"
    return statements


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("path", SQL_FILES)
def test_every_sql_file_renders_for_both_dialects(path, dialect):
    import jinja2

    context = _CONTEXTS.get(path, _LOAD)
    try:
        sql = warehouse.render(path, dialect=dialect, **context)
    except jinja2.UndefinedError as err:
        pytest.fail(f"{path}: {err}; give it the context its caller uses in _CONTEXTS")
    _check_rendered(path, dialect, sql)
    # The splitter gives exactly what sqlparse gave: what ran before it, and what the applied
    # migrations' checksums were computed from.
    assert warehouse.split(sql) == _split_by_sqlparse(sql)


def _split_by_sqlparse(sql: str) -> list[str]:
    """What sparkify.warehouse.split did before it was a tokenizer: sqlparse, comments stripped."""
    import sqlparse

    stripped = sqlparse.format(sql, strip_comments=True)
    return [s.strip().rstrip(";").strip() for s in sqlparse.split(stripped) if s.strip().rstrip(";").strip()]


@pytest.mark.parametrize(
    ("sql", "statements"),
    [
        ("SELECT 1; -- one\nSELECT 2;", ["SELECT 1", "SELECT 2"]),
        ("SELECT ';' -- not a statement end\n, 2", ["SELECT ';'\n, 2"]),
        ("SELECT 'it''s; -- still a string' FROM t", ["SELECT 'it''s; -- still a string' FROM t"]),
        ('SELECT "a;b" FROM t;;', ['SELECT "a;b" FROM t']),
        ("SELECT $$ a; b $$; SELECT $fn$ c; $fn$", ["SELECT $$ a; b $$", "SELECT $fn$ c; $fn$"]),
        ("SELECT 1 /* x; */ FROM t", ["SELECT 1   FROM t"]),
        ("SELECT 1/* x */FROM t", ["SELECT 1 FROM t"]),
        ("SELECT 1\n/* multi\nline */\nFROM t", ["SELECT 1\n\nFROM t"]),
        ("SELECT 1   -- trailing\n  FROM t", ["SELECT 1\n  FROM t"]),
        ("-- only a comment\n;\n", []),
    ],
)
def test_split_keeps_strings_and_drops_comments_like_sqlparse(sql, statements):
    assert warehouse.split(sql) == statements
    assert _split_by_sqlparse(sql) == statements


def test_sql_contexts_name_existing_files():
    assert set(_CONTEXTS) <= set(SQL_FILES), set(_CONTEXTS) - set(SQL_FILES)


def test_ddl_is_rendered_per_dialect():
    redshift = warehouse.render("migrations/0001_initial.sql", dialect="redshift", schema="public")
    postgres = warehouse.render("migrations/0001_initial.sql", dialect="postgres", schema="public")
    assert "DISTKEY" in redshift and "SORTKEY" in redshift
    created = re.findall(r"CREATE TABLE IF NOT EXISTS public\.(\w+)", postgres)
    assert set(STAR_TABLES) | set(STAGING_COLUMNS) <= set(created)


@pytest.mark.parametrize("personal_data", ["keep", "hash", "omit"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_load_renders_as_the_dag_calls_it(dag, dialect, personal_data):
    assert dag.params["personal_data"] == settings.DEFAULTS.personal_data == "keep"
    for task_id in LOAD_TASKS:
        task = dag.get_task(task_id)
        if not task_id.startswith("Load_"):
            continue
        spec = STAR_TABLES[task.table]
        sql = warehouse.render(
            f"load/modes/{task.mode}.sql", dialect=dialect, schema="public", table=task.table,
            columns=spec.columns, key=spec.key, text_columns=spec.text, scope_column=task.scope_column,
            select=task.select, personal_data=personal_data,
        )
        statements = _check_rendered(task.select, dialect, sql)
        assert task.personal_data == "{{ params.personal_data }}", task_id
        if task.table in ("users", "songplays"):
            personal = {"keep": "e.location" if task.table == "songplays" else "e.firstname",
                        "hash": "MD5(e.", "omit": "CAST(NULL AS VARCHAR(1))"}[personal_data]
            assert personal in sql, (task_id, personal_data)
        assert any(s.upper().startswith("INSERT INTO PUBLIC." + task.table.upper()) for s in statements), task_id


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_declared_check_renders(dialect):
    checks = load_checks()
    assert checks
    for check in checks:
        sql = warehouse.render(check.template, dialect=dialect, schema="public", source_keys=["source_key_0"],
                               **check.context)
        statements = _check_rendered(check.template, dialect, sql)
        assert statements[-1].upper().lstrip("(").startswith("SELECT"), check.name


@pytest.mark.parametrize("conn_type", ["redshift", "postgres"])
@pytest.mark.parametrize("task_id", [t for t in SQL_TASKS if not t.startswith("Stage_")])
def test_the_sql_a_task_runs_is_a_rendered_template_field(dag, task_id, conn_type, monkeypatch):
    """As with common-sql's SQLExecuteQueryOperator, the SQL is a template field Airflow renders
    from include/sql (the DAG's template_searchpath), so the Rendered Template tab shows it."""
    from airflow.sdk.execution_time import macros

    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT", f'{{"conn_type": "{conn_type}", "host": "127.0.0.1"}}')
    assert str(SQL_DIR) in dag.template_searchpath
    task = copy.deepcopy(dag.get_task(task_id))
    assert "sql" in task.template_fields and ".sql" in task.template_ext
    start = datetime(2018, 11, 5, 10, tzinfo=UTC)
    context = {"params": {name: dag.params[name] for name in dag.params}, "data_interval_start": start,
               "data_interval_end": start + timedelta(hours=1), "run_id": "manual__sql", "dag": dag, "task": task,
               "macros": macros}
    task.render_template_fields(context)
    statements = task.sql.values() if isinstance(task.sql, dict) else [task.sql]
    assert statements
    for sql in statements:
        _check_rendered(task_id, conn_type, sql)
        assert "2018-11-05" not in sql  # the interval is bound at execute time, never rendered in
    if task_id.startswith("Load_"):
        assert f"INSERT INTO public.{task.table} (" in task.sql
        if task.table != "time":  # the warehouse's dialect: text compared as Redshift does (RTRIM on PostgreSQL)
            assert ("RTRIM(" in task.sql) == (conn_type == "postgres")
    else:
        assert set(task.sql) >= {check.name for check in load_checks()}


# -- bad params fail before any SQL -----------------------------------------------------------------


def _refuse(*args, **kwargs):
    raise AssertionError("the task reached the warehouse or S3 with a bad param")


class _NoXCom:
    """The task instance of a run in which no upstream task pushed anything."""

    def xcom_pull(self, *args, **kwargs):
        return None

    def xcom_push(self, *args, **kwargs):
        pass


@pytest.mark.parametrize("task_id", SQL_TASKS)
def test_bad_schema_fails_the_task_before_any_sql(dag, task_id, monkeypatch):
    from airflow.sdk.execution_time import macros

    monkeypatch.setattr(warehouse.Warehouse, "__init__", _refuse)
    monkeypatch.setattr("sparkify.s3.S3.__init__", _refuse)
    task = copy.deepcopy(dag.get_task(task_id))
    start = datetime(2018, 11, 5, 10, tzinfo=UTC)
    params = {name: dag.params[name] for name in dag.params}
    context = {
        "params": {**params, "schema": "bad;drop"},
        "data_interval_start": start,
        "data_interval_end": start + timedelta(hours=1),
        "logical_date": start + timedelta(hours=1),
        "run_id": "manual__bad-param",
        "dag": dag,
        "task": task,
        "ti": _NoXCom(),
        "macros": macros,  # as in a real run: Stage_events' late_keys use macros.timedelta
    }
    task.render_template_fields(context)
    assert task.schema == "bad;drop"
    with pytest.raises(AirflowFailException) as failure:
        task.execute(context)
    message = str(failure.value)
    assert "schema" in message and "bad;drop" in message


def test_bad_param_fails_the_run_without_retries(airflow_db, monkeypatch):
    """Through Airflow: the staging tasks fail on their first try, nothing downstream runs."""
    dag = patched_for_dag_test(load_dag(), monkeypatch)
    # A retry would be visible at once (try_number 2) instead of after five minutes.
    for task in dag.tasks:
        monkeypatch.setattr(task, "retry_delay", timedelta(0))
    # Nothing listens there: any attempt to connect would fail, and be retried.
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT", "postgresql://nobody@127.0.0.1:9/nowhere")
    monkeypatch.setenv("AIRFLOW_CONN_AWS", '{"conn_type": "aws", "extra": {"endpoint_url": "http://127.0.0.1:9"}}')

    run = run_interval(dag, datetime(2018, 11, 5, 10), schema="bad;drop")

    assert run.state == "failed"
    states = {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}
    assert states["Stage_events"] == ("failed", 1)
    assert states["Stage_songs"] == ("failed", 1)
    for task_id in ("Load_songplays_fact_table", "Load_user_dim_table", "Run_data_quality_checks", "End_execution"):
        assert states[task_id][0] == "upstream_failed", (task_id, states[task_id])


@pytest.mark.parametrize("late_data_days, expected", [
    (0, []),
    (1, ["log_data/2018/11/2018-11-30-events.json"]),
    (2, ["log_data/2018/11/2018-11-30-events.json", "log_data/2018/11/2018-11-29-events.json"]),
])
def test_stage_events_checks_the_previous_days_files_for_late_changes(dag, late_data_days, expected):
    from airflow.sdk.execution_time import macros

    task = dag.get_task("Stage_events")
    assert dag.params["late_data_days"] == settings.DEFAULTS.late_data_days == 1
    context = {"params": {"log_prefix": "log_data", "late_data_days": late_data_days}, "macros": macros,
               "data_interval_start": datetime(2018, 12, 1, 5, tzinfo=UTC),
               "data_interval_end": datetime(2018, 12, 1, 6, tzinfo=UTC)}
    assert task.render_template(task.late_keys, context).split() == expected
    assert task.render_template(task.s3_key, context) == "log_data/2018/12/2018-12-01-events.json"


def test_a_wide_interval_stages_and_checks_every_day_it_touches(dag):
    """[11-29T05:00, 12-01T03:00): three days' files, to be staged and required by the checks; the
    late-data look-back starts before the first of them."""
    stage, checks = dag.get_task("Stage_events"), dag.get_task("Run_data_quality_checks")
    context = {"params": {"log_prefix": "log_data", "late_data_days": 1},
               "data_interval_start": datetime(2018, 11, 29, 5, tzinfo=UTC),
               "data_interval_end": datetime(2018, 12, 1, 3, tzinfo=UTC)}
    days = ["log_data/2018/11/2018-11-29-events.json", "log_data/2018/11/2018-11-30-events.json",
            "log_data/2018/12/2018-12-01-events.json"]
    assert stage.render_template(stage.s3_key, context).split() == days
    assert checks.render_template(checks.source_keys, context).split() == days
    assert stage.render_template(stage.late_keys, context).split() == ["log_data/2018/11/2018-11-28-events.json"]
    # An interval that ends at midnight does not touch the next day.
    context["data_interval_end"] = datetime(2018, 12, 1, tzinfo=UTC)
    assert stage.render_template(stage.s3_key, context).split() == days[:2]


HEAVY_LIBRARIES = ["boto3", "botocore", "psycopg", "psycopg2", "airflow.providers.common.sql.hooks.sql",
                   "airflow.providers.amazon.aws.hooks.s3", "airflow.providers.postgres.hooks.postgres"]


def imported_after(statement: str, plugins_folder: Path, pythonpath: Path) -> list[str]:
    """Which of HEAVY_LIBRARIES a fresh interpreter has imported after ``statement``."""
    import json
    import os
    import subprocess
    import sys

    code = f"import json, sys; {statement}; print(json.dumps([m for m in {HEAVY_LIBRARIES!r} if m in sys.modules]))"
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_parsing_the_dag_file_imports_no_driver_or_sdk_of_a_service(tmp_path):
    """Every task process parses the DAG file: importing it must not import boto3, psycopg,
    common-sql or the providers' asset URI handlers (about 0.8 CPU-s per task process without the
    preload, docs/performance.md). Checked without plugins/airflow_local_settings.py, which
    preloads exactly these, as a deployment without it would run."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "sparkify").symlink_to(ROOT / "plugins" / "sparkify")
    statement = f"import runpy; runpy.run_path({str(DAGS_DIR / 'sparkify_etl.py')!r}, run_name='sparkify_etl')"
    assert imported_after(statement, tmp_path / "plugins", tmp_path / "plugins") == []


@pytest.mark.parametrize("argv, preloaded", [
    (["airflow", "scheduler"], True), (["airflow", "celery", "worker"], True),
    (["airflow", "api-server"], False), (["airflow", "dag-processor"], False), (["airflow", "db", "migrate"], False),
    (["-m", "sparkify.tables"], False),
])
def test_airflow_preloads_the_tasks_libraries_where_task_processes_are_forked(argv, preloaded):
    """Airflow imports plugins/airflow_local_settings.py when it starts, so the scheduler and Celery
    workers, and the task processes they fork, have the tasks' libraries already imported; the
    processes that fork no task (the api-server, the dag-processor, CLI commands) do not pay for them."""
    statement = f"sys.argv = {argv!r}; import airflow.settings"
    imported = set(imported_after(statement, ROOT / "plugins", ROOT / "plugins"))
    if preloaded:
        assert set(HEAVY_LIBRARIES) - {"psycopg2"} <= imported, imported
    else:
        assert not imported, imported


@pytest.mark.parametrize("argv, warmed", [(["airflow", "scheduler"], True), (["airflow", "celery", "worker"], True),
                                          (["airflow", "dags", "list"], False)])
def test_the_scheduler_and_celery_workers_parse_the_s3_models_before_forking(argv, warmed, monkeypatch):
    """In the processes that fork task processes, airflow_local_settings parses the S3 client's
    botocore models into the shared loader (sparkify.botodata); other commands do not pay for it.
    (The file is run here as Airflow imports it at start, with that process's command line.)"""
    import runpy
    import sys

    from sparkify.botodata import shared_loader

    monkeypatch.setattr(sys, "argv", argv)
    shared_loader.cache_clear()
    try:
        runpy.run_path(str(ROOT / "plugins" / "airflow_local_settings.py"))
        assert shared_loader.cache_info().currsize == (1 if warmed else 0)
    finally:
        shared_loader.cache_clear()


def test_the_plugin_loader_runs_only_the_quality_page_not_the_settings_file(monkeypatch):
    """Every Airflow process loads plugins/ with Airflow's plugin loader, each task process too (its
    listeners): only the quality page is a plugin. airflow_local_settings.py, which Airflow imports
    by name once per process, is in plugins/.airflowignore: loaded as a plugin it ran again in every
    task process (the loader re-executes a file under its own name), its S3 client included."""
    import sys

    from airflow.sdk._shared.plugins_manager import _load_plugins_from_plugin_directory

    import sparkify.botodata

    warmed = []
    monkeypatch.setattr(sparkify.botodata, "warm", lambda: warmed.append(True))
    monkeypatch.setattr(sys, "argv", ["airflow", "scheduler"])  # as a task forked from the scheduler
    for name in ("airflow_local_settings", "sparkify_quality_page"):  # the loader replaces them: put back after
        monkeypatch.setitem(sys.modules, name, sys.modules.get(name))
    plugins, errors = _load_plugins_from_plugin_directory(plugins_folder=str(ROOT / "plugins"))
    assert errors == {}
    assert [type(p).__module__ for p in plugins] == ["sparkify_quality_page"]
    assert warmed == []
