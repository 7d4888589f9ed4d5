"""The pieces the AWS code shares with the ETL: error codes, throttling, the region pattern, lazy exports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import sparkify
from sparkify.aws.errors import MissingResource, NotCreatedBySetup, NotReadyInTime, error_code, is_throttled
from sparkify.aws.names import REGION
from sparkify.errors import PermanentError, TransientError


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "HeadObject")


def test_error_code_of_a_client_error_and_of_anything_else():
    assert error_code(client_error("NoSuchKey")) == "NoSuchKey"
    assert error_code(ValueError("x")) == ""
    assert error_code(ClientError({}, "HeadObject")) == ""


@pytest.mark.parametrize(("code", "throttled"), [
    ("Throttling", True), ("ThrottlingException", True), ("SlowDown", True), ("RequestLimitExceeded", True),
    ("AccessDenied", False), ("ResourceNotFoundException", False),
])
def test_throttling_is_what_botocore_retries_as_throttling(code, throttled):
    assert is_throttled(client_error(code)) is throttled
    assert not is_throttled(RuntimeError(code))


def test_the_setup_errors_say_whether_a_retry_helps():
    assert issubclass(NotCreatedBySetup, PermanentError) and issubclass(MissingResource, PermanentError)
    assert issubclass(NotReadyInTime, TransientError) and not issubclass(NotReadyInTime, PermanentError)


@pytest.mark.parametrize(("region", "valid"), [
    ("us-west-2", True), ("eu-central-1", True), ("us-gov-west-1", True), ("ap-southeast-4", True),
    ("US-WEST-2", False), ("us-west", False), ("us-west-2; DROP", False), ("", False),
])
def test_one_region_pattern(region, valid):
    assert bool(REGION.fullmatch(region)) is valid


def test_the_etl_operators_do_not_import_the_setup_operators():
    code = ("import sys, sparkify.operators as ops; assert 'sparkify.operators.redshift_cluster' not in sys.modules; "
            "assert ops.DeleteOwnClusterOperator.__module__ == 'sparkify.operators.redshift_cluster'")
    plugins = str(Path(sparkify.__file__).resolve().parents[1])
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": plugins})
