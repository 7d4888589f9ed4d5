"""Alerts of sparkify_etl delivered for real: a Slack-compatible webhook, SMTP and SNS (moto).

The DAG runs with ``dag.test()`` on a fresh PostgreSQL warehouse and moto's S3, over the hour
2018-11-05 10:00-11:00 UTC, with a tiny data set written here so each test controls what the
data-quality checks see.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from tests.helpers import load_dag, run_interval

from sparkify import alerts
from sparkify_local.demo_data import LOG_JSON_PATH

from .receivers import slack_connection, start_webhook

INTERVAL_START = datetime(2018, 11, 5, 10, tzinfo=UTC)
INTERVAL_END = INTERVAL_START + timedelta(hours=1)
INTERVAL = f"[{INTERVAL_START.isoformat()}, {INTERVAL_END.isoformat()})"
DQ_TASK = "Run_data_quality_checks"

SONG = {
    "artist_id": "ARALERT1187B9A0001", "artist_latitude": None, "artist_location": "Berlin",
    "artist_longitude": None, "artist_name": "Alert Artist", "duration": 200.0, "num_songs": 1,
    "song_id": "SOALERT12AB0170001", "title": "Alert Song", "year": 2001,
}


def event(minute: int, *, user: str = "7", song: str = "Alert Song", item: int = 0) -> dict:
    ts = int((INTERVAL_START + timedelta(minutes=minute)).timestamp() * 1000)
    logged_in = user != ""
    return {
        "artist": "Alert Artist", "auth": "Logged In" if logged_in else "Logged Out",
        "firstName": "Ada" if logged_in else None, "gender": "F" if logged_in else None,
        "itemInSession": item, "lastName": "Lovelace" if logged_in else None, "length": 200.0,
        "level": "free", "location": "Berlin" if logged_in else None, "method": "PUT", "page": "NextSong",
        "registration": 1540000000000.0 if logged_in else None, "sessionId": 42, "song": song, "status": 200,
        "ts": ts, "userAgent": "Mozilla/5.0" if logged_in else None, "userId": user,
    }


def put_source(bucket, events: list[dict]) -> None:
    """The S3 layout for one day: the JSONPaths file, one song, the day's event log."""
    bucket.put("log_json_path.json", LOG_JSON_PATH)
    bucket.put("song_data/A/L/E/TRALERT128F0000001.json", json.dumps(SONG, separators=(",", ":")))
    day = INTERVAL_START.strftime("%Y-%m-%d")
    lines = "\n".join(json.dumps(e, separators=(",", ":"), sort_keys=True) for e in events)
    bucket.put(f"log_data/2018/11/{day}-events.json", lines)


def run(bucket):
    dag = load_dag()
    return run_interval(dag, INTERVAL_START, s3_bucket=bucket.name)


def task_instance(dr, task_id: str):
    return next(ti for ti in dr.get_task_instances() if ti.task_id == task_id)


def assert_names_the_run(text: str, dr) -> None:
    assert "sparkify_etl" in text
    assert INTERVAL in text
    assert dr.run_id in text
    assert f"Run in the UI: {alerts.run_url('sparkify_etl', dr.run_id)}" in text
    assert "/dags/sparkify_etl/runs/manual__" in text


# -- the pipeline, end to end -------------------------------------------------------------------


@pytest.mark.slow  # a whole dag.test() run
def test_failing_check_fails_at_once_and_alerts_every_channel(
    airflow_db, warehouse, bucket, slack_webhook, smtp_server, sns_topic
):
    # A NextSong event of a logged-out user: its songplay has no user_id, an 'error' check.
    put_source(bucket, [event(5), event(20, user="", item=1)])

    dr = run(bucket)

    assert dr.state == "failed"
    dq = task_instance(dr, DQ_TASK)
    assert (dq.state, dq.try_number) == ("failed", 1), "a failing check must not be retried"
    assert all(ti.state == "success" for ti in dr.get_task_instances() if ti.task_id not in (DQ_TASK, "End_execution"))

    # Slack: exactly one alert, for the data-quality task, naming the failing check.
    assert len(slack_webhook.messages) == 1, slack_webhook.texts
    text = slack_webhook.texts[0]
    print(text)  # shown with -s; docs/alerts.md quotes it
    assert text.startswith("SPARKIFY ALERT: sparkify_etl task Run_data_quality_checks failed")
    assert_names_the_run(text, dr)
    assert "Failed task: Run_data_quality_checks (try 1)" in text
    assert "data-quality check(s) failed:" in text
    assert "[error] on songplays.user_id: actual 1, expected = 0" in text
    # what the check checks, in words, and the offending row: its key and the NULL user_id
    assert "        checks: no user_id is NULL (rows of the run's interval by start_time)" in text
    assert re.search(r"\n {8}offending rows \(up to 5\):\n {10}songplay_id='[0-9a-f]+', user_id=NULL\n", text), text

    # E-mail, through aiosmtpd, to the connection's recipients.
    assert len(smtp_server.messages) == 1
    rcpts, msg = smtp_server.messages[0]
    assert rcpts == ["data-team@sparkify.test", "oncall@sparkify.test"]
    assert msg["From"] == "airflow@sparkify.test"
    assert msg["Subject"].startswith("SPARKIFY ALERT: sparkify_etl task Run_data_quality_checks failed")
    mail = smtp_server.texts()[0]
    assert_names_the_run(mail, dr)
    assert "[error] on songplays.user_id: actual 1, expected = 0" in mail

    # SNS, through moto, delivered to the subscribed queue.
    notes = sns_topic.poll()
    assert len(notes) == 1
    assert notes[0]["Subject"].startswith("SPARKIFY ALERT: sparkify_etl task Run_data_quality_checks failed")
    assert notes[0]["Message"] == text


