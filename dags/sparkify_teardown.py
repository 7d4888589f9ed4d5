"""
### Sparkify teardown: remove what `sparkify_setup` created

Triggered by hand, with the same names as the setup (the defaults match). Safe to run again:
whatever is already gone is skipped. It deletes only resources tagged
`sparkify-created-by=sparkify_setup`, and fails, touching nothing, if the warehouse under the
configured name was not created by the setup.

- `warehouse_action=delete` (default): **delete_cluster** with a final snapshot
  `<cluster>-final-<UTC time>` (unless `final_snapshot` is off), or **delete_serverless**
  (workgroup, then namespace, with a final snapshot likewise); then **remove_role** (its inline
  policy detached and deleted, then the role), **remove_secrets** (the admin password and the
  registered connections, recoverable for `secret_recovery_days`), and
  **remove_manifest_bucket** (only if the setup created it).
- `warehouse_action=pause`: **pause_cluster**. Compute billing stops, storage billing goes on,
  and the role, secrets and connections stay so the cluster can be resumed as it was
  (`aws redshift resume-cluster --cluster-identifier sparkify`, or run `sparkify_setup`, which
  resumes a paused cluster). A Serverless workgroup bills no compute while idle: nothing to pause.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.amazon.aws.operators.redshift_cluster import RedshiftPauseClusterOperator
from airflow.sdk import DAG, Param, TriggerRule, task

from sparkify import aws_setup
from sparkify.aws_setup import Config, aws_client

log = logging.getLogger("sparkify.teardown")

default_args = {
    "owner": "sparkify",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
}

with DAG(
    dag_id="sparkify_teardown",
    description="Pause or delete the Redshift warehouse, and delete the role, secrets and bucket sparkify_setup made",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["sparkify", "aws", "teardown"],
    params={
        **aws_setup.identity_params(),
        "warehouse_action": Param(Config.warehouse_action, enum=["delete", "pause"],
                                  description="Delete everything, or only pause the provisioned cluster"),
        "final_snapshot": Param(Config.final_snapshot, type="boolean",
                                description="Keep a final snapshot of the deleted warehouse"),
        "secret_recovery_days": Param(Config.secret_recovery_days, type="integer", minimum=0, maximum=30,
                                      description="Days a deleted secret can be restored (7-30; 0: delete at once)"),
    },
) as dag:

    @task.branch(doc_md="Find the warehouse, refuse (fail) if it exists without the setup's tag, and choose what "
                        "to do: delete it, pause it, or nothing if it is already gone or paused.")
    def inspect_warehouse(params: dict[str, Any] | None = None) -> list[str]:
        config = Config.from_params(params or {})
        delete = config.warehouse_action == "delete"
        if config.warehouse_kind == "serverless":
            client = aws_client("redshift-serverless", config.admin_aws_conn_id, config.region)
            exists = aws_setup.check_serverless_ours(
                client, namespace=config.serverless_namespace, workgroup=config.serverless_workgroup
            )
            if not delete:
                log.info("Redshift Serverless bills no compute while idle: nothing to pause")
                return []
            return ["delete_serverless", "remove_role"] if exists else ["remove_role"]

        cluster = aws_setup.describe_cluster(aws_client("redshift", config.admin_aws_conn_id, config.region),
                                             config.cluster_identifier)
        if cluster is None:
            log.info("Cluster %s does not exist", config.cluster_identifier)
            return ["remove_role"] if delete else []
        if not aws_setup.is_ours(cluster.get("Tags")):
            raise aws_setup.NotCreatedBySetup(
                f"cluster {config.cluster_identifier} was not created by sparkify_setup (no "
                f"{aws_setup.CREATED_BY_KEY} tag): refusing to {config.warehouse_action} it"
            )
        status = cluster["ClusterStatus"]
        log.info("Cluster %s is %s", config.cluster_identifier, status)
        if delete:
            return ["delete_cluster", "remove_role"]
        if status in ("paused", "pausing"):
            log.info("Cluster %s is already %s", config.cluster_identifier, status)
            return []
        return ["pause_cluster"]

    inspect = inspect_warehouse()

    delete_cluster = aws_setup.DeleteOwnClusterOperator(
        task_id="delete_cluster",
        doc_md="Delete the cluster (the provider's RedshiftDeleteClusterOperator; it refuses a cluster without the "
               "setup's tag), keeping a final snapshot unless `final_snapshot` is off, and wait until it is gone.",
        cluster_identifier="{{ params.cluster_identifier }}",
        final_snapshot="{{ params.final_snapshot }}",
        aws_conn_id="{{ params.admin_aws_conn_id }}",
        region_name="{{ params.region }}",
        botocore_config=aws_setup.BOTOCORE_CONFIG,
        wait_for_completion=True,
        poll_interval=30,
        max_attempts=60,
    )

    pause_cluster = RedshiftPauseClusterOperator(
        task_id="pause_cluster",
        doc_md="Pause the cluster (compute billing stops; storage and snapshots are still billed) and wait until "
               "it is paused.",
        cluster_identifier="{{ params.cluster_identifier }}",
        aws_conn_id="{{ params.admin_aws_conn_id }}",
        region_name="{{ params.region }}",
        botocore_config=aws_setup.BOTOCORE_CONFIG,
        wait_for_completion=True,
        poll_interval=30,
    )

    @task(doc_md="Delete the Serverless workgroup, then the namespace (with a final snapshot unless "
                 "`final_snapshot` is off), refusing either without the setup's tag; wait until both are gone.")
    def delete_serverless(params: dict[str, Any] | None = None) -> list[str]:
        config = Config.from_params(params or {})
        snapshot = (f"{config.serverless_namespace}-final-{datetime.now(UTC):%Y%m%d%H%M%S}"
                    if config.final_snapshot else None)
        done = aws_setup.delete_serverless(
            aws_client("redshift-serverless", config.admin_aws_conn_id, config.region),
            namespace=config.serverless_namespace, workgroup=config.serverless_workgroup, final_snapshot=snapshot,
        )
        log.info("Redshift Serverless: %s", "; ".join(done) or "nothing to delete")
        return done

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
          doc_md="Once the warehouse is gone: detach and delete the role's policies, then the role (only if the "
                 "setup created it).")
    def remove_role(params: dict[str, Any] | None = None) -> str:
        config = Config.from_params(params or {})
        outcome = aws_setup.remove_role(aws_client("iam", config.admin_aws_conn_id, config.region), config.role_name)
        log.info("IAM role %s: %s", config.role_name, outcome)
        return outcome

    @task(doc_md="Delete the admin-password secret and the registered `redshift` and `aws` connection secrets, "
                 "if the setup created them (recoverable for `secret_recovery_days`).")
    def remove_secrets(params: dict[str, Any] | None = None) -> dict[str, str]:
        config = Config.from_params(params or {})
        sm = aws_client("secretsmanager", config.admin_aws_conn_id, config.region)
        names = [config.master_password_secret,
                 config.connection_secret(config.redshift_conn_id), config.connection_secret(config.aws_conn_id)]
        outcome = {name: aws_setup.remove_secret(sm, name, int(config.secret_recovery_days)) for name in names}
        for name, what in outcome.items():
            log.info("Secret %s: %s", name, what)
        return outcome

    @task(doc_md="Empty and delete the COPY-manifest bucket if the setup created it; a bucket you named "
                 "yourself is left as it is.")
    def remove_manifest_bucket(params: dict[str, Any] | None = None) -> str:
        config = Config.from_params(params or {})
        name = config.manifest_bucket or aws_setup.default_manifest_bucket(
            aws_setup.caller(aws_client("sts", config.admin_aws_conn_id, config.region)).account, config.source_region
        )
        outcome = aws_setup.remove_bucket(aws_client("s3", config.admin_aws_conn_id, config.source_region), name)
        log.info("Bucket s3://%s: %s", name, outcome)
        return outcome

    serverless = delete_serverless()
    role = remove_role()
    inspect >> [delete_cluster, pause_cluster, serverless, role]
    [delete_cluster, serverless] >> role
    role >> remove_secrets() >> remove_manifest_bucket()
