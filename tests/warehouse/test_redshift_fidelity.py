"""The PostgreSQL stand-in refuses and compares as Redshift does (issue 19), on a real PostgreSQL.

* Locks: every LOCK is ACCESS EXCLUSIVE (Redshift's only mode), and the one lock order of
  docs/backfills.md leaves no cycle: the issue's three-transaction deadlock is reproduced with the
  old statements (PostgreSQL detects it) and does not form with the pipeline's.
* Widths count bytes: a multibyte value exactly at a column's width in bytes is accepted, one byte
  more is refused, at staging with the S3 object, line and column named, and by every star table.
* Trailing blanks are insignificant in comparisons (song matching, keys, changed rows, uniqueness),
  and stored values keep them.
"""

from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException
from tests.operators.helpers import EVENTS_KEY, JSONPATHS_KEY, SONGS, at, event, make_context, ndjson, put_sources

from sparkify.operators import DataQualityOperator, LoadDimensionOperator, LoadFactOperator, StageToRedshiftOperator
from sparkify.warehouse import Session as Session_
from sparkify.warehouse import render, split

SCHEMA = "public"


def statements(template: str, **context) -> list[str]:
    return split(render(template, dialect="postgres", schema=SCHEMA, **context))


def locks_of(db, pid: int) -> set[tuple[str, str, bool]]:
    """(table, mode, granted) of every table lock ``pid`` holds or waits for."""
    return {tuple(r) for r in db.query(
        "SELECT c.relname, l.mode, l.granted FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "WHERE l.pid = %s AND l.locktype = 'relation' AND c.relnamespace = 'public'::regnamespace", (pid,))}


def wait_until(predicate, what: str, timeout: float = 60) -> None:
    """Poll ``predicate`` until it holds (a state to reach, not a speed to meet)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


class Session(threading.Thread):
    """A transaction on its own connection, in a thread: runs its steps, then commits."""

    def __init__(self, db, steps: list[str], *, autocommit: bool = False) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg.connect(db.url, autocommit=autocommit)
        self.pid = self.conn.info.backend_pid
        self.steps = steps
        self.error: Exception | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            for sql in self.steps:
                self.conn.execute(sql)
            self.conn.commit()
        except psycopg.Error as err:
            self.error = err
            self.conn.rollback()
        finally:
            self.done.set()


# -- locks --------------------------------------------------------------------------------------------------


def test_every_lock_is_access_exclusive_on_postgresql_as_on_redshift(warehouse):
    holder = psycopg.connect(warehouse.url)
    try:
        for sql in (*statements("stage/lock_manifest.sql", with_refresh=True),
                    *statements("refresh/owed.sql", table="songplays")[:1],
                    statements("load/modes/upsert.sql", table="songs", columns=("song_id",), key=("song_id",),
                               text_columns=frozenset({"song_id"}), scope_column=None,
                               select="load/songs.sql")[0]):
            holder.execute(sql)
        held = locks_of(warehouse, holder.info.backend_pid)
        for table in ("load_refresh", "load_manifest", "songplays", "songs"):
            assert (table, "AccessExclusiveLock", True) in held, held
        assert not any(mode == "ShareRowExclusiveLock" for _, mode, _ in held), held
    finally:
        holder.close()


def _old_and_new(db, *, old: bool) -> list[Session]:
    """The issue's cycle: a songplays load (B) holds load_refresh and waits for songplays; the checks
    (A) read songplays, then the manifest; a staging (C) holds the manifest, then wants load_refresh.
    ``old``: the statements as they were (the checks in one transaction; staging locking the manifest
    first); else the pipeline's (each check its own transaction; staging taking load_refresh first)."""
    refresh_and_songplays = statements("refresh/owed.sql", table="songplays")[0]
    b = Session(db, [statements("refresh/note.sql", tables=())[0], "SELECT pg_sleep(0.5)",
                     refresh_and_songplays])
    check_songplays = "SELECT COUNT(*) FROM public.songplays"
    check_manifest = "SELECT COUNT(*) FROM public.load_manifest"
    a = Session(db, [check_songplays, "SELECT pg_sleep(1)", check_manifest], autocommit=not old)
    stage = statements("stage/lock_manifest.sql", with_refresh=not old)
    c = Session(db, [*stage, "SELECT pg_sleep(0.5)", statements("refresh/note.sql", tables=())[0]])
    return [a, b, c]


@pytest.mark.parametrize("old", [True, False], ids=["old statements deadlock", "the lock order does not"])
def test_the_checks_staging_and_load_cycle_of_the_issue(warehouse, old):
    a, b, c = _old_and_new(warehouse, old=old)
    a.start()  # A reads songplays first
    wait_until(lambda: ("songplays", "AccessShareLock", True) in locks_of(warehouse, a.pid) or a.done.is_set(),
               "the checks read songplays")
    c.start()
    if old:
        wait_until(lambda: ("load_manifest", "AccessExclusiveLock", True) in locks_of(warehouse, c.pid),
                   "the old staging holds the manifest")
    b.start()
    for session in (a, b, c):
        session.join(120)
        session.conn.close()
    errors = [s.error for s in (a, b, c) if s.error is not None]
    if old:
        assert any(isinstance(e, psycopg.errors.DeadlockDetected) for e in errors), errors
    else:
        assert errors == []
        assert all(s.done.is_set() for s in (a, b, c))


def test_a_staging_waiting_for_a_load_holds_no_manifest_lock(warehouse):
    """Staging takes load_refresh before load_manifest: while a load holds load_refresh, a staging
    waits holding nothing, so the checks and other stagings read and take the manifest meanwhile."""
    load = psycopg.connect(warehouse.url)
    try:
        load.execute(statements("refresh/owed.sql", table="songplays")[0])
        stage = Session(warehouse, statements("stage/lock_manifest.sql", with_refresh=True))
        stage.start()
        wait_until(lambda: ("load_refresh", "AccessExclusiveLock", False) in locks_of(warehouse, stage.pid),
                   "the staging waits for load_refresh")
        assert not any(table == "load_manifest" for table, _, _ in locks_of(warehouse, stage.pid))
        assert warehouse.scalar("SELECT COUNT(*) FROM load_manifest") == 0  # the manifest is readable
        load.commit()
        stage.join(60)
        assert stage.error is None and stage.done.is_set()
        stage.conn.close()
    finally:
        load.close()


def test_the_data_quality_checks_hold_no_lock_between_checks(warehouse, bucket, monkeypatch):
    """Each check is its own transaction: with a load holding songs, the checks on songplays still
    pass by it; they wait only for the table a check reads, holding nothing else meanwhile."""
    put_sources(bucket)
    stage = StageToRedshiftOperator(task_id="Stage_events", table="staging_events", s3_bucket=bucket.name,
                                    s3_key=EVENTS_KEY, json_format=f"s3://{bucket.name}/{JSONPATHS_KEY}",
                                    source_key_column="source_key", hour_counts=True)
    stage.execute(make_context(at(10)))
    seen: list[set] = []
    original = Session_.execute

    def spy(session, sql, params=None, **kwargs):
        connection = session.connection
        if connection.autocommit:  # the checks' reads: nothing held from one to the next
            pid = connection.info.backend_pid if hasattr(connection, "info") else connection.get_backend_pid()
            seen.append(locks_of(warehouse, pid))
        return original(session, sql, params, **kwargs)

    monkeypatch.setattr(Session_, "execute", spy)
    check = DataQualityOperator(task_id="Run_data_quality_checks",
                                source_keys=[EVENTS_KEY])
    with pytest.raises(AirflowFailException):  # nothing loaded yet: the reconciliations fail, as they must
        check.execute(make_context(at(10)))
    assert len(seen) > 10 and all(held == set() for held in seen), seen


# -- widths in bytes ----------------------------------------------------------------------------------------

STAGING_TEXT = {  # the JSON field of each staging text column and its width in bytes
    "staging_events": {"artist": ("artist", 65535), "auth": ("auth", 64), "firstname": ("firstName", 1024),
                       "gender": ("gender", 64), "lastname": ("lastName", 1024), "level": ("level", 64),
                       "location": ("location", 1024), "method": ("method", 16), "page": ("page", 256),
                       "song": ("song", 65535), "useragent": ("userAgent", 1024), "userid": ("userId", 64)},
    "staging_songs": {"artist_id": ("artist_id", 64), "artist_location": ("artist_location", 1024),
                      "artist_name": ("artist_name", 1024), "song_id": ("song_id", 64), "title": ("title", 1024)},
}
STAR_TEXT = {
    "songplays": {"songplay_id": 32, "level": 64, "song_id": 64, "artist_id": 64, "location": 1024,
                  "user_agent": 1024},
    "users": {"first_name": 1024, "last_name": 1024, "gender": 64, "level": 64},
    "songs": {"song_id": 64, "title": 1024, "artist_id": 64},
    "artists": {"artist_id": 64, "name": 1024, "location": 1024},
}


def multibyte(size: int) -> str:
    """Text of exactly ``size`` UTF-8 bytes, mostly two-byte characters (fewer characters than bytes)."""
    return "é" * (size // 2) + "a" * (size % 2)


def test_declared_widths_are_the_same_bytes_on_both_warehouses(warehouse):
    """Redshift counts VARCHAR widths in bytes; after migration 0005 PostgreSQL's declared widths are
    the same numbers and a CHECK on octet_length holds each column to them in bytes."""
    from sparkify import migrations

    redshift = "\n".join(s for m in migrations.migrations() for s in m.statements("redshift", SCHEMA))
    found = dict(((t, c), w) for t, c, w in warehouse.query(
        "SELECT table_name, column_name, character_maximum_length FROM information_schema.columns "
        "WHERE table_schema = 'public' AND data_type = 'character varying'"))
    checks = {name for (name,) in warehouse.query(
        "SELECT conname FROM pg_constraint WHERE contype = 'c' AND conname LIKE '%%\\_bytes'")}
    for table, columns in STAGING_TEXT.items():
        for column, (_, width) in columns.items():
            assert found[(table, column)] == width, (table, column)
            assert f"{table}_{column}_bytes" in checks
    for table, columns in STAR_TEXT.items():
        for column, width in columns.items():
            assert found[(table, column)] == width, (table, column)
            assert f"{table}_{column}_bytes" in checks
    # The Redshift rendering rebuilds the staging tables with the same widths.
    for column, width in (("location", 1024), ("useragent", 1024), ("title", 1024), ("artist_name", 1024)):
        assert any(line.split() == [column, f"VARCHAR({width}),"] or line.split() == [column, f"VARCHAR({width})"]
                   for line in redshift.splitlines()), column


@pytest.mark.parametrize("table,column", [(t, c) for t, cs in STAGING_TEXT.items() for c in cs])
def test_staging_accepts_a_value_at_its_width_in_bytes_and_refuses_one_byte_more(warehouse, bucket, table, column):
    field, width = STAGING_TEXT[table][column]
    if table == "staging_events":
        base = event(at(10, 5), song="Song A", artist="Artist A", length=200.5)
        key = EVENTS_KEY

        def stage():
            return StageToRedshiftOperator(
                task_id="Stage_events", table="staging_events", s3_bucket=bucket.name, s3_key=EVENTS_KEY,
                json_format=f"s3://{bucket.name}/{JSONPATHS_KEY}", source_key_column="source_key",
                hour_counts=True).execute(make_context(at(10)))
        put_sources(bucket, songs=False)
    else:
        key, base = next(iter(SONGS.items()))

        def stage():
            return StageToRedshiftOperator(
                task_id="Stage_songs", table="staging_songs", s3_bucket=bucket.name, s3_prefix="song_data",
                json_format="auto", dedupe_key="song_id", listing_period_hours=0).execute(make_context(at(10)))

    def put(value: str) -> None:
        obj = {**base, field: value}
        bucket.put(key, ndjson([{**base, "ts": base["ts"] - 1000}, obj]) if table == "staging_events"
                   else json.dumps(obj, ensure_ascii=True))

    put(multibyte(width + 1))
    with pytest.raises(AirflowFailException) as refused:
        stage()
    message = str(refused.value)
    line = 2 if table == "staging_events" else 1
    assert f"s3://{bucket.name}/{key}, line {line}: column {column}: text of {width + 1} bytes" in message, message
    assert warehouse.scalar(f"SELECT COUNT(*) FROM {table}") == 0  # nothing half-written

    put(multibyte(width))
    stage()
    stored = warehouse.scalar(f"SELECT MAX(OCTET_LENGTH({column})) FROM {table}")
    assert stored == width


@pytest.mark.parametrize("table,column", [(t, c) for t, cs in STAR_TEXT.items() for c in cs])
def test_star_columns_refuse_one_byte_over_their_width(warehouse, table, column):
    width = STAR_TEXT[table][column]
    required = {"songplays": {"songplay_id": "x", "start_time": "2018-11-04 10:00:00"},
                "users": {"user_id": 1, "last_event_ts": 0}, "songs": {"song_id": "S"},
                "artists": {"artist_id": "A"}}[table]

    def insert(value: str) -> None:
        row = {**required, column: value}
        with warehouse.connect() as conn:
            conn.execute(f"DELETE FROM {table}")
            conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
                         list(row.values()))

    insert(multibyte(width))  # accepted: exactly the width in bytes (fewer characters)
    with pytest.raises(psycopg.errors.CheckViolation, match=f"{table}_{column}_bytes"):
        insert(multibyte(width + 1))


# -- trailing blanks ----------------------------------------------------------------------------------------


def _load_all(hour, hours: float = 1) -> None:
    context = make_context(hour, hours=hours)
    LoadFactOperator(task_id="Load_songplays_fact_table", table="songplays", select="load/songplays.sql").execute(
        context)
    for table in ("users", "songs", "artists"):
        LoadDimensionOperator(task_id=f"Load_{table}", table=table, select=f"load/{table}.sql",
                              mode="upsert").execute(context)


def test_trailing_blanks_are_insignificant_in_comparisons_and_kept_in_storage(warehouse, bucket):
    """A song whose title carries a trailing blank matches an event whose song does not (and an
    artist name likewise); a song staged again with only trailing blanks changed is not a change;
    a key that differs only by trailing blanks is the same key; stored values keep their blanks."""
    song = {"num_songs": 1, "artist_id": "ARTB001", "artist_latitude": None, "artist_location": "Oslo ",
            "artist_longitude": None, "artist_name": "Blank Artist ", "duration": 150.0,
            "song_id": "SOTB00001", "title": "Trailing ", "year": 2000}
    play = event(at(10, 7), song="Trailing", artist="Blank Artist", length=150.0)
    bucket.put(JSONPATHS_KEY, json.dumps({"jsonpaths": [f"$['{k}']" for k in (
        "artist", "auth", "firstName", "gender", "itemInSession", "lastName", "length", "level", "location",
        "method", "page", "registration", "sessionId", "song", "status", "ts", "userAgent", "userId")]}))
    bucket.put(EVENTS_KEY, ndjson([play]))
    bucket.put("song_data/T/TB.json", json.dumps(song))
    stage_events = StageToRedshiftOperator(
        task_id="Stage_events", table="staging_events", s3_bucket=bucket.name, s3_key=EVENTS_KEY,
        json_format=f"s3://{bucket.name}/{JSONPATHS_KEY}", source_key_column="source_key", hour_counts=True)
    stage_songs = StageToRedshiftOperator(
        task_id="Stage_songs", table="staging_songs", s3_bucket=bucket.name, s3_prefix="song_data",
        json_format="auto", dedupe_key="song_id", listing_period_hours=0)
    stage_events.execute(make_context(at(10)))
    stage_songs.execute(make_context(at(10)))
    _load_all(at(10))

    assert warehouse.query("SELECT song_id, artist_id FROM songplays") == [("SOTB00001", "ARTB001")]
    assert warehouse.query("SELECT title FROM songs") == [("Trailing ",)]  # stored as it came
    assert warehouse.query("SELECT name, location FROM artists") == [("Blank Artist ", "Oslo ")]
    written = warehouse.query("SELECT xmin::text FROM songs")

    # The same song again with its title's blanks changed and its key padded: no change, no new key.
    bucket.put("song_data/T/TB.json", json.dumps({**song, "title": "Trailing   ", "song_id": "SOTB00001 "}))
    stage_songs.execute(make_context(at(11)))
    _load_all(at(11))
    assert warehouse.query("SELECT song_id, title FROM songs") == [("SOTB00001", "Trailing ")]
    assert warehouse.query("SELECT xmin::text FROM songs") == written  # not even rewritten

    # A uniqueness check counts values as Redshift does: two keys equal but for blanks are one value.
    with warehouse.connect() as conn:
        conn.execute("INSERT INTO songs (song_id, title) VALUES ('SOTB00001  ', 'copy')")
    check = DataQualityOperator(task_id="Run_data_quality_checks",
                                source_keys=[EVENTS_KEY])
    with pytest.raises(AirflowFailException, match="songs_song_id_unique_check"):
        check.execute(make_context(at(10)))


def test_the_redshift_rendering_leaves_comparisons_to_redshift():
    """Redshift ignores trailing blanks itself: its SQL compares the columns as they are (no RTRIM,
    which would defeat the join's co-location); PostgreSQL's trims both sides."""
    for dialect, trimmed in (("redshift", False), ("postgres", True)):
        sql = render("load/songplays.sql", dialect=dialect, schema=SCHEMA, personal_data="keep")
        assert ("RTRIM(s.title) = RTRIM(e.song)" in sql) is trimmed
        assert ("s.title = e.song" in sql) is not trimmed