@pytest.mark.slow  # a whole dag.test() run
def test_warning_alerts_without_failing_the_run(airflow_db, warehouse, bucket, slack_webhook, caplog):
    # Plays that match no song: songplays_matched_song_share (a 'warn' check) fails, nothing else.
    # Only Slack is configured: e-mail (no smtp_alerts) and SNS (no topic) are skipped quietly.
    put_source(bucket, [event(5, song="No Such Song"), event(25, song="Nor This One", item=1)])

    with caplog.at_level(logging.DEBUG, logger="sparkify.alerts"):
        dr = run(bucket)

    assert dr.state == "success"
    assert task_instance(dr, DQ_TASK).state == "success"
    assert len(slack_webhook.messages) == 1, slack_webhook.texts
    text = slack_webhook.texts[0]
    print(text)
    assert text.startswith("SPARKIFY ALERT: sparkify_etl 1 data-quality warning(s) in Run_data_quality_checks")
    assert_names_the_run(text, dr)
    assert "songplays_matched_song_share [warn] on songplays: actual 0.0, expected >= 0.01" in text
    assert "Failed task" not in text

    ours = [r for r in caplog.records if r.name == "sparkify.alerts"]
    logged = [r.getMessage() for r in ours if r.levelno == logging.WARNING]
    assert len(logged) == 1 and logged[0] == text
    assert not [r for r in ours if r.levelno >= logging.ERROR]
    skipped = {r.getMessage() for r in ours if r.levelno == logging.DEBUG}
    assert "SPARKIFY ALERT: email skipped (no connection 'smtp_alerts')" in skipped
    assert "SPARKIFY ALERT: sns skipped (no topic: SPARKIFY_ALERT_SNS_TOPIC_ARN)" in skipped


# -- the notifier on its own --------------------------------------------------------------------


def failure_context(error: BaseException) -> dict:
    ti = SimpleNamespace(
        dag_id="sparkify_etl", run_id="scheduled__2018-11-05T10:00:00+00:00", task_id="Stage_events",
        try_number=4, log_url="http://localhost:8080/dags/sparkify_etl/runs/x/tasks/Stage_events?try_number=4",
    )
    return {
        "ti": ti, "exception": error,
        "data_interval_start": INTERVAL_START, "data_interval_end": INTERVAL_END,
    }


def test_no_warnings_no_alert(slack_webhook):
    pushed = {"warnings": []}
    ti = SimpleNamespace(task_id=DQ_TASK, xcom_pull=lambda task_ids, key: pushed[key])
    alerts.alert_on_warnings({"ti": ti})
    assert slack_webhook.messages == []


def test_missing_connections_are_skipped():
    outcome = alerts.send_alert(alerts.task_alert("failure", failure_context(RuntimeError("boom"))))
    assert outcome == {
        "slack": "skipped (no connection 'slack_alerts')",
        "email": "skipped (no connection 'smtp_alerts')",
        "sns": "skipped (no connection 'aws')",
    }


def test_a_failing_channel_does_not_stop_the_others(monkeypatch, smtp_server, caplog):
    receiver, server = start_webhook()
    receiver.status = 403  # Slack's answer to a revoked webhook
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack_connection(receiver.url))
    try:
        with caplog.at_level(logging.WARNING, logger="sparkify.alerts"):
            alerts.alert_on_failure(failure_context(OSError("S3 is down")))
    finally:
        server.shutdown()
        server.server_close()

    assert len(receiver.messages) == 1  # it was tried
    assert len(smtp_server.messages) == 1  # and e-mail still went out
    assert "OSError: S3 is down" in smtp_server.texts()[0]
    assert "Failed task: Stage_events (try 4)" in smtp_server.texts()[0]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "sending to slack failed" in errors[0].getMessage()


