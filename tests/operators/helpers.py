"""Tests of the operators against a real PostgreSQL, moto's real S3 server and, for the Redshift
path, a fake DB-API connection that records every statement it is sent (:class:`FakeRedshift`).

This module holds what the test modules share: a small hand-made Sparkify data set written the
way the real files are (camelCase NDJSON events, one song object per file, ``\\uXXXX`` escapes,
numbers where text is expected), a minimal task context, and the fake Redshift connection.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pendulum

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY = datetime(2018, 11, 4, tzinfo=UTC)  # a Sunday
EVENTS_KEY = "log_data/2018/11/2018-11-04-events.json"
JSONPATHS_KEY = "log_json_path.json"
SECRET = "testing-secret-key"
SESSION_TOKEN = "FQoGZXIvYXdzTestSessionToken0123456789"
ROLE_ARN = "arn:aws:iam::123456789012:role/sparkify-redshift-copy"

# The real JSONPaths file's content (18 paths, the order of staging_events' columns).
JSONPATHS = json.dumps(
    {
        "jsonpaths": [
            f"$['{name}']"
            for name in (
                "artist", "auth", "firstName", "gender", "itemInSession", "lastName", "length", "level",
                "location", "method", "page", "registration", "sessionId", "song", "status", "ts",
                "userAgent", "userId",
            )
        ]
    },
    indent=4,
)

STAGING_EVENTS_COLUMNS = (
    "artist", "auth", "firstname", "gender", "iteminsession", "lastname", "length", "level", "location",
    "method", "page", "registration", "sessionid", "song", "status", "ts", "useragent", "userid", "source_key",
)
STAGING_SONGS_COLUMNS = (
    "num_songs", "artist_id", "artist_latitude", "artist_longitude", "artist_location", "artist_name",
    "song_id", "title", "duration", "year",
)


def ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware or naive-UTC datetime."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int((moment - EPOCH) / timedelta(milliseconds=1))


def at(hour: int, minute: int = 0, second: int = 0, millis: int = 0, day: datetime = DAY) -> datetime:
    return day.replace(hour=hour, minute=minute, second=second, microsecond=millis * 1000)


def event(
    when: datetime,
    *,
    user: str = "10",
    page: str = "NextSong",
    level: str = "free",
    session: int = 100,
    item: int = 0,
    song: str | None = None,
    artist: str | None = None,
    length: float | None = None,
    first: str | None = "Lily",
    last: str | None = "Koch",
    gender: str | None = "F",
    location: str | None = "Chicago-Naperville-Elgin, IL-IN-WI",
    agent: str | None = "Mozilla/5.0 (X11; Linux x86_64)",
) -> dict[str, Any]:
    """One event object, with the real log files' keys and types."""
    logged_out = user == ""
    return {
        "artist": artist,
        "auth": "Logged Out" if logged_out else "Logged In",
        "firstName": None if logged_out else first,
        "gender": None if logged_out else gender,
        "itemInSession": item,
        "lastName": None if logged_out else last,
        "length": length,
        "level": level,
        "location": None if logged_out else location,
        "method": "PUT" if page == "NextSong" else "GET",
        "page": page,
        "registration": None if logged_out else 1540306145796.0,
        "sessionId": session,
        "song": song,
        "status": 200,
        "ts": ms(when),
        "userAgent": None if logged_out else agent,
        "userId": user,
    }


# One day of events: hour 10 has two users, a logged-out visitor, a matched and an unmatched play;
# hour 11 has one play of a song whose title and artist name are JSON numbers in the song file.
EVENTS: list[dict[str, Any]] = [
    event(at(10, 5, 0, 123), page="Home", session=100, item=0),
    event(at(10, 6, 0, 456), session=100, item=1, song="Song A", artist="Artist A", length=200.5),
    event(at(10, 10), user="20", level="paid", session=200, item=0, song="Zoë", artist="Björk", length=180.25,
          first="Émile", last="Noël", gender="M", location="Montréal, QC"),
    event(at(10, 15), user="", page="Home", session=300, item=0),
    event(at(10, 20), level="paid", session=100, item=2, song="Song A", artist="Artist A", length=200.5004),
    event(at(11, 30), user="20", level="paid", session=201, item=0, song="66", artist="4.6", length=99.0,
          first="Émile", last="Noël", gender="M", location="Montréal, QC"),
]

