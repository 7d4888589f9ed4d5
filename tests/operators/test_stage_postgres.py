"""StageToRedshiftOperator on PostgreSQL (the local stand-in for Redshift) and moto's real S3 server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sparkify.operators import StageToRedshiftOperator

from .helpers import (
    EVENTS,
    EVENTS_KEY,
    JSONPATHS_KEY,
    SONGS,
    at,
    event,
    expected_event_row,
    expected_song_row,
    make_context,
    ndjson,
    put_sources,
    song_file,
    without_rss,
)

EVENT_COLUMNS = ("artist, auth, firstname, gender, iteminsession, lastname, length, level, location, method, page, "
                 "registration, sessionid, song, status, ts, useragent, userid, source_key")
SONG_COLUMNS = ("num_songs, artist_id, artist_latitude, artist_longitude, artist_location, artist_name, song_id, "
                "title, duration, year")


def stage_events(bucket, **kwargs) -> StageToRedshiftOperator:
    args = dict(
        task_id="Stage_events", table="staging_events", s3_bucket=bucket.name, s3_key=EVENTS_KEY,
        json_format=f"s3://{bucket.name}/{JSONPATHS_KEY}", source_key_column="source_key", hour_counts=True,
        fetch_threads=4,
    )
    return StageToRedshiftOperator(**{**args, **kwargs})


def stage_songs(bucket, **kwargs) -> StageToRedshiftOperator:
    args = dict(
        task_id="Stage_songs", table="staging_songs", s3_bucket=bucket.name, s3_prefix="song_data",
        json_format="auto", dedupe_key="song_id", listing_period_hours=0, fetch_threads=4,
    )
    return StageToRedshiftOperator(**{**args, **kwargs})


def events_rows(db) -> list[tuple]:
    return db.query(f"SELECT {EVENT_COLUMNS} FROM staging_events ORDER BY ts, sessionid, iteminsession")


def songs_rows(db) -> list[tuple]:
    return db.query(f"SELECT {SONG_COLUMNS} FROM staging_songs ORDER BY song_id")


def manifest(db) -> list[tuple]:
    return db.query("SELECT s3_key, source, etag, size_bytes, row_count, run_id FROM load_manifest ORDER BY s3_key")


def snapshot(db) -> dict[str, list[tuple]]:
    """Everything staging writes (load_listing's time aside)."""
    return {
        "staging_events": db.query("SELECT * FROM staging_events ORDER BY ts, sessionid, iteminsession"),
        "staging_songs": db.query("SELECT * FROM staging_songs ORDER BY song_id"),
        "load_manifest": db.query("SELECT * FROM load_manifest ORDER BY s3_key"),
        "load_manifest_hours": db.query("SELECT * FROM load_manifest_hours ORDER BY s3_key, hour_start"),
        "load_listing": db.query("SELECT prefix, object_count FROM load_listing"),
    }


def head(bucket, key: str) -> tuple[str, int]:
    response = bucket.client.head_object(Bucket=bucket.name, Key=key)
    return response["ETag"].strip('"'), response["ContentLength"]


def by_song_id(rows):
    return sorted(rows, key=lambda row: row[6])


def sorted_events(events):
    return sorted(events, key=lambda e: (e["ts"], e["sessionId"], e["itemInSession"]))


CONTEXT = make_context(at(10), run_id="scheduled__2018-11-04T10:00:00+00:00")


# -- what a first run stages ------------------------------------------------------------------------


def test_events_rows_equal_the_json(warehouse, bucket):
    put_sources(bucket, songs=False)
    result = stage_events(bucket).execute(CONTEXT)

    assert without_rss(result) == {"listed": False, "staged_objects": 1, "rows": 6,
                                   "fetched_objects": 2, "list_calls": 0, "changed_objects": [], "refresh_range": None}
    assert events_rows(warehouse) == [expected_event_row(e) for e in sorted_events(EVENTS)]
    # \uXXXX escapes became characters; a logged-out user's "" stays "" (not NULL).
    assert warehouse.query("SELECT firstname, lastname, location FROM staging_events WHERE userid = '20' LIMIT 1") == [
        ("Émile", "Noël", "Montréal, QC")]
    assert warehouse.query("SELECT userid, firstname FROM staging_events WHERE auth = 'Logged Out'") == [("", None)]

    etag, size = head(bucket, EVENTS_KEY)
    assert manifest(warehouse) == [(EVENTS_KEY, "staging_events", etag, size, 6, CONTEXT["run_id"])]
    assert warehouse.query("SELECT hour_start, events, next_song_events FROM load_manifest_hours ORDER BY 1") == [
        (datetime(2018, 11, 4, 10), 5, 3), (datetime(2018, 11, 4, 11), 1, 1)]


def test_songs_rows_equal_the_json(warehouse, bucket):
    put_sources(bucket)
    result = stage_songs(bucket).execute(CONTEXT)

    assert result["listed"] is True and result["staged_objects"] == 3 and result["rows"] == 3
    assert result["fetched_objects"] == 3 and result["list_calls"] == 1
    assert songs_rows(warehouse) == by_song_id(expected_song_row(s) for s in SONGS.values())
    # JSON numbers in text columns keep their text; titles keep their spaces; escapes are decoded.
    assert warehouse.query(
        "SELECT title, artist_name, artist_location FROM staging_songs WHERE song_id = 'SOBBBBB000002'"
    ) == [("66", "4.6", "Montréal")]
    assert warehouse.scalar("SELECT title FROM staging_songs WHERE song_id = 'SOCCCCC000003'") == " Spaced Title "

    assert manifest(warehouse) == [
        (key, "staging_songs", *head(bucket, key), 1, CONTEXT["run_id"]) for key in sorted(SONGS)]
    assert warehouse.query("SELECT prefix, object_count FROM load_listing") == [("song_data", 3)]
    assert warehouse.scalar("SELECT COUNT(*) FROM load_manifest_hours") == 0


def test_second_run_fetches_nothing_and_changes_nothing(warehouse, bucket):
    put_sources(bucket)
    stage_events(bucket).execute(CONTEXT)
    stage_songs(bucket).execute(CONTEXT)
    before = snapshot(warehouse)

    again = make_context(at(11), run_id="scheduled__2018-11-04T11:00:00+00:00")
    assert without_rss(stage_events(bucket).execute(again)) == {
        "listed": False, "staged_objects": 0, "fetched_objects": 0, "list_calls": 0}
    result = stage_songs(bucket).execute(again)
    assert result["staged_objects"] == 0 and result["fetched_objects"] == 0 and result["list_calls"] == 1

    assert snapshot(warehouse) == before  # run_id and staged_at of the manifest included


def test_changed_event_file_replaces_its_rows(warehouse, bucket):
    put_sources(bucket, songs=False)
    stage_events(bucket).execute(CONTEXT)

    changed = [e for e in EVENTS if e["userId"] != ""] + [
        event(at(12, 1), user="30", page="NextSong", session=400, song="New", artist="Band", length=1.0)]
    changed[0] = {**changed[0], "level": "paid"}
    bucket.put(EVENTS_KEY, ndjson(changed))
    rerun = make_context(at(12), run_id="manual__rewritten")
    result = stage_events(bucket).execute(rerun)

    assert result["staged_objects"] == 1 and result["rows"] == 6
    assert events_rows(warehouse) == [expected_event_row(e) for e in sorted_events(changed)]
    etag, size = head(bucket, EVENTS_KEY)
    assert manifest(warehouse) == [(EVENTS_KEY, "staging_events", etag, size, 6, "manual__rewritten")]
    assert warehouse.query("SELECT hour_start, events, next_song_events FROM load_manifest_hours ORDER BY 1") == [
        (datetime(2018, 11, 4, 10), 4, 3), (datetime(2018, 11, 4, 11), 1, 1), (datetime(2018, 11, 4, 12), 1, 1)]


def test_changed_song_file_replaces_its_song(warehouse, bucket):
    put_sources(bucket)
    stage_songs(bucket).execute(CONTEXT)

    key = "song_data/A/A/A/TRAAAAA128F000001.json"
    retitled = {**SONGS[key], "title": "Song A (Remastered)", "duration": 201.0}
    bucket.put(key, song_file(retitled))
    result = stage_songs(bucket).execute(CONTEXT)

    assert result["staged_objects"] == 1 and result["fetched_objects"] == 1
    expected = {**SONGS, key: retitled}
    assert songs_rows(warehouse) == by_song_id(expected_song_row(s) for s in expected.values())
    assert warehouse.query("SELECT etag, size_bytes FROM load_manifest WHERE s3_key = %s", (key,)) == [
        head(bucket, key)]


def test_listing_period_is_respected(warehouse, bucket):
    put_sources(bucket)
    first = stage_songs(bucket, listing_period_hours=24).execute(CONTEXT)
    assert first["listed"] is True and first["staged_objects"] == 3
    listed_at = warehouse.scalar("SELECT listed_at FROM load_listing WHERE prefix = 'song_data'")

    new_key = "song_data/B/B/B/TRBBBBB128F000004.json"
    bucket.put(new_key, song_file({**SONGS["song_data/A/A/A/TRAAAAA128F000001.json"], "song_id": "SODDDDD000004"}))

    within = stage_songs(bucket, listing_period_hours="24").execute(CONTEXT)  # templated params arrive as text
    assert without_rss(within) == {"listed": False, "staged_objects": 0, "fetched_objects": 0, "list_calls": 0}
    assert warehouse.scalar("SELECT COUNT(*) FROM staging_songs") == 3
    assert warehouse.scalar("SELECT listed_at FROM load_listing WHERE prefix = 'song_data'") == listed_at

    every_run = stage_songs(bucket, listing_period_hours=0).execute(CONTEXT)
    assert every_run["listed"] is True and every_run["list_calls"] == 1
    assert every_run["staged_objects"] == 1 and every_run["fetched_objects"] == 1
    assert warehouse.scalar("SELECT COUNT(*) FROM staging_songs") == 4
    assert warehouse.query("SELECT object_count FROM load_listing") == [(4,)]
    assert warehouse.scalar("SELECT listed_at FROM load_listing") > listed_at


# -- failures -------------------------------------------------------------------------------------------


def test_malformed_event_file_fails_and_leaves_staging_as_it_was(warehouse, bucket):
    put_sources(bucket, songs=False)
    stage_events(bucket).execute(CONTEXT)
    before = snapshot(warehouse)

    lines = ndjson(EVENTS).split("\n")
    lines[3] = lines[3].replace(', "auth"', ',, "auth"')  # line 4 broken
    bucket.put(EVENTS_KEY, "\n".join(lines))
    with pytest.raises(AirflowFailException) as info:
        stage_events(bucket).execute(CONTEXT)

    assert f"s3://{bucket.name}/{EVENTS_KEY}, line 4: malformed JSON" in str(info.value)
    assert snapshot(warehouse) == before


def test_wrong_type_in_a_song_file_fails_naming_file_line_and_column(warehouse, bucket):
    put_sources(bucket)
    bad_key = "song_data/Z/Z/Z/TRZZZZZ128F000009.json"
    bad = {**SONGS["song_data/A/A/A/TRAAAAA128F000001.json"], "song_id": "SOZZZ", "year": "abc"}
    bucket.put(bad_key, json.dumps(bad, indent=2))  # pretty-printed: the object starts on line 1

    with pytest.raises(AirflowFailException) as info:
        stage_songs(bucket).execute(CONTEXT)

    assert f's3://{bucket.name}/{bad_key}, line 1: column year: "abc" is not an integer' in str(info.value)
    assert "Nothing was staged" in str(info.value)
    # One transaction: the good files of the batch are not staged either, nor is the listing recorded.
    assert snapshot(warehouse) == {"staging_events": [], "staging_songs": [], "load_manifest": [],
                                   "load_manifest_hours": [], "load_listing": []}


def test_truncated_event_file_fails(warehouse, bucket):
    put_sources(bucket, songs=False)
    bucket.put(EVENTS_KEY, ndjson(EVENTS)[:-25])
    with pytest.raises(AirflowFailException, match=r"line 6: truncated JSON"):
        stage_events(bucket).execute(CONTEXT)
    assert snapshot(warehouse)["load_manifest"] == []


def recent_context(ended_ago: timedelta):
    """An hour's context whose interval ended at least ``ended_ago`` ago (and less than an hour more)."""
    end = (datetime.now(UTC) - ended_ago).replace(minute=0, second=0, microsecond=0)  # runs own whole hours
    return make_context(end - timedelta(hours=1))


def test_missing_daily_file_is_waited_for_while_recent_without_holding_a_worker(warehouse, bucket, capfd):
    """Within the grace period the task defers (the triggerer waits, no worker slot is held) to look
    again in 5 minutes, or at the deadline if that comes first; it spends none of its retries."""
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger
    from airflow.sdk.exceptions import TaskDeferred

    put_sources(bucket, events=[], songs=False)
    bucket.delete(EVENTS_KEY)
    context = recent_context(timedelta(hours=1))
    before = datetime.now(UTC)
    capfd.readouterr()
    with pytest.raises(TaskDeferred) as info:
        stage_events(bucket, grace_hours=6).execute(context)
    output = "".join(capfd.readouterr())
    deferred = info.value
    assert isinstance(deferred.trigger, DateTimeTrigger) and deferred.method_name == "execute_complete"
    moment = deferred.trigger.moment
    assert before + timedelta(minutes=5) <= moment <= datetime.now(UTC) + timedelta(minutes=5)
    assert f"s3://{bucket.name}/{EVENTS_KEY} does not exist yet; waiting (deferred" in output
    # Near the deadline, the looks come more often (a twelfth of the time left, at least every 30 s),
    # and the last one is at the deadline itself.
    short = recent_context(timedelta(0))
    with pytest.raises(TaskDeferred) as info:
        stage_events(bucket, grace_hours=0.001 + (datetime.now(UTC) - short["data_interval_end"]).total_seconds()
                     / 3600).execute(short)
    assert info.value.trigger.moment <= datetime.now(UTC) + timedelta(seconds=5)
    assert snapshot(warehouse)["load_manifest"] == []

    # Resumed once the file is there: it is staged.
    put_sources(bucket, songs=False)
    result = stage_events(bucket, grace_hours=6).execute_complete(context, event=None)
    assert result["staged_objects"] == 1


def test_missing_daily_file_fails_after_the_grace_period(warehouse, bucket):
    put_sources(bucket, songs=False)
    bucket.delete(EVENTS_KEY)
    with pytest.raises(AirflowFailException) as info:
        stage_events(bucket, grace_hours="6").execute(recent_context(timedelta(hours=7)))
    assert f"s3://{bucket.name}/{EVENTS_KEY} does not exist" in str(info.value)
    assert "more than 6 h ago" in str(info.value)

    with pytest.raises(AirflowFailException):  # an old interval (a backfill) fails at once
        stage_events(bucket).execute(CONTEXT)
    with pytest.raises(AirflowFailException):  # grace 0: no waiting at all
        stage_events(bucket, grace_hours=0).execute(recent_context(timedelta(minutes=5)))
    assert snapshot(warehouse)["load_manifest"] == []


def test_empty_daily_file_is_treated_as_missing(warehouse, bucket):
    put_sources(bucket, songs=False)
    bucket.put(EVENTS_KEY, b"")
    from airflow.sdk.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred):  # waited for, as a missing one
        stage_events(bucket).execute(recent_context(timedelta(minutes=10)))
    with pytest.raises(AirflowFailException, match=f"s3://{bucket.name}/{EVENTS_KEY} is empty"):
        stage_events(bucket).execute(CONTEXT)
    assert snapshot(warehouse)["load_manifest"] == []


