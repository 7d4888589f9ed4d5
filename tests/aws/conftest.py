"""Fixtures for the AWS setup and teardown DAGs: moto's server as IAM, STS, Redshift, S3 and Secrets Manager.

Every test names its resources with a fresh suffix, so tests share one moto server without
seeing each other's role, cluster or secrets.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from conftest import aws_connection

ROOT_DAGS = Path(__file__).resolve().parents[2] / "dags"
ADMIN_CONN_ID = "aws_admin"
ACCOUNT = "123456789012"  # moto's account
REGION = "us-west-2"


@functools.cache
def _client(endpoint: str, service: str) -> Any:
    """One client per service for the session: building one costs up to a second of CPU."""
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing-secret-key")


@dataclass
class Aws:
    """boto3 clients on moto's server, and the names one test's resources get."""

    endpoint: str
    uid: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def client(self, service: str) -> Any:
        return _client(self.endpoint, service)

    @property
    def names(self) -> dict[str, str]:
        return {
            "cluster_identifier": f"sparkify-{self.uid}",
            "role_name": f"sparkify-copy-{self.uid}",
            "master_password_secret": f"sparkify/{self.uid}/master",
            "connections_prefix": f"airflow-{self.uid}/connections",
            "manifest_bucket": f"manifests-{self.uid}",
        }

    def conf(self, **extra: Any) -> dict[str, Any]:
        return {"admin_aws_conn_id": ADMIN_CONN_ID, **self.names, **extra}

    def secret(self, name: str) -> dict[str, Any]:
        return json.loads(self.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])

    def cluster(self, identifier: str | None = None) -> dict[str, Any] | None:
        redshift = self.client("redshift")
        try:
            return redshift.describe_clusters(ClusterIdentifier=identifier or self.names["cluster_identifier"])[
                "Clusters"][0]
        except redshift.exceptions.ClusterNotFoundFault:
            return None


@pytest.fixture
def aws(moto_server, monkeypatch) -> Aws:
    """moto's server as the setup's admin connection ``aws_admin`` (and the pipeline's ``aws``)."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{ADMIN_CONN_ID.upper()}", aws_connection(moto_server.endpoint))
    monkeypatch.setenv("AIRFLOW_CONN_AWS", aws_connection(moto_server.endpoint))
    return Aws(moto_server.endpoint)