SONGS: dict[str, dict[str, Any]] = {
    "song_data/A/A/A/TRAAAAA128F000001.json": {
        "num_songs": 1, "artist_id": "ARA0001", "artist_latitude": None, "artist_location": "",
        "artist_longitude": None, "artist_name": "Artist A", "duration": 200.5, "song_id": "SOAAAAA000001",
        "title": "Song A", "year": 0,
    },
    "song_data/A/A/B/TRAABBB128F000002.json": {
        "num_songs": 1, "artist_id": "ARB0002", "artist_latitude": 45.50884, "artist_location": "Montréal",
        "artist_longitude": -73.58781, "artist_name": 4.6, "duration": 99.0, "song_id": "SOBBBBB000002",
        "title": 66, "year": 2001,
    },
    "song_data/A/B/C/TRABCCC128F000003.json": {
        "num_songs": 1, "artist_id": "ARC0003", "artist_latitude": None, "artist_location": "Reykjavík",
        "artist_longitude": None, "artist_name": "Björk", "duration": 301.0, "song_id": "SOCCCCC000003",
        "title": " Spaced Title ", "year": 1997,
    },
}


def ndjson(objects: list[dict[str, Any]]) -> str:
    """Objects one per line, ``\\uXXXX`` escapes for non-ASCII, no newline after the last (as the real logs)."""
    return "\n".join(json.dumps(o, ensure_ascii=True) for o in objects)


def song_file(song: dict[str, Any], pretty: bool = False) -> str:
    return json.dumps(song, ensure_ascii=True, indent=2 if pretty else None)


def expected_event_row(e: dict[str, Any], key: str | None = EVENTS_KEY) -> tuple:
    """The staging_events row a JSON event must give, in the table's column order."""
    paths = ("artist", "auth", "firstName", "gender", "itemInSession", "lastName", "length", "level", "location",
             "method", "page", "registration", "sessionId", "song", "status", "ts", "userAgent", "userId")
    return (*(e[p] for p in paths), key)


def expected_song_row(s: dict[str, Any]) -> tuple:
    """The staging_songs row a song file must give: numbers going into text columns keep their text."""
    def text(v: Any) -> Any:
        return None if v is None else str(v)

    return (s["num_songs"], s["artist_id"], s["artist_latitude"], s["artist_longitude"], text(s["artist_location"]),
            text(s["artist_name"]), s["song_id"], text(s["title"]), s["duration"], s["year"])


def put_sources(bucket, *, events: list[dict[str, Any]] | None = None, songs: bool = True) -> None:
    """Write the JSONPaths file, the day's event log and the song files to ``bucket``."""
    bucket.put(JSONPATHS_KEY, JSONPATHS)
    bucket.put(EVENTS_KEY, ndjson(EVENTS if events is None else events))
    if songs:
        for number, (key, song) in enumerate(SONGS.items()):
            bucket.put(key, song_file(song, pretty=number == 2))  # one pretty-printed file, as some real ones
        bucket.put("song_data/README.txt", "not a song")  # not *.json: ignored


# -- a minimal task context ------------------------------------------------------------------------


class FakeTaskInstance:
    """What the operators use of ``ti``: ``xcom_push``."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any, **_: Any) -> None:
        self.xcom[key] = value


def make_context(start: datetime, *, hours: float = 1, run_id: str | None = None, dag_id: str = "sparkify_etl"):
    """The parts of an Airflow context the operators read, for the interval ``[start, start + hours)``."""
    start = pendulum.instance(start.astimezone(UTC) if start.tzinfo else start.replace(tzinfo=UTC))
    end = start + timedelta(hours=hours)
    ti = FakeTaskInstance()
    return {
        "run_id": run_id or f"manual__{end.isoformat()}",
        "data_interval_start": start,
        "data_interval_end": end,
        "logical_date": end,
        "dag": SimpleNamespace(dag_id=dag_id),
        "ti": ti,
        "task_instance": ti,
        "params": {},
    }


def without_rss(result: dict) -> dict:
    """A staging task's result without its peak RSS (a measurement, checked to be one here)."""
    result = dict(result)
    assert result.pop("peak_rss_mb") > 0
    return result


def normalize(sql: str) -> str:
    """One line, single spaces: for comparing statements by their text."""
    return " ".join(sql.split())


# -- a fake Redshift connection -------------------------------------------------------------------------


