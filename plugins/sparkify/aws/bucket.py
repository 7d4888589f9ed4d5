"""The bucket Airflow writes COPY manifests to: private, encrypted, manifests expire after 30 days.

Every function takes a boto3 S3 client.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from sparkify.aws.errors import error_code
from sparkify.aws.tags import is_ours, tag_list

log = logging.getLogger(__name__)


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
