"""Orders, reruns, late, rewritten and malformed objects, hour by hour with ``dag.test()``.

Ten hours of one UTC day of the real data (2018-11-14 [00:00, 10:00), see conftest.py) on a real
PostgreSQL and moto's S3 server: whatever the order the hours run in and however often any task or
run is repeated, the tables equal the one-pass reference; an object that arrives late, is
rewritten, or is broken and then fixed ends as a clean load of what S3 finally holds (the whole
day, when the day's object changed), and a failed run changes nothing.
"""

from __future__ import annotations

import random
import re
import time
from datetime import timedelta

from conftest import Database

from .conftest import (
    DAY,
    EVENTS_KEY,
    JSONPATHS_KEY,
    LEVEL_CHANGES,
    QUIET_HOURS,
    WINDOW,
    WINDOW_HOURS,
    assert_matches,
    checksums,
    day_lines,
    original_day,
    rewritten_day,
    say,
    short,
    snapshot,
)

BUSY_HOUR = DAY.replace(hour=8)  # 48 events, 40 NextSong; user 49 goes paid
SHUFFLE_SEED = 20181114


def levels(db: Database) -> dict[int, str]:
    rows = db.query("SELECT user_id, level FROM users WHERE user_id = ANY(%s)", (list(LEVEL_CHANGES),))
    return dict(rows)


def test_forward_backwards_and_shuffled_hours_give_the_reference_tables(loaded_window, make_etl, pg_server, expect):
    expected = expect.tables(original_day(), *WINDOW)
    forward = Database(pg_server.url(loaded_window.name), loaded_window.name)
    assert_matches(forward, expected, "forward")

    backwards = make_etl()
    backwards_seconds = backwards.run_hours(reversed(WINDOW_HOURS))
    assert_matches(backwards.db, expected, "backwards")

    # Shuffled, but starting with the quiet 01:00 on a fresh warehouse: its run loads nothing while
    # staging holds the whole day, and its checks must judge its own interval.
    order = [h for h in WINDOW_HOURS if h != QUIET_HOURS[0]]
    random.Random(SHUFFLE_SEED).shuffle(order)
    order.insert(0, QUIET_HOURS[0])
    shuffled = make_etl()
    shuffled_seconds = shuffled.run_hours(order)
    assert_matches(shuffled.db, expected, "shuffled")

    sums = {"forward": loaded_window.checksums, "backwards": checksums(backwards.db),
            "shuffled": checksums(shuffled.db)}
    say(f"dag.test() orders over [{WINDOW[0]:%Y-%m-%dT%H:%M}, {WINDOW[1]:%H:%M}): "
        f"forward {loaded_window.seconds:.1f} s, backwards {backwards_seconds:.1f} s, "
        f"shuffled (quiet 01:00 first, then seed {SHUFFLE_SEED}) {shuffled_seconds:.1f} s")
    for name, value in sums.items():
        say(f"  {name:9} {short(value)}")
    assert sums["backwards"] == sums["forward"]
    assert sums["shuffled"] == sums["forward"]
    # Users who went from free to paid during the day end paid whatever the order: loading an older
    # hour after a newer one (05:xx after 09:xx, backwards) does not roll their level back, while
    # each play keeps the level of its own event.
    for db in (forward, backwards.db, shuffled.db):
        assert levels(db) == {49: "paid", 16: "paid"}
        assert db.query("SELECT DISTINCT level FROM songplays WHERE user_id = 49 AND start_time < %s",
                        (LEVEL_CHANGES[49],)) == [("free",)]


