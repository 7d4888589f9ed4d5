"""Put a folder in the Sparkify S3 layout into a bucket, uploading only what changed.

The folder is the demo data (:mod:`sparkify_local.demo_data`) or any copy of the real data, such
as ``../shared/data/sparkify``. Only the layout's files are uploaded::

    song_data/**/*.json   log_data/**/*.json   log_json_path.json

anything else (``MANIFEST.sha256``, ``SOURCES.md``, ...) is left out. The bucket is created if
missing. One listing of the bucket gives each object's size and ETag; a file whose size and MD5
equal them is skipped (single-part uploads have the MD5 as ETag, on S3 and on moto), so seeding
twice uploads nothing the second time. Uploads run on a thread pool sharing one boto3 client with
a connection pool as large as the pool of threads.

``start``/``end`` keep only the daily log files for days in [start, end) (the day is read from the
file name ``<yyyy>-<mm>-<dd>-events.json``; a log file whose name has no date is left out when a
window is given). Song files and the JSONPaths file are always uploaded.

CLI::

    python -m sparkify_local.seed --source DIR --endpoint http://127.0.0.1:PORT --bucket NAME \\
        [--start 2018-11-01 --end 2018-11-03] [--access-key --secret-key --region]

Exit codes: 0 done, 2 bad arguments (missing folder, folder without song_data/ or log_data/),
1 S3 failed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

LAYOUT_PREFIXES = ("song_data", "log_data")
JSONPATHS_KEY = "log_json_path.json"
THREADS = 16
_LOG_DAY = re.compile(r"(?:^|/)(\d{4})-(\d{2})-(\d{2})-events\.json$")
_MISSING_BUCKET = {"404", "NoSuchBucket", "NotFound"}


class SeedError(ValueError):
    """The source folder cannot be seeded (missing, or not in the S3 layout)."""


@dataclass(frozen=True)
class SeedSummary:
    bucket: str
    uploaded: int
    unchanged: int
    bytes: int  # bytes uploaded
    seconds: float

    def __str__(self) -> str:
        return (
            f"s3://{self.bucket}: uploaded {self.uploaded} ({self.bytes} bytes), "
            f"unchanged {self.unchanged}, in {self.seconds:.2f} s"
        )


# -- what belongs to the layout ---------------------------------------------------------------------


def in_layout(key: str) -> bool:
    """True for song_data/**/*.json, log_data/**/*.json and log_json_path.json."""
    if key == JSONPATHS_KEY:
        return True
    top, _, rest = key.partition("/")
    return top in LAYOUT_PREFIXES and rest.endswith(".json") and not rest.startswith("/")


def log_day(key: str) -> date | None:
    """The day of a daily log file's key (``log_data/2018/11/2018-11-05-events.json``), else None."""
    match = _LOG_DAY.search(key)
    if not match:
        return None
    try:
        return date(*map(int, match.groups()))
    except ValueError:
        return None


def in_window(key: str, start: date | None = None, end: date | None = None) -> bool:
    """Whether ``key`` is uploaded for the window [start, end): every non-log key is."""
    if not key.startswith("log_data/") or (start is None and end is None):
        return True
    day = log_day(key)
    if day is None:
        return False
    return (start is None or day >= start) and (end is None or day < end)


def layout_files(source: Path, start: date | None = None, end: date | None = None) -> list[tuple[str, Path]]:
    """(key, path) of every layout file under ``source`` in the window, in key order."""
    source = Path(source)
    if not source.is_dir():
        raise SeedError(f"source folder {source} does not exist (or is not a folder)")
    if not any((source / prefix).is_dir() for prefix in LAYOUT_PREFIXES):
        raise SeedError(
            f"source folder {source} is not in the Sparkify S3 layout: it has neither song_data/ nor log_data/"
        )
    files: list[tuple[str, Path]] = []
    candidates = [source / JSONPATHS_KEY]
    for prefix in LAYOUT_PREFIXES:
        if (source / prefix).is_dir():
            candidates.extend((source / prefix).rglob("*.json"))
    for path in candidates:
        if not path.is_file():
            continue
        key = path.relative_to(source).as_posix()
        if in_layout(key) and in_window(key, start, end):
            files.append((key, path))
    return sorted(files)


# -- S3 ------------------------------------------------------------------------------------------------


