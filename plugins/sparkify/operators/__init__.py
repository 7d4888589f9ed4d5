"""Sparkify's operators: staging from S3, loading the star schema, and data-quality checks."""

from sparkify.operators.data_quality import DataQualityOperator
from sparkify.operators.load_dimension import LoadDimensionOperator
from sparkify.operators.load_fact import LoadFactOperator
from sparkify.operators.stage_redshift import StageToRedshiftOperator

__all__ = ["DataQualityOperator", "LoadDimensionOperator", "LoadFactOperator", "StageToRedshiftOperator",
           "CreateOrReuseClusterOperator", "DeleteOwnClusterOperator"]

# The setup's cluster operators import the provider's Redshift operators: only on first use, so
# that sparkify_etl, which imports this package at every parse, does not pay for them.
_SETUP_OPERATORS = {"CreateOrReuseClusterOperator", "DeleteOwnClusterOperator"}


def __getattr__(name: str):
    if name in _SETUP_OPERATORS:
        from sparkify.operators import redshift_cluster

        return getattr(redshift_cluster, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
