"""LoadFactOperator and LoadDimensionOperator on PostgreSQL, from small hand-made staging rows."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sparkify.operators import LoadDimensionOperator, LoadFactOperator

from .helpers import (
    EVENTS,
    SONGS,
    STAGING_EVENTS_COLUMNS,
    STAGING_SONGS_COLUMNS,
    at,
    event,
    expected_event_row,
    expected_song_row,
    make_context,
)

SONGPLAY_COLUMNS = "songplay_id, start_time, user_id, level, song_id, artist_id, session_id, location, user_agent"


def insert(db, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    placeholders = ", ".join(["%s"] * len(columns))
    with db.connect() as conn, conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows)


def stage_events(db, events) -> None:
    insert(db, "staging_events", STAGING_EVENTS_COLUMNS, [expected_event_row(e) for e in events])


def stage_songs(db, songs) -> None:
    insert(db, "staging_songs", STAGING_SONGS_COLUMNS, [expected_song_row(s) for s in songs])


def load_fact(hour: datetime, hours: float = 1) -> int:
    return LoadFactOperator(task_id="Load_songplays_fact_table", table="songplays",
                            select="load/songplays.sql").execute(make_context(hour, hours=hours))


def load_dim(table: str, hour: datetime | None = None, hours: float = 1, **kwargs) -> int:
    args = {"mode": "upsert", **kwargs}
    return LoadDimensionOperator(task_id=f"Load_{table}", table=table, select=f"load/{table}.sql",
                                 **args).execute(make_context(hour or at(10), hours=hours))


def songplay_id(e: dict) -> str:
    return hashlib.md5(f"{e['sessionId']}-{e['itemInSession']}-{e['ts']}".encode()).hexdigest()


def start_time(e: dict) -> datetime:
    return datetime(1970, 1, 1) + timedelta(milliseconds=e["ts"])


def songplay(e: dict, song_id: str | None = None, artist_id: str | None = None) -> tuple:
    return (songplay_id(e), start_time(e), int(e["userId"]), e["level"], song_id, artist_id, e["sessionId"],
            e["location"], e["userAgent"])


def songplays(db) -> list[tuple]:
    return db.query(f"SELECT {SONGPLAY_COLUMNS} FROM songplays ORDER BY start_time, songplay_id")


def versions(db, table: str, key: str) -> dict:
    """Each row's xmin: it changes when the row is written again, so untouched rows keep theirs."""
    return dict(db.query(f"SELECT {key}, xmin::text FROM {table}"))


# -- songplays ------------------------------------------------------------------------------------------


def test_songplays_of_the_interval_are_replaced(warehouse):
    stage_events(warehouse, EVENTS)
    stage_songs(warehouse, SONGS.values())
    e2, e3, e5, e6 = EVENTS[1], EVENTS[2], EVENTS[4], EVENTS[5]
    hour10 = [songplay(e2, "SOAAAAA000001", "ARA0001"), songplay(e3),
              songplay(e5, "SOAAAAA000001", "ARA0001")]  # e5's length is 0.4 ms off: still a match
    hour11 = [songplay(e6, "SOBBBBB000002", "ARB0002")]  # title 66 and artist 4.6 matched as text

    assert load_fact(at(10)) == 3
    assert songplays(warehouse) == hour10
    assert songplays(warehouse)[0][1] == datetime(2018, 11, 4, 10, 6, 0, 456000)  # milliseconds kept
    assert load_fact(at(11)) == 1
    assert songplays(warehouse) == hour10 + hour11

    before = songplays(warehouse)
    assert load_fact(at(10)) == 3  # a rerun: same ids, same rows
    assert songplays(warehouse) == before

    # The interval's rows are replaced by what staging now says; other intervals are untouched.
    with warehouse.connect() as conn:
        conn.execute("DELETE FROM staging_events WHERE sessionid = 200")
        conn.execute("DELETE FROM staging_events WHERE ts >= %s", (EVENTS[5]["ts"],))
    assert load_fact(at(10)) == 2
    assert songplays(warehouse) == [hour10[0], hour10[2]] + hour11
    assert load_fact(at(12)) == 0  # a quiet hour loads nothing and succeeds


