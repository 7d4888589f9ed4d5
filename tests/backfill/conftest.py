"""Shared pieces of issue 5's tests: backfills and reruns that cannot corrupt the warehouse.

Every test works on one UTC day of the real data, 2018-11-14 (457 events, 390 of them NextSong;
hours 01 and 14 have no event; users 16 and 49 go from free to paid during the day), mostly on
its first ten hours [00:00, 10:00) (189 NextSong events; the quiet 01:00, both level changes),
on a clone of the session's real-songs template database (all 14,896 songs already staged, see
tests/dags/conftest.py), against a real PostgreSQL and moto's S3 server. Results are compared
table by table with ``tests/reference.py`` (a one-pass reading of the raw files) and between
runs by content checksums (row count and MD5 of every row, in order), not by counts alone.

A ``dag.test()`` run of the DAG costs seconds of CPU, so the windows are hours, not days (and
:func:`faster_dag_test` trims what dag.test() repeats needlessly on every call).

Tests that rewrite, break or withhold the day's object use a bucket of their own holding only
that object and the JSONPaths file: the session's real-data bucket is shared and never changed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests import reference
from tests.dags import conftest as dags_conftest
from tests.dags.conftest import faster_dag_test, patched_for_dag_test, run_only
from tests.helpers import hours, load_dag, run_interval, run_window

from conftest import Bucket, Database, aws_connection, create_bucket, create_database, real_data

# The session's real-songs and hourly-runs templates, shared with tests/dags (built once per session).
real_songs_warehouse_template = dags_conftest.real_songs_warehouse_template
hourly_runs_templates = dags_conftest.hourly_runs_templates

DAY = datetime(2018, 11, 14)
DAY_END = DAY + timedelta(days=1)
WINDOW = (DAY, DAY.replace(hour=10))  # [start, end) of the hour-by-hour dag.test() runs
WINDOW_HOURS = hours(*WINDOW)
EVENTS_KEY = "log_data/2018/11/2018-11-14-events.json"
JSONPATHS_KEY = "log_json_path.json"
QUIET_HOURS = (DAY.replace(hour=1), DAY.replace(hour=14))  # no event at all
LEVEL_CHANGES = {49: DAY.replace(hour=8), 16: DAY.replace(hour=6)}  # user: hour they went from free to paid

# What a content checksum covers: every warehouse table, whole rows, except what records *when*
# or by which run (load_manifest.staged_at and run_id, load_listing, quality_results,
# load_refresh.run_id and noted_at), so that two warehouses loaded at different times compare
# equal when they hold the same data. load_refresh (the reloads the loads still owe) is empty
# once every load has caught up.
CONTENT = {
    **{table: "*" for table in reference.STAR_TABLES},
    "staging_events": "*",
    "staging_songs": "*",
    "load_manifest": "s3_key, source, etag, size_bytes, row_count",
    "load_manifest_hours": "*",
    "load_refresh": "table_name, range_start, range_end",
}
# What "left as it was" covers: every table and column but the quality-check results.
EVERYTHING = {**CONTENT, "load_manifest": "*", "load_listing": "*", "load_refresh": "*"}


def say(message: str) -> None:
    """A line for the closing report (visible with ``pytest -s``)."""
    print(f"[backfill] {message}", flush=True)


# -- reading the warehouse ------------------------------------------------------------------------


def checksums(db: Database, tables: dict[str, str] = CONTENT) -> dict[str, tuple[int, str]]:
    """Row count and MD5 of every row's text, sorted, per table."""
    with db.connect() as conn:
        return table_sums(conn, tables)


def table_sums(conn: Any, tables: dict[str, str]) -> dict[str, tuple[int, str]]:
    """:func:`checksums` on an open psycopg connection (inside its transaction, if one is open)."""
    return {
        table: tuple(conn.execute(
            f"SELECT COUNT(*), MD5(COALESCE(STRING_AGG(r::text, E'\\n' ORDER BY r::text), '')) "
            f"FROM (SELECT {columns} FROM {table}) r"
        ).fetchone())
        for table, columns in tables.items()
    }


def snapshot(db: Database) -> dict[str, tuple[int, str]]:
    """Checksums of everything a failed or killed run must leave as it was (manifest times included)."""
    return checksums(db, EVERYTHING)


