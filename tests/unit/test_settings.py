"""sparkify.settings: defaults from the environment, and the validators that keep params out of SQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sparkify import settings
from sparkify.settings import InvalidParam, validate_bucket, validate_conn_id, validate_identifier, validate_prefix

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


@pytest.mark.parametrize("value", ["public", "staging_events", "_x", "a1$", "s" * 127])
def test_identifier_accepted(value):
    assert validate_identifier(value, "schema") == value


@pytest.mark.parametrize(
    "value", ["x;drop", "Public", "1abc", "", "a b", 'a"b', "a.b", "s" * 128, "users--", None, 5]
)
def test_identifier_rejected_naming_the_param(value):
    with pytest.raises(InvalidParam) as info:
        validate_identifier(value, "schema")
    assert str(info.value).startswith(f"schema={value!r} is not a valid identifier")


@pytest.mark.parametrize(
    ("validator", "value"),
    [(validate_identifier, "users\n"), (validate_prefix, "log_data\n"), (validate_bucket, "my-bucket\n"),
     (validate_conn_id, "aws\n")],
)
def test_trailing_newline_rejected(validator, value):
    with pytest.raises(InvalidParam):
        validator(value, "param")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("log_data", "log_data"), ("song_data/", "song_data"), ("log_data/2018/11/2018-11-04-events.json",) * 2,
     ("a/b-c_d.e!*'()", "a/b-c_d.e!*'()")],
)
def test_prefix_accepted(value, expected):
    assert validate_prefix(value, "s3_prefix") == expected


@pytest.mark.parametrize("value", ["../x", "a/../b", "/abs", "", "a b", "a;b", "a'b\"", "x" * 513, None])
def test_prefix_rejected_naming_the_param(value):
    with pytest.raises(InvalidParam) as info:
        validate_prefix(value, "s3_prefix")
    assert str(info.value).startswith(f"s3_prefix={value!r} is not a valid S3 key or prefix")


def test_empty_prefix_only_when_allowed():
    assert validate_prefix("", "p", allow_empty=True) == ""


@pytest.mark.parametrize("value", ["udacity-dend", "my.bucket-1", "abc"])
def test_bucket_accepted(value):
    assert validate_bucket(value) == value


@pytest.mark.parametrize("value", ["UPPER", "ab", "-dash", "a_b", "x" * 64, "", "a/b"])
def test_bucket_rejected(value):
    with pytest.raises(InvalidParam, match="is not a valid S3 bucket name"):
        validate_bucket(value, "manifest_bucket")


@pytest.mark.parametrize(("value", "ok"), [("redshift", True), ("aws_default", True), ("a.b-c", True),
                                           ("a b", False), ("", False), ("x;y", False)])
def test_conn_id(value, ok):
    if ok:
        assert validate_conn_id(value, "aws_conn_id") == value
    else:
        with pytest.raises(InvalidParam, match="aws_conn_id="):
            validate_conn_id(value, "aws_conn_id")


def test_defaults_come_from_the_environment():
    """Read at import (a DAG file may use them at parse time): checked in a fresh interpreter."""
    code = ("import dataclasses, json; from sparkify import settings; "
            "print(json.dumps(dataclasses.asdict(settings.DEFAULTS)))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARKIFY_")}
    env.update(PYTHONPATH=str(PLUGINS), SPARKIFY_S3_BUCKET="other-bucket", SPARKIFY_SONG_LISTING_PERIOD_HOURS="0.5",
               SPARKIFY_SCHEMA="analytics")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    values = json.loads(out)
    assert values["s3_bucket"] == "other-bucket"
    assert values["song_listing_period_hours"] == 0.5
    assert values["schema"] == "analytics"
    assert values["log_prefix"] == "log_data" and values["region"] == "us-west-2"
    assert values["events_grace_hours"] == 6.0


def test_sql_dir_is_the_projects():
    assert (settings.SQL_DIR / "stage" / "copy_redshift.sql").is_file()
