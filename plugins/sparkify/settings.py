"""Defaults for the pipeline, overridable by environment variables (see ``.env.example``).

Reading the environment is not I/O, so the DAG files may use these at parse time; anything that
needs a connection, a variable or S3 happens inside a task.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sparkify.errors import PermanentError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INCLUDE_DIR = Path(os.environ.get("SPARKIFY_INCLUDE_DIR", PROJECT_ROOT / "include"))
SQL_DIR = INCLUDE_DIR / "sql"


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class Defaults:
    """Where the data is and which connections reach it; every value is a DAG param default."""

    s3_bucket: str = _env("SPARKIFY_S3_BUCKET", "udacity-dend")
    log_prefix: str = _env("SPARKIFY_LOG_PREFIX", "log_data")
    song_prefix: str = _env("SPARKIFY_SONG_PREFIX", "song_data")
    log_jsonpath: str = _env("SPARKIFY_LOG_JSONPATH", "log_json_path.json")
    manifest_prefix: str = _env("SPARKIFY_MANIFEST_PREFIX", "sparkify-manifests")
    manifest_bucket: str = _env("SPARKIFY_MANIFEST_BUCKET", "")
    region: str = _env("SPARKIFY_S3_REGION", "us-west-2")
    schema: str = _env("SPARKIFY_SCHEMA", "public")
    redshift_conn_id: str = _env("SPARKIFY_REDSHIFT_CONN_ID", "redshift")
    aws_conn_id: str = _env("SPARKIFY_AWS_CONN_ID", "aws")
    song_listing_period_hours: float = float(_env("SPARKIFY_SONG_LISTING_PERIOD_HOURS", "24"))
    events_grace_hours: float = float(_env("SPARKIFY_EVENTS_GRACE_HOURS", "6"))
    # How many earlier days' files each run checks for late changes (one HEAD request per day).
    late_data_days: int = int(_env("SPARKIFY_LATE_DATA_DAYS", "1"))
    # Staged event files (rows, per-hour counts, manifest entries) are removed this many days
    # after they were staged; reruns of older hours stage their file again (sparkify.maintenance).
    retention_days: float = float(_env("SPARKIFY_RETENTION_DAYS", "30"))
    # Personal data in users and songplays (names, location, user agent): keep, hash or omit.
    personal_data: str = _env("SPARKIFY_PERSONAL_DATA", "keep")


DEFAULTS = Defaults()

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_$]{0,126}$")
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]{1,512}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")


class InvalidParam(PermanentError):
    """A DAG param or operator argument that must not reach the warehouse."""


def validate_identifier(value: str, what: str) -> str:
    """Return ``value`` if it is a plain lower-case SQL identifier, else raise naming the param."""
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise InvalidParam(
            f"{what}={value!r} is not a valid identifier: use lower-case letters, digits and '_', "
            "starting with a letter or '_' (at most 127 characters)"
        )
    return value


def validate_prefix(value: str, what: str, *, allow_empty: bool = False) -> str:
    """Return an S3 key or prefix without leading or trailing slashes, else raise naming the param."""
    if allow_empty and value == "":
        return value
    if (
        not isinstance(value, str)
        or not _PREFIX.fullmatch(value)
        or value.startswith("/")
        or ".." in value.split("/")
    ):
        raise InvalidParam(
            f"{what}={value!r} is not a valid S3 key or prefix: use letters, digits and !_.*'()/- , "
            "no leading '/', no '..' segment"
        )
    return value.rstrip("/")


def validate_bucket(value: str, what: str = "s3_bucket") -> str:
    if not isinstance(value, str) or not _BUCKET.fullmatch(value):
        raise InvalidParam(f"{what}={value!r} is not a valid S3 bucket name")
    return value


def validate_conn_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _CONN_ID.fullmatch(value):
        raise InvalidParam(f"{what}={value!r} is not a valid Airflow connection id")
    return value