def test_songplays_match_songs_exactly_on_text_and_within_a_millisecond(warehouse):
    stage_songs(warehouse, SONGS.values())
    plays = [
        event(at(10, 1), item=1, song="Song A", artist="Artist A", length=200.5),  # exact
        event(at(10, 2), item=2, song="Song A", artist="Artist A", length=200.5009),  # 0.9 ms off: match
        event(at(10, 3), item=3, song="Song A", artist="Artist A", length=200.5025),  # 2.5 ms off: no match
        event(at(10, 4), item=4, song="song a", artist="Artist A", length=200.5),  # case differs
        event(at(10, 5), item=5, song="Spaced Title", artist="Björk", length=301.0),  # spaces trimmed
        event(at(10, 6), item=6, song=" Spaced Title ", artist="Björk", length=301.0),  # as stored
        event(at(10, 7), item=7, page="Home"),  # not a play
    ]
    stage_events(warehouse, plays)
    load_fact(at(10))
    matched = [row[4] for row in songplays(warehouse)]
    assert matched == ["SOAAAAA000001", "SOAAAAA000001", None, None, None, "SOCCCCC000003"]


def test_songplays_pick_one_song_when_several_match(warehouse):
    twin = {**SONGS["song_data/A/A/A/TRAAAAA128F000001.json"], "song_id": "SOAAAAA000000", "artist_id": "ARZ"}
    stage_songs(warehouse, [*SONGS.values(), twin])
    stage_events(warehouse, [EVENTS[1]])
    load_fact(at(10))
    assert [row[4:6] for row in songplays(warehouse)] == [("SOAAAAA000000", "ARZ")]  # the smallest song_id


# -- users ---------------------------------------------------------------------------------------------------


def users(db) -> list[tuple]:
    return db.query("SELECT user_id, first_name, last_name, gender, level FROM users ORDER BY user_id")


def test_users_come_from_their_latest_event(warehouse):
    stage_events(warehouse, EVENTS)
    assert load_dim("users", at(10)) == 2
    # user 10 went from free to paid within the hour (any page counts); the logged-out "" is no user.
    assert users(warehouse) == [(10, "Lily", "Koch", "F", "paid"), (20, "Émile", "Noël", "M", "paid")]


def test_an_older_interval_loaded_late_does_not_roll_a_user_back(warehouse):
    stage_events(warehouse, EVENTS)
    load_dim("users", at(10))
    load_dim("users", at(11))
    assert users(warehouse) == [(10, "Lily", "Koch", "F", "paid"), (20, "Émile", "Noël", "M", "paid")]
    paid = versions(warehouse, "users", "user_id")

    # A backfill of hour 9, where user 20 was still free under a maiden name, and user 30 appears.
    older = [
        event(at(9, 10), user="20", level="free", session=150, first="Émile", last="Martin", gender="M"),
        event(at(9, 20), user="30", level="free", session=160, first="Ann", last="Banks"),
    ]
    stage_events(warehouse, older)
    load_dim("users", at(9))
    assert users(warehouse) == [(10, "Lily", "Koch", "F", "paid"), (20, "Émile", "Noël", "M", "paid"),
                                (30, "Ann", "Banks", "F", "free")]
    assert versions(warehouse, "users", "user_id")[20] == paid[20]  # not even rewritten

    # A newer interval does change the level (a downgrade).
    stage_events(warehouse, [event(at(13), user="10", page="Home", level="free", session=500)])
    load_dim("users", at(13))
    assert users(warehouse)[0] == (10, "Lily", "Koch", "F", "free")

    # Rerunning any hour changes nothing.
    before = warehouse.query("SELECT * FROM users ORDER BY user_id")
    for hour in (9, 10, 11, 13):
        load_dim("users", at(hour))
    assert warehouse.query("SELECT * FROM users ORDER BY user_id") == before


def test_two_events_of_a_user_at_the_same_ts_give_one_row(warehouse):
    same = at(10, 30)
    stage_events(warehouse, [event(same, user="40", page="Home", session=7, item=1),
                             event(same, user="40", page="NextSong", session=7, item=2, song="x", artist="y",
                                   length=1.0)])
    assert load_dim("users", at(10)) == 1
    assert users(warehouse) == [(40, "Lily", "Koch", "F", "free")]


