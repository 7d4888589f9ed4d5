"""The AWS side of the pipeline as code: the IAM role, the Redshift warehouse and its secrets.

Used by the ``sparkify_setup`` and ``sparkify_teardown`` DAGs. Every function takes boto3 clients,
so the same code runs against AWS, against moto's server, and against a botocore ``Stubber``.

Everything the setup creates carries the tag ``sparkify-created-by=sparkify_setup``. The setup
reuses what already exists under the configured names; the teardown deletes only what carries
the tag, and refuses to touch a warehouse that does not.

Secrets never leave Secrets Manager except into the task that needs them: the master password
is generated there, read back inside ``execute()``, registered with the log masker
(:func:`airflow.sdk.log.mask_secret`) as soon as it is read, and never passed as a template
field, an XCom value or a log argument.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.redshift_cluster import (
    RedshiftCreateClusterOperator,
    RedshiftDeleteClusterOperator,
)
from airflow.providers.amazon.aws.sensors.redshift_cluster import RedshiftClusterSensor
from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowNotFoundException
from airflow.sdk.log import mask_secret
from botocore.exceptions import ClientError

from sparkify import settings

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

CREATED_BY_KEY = "sparkify-created-by"
CREATED_BY_VALUE = "sparkify_setup"
PROJECT_TAGS = {CREATED_BY_KEY: CREATED_BY_VALUE, "project": "sparkify"}
POLICY_NAME = "sparkify-copy-access"
# botocore retries every call (throttling included) with exponential backoff and jitter.
BOTOCORE_CONFIG: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 10}}
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown",
    "PriorRequestNotComplete",
})
# A cluster in one of these states will not become available by waiting.
CLUSTER_FAILED_STATES = frozenset({
    "hardware-failure", "incompatible-hsm", "incompatible-network", "incompatible-parameters",
    "incompatible-restore", "storage-full", "deleting", "final-snapshot",
})
# States a cluster is left in when its creation failed: safe to delete, there is nothing in it.
CLUSTER_CREATION_FAILED_STATES = frozenset({
    "hardware-failure", "incompatible-hsm", "incompatible-network", "incompatible-parameters",
})


class NotCreatedBySetup(AirflowFailException):
    """A resource with the configured name exists but was not created by sparkify_setup."""


# -- configuration -------------------------------------------------------------------------------

_CLUSTER_ID = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)$")
_SERVERLESS_NAME = re.compile(r"^[a-z0-9-]{3,64}$")
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_USERNAME = re.compile(r"^[a-z][a-z0-9_]{0,126}$")
_NODE_TYPE = re.compile(r"^[a-z0-9]+\.[a-z0-9]+$")
_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:[\w+=,.@/-]+$")


@dataclass(frozen=True)
class Config:
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
    def from_params(cls, params: Mapping[str, Any]) -> Config:
        """Take the known keys of ``params`` and validate them; raise ``AirflowFailException`` if invalid."""
        known = {f.name for f in fields(cls)}
        config = cls(**{k: v for k, v in params.items() if k in known})
        try:
            config.validate()
        except settings.InvalidParam as err:
            raise AirflowFailException(str(err)) from None
        return config

    def validate(self) -> None:
        def check(pattern: re.Pattern[str], name: str) -> None:
            value = getattr(self, name)
            if not isinstance(value, str) or not pattern.match(value):
                raise settings.InvalidParam(f"{name}={value!r} is not valid (expected {pattern.pattern})")

        if self.warehouse_kind not in ("provisioned", "serverless"):
            raise settings.InvalidParam(f"warehouse_kind={self.warehouse_kind!r}: use 'provisioned' or 'serverless'")
        if self.warehouse_action not in ("delete", "pause"):
            raise settings.InvalidParam(f"warehouse_action={self.warehouse_action!r}: use 'delete' or 'pause'")
        check(_CLUSTER_ID, "cluster_identifier")
        check(_SERVERLESS_NAME, "serverless_namespace")
        check(_SERVERLESS_NAME, "serverless_workgroup")
        check(_ROLE_NAME, "role_name")
        check(_SECRET_NAME, "master_password_secret")
        check(_REGION, "region")
        check(_REGION, "source_region")
        check(_USERNAME, "master_username")
        check(_NODE_TYPE, "node_type")
        settings.validate_identifier(self.db_name, "db_name")
        settings.validate_identifier(self.schema, "schema")
        settings.validate_bucket(self.s3_bucket, "s3_bucket")
        if self.manifest_bucket:
            settings.validate_bucket(self.manifest_bucket, "manifest_bucket")
        for name in ("log_prefix", "song_prefix", "log_jsonpath", "manifest_prefix", "connections_prefix"):
            settings.validate_prefix(getattr(self, name), name)
        for name in ("admin_aws_conn_id", "redshift_conn_id", "aws_conn_id"):
            settings.validate_conn_id(getattr(self, name), name)
        if self.pipeline_principal_arn and not _PRINCIPAL.match(self.pipeline_principal_arn):
            raise settings.InvalidParam(f"pipeline_principal_arn={self.pipeline_principal_arn!r} is not an IAM ARN")
        if not 1 <= int(self.number_of_nodes) <= 128:
            raise settings.InvalidParam(f"number_of_nodes={self.number_of_nodes!r} must be 1..128")
        if not 8 <= int(self.base_capacity) <= 1024 or int(self.base_capacity) % 8:
            raise settings.InvalidParam(f"base_capacity={self.base_capacity!r} must be a multiple of 8 in 8..1024")
        if int(self.secret_recovery_days) not in (0, *range(7, 31)):
            raise settings.InvalidParam("secret_recovery_days must be 0 (delete at once) or 7..30")

    def connection_secret(self, conn_id: str) -> str:
        """The secret the Airflow ``SecretsManagerBackend`` reads connection ``conn_id`` from."""
        return f"{self.connections_prefix.rstrip('/')}/{conn_id}"


def identity_params() -> dict[str, Param]:
    """The params that name what the setup creates; the teardown must be given the same values."""
    d = Config()
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


# -- clients and tags ----------------------------------------------------------------------------


_clients: dict[tuple[str, str, str, str], Any] = {}


def aws_client(service: str, conn_id: str | None, region: str | None) -> Any:
    """A boto3 client for ``service`` through an Airflow AWS connection (retries on throttling).

    Clients are kept for the life of the process (one task), keyed by the connection's content
    as well as its id, since building one costs about a second of CPU.
    """
    from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook
    from airflow.sdk import BaseHook
    from botocore.config import Config as BotoConfig

    try:
        fingerprint = BaseHook.get_connection(conn_id).get_uri() if conn_id else ""
    except AirflowNotFoundException:
        fingerprint = ""
    key = (service, conn_id or "", region or "", fingerprint)
    if key not in _clients:
        hook = AwsGenericHook(aws_conn_id=conn_id or None, client_type=service, region_name=region or None,
                              config=BotoConfig(**BOTOCORE_CONFIG))
        _clients[key] = hook.get_conn()
    return _clients[key]


def tag_list(*, lower: bool = False) -> list[dict[str, str]]:
    """The setup's tags, as ``[{"Key", "Value"}]`` (or ``key``/``value`` for Redshift Serverless)."""
    k, v = ("key", "value") if lower else ("Key", "Value")
    return [{k: key, v: value} for key, value in PROJECT_TAGS.items()]


