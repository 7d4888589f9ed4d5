"""Operating the warehouse: VACUUM/ANALYZE where loads changed tables (a no-op otherwise), retention
of staged event files, and the sparkify_maintenance DAG. A real PostgreSQL and moto's S3 server;
the Redshift path by the exact statements sent to a recording connection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.helpers import load_dag
from tests.operators.helpers import EVENTS, FakeRedshift, at, ndjson, normalize, put_sources
from tests.warehouse.helpers import (
    DAY_B,
    EVENTS_B,
    KEY_A,
    KEY_B,
    no_autovacuum,
    run_hour,
    sums,
    wait_for_stats,
)

from sparkify import maintenance
from sparkify.tables import STAR_TABLES


def log_rows(db, task: str) -> list[tuple]:
    return db.query("SELECT table_name, action, rows_affected FROM maintenance_log WHERE task = %s "
                    "ORDER BY table_name", (task,))


# -- VACUUM / ANALYZE ------------------------------------------------------------------------------------


def test_vacuum_analyze_runs_only_where_loads_changed_tables_then_is_a_no_op(warehouse, bucket):
    no_autovacuum(warehouse)
    assert maintenance.vacuum_analyze("redshift", "public", "run-0") == {}  # a new warehouse: nothing changed

    put_sources(bucket, events=EVENTS, songs=False)
    run_hour(bucket, KEY_A, at(10))
    run_hour(bucket, KEY_A, at(10))  # a rerun: deletes and inserts the interval's rows again
    for table in ("staging_events", "songplays", "users", "time", "load_manifest"):
        wait_for_stats(warehouse, table)

    done = maintenance.vacuum_analyze("redshift", "public", "run-1")
    assert {"staging_events", "songplays", "users", "time", "load_manifest", "load_manifest_hours"} <= set(done)
    assert not {"songs", "artists", "staging_songs", "maintenance_log", "schema_migrations"} & set(done)
    assert set(done.values()) == {"VACUUM ANALYZE"}
    assert log_rows(warehouse, "vacuum_analyze") == sorted((t, "VACUUM ANALYZE", None) for t in done)
    counters = warehouse.query("SELECT relname, n_mod_since_analyze, n_dead_tup FROM pg_stat_user_tables "
                               "WHERE relname = ANY(%s)", (list(done),))
    assert all(mod == 0 and dead == 0 for _, mod, dead in counters), counters

    before = sums(warehouse)
    assert maintenance.vacuum_analyze("redshift", "public", "run-2") == {}  # nothing changed since: no-op
    assert len(log_rows(warehouse, "vacuum_analyze")) == len(done)
    assert sums(warehouse) == before


def test_redshift_vacuums_and_analyzes_each_table_only_as_svv_table_info_asks_outside_a_transaction(
    monkeypatch,
):
    import json

    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
    from tests.operators.conftest import REDSHIFT_CONNECTION

    fake = FakeRedshift()
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT", json.dumps(REDSHIFT_CONNECTION))
    monkeypatch.setattr(RedshiftSQLHook, "get_conn", lambda self: fake.connect())
    fake.table_info_rows = [  # (table, stats_off, rows marked deleted, unsorted percent)
        ("songplays", 12.5, 40, 3.0),  # both
        ("users", 0.0, 0, 0.0),  # current: nothing
        ("time", 0.0, 0, 7.5),  # unsorted only: VACUUM
        ("staging_songs", 5.0, 0, 0.0),  # stale statistics only: ANALYZE
        ("maintenance_log", 9.0, 9, 9.0),  # the maintenance's own log: never
        ("someone_elses_table", 50.0, 9, 9.0),  # not the pipeline's: never
    ]
    done = maintenance.vacuum_analyze("redshift", "sparkify", "run-1")
    assert done == {"songplays": "VACUUM ANALYZE", "time": "VACUUM", "staging_songs": "ANALYZE"}
    upkeep = [(sql, autocommit) for sql, autocommit in fake.autocommit_at if sql.startswith(("VACUUM", "ANALYZE"))]
    assert upkeep == [
        ("VACUUM sparkify.songplays", True), ("ANALYZE sparkify.songplays", True),
        ("VACUUM sparkify.time", True), ("ANALYZE sparkify.staging_songs", True),
    ]
    assert any(normalize(s).startswith("SELECT \"table\"::VARCHAR(128)") and "svv_table_info" in s
               for s, _ in fake.statements)
    records = [p for s, p in fake.statements if "INSERT INTO sparkify.maintenance_log" in normalize(s)]
    assert [(p["table_name"], p["action"]) for p in records] == list(done.items())

    fake.table_info_rows = [("songplays", 0.0, 0, 0.0), ("time", 0.0, 0, 0.0)]
    sent = len(fake.log)
    assert maintenance.vacuum_analyze("redshift", "sparkify", "run-2") == {}
    assert not [e for e in fake.log[sent:] if e[0] == "execute" and "svv_table_info" not in e[1]]


# -- retention -----------------------------------------------------------------------------------------


def test_retention_removes_exactly_the_files_staged_before_its_bound_and_reruns_give_identical_tables(
    warehouse, bucket
):
    put_sources(bucket, events=EVENTS, songs=False)
    bucket.put(KEY_B, ndjson(EVENTS_B))
    for hour in (at(10), at(11)):
        run_hour(bucket, KEY_A, hour)
    run_hour(bucket, KEY_B, DAY_B.replace(hour=9))
    loaded = sums(warehouse, STAR_TABLES)

    # Day A's file was staged 40 days ago, day B's today; keep 30 days.
    now = datetime.now(UTC).replace(tzinfo=None)
    with warehouse.connect() as conn:
        conn.execute("UPDATE load_manifest SET staged_at = %s WHERE s3_key = %s", (now - timedelta(days=40), KEY_A))
    rows_a = {
        "staging_events": warehouse.scalar("SELECT COUNT(*) FROM staging_events WHERE source_key = %s", (KEY_A,)),
        "load_manifest_hours": warehouse.scalar("SELECT COUNT(*) FROM load_manifest_hours WHERE s3_key = %s",
                                                (KEY_A,)),
        "load_manifest": 1,
    }
    assert rows_a["staging_events"] == len(EVENTS) and rows_a["load_manifest_hours"] > 0
    kept = {t: warehouse.query(f"SELECT * FROM {t} WHERE {k} = %s ORDER BY 1, 2", (KEY_B,))
            for t, k in (("staging_events", "source_key"), ("load_manifest_hours", "s3_key"),
                         ("load_manifest", "s3_key"))}

    bound = maintenance.retention_bound(now, 30)
    assert maintenance.apply_retention("redshift", "public", "run-1", bound) == rows_a
    assert warehouse.query("SELECT DISTINCT source_key FROM staging_events") == [(KEY_B,)]
    assert warehouse.query("SELECT s3_key FROM load_manifest") == [(KEY_B,)]
    assert kept == {t: warehouse.query(f"SELECT * FROM {t} ORDER BY 1, 2") for t in kept}  # day B untouched
    assert sums(warehouse, STAR_TABLES) == loaded  # the star schema keeps everything
    assert log_rows(warehouse, "retention") == sorted(
        (t, f"deleted rows staged before {bound:%Y-%m-%dT%H:%M:%S}", n) for t, n in rows_a.items())

    # Nothing older is left: a second pass removes nothing and records nothing.
    assert maintenance.apply_retention("redshift", "public", "run-2", bound) == dict.fromkeys(rows_a, 0)
    assert len(log_rows(warehouse, "retention")) == 3

    # A rerun inside the bound (day B) uses what is staged; one outside it (day A) stages its file
    # again from S3. Both leave the star tables exactly as they were.
    run_hour(bucket, KEY_B, DAY_B.replace(hour=9))
    run_hour(bucket, KEY_A, at(10))
    assert sums(warehouse, STAR_TABLES) == loaded
    assert warehouse.scalar("SELECT COUNT(*) FROM staging_events WHERE source_key = %s", (KEY_A,)) == len(EVENTS)


def test_retention_bound_must_not_be_negative():
    """A bad parameter is permanent: the task fails without spending its retries."""
    from sparkify.errors import PermanentError

    with pytest.raises(PermanentError, match="retention_days=-1"):
        maintenance.retention_bound(datetime(2026, 12, 2), -1)


# -- the DAG ---------------------------------------------------------------------------------------------


def test_maintenance_dag_migrates_applies_retention_and_vacuums_then_does_nothing_the_second_time(
    airflow_db, warehouse, bucket
):
    no_autovacuum(warehouse)
    put_sources(bucket, events=EVENTS, songs=False)
    run_hour(bucket, KEY_A, at(10))
    run_hour(bucket, KEY_A, at(10))
    with warehouse.connect() as conn:  # staged long ago
        conn.execute("UPDATE load_manifest SET staged_at = staged_at - INTERVAL '31 days'")
    wait_for_stats(warehouse, "songplays")
    loaded = sums(warehouse, STAR_TABLES)

    dag = load_dag("sparkify_maintenance")
    assert [t.task_id for t in dag.topological_sort()] == ["Migrate_schema", "Apply_retention", "Vacuum_analyze"]
    first = dag.test(run_conf={"retention_days": 30})
    assert first.state == "success", {ti.task_id: ti.state for ti in first.get_task_instances()}
    assert warehouse.scalar("SELECT COUNT(*) FROM staging_events") == 0
    assert sums(warehouse, STAR_TABLES) == loaded
    vacuumed = {t for t, _, _ in log_rows(warehouse, "vacuum_analyze")}
    assert {"songplays", "users", "time", "staging_events", "load_manifest"} <= vacuumed

    logged = warehouse.scalar("SELECT COUNT(*) FROM maintenance_log")
    second = dag.test(run_conf={"retention_days": 30})
    assert second.state == "success"
    assert warehouse.scalar("SELECT COUNT(*) FROM maintenance_log") == logged  # nothing changed: nothing done
    assert sums(warehouse, STAR_TABLES) == loaded
