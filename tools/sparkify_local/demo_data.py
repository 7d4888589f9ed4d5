"""A small, deterministic Sparkify data set in the exact S3 layout and formats of the real one.

Layout (keys relative to the bucket root)::

    song_data/<A-Z>/<A-Z>/<A-Z>/TR<16 chars>.json    one compact JSON object, no trailing newline
    log_data/<yyyy>/<mm>/<yyyy>-<mm>-<dd>-events.json NDJSON, no newline after the last line
    log_json_path.json                               the Redshift COPY JSONPaths file (real bytes)

The bytes follow the real files: keys in alphabetical order, compact separators, pure ASCII with
non-ASCII written as ``\\uXXXX`` and ``/`` written as ``\\/``. The data exercises every quirk the
data contract (README, "What it builds") lists: ``userId`` always a string (``""`` when logged out,
with name, gender, location, agent and registration null), epoch-millisecond ``ts`` and float
``registration``, ``song``/``artist``/``length`` null off ``NextSong``, titles / artist names /
locations that are JSON numbers, null coordinates, year 0, artists with several names, titles with
leading or trailing spaces, non-ASCII text, two events of one user sharing a ``ts``, hours with no
event and hours with no ``NextSong``, users going free→paid (and paid→free) inside the window,
plays that match a song exactly and plays that match none (some of them near misses).

Determinism: everything comes from ``random.Random`` instances seeded with strings, so the same
arguments give the same bytes on any machine. A day's log file depends only on the day, ``seed``,
``songs`` and ``events_per_day``, never on the window around it, so generating [a, c) gives the
same files as [a, b) plus [b, c); ``now`` only cuts events off (a prefix of the day by ``ts``).
A day with no event left (all after ``now``, or ``events_per_day=0``) gets no file at all: the
pipeline treats a missing and an empty daily file alike.

Standard library only; no network. About 0.2 s for 30 days at the defaults.

CLI: ``python -m sparkify_local.demo_data --out DIR --start 2018-11-01 --end 2018-11-03``
"""

from __future__ import annotations

import argparse
import json
import math
import random
import string
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

# The real log_json_path.json, byte for byte (456 bytes, no trailing newline): 18 paths in the
# column order of staging_events.
LOG_JSON_PATH = (
    "{\n"
    '    "jsonpaths": [\n'
    "        \"$['artist']\",\n"
    "        \"$['auth']\",\n"
    "        \"$['firstName']\",\n"
    "        \"$['gender']\",\n"
    "        \"$['itemInSession']\",\n"
    "        \"$['lastName']\",\n"
    "        \"$['length']\",\n"
    "        \"$['level']\",\n"
    "        \"$['location']\",\n"
    "        \"$['method']\",\n"
    "        \"$['page']\",\n"
    "        \"$['registration']\",\n"
    "        \"$['sessionId']\",\n"
    "        \"$['song']\",\n"
    "        \"$['status']\",\n"
    "        \"$['ts']\",\n"
    "        \"$['userAgent']\",\n"
    "        \"$['userId']\"\n"
    "    ]\n"
    "}"
).encode("ascii")

SONG_KEYS = (
    "artist_id", "artist_latitude", "artist_location", "artist_longitude", "artist_name",
    "duration", "num_songs", "song_id", "title", "year",
)
EVENT_KEYS = (
    "artist", "auth", "firstName", "gender", "itemInSession", "lastName", "length", "level",
    "location", "method", "page", "registration", "sessionId", "song", "status", "ts",
    "userAgent", "userId",
)
# Null on every logged-out event in the real data (userId is "" there).
LOGGED_OUT_NULL_KEYS = frozenset(
    {"artist", "firstName", "gender", "lastName", "length", "location", "registration", "song", "userAgent"}
)
MIN_SONGS = 16  # the fixed quirky songs below, plus a few ordinary ones