def is_ours(tags: Sequence[Mapping[str, str]] | None) -> bool:
    """Whether a resource's tags say sparkify_setup created it."""
    for tag in tags or ():
        key = tag.get("Key", tag.get("key"))
        if key == CREATED_BY_KEY and tag.get("Value", tag.get("value")) == CREATED_BY_VALUE:
            return True
    return False


def as_bool(value: Any) -> bool:
    """A boolean param, also when a template rendered it to ``"True"`` or ``"False"``."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def error_code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


def is_throttled(err: BaseException) -> bool:
    return isinstance(err, ClientError) and error_code(err) in THROTTLING_CODES


def wait_until(
    probe: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Call ``probe`` every ``interval`` seconds until it returns True; return how many calls it took.

    A throttled call counts as "not yet" (botocore has already retried it); any other error, or
    an ``AirflowFailException`` from ``probe`` (a state that will never turn good), ends the wait.
    """
    deadline = clock() + timeout
    calls = 0
    while True:
        calls += 1
        try:
            if probe():
                return calls
        except ClientError as err:
            if not is_throttled(err):
                raise
            log.warning("%s: throttled by AWS (%s); polling again in %g s", what, error_code(err), interval)
        if clock() + interval > deadline:
            raise AirflowException(f"{what}: not reached within {timeout:g} s ({calls} polls)")
        sleep(interval)


# -- who runs the pipeline ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    account: str
    arn: str
    partition: str


def caller(sts: Any) -> Caller:
    identity = sts.get_caller_identity()
    return Caller(identity["Account"], identity["Arn"], identity["Arn"].split(":")[1])


def principal_of(arn: str, iam: Any | None = None) -> str:
    """The IAM principal to trust for the identity ``arn`` that ``sts:GetCallerIdentity`` returned.

    An assumed-role session (``arn:aws:sts::123:assumed-role/Name/session``) is trusted through its
    role, looked up for its path (SSO roles live under ``/aws-reserved/...``).
    """
    parts = arn.split(":", 5)
    if len(parts) != 6:
        raise AirflowFailException(f"cannot derive an IAM principal from {arn!r}: set pipeline_principal_arn")
    _, partition, _, _, account, resource = parts
    if resource.startswith("assumed-role/"):
        role = resource.split("/")[1]
        if iam is not None:
            try:
                return iam.get_role(RoleName=role)["Role"]["Arn"]
            except ClientError as err:
                log.warning("Could not look up role %s (%s); trusting it without its path", role, error_code(err))
        return f"arn:{partition}:iam::{account}:role/{role}"
    if resource.startswith(("user/", "role/")) or resource == "root":
        return f"arn:{partition}:iam::{account}:{resource}"
    raise AirflowFailException(
        f"the setup runs as {arn}, which cannot be trusted to assume a role: set pipeline_principal_arn "
        "to the IAM user or role Airflow's workers run as"
    )


