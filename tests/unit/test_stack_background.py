"""The local stack's Airflow commands that run beside others (``sparkify_local.stack``): `airflow db
migrate` beside the warehouse's migration, `airflow dags reserialize` beside the api-server's start.
A failure names the command and its log; nothing is left running when the stack stops or a step
fails. (The whole start, in order, is exercised by every runner test in tests/local.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from sparkify_local.config import Config, RunnerError
from sparkify_local.stack import Background, Stack

UNTIL_STOPPED = "import signal; signal.pause()"  # a command's stand-in that ends only when signalled


def background(tmp_path: Path, code: str, *args: str) -> Background:
    log = tmp_path / "command.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return Background(args, process, log)


def stopped(process: subprocess.Popen) -> None:
    """The process has ended (reaped here or by stop_groups); one that waits for a signal never would."""
    process.wait(timeout=30)


def stack(tmp_path: Path) -> Stack:
    config = Config.load(ROOT, {"START": "2018-11-01T00:00", "END": "2018-11-01T04:00",
                                "STATE_DIR": str(tmp_path / "state")})
    found = Stack(config)
    found.logs.mkdir(parents=True)
    return found


def test_a_failed_command_is_named_with_its_log_and_output(tmp_path):
    failing = background(tmp_path, "print('no such table: dag_version'); raise SystemExit(3)", "dags", "reserialize")
    with pytest.raises(RunnerError) as failure:
        failing.wait()
    message = str(failure.value)
    assert message.startswith(f"`airflow dags reserialize` failed (its log: {tmp_path / 'command.log'}):")
    assert "no such table: dag_version" in message


def test_a_command_that_succeeds_is_waited_for(tmp_path):
    done = background(tmp_path, "print('migrated')", "db", "migrate")
    done.wait()
    assert done.process.returncode == 0 and done.log.read_text() == "migrated\n"


def test_stop_stops_the_commands_still_running(tmp_path, monkeypatch):
    """A Ctrl-C while the runner waits for the metadata migration, or before it waited for the DAGs'
    parsing: the runner stops the stack, and the commands (in sessions of their own) with it."""
    found = stack(tmp_path)
    monkeypatch.setattr(found, "airflow_env", lambda scheduled_runs=True: dict(os.environ))
    monkeypatch.setattr(sys, "executable", str(write_fake_airflow(tmp_path)))
    migration = found._background("db", "migrate")
    found._reserialize = found._background("dags", "reserialize")
    assert found.running_commands() == [migration.process.pid, found._reserialize.process.pid]
    found.stop()
    stopped(migration.process)
    stopped(found._reserialize.process)
    assert found.running_commands() == []


def write_fake_airflow(tmp_path: Path) -> Path:
    """An executable that, run as ``<it> -m airflow …``, waits for a signal: a command that runs until stopped."""
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} -c {UNTIL_STOPPED!r}\n")
    fake.chmod(0o755)
    return fake


def test_a_failed_warehouse_step_stops_the_metadata_migration(tmp_path, monkeypatch):
    found = stack(tmp_path)
    started: list[Background] = []

    def slow_migration(*args: str) -> Background:
        started.append(background(tmp_path, UNTIL_STOPPED, *args))
        return started[-1]

    def failing_step() -> None:
        raise RunnerError("python -m sparkify.tables migrate failed")

    monkeypatch.setattr(found, "_background", slow_migration)
    monkeypatch.setattr(found, "prepare_warehouse", failing_step)
    with pytest.raises(RunnerError, match="sparkify.tables migrate failed"):
        found.prepare_airflow()
    (migration,) = started
    assert migration.args == ("db", "migrate")
    stopped(migration.process)
    assert found._reserialize is None  # nothing more was started