PAGES = {  # page -> (method, status), as in the real logs
    "NextSong": ("PUT", 200),
    "Home": ("GET", 200),
    "Login": ("PUT", 307),
    "Logout": ("PUT", 307),
    "About": ("GET", 200),
    "Help": ("GET", 200),
    "Settings": ("GET", 200),
    "Save Settings": ("PUT", 307),
    "Error": ("GET", 404),
    "Upgrade": ("GET", 200),
    "Downgrade": ("GET", 200),
    "Submit Upgrade": ("PUT", 307),
    "Submit Downgrade": ("PUT", 307),
}

_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SESSION_BASE = date(2018, 1, 1).toordinal()
_CYCLE_DAYS = 8  # cycling users: upgrade on phase 0, paid 1-3, downgrade on phase 4, free 5-7

# -- word lists (fictional names; a few non-ASCII words so escapes appear everywhere) --------------

_WORDS = (
    "Midnight Summer Electric Silver Broken Golden Velvet Paper Neon Crystal Hollow Wild Quiet Burning "
    "Northern Lonely Secret Distant Falling Rising Frozen Restless Hidden Crimson Amber Static Gentle "
    "Heart River Highway Shadow Garden Mirror Ocean Thunder Window Station Harbor Engine Lantern Signal "
    "Morning Satellite Canyon Meadow Avenue Machine Rain Fire Stone Dream Song City Love Night Road"
).split()
_WORDS_INTL = ("Café", "Niño", "Mañana", "Über", "Señor", "Ölfeld", "Ångström", "Fête", "Zürich", "Brûlée")
_FIRST_F = "Ava Emma Mia Chloe Lily Sofia Layla Zoe Nora Ruby Stella Hazel Aria Cora Ivy Lena Piper".split()
_FIRST_M = "Liam Noah Lucas Ethan Jacob Mason Aiden Caleb Owen Elijah Henry Levi Jayden Wyatt Dylan Miles Theo".split()
_FIRST = _FIRST_F + _FIRST_M
_LAST = (
    "Harris Chen Patel Morgan Rivera Brooks Foster Hughes Kim Nguyen Ortiz Reed Shaw Stone Tran Walsh "
    "Young Bell Cruz Diaz Ellis Frank Grant Hayes Kelly Lopez Meyer Ross Silva Wolfe"
).split()
_METROS = (
    "San Francisco-Oakland-Hayward, CA", "Portland-South Portland, ME", "Lansing-East Lansing, MI",
    "Chicago-Naperville-Elgin, IL-IN-WI", "Atlanta-Sandy Springs-Roswell, GA", "Waterloo-Cedar Falls, IA",
    "Lake Havasu City-Kingman, AZ", "San Jose-Sunnyvale-Santa Clara, CA", "Tampa-St. Petersburg-Clearwater, FL",
    "New York-Newark-Jersey City, NY-NJ-PA", "Houston-The Woodlands-Sugar Land, TX", "Red Bluff, CA",
    "Birmingham-Hoover, AL", "Detroit-Warren-Dearborn, MI", "Winston-Salem, NC", "Columbia, SC",
)
_AGENTS = (  # the real logs wrap some agents in double quotes
    '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) '
    'Chrome/36.0.1985.143 Safari/537.36"',
    "Mozilla/5.0 (Windows NT 5.1; rv:31.0) Gecko/20100101 Firefox/31.0",
    '"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/37.0.2062.94 Safari/537.36"',
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.9; rv:31.0) Gecko/20100101 Firefox/31.0",
    '"Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 (KHTML, like Gecko) '
    'Version/7.0 Mobile/11D257 Safari/9537.53"',
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
)
_ARTIST_PLACES = (
    ("New York, NY", 40.71455, -74.00712), ("Memphis, TN", 35.14968, -90.04892),
    ("London, England", 51.50632, -0.12714), ("San Francisco, CA", 37.77916, -122.42005),
    ("Chicago, IL", 41.88415, -87.63241), ("Stockholm, Sweden", 59.33217, 18.06243),
    ("Reykjavík, Iceland", 64.13548, -21.89541), ("São Paulo, Brazil", -23.56288, -46.65479),
    ("Berlin, Germany", 52.51607, 13.37698), ("Austin, TX", 30.26759, -97.74299),
)


