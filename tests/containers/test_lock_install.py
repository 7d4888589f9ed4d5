"""The image's Python dependencies, installed from requirements.lock into a clean virtual
environment on the image's Python version: the same pins the image build installs.

`uv pip sync` installs exactly the lock (from uv's cache, so it is quick after the first time);
then `uv pip check`, Airflow's version, and every DAG of dags/ parsed by Airflow's DagBag with
plugins/ on the path as the image has it, plus the modules the containers run
(`python -m sparkify_local.demo_data`, `sparkify_local.seed`, `sparkify.tables`) and the drivers
and auth manager the Compose file configures. Nothing from the project's dev or local extras is
there, so anything the containers import that only those extras bring fails here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from containers.helpers import LOCK, ROOT, pins
from containers.test_dockerfile import base_image

CHECK = r"""
import importlib, json, sys
import airflow
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
modules = [
    "sparkify_local.demo_data", "sparkify_local.seed", "sparkify_local.config", "sparkify_local.runner",
    "sparkify.tables",
    "psycopg2", "redshift_connector", "boto3",
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager",
    "airflow.providers.amazon.aws.hooks.s3", "airflow.providers.postgres.hooks.postgres",
]
for name in modules:
    importlib.import_module(name)
print(json.dumps({
    "python": "%d.%d" % sys.version_info[:2],
    "airflow": airflow.__version__,
    "dags": sorted(bag.dag_ids),
    "import_errors": {k: str(v)[-2000:] for k, v in bag.import_errors.items()},
}))
"""


def uv() -> str:
    found = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if not found:
        pytest.skip("uv is not installed (make install puts it in .venv): the lock was not installed")
    return found


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([*map(str, args)], capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, args))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def install_exactly(lock: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A new virtual environment holding exactly ``lock`` (`uv pip sync`, `uv pip check` clean, and its
    `uv pip freeze` equal to the lock's pins); its python and the environment to run it with: the
    caller's (registry and certificate settings), without what would reach into this project's own
    environment or Airflow's configuration."""
    venv = tmp_path / "venv"
    run(uv(), "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "SPARKIFY_", "PYTHON", "VIRTUAL_ENV", "UV_PYTHON", "CONDA"))}
    run(uv(), "pip", "sync", "--quiet", "--python", python, lock, env=env)
    run(uv(), "pip", "check", "--python", python, env=env)
    installed = run(uv(), "pip", "freeze", "--python", python, env=env).stdout
    frozen = {re.sub(r"[-_.]+", "-", n).lower(): v for n, v in re.findall(r"^([^=\s]+)==(\S+)$", installed, re.M)}
    assert frozen == pins(lock), f"the environment is not exactly {lock.name}"
    return python, env


def test_runtime_lock_installs_and_runs_the_dags_on_the_image_python(tmp_path):
    _, airflow_version, python_version = base_image()
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here != python_version:
        pytest.skip(f"this interpreter is Python {here}, the image's is {python_version}")
    python, env = install_exactly(LOCK, tmp_path)

    child_env = {
        **env,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        # the image's ENV PYTHONPATH, and the tools compose's minio-seed mounts
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "tools")]),
    }
    result = run(python, "-c", CHECK, ROOT / "dags", env=child_env, cwd=tmp_path)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["python"] == python_version
    assert report["airflow"] == airflow_version
    assert report["import_errors"] == {}
    assert "sparkify_etl" in report["dags"]


CELERY_CHECK = r"""
import json, subprocess, sys
from airflow.providers.celery.executors.celery_executor import CeleryExecutor, app
import redis
help_text = subprocess.run([sys.executable, "-m", "airflow", "celery", "worker", "--help"], capture_output=True,
                           text=True, check=True).stdout
options = [o for o in ("--celery-hostname", "--skip-serve-logs", "--concurrency") if o in help_text]
print(json.dumps({"broker": app.conf.broker_url, "redis": redis.__version__, "options": options}))
"""


def test_celery_lock_installs_and_loads_the_celery_executor_and_worker(tmp_path):
    """The Celery profile's image installs requirements-celery.lock: exactly, `uv pip check` clean, and the
    CeleryExecutor and `airflow celery worker` (with the options the local stack uses) load from it."""
    lock = ROOT / "requirements-celery.lock"
    python, env = install_exactly(lock, tmp_path)
    child_env = {**env, "AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                 "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                 "AIRFLOW__CELERY__BROKER_URL": "redis://127.0.0.1:6399/0",
                 "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}"}
    result = run(python, "-c", CELERY_CHECK, env=child_env, cwd=tmp_path)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["broker"] == "redis://127.0.0.1:6399/0"
    assert report["redis"] == pins(lock)["redis"]
    assert report["options"] == ["--celery-hostname", "--skip-serve-logs", "--concurrency"]
