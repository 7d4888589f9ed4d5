"""Airflow's local settings for the Sparkify deployment: preload the libraries the tasks use.

Airflow imports ``airflow_local_settings`` from the plugins folder in each of its processes when
it starts. The scheduler then forks its LocalExecutor workers, and each worker forks a process per
task, which inherits every module already imported. Importing the tasks' heavy libraries here,
once, spares each task process importing them: psycopg (through the postgres provider's hook,
which every sparkify_etl task uses), boto3 (through the amazon provider's S3Hook, the staging
tasks) and common-sql, together about 1.1 CPU-s per task process on a 2-core machine, which was
most of what an hourly run cost above Airflow's own floor (docs/performance.md, "What costs what").

Airflow imports this file once per process, by name. It is not a plugin, and plugins/.airflowignore
keeps the plugin loader (which runs in every task process) from executing it a second time there.

It also lets ``airflow dags test`` (and ``dag.test()``) finish a successful run of a DAG with a
deadline on Airflow 3.3.2 (apache/airflow#73428; :mod:`sparkify.compat`).

Only in the processes that fork task processes: the scheduler (LocalExecutor) and Celery workers.
Every other Airflow process (api-server, dag-processor, triggerer, CLI commands such as ``db
migrate``, and the project's commands that use Airflow's connections) would pay about 1.4 CPU-s at
its start for libraries it never uses (docs/performance.md, "Starting the stack").

Only third-party libraries (and that fix, and the S3 models below): the project's own modules
(``sparkify``) are imported fresh by each task, so an edit to them takes effect without
restarting the scheduler. A library that fails to
import is skipped here; the task that needs it reports the error.
"""

from __future__ import annotations

import importlib
import sys

PRELOAD = (
    "airflow.providers.postgres.hooks.postgres",
    "airflow.providers.amazon.aws.hooks.s3",
    "airflow.providers.common.sql.operators.sql",
    "yaml",
    "jinja2.ext",  # every task's template environment loads Airflow's Jinja extensions from it
)

# `airflow scheduler` forks the LocalExecutor's task processes, `airflow celery worker` its own.
FORKS_TASKS = bool({"scheduler", "worker"} & set(sys.argv[1:3]))

if FORKS_TASKS:
    for _module in PRELOAD:
        try:
            importlib.import_module(_module)
        except ImportError:  # pragma: no cover - reported by the task that needs it
            pass
    # Also parse the S3 client's botocore models once (sparkify.botodata), about 0.08 CPU-s that
    # each staging task would otherwise spend.
    try:
        from sparkify.botodata import warm

        warm()
    except ImportError:  # pragma: no cover - reported by the task that needs it
        pass


try:  # airflow dags test of a DAG with a deadline (apache/airflow#73428): see sparkify.compat
    from sparkify.compat import patch_dag_test_deadlines

    patch_dag_test_deadlines()
except ImportError:  # pragma: no cover - an Airflow without deadline alerts needs no fix
    pass