def test_missing_jsonpaths_file_fails(warehouse, bucket):
    put_sources(bucket, songs=False)
    bucket.delete(JSONPATHS_KEY)
    missing = f"JSONPaths file: s3://{bucket.name}/{JSONPATHS_KEY} does not exist"
    with pytest.raises(AirflowFailException, match=missing):
        stage_events(bucket).execute(CONTEXT)
    assert snapshot(warehouse)["staging_events"] == []


@pytest.mark.parametrize(
    ("make", "kwargs", "named"),
    [
        (stage_events, {"schema": "x;drop"}, "schema='x;drop'"),
        (stage_songs, {"s3_prefix": "../x"}, "s3_prefix='../x'"),
        (stage_events, {"s3_key": "/etc/passwd"}, "s3_key='/etc/passwd'"),
        (stage_events, {"json_format": "bogus"}, "json_format='bogus'"),
        # Written into COPY's quoted FORMAT AS JSON literal on Redshift: refused on both warehouses.
        (stage_events, {"json_format": "s3://b/it's.json"},
         "json_format=\"s3://b/it's.json\": the JSONPaths file's URI must not hold ' or \\"),
        (stage_events, {"json_format": "s3://b/a\\b.json"},
         "json_format='s3://b/a\\\\b.json': the JSONPaths file's URI must not hold ' or \\"),
        (stage_songs, {"region": "nowhere"}, "region='nowhere'"),
        (stage_songs, {"region": "us-west-2\n"}, "region='us-west-2\\n'"),
        (stage_events, {"s3_key": " \n "}, "s3_key=' \\n '"),
        (stage_events, {"table": "staging_events; DROP TABLE users"}, "table='staging_events; DROP TABLE users'"),
        (stage_songs, {"dedupe_key": "song_id OR 1=1"}, "dedupe_key='song_id OR 1=1'"),
        (stage_songs, {"listing_period_hours": "-1"}, "listing_period_hours='-1'"),
        (stage_events, {"grace_hours": "soon"}, "grace_hours='soon'"),
        (stage_songs, {"manifest_bucket": "Bad_Bucket"}, "manifest_bucket='Bad_Bucket'"),
    ],
)
def test_bad_params_fail_before_any_sql(warehouse, bucket, monkeypatch, make, kwargs, named):
    put_sources(bucket)
    import sparkify.operators.stage_redshift as stage

    def forbidden(*args, **kw):
        raise AssertionError("a bad param must be refused before the warehouse or S3 is reached")

    monkeypatch.setattr(stage, "Warehouse", forbidden)
    monkeypatch.setattr(stage, "S3", forbidden)
    with pytest.raises(AirflowFailException) as info:
        make(bucket, **kwargs).execute(CONTEXT)
    assert named in str(info.value)
    assert str(info.value).startswith(("Stage_events: ", "Stage_songs: "))
    assert snapshot(warehouse) == {"staging_events": [], "staging_songs": [], "load_manifest": [],
                                   "load_manifest_hours": [], "load_listing": []}


