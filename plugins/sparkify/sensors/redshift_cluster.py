"""``ClusterAvailableSensor``: wait for the setup's Redshift cluster, failing at once on a dead end."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.amazon.aws.sensors.redshift_cluster import RedshiftClusterSensor

from sparkify.aws.cluster import CLUSTER_FAILED_STATES
from sparkify.aws.errors import UnusableResource, error_code, is_throttled

if TYPE_CHECKING:
    from airflow.sdk import Context


class ClusterAvailableSensor(RedshiftClusterSensor):
    """``RedshiftClusterSensor`` that fails at once on a state that will never become available.

    A poll still throttled after botocore's retries counts as "not yet" instead of failing the sensor.
    """

    def poke(self, context: Context) -> bool:
        try:
            status = self.hook.cluster_status(self.cluster_identifier)
        except Exception as err:
            if not is_throttled(err):
                raise
            self.log.warning("Polling cluster %s was throttled (%s); trying again",
                             self.cluster_identifier, error_code(err))
            return False
        self.log.info("Cluster %s is %s (waiting for %s)", self.cluster_identifier, status, self.target_status)
        if status in CLUSTER_FAILED_STATES or status == "cluster_not_found":
            raise UnusableResource(
                f"cluster {self.cluster_identifier} is {status}: it will not become {self.target_status}"
            )
        return status == self.target_status