# -- model --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Song:
    track_id: str
    song_id: str
    title: str | int | float
    artist_id: str
    artist_name: str | int
    artist_location: str | int | None
    artist_latitude: float | None
    artist_longitude: float | None
    duration: float
    year: int

    @property
    def key(self) -> str:
        return f"song_data/{self.track_id[2]}/{self.track_id[3]}/{self.track_id[4]}/{self.track_id}.json"

    @property
    def play(self) -> tuple[str, str, float]:
        """The (song, artist, length) a NextSong event carries when it plays this song."""
        return _text(self.title), _text(self.artist_name), self.duration

    def to_json(self) -> bytes:
        return _dumps(
            {
                "artist_id": self.artist_id,
                "artist_latitude": self.artist_latitude,
                "artist_location": self.artist_location,
                "artist_longitude": self.artist_longitude,
                "artist_name": self.artist_name,
                "duration": self.duration,
                "num_songs": 1,
                "song_id": self.song_id,
                "title": self.title,
                "year": self.year,
            }
        )


@dataclass(frozen=True)
class User:
    user_id: str
    first_name: str
    last_name: str
    gender: str
    location: str
    agent: str
    registration: float  # epoch ms as a float, like 1541044398796.0
    plan: str  # "free", "paid" or "cycle"
    offset: int  # cycling users: phase offset in days


@dataclass(frozen=True)
class Summary:
    files: int  # all objects: song files + log files + the JSONPaths file
    songs: int
    log_files: int
    events: int
    next_song: int
    matching_plays: int  # NextSong events whose (song, artist, length) equals a song's exactly
    bytes: int

    def __str__(self) -> str:
        return (
            f"{self.files} files ({self.songs} songs, {self.log_files} daily log files, 1 JSONPaths file), "
            f"{self.events} events, {self.next_song} NextSong, {self.matching_plays} matching plays, "
            f"{self.bytes} bytes"
        )


def _text(value: str | int | float) -> str:
    """A value as the warehouse stores it: JSON numbers become their JSON text (66, 4.6)."""
    return value if isinstance(value, str) else json.dumps(value)


def _dumps(obj: dict) -> bytes:
    # Compact, ASCII with \uXXXX escapes, and "/" escaped as "\/" like the real files ("/" only
    # ever occurs inside strings in JSON text, so the replacement is safe).
    return json.dumps(obj, separators=(",", ":")).replace("/", "\\/").encode("ascii")


def _rid(rng: random.Random, prefix: str, n: int = 16) -> str:
    return prefix + "".join(rng.choices(string.ascii_uppercase + string.digits, k=n))


def _track_id(rng: random.Random) -> str:
    return "TR" + "".join(rng.choices(string.ascii_uppercase, k=5)) + "128F" + "".join(
        rng.choices("0123456789ABCDEF", k=7)
    )


# -- the song catalog (independent of the window) ---------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    songs: tuple[Song, ...]
    hot: tuple[Song, ...]  # songs the matching plays pick from (every quirky song is in it)
    near_misses: tuple[tuple[str, str, float], ...]  # plays that almost match a song, but not exactly
    unknown: tuple[tuple[str, str, float], ...]  # plays of songs not in the catalog
    plays: frozenset[tuple[str, str, float]]  # every song's exact play


def _title(rng: random.Random) -> str:
    words = rng.sample(_WORDS, rng.randint(1, 3))
    if rng.random() < 0.08:
        words.insert(rng.randrange(len(words) + 1), rng.choice(_WORDS_INTL))
    title = " ".join(words)
    if rng.random() < 0.1:
        title += rng.choice((" (Album Version)", " (Live)", " (Remix)", " / Reprise"))
    return title


