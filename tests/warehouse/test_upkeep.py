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


@pytest.fixture
def fake_redshift(monkeypatch) -> FakeRedshift:
    """The ``redshift`` connection as a Redshift one whose DB-API connection records every call."""
    import json

    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
    from tests.operators.conftest import REDSHIFT_CONNECTION

    fake = FakeRedshift()
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT", json.dumps(REDSHIFT_CONNECTION))
    monkeypatch.setattr(RedshiftSQLHook, "get_conn", lambda self: fake.connect())
    return fake


def test_redshift_vacuums_and_analyzes_each_table_only_as_svv_table_info_asks_outside_a_transaction(
    fake_redshift,
):
    fake = fake_redshift
    fake.table_info_rows = [  # (table, stats_off, rows marked deleted, unsorted percent, rows)
        ("songplays", 12.5, 400, 30.0, 1000),  # both
        ("users", 0.0, 0, 0.0, 100),  # current: nothing
        ("time", 0.0, 0, 7.5, 1000),  # unsorted only: VACUUM
        ("staging_songs", 5.0, 0, 0.0, 1000),  # stale statistics only: ANALYZE
        ("maintenance_log", 9.0, 9, 9.0, 10),  # the maintenance's own log: never
        ("someone_elses_table", 50.0, 9, 9.0, 10),  # not the pipeline's: never
    ]
    done = maintenance.vacuum_analyze("redshift", "sparkify", "run-1")
    assert done == {"songplays": "VACUUM ANALYZE", "time": "VACUUM", "staging_songs": "ANALYZE"}
    upkeep = [(sql, autocommit) for sql, autocommit in fake.autocommit_at if sql.startswith(("VACUUM", "ANALYZE"))]
    assert upkeep == [
        ("VACUUM sparkify.songplays TO 95 PERCENT", True), ("ANALYZE sparkify.songplays", True),
        ("VACUUM sparkify.time TO 95 PERCENT", True), ("ANALYZE sparkify.staging_songs", True),
    ]
    assert any(normalize(s).startswith("SELECT \"table\"::VARCHAR(128)") and "svv_table_info" in s
               for s, _ in fake.statements)
    records = [p for s, p in fake.statements if "INSERT INTO sparkify.maintenance_log" in normalize(s)]
    assert [(p["table_name"], p["action"]) for p in records] == list(done.items())

    fake.table_info_rows = [("songplays", 0.0, 0, 0.0, 1000), ("time", 0.0, 0, 0.0, 1000)]
    sent = len(fake.log)
    assert maintenance.vacuum_analyze("redshift", "sparkify", "run-2") == {}
    assert not [e for e in fake.log[sent:] if e[0] == "execute" and "svv_table_info" not in e[1]]


def test_redshift_vacuums_only_past_its_own_thresholds_where_vacuum_would_do_something(fake_redshift):
    """Redshift skips the sort of a table more than 95% sorted and reclaims deleted rows only down to
    5% of the table: a table with a little unsorted or deleted data is left alone, every day."""
    fake = fake_redshift
    fake.table_info_rows = [  # (table, stats_off, rows marked deleted, unsorted percent, rows)
        ("songplays", 0.0, 50, 4.99, 1000),  # 95.01% sorted, 5% deleted: VACUUM would do nothing
        ("users", 0.0, 0, 5.0, 1000),  # exactly 95% sorted: not more, so Redshift sorts it
        ("time", 0.0, 51, 0.0, 1000),  # 5.1% deleted: more than 5%
        ("artists", 0.0, 0, 0.0, 0),  # empty
    ]
    done = maintenance.vacuum_analyze("redshift", "sparkify", "run-1")
    assert done == {"users": "VACUUM", "time": "VACUUM"}
    assert [s for s in fake.sql if s.startswith(("VACUUM", "ANALYZE"))] == [
        "VACUUM sparkify.users TO 95 PERCENT", "VACUUM sparkify.time TO 95 PERCENT"]

    fake.table_info_rows = [("songplays", 0.0, 50, 4.99, 1000), ("users", 0.0, 0, 4.0, 1000)]
    sent = len(fake.log)
    assert maintenance.vacuum_analyze("redshift", "sparkify", "run-2") == {}
    assert [e[0] for e in fake.log[sent:]] == ["execute", "commit", "close"]  # svv_table_info alone


