"""Sparkify's sensors."""

from sparkify.sensors.redshift_cluster import ClusterAvailableSensor

__all__ = ["ClusterAvailableSensor"]
