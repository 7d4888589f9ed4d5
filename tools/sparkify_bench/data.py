"""Generated inputs of the memory section: large daily logs and many song objects, in moto's S3."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from sparkify_bench.plan import MEMORY_BUCKET


def make_events_file(source: Path, size: int, out: Path) -> int:
    """A valid NDJSON daily log of ``size`` bytes: the day's events repeated, each copy shifted by
    k ms (staying on that day) and with its sessionId moved by k * 100000. Cached; returns the line count."""
    meta = out.with_suffix(".lines")
    if out.exists() and meta.exists() and out.stat().st_size >= size:
        return int(meta.read_text())
    day = datetime.strptime(source.name[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    day_start = int(day.timestamp() * 1000)
    day_end = day_start + 86_400_000
    lines = [line for line in source.read_bytes().splitlines() if line.strip()]
    ts_re, session_re = re.compile(rb'"ts":(\d+)'), re.compile(rb'"sessionId":(\d+)')
    written = count = copy = 0
    tmp = out.with_suffix(".tmp")
    with tmp.open("wb") as f:
        while written < size:
            for line in lines:
                ts = int(ts_re.search(line).group(1))
                shifted = ts + copy if ts + copy < day_end else max(day_start, ts - copy)
                new = ts_re.sub(b'"ts":%d' % shifted, line, count=1)
                new = session_re.sub(lambda m, c=copy: b'"sessionId":%d' % (int(m.group(1)) + c * 100_000), new, 1)
                f.write(new + b"\n")
                written += len(new) + 1
                count += 1
            copy += 1
    tmp.replace(out)
    meta.write_text(str(count))
    return count


def upload_generated_songs(client, source: Path, keys: list[str], n: int) -> None:
    """``n`` song objects under song_data/ of the memory bucket: the real ones, cycled, each with a new song_id."""
    bodies = [(source / key).read_bytes() for key in keys]
    song_id = re.compile(rb'"song_id":\s*"([^"]*)"')

    def put(k: int) -> None:
        body = song_id.sub(lambda m: b'"song_id": "%s-%06d"' % (m.group(1), k), bodies[k % len(bodies)], 1)
        client.put_object(Bucket=MEMORY_BUCKET, Key=f"song_data/G/{k % 26:02d}/{k % 1000:03d}/bench-{k:06d}.json",
                          Body=body)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(n)))


def empty_bucket(client, bucket: str) -> None:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    for start in range(0, len(keys), 1000):
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]]})
