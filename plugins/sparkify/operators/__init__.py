"""Sparkify's operators: staging from S3, loading the star schema, and data-quality checks."""

from sparkify.operators.data_quality import DataQualityOperator
from sparkify.operators.load_dimension import LoadDimensionOperator
from sparkify.operators.load_fact import LoadFactOperator
from sparkify.operators.stage_redshift import StageToRedshiftOperator

__all__ = ["DataQualityOperator", "LoadDimensionOperator", "LoadFactOperator", "StageToRedshiftOperator"]
