"""The late-run alert through Airflow's real scheduler, triggerer and deadline machinery.

``dag.test()`` creates a run's deadline but never checks it: missed deadlines are found by the
scheduler and their callbacks run in the triggerer. So this test starts the real components
(scheduler, dag-processor, triggerer and api-server, LocalExecutor) on a PostgreSQL metadata
database on the test server, with a tiny DAG in a temporary dags folder: hourly like
sparkify_etl, its only task sleeps, and its deadline is ``late_run_deadline(10 s)`` - the same
DeadlineAlert factory and callback as sparkify_etl, with a short allowance. The Slack-compatible
receiver on loopback must get the late-run message.

The run and its deadline are then read through the api-server (the test's own api-server, still up
while the other components are stopped), never from the metadata database: the run from
``GET /api/v2/dags/{dag_id}/dagRuns``; the deadline (its time and ``missed`` flag) from
``GET /ui/dags/{dag_id}/dagRuns/~/deadlines``, the api-server's endpoint behind the UI's deadline
views. Airflow 3.3's public API (/api/v2) has no deadline endpoint, so this read uses the UI's
(``include_in_schema=False``, same token), the one place the test leaves /api/v2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from sparkify_local.airflow_api import AirflowApi, generated_password
from sparkify_local.ports import free_port
from sparkify_local.processes import stop_groups

from .receivers import slack_connection, start_webhook, wait_for

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "sparkify_late_probe"
ALLOWANCE_S = 10

PROBE_DAG = f'''
"""Test-only: a run that stays running, with a {ALLOWANCE_S} s late-run deadline."""
import time
from datetime import datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable, task

from sparkify.alerts import late_run_deadline

with DAG(
    dag_id="{DAG_ID}",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    deadline=late_run_deadline(timedelta(seconds={ALLOWANCE_S})),
):
    @task
    def slow():
        time.sleep(300)

    slow()
'''


def api_ready(port: int) -> bool:
    import urllib.request

    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2).close()
        return True
    except OSError:
        return False


def stop(processes: list[subprocess.Popen]) -> None:
    """Stop the Airflow components this test started, with every descendant: the task process
    runs in a process group of its own (Airflow's supervisor puts it there), so stopping the
    components' groups alone would leave its 300 s sleep running after the test."""
    running = [p.pid for p in processes if p.poll() is None]
    if running:
        stop_groups(running, timeout=15)
    for p in processes:
        p.poll()


def left_running(sessions: set[int]) -> list[str]:
    """The processes still alive in these sessions (each component was started in a session of its
    own; its descendants stay in it, whatever process group they move to)."""
    import psutil

    left = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getsid(proc.pid) in sessions:
                left.append(" ".join(proc.info["cmdline"] or []))
        except (ProcessLookupError, PermissionError):
            pass
    return left


@pytest.mark.scheduler
def test_a_slow_run_raises_the_late_run_alert(pg_server, tmp_path):
    import psycopg

    started = time.monotonic()
    name = "af_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    metadata_url = pg_server.url(name)

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "late_probe.py").write_text(textwrap.dedent(PROBE_DAG))
    home, logs = tmp_path / "airflow", tmp_path / "logs"
    home.mkdir()
    logs.mkdir()
    tmp_path.chmod(0o755)

    receiver, webhook = start_webhook()
    api_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "SPARKIFY_ALERT_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url.replace("postgresql://", "postgresql+psycopg://", 1),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW_CONN_SLACK_ALERTS": slack_connection(receiver.url),
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "plugins"), env.get("PYTHONPATH", "")) if p),
        }
    )

    def airflow(*args: str) -> subprocess.Popen:
        out = open(logs / f"{args[0]}.log", "ab")  # noqa: SIM115 - owned by the child
        return subprocess.Popen(
            [sys.executable, "-m", "airflow", *args], env=env, cwd=tmp_path,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )

    processes: list[subprocess.Popen] = []
    try:
        migrate = airflow("db", "migrate")
        assert migrate.wait(timeout=120) == 0, (logs / "db.log").read_text()[-3000:]
        migrated = time.monotonic()
        # The api-server first (tasks report to it); the scheduler, which creates the run, last.
        for args in (
            ("api-server", "--host", "127.0.0.1", "--port", str(api_port)),
            ("dag-processor",),
            ("triggerer", "--skip-serve-logs"),
        ):
            processes.append(airflow(*args))
        assert wait_for(lambda: api_ready(api_port) or any(p.poll() is not None for p in processes), timeout=120)
        assert all(p.poll() is None for p in processes), f"an Airflow component exited; see {logs}"
        api_up = time.monotonic()
        processes.append(airflow("scheduler", "--skip-serve-logs"))

        def arrived():
            for p in processes:
                assert p.poll() is None, f"airflow {p.args[3]} exited; see {logs}"
            return receiver.messages

        assert wait_for(arrived, timeout=150, poll=0.5), "no late-run alert; logs:\n" + "\n".join(
            f"--- {f.name}\n{f.read_text()[-1500:]}" for f in sorted(logs.iterdir())
        )
        alerted = time.monotonic()
        # Everything but the api-server (processes[0]) stops; the reads below go through it.
        stop(processes[1:])
        api = AirflowApi(f"http://127.0.0.1:{api_port}", "admin", lambda: generated_password(home))
        run = api.dag_runs(DAG_ID)[0]
        run_id, start, end = run.dag_run_id, run.data_interval_start, run.data_interval_end
        (deadline,) = api.request("GET", f"/ui/dags/{DAG_ID}/dagRuns/~/deadlines")["deadlines"]
        deadline_time, missed = datetime.fromisoformat(deadline["deadline_time"]), deadline["missed"]
    finally:
        stop(processes)
        webhook.shutdown()
        webhook.server_close()
    # The slow task (300 s) was still running: it must not outlive the test.
    assert not left_running({p.pid for p in processes})

    print(
        f"\nmigrate {migrated - started:.1f} s, api-server up {api_up - migrated:.1f} s, "
        f"alert {alerted - api_up:.1f} s after the scheduler started\n{receiver.texts[0]}"
    )
    assert len(receiver.messages) == 1
    text = receiver.texts[0]
    # The deadline is the interval's end plus the allowance (logical date = interval start).
    assert missed and deadline_time == end + timedelta(seconds=ALLOWANCE_S)
    assert text.startswith(f"SPARKIFY ALERT: {DAG_ID} run is late, interval [{start.isoformat()}, {end.isoformat()})")
    assert f"Run: {run_id}" in text
    assert "State: running (run type scheduled)" in text
    assert f"Deadline: {deadline_time.isoformat()} (not finished by then)" in text
    assert f"Run in the UI: http://127.0.0.1:{api_port}/dags/{DAG_ID}/runs/" in text
