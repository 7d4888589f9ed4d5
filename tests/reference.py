"""What the star schema must hold, computed in plain Python from the raw files.

An independent reading of the data contract (the semantics listed in the README, "What it
builds", which the project's contract document, kept outside this repository, defines) for the
tests: no SQL and no pipeline code
(``sparkify.jsonload`` included), so that a bug in the pipeline cannot hide in its own oracle.
Given the event logs of a window and all song files, :func:`expected_tables` returns the exact
rows of ``songplays``, ``users``, ``songs``, ``artists`` and ``time`` after the hourly loads of
``[start, end)``, normalised by :func:`normalise` like rows read back with psycopg.

Where the contract leaves a choice to the pipeline, this follows the pipeline's documented one:

* ``songplay_id`` is the MD5 (hex) of ``f"{sessionId}-{itemInSession}-{ts}"``;
* several songs fit an event: the smallest ``song_id`` wins;
* a user's latest event: largest ``ts``, then ``sessionId``, then ``itemInSession``;
* an artist's attributes come from its song with both coordinates, then with a non-empty
  location, then with the smallest ``song_id``.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

EPOCH = datetime(1970, 1, 1)
# Seconds: a song fits an event whose length is within 1 ms of it. Compared on the decimal numbers
# as written in the files, so that binary rounding cannot put a pair 1 ms apart out of reach.
DURATION_TOLERANCE = Decimal("0.001")
FLOAT_DIGITS = 6  # floats are compared rounded to this many decimals (the data has at most 5)

# The columns the contract names, in its order: what the tests read back from the warehouse.
COLUMNS: dict[str, tuple[str, ...]] = {
    "songplays": ("songplay_id", "start_time", "user_id", "level", "song_id", "artist_id", "session_id",
                  "location", "user_agent"),
    "users": ("user_id", "first_name", "last_name", "gender", "level"),
    "songs": ("song_id", "title", "artist_id", "year", "duration"),
    "artists": ("artist_id", "name", "location", "latitude", "longitude"),
    "time": ("start_time", "hour", "day", "week", "month", "year", "weekday"),
}
STAR_TABLES = tuple(COLUMNS)


# -- reading the raw files ------------------------------------------------------------------------


class JsonNumber(str):
    """A JSON number kept exactly as written (``66``, ``4.6``), so a text column gets its text."""

    __slots__ = ()


_DECODER = json.JSONDecoder(parse_int=JsonNumber, parse_float=JsonNumber)


def read_json_objects(path: Path) -> Iterator[dict[str, Any]]:
    """Every JSON object in a file: one per file, one per line, or several back to back."""
    text = path.read_text(encoding="utf-8")
    pos, length = 0, len(text)
    while True:
        while pos < length and text[pos] in " \t\r\n":
            pos += 1
        if pos >= length:
            return
        obj, pos = _DECODER.raw_decode(text, pos)
        if not isinstance(obj, dict):
            raise ValueError(f"{path}: expected JSON objects, found {obj!r}")
        yield obj


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)  # a JsonNumber becomes the plain str of its text


def _int(value: Any) -> int | None:
    if value is None or str(value).strip() == "":
        return None
    return int(str(value).strip())


def _float(value: Any) -> float | None:
    if value is None or str(value).strip() == "":
        return None
    return float(str(value).strip())


def _decimal(value: Any) -> Decimal | None:
    if value is None or str(value).strip() == "":
        return None
    return Decimal(str(value).strip())


@dataclass(frozen=True)
class Event:
    """One line of a daily event log, typed as the contract reads it."""

    artist: str | None
    first_name: str | None
    gender: str | None
    item_in_session: int | None
    last_name: str | None
    length: float | None
    length_exact: Decimal | None  # the number as written, for the 1 ms match
    level: str | None
    location: str | None
    page: str | None
    session_id: int | None
    song: str | None
    ts: int
    user_agent: str | None
    user_id: str | None  # as in the source: a string, "" when logged out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Event:
        return cls(
            artist=_text(obj.get("artist")),
            first_name=_text(obj.get("firstName")),
            gender=_text(obj.get("gender")),
            item_in_session=_int(obj.get("itemInSession")),
            last_name=_text(obj.get("lastName")),
            length=_float(obj.get("length")),
            length_exact=_decimal(obj.get("length")),
            level=_text(obj.get("level")),
            location=_text(obj.get("location")),
            page=_text(obj.get("page")),
            session_id=_int(obj.get("sessionId")),
            song=_text(obj.get("song")),
            ts=_int(obj["ts"]),
            user_agent=_text(obj.get("userAgent")),
            user_id=_text(obj.get("userId")),
        )


@dataclass(frozen=True)
class Song:
    """One song file, typed as the contract reads it."""

    song_id: str | None
    title: str | None
    artist_id: str | None
    artist_name: str | None
    artist_location: str | None
    artist_latitude: float | None
    artist_longitude: float | None
    year: int | None
    duration: float | None
    duration_exact: Decimal | None  # the number as written, for the 1 ms match

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Song:
        return cls(
            song_id=_text(obj.get("song_id")),
            title=_text(obj.get("title")),
            artist_id=_text(obj.get("artist_id")),
            artist_name=_text(obj.get("artist_name")),
            artist_location=_text(obj.get("artist_location")),
            artist_latitude=_float(obj.get("artist_latitude")),
            artist_longitude=_float(obj.get("artist_longitude")),
            year=_int(obj.get("year")),
            duration=_float(obj.get("duration")),
            duration_exact=_decimal(obj.get("duration")),
        )


def event_log_paths(data_root: Path, start: datetime, end: datetime) -> list[Path]:
    """The daily log files (``log_data/yyyy/mm/yyyy-mm-dd-events.json``) of the days ``[start, end)`` touches."""
    day, last = _naive(start).date(), (_naive(end) - timedelta(microseconds=1)).date()
    paths = []
    while day <= last:
        path = data_root / "log_data" / f"{day:%Y}" / f"{day:%m}" / f"{day:%Y-%m-%d}-events.json"
        if path.is_file():
            paths.append(path)
        day += timedelta(days=1)
    return paths


def read_events(paths: Iterable[Path]) -> list[Event]:
    return [Event.from_json(obj) for path in paths for obj in read_json_objects(path)]


def song_paths(data_root: Path) -> list[Path]:
    return sorted((data_root / "song_data").rglob("*.json"))


def read_songs(paths: Iterable[Path]) -> list[Song]:
    return [Song.from_json(obj) for path in paths for obj in read_json_objects(path)]


# -- the contract ---------------------------------------------------------------------------------


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of a UTC moment (naive means UTC)."""
    return (_naive(moment) - EPOCH) // timedelta(milliseconds=1)