def test_rerunning_any_task_or_whole_run_any_number_of_times_changes_nothing(loaded_window, make_etl, expect):
    etl = make_etl(loaded_window.name)
    before = snapshot(etl.db)
    assert checksums(etl.db) == loaded_window.checksums

    started = time.monotonic()
    for task_id in etl.dag.task_ids:  # each task cleared and run again alone
        etl.run_task(task_id, BUSY_HOUR)
        assert snapshot(etl.db) == before, f"rerunning {task_id} alone changed the warehouse"
    for start in (BUSY_HOUR, QUIET_HOURS[0], BUSY_HOUR, WINDOW_HOURS[-1]):  # whole runs, again and again
        etl.run(start)
        assert snapshot(etl.db) == before, f"rerunning the run of {start:%H}:00 changed the warehouse"
    assert_matches(etl.db, expect.tables(original_day(), *WINDOW), "after the reruns")
    say(f"reran {len(etl.dag.task_ids)} tasks alone and 4 whole runs in {time.monotonic() - started:.1f} s: "
        "every table identical (manifest times included)")


def test_rewritten_object_replaces_its_old_rows_across_the_whole_day(
    loaded_window, make_etl, new_bucket, expect, real_songs
):
    content = rewritten_day(real_songs)
    bucket = new_bucket(content)
    etl = make_etl(loaded_window.name, bucket.name)

    etl.run(DAY.replace(hour=12))  # one later run of the day: it re-stages the object, reloads the day
    assert_matches(etl.db, expect.tables(content), "after the rewritten object was staged")
    head = bucket.client.head_object(Bucket=bucket.name, Key=EVENTS_KEY)
    assert etl.db.query("SELECT etag, size_bytes, row_count FROM load_manifest WHERE s3_key = %s", (EVENTS_KEY,)) == [
        (head["ETag"].strip('"'), head["ContentLength"], len(day_lines(content)))
    ]
    assert etl.db.scalar("SELECT COUNT(*) FROM staging_events") == len(day_lines(content))

    after = checksums(etl.db)
    etl.run_hours([DAY.replace(hour=3), DAY.replace(hour=12)])
    assert checksums(etl.db) == after
    say(f"rewritten object, after one later run of its day: {short(after)}")


def test_object_that_arrives_late_is_loaded_when_its_hour_is_reprocessed(make_etl, new_bucket, expect, capfd):
    bucket = new_bucket(None)
    etl = make_etl(bucket=bucket.name)
    before = snapshot(etl.db)

    capfd.readouterr()
    run = etl.run(BUSY_HOUR, expect="failed", events_grace_hours=0)
    output = "".join(capfd.readouterr())
    assert run.get_task_instance("Stage_events").state == "failed"
    assert f"s3://{bucket.name}/{EVENTS_KEY} does not exist" in output
    assert snapshot(etl.db) == before

    bucket.put(EVENTS_KEY, original_day())
    etl.run(BUSY_HOUR, events_grace_hours=0)
    assert_matches(etl.db, expect.tables(original_day(), BUSY_HOUR, BUSY_HOUR + timedelta(hours=1)))


