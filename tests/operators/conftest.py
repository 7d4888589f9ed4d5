"""Fixtures of the operator tests: the fake Redshift connection and a second (manifest) bucket.

The servers (PostgreSQL, moto) and the ``warehouse``/``bucket`` fixtures come from tests/conftest.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .helpers import FakeRedshift

# tests/conftest.py creates the tables with `python -m sparkify.tables` in a subprocess, which
# needs the plugins folder on its path as much as this process does.
_PLUGINS = str(Path(__file__).resolve().parents[2] / "plugins")
if _PLUGINS not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_PLUGINS, os.environ.get("PYTHONPATH")) if p)

REDSHIFT_CONNECTION = {
    "conn_type": "redshift",
    "host": "sparkify.abc123xyz.us-west-2.redshift.amazonaws.com",
    "login": "awsuser",
    "password": "redshift-password-not-logged",
    "port": 5439,
    "schema": "dev",
}


_SHARED_LOADER = None


@pytest.fixture(autouse=True)
def _shared_botocore_loader(monkeypatch):
    """Every operator run opens its own boto3 session, which re-reads and re-parses botocore's
    endpoint and service JSON files (a third of a CPU second each time). Sharing one loader
    between sessions caches that parsing; requests still go to moto's real S3 server."""
    global _SHARED_LOADER
    import botocore.loaders
    import botocore.session

    if _SHARED_LOADER is None:
        _SHARED_LOADER = botocore.loaders.create_loader()
    monkeypatch.setattr(botocore.session, "create_loader", lambda *args, **kwargs: _SHARED_LOADER)


@pytest.fixture
def redshift(monkeypatch) -> FakeRedshift:
    """The ``redshift`` connection as a real ``redshift`` type connection, whose DB-API connection
    (and only that) is a :class:`FakeRedshift` recording every statement."""
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    fake = FakeRedshift()
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT", json.dumps(REDSHIFT_CONNECTION))
    monkeypatch.setattr(RedshiftSQLHook, "get_conn", lambda self: fake.connect())
    return fake


@pytest.fixture
def manifest_bucket(moto_server):
    """A second bucket on moto's server, for the Redshift COPY manifests."""
    from conftest import create_bucket

    return create_bucket(moto_server.endpoint)
