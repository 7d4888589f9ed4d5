"""What the warehouse must hold after the check's day, and what the teardown must leave.

The expected tables come from tests/reference.py: the tests' independent reading of the data
contract (plain Python over the raw files, no pipeline code), imported as make bench imports it,
rather than copied, so that the acceptance run and the tests hold the pipeline to one set of rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any


def download(s3: Any, bucket: str, events_key: str, song_prefix: str, root: Path) -> dict[str, int]:
    """The day's events file and every song file under ``song_prefix``, laid out as in the bucket
    (``log_data/…``, ``song_data/…``), the layout tests/reference.py reads."""
    target = root / events_key
    target.parent.mkdir(parents=True, exist_ok=True)
    s3.download_file(bucket, events_key, str(target))
    songs = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=song_prefix.rstrip("/") + "/"):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".json"):
                path = root / item["Key"]
                path.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, item["Key"], str(path))
                songs += 1
    return {"events": 1, "songs": songs}


def compare(root: Path, start: datetime, end: datetime, conn_id: str) -> dict[str, str]:
    """Each star table of the warehouse against the expected rows: '' when equal, else what differs."""
    from tests import reference

    from sparkify.warehouse import Warehouse

    events = reference.read_events(reference.event_log_paths(root, start, end))
    songs = reference.read_songs(reference.song_paths(root))
    wanted = reference.expected_tables(events, songs, start, end)
    out = {}
    with Warehouse(conn_id).transaction() as tx:
        for table in reference.STAR_TABLES:
            actual = tx.fetchall(f"SELECT {', '.join(reference.COLUMNS[table])} FROM public.{table}")
            out[table] = (reference.describe_difference(table, wanted[table], actual)
                          or f"{table}: {len(wanted[table])} row(s), equal")
    return out


def inventory(session: Any, plan: Any) -> dict[str, bool]:
    """Whether each resource the setup creates exists now (a secret scheduled for deletion does not)."""
    s = plan.setup
    region = plan.region
    found: dict[str, bool] = {}
    if s.warehouse_kind == "serverless":
        serverless = session.client("redshift-serverless", region_name=region)
        found[f"Serverless workgroup {s.serverless_workgroup}"] = _exists(
            lambda: serverless.get_workgroup(workgroupName=s.serverless_workgroup))
        found[f"Serverless namespace {s.serverless_namespace}"] = _exists(
            lambda: serverless.get_namespace(namespaceName=s.serverless_namespace))
    else:
        redshift = session.client("redshift", region_name=region)
        found[f"Redshift cluster {s.cluster_identifier}"] = _exists(
            lambda: redshift.describe_clusters(ClusterIdentifier=s.cluster_identifier))
    iam = session.client("iam")
    found[f"IAM role {s.role_name}"] = _exists(lambda: iam.get_role(RoleName=s.role_name))
    secrets = session.client("secretsmanager", region_name=region)
    for name in (s.master_password_secret, s.connection_secret(s.redshift_conn_id), s.connection_secret(s.aws_conn_id)):
        found[f"secret {name}"] = _exists(lambda n=name: _live_secret(secrets, n))
    s3 = session.client("s3", region_name=plan.region)
    found[f"S3 bucket {plan.manifest_bucket}"] = _exists(lambda: s3.head_bucket(Bucket=plan.manifest_bucket))
    return found


def _live_secret(secrets: Any, name: str) -> None:
    if secrets.describe_secret(SecretId=name).get("DeletedDate"):
        raise LookupError(name)


def _exists(call) -> bool:
    try:
        call()
    except Exception as err:
        from sparkify.errors import error_code

        if isinstance(err, LookupError) or error_code(err) in (
                "ResourceNotFoundException", "ClusterNotFound", "ClusterNotFoundFault", "NoSuchEntity", "404",
                "NoSuchBucket", "NotFound"):
            return False
        raise
    return True


@dataclass(frozen=True)
class Report:
    ok: bool
    text: str


def report(differences: dict[str, str] | None, before: dict[str, bool], after: dict[str, bool]) -> Report:
    """What the check found in the tables, and what the teardown removed (or left)."""
    lines = ["", "What the check found:"]
    equal = differences is not None and all(d.endswith(", equal") for d in differences.values())
    if differences is None:
        lines.append("  the tables were not compared (a step before failed; see above)")
    else:
        lines += [f"  {d}" if d.endswith(", equal") else "  " + d.replace("\n", "\n  ") for d in differences.values()]
    removed = [name for name, there in before.items() if there and not after.get(name)]
    left = [name for name, there in after.items() if there]
    lines.append("What the teardown removed:" + ("" if removed else " nothing (nothing was there)"))
    lines += [f"  {name}" for name in removed]
    if left:
        lines.append("LEFT BEHIND (remove by hand, or run sparkify_teardown again):")
        lines += [f"  {name}" for name in left]
    lines.append("aws-check: PASSED" if equal and not left else "aws-check: FAILED")
    return Report(equal and not left, "\n".join(lines))
