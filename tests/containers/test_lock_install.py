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


def test_runtime_lock_installs_and_runs_the_dags_on_the_image_python(tmp_path):
    _, airflow_version, python_version = base_image()
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here != python_version:
        pytest.skip(f"this interpreter is Python {here}, the image's is {python_version}")
    venv = tmp_path / "venv"
    run(uv(), "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    # The caller's environment (registry and certificate settings), without what would reach into
    # this project's own environment or Airflow's configuration.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "SPARKIFY_", "PYTHON", "VIRTUAL_ENV", "UV_PYTHON", "CONDA"))}
    run(uv(), "pip", "sync", "--quiet", "--python", python, LOCK, env=env)
    run(uv(), "pip", "check", "--python", python, env=env)
    installed = run(uv(), "pip", "freeze", "--python", python, env=env).stdout
    frozen = {re.sub(r"[-_.]+", "-", n).lower(): v for n, v in re.findall(r"^([^=\s]+)==(\S+)$", installed, re.M)}
    assert frozen == pins(LOCK), "the environment is not exactly the lock"

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
