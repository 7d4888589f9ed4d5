"""The demo data generator: real layout and formats, every quirk of the data contract, determinism."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest

from conftest import ROOT, SHARED_DATA, real_data
from sparkify_local import demo_data

START, END = date(2018, 11, 1), date(2018, 11, 8)
SONG_KEY = re.compile(r"^song_data/([A-Z])/([A-Z])/([A-Z])/(TR[A-Z0-9]{16})\.json$")
LOG_KEY = re.compile(r"^log_data/(\d{4})/(\d{2})/(\d{4})-(\d{2})-(\d{2})-events\.json$")


@pytest.fixture(scope="module")
def data() -> dict[str, bytes]:
    items, summary = demo_data.build(START, END)
    assert summary.files == len(items)
    return dict(items)


@pytest.fixture(scope="module")
def songs(data) -> list[dict]:
    return [json.loads(body) for key, body in data.items() if key.startswith("song_data/")]


@pytest.fixture(scope="module")
def events(data) -> list[dict]:
    return [json.loads(line) for key, body in data.items() if key.startswith("log_data/") for line in body.split(b"\n")]


def raw(data, prefix: str) -> bytes:
    return b"\n".join(body for key, body in data.items() if key.startswith(prefix))


def text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def song_plays(songs) -> dict[tuple[str, str, float], dict]:
    return {(text(s["title"]), text(s["artist_name"]), s["duration"]): s for s in songs}


# -- layout and formats ------------------------------------------------------------------------------


def test_song_files_have_the_real_layout_and_format(data, songs):
    song_keys = [k for k in data if k.startswith("song_data/")]
    assert len(song_keys) == 300
    for key in song_keys:
        match = SONG_KEY.match(key)
        assert match, key
        a, b, c, track = match.groups()
        assert (a, b, c) == tuple(track[2:5])  # like song_data/A/G/G/TRAGGEK128F425BF44.json
        body = data[key]
        assert not body.endswith(b"\n") and body.startswith(b"{") and body.endswith(b"}")
        body.decode("ascii")  # pure ASCII
        obj = json.loads(body)
        assert list(obj) == list(demo_data.SONG_KEYS)
        assert b'":' in body and b'": ' not in body and b', "' not in body
        assert obj["num_songs"] == 1 and isinstance(obj["duration"], float) and isinstance(obj["year"], int)
        assert re.fullmatch(r"SO[A-Z0-9]{16}", obj["song_id"]) and re.fullmatch(r"AR[A-Z0-9]{16}", obj["artist_id"])
    assert len({s["song_id"] for s in songs}) == len(songs)


def test_song_files_match_a_real_one_key_for_key():
    root = real_data()
    real = next((root / "song_data" / "A" / "A" / "A").glob("*.json"))
    body = real.read_bytes()
    assert list(json.loads(body)) == list(demo_data.SONG_KEYS)
    assert not body.endswith(b"\n")


def test_log_files_have_the_real_layout_and_format(data):
    log_keys = [k for k in data if k.startswith("log_data/")]
    assert len(log_keys) == (END - START).days
    for key in log_keys:
        match = LOG_KEY.match(key)
        assert match, key
        y, m, y2, m2, d = map(int, match.groups())
        assert (y, m) == (y2, m2)
        day = date(y, m, d)
        body = data[key]
        assert body and not body.endswith(b"\n") and b"\n\n" not in body
        body.decode("ascii")
        lines = body.split(b"\n")
        day_start = int(datetime(y, m, d, tzinfo=UTC).timestamp() * 1000)
        ts = []
        for line in lines:
            obj = json.loads(line)
            assert list(obj) == list(demo_data.EVENT_KEYS)
            assert b'": ' not in line
            ts.append(obj["ts"])
        # every event falls on the file's UTC date; the file is in ts order like the real ones
        assert all(day_start <= t < day_start + 86_400_000 for t in ts), day
        assert ts == sorted(ts)


def test_log_files_match_a_real_one_key_for_key():
    root = real_data()
    body = (root / "log_data" / "2018" / "11" / "2018-11-05-events.json").read_bytes()
    assert not body.endswith(b"\n")
    assert all(list(json.loads(line)) == list(demo_data.EVENT_KEYS) for line in body.split(b"\n"))


def test_jsonpaths_file(data):
    body = data["log_json_path.json"]
    assert body == demo_data.LOG_JSON_PATH
    assert len(body) == 456 and not body.endswith(b"\n")
    paths = json.loads(body)["jsonpaths"]
    assert paths == [f"$['{key}']" for key in demo_data.EVENT_KEYS]
    real = SHARED_DATA / "log_json_path.json"
    if real.is_file():
        assert body == real.read_bytes()


def test_value_types_are_those_of_the_real_data(events, songs):
    root = real_data()
    real_events = [
        json.loads(line)
        for path in sorted((root / "log_data").rglob("*.json"))
        for line in path.read_bytes().split(b"\n")
    ]

    def types(rows, keys):
        out = defaultdict(set)
        for row in rows:
            for key in keys:
                out[key].add(type(row[key]).__name__)
        return out

    ours, theirs = types(events, demo_data.EVENT_KEYS), types(real_events, demo_data.EVENT_KEYS)
    for key in demo_data.EVENT_KEYS:
        assert ours[key] <= theirs[key], key
    # the keys null on logged-out events are the same as in the real logs
    real_null = {k for e in real_events if e["userId"] == "" for k, v in e.items() if v is None}
    assert real_null == demo_data.LOGGED_OUT_NULL_KEYS
    real_song = json.loads(next((root / "song_data").rglob("*.json")).read_bytes())
    assert set(real_song) == set(songs[0])


# -- the quirks -----------------------------------------------------------------------------------------


def test_user_id_is_always_a_string_and_empty_when_logged_out(events):
    assert all(isinstance(e["userId"], str) for e in events)
    logged_out = [e for e in events if e["userId"] == ""]
    assert logged_out
    for e in logged_out:
        assert e["auth"] == "Logged Out"
        assert {k for k, v in e.items() if v is None} == demo_data.LOGGED_OUT_NULL_KEYS
        assert e["level"] in ("free", "paid") and isinstance(e["sessionId"], int)
    assert all(e["auth"] == "Logged In" and e["firstName"] and e["userAgent"] for e in events if e["userId"])
    # a session that starts logged out and logs in, like the real ones
    by_session = defaultdict(list)
    for e in events:
        by_session[e["sessionId"]].append(e)
    assert any(s[0]["userId"] == "" and s[-1]["userId"] != "" for s in by_session.values())


def test_epoch_milliseconds_and_float_registration(data, events):
    logs = raw(data, "log_data/")
    assert re.search(rb'"registration":1\d{12}\.0,', logs)  # a float such as 1540919166796.0
    assert b'"registration":null,' in logs
    assert all(isinstance(e["ts"], int) and len(str(e["ts"])) == 13 for e in events)
    assert all(isinstance(e["registration"], float) for e in events if e["userId"])
    assert all(e["registration"] < e["ts"] for e in events if e["userId"])


def test_song_artist_length_only_on_next_song(events):
    for e in events:
        if e["page"] == "NextSong":
            assert isinstance(e["song"], str) and isinstance(e["artist"], str) and isinstance(e["length"], float)
        else:
            assert e["song"] is None and e["artist"] is None and e["length"] is None
    assert {e["page"] for e in events} >= {"NextSong", "Home", "Login", "Logout", "Submit Upgrade", "Submit Downgrade"}


def test_numbers_where_text_is_expected(data):
    songs_raw = raw(data, "song_data/")
    assert re.search(rb'"title":\d+,', songs_raw)  # e.g. 66
    assert re.search(rb'"title":\d+\.\d+,', songs_raw)  # e.g. 4.6
    assert re.search(rb'"artist_name":\d+,', songs_raw)
    assert re.search(rb'"artist_location":\d+,', songs_raw)


def test_null_coordinates_year_zero_and_a_null_location(songs):
    assert sum(s["artist_latitude"] is None for s in songs) > len(songs) / 3
    assert sum(s["artist_longitude"] is None for s in songs) > len(songs) / 3
    assert any(isinstance(s["artist_latitude"], float) for s in songs)
    assert sum(s["year"] == 0 for s in songs) > len(songs) / 5
    assert any(s["artist_location"] is None for s in songs)


def test_artists_with_more_than_one_name_or_place(songs):
    names, places = defaultdict(set), defaultdict(set)
    for s in songs:
        names[s["artist_id"]].add(text(s["artist_name"]))
        places[s["artist_id"]].add((text(s["artist_location"]), s["artist_latitude"]))
    assert sum(len(v) > 1 for v in names.values()) >= 3
    assert any(len(v) > 1 for v in places.values())


def test_titles_with_leading_or_trailing_spaces(songs):
    titles = [s["title"] for s in songs if isinstance(s["title"], str)]
    assert any(t.endswith(" ") for t in titles)
    assert any(t.startswith(" ") for t in titles)
    assert any(t.endswith("\u00a0") for t in titles)  # a non-breaking space, as in the real data


def test_non_ascii_is_escaped(data, songs, events):
    for prefix in ("song_data/", "log_data/"):
        body = raw(data, prefix)
        assert re.search(rb"\\u[0-9a-f]{4}", body), prefix
        assert body.isascii()
        assert b"\\/" in body and not re.search(rb"[^\\]/", body)  # "/" written as "\/" like the real files
    assert any(not text(s["title"]).isascii() or not text(s["artist_name"]).isascii() for s in songs)
    assert any(not (e["song"] or "").isascii() or not (e["artist"] or "").isascii() for e in events)


def test_two_events_of_one_user_share_a_ts_and_agree(events):
    by_user_ts = defaultdict(list)
    for e in events:
        if e["userId"]:
            by_user_ts[(e["userId"], e["ts"])].append(e)
    pairs = [v for v in by_user_ts.values() if len(v) > 1]
    assert len(pairs) >= (END - START).days  # one a day
    attributes = ("firstName", "lastName", "gender", "level", "location", "userAgent", "registration")
    for group in pairs:
        assert len({tuple(e[a] for a in attributes) for e in group}) == 1


def test_quiet_hours_and_hours_without_next_song(data):
    for key, body in data.items():
        if not key.startswith("log_data/"):
            continue
        hours, music = defaultdict(int), defaultdict(int)
        for line in body.split(b"\n"):
            e = json.loads(line)
            hour = datetime.fromtimestamp(e["ts"] / 1000, UTC).hour
            hours[hour] += 1
            music[hour] += e["page"] == "NextSong"
        assert len(hours) < 24, f"{key}: no quiet hour"
        assert any(music[h] == 0 for h in hours), f"{key}: no hour with events but no NextSong"


def test_users_change_level_within_the_window(events):
    by_user = defaultdict(list)
    for e in events:
        if e["userId"]:
            by_user[e["userId"]].append(e)
    upgraded = downgraded = 0
    for rows in by_user.values():
        rows.sort(key=lambda e: e["ts"])
        levels = [e["level"] for e in rows]
        upgraded += any(a == "free" and b == "paid" for a, b in zip(levels, levels[1:], strict=False))
        downgraded += any(a == "paid" and b == "free" for a, b in zip(levels, levels[1:], strict=False))
    assert upgraded >= 3 and downgraded >= 3
    # as in the real logs, "Submit Upgrade" is still free and the next event is paid
    sessions = defaultdict(list)
    for e in events:
        sessions[e["sessionId"]].append(e)
    for rows in sessions.values():
        for a, b in zip(rows, rows[1:], strict=False):
            if a["page"] == "Submit Upgrade":
                assert (a["level"], b["level"]) == ("free", "paid")
            if a["page"] == "Submit Downgrade":
                assert (a["level"], b["level"]) == ("paid", "free")


def test_some_plays_match_a_song_exactly_and_others_none(data, songs, events):
    plays = song_plays(songs)
    next_song = [e for e in events if e["page"] == "NextSong"]
    matched = [e for e in next_song if (e["song"], e["artist"], e["length"]) in plays]
    assert 0.1 * len(next_song) < len(matched) < 0.6 * len(next_song)
    # plays of songs whose title or artist name is a JSON number match on the number's text
    assert any(not isinstance(plays[(e["song"], e["artist"], e["length"])]["title"], str) for e in matched)
    assert any(not isinstance(plays[(e["song"], e["artist"], e["length"])]["artist_name"], str) for e in matched)
    # a play of a title with surrounding spaces matches with the spaces kept ...
    assert any(e["song"] != e["song"].strip() for e in matched)
    # ... and near misses match nothing: the trimmed title, another name of the artist, other length
    unmatched = [e for e in next_song if (e["song"], e["artist"], e["length"]) not in plays]
    padded = {(t.strip(), text(s["artist_name"])) for s in songs if (t := text(s["title"])) != t.strip()}
    assert any((e["song"], e["artist"]) in padded for e in unmatched)
    titles = {(text(s["title"]), text(s["artist_name"])) for s in songs}
    assert any((e["song"], e["artist"]) in titles for e in unmatched)  # same song and artist, other length
    summary = demo_data.build(START, END)[1]
    assert summary.matching_plays == len(matched) and summary.next_song == len(next_song)
    assert summary.events == len(events) and summary.songs == len(songs)


# -- determinism, windows, now -------------------------------------------------------------------------


def test_same_arguments_same_bytes(data):
    assert dict(demo_data.objects(START, END)) == data
    other = dict(demo_data.objects(START, END, seed=8))
    assert other["log_data/2018/11/2018-11-02-events.json"] != data["log_data/2018/11/2018-11-02-events.json"]


def test_a_day_does_not_depend_on_the_window(data):
    split = date(2018, 11, 4)
    first, second = dict(demo_data.objects(START, split)), dict(demo_data.objects(split, END))
    assert {**first, **second} == data


def test_no_event_after_now():
    now = datetime(2018, 11, 3, 13, 30, tzinfo=UTC)
    items, summary = demo_data.build(START, END, now=now)
    cut = dict(items)
    logs = sorted(k for k in cut if k.startswith("log_data/"))
    assert logs == [demo_data.log_key(date(2018, 11, d)) for d in (1, 2, 3)]
    last = [json.loads(line) for line in cut[logs[-1]].split(b"\n")]
    assert max(e["ts"] for e in last) <= now.timestamp() * 1000
    assert datetime.fromtimestamp(max(e["ts"] for e in last) / 1000, UTC).date() == date(2018, 11, 3)
    full = demo_data.objects(START, END)
    full_day = dict(full)[logs[-1]]
    assert full_day.startswith(cut[logs[-1]] + b"\n")  # the same events, cut at now
    assert summary.log_files == 3
    # a naive now is UTC
    assert demo_data.objects(START, END, now=now.replace(tzinfo=None)) == items


def test_recent_days_up_to_now_have_a_file_for_today():
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    if now.hour < 3:
        now = now.replace(hour=3)  # make sure a few hours of today exist
    today = now.date()
    items = dict(demo_data.objects(today - timedelta(days=2), today + timedelta(days=1), now=now))
    assert demo_data.log_key(today) in items
    ts = [json.loads(line)["ts"] for line in items[demo_data.log_key(today)].split(b"\n")]
    assert max(ts) <= now.timestamp() * 1000


def test_small_and_empty_days():
    items, summary = demo_data.build(START, START + timedelta(days=2), songs=demo_data.MIN_SONGS, events_per_day=0)
    assert summary.log_files == 0 and summary.events == 0 and summary.songs == demo_data.MIN_SONGS
    with pytest.raises(ValueError, match="songs"):
        demo_data.build(START, END, songs=3)


def test_thirty_days_at_the_defaults_is_fast():
    began = time.perf_counter()
    summary = demo_data.build(date(2018, 11, 1), date(2018, 12, 1))[1]
    elapsed = time.perf_counter() - began
    assert summary.log_files == 30 and summary.events > 30 * 250
    assert elapsed < 2.0, f"{elapsed:.2f} s"  # about 0.3 s on one core; slack for a busy machine


# -- writing and the CLI ---------------------------------------------------------------------------------


def test_generate_writes_the_objects(tmp_path, data):
    summary = demo_data.generate(tmp_path, START, END)
    files = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert files == data
    assert summary.files == len(files) and summary.bytes == sum(map(len, files.values()))


def test_cli_prints_the_summary(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "tools")]),
           "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-m", "sparkify_local.demo_data", "--out", str(tmp_path / "demo"),
         "--start", "2018-11-01", "--end", "2018-11-03"],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "2 daily log files" in result.stdout and "matching plays" in result.stdout
    assert (tmp_path / "demo" / "log_data" / "2018" / "11" / "2018-11-02-events.json").is_file()
    # another process (another PYTHONHASHSEED) writes the same bytes
    written = {p.relative_to(tmp_path / "demo").as_posix(): p.read_bytes() for p in (tmp_path / "demo").rglob("*.json")}
    assert written == dict(demo_data.objects(date(2018, 11, 1), date(2018, 11, 3)))
    bad = subprocess.run(
        [sys.executable, "-m", "sparkify_local.demo_data", "--out", str(tmp_path / "x"),
         "--start", "2018-11-03", "--end", "2018-11-01"],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )
    assert bad.returncode == 2 and "--end" in bad.stderr
