"""Seeding a bucket on moto's real S3 server from a folder in the Sparkify layout."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import pytest

from conftest import ROOT, real_data, s3_client
from sparkify_local import demo_data, seed

START, END = date(2018, 11, 1), date(2018, 11, 4)
SMALL = {"songs": 40, "events_per_day": 120}


def fresh_name() -> str:
    return "seed-" + uuid.uuid4().hex[:12]


def bucket_objects(endpoint: str, bucket: str) -> dict[str, tuple[int, str]]:
    return seed.existing_objects(s3_client(endpoint), bucket)


@pytest.fixture
def demo_folder(tmp_path) -> Path:
    folder = tmp_path / "demo"
    demo_data.generate(folder, START, END, **SMALL)
    return folder


def layout_keys(folder: Path) -> set[str]:
    return {key for key, _ in seed.layout_files(folder)}


def test_first_seeding_uploads_everything_and_the_second_nothing(moto_server, demo_folder):
    name = fresh_name()  # does not exist yet: the seeder creates it
    expected = {p.relative_to(demo_folder).as_posix(): p.read_bytes() for p in demo_folder.rglob("*.json")}
    assert len(expected) == 40 + 3 + 1

    first = seed.seed(demo_folder, moto_server.endpoint, name)
    assert (first.uploaded, first.unchanged) == (len(expected), 0)
    assert first.bytes == sum(map(len, expected.values()))
    listed = bucket_objects(moto_server.endpoint, name)
    assert set(listed) == set(expected)
    for key, body in expected.items():
        assert listed[key] == (len(body), hashlib.md5(body).hexdigest()), key
    client = s3_client(moto_server.endpoint)
    key = "log_data/2018/11/2018-11-02-events.json"
    assert client.get_object(Bucket=name, Key=key)["Body"].read() == expected[key]

    second = seed.seed(demo_folder, moto_server.endpoint, name)
    assert (second.uploaded, second.unchanged, second.bytes) == (0, len(expected), 0)

    # the generator's objects, straight from memory, are the same bytes: nothing to upload either
    third = seed.seed_objects(demo_data.objects(START, END, **SMALL), moto_server.endpoint, name)
    assert (third.uploaded, third.unchanged) == (0, len(expected))
    assert "uploaded 0" in str(third) and "unchanged 44" in str(third)


def test_a_changed_file_is_uploaded_again(moto_server, demo_folder):
    name = fresh_name()
    seed.seed(demo_folder, moto_server.endpoint, name)
    same_size = demo_folder / "log_data" / "2018" / "11" / "2018-11-02-events.json"
    body = same_size.read_bytes()
    same_size.write_bytes(body.replace(b'"level":"free"', b'"level":"FREE"', 1))  # same size, other MD5
    assert len(same_size.read_bytes()) == len(body) and same_size.read_bytes() != body
    song = sorted((demo_folder / "song_data").rglob("*.json"))[0]
    song.write_bytes(song.read_bytes().replace(b'"num_songs":1', b'"num_songs":10'))  # other size

    again = seed.seed(demo_folder, moto_server.endpoint, name)
    assert (again.uploaded, again.unchanged) == (2, 42)
    listed = bucket_objects(moto_server.endpoint, name)
    assert listed["log_data/2018/11/2018-11-02-events.json"][1] == hashlib.md5(same_size.read_bytes()).hexdigest()


def test_only_the_layout_is_uploaded(moto_server, demo_folder):
    for extra in ("MANIFEST.sha256", "SOURCES.md", "other.json", "song_data/README.txt", "log_data/2018/notes.txt"):
        (demo_folder / extra).write_text("not data\n")
    name = fresh_name()
    summary = seed.seed(demo_folder, moto_server.endpoint, name)
    listed = set(bucket_objects(moto_server.endpoint, name))
    assert summary.uploaded == len(listed) == 44
    assert all(seed.in_layout(key) for key in listed)
    assert not {"MANIFEST.sha256", "SOURCES.md", "other.json"} & listed


def test_window_keeps_songs_and_the_days_in_it(moto_server, demo_folder):
    name = fresh_name()
    summary = seed.seed(demo_folder, moto_server.endpoint, name, start=date(2018, 11, 2), end=date(2018, 11, 3))
    listed = set(bucket_objects(moto_server.endpoint, name))
    assert {k for k in listed if k.startswith("log_data/")} == {"log_data/2018/11/2018-11-02-events.json"}
    assert len([k for k in listed if k.startswith("song_data/")]) == 40
    assert "log_json_path.json" in listed and summary.uploaded == 42
    # widening the window later uploads only the new days
    wider = seed.seed(demo_folder, moto_server.endpoint, name, start=START, end=END)
    assert (wider.uploaded, wider.unchanged) == (2, 42)


def test_window_helpers():
    assert seed.log_day("log_data/2018/11/2018-11-05-events.json") == date(2018, 11, 5)
    assert seed.log_day("log_data/2018/11/notes.json") is None
    assert seed.in_window("song_data/A/B/C/TRX.json", date(2030, 1, 1), date(2030, 1, 2))
    assert seed.in_window("log_data/2018/11/2018-11-05-events.json", date(2018, 11, 5), date(2018, 11, 6))
    assert not seed.in_window("log_data/2018/11/2018-11-06-events.json", date(2018, 11, 5), date(2018, 11, 6))
    assert not seed.in_window("log_data/2018/11/notes.json", date(2018, 11, 5), None)
    assert seed.in_window("log_data/2018/11/notes.json")
    assert not seed.in_layout("MANIFEST.sha256") and not seed.in_layout("song_data/x.txt")


def test_a_copy_of_the_real_data(moto_server, tmp_path):
    root = real_data()
    folder = tmp_path / "real"
    picked = sorted((root / "song_data" / "A" / "A" / "A").glob("*.json"))[:5]
    picked += [root / "log_data" / "2018" / "11" / "2018-11-01-events.json", root / "log_json_path.json"]
    for path in picked + [root / "MANIFEST.sha256", root / "SOURCES.md"]:
        target = folder / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    name = fresh_name()
    summary = seed.seed(folder, moto_server.endpoint, name)
    listed = bucket_objects(moto_server.endpoint, name)
    assert summary.uploaded == len(listed) == len(picked)
    for path in picked:
        key = path.relative_to(root).as_posix()
        assert listed[key] == (path.stat().st_size, hashlib.md5(path.read_bytes()).hexdigest())


def test_missing_or_wrong_source(tmp_path, moto_server):
    missing = tmp_path / "nowhere"
    with pytest.raises(seed.SeedError, match=str(missing)):
        seed.seed(missing, moto_server.endpoint, fresh_name())
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "SOURCES.md").write_text("x")
    with pytest.raises(seed.SeedError, match="song_data"):
        seed.layout_files(empty)

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "tools")])}
    for folder in (missing, empty):
        result = subprocess.run(
            [sys.executable, "-m", "sparkify_local.seed", "--source", str(folder),
             "--endpoint", moto_server.endpoint, "--bucket", fresh_name()],
            capture_output=True, text=True, env=env, cwd=ROOT,
        )
        assert result.returncode == 2, result.stderr
        assert str(folder) in result.stderr


def test_cli_seeds_and_prints_the_summary(moto_server, demo_folder):
    name = fresh_name()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "tools")])}
    command = [
        sys.executable, "-m", "sparkify_local.seed", "--source", str(demo_folder), "--endpoint", moto_server.endpoint,
        "--bucket", name, "--start", "2018-11-01", "--end", "2018-11-02",
        "--access-key", "testing", "--secret-key", "testing", "--region", "us-west-2",
    ]
    first = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    assert "uploaded 42" in first.stdout and "unchanged 0" in first.stdout
    second = seed.seed(demo_folder, moto_server.endpoint, name, start=date(2018, 11, 1), end=date(2018, 11, 2))
    assert (second.uploaded, second.unchanged) == (0, 42)