def start_time(ts: int) -> datetime:
    """``ts`` (epoch ms) as a naive UTC timestamp, to the millisecond."""
    return EPOCH + timedelta(milliseconds=ts)


def songplay_id(event: Event) -> str:
    return hashlib.md5(f"{event.session_id}-{event.item_in_session}-{event.ts}".encode()).hexdigest()


def _nulls_last(value: Any) -> tuple:
    """Sort key piece that ranks NULL above every value, as PostgreSQL and Redshift do by default
    (last in ascending order, first in descending order)."""
    return (1, 0) if value is None else (0, value)


def compared(text: str | None) -> str | None:
    """Text as Redshift compares VARCHAR: trailing blanks insignificant (nothing else trimmed)."""
    return None if text is None else text.rstrip(" ")


class SongIndex:
    """Songs by (title, artist_name), to find the song an event played; text compared as Redshift
    compares VARCHAR (the data contract): trailing blanks are insignificant."""

    def __init__(self, songs: Iterable[Song]) -> None:
        self._by_name: dict[tuple[str, str], list[Song]] = defaultdict(list)
        for song in songs:
            if song.title is not None and song.artist_name is not None:
                self._by_name[(compared(song.title), compared(song.artist_name))].append(song)

    def match(self, event: Event) -> Song | None:
        """The song whose title and artist name equal the event's (trailing blanks aside) and whose
        duration is within 1 ms of its length; the smallest song_id if several; None if none."""
        if event.song is None or event.artist is None or event.length_exact is None:
            return None
        fits = [
            s for s in self._by_name.get((compared(event.song), compared(event.artist)), ())
            if s.duration_exact is not None and abs(s.duration_exact - event.length_exact) <= DURATION_TOLERANCE
        ]
        return min(fits, key=lambda s: _nulls_last(s.song_id), default=None)


def in_window(events: Iterable[Event], start: datetime, end: datetime) -> list[Event]:
    low, high = to_ms(start), to_ms(end)
    return [e for e in events if low <= e.ts < high]


def expected_songplays(events: Sequence[Event], index: SongIndex) -> list[tuple]:
    """One row per NextSong event (events sharing sessionId, itemInSession and ts are one event)."""
    plays: dict[str, tuple] = {}
    for event in events:
        if compared(event.page) != "NextSong":
            continue
        song = index.match(event)
        row = (
            songplay_id(event),
            start_time(event.ts),
            _int(event.user_id),
            event.level,
            song.song_id if song else None,
            song.artist_id if song else None,
            event.session_id,
            event.location,
            event.user_agent,
        )
        key = row[0]
        if key in plays:  # not in the real data; keep one deterministically (smallest song_id, then the rest)
            row = min(plays[key], row, key=lambda r: tuple(_nulls_last(v) for v in (r[4], r[2], r[3], r[7], r[8])))
        plays[key] = row
    return list(plays.values())