# -- songs and artists -----------------------------------------------------------------------------------


def test_songs_upsert_writes_only_new_or_changed_rows(warehouse):
    stage_songs(warehouse, SONGS.values())
    assert load_dim("songs") == 3
    assert warehouse.query("SELECT song_id, title, artist_id, year, duration FROM songs ORDER BY song_id") == [
        ("SOAAAAA000001", "Song A", "ARA0001", 0, 200.5), ("SOBBBBB000002", "66", "ARB0002", 2001, 99.0),
        ("SOCCCCC000003", " Spaced Title ", "ARC0003", 1997, 301.0)]
    first = versions(warehouse, "songs", "song_id")

    load_dim("songs")
    assert versions(warehouse, "songs", "song_id") == first  # nothing new: nothing written

    with warehouse.connect() as conn:
        conn.execute("UPDATE staging_songs SET title = 'Song A (Live)' WHERE song_id = 'SOAAAAA000001'")
    stage_songs(warehouse, [{**SONGS["song_data/A/A/A/TRAAAAA128F000001.json"], "song_id": "SONEW00000004"}])
    assert load_dim("songs") == 4
    after = versions(warehouse, "songs", "song_id")
    assert after["SOBBBBB000002"] == first["SOBBBBB000002"] and after["SOCCCCC000003"] == first["SOCCCCC000003"]
    assert after["SOAAAAA000001"] != first["SOAAAAA000001"]
    assert warehouse.scalar("SELECT title FROM songs WHERE song_id = 'SOAAAAA000001'") == "Song A (Live)"


def artist_song(song_id: str, artist_id: str, name: str, location: str | None, lat: float | None,
                lon: float | None) -> dict:
    return {"num_songs": 1, "artist_id": artist_id, "artist_latitude": lat, "artist_longitude": lon,
            "artist_location": location, "artist_name": name, "song_id": song_id, "title": f"T{song_id}",
            "duration": 100.0, "year": 2000}


ARTIST_SONGS = [
    # ARX: the only song with coordinates wins over those with a location.
    artist_song("SOX1", "ARX", "X (no coords)", "Paris", None, None),
    artist_song("SOX2", "ARX", "X (coords)", "Berlin", 52.5, 13.4),
    artist_song("SOX3", "ARX", "X (nothing)", "", None, None),
    # ARY: no coordinates anywhere: a non-empty location wins.
    artist_song("SOY1", "ARY", "Y (empty)", "", None, None),
    artist_song("SOY2", "ARY", "Y (null)", None, None, None),
    artist_song("SOY3", "ARY", "Y (located)", "Oslo", None, None),
    # ARZ: two complete rows: the smallest song_id wins.
    artist_song("SOZ2", "ARZ", "Z two", "Rome", 41.9, 12.5),
    artist_song("SOZ1", "ARZ", "Z one", "Rome", 41.9, 12.49),
]
ARTISTS_EXPECTED = [("ARX", "X (coords)", "Berlin", 52.5, 13.4), ("ARY", "Y (located)", "Oslo", None, None),
                    ("ARZ", "Z one", "Rome", 41.9, 12.49)]


def artists(db) -> list[tuple]:
    return db.query("SELECT artist_id, name, location, latitude, longitude FROM artists ORDER BY artist_id")


@pytest.mark.parametrize("order", [1, -1], ids=["as-listed", "reversed"])
def test_artists_pick_is_deterministic(warehouse, order):
    stage_songs(warehouse, ARTIST_SONGS[::order])
    assert load_dim("artists") == 3
    assert artists(warehouse) == ARTISTS_EXPECTED


