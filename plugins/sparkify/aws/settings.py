"""The params of sparkify_setup and sparkify_teardown, validated: :class:`SetupSettings`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from airflow.sdk import Param

from sparkify import settings
from sparkify.aws import names
from sparkify.settings import InvalidParam


def as_bool(value: Any) -> bool:
    """A boolean param, also when a template rendered it to ``"True"`` or ``"False"``."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


@dataclass(frozen=True)
class SetupSettings:
    """The setup and teardown params, validated; both DAGs build one from ``params``."""

    warehouse_kind: str = "provisioned"
    admin_aws_conn_id: str = "aws_default"
    region: str = settings.DEFAULTS.region
    cluster_identifier: str = "sparkify"
    node_type: str = "ra3.large"
    number_of_nodes: int = 1
    db_name: str = "sparkify"
    master_username: str = "sparkify_admin"
    master_password_secret: str = "sparkify/redshift/master"
    publicly_accessible: bool = False
    kms_key_id: str = ""
    serverless_namespace: str = "sparkify"
    serverless_workgroup: str = "sparkify"
    base_capacity: int = 8
    role_name: str = "sparkify-redshift-copy"
    pipeline_principal_arn: str = ""
    s3_bucket: str = settings.DEFAULTS.s3_bucket
    log_prefix: str = settings.DEFAULTS.log_prefix
    song_prefix: str = settings.DEFAULTS.song_prefix
    log_jsonpath: str = settings.DEFAULTS.log_jsonpath
    source_region: str = settings.DEFAULTS.region
    manifest_bucket: str = settings.DEFAULTS.manifest_bucket
    manifest_prefix: str = settings.DEFAULTS.manifest_prefix
    redshift_conn_id: str = settings.DEFAULTS.redshift_conn_id
    aws_conn_id: str = settings.DEFAULTS.aws_conn_id
    connections_prefix: str = "airflow/connections"
    register_connections: bool = True
    schema: str = settings.DEFAULTS.schema
    warehouse_action: str = "delete"
    final_snapshot: bool = True
    secret_recovery_days: int = 7

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SetupSettings:
        """Take the known keys of ``params`` and validate them; raise :class:`InvalidParam` (no retry) if invalid."""
        known = {f.name for f in fields(cls)}
        setup = cls(**{k: v for k, v in params.items() if k in known})
        setup.validate()
        return setup

    def validate(self) -> None:
        def check(pattern: re.Pattern[str], name: str) -> None:
            value = getattr(self, name)
            if not isinstance(value, str) or not pattern.match(value):
                raise InvalidParam(f"{name}={value!r} is not valid (expected {pattern.pattern})")

        if self.warehouse_kind not in ("provisioned", "serverless"):
            raise InvalidParam(f"warehouse_kind={self.warehouse_kind!r}: use 'provisioned' or 'serverless'")
        if self.warehouse_action not in ("delete", "pause"):
            raise InvalidParam(f"warehouse_action={self.warehouse_action!r}: use 'delete' or 'pause'")
        check(names.CLUSTER_ID, "cluster_identifier")
        check(names.SERVERLESS_NAME, "serverless_namespace")
        check(names.SERVERLESS_NAME, "serverless_workgroup")
        check(names.ROLE_NAME, "role_name")
        check(names.SECRET_NAME, "master_password_secret")
        check(names.REGION, "region")
        check(names.REGION, "source_region")
        check(names.USERNAME, "master_username")
        check(names.NODE_TYPE, "node_type")
        settings.validate_identifier(self.db_name, "db_name")
        settings.validate_identifier(self.schema, "schema")
        settings.validate_bucket(self.s3_bucket, "s3_bucket")
        if self.manifest_bucket:
            settings.validate_bucket(self.manifest_bucket, "manifest_bucket")
        for name in ("log_prefix", "song_prefix", "log_jsonpath", "manifest_prefix", "connections_prefix"):
            settings.validate_prefix(getattr(self, name), name)
        for name in ("admin_aws_conn_id", "redshift_conn_id", "aws_conn_id"):
            settings.validate_conn_id(getattr(self, name), name)
        if self.pipeline_principal_arn and not names.PRINCIPAL.match(self.pipeline_principal_arn):
            raise InvalidParam(f"pipeline_principal_arn={self.pipeline_principal_arn!r} is not an IAM ARN")
        if not 1 <= int(self.number_of_nodes) <= 128:
            raise InvalidParam(f"number_of_nodes={self.number_of_nodes!r} must be 1..128")
        if not 8 <= int(self.base_capacity) <= 1024 or int(self.base_capacity) % 8:
            raise InvalidParam(f"base_capacity={self.base_capacity!r} must be a multiple of 8 in 8..1024")
        if int(self.secret_recovery_days) not in (0, *range(7, 31)):
            raise InvalidParam("secret_recovery_days must be 0 (delete at once) or 7..30")

    def connection_secret(self, conn_id: str) -> str:
        """The secret the Airflow ``SecretsManagerBackend`` reads connection ``conn_id`` from."""
        return f"{self.connections_prefix.rstrip('/')}/{conn_id}"


def identity_params() -> dict[str, Param]:
    """The params that name what the setup creates; the teardown must be given the same values."""
    d = SetupSettings()
    return {
        "warehouse_kind": Param(d.warehouse_kind, enum=["provisioned", "serverless"],
                                description="A provisioned cluster, or a Redshift Serverless namespace and workgroup"),
        "admin_aws_conn_id": Param(d.admin_aws_conn_id, type="string",
                                   description="AWS connection the setup acts as (IAM, Redshift, Secrets Manager, S3 "
                                               "rights); if it does not exist, boto3's default credentials are used"),
        "region": Param(d.region, type="string", description="Region of the warehouse and its secrets"),
        "cluster_identifier": Param(d.cluster_identifier, type="string", description="Provisioned cluster identifier"),
        "serverless_namespace": Param(d.serverless_namespace, type="string", description="Serverless namespace"),
        "serverless_workgroup": Param(d.serverless_workgroup, type="string", description="Serverless workgroup"),
        "role_name": Param(d.role_name, type="string", description="IAM role Redshift's COPY assumes"),
        "master_password_secret": Param(d.master_password_secret, type="string",
                                        description="Secrets Manager secret holding the warehouse admin password"),
        "manifest_bucket": Param(d.manifest_bucket, type="string",
                                 description="Bucket for COPY manifests; empty: "
                                             "sparkify-manifests-<account>-<source_region>, created if missing"),
        "source_region": Param(d.source_region, type="string",
                               description="Region of the source bucket, where the manifest bucket goes too"),
        "redshift_conn_id": Param(d.redshift_conn_id, type="string", description="The pipeline's warehouse connection"),
        "aws_conn_id": Param(d.aws_conn_id, type="string", description="The pipeline's AWS connection"),
        "connections_prefix": Param(d.connections_prefix, type="string",
                                    description="connections_prefix of the Airflow SecretsManagerBackend"),
    }
