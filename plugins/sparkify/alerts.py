"""Alerts: a failed task, data-quality warnings and late runs, sent through Airflow's notifiers.

One notifier, :class:`SparkifyAlertNotifier`, composes the message and sends it to every channel
whose connection exists; none is required:

* Slack: connection ``slack_alerts`` (type ``slackwebhook``), the webhook URL as its password
  (or the host as base URL and the token as password).
* e-mail: connection ``smtp_alerts`` (type ``smtp``); recipients in its extra ``to`` or in
  SPARKIFY_ALERT_EMAIL_TO (comma-separated); sender from its extra ``from_email``.
* Amazon SNS: connection ``aws`` (type ``aws``) and a topic, SPARKIFY_ALERT_SNS_TOPIC_ARN or the
  connection's extra ``alert_sns_topic_arn``.

The connection ids can be changed with SPARKIFY_ALERT_SLACK_CONN_ID, SPARKIFY_ALERT_SMTP_CONN_ID
and SPARKIFY_ALERT_SNS_CONN_ID (default: SPARKIFY_AWS_CONN_ID). Sending reuses the providers'
notifiers (``SlackWebhookNotifier``, ``SmtpNotifier``, ``SnsNotifier``). A channel whose
connection is missing is skipped (debug log); a channel that fails is logged and neither stops
the other channels nor masks the task's own failure. Every alert is also logged at WARNING with
the prefix ``SPARKIFY ALERT``, so a local run without any channel still shows it.

The message names the DAG, the run's interval ``[start, end)``, the run id, the failed task and
its exception (for ``Run_data_quality_checks`` that is the list of failing checks), the
data-quality warnings, and links to the run in the UI (``{[api] base_url}/dags/<dag>/runs/<run>``,
as Airflow builds ``ti.log_url``).

Wiring in ``sparkify_etl``:

* ``alert_on_failure`` is every task's ``on_failure_callback`` (default_args). It fires once the
  task has failed for good: after the last retry, or at once for ``AirflowFailException`` (a
  failing data-quality check).
* ``alert_on_warnings`` is ``Run_data_quality_checks``'s ``on_success_callback``: it reads the
  task's XCom ``warnings`` and alerts when the list is not empty. The operator stays reusable
  and knows nothing about alerting.
* :func:`late_run_deadline` is the DAG's ``deadline``: an Airflow 3 ``DeadlineAlert`` whose
  ``AsyncCallback`` (:func:`notify_late_run`) runs in the triggerer when a run has not finished
  in time.

Deadline design. The deadline is ``DAGRUN_LOGICAL_DATE + 1 h + SPARKIFY_LATE_AFTER_MINUTES``:
the logical date of a ``CronDataIntervalTimetable`` run is its interval start, so a run is late
when it has not finished N minutes (default 60; 0 turns it off) after its interval ended.
``DAGRUN_QUEUED_AT`` would be the natural reference, but on Airflow 3.3.2 clearing a run that
has one fails (``_recalculate_dagrun_queued_at_deadlines`` reads the JSON interval as seconds:
TypeError), which would break reruns from the UI and ``backfill --reprocess-behavior``.

Airflow creates deadlines for every run type, so every run of a backfill of 2018 (and a manual
run of an old interval) is "late" the moment it is created. The callback therefore sends the
late-run alert only for scheduled runs, and only logs it for backfill and manual runs (their
failures still alert). And Airflow prunes a run's deadline only when
the run succeeds, so a run that failed earlier still reaches its deadline (apache/airflow#60927):
a run already failed then is not reported late, as its failure alert went out.

``dag.test()`` of a DAG with a deadline crashes when the run succeeds on Airflow 3.3.2
(apache/airflow#73428); :mod:`sparkify.compat` patches that, in every Airflow process.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from airflow.sdk import AsyncCallback, BaseHook, BaseNotifier, DeadlineAlert, DeadlineReference
from airflow.sdk.exceptions import AirflowNotFoundException

from sparkify.settings import DEFAULTS, InvalidParam

if TYPE_CHECKING:
    from airflow.sdk import Connection, Context

log = logging.getLogger(__name__)

PREFIX = "SPARKIFY ALERT"
DEFAULT_BASE_URL = "http://localhost:8080"

#: Minutes after a run's interval ends when it is late;
#: 0 switches the late-run alert off. Read when the DAG is parsed.
LATE_AFTER_MINUTES = float(os.environ.get("SPARKIFY_LATE_AFTER_MINUTES", "60"))

Kind = Literal["failure", "warning", "late"]
FINISHED_STATES = {"success", "failed"}


def _setting(name: str, default: str = "") -> str:
    """Read at send time, so a changed environment applies without re-parsing the DAG."""
    return os.environ.get(name, default).strip()


# -- the message --------------------------------------------------------------------------------


@dataclass
class Alert:
    """What happened to which run; ``text`` is the message every channel sends."""

    kind: Kind
    dag_id: str
    run_id: str
    interval_start: datetime | str | None
    interval_end: datetime | str | None
    url: str
    task_id: str | None = None
    try_number: int | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    details: list[tuple[str, str]] = field(default_factory=list)

    @property
    def interval(self) -> str:
        return f"[{_iso(self.interval_start)}, {_iso(self.interval_end)})"

    @property
    def subject(self) -> str:
        if self.kind == "failure":
            what = f"task {self.task_id} failed"
        elif self.kind == "warning":
            what = f"{len(self.warnings)} data-quality warning(s) in {self.task_id}"
        else:
            what = "run is late"
        return f"{PREFIX}: {self.dag_id} {what}, interval {self.interval}"

    @property
    def text(self) -> str:
        lines = [self.subject, "", f"DAG: {self.dag_id}", f"Interval: {self.interval}", f"Run: {self.run_id}"]
        if self.task_id and self.kind == "failure":
            tries = f" (try {self.try_number})" if self.try_number else ""
            lines.append(f"Failed task: {self.task_id}{tries}")
        elif self.task_id:
            lines.append(f"Task: {self.task_id}")
        lines += [f"{name}: {value}" for name, value in self.details]
        if self.error:
            lines += ["Error:", *(f"  {line}" for line in self.error.splitlines())]
        if self.warnings:
            lines += ["Warnings:", *(f"  - {w}" for w in self.warnings)]
        lines.append(f"Run in the UI: {self.url}")
        return "\n".join(lines)


def _iso(value: datetime | str | None) -> str:
    if value is None:
        return "?"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return value.isoformat()


def base_url() -> str:
    """The UI's address, as Airflow uses it for ``ti.log_url`` (``[api] base_url``)."""
    from airflow.sdk.configuration import conf

    return (conf.get("api", "base_url", fallback=None) or DEFAULT_BASE_URL).rstrip("/")


def run_url(dag_id: str, run_id: str) -> str:
    return f"{base_url()}/dags/{dag_id}/runs/{quote(run_id)}"


def _describe_error(error: BaseException | str | None) -> str | None:
    if error is None:
        return None
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    return str(error)


def task_alert(kind: Kind, context: Context, warnings: list[str] | None = None) -> Alert:
    """The alert about the task of ``context`` (a task callback's context)."""
    ti = context["ti"]
    dag_id = ti.dag_id
    details = []
    log_url = getattr(ti, "log_url", None)
    if log_url:
        details.append(("Task log", log_url))
    return Alert(
        kind=kind,
        dag_id=dag_id,
        run_id=ti.run_id,
        interval_start=context.get("data_interval_start"),
        interval_end=context.get("data_interval_end"),
        url=run_url(dag_id, ti.run_id),
        task_id=ti.task_id,
        try_number=getattr(ti, "try_number", None),
        error=_describe_error(context.get("exception")) if kind == "failure" else None,
        warnings=list(warnings or []),
        details=details,
    )


def late_run_alert(context: dict[str, Any]) -> Alert:
    """The alert about a missed deadline; ``context`` is what the scheduler gives deadline callbacks."""
    run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    dag_id = run.get("dag_id", "?")
    run_id = run.get("dag_run_id") or run.get("run_id") or "?"
    details = [("State", f"{run.get('state', '?')} (run type {run.get('run_type', '?')})")]
    if run.get("queued_at"):
        details.append(("Queued at", _iso(run["queued_at"])))
    if deadline.get("deadline_time"):
        details.append(("Deadline", f"{_iso(deadline['deadline_time'])} (not finished by then)"))
    return Alert(
        kind="late",
        dag_id=dag_id,
        run_id=run_id,
        interval_start=run.get("data_interval_start"),
        interval_end=run.get("data_interval_end"),
        url=run_url(dag_id, run_id),
        details=details,
    )


# -- the channels -------------------------------------------------------------------------------


def _connection(conn_id: str) -> Connection | None:
    """The connection, or None when it is not defined (the channel is then off)."""
    if not conn_id:
        return None
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def _split(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        value = value.replace(";", ",").split(",")
    return [v.strip() for v in value if v and v.strip()]


def _send_slack(alert: Alert) -> str:
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    conn_id = _setting("SPARKIFY_ALERT_SLACK_CONN_ID", "slack_alerts")
    if _connection(conn_id) is None:
        return f"skipped (no connection {conn_id!r})"
    # notify() rather than __call__: the message is final text, not a Jinja template.
    SlackWebhookNotifier(slack_webhook_conn_id=conn_id, text=alert.text, unfurl_links=False).notify({})
    return "sent"


def _send_email(alert: Alert) -> str:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    conn_id = _setting("SPARKIFY_ALERT_SMTP_CONN_ID", "smtp_alerts")
    conn = _connection(conn_id)
    if conn is None:
        return f"skipped (no connection {conn_id!r})"
    extra = conn.extra_dejson
    to = _split(_setting("SPARKIFY_ALERT_EMAIL_TO")) or _split(extra.get("to"))
    if not to:
        raise InvalidParam(f"connection {conn_id!r} has no recipients: set its extra 'to' or SPARKIFY_ALERT_EMAIL_TO")
    sender = extra.get("from_email") or _setting("SPARKIFY_ALERT_EMAIL_FROM", "sparkify-alerts@localhost")
    body = f"<pre>{html.escape(alert.text)}</pre>"
    SmtpNotifier(to=to, from_email=sender, subject=alert.subject, html_content=body, smtp_conn_id=conn_id).notify({})
    return f"sent to {', '.join(to)}"


def _send_sns(alert: Alert) -> str:
    from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

    conn_id = _setting("SPARKIFY_ALERT_SNS_CONN_ID", DEFAULTS.aws_conn_id)
    conn = _connection(conn_id)
    if conn is None:
        return f"skipped (no connection {conn_id!r})"
    topic = _setting("SPARKIFY_ALERT_SNS_TOPIC_ARN") or conn.extra_dejson.get("alert_sns_topic_arn")
    if not topic:
        return "skipped (no topic: SPARKIFY_ALERT_SNS_TOPIC_ARN)"
    # SNS subjects: ASCII, one line, at most 100 characters.
    subject = alert.subject.encode("ascii", "replace").decode()[:100]
    SnsNotifier(aws_conn_id=conn_id, target_arn=topic, message=alert.text, subject=subject).notify({})
    return f"sent to {topic}"


CHANNELS: dict[str, Callable[[Alert], str]] = {"slack": _send_slack, "email": _send_email, "sns": _send_sns}


def send_alert(alert: Alert, channels: Iterable[str] | None = None) -> dict[str, str]:
    """Log ``alert`` at WARNING and send it to every configured channel; never raises.

    Returns what happened per channel: ``sent…``, ``skipped (…)`` or ``error: …``.
    """
    log.warning("%s", alert.text)
    outcome: dict[str, str] = {}
    for name in channels or CHANNELS:
        try:
            outcome[name] = CHANNELS[name](alert)
        except Exception as err:
            log.exception("%s: sending to %s failed", PREFIX, name)
            outcome[name] = f"error: {type(err).__name__}: {err}"
        else:
            level = logging.INFO if outcome[name].startswith("sent") else logging.DEBUG
            log.log(level, "%s: %s %s", PREFIX, name, outcome[name])
    return outcome


# -- the notifier and the callbacks -------------------------------------------------------------


class SparkifyAlertNotifier(BaseNotifier):
    """Compose the alert of ``kind`` from the callback's context and send it to every channel.

    :param kind: ``failure`` (a task's ``on_failure_callback``), ``warning`` (the data-quality
        task's ``on_success_callback``: alerts when its XCom ``warnings`` is not empty) or
        ``late`` (a deadline callback).
    :param warnings_key: the XCom key holding the list of warnings.
    """

    def __init__(self, kind: Kind = "failure", *, warnings_key: str = "warnings", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if kind not in ("failure", "warning", "late"):
            raise InvalidParam(f"kind={kind!r}: expected 'failure', 'warning' or 'late'")
        self.kind = kind
        self.warnings_key = warnings_key

    def compose(self, context: Context | dict[str, Any]) -> Alert | None:
        """The alert to send, or None when there is nothing to report."""
        if self.kind == "late":
            run = context.get("dag_run") or {}
            if run.get("run_type") not in (None, "scheduled"):
                text = late_run_alert(context).text
                log.warning("%s\n(not sent: late-run alerts are sent for scheduled runs only)", text)
                return None
            if run.get("state") in FINISHED_STATES:
                log.info("%s: run %s is %s; no late-run alert", PREFIX, run.get("dag_run_id"), run.get("state"))
                return None
            return late_run_alert(context)
        if self.kind == "warning":
            ti = context["ti"]
            warnings = ti.xcom_pull(task_ids=ti.task_id, key=self.warnings_key) or []
            if not warnings:
                log.debug("%s: no data-quality warnings", PREFIX)
                return None
            return task_alert("warning", context, warnings=list(warnings))
        return task_alert("failure", context)

    def notify(self, context: Context) -> None:
        alert = self.compose(context)
        if alert is not None:
            send_alert(alert)

    async def async_notify(self, context: Context) -> None:
        alert = self.compose(context)
        if alert is not None:
            # The providers' sync clients, in a thread: the triggerer's event loop is shared.
            await asyncio.to_thread(send_alert, alert)


#: Every task's on_failure_callback.
alert_on_failure = SparkifyAlertNotifier("failure")
#: Run_data_quality_checks' on_success_callback.
alert_on_warnings = SparkifyAlertNotifier("warning")


async def notify_late_run(context: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Deadline callback (run by the triggerer): alert that a run has not finished in time."""
    await SparkifyAlertNotifier("late").async_notify(context or {})


def late_run_deadline(
    after: timedelta | None = None, interval: timedelta = timedelta(hours=1)
) -> DeadlineAlert | None:
    """The DAG's late-run alert: not finished ``after`` once its ``interval`` ended (None: none).

    ``after`` defaults to SPARKIFY_LATE_AFTER_MINUTES; 0 or less switches the alert off.
    """
    if after is None:
        after = timedelta(minutes=LATE_AFTER_MINUTES)
    if after <= timedelta(0):
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=interval + after,
        callback=AsyncCallback(notify_late_run),
        name="sparkify-late-run",
    )