# -- the role --------------------------------------------------------------------------------------


def access_policy(
    *,
    source_bucket: str,
    source_prefixes: Sequence[str],
    source_keys: Sequence[str],
    manifest_bucket: str,
    manifest_prefix: str,
    partition: str = "aws",
) -> dict[str, Any]:
    """Least privilege for staging: list and read the source prefixes, read and write the manifests.

    Redshift's COPY reads the manifests and the objects they list; Airflow (through the same role,
    the ``role_arn`` of the pipeline's AWS connection) lists the prefixes, reads the objects' ETags
    and writes the manifests. Nothing else: no other bucket, prefix or action.
    """
    s3 = f"arn:{partition}:s3:::"
    prefixes = [p.strip("/") for p in source_prefixes]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListSourcePrefixes",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": f"{s3}{source_bucket}",
                "Condition": {"StringLike": {"s3:prefix": sorted([*prefixes, *(f"{p}/*" for p in prefixes)])}},
            },
            {
                "Sid": "ReadSourceObjects",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": sorted([*(f"{s3}{source_bucket}/{p}/*" for p in prefixes),
                                    *(f"{s3}{source_bucket}/{k}" for k in source_keys)]),
            },
            {
                "Sid": "ReadWriteCopyManifests",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"{s3}{manifest_bucket}/{manifest_prefix.strip('/')}/*",
            },
        ],
    }


def trust_policy(airflow_principal: str | None) -> dict[str, Any]:
    """Redshift may assume the role (for COPY), and so may the identity Airflow's workers run as."""
    statements: list[dict[str, Any]] = [
        {"Sid": "RedshiftCopy", "Effect": "Allow", "Principal": {"Service": "redshift.amazonaws.com"},
         "Action": "sts:AssumeRole"},
    ]
    if airflow_principal:
        statements.append({"Sid": "AirflowStaging", "Effect": "Allow", "Principal": {"AWS": airflow_principal},
                           "Action": "sts:AssumeRole"})
    return {"Version": "2012-10-17", "Statement": statements}


def _document(doc: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(doc, str):
        return json.loads(urllib.parse.unquote(doc))
    return dict(doc)


def _canonical(value: Any, key: str = "") -> Any:
    """A policy in one spelling: single values as lists, lists sorted, for comparison."""
    if isinstance(value, Mapping):
        return {k: _canonical(v, k) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return sorted((_canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, str) and key in ("Action", "NotAction", "Resource", "NotResource", "AWS", "Service",
                                            "s3:prefix"):
        return [value]
    return value


def same_policy(a: str | Mapping[str, Any], b: str | Mapping[str, Any]) -> bool:
    return _canonical(_document(a)) == _canonical(_document(b))


@dataclass(frozen=True)
class RoleState:
    arn: str
    created: bool
    trust_updated: bool
    policy_updated: bool


def ensure_role(iam: Any, *, name: str, trust: Mapping[str, Any], policy: Mapping[str, Any]) -> RoleState:
    """Create the role with its inline policy, or bring an existing one of ours up to date."""
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(trust),
            Description="Sparkify: Redshift COPY and Airflow staging read the source data and write COPY manifests",
            Tags=tag_list(),
        )["Role"]
        iam.put_role_policy(RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))
        log.info("Created IAM role %s with inline policy %s", role["Arn"], POLICY_NAME)
        return RoleState(role["Arn"], created=True, trust_updated=False, policy_updated=True)

    if not is_ours(iam.list_role_tags(RoleName=name).get("Tags")):
        raise NotCreatedBySetup(
            f"IAM role {name} exists but was not created by sparkify_setup (no {CREATED_BY_KEY} tag): "
            "choose another role_name, or tag the role if it should be managed here"
        )
    trust_updated = not same_policy(role["AssumeRolePolicyDocument"], trust)
    if trust_updated:
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
    try:
        current = iam.get_role_policy(RoleName=name, PolicyName=POLICY_NAME)["PolicyDocument"]
    except iam.exceptions.NoSuchEntityException:
        current = None
    policy_updated = current is None or not same_policy(current, policy)
    if policy_updated:
        iam.put_role_policy(RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))
    log.info(
        "Reusing IAM role %s (trust policy %s, access policy %s)", role["Arn"],
        "updated" if trust_updated else "up to date", "updated" if policy_updated else "up to date",
    )
    return RoleState(role["Arn"], created=False, trust_updated=trust_updated, policy_updated=policy_updated)


def remove_role(iam: Any, name: str) -> str:
    """Detach and delete every policy of the role, then the role. Returns what happened."""
    try:
        iam.get_role(RoleName=name)
    except iam.exceptions.NoSuchEntityException:
        return "absent"
    if not is_ours(iam.list_role_tags(RoleName=name).get("Tags")):
        raise NotCreatedBySetup(f"IAM role {name} was not created by sparkify_setup: not deleting it")
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
        for policy in page["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
        for policy in page["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    for page in iam.get_paginator("list_instance_profiles_for_role").paginate(RoleName=name):
        for profile in page["InstanceProfiles"]:
            iam.remove_role_from_instance_profile(InstanceProfileName=profile["InstanceProfileName"], RoleName=name)
    iam.delete_role(RoleName=name)
    return "deleted"


# -- the manifest bucket -----------------------------------------------------------------------------


def default_manifest_bucket(account: str, region: str) -> str:
    return f"sparkify-manifests-{account}-{region}"


def _bucket_exists(s3: Any, name: str) -> bool:
    try:
        s3.head_bucket(Bucket=name)
        return True
    except ClientError as err:
        if error_code(err) in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise


def _bucket_is_ours(s3: Any, name: str) -> bool:
    try:
        return is_ours(s3.get_bucket_tagging(Bucket=name).get("TagSet"))
    except ClientError as err:
        if error_code(err) == "NoSuchTagSet":
            return False
        raise


def ensure_bucket(s3: Any, name: str, region: str, manifest_prefix: str) -> bool:
    """Create the manifest bucket (private, encrypted, manifests expire after 30 days) unless it exists.

    An existing bucket is used as it is. Returns whether the bucket was created.
    """
    if _bucket_exists(s3, name):
        log.info("Using existing bucket s3://%s for COPY manifests", name)
        return False
    kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=name, **kwargs)
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={"BlockPublicAcls": True, "IgnorePublicAcls": True,
                                        "BlockPublicPolicy": True, "RestrictPublicBuckets": True},
    )
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list()})
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={"Rules": [{
            "ID": "expire-copy-manifests", "Status": "Enabled",
            "Filter": {"Prefix": manifest_prefix.strip("/") + "/"}, "Expiration": {"Days": 30},
        }]},
    )
    log.info("Created bucket s3://%s in %s for COPY manifests", name, region)
    return True


def remove_bucket(s3: Any, name: str) -> str:
    """Empty and delete the bucket if the setup created it; leave any other bucket alone."""
    if not _bucket_exists(s3, name):
        return "absent"
    if not _bucket_is_ours(s3, name):
        return "kept (not created by sparkify_setup)"
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                  for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]]
        if doomed:
            s3.delete_objects(Bucket=name, Delete={"Objects": doomed, "Quiet": True})
    s3.delete_bucket(Bucket=name)
    return "deleted"


# -- secrets -----------------------------------------------------------------------------------------


@contextmanager
def botocore_quiet() -> Iterator[None]:
    """Keep botocore's DEBUG log (which prints request and response bodies) off for calls carrying a secret.

    Airflow masks a secret in logs once it knows it, but botocore would log a generated password
    before the task could register it.
    """
    logger = logging.getLogger("botocore")
    level = logger.level
    if logger.getEffectiveLevel() < logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.setLevel(level)



def describe_secret(sm: Any, name: str) -> dict[str, Any] | None:
    try:
        return sm.describe_secret(SecretId=name)
    except sm.exceptions.ResourceNotFoundException:
        return None


def read_secret(sm: Any, name: str) -> dict[str, Any] | None:
    """The secret's JSON value (a plain string becomes ``{"password": ...}``), masked in logs; or None."""
    meta = describe_secret(sm, name)
    if meta is None or meta.get("DeletedDate"):
        return None
    with botocore_quiet():
        raw = sm.get_secret_value(SecretId=name)["SecretString"]
    mask_secret(raw)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = {"password": raw}
    if not isinstance(value, dict):
        value = {"password": str(value)}
    if value.get("password"):
        mask_secret(value["password"])
    return value


def write_secret(sm: Any, name: str, value: Mapping[str, Any], description: str) -> str:
    """Store ``value`` as JSON under ``name``: create it, or update a secret the setup created."""
    if value.get("password"):
        mask_secret(value["password"])
    body = json.dumps(value)
    meta = describe_secret(sm, name)
    if meta is None:
        with botocore_quiet():
            return sm.create_secret(Name=name, SecretString=body, Description=description, Tags=tag_list())["ARN"]
    if not is_ours(meta.get("Tags")):
        raise NotCreatedBySetup(
            f"secret {name} exists but was not created by sparkify_setup: not overwriting it "
            "(choose another name, or delete it yourself)"
        )
    if meta.get("DeletedDate"):  # scheduled for deletion by an earlier teardown: bring it back
        sm.restore_secret(SecretId=name)
    with botocore_quiet():
        sm.put_secret_value(SecretId=name, SecretString=body)
    return meta["ARN"]


def remove_secret(sm: Any, name: str, recovery_days: int) -> str:
    """Schedule the secret's deletion (or delete it at once with 0 days) if the setup created it."""
    meta = describe_secret(sm, name)
    if meta is None:
        return "absent"
    if meta.get("DeletedDate"):
        return "already scheduled for deletion"
    if not is_ours(meta.get("Tags")):
        return "kept (not created by sparkify_setup)"
    if recovery_days:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=recovery_days)
        return f"scheduled for deletion in {recovery_days} days"
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    return "deleted"


def generate_password(sm: Any) -> str:
    """A 32-character password Redshift accepts (upper, lower and digits; no quotes, '/', '@' or space)."""
    with botocore_quiet():
        password = sm.get_random_password(
            PasswordLength=32, ExcludePunctuation=True, IncludeSpace=False, RequireEachIncludedType=True
        )["RandomPassword"]
    mask_secret(password)
    return password


@dataclass(frozen=True)
class Master:
    """The warehouse's admin credentials as stored; ``applied_to`` names the warehouse known to use them."""

    username: str
    password: str
    applied_to: str | None


def get_master(sm: Any, secret: str, username: str, *, create: bool) -> tuple[Master | None, bool]:
    """Read the master credentials from ``secret``; generate and store them there if missing and ``create``.

    Returns ``(master, generated)``. A secret the user stored by hand may be a plain password or
    JSON with a ``password`` key.
    """
    value = read_secret(sm, secret)
    if value and value.get("password"):
        return Master(value.get("username", username), value["password"], value.get("applied_to")), False
    if not create:
        return None, False
    password = generate_password(sm)
    write_secret(sm, secret, {"engine": "redshift", "username": username, "password": password},
                 "Sparkify: admin credentials of the Redshift warehouse (generated by sparkify_setup)")
    log.info("Generated the warehouse admin password and stored it in secret %s", secret)
    return Master(username, password, None), True


def mark_applied(sm: Any, secret: str, master: Master, warehouse: str) -> None:
    """Record in the secret that ``warehouse`` uses these credentials (only in a secret the setup owns)."""
    meta = describe_secret(sm, secret)
    if meta is None or not is_ours(meta.get("Tags")):
        return
    write_secret(sm, secret, {"engine": "redshift", "username": master.username, "password": master.password,
                              "applied_to": warehouse}, meta.get("Description", ""))


def cluster_ref(cluster_identifier: str) -> str:
    return f"cluster/{cluster_identifier}"


def namespace_ref(namespace: str) -> str:
    return f"namespace/{namespace}"


# -- the Airflow connections the pipeline uses -----------------------------------------------------


def redshift_connection(*, host: str, port: int, login: str, password: str, database: str) -> dict[str, Any]:
    return {"conn_type": "redshift", "host": host, "port": int(port), "login": login, "password": password,
            "schema": database}


def aws_connection(*, region: str, role_arn: str) -> dict[str, Any]:
    """No keys: the worker's own credentials assume ``role_arn``, which COPY also uses (``aws_iam_role``)."""
    return {"conn_type": "aws", "extra": {"region_name": region, "role_arn": role_arn}}


@contextmanager
def connection_in_env(conn_id: str, connection: Mapping[str, Any] | None) -> Iterator[None]:
    """Make ``connection`` visible to Airflow as ``conn_id`` for this block, if Airflow has no such connection.

    The pipeline finds its connections through the user's secrets backend; if that is not set up
    yet, the registered connection is used for this one block through ``AIRFLOW_CONN_<ID>``.
    """
    from airflow.sdk import BaseHook

    try:
        BaseHook.get_connection(conn_id)
        defined = True
    except AirflowNotFoundException:
        defined = False
    if defined:
        yield
        return
    if connection is None:
        raise AirflowFailException(
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


def warehouse_endpoint(config: Config) -> tuple[str, int]:
    """Host and port of the configured warehouse: the cluster's endpoint, or the workgroup's."""
    if config.warehouse_kind == "provisioned":
        cluster = describe_cluster(aws_client("redshift", config.admin_aws_conn_id, config.region),
                                   config.cluster_identifier)
        if cluster is None:
            raise AirflowFailException(f"cluster {config.cluster_identifier} does not exist")
        return cluster_endpoint(cluster)
    workgroup = get_workgroup(aws_client("redshift-serverless", config.admin_aws_conn_id, config.region),
                              config.serverless_workgroup)
    if workgroup is None or not (workgroup.get("endpoint") or {}).get("address"):
        raise AirflowFailException(f"workgroup {config.serverless_workgroup} has no endpoint")
    return workgroup["endpoint"]["address"], int(workgroup["endpoint"]["port"])


# -- the provisioned cluster -------------------------------------------------------------------------


def describe_cluster(redshift: Any, cluster_identifier: str) -> dict[str, Any] | None:
    try:
        return redshift.describe_clusters(ClusterIdentifier=cluster_identifier)["Clusters"][0]
    except redshift.exceptions.ClusterNotFoundFault:
        return None


def cluster_endpoint(cluster: Mapping[str, Any]) -> tuple[str, int]:
    endpoint = cluster.get("Endpoint") or {}
    if not endpoint.get("Address"):
        raise AirflowException(f"cluster {cluster['ClusterIdentifier']} has no endpoint yet")
    return endpoint["Address"], int(endpoint["Port"])


class CreateOrReuseClusterOperator(RedshiftCreateClusterOperator):
    """``RedshiftCreateClusterOperator`` that reuses an existing cluster and never sees its password in a template.

    If no cluster has the identifier, the master password is read from (or generated into)
    Secrets Manager secret ``master_password_secret`` inside ``execute()`` and the cluster is
    created by the provider operator. If one exists, it is reused as it is (resumed if paused,
    never re-tagged); its password and role are reconciled after it is available.

    :param master_password_secret: Secrets Manager secret of the admin credentials (templated).
    """

    template_fields: Sequence[str] = (*RedshiftCreateClusterOperator.template_fields, "master_password_secret")

    def __init__(self, *, master_password_secret: str, **kwargs: Any) -> None:
        super().__init__(master_user_password=None, **kwargs)  # type: ignore[arg-type]
        self.master_password_secret = master_password_secret

    def execute(self, context: Context) -> dict[str, Any]:
        # Templates render to strings: give the API the types it expects.
        self.publicly_accessible = as_bool(self.publicly_accessible)
        self.encrypted = as_bool(self.encrypted)
        self.number_of_nodes = int(self.number_of_nodes)
        self.kms_key_id = self.kms_key_id or None
        redshift = self.hook.conn
        sm = aws_client("secretsmanager", self.aws_conn_id, self.region_name)
        cluster = describe_cluster(redshift, self.cluster_identifier)
        if cluster is None:
            master, _ = get_master(sm, self.master_password_secret, self.master_username, create=True)
            self.master_user_password = master.password  # type: ignore[union-attr]  # create=True: never None
            try:
                with botocore_quiet():
                    super().execute(context)
            finally:
                self.master_user_password = None  # the password lives only for the API call
            mark_applied(sm, self.master_password_secret, master, cluster_ref(self.cluster_identifier))
            return {"cluster_identifier": self.cluster_identifier, "created": True}

        ours = is_ours(cluster.get("Tags"))
        status = cluster["ClusterStatus"]
        self.log.info(
            "Cluster %s already exists (status %s, %s): reusing it", self.cluster_identifier, status,
            "created by sparkify_setup" if ours else "not created by sparkify_setup: the teardown will not delete it",
        )
        if not cluster.get("Encrypted"):
            self.log.warning("Cluster %s is not encrypted at rest", self.cluster_identifier)
        master, _ = get_master(sm, self.master_password_secret, self.master_username, create=ours)
        if master is None:
            raise AirflowFailException(
                f"cluster {self.cluster_identifier} exists, was not created by sparkify_setup, and secret "
                f"{self.master_password_secret} holds no password for it: store its admin password there as "
                '{"username": "...", "password": "..."} and run the setup again'
            )
        if status == "paused":
            redshift.resume_cluster(ClusterIdentifier=self.cluster_identifier)
            self.log.info("Resuming paused cluster %s", self.cluster_identifier)
        return {"cluster_identifier": self.cluster_identifier, "created": False}


class ClusterAvailableSensor(RedshiftClusterSensor):
    """``RedshiftClusterSensor`` that fails at once on a state that will never become available.

    Throttled polls count as "not yet" instead of failing the sensor.
    """

    def poke(self, context: Context) -> bool:
        try:
            status = self.hook.cluster_status(self.cluster_identifier)
        except ClientError as err:
            if is_throttled(err):
                self.log.warning("Polling cluster %s was throttled (%s); trying again",
                                 self.cluster_identifier, error_code(err))
                return False
            raise
        self.log.info("Cluster %s is %s (waiting for %s)", self.cluster_identifier, status, self.target_status)
        if status in CLUSTER_FAILED_STATES or status == "cluster_not_found":
            raise AirflowFailException(
                f"cluster {self.cluster_identifier} is {status}: it will not become {self.target_status}"
            )
        return status == self.target_status


def configure_cluster(redshift: Any, sm: Any, config: Config, role_arn: str) -> dict[str, Any]:
    """Bring an available cluster in line: the role attached; and, on a cluster the setup created, public
    access as the param says and the admin password as stored. Report what changed."""
    cluster = describe_cluster(redshift, config.cluster_identifier)
    if cluster is None:
        raise AirflowFailException(f"cluster {config.cluster_identifier} does not exist")
    ours = is_ours(cluster.get("Tags"))
    changes = []
    attached = {r["IamRoleArn"] for r in cluster.get("IamRoles", [])}
    if role_arn not in attached:
        redshift.modify_cluster_iam_roles(ClusterIdentifier=config.cluster_identifier, AddIamRoles=[role_arn])
        changes.append("role attached")
    public = as_bool(config.publicly_accessible)
    if bool(cluster.get("PubliclyAccessible")) != public:
        if ours:
            redshift.modify_cluster(ClusterIdentifier=config.cluster_identifier, PubliclyAccessible=public)
            changes.append(f"publicly accessible turned {'on' if public else 'off'}")
        else:
            log.warning("Cluster %s is %spublicly accessible; sparkify_setup did not create it, so it is left so",
                        config.cluster_identifier, "" if cluster.get("PubliclyAccessible") else "not ")
    master, _ = get_master(sm, config.master_password_secret, config.master_username, create=False)
    ref = cluster_ref(config.cluster_identifier)
    if master is not None and master.applied_to != ref:
        if ours:
            # The secret is newer than the cluster (generated for it, or replaced by hand): make it true.
            with botocore_quiet():
                redshift.modify_cluster(ClusterIdentifier=config.cluster_identifier,
                                        MasterUserPassword=master.password)
            mark_applied(sm, config.master_password_secret, master, ref)
            changes.append("admin password reset to the stored one")
        else:
            log.info("Using the password stored in %s for cluster %s, which sparkify_setup did not create",
                     config.master_password_secret, config.cluster_identifier)
    host, port = cluster_endpoint(cluster)
    return {"host": host, "port": port, "changes": changes}


def delete_failed_cluster(redshift: Any, cluster_identifier: str, *, created_this_run: bool) -> str:
    """Delete the cluster if this run created it and its creation failed; otherwise leave it alone."""
    if not created_this_run:
        return "not created by this run: left as it is"
    cluster = describe_cluster(redshift, cluster_identifier)
    if cluster is None:
        return "absent"
    status = cluster["ClusterStatus"]
    if status not in CLUSTER_CREATION_FAILED_STATES or not is_ours(cluster.get("Tags")):
        return f"{status}: left as it is"
    redshift.delete_cluster(ClusterIdentifier=cluster_identifier, SkipFinalClusterSnapshot=True)
    return f"{status}: deleted (nothing was in it)"


class DeleteOwnClusterOperator(RedshiftDeleteClusterOperator):
    """``RedshiftDeleteClusterOperator`` that refuses clusters sparkify_setup did not create.

    :param final_snapshot: keep a final snapshot ``<cluster>-final-<UTC time>`` (templated).
    """

    template_fields: Sequence[str] = (*RedshiftDeleteClusterOperator.template_fields, "final_snapshot")

    def __init__(self, *, final_snapshot: bool | str = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.final_snapshot = final_snapshot

    def execute(self, context: Context) -> Any:
        cluster = describe_cluster(self.hook.conn, self.cluster_identifier)
        if cluster is None:
            self.log.info("Cluster %s does not exist: nothing to delete", self.cluster_identifier)
            return None
        if not is_ours(cluster.get("Tags")):
            raise NotCreatedBySetup(
                f"cluster {self.cluster_identifier} was not created by sparkify_setup: not deleting it"
            )
        keep = as_bool(self.final_snapshot)
        self.skip_final_cluster_snapshot = not keep
        if keep:
            self.final_cluster_snapshot_identifier = (
                f"{self.cluster_identifier}-final-{datetime.now(UTC):%Y%m%d%H%M%S}"
            )
            self.log.info("Deleting cluster %s, keeping final snapshot %s",
                          self.cluster_identifier, self.final_cluster_snapshot_identifier)
        else:
            self.log.info("Deleting cluster %s without a final snapshot", self.cluster_identifier)
        super().execute(context)
        return {"final_snapshot": self.final_cluster_snapshot_identifier if keep else None}


# -- Redshift Serverless -------------------------------------------------------------------------------


def _get_or_none(call: Callable[..., dict[str, Any]], key: str, **kwargs: Any) -> dict[str, Any] | None:
    try:
        return call(**kwargs)[key]
    except ClientError as err:
        if error_code(err) == "ResourceNotFoundException":
            return None
        raise


def get_namespace(client: Any, name: str) -> dict[str, Any] | None:
    return _get_or_none(client.get_namespace, "namespace", namespaceName=name)


def get_workgroup(client: Any, name: str) -> dict[str, Any] | None:
    return _get_or_none(client.get_workgroup, "workgroup", workgroupName=name)


def serverless_is_ours(client: Any, arn: str) -> bool:
    return is_ours(client.list_tags_for_resource(resourceArn=arn).get("tags"))


@dataclass(frozen=True)
class ServerlessState:
    host: str
    port: int
    namespace_created: bool
    workgroup_created: bool
    namespace_ours: bool


def ensure_serverless(
    client: Any,
    *,
    namespace: str,
    workgroup: str,
    admin_username: str,
    new_password: Callable[[], str],
    db_name: str,
    role_arn: str,
    base_capacity: int,
    publicly_accessible: bool,
    kms_key_id: str = "",
    reset_password: str | None = None,
    timeout: float = 1800,
    interval: float = 15,
    sleep: Callable[[float], None] = time.sleep,
) -> ServerlessState:
    """Create (or reuse) a Redshift Serverless namespace and workgroup and wait until both are available.

    ``new_password`` is called only when the namespace is created. ``reset_password`` sets the
    admin password of an existing namespace the setup created. Serverless storage is always
    encrypted (with ``kms_key_id`` if given, else an AWS-owned key).
    """
    ns = get_namespace(client, namespace)
    namespace_created = ns is None
    if ns is None:
        kwargs: dict[str, Any] = {
            "namespaceName": namespace, "adminUsername": admin_username, "adminUserPassword": new_password(),
            "dbName": db_name, "defaultIamRoleArn": role_arn, "iamRoles": [role_arn], "tags": tag_list(lower=True),
        }
        if kms_key_id:
            kwargs["kmsKeyId"] = kms_key_id
        with botocore_quiet():
            ns = client.create_namespace(**kwargs)["namespace"]
        ours = True
        log.info("Created Redshift Serverless namespace %s", namespace)
    else:
        ours = serverless_is_ours(client, ns["namespaceArn"])
        log.info("Reusing Redshift Serverless namespace %s (%s)", namespace,
                 "created by sparkify_setup" if ours else "not created by sparkify_setup")
        if role_arn not in ns.get("iamRoles", []):
            _wait_namespace(client, namespace, timeout, interval, sleep)
            client.update_namespace(namespaceName=namespace, iamRoles=[*ns.get("iamRoles", []), role_arn],
                                    defaultIamRoleArn=ns.get("defaultIamRoleArn") or role_arn)
        if reset_password and ours:
            _wait_namespace(client, namespace, timeout, interval, sleep)
            with botocore_quiet():
                client.update_namespace(namespaceName=namespace, adminUsername=admin_username,
                                        adminUserPassword=reset_password)
    _wait_namespace(client, namespace, timeout, interval, sleep)

    wg = get_workgroup(client, workgroup)
    workgroup_created = wg is None
    if wg is None:
        client.create_workgroup(
            workgroupName=workgroup, namespaceName=namespace, baseCapacity=int(base_capacity),
            publiclyAccessible=bool(publicly_accessible), tags=tag_list(lower=True),
        )
        log.info("Created Redshift Serverless workgroup %s (base capacity %d RPU)", workgroup, base_capacity)
    elif wg.get("namespaceName") != namespace:
        raise AirflowFailException(
            f"workgroup {workgroup} belongs to namespace {wg.get('namespaceName')}, not {namespace}"
        )
    elif wg.get("publiclyAccessible") and not publicly_accessible:
        log.warning("Workgroup %s is publicly accessible, although publicly_accessible is off", workgroup)

    found: dict[str, Any] = {}

    def workgroup_available() -> bool:
        current = get_workgroup(client, workgroup)
        if current is None or current["status"] == "DELETING":
            raise AirflowFailException(f"workgroup {workgroup} is being deleted or is gone")
        found.update(current)
        return current["status"] == "AVAILABLE"

    wait_until(workgroup_available, what=f"workgroup {workgroup} AVAILABLE", timeout=timeout,
               interval=interval, sleep=sleep)
    endpoint = found.get("endpoint") or {}
    return ServerlessState(endpoint.get("address", ""), int(endpoint.get("port", 5439)),
                           namespace_created, workgroup_created, ours)


def _wait_namespace(client: Any, namespace: str, timeout: float, interval: float,
                    sleep: Callable[[float], None]) -> None:
    def available() -> bool:
        current = get_namespace(client, namespace)
        if current is None or current["status"] == "DELETING":
            raise AirflowFailException(f"namespace {namespace} is being deleted or is gone")
        return current["status"] == "AVAILABLE"

    wait_until(available, what=f"namespace {namespace} AVAILABLE", timeout=timeout, interval=interval, sleep=sleep)


def check_serverless_ours(client: Any, *, namespace: str, workgroup: str) -> bool:
    """Whether anything exists; raise if what exists was not created by sparkify_setup."""
    found = False
    for kind, name, get in (("workgroup", workgroup, get_workgroup), ("namespace", namespace, get_namespace)):
        item = get(client, name)
        if item is None:
            continue
        found = True
        if not serverless_is_ours(client, item[f"{kind}Arn"]):
            raise NotCreatedBySetup(f"Redshift Serverless {kind} {name} was not created by sparkify_setup: "
                                    "not deleting it")
    return found


def delete_serverless(
    client: Any,
    *,
    namespace: str,
    workgroup: str,
    final_snapshot: str | None,
    timeout: float = 1800,
    interval: float = 15,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Delete the workgroup, then the namespace (with a final snapshot if named); wait for each to go."""
    check_serverless_ours(client, namespace=namespace, workgroup=workgroup)
    done = []
    if get_workgroup(client, workgroup) is not None:
        client.delete_workgroup(workgroupName=workgroup)
        wait_until(lambda: get_workgroup(client, workgroup) is None, what=f"workgroup {workgroup} deleted",
                   timeout=timeout, interval=interval, sleep=sleep)
        done.append(f"workgroup {workgroup} deleted")
    if get_namespace(client, namespace) is not None:
        kwargs: dict[str, Any] = {"namespaceName": namespace}
        if final_snapshot:
            kwargs["finalSnapshotName"] = final_snapshot
        client.delete_namespace(**kwargs)
        wait_until(lambda: get_namespace(client, namespace) is None, what=f"namespace {namespace} deleted",
                   timeout=timeout, interval=interval, sleep=sleep)
        done.append(f"namespace {namespace} deleted" + (f", final snapshot {final_snapshot}" if final_snapshot else ""))
    return done
