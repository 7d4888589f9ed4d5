"""Late data without a person, on a real PostgreSQL and moto's S3 server: a day's file rewritten after
its hours were loaded is noticed by the next day's first run (its ``late_keys``), which brings every
hour of that day up to date; the result equals a clean load of the final files."""

from __future__ import annotations

from tests.operators.helpers import EVENTS, at, event, ndjson, put_sources
from tests.warehouse.helpers import DAY_B, EVENTS_B, KEY_A, KEY_B, run_hour, sums

from conftest import create_bucket, create_database
from sparkify.tables import STAR_TABLES

HOURS_A = (at(10), at(11))
HOUR_B = DAY_B.replace(hour=9)


def corrected_day_a() -> list[dict]:
    """Day A as delivered again after its hours were loaded: its last NextSong event's level
    corrected (user 20's latest event: paid to free), one earlier NextSong event withdrawn, and a late NextSong
    event appended for 10:44 that becomes its user's latest (so the user's level changes too)."""
    events = [dict(e) for e in EVENTS]
    next_songs = [i for i, e in enumerate(events) if e["page"] == "NextSong"]
    latest = max(next_songs, key=lambda i: events[i]["ts"])
    events[latest]["level"] = "paid" if events[latest]["level"] == "free" else "free"
    late = event(at(10, 44), user="10", level="free", session=999, item=5, song="Late Song", artist="Late Artist",
                 length=123.0)
    withdrawn = next(i for i in next_songs if events[i]["userId"] == late["userId"])
    del events[withdrawn]
    return [*events, late]


def next_songs(events: list[dict], start, end) -> int:
    return sum(1 for e in events if e["page"] == "NextSong"
               and start.timestamp() * 1000 <= e["ts"] < end.timestamp() * 1000)


def counts(db) -> dict[str, int]:
    return {t: db.scalar(f"SELECT COUNT(*) FROM {t}") for t in ("songplays", "users", "time")}


def test_a_day_rewritten_after_it_was_loaded_is_refreshed_by_the_next_days_run(
    warehouse, bucket, pg_server, moto_server, tables_template, monkeypatch
):
    put_sources(bucket, events=EVENTS, songs=False)
    bucket.put(KEY_B, ndjson(EVENTS_B))
    for hour in HOURS_A:
        run_hour(bucket, KEY_A, hour)
    before = counts(warehouse)
    assert warehouse.scalar("SELECT level FROM users WHERE user_id = 20") == "paid"

    final_a = corrected_day_a()
    bucket.put(KEY_A, ndjson(final_a))  # late and corrected events, after day A's hours were loaded
    staged = run_hour(bucket, KEY_B, HOUR_B, late_keys=(KEY_A,))
    assert staged["changed_objects"] == [KEY_A]
    assert staged["refresh_range"] == ["2018-11-04T00:00:00", "2018-11-05T00:00:00"]
    after = counts(warehouse)
    print(f"[late data] before the rewrite was noticed: {before}; after one run of the next day: {after}")

    # A clean load of the final files, the same hours.
    clean_bucket = create_bucket(moto_server.endpoint)
    put_sources(clean_bucket, events=final_a, songs=False)
    clean_bucket.put(KEY_B, ndjson(EVENTS_B))
    clean = create_database(pg_server, template=tables_template)
    with monkeypatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_REDSHIFT", clean.url)
        for hour in HOURS_A:
            run_hour(clean_bucket, KEY_A, hour)
        run_hour(clean_bucket, KEY_B, HOUR_B)
    assert sums(warehouse, STAR_TABLES) == sums(clean, STAR_TABLES)
    assert after["songplays"] == next_songs(final_a, at(0), DAY_B) + next_songs(EVENTS_B, HOUR_B, at(10, day=DAY_B))
    assert warehouse.scalar("SELECT level FROM users WHERE user_id = 20") == "free"  # the corrected latest event

    # Nothing changed since: a rerun stages nothing again and leaves every table as it is.
    settled = sums(warehouse, STAR_TABLES)
    again = run_hour(bucket, KEY_B, HOUR_B, late_keys=(KEY_A,))
    assert again["staged_objects"] == 0
    assert sums(warehouse, STAR_TABLES) == settled


def test_an_earlier_days_file_never_staged_here_is_left_alone(warehouse, bucket):
    put_sources(bucket, events=EVENTS, songs=False)
    bucket.put(KEY_B, ndjson(EVENTS_B))
    staged = run_hour(bucket, KEY_B, HOUR_B, late_keys=(KEY_A, "log_data/2018/11/2018-11-03-events.json"))
    assert staged["staged_objects"] == 1 and staged["changed_objects"] == []
    assert warehouse.query("SELECT DISTINCT source_key FROM staging_events") == [(KEY_B,)]