def test_artists_upsert_writes_only_new_or_changed_rows(warehouse):
    stage_songs(warehouse, ARTIST_SONGS)
    load_dim("artists")
    first = versions(warehouse, "artists", "artist_id")
    load_dim("artists")
    assert versions(warehouse, "artists", "artist_id") == first

    stage_songs(warehouse, [artist_song("SOY0", "ARY", "Y (better)", "Bergen", 60.4, 5.3),
                            artist_song("SOW1", "ARW", "W", "", None, None)])
    assert load_dim("artists") == 4
    after = versions(warehouse, "artists", "artist_id")
    assert after["ARX"] == first["ARX"] and after["ARZ"] == first["ARZ"] and after["ARY"] != first["ARY"]
    assert artists(warehouse) == [("ARW", "W", "", None, None), ARTISTS_EXPECTED[0],
                                  ("ARY", "Y (better)", "Bergen", 60.4, 5.3), ARTISTS_EXPECTED[2]]


# -- time ----------------------------------------------------------------------------------------------------


def test_time_weekday_is_0_on_sunday_and_week_is_iso(warehouse, monkeypatch):
    moments = [
        datetime(2018, 11, 4, 10, 6, 0, 456000),  # Sunday
        datetime(2018, 11, 10, 23, 59, 59),  # Saturday
        datetime(2018, 12, 31, 0, 0),  # Monday of ISO week 1 of 2019
        datetime(2018, 11, 5, 0, 0),  # Monday
    ]
    rows = [(f"id{i}", m, 1, "free", None, None, i, "x", "y") for i, m in enumerate(moments)]
    rows.append(("dup", moments[0], 2, "paid", None, None, 99, "x", "y"))  # same start_time, one time row
    insert(warehouse, "songplays", tuple(SONGPLAY_COLUMNS.split(", ")), rows)

    start = datetime(2018, 11, 1)
    monkeypatch.setenv("SPARKIFY_MAX_INTERVAL_DAYS", "61")  # two months in one load, wider than the default
    assert load_dim("time", start, hours=24 * 61, mode="truncate_insert", scope_column="start_time") == 4
    assert warehouse.query("SELECT * FROM time ORDER BY start_time") == [
        (datetime(2018, 11, 4, 10, 6, 0, 456000), 10, 4, 44, 11, 2018, 0),
        (datetime(2018, 11, 5, 0, 0), 0, 5, 45, 11, 2018, 1),
        (datetime(2018, 11, 10, 23, 59, 59), 23, 10, 45, 11, 2018, 6),
        (datetime(2018, 12, 31, 0, 0), 0, 31, 1, 12, 2018, 1),
    ]

    # One hour's rebuild touches that hour only, and a rerun gives the same table.
    with warehouse.connect() as conn:
        conn.execute("UPDATE time SET hour = 99 WHERE start_time = '2018-11-10 23:59:59'")
    before = warehouse.query("SELECT * FROM time ORDER BY start_time")
    assert load_dim("time", datetime(2018, 11, 4, 10), mode="truncate_insert", scope_column="start_time") == 1
    assert warehouse.query("SELECT * FROM time ORDER BY start_time") == before


# -- bad arguments -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"mode": "bogus"}, "mode='bogus'"),
        ({"mode": "merge"}, "mode='merge'"),
        ({"table": "staging_events"}, "table='staging_events' is not a star table"),
        ({"schema": "x;drop"}, "schema='x;drop'"),
        ({"scope_column": "start_time; --"}, "scope_column='start_time; --'"),
    ],
)
def test_bad_arguments_fail_without_touching_the_table(warehouse, kwargs, named):
    stage_songs(warehouse, SONGS.values())
    args = {"table": "songs", "select": "load/songs.sql", "mode": "upsert", **kwargs}
    with pytest.raises(AirflowFailException, match=re.escape(named)):
        LoadDimensionOperator(task_id="Load_song_dim_table", **args).execute(make_context(at(10)))
    assert warehouse.scalar("SELECT COUNT(*) FROM songs") == 0


def test_fact_load_failure_rolls_back(warehouse):
    stage_events(warehouse, EVENTS)
    load_fact(at(10))
    before = songplays(warehouse)
    with warehouse.connect() as conn:  # a user id that is not an integer makes the INSERT fail
        conn.execute("UPDATE staging_events SET userid = 'abc' WHERE sessionid = 200")
    with pytest.raises(Exception, match="invalid input syntax for type integer"):
        load_fact(at(10))
    assert songplays(warehouse) == before  # the DELETE of the interval was rolled back too
