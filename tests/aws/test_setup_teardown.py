"""sparkify_setup and sparkify_teardown end to end, through ``dag.test()``, against moto's server.

moto plays IAM, STS, Redshift, S3 and Secrets Manager. Its cluster endpoints do not resolve, so
the table-creation step runs against the local PostgreSQL (the ``redshift`` connection points
there) in the first run, and against a recording stand-in for Redshift's driver in the second,
where the SQL sent must be exactly the pipeline's Redshift DDL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from tests.aws.conftest import ACCOUNT, REGION, Aws
from tests.helpers import load_dag

from sparkify import access, migrations, warehouse
from sparkify.aws.iam import POLICY_NAME
from sparkify.aws.settings import SetupSettings
from sparkify.aws.tags import is_ours
from sparkify.tables import ALL_TABLES


def states(run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def run_dag(dag_id: str, aws: Aws, **conf: Any):
    """Run ``dag_id`` with every param given: in one process, ``dag.test()`` keeps the params of an
    earlier run's conf in the DAG object, so a param left out would not fall back to its default."""
    dag = load_dag(dag_id)
    defaults = SetupSettings()
    run = dag.test(run_conf={**{k: getattr(defaults, k) for k in dag.params}, **aws.conf(**conf)})
    return run, states(run)


class RecordingRedshift:
    """Stands in for ``redshift_connector.connect``: records the connection arguments and every statement."""

    def __init__(self) -> None:
        self.kwargs: dict[str, Any] = {}
        self.statements: list[str] = []
        self.committed = False

    def connect(self, **kwargs: Any) -> RecordingRedshift:
        self.kwargs = kwargs
        return self

    def cursor(self) -> RecordingRedshift:
        return self

    def execute(self, sql: str, params: Any = None) -> None:
        self.statements.append(sql)

    def fetchall(self) -> list[tuple]:
        return []  # a new warehouse: no migration recorded yet

    def commit(self) -> None:
        self.committed = True

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


def rendered_fields(dag_id: str, task_id: str) -> list[dict[str, Any]]:
    from airflow import settings
    from airflow.models.renderedtifields import RenderedTaskInstanceFields

    with settings.Session() as session:
        rows = session.query(RenderedTaskInstanceFields).filter_by(dag_id=dag_id, task_id=task_id).all()
        return [r.rendered_fields for r in rows]


def stored_values(dag_id: str) -> str:
    """Every rendered template field and XCom value the metadata database holds for ``dag_id``."""
    from airflow import settings
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel

    with settings.Session() as session:
        rendered = session.query(RenderedTaskInstanceFields).filter_by(dag_id=dag_id).all()
        xcoms = session.query(XComModel).filter_by(dag_id=dag_id).all()
        assert rendered and xcoms
        return json.dumps([r.rendered_fields for r in rendered], default=str) + json.dumps(
            [x.value for x in xcoms], default=str
        )


def log_files_text() -> str:
    import os

    root = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    return "".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file()) if root.exists() else ""


