"""Schema migrations on a real PostgreSQL: a warehouse made by the first schema, loaded, brought
to the current version by the command, keeps every row; the version table guards the files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

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