class FakeRedshift:
    """Stands in for ``redshift_connector``: records every call, answers fetches plausibly.

    ``log`` holds ``("execute", sql, params)``, ``("commit",)``, ``("rollback",)`` and ``("close",)``
    in the order they happened, across every connection the hook opened.
    """

    def __init__(self) -> None:
        self.log: list[tuple] = []
        self.manifest_rows: list[tuple] = []  # what load_manifest holds: (s3_key, etag, size_bytes)
        self.listed: list[tuple] = []  # what the staging inserted into sparkify_listing
        self.listing_rows: list[tuple] = []  # load_listing's (listed_at,) for the prefix
        self.copy_count = 6
        self.fail_on: tuple[str, Exception] | None = None  # (text in the statement, error to raise)
        self.paramstyles: list[str | None] = []
        self.table_info_rows: list[tuple] = []  # svv_table_info's (table, stats_off, deleted rows, unsorted, rows)
        self.autocommit_at: list[tuple[str, bool]] = []  # (statement, the connection's autocommit then)
        # What the load-error views answer after a failed COPY: rows, or an error to raise.
        self.load_errors: dict[str, list[tuple] | Exception] = {"sys_load_error_detail": [], "stl_load_errors": []}

    def connect(self) -> FakeConnection:
        return FakeConnection(self)

    @property
    def statements(self) -> list[tuple[str, dict]]:
        return [(e[1], e[2]) for e in self.log if e[0] == "execute"]

    @property
    def sql(self) -> list[str]:
        return [normalize(s) for s, _ in self.statements]

    def count(self, what: str) -> int:
        return sum(1 for e in self.log if e[0] == what)

    def transactions(self) -> list[list[str]]:
        """The statements of each committed or rolled-back transaction, in order."""
        out, current = [], []
        for entry in self.log:
            if entry[0] == "execute":
                current.append(normalize(entry[1]))
            elif entry[0] in ("commit", "rollback"):
                out.append(current)
                current = []
        return out


class FakeConnection:
    def __init__(self, db: FakeRedshift) -> None:
        self.db = db
        self.autocommit = True

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.db, self)

    def commit(self) -> None:
        assert self.autocommit is False, "a transaction must run with autocommit off"
        self.db.log.append(("commit",))

    def rollback(self) -> None:
        self.db.log.append(("rollback",))

    def close(self) -> None:
        self.db.log.append(("close",))


class FakeCursor:
    def __init__(self, db: FakeRedshift, connection: FakeConnection) -> None:
        self.db = db
        self.connection = connection
        self.paramstyle: str | None = None
        self._rows: list[tuple] = []

    def execute(self, sql: str, params: Any = None) -> FakeCursor:
        self.db.log.append(("execute", sql, params))
        self.db.paramstyles.append(self.paramstyle)
        self.db.autocommit_at.append((normalize(sql), self.connection.autocommit))
        if self.db.fail_on and self.db.fail_on[0] in sql:
            raise self.db.fail_on[1]
        text = normalize(sql)
        if "pg_last_copy_count()" in text:
            self._rows = [(self.db.copy_count,)]
        elif text.startswith("CREATE TEMPORARY TABLE sparkify_listing"):
            self.db.listed = []
            self._rows = []
        elif text.startswith("INSERT INTO sparkify_listing"):
            count = len(re.findall(r"%\(k\d+\)s", sql))
            self.db.listed += [(params[f"k{i}"], params[f"e{i}"], params[f"s{i}"], params[f"l{i}"])
                               for i in range(count)]
            self._rows = []
        elif "FROM sparkify_listing l LEFT JOIN" in text:
            # What stage/todo.sql asks of the real warehouse, from the listing and the manifest given.
            known = {key: (etag, size) for key, etag, size in self.db.manifest_rows}
            limit = int(re.search(r"LIMIT (\d+)", text).group(1))
            todo = sorted((key, etag, size, int(key in known)) for key, etag, size, late in self.db.listed
                          if known.get(key) != (etag, size) and (key in known or not late)
                          and key > params["after"])
            self._rows = todo[:limit]
        elif (view := re.search(r"FROM (sys_load_error_detail|stl_load_errors)\b", text)):
            answer = self.db.load_errors[view.group(1)]
            if isinstance(answer, Exception):
                raise answer
            self._rows = list(answer)
        elif "FROM svv_table_info" in text:
            self._rows = list(self.db.table_info_rows)
        elif re.search(r"FROM \w+\.load_listing WHERE prefix =", text):
            self._rows = list(self.db.listing_rows)
        elif text.upper().startswith("SELECT COUNT(*)"):
            self._rows = [(3,)]
        else:
            self._rows = []
        return self

    def fetchall(self) -> list[tuple]:
        return list(self._rows)

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None

    def close(self) -> None:
        pass


# Syntax PostgreSQL accepts and Redshift does not (or the PostgreSQL-only path uses).
NOT_REDSHIFT = ("ON CONFLICT", "DISTINCT ON", "RETURNING", "SERIAL", "FROM STDIN", "IN SHARE ROW EXCLUSIVE MODE",
                "::JSONB", "GENERATED ALWAYS", "TRUNCATE")


def assert_redshift_compatible(statements: list[tuple[str, Any]]) -> None:
    """No PostgreSQL-only syntax, and every ``%(name)s`` placeholder has its bound value."""
    for sql, params in statements:
        upper = normalize(sql).upper()
        for bad in NOT_REDSHIFT:
            assert bad not in upper, f"{bad!r} sent to Redshift in: {normalize(sql)}"
        names = set(re.findall(r"%\((\w+)\)s", sql))
        assert names <= set(params or {}), f"unbound placeholders {names - set(params or {})} in: {normalize(sql)}"