def test_setup_then_teardown_end_to_end(aws: Aws, airflow_db, empty_database, capfd, caplog, monkeypatch):
    caplog.set_level("DEBUG")
    names = aws.names
    iam, s3, sm = aws.client("iam"), aws.client("s3"), aws.client("secretsmanager")

    # -- first setup: everything is created ------------------------------------------------------
    run, ran = run_dag("sparkify_setup", aws)
    logs = capfd.readouterr()
    records = caplog.text
    caplog.clear()
    assert run.state == "success", ran
    assert ran["create_serverless"] == "skipped" and ran["create_tables"] == "success"

    role = iam.get_role(RoleName=names["role_name"])["Role"]
    assert is_ours(iam.list_role_tags(RoleName=names["role_name"])["Tags"])
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Sid": "RedshiftCopy", "Effect": "Allow", "Principal": {"Service": "redshift.amazonaws.com"},
         "Action": "sts:AssumeRole"},
        {"Sid": "AirflowStaging", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/moto"},
         "Action": "sts:AssumeRole"},
    ]
    policy = iam.get_role_policy(RoleName=names["role_name"], PolicyName=POLICY_NAME)["PolicyDocument"]
    source, bucket = "sparkify-tests", names["manifest_bucket"]  # the tests' SPARKIFY_S3_BUCKET
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ListSourcePrefixes", "Effect": "Allow", "Action": "s3:ListBucket",
             "Resource": f"arn:aws:s3:::{source}",
             "Condition": {"StringLike": {"s3:prefix": ["log_data", "log_data/*", "song_data", "song_data/*"]}}},
            {"Sid": "ReadSourceObjects", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": [f"arn:aws:s3:::{source}/log_data/*", f"arn:aws:s3:::{source}/log_json_path.json",
                          f"arn:aws:s3:::{source}/song_data/*"]},
            {"Sid": "ReadWriteCopyManifests", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": f"arn:aws:s3:::{bucket}/sparkify-manifests/*"},
            {"Sid": "LocateManifestBucket", "Effect": "Allow", "Action": "s3:GetBucketLocation",
             "Resource": f"arn:aws:s3:::{bucket}"},
        ],
    }
    assert iam.list_attached_role_policies(RoleName=names["role_name"])["AttachedPolicies"] == []

    cluster = aws.cluster()
    assert cluster["PubliclyAccessible"] is False
    assert cluster["Encrypted"] is True
    assert is_ours(cluster["Tags"])
    assert [r["IamRoleArn"] for r in cluster["IamRoles"]] == [role["Arn"]]
    assert (cluster["NodeType"], cluster["NumberOfNodes"]) == ("ra3.large", 1)
    assert (cluster["MasterUsername"], cluster["DBName"]) == ("sparkify_admin", "sparkify")
    created_at = cluster["ClusterCreateTime"]

    master = aws.secret(names["master_password_secret"])
    password = master["password"]
    assert len(password) == 32 and password.isalnum()
    assert master["applied_to"] == f"cluster/{names['cluster_identifier']}"
    assert is_ours(sm.describe_secret(SecretId=names["master_password_secret"])["Tags"])
    prefix = names["connections_prefix"]
    assert aws.secret(f"{prefix}/redshift") == {
        "conn_type": "redshift", "host": cluster["Endpoint"]["Address"], "port": 5439, "login": "sparkify_admin",
        "password": password, "schema": "sparkify",
    }
    assert aws.secret(f"{prefix}/aws") == {"conn_type": "aws",
                                           "extra": {"region_name": REGION, "role_arn": role["Arn"]}}

    assert is_ours(s3.get_bucket_tagging(Bucket=bucket)["TagSet"])
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0][
        "ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    # The tables, through the `redshift` connection (the local PostgreSQL here).
    created = {r[0] for r in empty_database.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    assert created == set(ALL_TABLES)

    # No secret in the task logs, the rendered templates or XComs.
    text = logs.out + logs.err + records + log_files_text()
    assert "Created IAM role" in text and "Tables ready in schema public" in text  # the task logs were captured
    assert f"SPARKIFY_MANIFEST_BUCKET={bucket}" in text
    assert password not in text
    assert password not in stored_values("sparkify_setup")
    rendered = rendered_fields("sparkify_setup", "create_cluster")
    assert rendered and all(r["master_user_password"] is None for r in rendered)

    # -- second setup: everything is reused; the policy follows a changed prefix -------------------
    # Airflow has no `redshift` connection now: the task uses the one built from the cluster's
    # endpoint and the stored password, through Redshift's driver (recorded here).
    monkeypatch.delenv("AIRFLOW_CONN_REDSHIFT")
    recorder = RecordingRedshift()
    capfd.readouterr()
    caplog.clear()  # the test's own reads of the secrets above are logged by botocore too
    with mock.patch("airflow.providers.amazon.aws.hooks.redshift_sql.redshift_connector.connect", recorder.connect):
        run, ran = run_dag("sparkify_setup", aws, song_prefix="songs_v2")
    logs = capfd.readouterr()
    text = logs.out + logs.err + caplog.text + log_files_text()
    assert run.state == "success", ran

    assert iam.get_role(RoleName=names["role_name"])["Role"]["CreateDate"] == role["CreateDate"]
    assert aws.cluster()["ClusterCreateTime"] == created_at
    assert aws.secret(names["master_password_secret"])["password"] == password
    resources = iam.get_role_policy(RoleName=names["role_name"], PolicyName=POLICY_NAME)[
        "PolicyDocument"]["Statement"][1]["Resource"]
    assert f"arn:aws:s3:::{source}/songs_v2/*" in resources
    assert f"arn:aws:s3:::{source}/song_data/*" not in resources
    assert "Reusing IAM role" in text and "already exists" in text

    assert {k: recorder.kwargs[k] for k in ("host", "port", "user", "password", "database")} == {
        "host": cluster["Endpoint"]["Address"], "port": 5439, "user": "sparkify_admin", "password": password,
        "database": "sparkify",
    }
    def sql(template: str) -> list[str]:
        return warehouse.split(warehouse.render(template, dialect="redshift", schema="public"))

    # The version table (committed on its own), then under its LOCK every migration in order, each
    # recorded in the version table, in one committed transaction.
    expected = sql("schema/version_table.sql") + sql("schema/lock.sql") + sql("schema/applied.sql")
    for migration in migrations.migrations():
        expected += migration.statements("redshift", "public") + sql("schema/record.sql")
    # Then the roles: neither exists yet (the recorder finds nothing), so both are created and granted.
    for role in (access.ANALYST_ROLE, access.LOADER_ROLE):
        expected += sql("access/role_exists.sql") + [f"CREATE ROLE {role}"]
    expected += warehouse.split(warehouse.render(
        "access/grant_analyst.sql", dialect="redshift", schema="public", role=access.ANALYST_ROLE,
        readable=access.ANALYST_TABLES, private=access.PRIVATE_TABLES))
    expected += warehouse.split(warehouse.render(
        "access/grant_loader.sql", dialect="redshift", schema="public", role=access.LOADER_ROLE, tables=ALL_TABLES))
    assert "GRANT SELECT ON public.songplays TO ROLE sparkify_analyst" in expected
    assert "REVOKE ALL ON public.staging_events FROM ROLE sparkify_analyst" in expected
    assert recorder.statements == expected and recorder.committed
    assert "DISTKEY" in " ".join(expected)
    assert password not in text
    assert password not in stored_values("sparkify_setup")

    # -- teardown, pause: the cluster is paused, everything else stays -----------------------------
    run, ran = run_dag("sparkify_teardown", aws, warehouse_action="pause")
    assert run.state == "success", ran
    assert ran["pause_cluster"] == "success" and ran["remove_role"] == "skipped"
    assert aws.cluster()["ClusterStatus"] == "paused"
    assert iam.get_role(RoleName=names["role_name"])
    assert aws.secret(names["master_password_secret"])["password"] == password

    # -- teardown, delete: everything goes, a final snapshot stays; twice is fine ---------------------
    run, ran = run_dag("sparkify_teardown", aws)
    assert run.state == "success", ran
    assert aws.cluster() is None, ran
    snapshots = aws.client("redshift").describe_cluster_snapshots(ClusterIdentifier=names["cluster_identifier"])[
        "Snapshots"]
    assert [s["SnapshotIdentifier"].startswith(f"{names['cluster_identifier']}-final-") for s in snapshots] == [True]
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=names["role_name"])
    for name in (names["master_password_secret"], f"{prefix}/redshift", f"{prefix}/aws"):
        assert sm.describe_secret(SecretId=name).get("DeletedDate")  # scheduled, recoverable for 7 days
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}

    run, ran = run_dag("sparkify_teardown", aws)
    assert run.state == "success", ran
    assert ran["delete_cluster"] == "skipped" and ran["remove_role"] == "success"
