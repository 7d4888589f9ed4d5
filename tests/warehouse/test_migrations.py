"""Schema migrations on a real PostgreSQL: a warehouse made by the first schema, loaded, brought
to the current version by the command, keeps every row; the version table guards the files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT, Database
from sparkify import migrations, settings, warehouse
from sparkify.tables import ALL_TABLES
from sparkify.warehouse import Warehouse

# The tables of the first schema version, and one row for each, in its columns' order.
V1_ROWS = {
    "staging_events": ("Björk", "Logged In", "Lily", "F", 0, "Koch", 200.5, "paid", "Chicago, IL", "PUT",
                       "NextSong", 1.5e12, 7, "Song A", 200, 1541290000000, "Mozilla/5.0", "10",
                       "log_data/2018/11/2018-11-04-events.json"),
    "staging_songs": (1, "ARA0001", None, None, "", "Artist A", "SOAAAAA000001", "Song A", 200.5, 0),
    "songplays": ("0f" * 16, "2018-11-04 00:06:40", 10, "paid", "SOAAAAA000001", "ARA0001", 7, "Chicago, IL",
                  "Mozilla/5.0"),
    "users": (10, "Lily", "Koch", "F", "paid", 1541290000000),
    "songs": ("SOAAAAA000001", "Song A", "ARA0001", 0, 200.5),
    "artists": ("ARA0001", "Artist A", "", None, None),
    "time": ("2018-11-04 00:06:40", 0, 4, 44, 11, 2018, 0),
    "load_manifest": ("log_data/2018/11/2018-11-04-events.json", "staging_events", "abc", 123, 1,
                      "2018-11-04 01:00:00", "scheduled__2018-11-04T00:00:00+00:00"),
    "load_manifest_hours": ("log_data/2018/11/2018-11-04-events.json", "2018-11-04 00:00:00", 1, 1),
    "load_listing": ("song_data", "2018-11-04 01:00:00", 1),
    "quality_results": ("scheduled__2018-11-04T00:00:00+00:00", "sparkify_etl", "2018-11-04 00:00:00",
                        "2018-11-04 01:00:00", "songplays_songplay_id_unique", "songplays", "songplay_id", "error",
                        "0", "= 0", True, "2018-11-04 01:00:05"),
}


def first_columns(db: Database) -> dict[str, list[str]]:
    """The columns of each table as they are now (before a migration adds any)."""
    return {t: [r[0] for r in db.query("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                       "'public' AND table_name = %s ORDER BY ordinal_position", (t,))]
            for t in V1_ROWS}


def sums(db: Database, columns: dict[str, list[str]]) -> dict[str, tuple]:
    """Rows and an MD5 over the given columns of every row of each table (a later migration's new
    columns are not the first version's data)."""
    return {t: tuple(db.query(f"SELECT COUNT(*), MD5(STRING_AGG(ROW({', '.join(columns[t])})::text, ',' "
                              f"ORDER BY ROW({', '.join(columns[t])})::text)) FROM {t}")[0])
            for t in V1_ROWS}


def first_version_warehouse(db: Database) -> None:
    """What `python -m sparkify.tables create` made before the schema was versioned: the statements of
    0001 and no version table. Then one row in every table."""
    with db.connect() as conn:
        for statement in migrations.migrations()[0].statements("postgres", "public"):
            conn.execute(statement)
        for table, row in V1_ROWS.items():
            conn.execute(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(row))})", row)


def migrate_command(db: Database, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sparkify.tables", *args, "--conn-id", "redshift"],
                          env={**os.environ, "AIRFLOW_CONN_REDSHIFT": db.url}, cwd=ROOT, capture_output=True, text=True)


