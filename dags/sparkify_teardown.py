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

from sparkify.aws import bucket, clients, cluster, iam, secrets, serverless
from sparkify.aws.clients import BOTOCORE_CONFIG
from sparkify.aws.errors import NotCreatedBySetup
from sparkify.aws.settings import SetupSettings, identity_params
from sparkify.aws.tags import CREATED_BY_KEY, is_ours
from sparkify.operators import DeleteOwnClusterOperator

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
        **identity_params(),
        "warehouse_action": Param(SetupSettings.warehouse_action, enum=["delete", "pause"],
                                  description="Delete everything, or only pause the provisioned cluster"),
        "final_snapshot": Param(SetupSettings.final_snapshot, type="boolean",
                                description="Keep a final snapshot of the deleted warehouse"),
        "secret_recovery_days": Param(SetupSettings.secret_recovery_days, type="integer", minimum=0, maximum=30,
                                      description="Days a deleted secret can be restored (7-30; 0: delete at once)"),
    },
) as dag:

    @task.branch(doc_md="Find the warehouse, refuse (fail) if it exists without the setup's tag, and choose what "
                        "to do: delete it, pause it, or nothing if it is already gone or paused.")
    def inspect_warehouse(params: dict[str, Any] | None = None) -> list[str]:
        config = SetupSettings.from_params(params or {})
        delete = config.warehouse_action == "delete"
        if config.warehouse_kind == "serverless":
            exists = serverless.check_serverless_ours(
                clients.serverless(config),
                namespace=config.serverless_namespace, workgroup=config.serverless_workgroup
            )
            if not delete:
                log.info("Redshift Serverless bills no compute while idle: nothing to pause")
                return []
            return ["delete_serverless", "remove_role"] if exists else ["remove_role"]

        found = cluster.describe_cluster(clients.redshift(config), config.cluster_identifier)
        if found is None:
            log.info("Cluster %s does not exist", config.cluster_identifier)
            return ["remove_role"] if delete else []
        if not is_ours(found.get("Tags")):
            raise NotCreatedBySetup(
                f"cluster {config.cluster_identifier} was not created by sparkify_setup (no "
                f"{CREATED_BY_KEY} tag): refusing to {config.warehouse_action} it"
            )
        status = found["ClusterStatus"]
        log.info("Cluster %s is %s", config.cluster_identifier, status)
        if delete:
            return ["delete_cluster", "remove_role"]
        if status in ("paused", "pausing"):
            log.info("Cluster %s is already %s", config.cluster_identifier, status)
            return []
        return ["pause_cluster"]

    inspect = inspect_warehouse()

    delete_cluster = DeleteOwnClusterOperator(
        task_id="delete_cluster",
        doc_md="Delete the cluster (the provider's RedshiftDeleteClusterOperator; it refuses a cluster without the "
               "setup's tag), keeping a final snapshot unless `final_snapshot` is off, and wait until it is gone.",
        cluster_identifier="{{ params.cluster_identifier }}",
        final_snapshot="{{ params.final_snapshot }}",
        aws_conn_id="{{ params.admin_aws_conn_id }}",
        region_name="{{ params.region }}",
        botocore_config=BOTOCORE_CONFIG,
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
        botocore_config=BOTOCORE_CONFIG,
        wait_for_completion=True,
        poll_interval=30,
    )

    @task(doc_md="Delete the Serverless workgroup, then the namespace (with a final snapshot unless "
                 "`final_snapshot` is off), refusing either without the setup's tag; wait until both are gone.")
    def delete_serverless(params: dict[str, Any] | None = None) -> list[str]:
        config = SetupSettings.from_params(params or {})
        snapshot = (f"{config.serverless_namespace}-final-{datetime.now(UTC):%Y%m%d%H%M%S}"
                    if config.final_snapshot else None)
        done = serverless.delete_serverless(
            clients.serverless(config),
            namespace=config.serverless_namespace, workgroup=config.serverless_workgroup, final_snapshot=snapshot,
        )
        log.info("Redshift Serverless: %s", "; ".join(done) or "nothing to delete")
        return done

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
          doc_md="Once the warehouse is gone: detach and delete the role's policies, then the role (only if the "
                 "setup created it).")
    def remove_role(params: dict[str, Any] | None = None) -> str:
        config = SetupSettings.from_params(params or {})
        outcome = iam.remove_role(clients.iam(config), config.role_name)
        log.info("IAM role %s: %s", config.role_name, outcome)
        return outcome

    @task(doc_md="Delete the admin-password secret and the registered `redshift` and `aws` connection secrets, "
                 "if the setup created them (recoverable for `secret_recovery_days`).")
    def remove_secrets(params: dict[str, Any] | None = None) -> dict[str, str]:
        config = SetupSettings.from_params(params or {})
        sm = clients.secrets(config)
        names = [config.master_password_secret,
                 config.connection_secret(config.redshift_conn_id), config.connection_secret(config.aws_conn_id)]
        outcome = {name: secrets.remove_secret(sm, name, int(config.secret_recovery_days)) for name in names}
        for name, what in outcome.items():
            log.info("Secret %s: %s", name, what)
        return outcome

    @task(doc_md="Empty and delete the COPY-manifest bucket if the setup created it; a bucket you named "
                 "yourself is left as it is.")
    def remove_manifest_bucket(params: dict[str, Any] | None = None) -> str:
        config = SetupSettings.from_params(params or {})
        name = config.manifest_bucket or bucket.default_manifest_bucket(
            iam.caller(clients.sts(config)).account, config.source_region
        )
        outcome = bucket.remove_bucket(clients.s3(config), name)
        log.info("Bucket s3://%s: %s", name, outcome)
        return outcome

    serverless_deleted = delete_serverless()
    role = remove_role()
    inspect >> [delete_cluster, pause_cluster, serverless_deleted, role]
    [delete_cluster, serverless_deleted] >> role
    role >> remove_secrets() >> remove_manifest_bucket()