def _artist_name(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.3:
        return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    if r < 0.6:
        return f"The {rng.choice(_WORDS)} {rng.choice(_WORDS)}s"
    if r < 0.7:
        return f"{rng.choice(_WORDS_INTL)} {rng.choice(_WORDS)}"
    return " ".join(rng.sample(_WORDS, 2))


def _place(rng: random.Random) -> tuple[str, float | None, float | None]:
    r = rng.random()
    if r < 0.45:
        return "", None, None
    place, lat, lon = rng.choice(_ARTIST_PLACES)
    if r < 0.6:
        return place, None, None  # a location but no coordinates
    return place, lat, lon


def build_catalog(songs: int = 300, seed: int = 7) -> Catalog:
    if songs < MIN_SONGS:
        raise ValueError(f"songs={songs}: at least {MIN_SONGS} are needed so that every quirk is present")
    rng = random.Random(f"sparkify-demo-songs:{seed}:{songs}")
    used_ids: set[str] = set()

    def uid(prefix: str) -> str:
        while True:
            value = _track_id(rng) if prefix == "TR" else _rid(rng, prefix)
            if value not in used_ids:
                used_ids.add(value)
                return value

    def duration() -> float:
        return round(rng.uniform(30, 600), 5)

    def year() -> int:
        return 0 if rng.random() < 0.35 else rng.randint(1958, 2010)

    def song(title, artist_id, name, place=None, **kw) -> Song:
        location, lat, lon = place if place is not None else _place(rng)
        fields = dict(
            track_id=uid("TR"), song_id=uid("SO"), title=title, artist_id=artist_id, artist_name=name,
            artist_location=location, artist_latitude=lat, artist_longitude=lon,
            duration=duration(), year=year(),
        )
        fields.update(kw)
        return Song(**fields)

    # Fixed quirky songs first: each quirk is present whatever the random draw.
    ar = [uid("AR") for _ in range(10)]
    special = [
        song(66, ar[0], "The Afterglow Whigs", ("Hamilton, OH", 39.39954, -84.56261)),  # numeric title
        song(4.6, ar[1], "Mob Fig", ("", None, None), year=0),  # float title
        song("Come Deve Andare", ar[2], 883, ("", None, None)),  # numeric artist name
        song("Circus Plate #1", ar[3], "Frankie Bonez", (99, None, None)),  # numeric location
        song("Bad Meaning Good ", ar[4], "Velvet Harbor", ("", None, None)),  # trailing space
        song(" Dry Techterlech", ar[4], "Velvet Harbor", ("", None, None)),  # leading space
        song("Soldiers Of Doomsday\u00a0", ar[5], "Iron Lantern", ("Austin, TX", 30.26759, -97.74299)),
        song("Pa\u00eds Tropical / Spyro", ar[6], "M\u00e4go de Oz", ("Madrid, Spain", 40.41669, -3.70035)),
        song("Caf\u00e9 Ni\u00f1o", ar[6], "Mago de Oz", ("", None, None)),  # same artist, other name
        song("The Plasma Line", ar[7], "The Plasmatix", ("New York, NY", 40.71455, -74.00712)),
        song("Neon Static", ar[7], "Plasmatix", ("Brooklyn, NY", None, None)),  # other name and place
        song("Northern Road", ar[8], "Ghislain Poirer feat. Abdominal", ("", None, None)),
        song("Hidden Engine", ar[8], "Ghislain Poirer", ("Montr\u00e9al, Qu\u00e9bec", 45.51228, -73.55439)),
        song("\u6771\u4eac Nights", ar[9], "Satellite Canyon", ("", None, None)),  # CJK title
        song('0" (Interlude)', ar[9], "Satellite Canyon", (None, None, None), year=0),  # quote; null location
    ]
    n_artists = max(4, (songs - len(special)) // 3)
    artists = []
    for _ in range(n_artists):
        names = [_artist_name(rng)]
        if rng.random() < 0.08:  # more names for one artist id
            names.append(rng.choice((f"{names[0]} feat. {rng.choice(_FIRST)}", f"The {names[0]}")))
        artists.append((uid("AR"), names, _place(rng)))
    ordinary = []
    for _ in range(songs - len(special)):
        artist_id, names, place = rng.choice(artists)
        r = rng.random()
        title: str | int | float = _title(rng)
        if r < 0.01:
            title = rng.randint(1, 2500)
        elif r < 0.03:
            title = title + " " if rng.random() < 0.5 else " " + title
        name: str | int = rng.choice(names)
        if rng.random() < 0.005:
            name = rng.randint(100, 4000)
        ordinary.append(song(title, artist_id, name, place if rng.random() < 0.9 else None))
    all_songs = special + ordinary
    # No two songs may share a play (title, artist, duration): nudge a duration if they do.
    plays: set[tuple[str, str, float]] = set()
    for i, s in enumerate(all_songs):
        while s.play in plays:
            s = Song(**{**s.__dict__, "duration": round(s.duration + 0.01, 5)})
        all_songs[i] = s
        plays.add(s.play)

    hot = tuple(all_songs[: len(special)] + rng.sample(ordinary, min(len(ordinary), 45)))
    near: list[tuple[str, str, float]] = [
        (_text(special[4].title).strip(), "Velvet Harbor", special[4].duration),  # trimmed title
        (_text(special[5].title).strip(), "Velvet Harbor", special[5].duration),
        (_text(special[7].title), "Mago de Oz", special[7].duration),  # the artist's other name
        (_text(special[9].title), "Plasmatix", special[9].duration),
        (_text(special[0].title), "The Afterglow Whigs", round(special[0].duration + 0.25, 5)),  # length
        (_text(special[9].title).upper(), "The Plasmatix", special[9].duration),  # case
    ]
    unknown = []
    while len(unknown) < max(80, songs // 2):
        unknown.append((_title(rng), _artist_name(rng), round(rng.uniform(30, 600), 5)))
    near = [p for p in near if p not in plays]
    unknown = [p for p in unknown if p not in plays]
    return Catalog(tuple(all_songs), hot, tuple(near), tuple(unknown), frozenset(plays))


# -- users (independent of the window) -------------------------------------------------------------


def build_users(events_per_day: int = 400, seed: int = 7) -> tuple[User, ...]:
    n = max(24, events_per_day // 4)
    rng = random.Random(f"sparkify-demo-users:{seed}:{n}")
    base = datetime(2018, 9, 1, tzinfo=UTC).timestamp() * 1000
    cycling = max(_CYCLE_DAYS, n // 4)
    users = []
    for i in range(n):
        plan = "cycle" if i < cycling else ("paid" if rng.random() < 0.35 else "free")
        gender = rng.choice("MF")
        users.append(
            User(
                user_id=str(i + 2),
                first_name=rng.choice(_FIRST_F if gender == "F" else _FIRST_M),
                last_name=rng.choice(_LAST),
                gender=gender,
                location=rng.choice(_METROS),
                agent=rng.choice(_AGENTS),
                registration=float(int(base + rng.uniform(0, 60) * _DAY_MS)),
                plan=plan,
                offset=i % _CYCLE_DAYS,
            )
        )
    return tuple(users)


# -- one day's events --------------------------------------------------------------------------------


def _day_ms(day: date) -> int:
    return int((datetime(day.year, day.month, day.day, tzinfo=UTC) - _EPOCH).total_seconds()) * 1000


def _hour_weight(hour: int) -> float:
    # Busiest around 20:00 UTC (US afternoon), calmest around 08:00 UTC.
    return 1.0 + 0.8 * math.cos(2 * math.pi * (hour - 20) / 24)


class _Day:
    """Builds the events of one UTC day from its own RNG."""

    def __init__(self, day: date, catalog: Catalog, users: tuple[User, ...], events_per_day: int, seed: int):
        self.day = day
        self.catalog = catalog
        self.users = users
        self.rng = random.Random(f"sparkify-demo-events:{seed}:{len(catalog.songs)}:{events_per_day}:{day}")
        self.start = _day_ms(day)
        self.ordinal = day.toordinal()
        self.events_per_day = events_per_day
        self.sessions = 0
        self.busy: dict[str, list[tuple[int, int]]] = {}
        self.transition: dict[str, int] = {}  # user id -> ts of the first event after the level change
        self.events: list[dict] = []
        self.shared_ts_done = False

    # level of a user at a time: fixed plans, or an 8-day cycle with an upgrade and a downgrade day
    def phase(self, user: User) -> int:
        return (self.ordinal + user.offset) % _CYCLE_DAYS

    def level(self, user: User, ts: int) -> str:
        if user.plan != "cycle":
            return user.plan
        phase = self.phase(user)
        if phase == 0:
            return "paid" if ts >= self.transition[user.user_id] else "free"
        if phase == _CYCLE_DAYS // 2:
            return "free" if ts >= self.transition[user.user_id] else "paid"
        return "paid" if phase < _CYCLE_DAYS // 2 else "free"

    def play(self) -> tuple[str, str, float]:
        r = self.rng.random()
        if r < 0.32:
            return self.rng.choice(self.catalog.hot).play
        if r < 0.38 and self.catalog.near_misses:
            return self.rng.choice(self.catalog.near_misses)
        return self.rng.choice(self.catalog.unknown)

    def new_session_id(self) -> int:
        self.sessions += 1
        return (self.ordinal - _SESSION_BASE) % 100_000 * 10_000 + self.sessions

    def timeline(self, pages: list[str], start: int, end: int, *, shared_ts: bool = False):
        """(page, ts, play) for each page from ``start``, cut at ``end``."""
        out, ts = [], start
        for i, page in enumerate(pages):
            if ts >= end:
                break
            play = self.play() if page == "NextSong" else None
            out.append((page, ts, play))
            if shared_ts and i == 0:
                continue  # the next event gets the same ts
            if play is not None and self.rng.random() < 0.8:
                ts += round(play[2] * 1000)  # listened to the end
            elif play is not None:
                ts += self.rng.randint(15_000, max(15_001, round(play[2] * 1000)))  # skipped
            else:
                ts += self.rng.randint(2_000, 90_000)
        return out

    def free_user(self, start: int, end: int) -> User | None:
        for _ in range(12):
            user = self.rng.choice(self.users)
            if all(end < s or start > e for s, e in self.busy.get(user.user_id, [])):
                return user
        return None

    def emit(self, user: User | None, logged_in: list[bool], steps, session_id: int, level: str | None = None):
        for item, ((page, ts, play), inside) in enumerate(zip(steps, logged_in, strict=True)):
            method, status = PAGES[page]
            who = user if inside else None
            self.events.append(
                {
                    "artist": play[1] if play else None,
                    "auth": "Logged In" if inside else "Logged Out",
                    "firstName": who.first_name if who else None,
                    "gender": who.gender if who else None,
                    "itemInSession": item,
                    "lastName": who.last_name if who else None,
                    "length": play[2] if play else None,
                    "level": self.level(user, ts) if user else level,
                    "location": who.location if who else None,
                    "method": method,
                    "page": page,
                    "registration": who.registration if who else None,
                    "sessionId": session_id,
                    "song": play[0] if play else None,
                    "status": status,
                    "ts": ts,
                    "userAgent": who.agent if who else None,
                    "userId": who.user_id if who else "",
                }
            )
        if user is not None and steps:
            self.busy.setdefault(user.user_id, []).append((steps[0][1], steps[-1][1]))

    def transition_session(self, user: User, hour: int, upgrade: bool) -> None:
        rng = self.rng
        start = self.start + hour * _HOUR_MS + rng.randint(0, 600_000)
        ask, submit = ("Upgrade", "Submit Upgrade") if upgrade else ("Downgrade", "Submit Downgrade")
        pages = ["Home", "NextSong", ask, submit, "Home", "NextSong", "NextSong"]
        steps = []
        ts = start
        for page in pages:  # short fixed gaps: the whole session fits well inside the hour
            play = self.play() if page == "NextSong" else None
            steps.append((page, ts, play))
            ts += rng.randint(20_000, 300_000) if play else rng.randint(2_000, 60_000)
        self.transition[user.user_id] = steps[4][1]  # the Home after Submit: first event at the new level
        self.emit(user, [True] * len(steps), steps, self.new_session_id())

    def random_session(self, hour: int, size: int, music: bool, logged_out: bool = False) -> int:
        rng = self.rng
        hour_start, hour_end = self.start + hour * _HOUR_MS, self.start + (hour + 1) * _HOUR_MS
        start = hour_start + rng.randint(0, 3_300_000)
        kind = rng.random()
        if not music:  # an hour without NextSong: a few page views, often logged out
            if logged_out or kind < 0.5:
                steps = self.timeline([rng.choice(("Home", "Login", "About", "Help"))], start, hour_end)
                self.emit(None, [False], steps, self.new_session_id(), rng.choice(("free", "paid")))
                return len(steps)
            pages = [rng.choice(("Home", "Settings", "Help", "About")) for _ in range(min(size, 3))]
            logged_in = [True] * len(pages)
        elif kind < 0.06:  # logged out only
            pages = ["Home"] + [rng.choice(("Home", "About", "Help", "Login")) for _ in range(min(size, 3) - 1)]
            steps = self.timeline(pages, start, hour_end)
            self.emit(None, [False] * len(steps), steps, self.new_session_id(), rng.choice(("free", "paid")))
            return len(steps)
        else:
            pages = [self.page() for _ in range(size)]
            logged_in = [True] * size
            if kind < 0.16:  # logs in first
                pages = ["Home", "Login", "Home"] + pages
                logged_in = [False, False] + [True] * (size + 1)
            elif kind < 0.22:  # logs out and looks around
                pages = pages + ["Logout", "Home"]
                logged_in = logged_in + [True, False]
        shared = music and not self.shared_ts_done and logged_in[0] and len(pages) >= 2
        if shared:  # two events of one user with the same ts (Home, then NextSong at once)
            pages[0], pages[1] = "Home", "NextSong"
        steps = self.timeline(pages, start, hour_end, shared_ts=shared)
        user = self.free_user(steps[0][1], steps[-1][1])
        if user is None:
            return 0
        if shared and len(steps) >= 2:
            self.shared_ts_done = True
        self.emit(user, logged_in[: len(steps)], steps, self.new_session_id())
        return len(steps)

    def page(self) -> str:
        r = self.rng.random()
        if r < 0.86:
            return "NextSong"
        return self.rng.choice(("Home", "Home", "Home", "Settings", "Help", "About", "Save Settings", "Error"))

    def build(self) -> list[dict]:
        if self.events_per_day <= 0:
            return []
        rng = self.rng
        ranked = sorted(range(24), key=lambda h: _hour_weight(h) + rng.random() * 0.9)
        quiet = set(ranked[: rng.randint(3, 6)])  # hours with no event at all
        no_music = set(ranked[len(quiet) : len(quiet) + rng.randint(1, 2)])  # events, but no NextSong
        music_hours = [h for h in range(24) if h not in quiet and h not in no_music]

        for user in self.users:  # the day's level changes come first: they fix those users' levels
            if user.plan == "cycle" and self.phase(user) in (0, _CYCLE_DAYS // 2):
                self.transition_session(user, rng.choice(music_hours), upgrade=self.phase(user) == 0)

        target = max(1, round(self.events_per_day * rng.uniform(0.75, 1.25))) - len(self.events)
        for hour in sorted(no_music):
            for i in range(rng.randint(1, 2)):  # the first one logged out, so the hour is never empty
                target -= self.random_session(hour, rng.randint(1, 3), music=False, logged_out=i == 0)
        weights = [_hour_weight(h) for h in music_hours]
        quota = {h: 0 for h in music_hours}
        for h in rng.choices(music_hours, weights, k=max(0, target)):
            quota[h] += 1
        for hour in music_hours:
            left, attempts = quota[hour], 0
            while left > 0 and attempts < 50:
                attempts += 1
                left -= self.random_session(hour, min(left, rng.choice((1, 2, 3, 4, 5, 6, 8, 10, 12))), True)
        self.events.sort(key=lambda e: (e["ts"], e["sessionId"], e["itemInSession"]))
        return self.events


# -- the data set --------------------------------------------------------------------------------------


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day < end:
        yield day
        day += timedelta(days=1)


def _now_ms(now: datetime | None) -> int | None:
    if now is None:
        return None
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return int((now - _EPOCH).total_seconds() * 1000)


def log_key(day: date) -> str:
    return f"log_data/{day:%Y}/{day:%m}/{day:%Y-%m-%d}-events.json"


def build(
    start: date,
    end: date,
    songs: int = 300,
    events_per_day: int = 400,
    seed: int = 7,
    now: datetime | None = None,
) -> tuple[list[tuple[str, bytes]], Summary]:
    """Every object of the data set as (key, bytes), in key order, and the counts."""
    if not 0 <= events_per_day <= 20_000:
        raise ValueError(f"events_per_day={events_per_day}: use 0 .. 20000 (session ids are unique per day up to that)")
    catalog = build_catalog(songs, seed)
    users = build_users(events_per_day, seed)
    limit = _now_ms(now)
    objects: list[tuple[str, bytes]] = [("log_json_path.json", LOG_JSON_PATH)]
    objects += sorted((s.key, s.to_json()) for s in catalog.songs)
    events = next_song = matching = log_files = 0
    for day in _days(start, end):
        if limit is not None and _day_ms(day) > limit:
            break
        day_events = _Day(day, catalog, users, events_per_day, seed).build()
        if limit is not None:
            day_events = [e for e in day_events if e["ts"] <= limit]
        if not day_events:
            continue  # no file rather than an empty one
        objects.append((log_key(day), b"\n".join(_dumps(e) for e in day_events)))
        log_files += 1
        events += len(day_events)
        for e in day_events:
            if e["page"] == "NextSong":
                next_song += 1
                matching += (e["song"], e["artist"], e["length"]) in catalog.plays
    summary = Summary(
        files=len(objects), songs=len(catalog.songs), log_files=log_files, events=events,
        next_song=next_song, matching_plays=matching, bytes=sum(len(b) for _, b in objects),
    )
    return objects, summary


def objects(
    start: date,
    end: date,
    songs: int = 300,
    events_per_day: int = 400,
    seed: int = 7,
    now: datetime | None = None,
) -> list[tuple[str, bytes]]:
    """The (relative key, bytes) pairs of the data set, without writing anything."""
    return build(start, end, songs, events_per_day, seed, now)[0]


def generate(
    out_dir: Path,
    start: date,
    end: date,
    songs: int = 300,
    events_per_day: int = 400,
    seed: int = 7,
    now: datetime | None = None,
) -> Summary:
    """Write the data set for the days in [start, end) under ``out_dir`` and return the counts.

    Files already in ``out_dir`` are overwritten when they are part of the set and left alone
    otherwise (nothing is deleted).
    """
    items, summary = build(start, end, songs, events_per_day, seed, now)
    out_dir = Path(out_dir)
    for key, body in items:
        path = out_dir / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return summary


# -- CLI --------------------------------------------------------------------------------------------


def _parse_now(value: str) -> datetime:
    if value == "now":
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sparkify_local.demo_data",
        description="Write a small deterministic Sparkify data set in the S3 layout.",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--start", type=date.fromisoformat, required=True, help="first day (UTC), e.g. 2018-11-01")
    parser.add_argument("--end", type=date.fromisoformat, required=True, help="day after the last one (exclusive)")
    parser.add_argument("--songs", type=int, default=300)
    parser.add_argument("--events-per-day", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--now", type=_parse_now, default=None,
                        help="drop events after this UTC time (ISO 8601, or 'now')")
    args = parser.parse_args(argv)
    if args.end <= args.start:
        parser.error(f"--end {args.end} must be after --start {args.start}")
    try:
        summary = generate(args.out, args.start, args.end, args.songs, args.events_per_day, args.seed, args.now)
    except ValueError as err:
        parser.error(str(err))
    print(f"wrote {args.out} for {args.start} .. {args.end} (exclusive): {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
