"""Access on a real PostgreSQL: the analysts' role reads the star schema and the data-quality history
and nothing else; the loader's role runs the pipeline's loads; personal data can be loaded hashed
or omitted."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from tests.operators.helpers import EVENTS, STAGING_EVENTS_COLUMNS, at, expected_event_row, make_context

from conftest import ROOT
from sparkify import access
from sparkify.operators import LoadDimensionOperator, LoadFactOperator
from sparkify.tables import ALL_TABLES


def grant_command(db) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sparkify.access", "grant", "--conn-id", "redshift"],
                          env={**os.environ, "AIRFLOW_CONN_REDSHIFT": db.url}, cwd=ROOT, capture_output=True, text=True)


def login(db, role: str) -> str:
    """A new login user in ``role``; its URL on ``db``."""
    user = f"u_{uuid.uuid4().hex[:8]}"
    with db.connect() as conn:
        conn.execute(f"CREATE ROLE {user} LOGIN IN ROLE {role}")
    return db.url.replace("postgres@", f"{user}@", 1)


def stage(db, events=EVENTS) -> None:
    with db.connect() as conn, conn.cursor() as cur:
        cur.executemany(f"INSERT INTO staging_events ({', '.join(STAGING_EVENTS_COLUMNS)}) "
                        f"VALUES ({', '.join(['%s'] * len(STAGING_EVENTS_COLUMNS))})",
                        [expected_event_row(e) for e in events])


def allowed(url: str, sql: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(sql)
            return True
        except psycopg.errors.InsufficientPrivilege:
            return False


def test_analysts_read_the_star_schema_and_quality_history_and_nothing_else(warehouse):
    result = grant_command(warehouse)
    assert result.returncode == 0, result.stderr
    # Roles belong to the server, not the database: another test may have created them already.
    assert "sparkify_analyst (read: songplays, users, songs, artists, time, quality_results)" in result.stdout
    assert "granted on schema public" in result.stdout
    again = grant_command(warehouse)  # idempotent
    assert again.returncode == 0 and "created" not in again.stdout, again.stdout + again.stderr

    analyst = login(warehouse, access.ANALYST_ROLE)
    for table in ("songplays", "users", "songs", "artists", "time", "quality_results"):
        assert allowed(analyst, f"SELECT * FROM {table}"), table
        assert not allowed(analyst, f"INSERT INTO {table} SELECT * FROM {table}"), table
        assert not allowed(analyst, f"DELETE FROM {table}"), table
        assert not allowed(analyst, f"TRUNCATE {table}"), table
    private = [t for t in ALL_TABLES if t not in access.ANALYST_TABLES]
    assert {"staging_events", "staging_songs", "load_manifest", "schema_migrations"} <= set(private)
    for table in private:
        assert not allowed(analyst, f"SELECT * FROM {table}"), table
    assert not allowed(analyst, "CREATE TABLE public.mine (x INTEGER)")


def test_the_loader_role_runs_the_loads(warehouse, monkeypatch):
    assert grant_command(warehouse).returncode == 0
    loader = login(warehouse, access.LOADER_ROLE)
    stage(warehouse)
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT", loader)
    context = make_context(at(10))
    assert LoadFactOperator(task_id="f", table="songplays", select="load/songplays.sql").execute(context) > 0
    assert LoadDimensionOperator(task_id="u", table="users", select="load/users.sql").execute(context) > 0
    assert allowed(loader, "DELETE FROM staging_events WHERE ts < 0")
    assert not allowed(loader, "DROP TABLE songplays")  # the tables' owner migrates; the loader loads


@pytest.mark.parametrize("personal_data", ["hash", "omit"])
def test_personal_data_can_be_loaded_hashed_or_omitted(warehouse, personal_data):
    stage(warehouse)
    context = make_context(at(10))
    LoadFactOperator(task_id="f", table="songplays", select="load/songplays.sql",
                     personal_data=personal_data).execute(context)
    LoadDimensionOperator(task_id="u", table="users", select="load/users.sql",
                          personal_data=personal_data).execute(context)
    kept = warehouse.query("SELECT user_id, gender, level FROM users ORDER BY user_id")
    names = warehouse.query("SELECT first_name, last_name FROM users ORDER BY user_id")
    places = warehouse.query("SELECT DISTINCT location, user_agent FROM songplays")
    source = {e["userId"]: e for e in EVENTS if e["userId"]}
    assert kept and all(level in ("free", "paid") and gender in ("F", "M") for _, gender, level in kept)
    if personal_data == "omit":
        assert set(names) == {(None, None)} and set(places) == {(None, None)}
    else:
        def md5(text: str) -> str:
            return hashlib.md5(text.encode("utf-8")).hexdigest()

        expected_names = {(md5(e["firstName"]), md5(e["lastName"])) for e in source.values()}
        assert set(names) <= expected_names and len(names) == len(kept)
        assert all(len(loc) == 32 and len(agent) == 32 for loc, agent in places)
        assert {loc for loc, _ in places} <= {md5(e["location"]) for e in EVENTS if e["location"]}


def test_an_unknown_personal_data_mode_fails_before_any_sql(warehouse):
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="personal_data='mask'"):
        LoadFactOperator(task_id="f", table="songplays", select="load/songplays.sql",
                         personal_data="mask").execute(make_context(at(10)))