def answer(monkeypatch, fake: FakeRedshift, existing: list[str], with_rows: list[str]) -> None:
    """What information_schema.tables and the tables themselves hold, as the fake warehouse answers."""
    from tests.operators.helpers import FakeCursor

    execute = FakeCursor.execute

    def answering(self, sql, params=None):
        execute(self, sql, params)
        if "FROM information_schema.tables" in sql:
            self._rows = [(t,) for t in existing]
        elif "LIMIT 1) AS t" in sql:
            self._rows = [(t,) for t in with_rows]
        return self

    monkeypatch.setattr(FakeCursor, "execute", answering)


def test_redshift_upkeep_warns_naming_the_grant_when_svv_table_info_hides_tables_that_hold_rows(
    fake_redshift, monkeypatch, caplog
):
    """svv_table_info is visible only to superusers: another user gets no row at all, and upkeep would
    silently never run. It omits empty tables too, so the warning needs tables that hold rows."""
    fake = fake_redshift
    fake.table_info_rows = []
    answer(monkeypatch, fake, existing=["artists", "someone_elses_table", "songplays", "users"],
           with_rows=["songplays", "users"])
    with caplog.at_level("WARNING", logger="sparkify.maintenance"):
        assert maintenance.vacuum_analyze("redshift", "sparkify", "run-1") == {}
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warning.getMessage().startswith(
        "svv_table_info shows no table of schema sparkify, yet 2 of its tables hold rows (songplays, users): "
        "the view is visible only to superusers")
    assert "GRANT ROLE sys:operator TO <the connection's user>" in warning.getMessage()
    assert fake.sql[0].startswith('SELECT "table"::VARCHAR(128)')
    assert fake.sql[1:] == [
        "SELECT CAST(table_name AS VARCHAR(128)) FROM information_schema.tables "
        "WHERE table_schema = %(schema)s AND table_type = 'BASE TABLE' ORDER BY 1",
        # the pipeline's tables that exist, in the pipeline's order; nobody else's
        "SELECT CAST('songplays' AS VARCHAR(128)) FROM (SELECT 1 FROM sparkify.songplays LIMIT 1) AS t UNION ALL "
        "SELECT CAST('users' AS VARCHAR(128)) FROM (SELECT 1 FROM sparkify.users LIMIT 1) AS t UNION ALL "
        "SELECT CAST('artists' AS VARCHAR(128)) FROM (SELECT 1 FROM sparkify.artists LIMIT 1) AS t",
    ]
    assert fake.statements[1][1] == {"schema": "sparkify"}
    assert not [s for s in fake.sql if s.startswith(("VACUUM", "ANALYZE", "INSERT"))]

    # A new warehouse, every table empty: svv_table_info omits them all, rightly: no warning.
    caplog.clear()
    answer(monkeypatch, fake, existing=["artists", "songplays", "users"], with_rows=[])
    with caplog.at_level("WARNING", logger="sparkify.maintenance"):
        assert maintenance.vacuum_analyze("redshift", "sparkify", "run-2") == {}
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_the_tables_holding_rows_are_found_on_postgresql(warehouse):
    """The query the warning rests on, run for real: only the pipeline's tables, only those with a row."""
    from sparkify.warehouse import Warehouse

    with Warehouse("redshift").transaction() as tx:
        assert maintenance.tables_with_rows(tx, "public") == []
    with warehouse.connect() as conn:
        conn.execute("INSERT INTO load_listing (prefix, listed_at, object_count) "
                     "VALUES ('song_data', '2018-11-04 01:00:00', 1)")
        conn.execute("INSERT INTO users (user_id, first_name, last_event_ts) VALUES (10, 'Lily', 1541290000000)")
        conn.execute("CREATE TABLE someone_elses_table AS SELECT 1 AS x")
    with Warehouse("redshift").transaction() as tx:
        assert maintenance.tables_with_rows(tx, "public") == ["users", "load_listing"]
        assert maintenance.tables_with_rows(tx, "no_such_schema") == []


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
