"""Crashes mid-load with ``dag.test()``: the database connection dropped mid-COPY and mid-merge.

The test watches ``pg_stat_activity`` and calls ``pg_terminate_backend`` on the task's backend
while it is surely inside its transaction: during the ``COPY … FROM STDIN`` of a large daily
object, or during the fact load's ``INSERT`` after its ``DELETE`` (held there by a lock the test
takes on ``staging_songs``). Right after the kill, before the retry can commit anything, the
warehouse must be exactly as it was: no partial rows, no manifest entry for the object that was
not fully staged. The task's retry (a 3-second delay here) must then complete, and the result
must equal a clean load. (SIGKILL of a task process under the real scheduler is in
test_scheduler_backfills.py.) And when the run that staged a changed object dies in its fact load
and is run again from the start (its Stage_events then finds the object unchanged), the whole day
is still reloaded: the refresh the loads owe was committed with the staging (load_refresh).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
from tests import reference

from conftest import Database

from .conftest import (
    DAY,
    EVENTS_KEY,
    assert_matches,
    checksums,
    compact,
    day_lines,
    read_star,
    rewritten_day,
    say,
    table_sums,
)

RETRY_DELAY = timedelta(seconds=3)
BIG_FILE_BYTES = 10 << 20  # the COPY of this many bytes takes seconds: time to kill it mid-way
STAGING = {"staging_events": "*", "load_manifest": "*", "load_manifest_hours": "*"}


class Killer(threading.Thread):
    """Terminates, once, the first backend of ``db`` whose active statement matches ``like`` (and,
    with ``waiting``, which waits on a lock); then calls ``after()`` and keeps its result."""

    def __init__(self, db: Database, like: str, *, waiting: bool = False,
                 after: Callable[[], Any] = lambda: None, timeout: float = 300) -> None:
        super().__init__(daemon=True)
        self.db, self.like, self.waiting, self.after, self.timeout = db, like, waiting, after, timeout
        self.killed: tuple | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            with psycopg.connect(self.db.url, autocommit=True) as conn:
                deadline = time.monotonic() + self.timeout
                while time.monotonic() < deadline and self.killed is None:
                    row = conn.execute(
                        "SELECT pid, query, wait_event_type, xact_start < query_start FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' "
                        "AND query LIKE %s" + (" AND wait_event_type = 'Lock'" if self.waiting else ""),
                        (self.like,),
                    ).fetchone()
                    if row is None:
                        time.sleep(0.02)
                        continue
                    conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                    while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (row[0],)).fetchone():
                        time.sleep(0.01)
                    self.killed = row
                if self.killed is not None:
                    self.result = self.after()
        except BaseException as err:  # noqa: BLE001 - reported by check()
            self.error = err
        finally:
            self.done.set()

    def check(self) -> Any:
        self.join(30)
        if self.error is not None:
            raise self.error
        assert self.killed is not None, f"no backend ran {self.like!r}: nothing was killed"
        return self.result


def with_retry(etl, task_id: str, monkeypatch) -> None:
    """``task_id`` retries once, after RETRY_DELAY (the DAG's own delay is 5 minutes)."""
    task = etl.dag.get_task(task_id)
    monkeypatch.setattr(task, "retries", 1)
    monkeypatch.setattr(task, "retry_delay", RETRY_DELAY)


def big_day() -> bytes:
    """The day's events, repeated with new session ids up to BIG_FILE_BYTES: one play per line."""
    lines = day_lines()
    objects = [json.loads(line) for line in lines]
    size = sum(len(line) + 1 for line in lines)
    out = list(lines)
    for copy in range(1, BIG_FILE_BYTES // size + 1):
        out += [compact({**obj, "sessionId": obj["sessionId"] + 100_000 * copy}) for obj in objects]
    return ("\n".join(out) + "\n").encode()


def test_connection_dropped_mid_copy_stages_nothing_and_the_retry_loads_it_all(
    loaded_window, make_etl, new_bucket, expect, monkeypatch
):
    content = big_day()
    bucket = new_bucket(content)
    etl = make_etl(loaded_window.name, bucket.name)
    with_retry(etl, "Stage_events", monkeypatch)
    before = checksums(etl.db, STAGING)
    old_entry = etl.db.query("SELECT etag, size_bytes FROM load_manifest WHERE s3_key = %s", (EVENTS_KEY,))

    def right_after_the_kill() -> dict:
        # The retry's staging takes the manifest lock first: holding it, the test sees what the
        # killed attempt left, and nothing the retry could commit.
        with psycopg.connect(etl.db.url) as conn:
            conn.execute("LOCK TABLE load_manifest IN EXCLUSIVE MODE")
            return table_sums(conn, STAGING)

    killer = Killer(etl.db, "COPY sparkify_batch%", after=right_after_the_kill)
    killer.start()
    started = time.monotonic()
    run = etl.run(DAY.replace(hour=12))
    seconds = time.monotonic() - started
    left = killer.check()

    assert left == before, "the killed COPY left rows or a manifest entry behind"
    assert run.get_task_instance("Stage_events").try_number == 2
    assert etl.db.query("SELECT etag, size_bytes FROM load_manifest WHERE s3_key = %s", (EVENTS_KEY,)) != old_entry
    assert etl.db.scalar("SELECT COUNT(*) FROM staging_events") == len(day_lines(content))
    assert_matches(etl.db, expect.tables(content), "after the retry")
    say(f"COPY of a {len(content) / 2**20:.0f} MiB object killed mid-way, retried: run took {seconds:.1f} s")


class StagingSongsHeld:
    """Holds ACCESS EXCLUSIVE on staging_songs, so the fact load blocks in its INSERT … SELECT,
    after its DELETE, inside its transaction."""

    def __init__(self, db: Database) -> None:
        self.conn = psycopg.connect(db.url)
        self.conn.execute("LOCK TABLE staging_songs IN ACCESS EXCLUSIVE MODE")
        self.lock = threading.Lock()

    def release(self) -> None:
        with self.lock:  # called by the killer's thread and, in any case, by the test at the end
            if not self.conn.closed:
                self.conn.rollback()
                self.conn.close()


def test_connection_dropped_mid_merge_leaves_no_partial_rows_and_the_retry_completes(
    loaded_window, make_etl, new_bucket, expect, real_songs, monkeypatch
):
    content = rewritten_day(real_songs)  # a changed object: the fact load replaces the whole day
    etl = make_etl(loaded_window.name, new_bucket(content).name)
    with_retry(etl, "Load_songplays_fact_table", monkeypatch)
    star = {t: "*" for t in ("songplays", "users", "time")}
    before = checksums(etl.db, star)
    held = StagingSongsHeld(etl.db)

    def right_after_the_kill() -> dict:
        try:
            with psycopg.connect(etl.db.url, autocommit=True) as conn:
                return table_sums(conn, star)  # the retry cannot commit: it needs staging_songs too
        finally:
            held.release()

    killer = Killer(etl.db, "INSERT INTO public.songplays%", waiting=True, after=right_after_the_kill)
    killer.start()
    try:
        run = etl.run(DAY.replace(hour=12))
    finally:
        held.release()
    left = killer.check()

    assert killer.killed[3], "the INSERT was not the transaction's first statement: its DELETE ran before"
    assert left == before, "the killed load left partial rows behind"
    assert run.get_task_instance("Load_songplays_fact_table").try_number == 2
    assert_matches(etl.db, expect.tables(content), "after the retry")
    say("fact load killed between its DELETE and its INSERT, retried: the whole day equals the reference")


def test_changed_object_is_still_refreshed_when_the_failed_run_is_cleared_and_run_again(
    loaded_window, make_etl, new_bucket, expect, real_songs
):
    content = rewritten_day(real_songs)
    etl = make_etl(loaded_window.name, new_bucket(content).name)
    held = StagingSongsHeld(etl.db)
    killer = Killer(etl.db, "INSERT INTO public.songplays%", waiting=True, after=held.release)
    killer.start()
    try:
        etl.run(DAY.replace(hour=12), expect="failed")  # staged the new version, then the load died
    finally:
        held.release()
    killer.check()
    # What the loads owe was committed with the staging; the killed load paid nothing.
    owed = etl.db.query("SELECT table_name, range_start, range_end FROM load_refresh ORDER BY table_name")
    assert owed == [("songplays", DAY, DAY + timedelta(days=1)), ("users", DAY, DAY + timedelta(days=1))], owed

    etl.run(DAY.replace(hour=12))  # the whole run cleared and run again
    expected, actual = expect.tables(content), read_star(etl.db)
    differences = [reference.describe_difference(t, expected[t], actual[t]) for t in reference.STAR_TABLES]
    differences = [d for d in differences if d]
    if differences:
        say("a changed object re-staged by a run that then failed, the run cleared and run again:\n"
            + "\n".join(differences))
    assert not differences
    assert etl.db.query("SELECT * FROM load_refresh") == [], "a refresh is still owed"
    say("changed object staged by a run whose fact load was then killed; the run run again (the object "
        "now unchanged) still reloads the whole day: equals the reference, nothing left owed")