def test_key_and_prefix_are_exclusive(warehouse, bucket):
    with pytest.raises(AirflowFailException, match="exactly one of s3_key and s3_prefix"):
        stage_events(bucket, s3_prefix="log_data").execute(CONTEXT)


# -- the real data --------------------------------------------------------------------------------------


def test_real_files_stage_as_their_json_says(warehouse, bucket):
    from conftest import real_data

    root = real_data()
    songs = sorted((root / "song_data" / "A" / "A" / "A").glob("*.json")) + [
        root / "song_data/A/G/D/TRAGDXK128F4262D37.json", root / "song_data/A/E/X/TRAEXXQ128F4261FE5.json"]
    day = root / "log_data/2018/11/2018-11-04-events.json"
    bucket.upload(root, [*songs, day, root / "log_json_path.json"])

    stage_events(bucket).execute(CONTEXT)
    stage_songs(bucket).execute(CONTEXT)

    lines = day.read_text(encoding="utf-8").split("\n")
    real_events = [json.loads(line) for line in lines if line.strip()]
    assert len(real_events) == 189
    assert events_rows(warehouse) == [expected_event_row(e) for e in sorted_events(real_events)]
    start, end = datetime(2018, 11, 4, tzinfo=UTC), datetime(2018, 11, 5, tzinfo=UTC)
    assert warehouse.query("SELECT MIN(ts) >= %s AND MAX(ts) < %s FROM staging_events",
                           (int(start.timestamp() * 1000), int(end.timestamp() * 1000))) == [(True,)]
    real_songs = [json.loads(p.read_text(encoding="utf-8")) for p in songs]
    assert songs_rows(warehouse) == by_song_id(expected_song_row(s) for s in real_songs)
    assert warehouse.scalar("SELECT title FROM staging_songs WHERE song_id = 'SOYXDHH12A8C1337A7'") == "66"
