"""The provider's Redshift cluster operators, made safe to rerun for ``sparkify_setup`` and ``sparkify_teardown``.

- :class:`CreateOrReuseClusterOperator`: ``RedshiftCreateClusterOperator`` that reuses an existing
  cluster and takes the admin password from Secrets Manager inside ``execute()``;
- :class:`DeleteOwnClusterOperator`: ``RedshiftDeleteClusterOperator`` that refuses a cluster
  sparkify_setup did not create.

Waiting for the cluster: :class:`sparkify.sensors.redshift_cluster.ClusterAvailableSensor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.redshift_cluster import (
    RedshiftCreateClusterOperator,
    RedshiftDeleteClusterOperator,
)

from sparkify.aws.cluster import describe_cluster
from sparkify.aws.errors import MissingResource, NotCreatedBySetup
from sparkify.aws.secrets import botocore_quiet, cluster_ref, get_master, mark_applied
from sparkify.aws.settings import as_bool
from sparkify.aws.tags import is_ours

if TYPE_CHECKING:
    from airflow.sdk import Context


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
        from airflow.providers.amazon.aws.hooks.secrets_manager import SecretsManagerHook

        # Templates render to strings: give the API the types it expects.
        self.publicly_accessible = as_bool(self.publicly_accessible)
        self.encrypted = as_bool(self.encrypted)
        self.number_of_nodes = int(self.number_of_nodes)
        self.kms_key_id = self.kms_key_id or None
        redshift = self.hook.conn
        sm = SecretsManagerHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name,
                                config=self.botocore_config).conn
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
            raise MissingResource(
                f"cluster {self.cluster_identifier} exists, was not created by sparkify_setup, and secret "
                f"{self.master_password_secret} holds no password for it: store its admin password there as "
                '{"username": "...", "password": "..."} and run the setup again'
            )
        if status == "paused":
            redshift.resume_cluster(ClusterIdentifier=self.cluster_identifier)
            self.log.info("Resuming paused cluster %s", self.cluster_identifier)
        return {"cluster_identifier": self.cluster_identifier, "created": False}


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
