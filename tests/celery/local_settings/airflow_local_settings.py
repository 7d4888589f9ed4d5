"""The Celery tests' Airflow local settings: the project's own (plugins/airflow_local_settings.py),
and a cluster policy that shortens every task's retry delay to a few seconds, so that the
killed-worker test sees the retry without waiting the DAG's 5 minutes.

Only the tests' stack puts this folder first on PYTHONPATH (Airflow imports the first
``airflow_local_settings`` it finds); the DAG and the project's settings are unchanged.
"""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path

RETRY_DELAY = timedelta(seconds=5)

_project = Path(__file__).resolve().parents[3] / "plugins" / "airflow_local_settings.py"
_spec = importlib.util.spec_from_file_location("_sparkify_airflow_local_settings", _project)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)


def task_policy(task) -> None:
    task.retry_delay = RETRY_DELAY