def test_slack_connection_with_host_and_token(monkeypatch):
    receiver, server = start_webhook()
    base, token = receiver.url.split("/services/", 1)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_ALERTS",
        json.dumps({"conn_type": "slackwebhook", "host": base + "/services", "password": token}),
    )
    try:
        outcome = alerts.send_alert(alerts.task_alert("failure", failure_context(RuntimeError("x"))), ["slack"])
    finally:
        server.shutdown()
        server.server_close()
    assert outcome == {"slack": "sent"}
    assert receiver.paths == ["/services/" + token]


def test_message_layout():
    alert = alerts.task_alert("failure", failure_context(RuntimeError("line one\nline two")))
    assert alert.text.splitlines() == [
        f"SPARKIFY ALERT: sparkify_etl task Stage_events failed, interval {INTERVAL}",
        "",
        "DAG: sparkify_etl",
        f"Interval: {INTERVAL}",
        "Run: scheduled__2018-11-05T10:00:00+00:00",
        "Failed task: Stage_events (try 4)",
        "Task log: http://localhost:8080/dags/sparkify_etl/runs/x/tasks/Stage_events?try_number=4",
        "Error:",
        "  RuntimeError: line one",
        "  line two",
        "Run in the UI: http://localhost:8080/dags/sparkify_etl/runs/scheduled__2018-11-05T10%3A00%3A00%2B00%3A00",
    ]


def test_base_url_comes_from_the_api_config(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.sparkify.example/")
    assert alerts.run_url("sparkify_etl", "manual__x") == "https://airflow.sparkify.example/dags/sparkify_etl/runs/manual__x"


# -- the late-run alert: the callback and the DAG's deadline --------------------------------------


def deadline_context(run_type: str = "scheduled", state: str = "running") -> dict:
    """The context Airflow's scheduler gives a deadline callback (``Deadline.handle_miss``)."""
    return {
        "dag_run": {
            "dag_id": "sparkify_etl", "dag_run_id": "scheduled__2018-11-05T10:00:00+00:00",
            "data_interval_start": "2018-11-05T10:00:00Z", "data_interval_end": "2018-11-05T11:00:00Z",
            "queued_at": "2018-11-05T11:00:02.5Z", "state": state, "run_type": run_type,
        },
        "deadline": {"id": "0199", "deadline_time": "2018-11-05T12:00:02.5Z"},
    }


def test_late_run_callback_sends(slack_webhook):
    asyncio.run(alerts.notify_late_run(context=deadline_context()))
    assert len(slack_webhook.messages) == 1
    text = slack_webhook.texts[0]
    assert text.startswith(f"SPARKIFY ALERT: sparkify_etl run is late, interval {INTERVAL}")
    assert "Run: scheduled__2018-11-05T10:00:00+00:00" in text
    assert "State: running (run type scheduled)" in text
    assert "Deadline: 2018-11-05T12:00:02.500000+00:00 (not finished by then)" in text
    assert "/dags/sparkify_etl/runs/scheduled__2018-11-05T10%3A00%3A00%2B00%3A00" in text


@pytest.mark.parametrize(
    ("run_type", "state"), [("backfill", "running"), ("manual", "running"), ("scheduled", "failed")]
)
def test_late_run_callback_is_quiet_for_backfills_and_failed_runs(slack_webhook, run_type, state):
    asyncio.run(alerts.notify_late_run(context=deadline_context(run_type, state)))
    assert slack_webhook.messages == []


def test_late_run_deadline_can_be_switched_off():
    assert alerts.late_run_deadline(timedelta(0)) is None
    assert alerts.late_run_deadline(timedelta(seconds=10)).interval == timedelta(hours=1, seconds=10)


def test_dag_deadline_is_interval_end_plus_the_allowance():
    from airflow.sdk import AsyncCallback, DeadlineReference

    dag = load_dag()
    (deadline,) = dag.deadline
    # Logical date = interval start; not QUEUED_AT, whose deadlines break clearing runs on 3.3.2.
    assert deadline.reference == DeadlineReference.DAGRUN_LOGICAL_DATE
    assert deadline.interval == timedelta(hours=1) + timedelta(minutes=alerts.LATE_AFTER_MINUTES)
    assert alerts.LATE_AFTER_MINUTES == 60
    assert isinstance(deadline.callback, AsyncCallback)
    assert deadline.callback.path == "sparkify.alerts.notify_late_run"
    for task in dag.tasks:
        assert task.on_failure_callback == [alerts.alert_on_failure] or [
            type(c) for c in task.on_failure_callback
        ] == [alerts.SparkifyAlertNotifier]
    dq = dag.get_task(DQ_TASK)
    assert [c.kind for c in dq.on_success_callback] == ["warning"]
    assert dq.retries == 0
