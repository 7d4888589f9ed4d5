"""The IAM role Redshift's COPY and Airflow's staging assume: who may assume it, what it may do.

Every function takes a boto3 IAM client (and STS where it says so).
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from sparkify.aws.errors import NotCreatedBySetup, error_code
from sparkify.aws.tags import CREATED_BY_KEY, is_ours, tag_list
from sparkify.settings import InvalidParam

log = logging.getLogger(__name__)

POLICY_NAME = "sparkify-copy-access"


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
        raise InvalidParam(f"cannot derive an IAM principal from {arn!r}: set pipeline_principal_arn")
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
    raise InvalidParam(
        f"the setup runs as {arn}, which cannot be trusted to assume a role: set pipeline_principal_arn "
        "to the IAM user or role Airflow's workers run as"
    )


# -- the policies ------------------------------------------------------------------------------------


def access_policy(
    *,
    source_bucket: str,
    source_prefixes: Sequence[str],
    source_keys: Sequence[str],
    manifest_bucket: str,
    manifest_prefix: str,
    partition: str = "aws",
) -> dict[str, Any]:
    """Least privilege for staging: list and read the source prefixes, read and write the manifests,
    and locate the manifest bucket (GetBucketLocation: it must be in the COPY's region).

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
            {
                # The staging checks the manifest bucket is in the COPY's REGION (Redshift requires it).
                "Sid": "LocateManifestBucket",
                "Effect": "Allow",
                "Action": "s3:GetBucketLocation",
                "Resource": f"{s3}{manifest_bucket}",
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


# -- the role ----------------------------------------------------------------------------------------


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
