"""The documented local test command, `airflow dags test sparkify_etl <date>`, as a user runs it.

On Airflow 3.3.2 it crashed once a run of a DAG with a deadline succeeded (apache/airflow#73428):
``plugins/airflow_local_settings.py`` applies :mod:`sparkify.compat` in every Airflow process, so
the command works with nothing set by the user. A real PostgreSQL warehouse and moto's S3 server.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.operators.helpers import put_sources


def test_airflow_dags_test_runs_sparkify_etl_to_success(warehouse, bucket, airflow_db):
    put_sources(bucket)
    env = {**os.environ, "SPARKIFY_S3_BUCKET": bucket.name}  # connections: AIRFLOW_CONN_REDSHIFT, _AWS
    # The interval [2018-11-04T10:00, 11:00): a manual run at 11:00 owns the hour that ended then.
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", "sparkify_etl", "2018-11-04T11:00:00+00:00"],
        env=env, capture_output=True, text=True, timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "'dict' object has no attribute 'hex'" not in output
    assert "state=success" in output or "DagRunState.SUCCESS" in output or "success" in output.lower()
    assert warehouse.scalar("SELECT COUNT(*) FROM songplays") > 0
    assert warehouse.scalar("SELECT COUNT(*) FROM quality_results WHERE NOT passed AND severity = 'error'") == 0
