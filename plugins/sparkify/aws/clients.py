"""The setup's boto3 clients, from the amazon provider's hooks through an Airflow AWS connection.

One retry policy for every AWS call the setup and teardown make, their provider operators'
included (``botocore_config=BOTOCORE_CONFIG``): botocore's standard retry mode, which retries
throttled and transient failures with exponential backoff and jitter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sparkify.aws.settings import SetupSettings

BOTOCORE_CONFIG: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 10}}

_clients: dict[tuple[str, str, str, str], Any] = {}


def _hook(service: str, **kwargs: Any) -> Any:
    """The provider's hook for ``service`` where it has one; its generic ``AwsBaseHook`` otherwise."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from airflow.providers.amazon.aws.hooks.redshift_cluster import RedshiftHook
    from airflow.providers.amazon.aws.hooks.secrets_manager import SecretsManagerHook
    from airflow.providers.amazon.aws.hooks.sts import StsHook

    from sparkify.s3 import s3_hook_class

    specific = {"redshift": RedshiftHook, "secretsmanager": SecretsManagerHook, "sts": StsHook, "s3": s3_hook_class()}
    if service in specific:
        return specific[service](**kwargs)
    return AwsBaseHook(client_type=service, **kwargs)


def client(service: str, conn_id: str | None, region: str | None) -> Any:
    """A boto3 client for ``service`` (``iam``, ``redshift-serverless``…) through AWS connection ``conn_id``.

    If the connection does not exist, the hook falls back to boto3's default credentials. Clients
    are kept for the life of the process (one task), keyed by the connection's content as well
    as its id, since building one costs about a second of CPU.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        fingerprint = BaseHook.get_connection(conn_id).get_uri() if conn_id else ""
    except AirflowNotFoundException:
        fingerprint = ""
    key = (service, conn_id or "", region or "", fingerprint)
    if key not in _clients:
        hook = _hook(service, aws_conn_id=conn_id or None, region_name=region or None, config=BOTOCORE_CONFIG)
        _clients[key] = hook.conn
    return _clients[key]


# The setup's clients by what they reach: the warehouse's region, except S3 (the source's region).


def iam(setup: SetupSettings) -> Any:
    return client("iam", setup.admin_aws_conn_id, setup.region)


def sts(setup: SetupSettings) -> Any:
    return client("sts", setup.admin_aws_conn_id, setup.region)


def redshift(setup: SetupSettings) -> Any:
    return client("redshift", setup.admin_aws_conn_id, setup.region)


def serverless(setup: SetupSettings) -> Any:
    return client("redshift-serverless", setup.admin_aws_conn_id, setup.region)


def secrets(setup: SetupSettings) -> Any:
    return client("secretsmanager", setup.admin_aws_conn_id, setup.region)


def s3(setup: SetupSettings) -> Any:
    return client("s3", setup.admin_aws_conn_id, setup.source_region)