def short(sums: dict[str, tuple[int, str]]) -> str:
    return ", ".join(f"{t} {n}:{md5[:10]}" for t, (n, md5) in sums.items())


def read_star(db: Database) -> dict[str, list[tuple]]:
    with db.connect() as conn:
        return {
            table: [tuple(r) for r in conn.execute(
                f"SELECT {', '.join(reference.COLUMNS[table])} FROM {table}").fetchall()]
            for table in reference.STAR_TABLES
        }


def assert_matches(db: Database, expected: dict[str, list[tuple]], what: str = "") -> None:
    actual = read_star(db)
    differences = [reference.describe_difference(t, expected[t], actual[t]) for t in reference.STAR_TABLES]
    differences = [d for d in differences if d]
    assert not differences, (what + ":\n" if what else "") + "\n".join(differences)


# -- the reference -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_songs() -> list[reference.Song]:
    return reference.read_songs(reference.song_paths(real_data()))


def original_day() -> bytes:
    return (real_data() / EVENTS_KEY).read_bytes()


class Expect:
    """The reference tables for a version of the day's file (its bytes) over a window."""

    def __init__(self, songs: list[reference.Song], folder: Path) -> None:
        self.songs = songs
        self.folder = folder

    def events(self, content: bytes) -> list[reference.Event]:
        path = self.folder / f"events-{uuid.uuid4().hex[:8]}.json"
        path.write_bytes(content)
        return reference.read_events([path])

    def tables(self, content: bytes, start: datetime = DAY, end: datetime = DAY_END) -> dict[str, list[tuple]]:
        return reference.expected_tables(self.events(content), self.songs, start, end)


@pytest.fixture
def expect(real_songs, tmp_path) -> Expect:
    return Expect(real_songs, tmp_path)


# -- running the DAG with dag.test() ------------------------------------------------------------------


@dataclass
class Etl:
    """sparkify_etl run hour by hour with ``dag.test()`` into one warehouse, from one bucket."""

    dag: Any
    db: Database
    bucket: str
    monkeypatch: pytest.MonkeyPatch
    conf: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.conn_id = "wh_" + self.db.name
        self.monkeypatch.setenv(f"AIRFLOW_CONN_{self.conn_id.upper()}", self.db.url)

    def run(self, start: datetime, *, expect: str = "success", **conf: Any):
        run = run_interval(self.dag, start, **self._conf(conf))
        states = {ti.task_id: ti.state for ti in run.get_task_instances()}
        assert run.state == expect, f"run of {start:%Y-%m-%d %H}:00 ended {run.state}, not {expect}: {states}"
        return run

    def run_window(self, start: datetime, end: datetime, *, expect: str = "success", **conf: Any):
        """One run over the data interval ``[start, end)``, as a run triggered with a manual interval."""
        run = run_window(self.dag, start, end, **self._conf(conf))
        states = {ti.task_id: ti.state for ti in run.get_task_instances()}
        assert run.state == expect, f"run of [{start:%Y-%m-%dT%H}, {end:%Y-%m-%dT%H}) ended {run.state}, " \
                                    f"not {expect}: {states}"
        return run

    def run_hours(self, starts: Iterable[datetime], **conf: Any) -> float:
        """Run each hour in the order given; the seconds it took."""
        started = time.monotonic()
        for start in starts:
            self.run(start, **conf)
        return time.monotonic() - started

    def run_task(self, task_id: str, start: datetime, **conf: Any):
        """Run one task of the hour alone (the others are marked successful without running)."""
        run = run_only(self.dag, task_id, start, **self._conf(conf))
        assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}
        return run

    def _conf(self, conf: dict[str, Any]) -> dict[str, Any]:
        return {"s3_bucket": self.bucket, "redshift_conn_id": self.conn_id, **self.conf, **conf}


@pytest.fixture(scope="module", autouse=True)
def _faster_dag_test() -> Iterator[None]:
    with faster_dag_test():  # per module: tests elsewhere in the session see Airflow as it is
        yield


@pytest.fixture
def make_etl(pg_server, real_songs_warehouse_template, monkeypatch) -> Callable[..., Etl]:
    """``make_etl(template=None, bucket=None)``: an Etl on a new clone of ``template`` (default: the
    real-songs template) reading ``bucket`` (default: the real-data bucket). Tasks do not retry."""
    template, real_bucket, endpoint = real_songs_warehouse_template
    monkeypatch.setenv("AIRFLOW_CONN_AWS", aws_connection(endpoint))
    dag = patched_for_dag_test(load_dag(), monkeypatch, fail_fast=True)

    def make(template_db: str | None = None, bucket: str | None = None) -> Etl:
        db = create_database(pg_server, template=template_db or template)
        return Etl(dag, db, bucket or real_bucket, monkeypatch)

    return make


@pytest.fixture
def new_bucket(real_songs_warehouse_template) -> Callable[..., Bucket]:
    """``new_bucket(events=bytes | None)``: a bucket of the test's own with the JSONPaths file and,
    unless ``events`` is None, the day's object."""
    endpoint = real_songs_warehouse_template[2]

    def make(events: bytes | None) -> Bucket:
        bucket = create_bucket(endpoint)
        bucket.put(JSONPATHS_KEY, (real_data() / JSONPATHS_KEY).read_bytes())
        if events is not None:
            bucket.put(EVENTS_KEY, events)
        return bucket

    return make


@dataclass(frozen=True)
class LoadedWindow:
    """A template database holding WINDOW, loaded forward hour by hour with dag.test()."""

    name: str
    checksums: dict[str, tuple[int, str]]
    seconds: float


@pytest.fixture(scope="session")
def loaded_window(real_songs_warehouse_template, pg_server) -> LoadedWindow:
    """WINDOW loaded forward (00:00 → 09:00), serially, from the real-data bucket. Tests clone it
    (never connect to it) to start from a warehouse where those hours are loaded."""
    template, bucket, endpoint = real_songs_warehouse_template
    with pytest.MonkeyPatch.context() as mp, faster_dag_test():
        mp.setenv("AIRFLOW_CONN_AWS", aws_connection(endpoint))
        dag = patched_for_dag_test(load_dag(), mp, fail_fast=True)
        etl = Etl(dag, create_database(pg_server, template=template), bucket, mp)
        seconds = etl.run_hours(WINDOW_HOURS)
    say(f"forward serial dag.test() of [{WINDOW[0]:%Y-%m-%dT%H:%M}, {WINDOW[1]:%H:%M}) "
        f"({len(WINDOW_HOURS)} hourly runs): {seconds:.1f} s")
    return LoadedWindow(etl.db.name, checksums(etl.db), seconds)


# -- versions of the day's object ----------------------------------------------------------------------


def day_lines(content: bytes | None = None) -> list[str]:
    return [line for line in (content or original_day()).decode("utf-8").split("\n") if line.strip()]


def rewritten_day(songs: list[reference.Song]) -> bytes:
    """The day's object as corrected and completed after WINDOW was loaded (other lines verbatim):

    * a late NextSong event appended for 03:xx (an hour loaded long before), playing a real song
      so that it matches one (song_id and artist_id set);
    * the last event of the day of a user (08:xx, user 99) corrected: its level goes from free
      to paid and its location is fixed, which changes that songplay and the user's row;
    * one NextSong event of 07:xx withdrawn (not any user's latest event).
    """
    lines = day_lines()
    objects = [json.loads(line) for line in lines]
    next_song = {}
    for i, obj in enumerate(objects):
        if obj["page"] == "NextSong":
            next_song.setdefault(utc_hour(obj["ts"]), []).append(i)
    latest: dict[str, int] = {}
    for i, obj in enumerate(objects):
        if obj["userId"] and (obj["userId"] not in latest or obj["ts"] > objects[latest[obj["userId"]]]["ts"]):
            latest[obj["userId"]] = i

    song = min((s for s in songs if s.title and s.artist_name and s.duration), key=lambda s: s.song_id)
    late = {**objects[next_song[3][0]], "song": song.title, "artist": song.artist_name, "length": song.duration}
    late["ts"] += 7
    late["itemInSession"] += 1000
    corrected = next(i for i in next_song[8] if objects[i]["level"] == "free" and latest[objects[i]["userId"]] == i)
    withdrawn = next(i for i in next_song[7] if latest[objects[i]["userId"]] != i)

    lines[corrected] = compact({**objects[corrected], "level": "paid", "location": "Corrected City, CA"})
    del lines[withdrawn]
    lines.append(compact(late))
    return ("\n".join(lines) + "\n").encode("utf-8")


def compact(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"))


def utc_hour(ts: int) -> int:
    return (reference.EPOCH + timedelta(milliseconds=ts)).hour