def s3_client(
    endpoint: str | None,
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str = "us-west-2",
    threads: int = THREADS,
):
    """A boto3 S3 client whose connection pool fits ``threads`` concurrent requests.

    With an endpoint and no keys, dummy keys are used (a local server does not check them);
    without an endpoint, boto3's usual credential chain applies.
    """
    import boto3

    from sparkify.s3 import client_config

    if endpoint and not access_key:
        access_key, secret_key = "testing", secret_key or "testing"
    return boto3.client(
        "s3",
        endpoint_url=endpoint or None,
        aws_access_key_id=access_key or None,
        aws_secret_access_key=secret_key or None,
        region_name=region,
        config=client_config(threads),
    )


def ensure_bucket(client, bucket: str, region: str) -> bool:
    """Create ``bucket`` if it does not exist; True if it was created."""
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in _MISSING_BUCKET:
            raise
    kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    try:
        client.create_bucket(Bucket=bucket, **kwargs)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
    return True


def existing_objects(client, bucket: str) -> dict[str, tuple[int, str]]:
    """key -> (size, ETag without quotes) for every object of the bucket (one paginated listing)."""
    found: dict[str, tuple[int, str]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = (int(item["Size"]), item["ETag"].strip('"'))
    return found


def seed_objects(
    items: Iterable[tuple[str, bytes | Path]],
    endpoint: str | None,
    bucket: str,
    *,
    start: date | None = None,
    end: date | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str = "us-west-2",
    threads: int = THREADS,
    client=None,
) -> SeedSummary:
    """Upload (key, bytes or file path) pairs that belong to the layout and the window.

    ``items`` may come straight from :func:`sparkify_local.demo_data.objects`, or from
    :func:`layout_files`. Objects already in the bucket with the same size and MD5 are skipped.
    """
    began = time.monotonic()
    selected = [(key, body) for key, body in items if in_layout(key) and in_window(key, start, end)]
    client = client or s3_client(endpoint, access_key, secret_key, region, threads)
    ensure_bucket(client, bucket, region)
    existing = existing_objects(client, bucket)

    def one(item: tuple[str, bytes | Path]) -> int | None:
        key, body = item
        data = body if isinstance(body, bytes) else Path(body).read_bytes()
        if existing.get(key) == (len(data), hashlib.md5(data, usedforsecurity=False).hexdigest()):
            return None
        client.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/json")
        return len(data)

    with ThreadPoolExecutor(max(1, threads)) as pool:
        results = list(pool.map(one, selected))
    uploaded = [size for size in results if size is not None]
    return SeedSummary(
        bucket=bucket, uploaded=len(uploaded), unchanged=len(results) - len(uploaded),
        bytes=sum(uploaded), seconds=time.monotonic() - began,
    )


def seed(
    source: Path,
    endpoint: str | None,
    bucket: str,
    *,
    start: date | None = None,
    end: date | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str = "us-west-2",
    threads: int = THREADS,
) -> SeedSummary:
    """Put the layout files of ``source`` (window-filtered) into ``bucket``; see the module doc."""
    files = layout_files(source, start, end)
    return seed_objects(
        files, endpoint, bucket, access_key=access_key, secret_key=secret_key, region=region, threads=threads
    )


# -- CLI --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sparkify_local.seed",
        description="Upload a folder in the Sparkify S3 layout into a bucket (only what changed).",
    )
    parser.add_argument("--source", type=Path, required=True, help="folder holding song_data/, log_data/, ...")
    parser.add_argument("--endpoint", default=os.environ.get("S3_ENDPOINT_URL"),
                        help="S3 endpoint, e.g. http://127.0.0.1:5000 (default: $S3_ENDPOINT_URL, else AWS)")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--start", type=date.fromisoformat, help="first day of log files to upload")
    parser.add_argument("--end", type=date.fromisoformat, help="day after the last day of log files (exclusive)")
    parser.add_argument("--access-key", default=None, help="default: 'testing' with --endpoint, else boto3's chain")
    parser.add_argument("--secret-key", default=None)
    parser.add_argument("--region", default="us-west-2")
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args(argv)
    if args.start and args.end and args.end <= args.start:
        print(f"error: --end {args.end} must be after --start {args.start}", file=sys.stderr)
        return 2
    try:
        summary = seed(
            args.source, args.endpoint, args.bucket, start=args.start, end=args.end,
            access_key=args.access_key, secret_key=args.secret_key, region=args.region, threads=args.threads,
        )
    except SeedError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # botocore errors: endpoint down, access denied, ...
        where = args.endpoint or "AWS S3"
        print(f"error: seeding s3://{args.bucket} on {where} failed: {err}", file=sys.stderr)
        return 1
    print(f"seeded from {args.source}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
