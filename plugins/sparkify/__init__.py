"""Sparkify pipelines: operators and shared code for loading S3 JSON into a Redshift star schema.

The same code runs against Amazon Redshift and against PostgreSQL, the local stand-in; the
warehouse dialect is picked in one place, :mod:`sparkify.warehouse`.
"""