def expected_users(events: Sequence[Event]) -> list[tuple]:
    """One row per non-empty userId, from that user's latest event (any page)."""
    latest: dict[int, Event] = {}

    def recency(e: Event) -> tuple:
        return (e.ts, _nulls_last(e.session_id), _nulls_last(e.item_in_session))

    for event in events:
        if not compared(event.user_id):
            continue
        user_id = int(event.user_id)
        if user_id not in latest or recency(event) > recency(latest[user_id]):
            latest[user_id] = event
    return [(uid, e.first_name, e.last_name, e.gender, e.level) for uid, e in latest.items()]


def expected_songs(songs: Iterable[Song]) -> list[tuple]:
    """One row per song_id (the data has no duplicate ids; if it had, the smallest row wins)."""
    rows: dict[str, tuple] = {}
    for song in songs:
        if song.song_id is None:
            continue
        row = (song.song_id, song.title, song.artist_id, song.year, song.duration)
        key = compared(song.song_id)  # keys compare as Redshift compares text
        if key in rows:
            row = min(rows[key], row, key=lambda r: tuple(_nulls_last(v) for v in r[1:]))
        rows[key] = row
    return list(rows.values())


def expected_artists(songs: Iterable[Song]) -> list[tuple]:
    """One row per artist_id, from its song with both coordinates, then a non-empty location,
    then the smallest song_id."""

    def preference(s: Song) -> tuple:
        has_coordinates = s.artist_latitude is not None and s.artist_longitude is not None
        has_location = s.artist_location is not None and compared(s.artist_location) != ""
        return (not has_coordinates, not has_location, _nulls_last(s.song_id))

    best: dict[str, Song] = {}
    for song in songs:
        if song.artist_id is None:
            continue
        key = compared(song.artist_id)
        if key not in best or preference(song) < preference(best[key]):
            best[key] = song
    return [
        (s.artist_id, s.artist_name, s.artist_location, s.artist_latitude, s.artist_longitude) for s in best.values()
    ]


def time_row(moment: datetime) -> tuple:
    """hour, day, ISO week, month, year, weekday (0 = Sunday … 6 = Saturday)."""
    return (moment, moment.hour, moment.day, moment.isocalendar()[1], moment.month, moment.year,
            moment.isoweekday() % 7)


def expected_time(songplays: Iterable[tuple]) -> list[tuple]:
    return [time_row(moment) for moment in {row[1] for row in songplays}]


def expected_tables(
    events: Iterable[Event], songs: Sequence[Song], start: datetime, end: datetime
) -> dict[str, list[tuple]]:
    """Every star table after the hourly loads of ``[start, end)`` (songs and artists: all songs),
    as :func:`normalise`d rows."""
    window = in_window(events, start, end)
    songplays = expected_songplays(window, SongIndex(songs))
    tables = {
        "songplays": songplays,
        "users": expected_users(window),
        "songs": expected_songs(songs),
        "artists": expected_artists(songs),
        "time": expected_time(songplays),
    }
    return {name: normalise(rows) for name, rows in tables.items()}


# -- comparing ------------------------------------------------------------------------------------


def _value(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, FLOAT_DIGITS)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _row_key(row: tuple) -> tuple:
    return tuple(_nulls_last(v) for v in row)


def normalise(rows: Iterable[Sequence[Any]]) -> list[tuple]:
    """Rows as sorted tuples, floats rounded to ``FLOAT_DIGITS`` decimals, timestamps naive UTC."""
    return sorted((tuple(_value(v) for v in row) for row in rows), key=_row_key)


def describe_difference(table: str, expected: list[tuple], actual: list[tuple], limit: int = 5) -> str:
    """"" when the normalised rows are equal, else what differs (counts, then a few rows each way)."""
    expected, actual = normalise(expected), normalise(actual)
    if expected == actual:
        return ""
    exp_set, act_set = set(expected), set(actual)
    missing = sorted(exp_set - act_set, key=_row_key)
    extra = sorted(act_set - exp_set, key=_row_key)
    lines = [f"{table}: expected {len(expected)} row(s), found {len(actual)}"]
    if len(act_set) != len(actual):
        lines.append(f"  {len(actual) - len(act_set)} duplicate row(s) in the warehouse")
    lines += [f"  missing:    {r!r}" for r in missing[:limit]]
    lines += [f"  unexpected: {r!r}" for r in extra[:limit]]
    if len(missing) > limit or len(extra) > limit:
        lines.append(f"  ({len(missing)} missing and {len(extra)} unexpected in all)")
    return "\n".join(lines)


def _naive(moment: datetime | date) -> datetime:
    if not isinstance(moment, datetime):
        return datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
