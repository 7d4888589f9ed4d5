"""Configuration that reaches every process of the local run.

.env (or ENV_FILE) and the environment reach Airflow's processes: the pipeline's SPARKIFY_*
settings, the user's AIRFLOW__* settings (but those the stack owns), AIRFLOW_CONN_* and
AIRFLOW_VAR_*; a connections file (connections.yaml) is Airflow's local-filesystem secrets backend,
searched before the AIRFLOW_CONN_* variables, so it overrides the stack's defaults. The first tests
read the environment the runner gives Airflow; the last runs `make run` as a user does and reads
what a task saw.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ROOT, create_database
from sparkify_local.config import LOCAL_FILESYSTEM_BACKEND, Config, RunnerError, read_dotenv
from sparkify_local.stack import Stack

from .test_runner import assert_nothing_left, new_state_dir, run_runner, runner_env


def stack_for(environ: dict[str, str]) -> Stack:
    """A Stack whose servers are pretended, to read the environment it gives Airflow."""
    stack = Stack(Config.load(ROOT, environ))
    stack.metadata_url = "postgresql://airflow@127.0.0.1:1/airflow"
    stack.warehouse_url = "postgresql://postgres@127.0.0.1:1/sparkify"
    stack.api_port = 8080
    stack.moto = type("Moto", (), {"endpoint": "http://127.0.0.1:2"})()
    return stack


def test_dotenv_and_environment_reach_airflow(tmp_path):
    env_file = tmp_path / "settings.env"
    env_file.write_text(
        "SPARKIFY_PERSONAL_DATA=hash\n"
        "export SPARKIFY_RETENTION_DAYS=7\n"
        'AIRFLOW__CORE__DEFAULT_TASK_RETRIES="2"\n'
        "AIRFLOW_CONN_SLACK_ALERTS='{\"conn_type\": \"slackwebhook\", \"password\": \"https://hooks.example/x\"}'\n"
        "AIRFLOW_VAR_OWNER=data-team\n"
        "AIRFLOW__CORE__DAGS_FOLDER=/somewhere/else\n"
        "SPARKIFY_LATE_DATA_DAYS=3\n"
    )
    stack = stack_for({"ENV_FILE": str(env_file), "SPARKIFY_LATE_DATA_DAYS": "2"})
    env = stack.airflow_env()
    assert env["SPARKIFY_PERSONAL_DATA"] == "hash"
    assert env["SPARKIFY_RETENTION_DAYS"] == "7"
    assert env["SPARKIFY_LATE_DATA_DAYS"] == "2"  # the environment wins over the file
    assert env["AIRFLOW__CORE__DEFAULT_TASK_RETRIES"] == "2"
    assert json.loads(env["AIRFLOW_CONN_SLACK_ALERTS"])["conn_type"] == "slackwebhook"
    assert env["AIRFLOW_VAR_OWNER"] == "data-team"
    # What the stack owns stays the stack's, and the user is told.
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(ROOT / "dags")
    assert stack.ignored_settings() == ["AIRFLOW__CORE__DAGS_FOLDER"]
    # The stack's connections are defaults: a user's AIRFLOW_CONN_REDSHIFT replaces its own.
    assert env["AIRFLOW_CONN_REDSHIFT"] == stack.warehouse_url
    mine = stack_for({"ENV_FILE": str(env_file), "AIRFLOW_CONN_REDSHIFT": "postgresql://me@db:5432/dwh"})
    assert mine.airflow_env()["AIRFLOW_CONN_REDSHIFT"] == "postgresql://me@db:5432/dwh"
    assert mine.redshift_elsewhere() == "AIRFLOW_CONN_REDSHIFT"


def test_a_connections_file_is_the_secrets_backend_unless_one_is_configured(tmp_path):
    connections = tmp_path / "connections.yaml"
    connections.write_text("slack_alerts:\n  conn_type: slackwebhook\n  password: https://hooks.example/x\n")
    stack = stack_for({"CONNECTIONS_FILE": str(connections)})
    env = stack.airflow_env()
    assert env["AIRFLOW__SECRETS__BACKEND"] == LOCAL_FILESYSTEM_BACKEND
    assert json.loads(env["AIRFLOW__SECRETS__BACKEND_KWARGS"]) == {"connections_file_path": str(connections)}
    assert stack.redshift_elsewhere() is None  # no `redshift` in the file: the stack's default stays

    # On AWS the user's backend (Secrets Manager) takes the one slot instead.
    aws = stack_for({"CONNECTIONS_FILE": str(connections), "AIRFLOW__SECRETS__BACKEND":
                     "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"})
    assert aws.airflow_env()["AIRFLOW__SECRETS__BACKEND"].endswith("SecretsManagerBackend")

    with pytest.raises(RunnerError, match="CONNECTIONS_FILE=/nope.yaml: no such file"):
        Config.load(ROOT, {"CONNECTIONS_FILE": "/nope.yaml"})


def test_a_bad_dotenv_line_is_named(tmp_path):
    path = tmp_path / ".env"
    path.write_text("START=2018-11-05\nthis is not a setting\n")
    with pytest.raises(RunnerError, match=rf"{path}, line 2: expected KEY=VALUE, not 'this is not a setting'"):
        read_dotenv(path)


@pytest.mark.scheduler
def test_make_run_tasks_see_the_env_file_and_the_connections_file(pg_server, tmp_path):
    """`make run` with SPARKIFY_PERSONAL_DATA=hash in an env file and a connections file whose
    `redshift` is another database: the tasks load that database, with the users' names hashed."""
    target = create_database(pg_server)
    env_file = tmp_path / "local.env"
    env_file.write_text("SPARKIFY_PERSONAL_DATA=hash\n")
    connections = tmp_path / "connections.yaml"
    url = target.url
    connections.write_text(f"redshift: {json.dumps(url)}\n")
    state = new_state_dir("config")
    runner = run_runner("run", runner_env(state, START="2018-11-01T00:00", END="2018-11-01T01:00",
                                          ENV_FILE=str(env_file), CONNECTIONS_FILE=str(connections)), show=True)
    assert runner.process.returncode == 0, runner.tail(80)
    assert f"connections: {connections} first" in runner.output
    assert f"warehouse: the `redshift` connection of {connections}" in runner.output
    names = target.query("SELECT first_name FROM users")
    assert names and all(len(n) == 32 and set(n) <= set("0123456789abcdef") for (n,) in names), names
    assert_nothing_left(state, runner)
    assert Path(connections).read_text().startswith("redshift:")