def malformed_versions(good: bytes) -> list[tuple[str, bytes, int, str]]:
    """(what, content, line, message) for each way the object can be broken."""
    lines = day_lines(good)
    broken = list(lines)
    broken[99] = broken[99].replace(',"auth"', ',,"auth"', 1)
    wrong_type = list(lines)
    wrong_type[199] = re.sub(r'"sessionId":\d+', '"sessionId":"abc"', wrong_type[199], count=1)
    text = "\n".join(lines) + "\n"
    truncated = text[: len(text) - len(lines[-1]) // 2 - 1]
    assert broken[99] != lines[99] and wrong_type[199] != lines[199]
    return [
        ("a broken JSON line", ("\n".join(broken) + "\n").encode(), 100, "malformed JSON"),
        ("a wrong type", ("\n".join(wrong_type) + "\n").encode(), 200, 'column sessionid: "abc" is not an integer'),
        ("a truncated file", truncated.encode(), len(lines), "truncated JSON"),
    ]


def test_malformed_object_fails_naming_object_and_line_changes_nothing_and_once_fixed_loads_cleanly(
    loaded_window, make_etl, new_bucket, expect, real_songs, capfd
):
    good = rewritten_day(real_songs)  # a changed object: its fix must replace the old rows
    bucket = new_bucket(None)
    etl = make_etl(loaded_window.name, bucket.name)
    before = snapshot(etl.db)

    for what, content, line, message in malformed_versions(good):
        bucket.put(EVENTS_KEY, content)
        capfd.readouterr()
        run = etl.run(DAY.replace(hour=12), expect="failed")
        output = "".join(capfd.readouterr())
        assert run.get_task_instance("Stage_events").state == "failed", what
        assert f"s3://{bucket.name}/{EVENTS_KEY}, line {line}: {message}" in output, (what, output[-3000:])
        assert snapshot(etl.db) == before, f"{what}: the failed run changed the warehouse"

    bucket.put(EVENTS_KEY, good)
    etl.run(DAY.replace(hour=12))
    assert_matches(etl.db, expect.tables(good), "after the object was fixed")

    clean = make_etl(loaded_window.name, new_bucket(good).name)
    clean.run(DAY.replace(hour=12))
    assert checksums(etl.db) == checksums(clean.db)


def test_interleaved_runs_of_a_day_pay_the_refresh_a_changed_object_owes_in_a_safe_order(
    loaded_window, make_etl, new_bucket, expect, real_songs
):
    """Two runs of the day interleaved task by task, as parallel runs may be: the changed object is
    staged by run A (12:00) between run C's (05:00) fact load and its time load. C's time load must not
    rebuild the day's time rows from songplays that are still stale, C's users load may pay the users'
    refresh A's staging noted (C's hour is in that day), and at the end every star table equals a clean
    load of the rewritten day, with nothing left owed. The operators are run directly (no dag.test()),
    in the DAG's configuration, for speed."""
    from tests.operators.helpers import make_context

    from sparkify.operators import LoadDimensionOperator, LoadFactOperator, StageToRedshiftOperator

    content = rewritten_day(real_songs)
    bucket = new_bucket(content)
    etl = make_etl(loaded_window.name, bucket.name)
    wh = {"redshift_conn_id": etl.conn_id, "schema": "public"}
    refresh = {**wh, "refresh_from": "Stage_events"}
    stage = StageToRedshiftOperator(
        task_id="Stage_events", table="staging_events", s3_bucket=bucket.name, s3_key=EVENTS_KEY,
        json_format=f"s3://{bucket.name}/{JSONPATHS_KEY}", source_key_column="source_key", hour_counts=True, **wh)
    fact = LoadFactOperator(task_id="Load_songplays_fact_table", table="songplays", select="load/songplays.sql",
                            **refresh)
    users = LoadDimensionOperator(task_id="Load_user_dim_table", table="users", select="load/users.sql",
                                  mode="upsert", **refresh)
    time_ = LoadDimensionOperator(task_id="Load_time_dim_table", table="time", select="load/time.sql",
                                  mode="truncate_insert", scope_column="start_time", **refresh)
    run_a = make_context(DAY.replace(hour=12), run_id="backfill__A")
    run_c = make_context(DAY.replace(hour=5), run_id="backfill__C")

    fact.execute(run_c)  # before the object changed in the warehouse: C owes nothing
    assert stage.execute(run_a)["changed_objects"] == [EVENTS_KEY]
    time_.execute(run_c)  # songplays of the day are still stale: nothing owed to time yet
    assert etl.db.query("SELECT table_name FROM load_refresh ORDER BY 1") == [("songplays",), ("users",)]
    fact.execute(run_a)  # pays the songplays' refresh (the whole day), notes it for time
    assert etl.db.query("SELECT table_name, run_id FROM load_refresh ORDER BY 1") == [
        ("time", "backfill__A"), ("users", "backfill__A")]
    users.execute(run_c)  # pays the users' refresh: its hour is in the day
    users.execute(run_a)
    time_.execute(run_a)
    assert_matches(etl.db, expect.tables(content), "after the interleaved runs")
    assert etl.db.query("SELECT * FROM load_refresh") == []
