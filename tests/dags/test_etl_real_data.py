"""sparkify_etl end to end over the real data: 48 hourly runs, table by table against the contract.

The DAG runs with ``dag.test()`` against a real PostgreSQL and moto's S3 server, then every star
table must equal, row for row, what ``tests/reference.py`` computes from the raw files; reruns
must leave every table byte-identical; a quiet hour must succeed with no songplays. The 48 hourly
runs are the session's ``hourly_runs_templates`` (tests/dags/conftest.py: each run must succeed),
which tests/backfill/test_wide_intervals.py extends to 72 and compares a three-day run with.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from tests import reference
from tests.helpers import hours, load_dag

from conftest import aws_connection, create_database, real_data

from .conftest import HOURLY_CHECKPOINTS, HOURLY_FROM, faster_dag_test, patched_for_dag_test, run_hours

WINDOW = (HOURLY_FROM, HOURLY_CHECKPOINTS[0])  # [2018-11-05, 2018-11-07): 48 hourly runs

# Pinned by hand, from a throwaway script independent of tests/reference.py: json.loads on each
# line of log_data/2018/11/2018-11-0{5,6}-events.json and on every song_data/**/*.json file,
# then plain counts (a NextSong event "matches" when some song has str(title) == song,
# str(artist_name) == artist and |duration - length| <= 0.001).
NEXT_SONG_EVENTS = {"2018-11-05": 356, "2018-11-06": 154}  # of 408 and 184 events
SONGPLAYS = 510  # 356 + 154; every (sessionId, itemInSession, ts) distinct, every ts distinct
MATCHED_SONGPLAYS = 30
PAID_SONGPLAYS = 399
USERS = 44  # distinct non-empty userId over both days (42 of them have a NextSong event)
SONGS = 14_896
ARTISTS = 9_553  # distinct artist_id over all song files
QUIET_HOURS = (datetime(2018, 11, 5, 22), datetime(2018, 11, 6, 0), datetime(2018, 11, 6, 1))  # no event at all

TABLES_TO_CHECKSUM = (*reference.STAR_TABLES, "staging_events", "staging_songs")


@pytest.fixture(scope="module", autouse=True)
def _faster_dag_test():
    with faster_dag_test():  # its ~60 dag.test() runs, without what dag.test() repeats needlessly
        yield


@pytest.fixture(scope="module")
def expected() -> dict[str, list[tuple]]:
    data = real_data()
    events = reference.read_events(reference.event_log_paths(data, *WINDOW))
    songs = reference.read_songs(reference.song_paths(data))
    return reference.expected_tables(events, songs, *WINDOW)


@pytest.fixture
def etl(real_songs_warehouse_template, pg_server, airflow_db, monkeypatch):
    """(dag, warehouse, bucket name): a clone of the songs template as the ``redshift`` connection."""
    return etl_on(real_songs_warehouse_template[0], real_songs_warehouse_template, pg_server, monkeypatch)


@pytest.fixture
def etl_after_window(hourly_runs_templates, real_songs_warehouse_template, pg_server, airflow_db, monkeypatch):
    """The same on a clone of the warehouse the 48 hourly runs of WINDOW loaded."""
    template = hourly_runs_templates.names[WINDOW[1]]
    return etl_on(template, real_songs_warehouse_template, pg_server, monkeypatch)


def etl_on(template: str, real_songs_template, pg_server, monkeypatch):
    _, bucket, endpoint = real_songs_template
    db = create_database(pg_server, template=template)
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT", db.url)
    monkeypatch.setenv("AIRFLOW_CONN_AWS", aws_connection(endpoint))
    return patched_for_dag_test(load_dag(), monkeypatch, fail_fast=True), db, bucket


def read_table(db, table: str) -> list[tuple]:
    columns = ", ".join(reference.COLUMNS[table])
    return db.query(f"SELECT {columns} FROM {table}")


def checksums(db) -> dict[str, tuple[int, str]]:
    """Row count and MD5 of every row's text, in order, for each table."""
    out = {}
    for table in TABLES_TO_CHECKSUM:
        out[table] = db.query(
            f"SELECT COUNT(*), MD5(COALESCE(STRING_AGG(t::text, E'\\n' ORDER BY t::text), '')) FROM {table} t"
        )[0]
    return out


def test_two_days_of_hourly_runs_match_the_contract_and_reruns_change_nothing(etl_after_window, expected):
    dag, db, bucket = etl_after_window
    # The warehouse of the 48 hourly runs, each of which ran and recorded its checks.
    assert [start for (start,) in db.query("SELECT DISTINCT interval_start FROM quality_results ORDER BY 1")] == \
        hours(*WINDOW)

    for table in reference.STAR_TABLES:
        difference = reference.describe_difference(table, expected[table], read_table(db, table))
        assert not difference, difference

    # Totals pinned by hand, so that the reference itself is checked too.
    assert len(expected["songplays"]) == SONGPLAYS == sum(NEXT_SONG_EVENTS.values())
    assert sum(1 for r in expected["songplays"] if r[4] is not None) == MATCHED_SONGPLAYS
    assert len(expected["users"]) == USERS
    assert len(expected["songs"]) == SONGS
    assert len(expected["artists"]) == ARTISTS
    assert len(expected["time"]) == SONGPLAYS
    assert db.scalar("SELECT COUNT(*) FROM songplays") == SONGPLAYS
    assert db.scalar("SELECT COUNT(*) FROM songplays WHERE song_id IS NOT NULL") == MATCHED_SONGPLAYS
    assert db.scalar("SELECT COUNT(*) FROM songplays WHERE level = 'paid'") == PAID_SONGPLAYS
    for day, count in NEXT_SONG_EVENTS.items():
        start = datetime.fromisoformat(day)
        assert db.scalar(
            "SELECT COUNT(*) FROM songplays WHERE start_time >= %s AND start_time < %s",
            (start, start + timedelta(days=1)),
        ) == count, day
    assert db.scalar("SELECT COUNT(*) FROM users") == USERS
    assert db.scalar("SELECT COUNT(*) FROM songs") == SONGS
    assert db.scalar("SELECT COUNT(*) FROM artists") == ARTISTS
    assert db.scalar("SELECT COUNT(*) FROM time") == SONGPLAYS
    # Every run passed its checks, and recorded them.
    assert db.scalar("SELECT COUNT(*) FROM quality_results WHERE NOT passed AND severity = 'error'") == 0

    before = checksums(db)
    run_hours(dag, bucket, [datetime(2018, 11, 5, 16), datetime(2018, 11, 6, 20), QUIET_HOURS[0]])
    assert checksums(db) == before


def test_quiet_hour_on_a_fresh_warehouse_succeeds_with_no_songplays(etl):
    dag, db, bucket = etl
    run_hours(dag, bucket, [QUIET_HOURS[1]])

    assert db.scalar("SELECT COUNT(*) FROM songplays") == 0
    assert db.scalar("SELECT COUNT(*) FROM users") == 0
    assert db.scalar("SELECT COUNT(*) FROM time") == 0
    # The dimensions from the songs are loaded whatever the hour.
    assert db.scalar("SELECT COUNT(*) FROM songs") == SONGS
    assert db.scalar("SELECT COUNT(*) FROM artists") == ARTISTS
