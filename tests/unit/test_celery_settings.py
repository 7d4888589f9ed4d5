"""EXECUTOR and WORKERS of the local run, without servers: what they are checked against, and what
Airflow's processes and each Celery worker are given (tests/celery/ runs them for real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkify_local import workers
from sparkify_local.broker import RedisServer
from sparkify_local.config import Config, RunnerError
from sparkify_local.stack import Stack

ROOT = Path(__file__).resolve().parents[2]


def stack_for(environ: dict[str, str], tmp_path: Path) -> Stack:
    """A Stack whose servers are pretended, to read the environment it gives Airflow."""
    stack = Stack(Config.load(ROOT, {"STATE_DIR": str(tmp_path), **environ}))
    stack.metadata_url = "postgresql://airflow@127.0.0.1:1/airflow"
    stack.warehouse_url = "postgresql://postgres@127.0.0.1:1/sparkify"
    stack.api_port = 8080
    stack.moto = type("Moto", (), {"endpoint": "http://127.0.0.1:2"})()
    if stack.config.celery:
        stack.broker = RedisServer(tmp_path / "redis", port=6390)
    return stack


def test_the_default_is_the_local_executor(tmp_path):
    stack = stack_for({}, tmp_path)
    env = stack.airflow_env()
    assert (stack.config.executor, stack.config.workers) == ("local", 2)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert "AIRFLOW__CELERY__BROKER_URL" not in env


def test_celery_executor_broker_and_result_backend(tmp_path):
    stack = stack_for({"EXECUTOR": "Celery", "WORKERS": "3", "AIRFLOW__CELERY__BROKER_URL": "redis://elsewhere/0"},
                      tmp_path)
    env = stack.airflow_env()
    assert (stack.config.executor, stack.config.workers) == ("celery", 3)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6390/0"  # the stack's, not the user's
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql+psycopg://airflow@127.0.0.1:1/airflow"
    assert "AIRFLOW__CELERY__BROKER_URL" in stack.ignored_settings()


@pytest.mark.parametrize(("name", "value"), [("EXECUTOR", "kubernetes"), ("WORKERS", "0"), ("WORKERS", "two"),
                                             ("WORKERS", "17"), ("BROKER_PORT", "70000")])
def test_bad_values_are_refused_naming_the_setting(name, value):
    with pytest.raises(RunnerError, match=name):
        Config.load(ROOT, {"EXECUTOR": "celery", name: value})


def test_each_worker_has_its_own_name_folder_tmpdir_and_hostname(tmp_path, monkeypatch):
    assert workers.names(2) == ["worker-1", "worker-2"]
    assert workers.concurrency(8, 2) == 4 and workers.concurrency(5, 2) == 3 and workers.concurrency(1, 4) == 1
    command = workers.command("worker-2", 4, tmp_path / "w.pid")
    assert command[:2] == ["celery", "worker"]
    assert command[command.index("--celery-hostname") + 1] == "worker-2@%h"
    assert "--skip-serve-logs" in command and command[command.index("--concurrency") + 1] == "4"
    env = workers.environment(tmp_path, "worker-2", ["/a", "/tools"])
    assert env["TMPDIR"] == str(tmp_path / "workers" / "worker-2" / "tmp") and Path(env["TMPDIR"]).is_dir()
    assert env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "sparkify_local.workers.hostname"
    assert env["PYTHONPATH"].split(":") == ["/a", "/tools"]
    # Airflow's hostname_callable, as a worker's task process calls it.
    monkeypatch.setenv(workers.NAME_VARIABLE, "worker-2")
    monkeypatch.setattr(workers.socket, "gethostname", lambda: "host.example")
    assert workers.hostname() == "worker-2@host.example"
    monkeypatch.delenv(workers.NAME_VARIABLE)
    assert workers.hostname() == "host.example"