def test_a_first_version_warehouse_with_data_migrates_to_the_current_version_keeping_every_row(empty_database):
    db = empty_database
    first_version_warehouse(db)
    columns = first_columns(db)
    before = sums(db, columns)
    assert all(n == 1 for n, _ in before.values())
    assert migrate_command(db, "version").stdout.strip() == f"schema public: version 0 (this code: {migrations.head()})"

    result = migrate_command(db, "migrate")
    assert result.returncode == 0, result.stderr
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in migrations.migrations())
    assert f"version 0 -> {migrations.head()} ({names})" in result.stdout

    assert sums(db, columns) == before  # every row of every table of the first version, unchanged
    tables = {r[0] for r in db.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    assert tables == set(ALL_TABLES)
    recorded = db.query("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
    assert recorded == [(m.version, m.name, m.checksum("postgres", "public")) for m in migrations.migrations()]

    again = migrate_command(db, "migrate")  # current already: nothing applied, nothing changed
    assert again.returncode == 0 and "(nothing to apply)" in again.stdout
    assert db.query("SELECT COUNT(*) FROM schema_migrations") == [(migrations.head(),)]
    assert sums(db, columns) == before


def test_migrating_to_a_version_then_on_applies_each_migration_once(empty_database):
    wh = Warehouse("redshift")
    with wh.transaction() as tx:
        assert [m.version for m in migrations.migrate(tx, "public", target=1)] == [1]
    assert empty_database.scalar("SELECT to_regclass('public.maintenance_log')") is None
    with wh.transaction() as tx:
        assert [m.version for m in migrations.migrate(tx, "public")] == list(range(2, migrations.head() + 1))
        assert migrations.version(tx, "public") == migrations.head()
    assert empty_database.scalar("SELECT to_regclass('public.maintenance_log')::text") == "maintenance_log"


def test_a_failing_migration_leaves_the_warehouse_at_its_version(empty_database, tmp_path, monkeypatch):
    wh = Warehouse("redshift")
    with wh.transaction() as tx:
        migrations.migrate(tx, "public", target=1)
    head = migrations.head()
    sql_dir = copy_sql(tmp_path, monkeypatch)
    bad = sql_dir / "migrations" / f"{head + 1:04d}_broken.sql"
    bad.write_text("CREATE TABLE {{ schema }}.half_done (x INTEGER);\n"
                   "ALTER TABLE {{ schema }}.nope ADD COLUMN y INTEGER;\n")

    with pytest.raises(Exception, match="nope"), wh.transaction() as tx:
        migrations.migrate(tx, "public")
    # Nothing of 0002…head nor of the broken file: all pending migrations run in one transaction.
    assert empty_database.query("SELECT version FROM schema_migrations") == [(1,)]
    assert empty_database.scalar("SELECT to_regclass('public.half_done')") is None
    assert empty_database.scalar("SELECT to_regclass('public.maintenance_log')") is None


def test_an_edited_applied_migration_is_refused_naming_its_file(empty_database, tmp_path, monkeypatch):
    with Warehouse("redshift").transaction() as tx:
        migrations.migrate(tx, "public")
    sql_dir = copy_sql(tmp_path, monkeypatch)
    edited = sql_dir / "migrations" / "0002_maintenance_log.sql"
    edited.write_text(edited.read_text().replace("rows_affected   BIGINT", "rows_affected   INTEGER"))

    with pytest.raises(migrations.MigrationError, match=r"0002_maintenance_log\.sql: migration 2 was applied"):
        with Warehouse("redshift").transaction() as tx:
            migrations.migrate(tx, "public")


@pytest.mark.parametrize("what", ["a gap", "a bad name"])
def test_misnumbered_or_misnamed_files_are_refused(tmp_path, monkeypatch, what):
    head = migrations.head()
    name, message = {
        "a gap": (f"{head + 2:04d}_gap.sql", f"expected migration {head + 1:04d} here"),
        "a bad name": (f"{head + 1:04d}-bad-name.sql", "NNNN_<lower_case_name>.sql"),
    }[what]
    sql_dir = copy_sql(tmp_path, monkeypatch)
    (sql_dir / "migrations" / name).write_text("SELECT 1;\n")
    with pytest.raises(migrations.MigrationError, match=message):
        migrations.migrations()


# -- two migrators at once ------------------------------------------------------------------------


def waiting_on_a_lock(db: Database, timeout: float = 120) -> None:
    """Until a session of ``db`` waits on a lock (the other migrator, blocked by this one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                     "AND wait_event_type = 'Lock'"):
            return
        time.sleep(0.05)
    raise AssertionError(f"no session of {db.name} waited on a lock within {timeout} s")


def migrate_in_threads(count: int, schema: str) -> list[list[int] | BaseException]:
    """``count`` migrators started together, each in its own thread and connection; what each
    applied (or raised), in the order they were started."""
    whs = [Warehouse("redshift") for _ in range(count)]
    start = threading.Barrier(count)
    results: list[list[int] | BaseException] = [AssertionError("never finished")] * count

    def run(i: int) -> None:
        try:
            start.wait()
            with whs[i].transaction() as tx:
                results[i] = [m.version for m in migrations.migrate(tx, schema)]
        except BaseException as err:  # noqa: BLE001 - handed to the test, which shows it
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,), name=f"migrator-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def columns_of(db: Database, schema: str) -> list[tuple]:
    return db.query("SELECT table_name, ordinal_position, column_name, data_type, character_maximum_length, "
                    "is_nullable FROM information_schema.columns WHERE table_schema = %s ORDER BY 1, 2", (schema,))


@pytest.mark.parametrize("start_from", ["nothing", "version 1"])
def test_two_migrators_started_together_apply_each_migration_once(empty_database, monkeypatch, start_from):
    """The first migrator to be granted the LOCK holds it until the other one waits behind it, so
    the two overlap every time: the second must then read the versions the first committed.

    Starting from nothing, both create the schema and the version table at the same moment; from
    version 1, the version table exists and both find migrations to apply when they start."""
    db, schema = empty_database, "sparkify_mig"
    with Warehouse("redshift").transaction() as tx:  # what one migrator alone makes: the reference
        migrations.migrate(tx, "reference")
    if start_from == "version 1":
        with Warehouse("redshift").transaction() as tx:
            migrations.migrate(tx, schema, target=1)
    first_granted = threading.Event()
    execute = warehouse.Session.execute

    def execute_then_hold_the_lock(self, sql, params=None, **kwargs):
        execute(self, sql, params, **kwargs)
        if sql.startswith("LOCK TABLE") and not first_granted.is_set():
            first_granted.set()
            waiting_on_a_lock(db)  # the other migrator is blocked behind this one

    monkeypatch.setattr(warehouse.Session, "execute", execute_then_hold_the_lock)
    results = migrate_in_threads(2, schema)

    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    pending = list(range(1 if start_from == "nothing" else 2, migrations.head() + 1))
    assert sorted(results) == [[], pending]  # one applied them all, the other nothing
    recorded = db.query(f"SELECT version, checksum FROM {schema}.schema_migrations ORDER BY version")
    assert recorded == [(m.version, m.checksum("postgres", schema)) for m in migrations.migrations()]
    assert {t for t, *_ in columns_of(db, schema)} == set(ALL_TABLES)
    assert columns_of(db, schema) == columns_of(db, "reference")


def test_a_migrator_that_meets_another_creating_the_version_table_tries_again_and_migrates(empty_database):
    """Another session has created the schema and the version table and not yet committed: the
    migrator waits for it, fails to create them once it commits (PostgreSQL's catalog refuses the
    second name), rolls back and tries again, and then migrates."""
    db, schema = empty_database, "sparkify_mig"
    with db.connect() as other:
        other.execute("BEGIN")
        for statement in warehouse.split(warehouse.render("schema/version_table.sql", dialect="postgres",
                                                          schema=schema)):
            other.execute(statement)
        results: list = []
        migrator = threading.Thread(target=lambda: results.extend(migrate_in_threads(1, schema)))
        migrator.start()
        waiting_on_a_lock(db)
        other.execute("COMMIT")
        migrator.join()
    assert results == [list(range(1, migrations.head() + 1))]
    assert db.scalar(f"SELECT COUNT(*) FROM {schema}.schema_migrations") == migrations.head()


def test_redshift_gets_the_version_table_committed_before_begin_lock_select(monkeypatch):
    """The statements sent, in order, with the BEGIN that Redshift's driver sends before the first
    statement of a transaction (redshift_connector/cursor.py: autocommit off, no transaction open)."""
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
    from tests.operators.conftest import REDSHIFT_CONNECTION
    from tests.operators.helpers import FakeConnection, FakeCursor, FakeRedshift, normalize

    fake = FakeRedshift()
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT", json.dumps(REDSHIFT_CONNECTION))
    monkeypatch.setattr(RedshiftSQLHook, "get_conn", lambda self: fake.connect())
    open_transactions: set[int] = set()
    execute, commit, rollback = FakeCursor.execute, FakeConnection.commit, FakeConnection.rollback

    def execute_with_begin(self, sql, params=None):
        if not self.connection.autocommit and id(self.connection) not in open_transactions:
            fake.log.append(("execute", "begin transaction", None))
            open_transactions.add(id(self.connection))
        return execute(self, sql, params)

    def ending(end):
        def end_transaction(self):
            open_transactions.discard(id(self))
            end(self)
        return end_transaction

    monkeypatch.setattr(FakeCursor, "execute", execute_with_begin)
    monkeypatch.setattr(FakeConnection, "commit", ending(commit))
    monkeypatch.setattr(FakeConnection, "rollback", ending(rollback))

    with Warehouse("redshift").transaction() as tx:
        applied = migrations.migrate(tx, "sparkify")
    assert [m.version for m in applied] == list(range(1, migrations.head() + 1))  # the fake records none

    def sql(template: str) -> list[tuple]:
        return [("execute", s) for s in warehouse.split(warehouse.render(template, dialect="redshift",
                                                                          schema="sparkify"))]

    sent = [(e[0], normalize(e[1])) if e[0] == "execute" else e for e in fake.log]
    begin = [("execute", "begin transaction")]
    expected = (begin + sql("schema/version_table.sql") + [("commit",)]
                + begin + sql("schema/lock.sql") + sql("schema/applied.sql"))
    for migration in migrations.migrations():
        expected += [("execute", s) for s in migration.statements("redshift", "sparkify")] + sql("schema/record.sql")
    expected += [("commit",), ("close",)]
    assert sent == [(e[0], normalize(e[1])) if e[0] == "execute" else e for e in expected]
    assert sent[:7] == [
        ("execute", "begin transaction"),
        ("execute", "CREATE SCHEMA IF NOT EXISTS sparkify"),
        ("execute", normalize(sql("schema/version_table.sql")[1][1])),
        ("commit",),
        ("execute", "begin transaction"),
        ("execute", "LOCK TABLE sparkify.schema_migrations"),
        ("execute", "SELECT version, checksum FROM sparkify.schema_migrations ORDER BY version"),
    ]
    assert sent[2][1].startswith("CREATE TABLE IF NOT EXISTS sparkify.schema_migrations (")


def copy_sql(tmp_path, monkeypatch):
    """A copy of include/sql that the test may change, used by the migrations and the renderer (which
    read it afresh from now on: call nothing that lists the migrations before the copy is changed)."""
    sql_dir = tmp_path / "sql"
    shutil.copytree(settings.SQL_DIR, sql_dir)
    monkeypatch.setattr(settings, "SQL_DIR", sql_dir)
    warehouse._jinja.cache_clear()
    migrations.migrations.cache_clear()
    return sql_dir


@pytest.fixture(autouse=True)
def _clear_caches():
    """The renderer and the migration list cache what they read of include/sql: forget a test's copy."""
    yield
    warehouse._jinja.cache_clear()
    migrations.migrations.cache_clear()
