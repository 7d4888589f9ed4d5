"""The provisioned Redshift cluster: find it, bring a reused one in line, clean up a failed creation.

Creating, waiting for and deleting the cluster are the provider's operators and sensor, in
:mod:`sparkify.operators.redshift_cluster`. Every function takes a boto3 Redshift client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sparkify.aws.errors import MissingResource
from sparkify.aws.secrets import botocore_quiet, cluster_ref, get_master, mark_applied
from sparkify.aws.settings import as_bool
from sparkify.aws.tags import is_ours
from sparkify.errors import TransientError

if TYPE_CHECKING:
    from sparkify.aws.settings import SetupSettings

log = logging.getLogger(__name__)

# A cluster in one of these states will not become available by waiting.
CLUSTER_FAILED_STATES = frozenset({
    "hardware-failure", "incompatible-hsm", "incompatible-network", "incompatible-parameters",
    "incompatible-restore", "storage-full", "deleting", "final-snapshot",
})
# States a cluster is left in when its creation failed: safe to delete, there is nothing in it.
CLUSTER_CREATION_FAILED_STATES = frozenset({
    "hardware-failure", "incompatible-hsm", "incompatible-network", "incompatible-parameters",
})


def describe_cluster(redshift: Any, cluster_identifier: str) -> dict[str, Any] | None:
    try:
        return redshift.describe_clusters(ClusterIdentifier=cluster_identifier)["Clusters"][0]
    except redshift.exceptions.ClusterNotFoundFault:
        return None


def cluster_endpoint(cluster: Mapping[str, Any]) -> tuple[str, int]:
    endpoint = cluster.get("Endpoint") or {}
    if not endpoint.get("Address"):
        raise TransientError(f"cluster {cluster['ClusterIdentifier']} has no endpoint yet")
    return endpoint["Address"], int(endpoint["Port"])


def configure_cluster(redshift: Any, sm: Any, setup: SetupSettings, role_arn: str) -> dict[str, Any]:
    """Bring an available cluster in line: the role attached; and, on a cluster the setup created, public
    access as the param says and the admin password as stored. Report what changed."""
    cluster = describe_cluster(redshift, setup.cluster_identifier)
    if cluster is None:
        raise MissingResource(f"cluster {setup.cluster_identifier} does not exist")
    ours = is_ours(cluster.get("Tags"))
    changes = []
    attached = {r["IamRoleArn"] for r in cluster.get("IamRoles", [])}
    if role_arn not in attached:
        redshift.modify_cluster_iam_roles(ClusterIdentifier=setup.cluster_identifier, AddIamRoles=[role_arn])
        changes.append("role attached")
    public = as_bool(setup.publicly_accessible)
    if bool(cluster.get("PubliclyAccessible")) != public:
        if ours:
            redshift.modify_cluster(ClusterIdentifier=setup.cluster_identifier, PubliclyAccessible=public)
            changes.append(f"publicly accessible turned {'on' if public else 'off'}")
        else:
            log.warning("Cluster %s is %spublicly accessible; sparkify_setup did not create it, so it is left so",
                        setup.cluster_identifier, "" if cluster.get("PubliclyAccessible") else "not ")
    master, _ = get_master(sm, setup.master_password_secret, setup.master_username, create=False)
    ref = cluster_ref(setup.cluster_identifier)
    if master is not None and master.applied_to != ref:
        if ours:
            # The secret is newer than the cluster (generated for it, or replaced by hand): make it true.
            with botocore_quiet():
                redshift.modify_cluster(ClusterIdentifier=setup.cluster_identifier,
                                        MasterUserPassword=master.password)
            mark_applied(sm, setup.master_password_secret, master, ref)
            changes.append("admin password reset to the stored one")
        else:
            log.info("Using the password stored in %s for cluster %s, which sparkify_setup did not create",
                     setup.master_password_secret, setup.cluster_identifier)
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
