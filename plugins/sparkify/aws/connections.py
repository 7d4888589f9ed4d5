"""The Airflow connections the pipeline uses, as the setup builds and registers them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.sdk.log import mask_secret

from sparkify.aws import clients
from sparkify.aws.cluster import cluster_endpoint, describe_cluster
from sparkify.aws.errors import MissingResource
from sparkify.aws.serverless import get_workgroup

if TYPE_CHECKING:
    from sparkify.aws.settings import SetupSettings


def redshift_connection(*, host: str, port: int, login: str, password: str, database: str) -> dict[str, Any]:
    return {"conn_type": "redshift", "host": host, "port": int(port), "login": login, "password": password,
            "schema": database}


def aws_connection(*, region: str, role_arn: str) -> dict[str, Any]:
    """No keys: the worker's own credentials assume ``role_arn``, which COPY also uses (``aws_iam_role``)."""
    return {"conn_type": "aws", "extra": {"region_name": region, "role_arn": role_arn}}


def warehouse_endpoint(setup: SetupSettings) -> tuple[str, int]:
    """Host and port of the configured warehouse: the cluster's endpoint, or the workgroup's."""
    if setup.warehouse_kind == "provisioned":
        cluster = describe_cluster(clients.redshift(setup), setup.cluster_identifier)
        if cluster is None:
            raise MissingResource(f"cluster {setup.cluster_identifier} does not exist")
        return cluster_endpoint(cluster)
    workgroup = get_workgroup(clients.serverless(setup), setup.serverless_workgroup)
    if workgroup is None or not (workgroup.get("endpoint") or {}).get("address"):
        raise MissingResource(f"workgroup {setup.serverless_workgroup} has no endpoint")
    return workgroup["endpoint"]["address"], int(workgroup["endpoint"]["port"])


@contextmanager
def connection_in_env(conn_id: str, connection: Mapping[str, Any] | None) -> Iterator[None]:
    """Make ``connection`` visible to Airflow as ``conn_id`` for this block, if Airflow has no such connection.

    The pipeline finds its connections through the user's secrets backend; if that is not set up
    yet, the registered connection is used for this one block through ``AIRFLOW_CONN_<ID>``.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
        defined = True
    except AirflowNotFoundException:
        defined = False
    if defined:
        yield
        return
    if connection is None:
        raise MissingResource(
            f"connection {conn_id!r} is not defined in Airflow and none was registered by this run"
        )
    if connection.get("password"):
        mask_secret(connection["password"])
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    previous = os.environ.get(name)
    os.environ[name] = json.dumps(connection)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous
