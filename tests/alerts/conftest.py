"""Real receivers for the alert channels, all on 127.0.0.1 with free ports.

* ``slack_webhook``: a Slack-compatible incoming-webhook receiver (http.server in a thread),
  configured as the connection ``slack_alerts``.
* ``smtp_server``: aiosmtpd, configured as the connection ``smtp_alerts``.
* ``sns_topic``: a topic on moto's server with an SQS queue subscribed to it; the connection
  ``aws`` points at moto and SPARKIFY_ALERT_SNS_TOPIC_ARN at the topic.
"""

from __future__ import annotations

import email
import email.policy
import json
import uuid
from collections.abc import Iterator

import pytest

from .receivers import Mailbox, SnsTopic, WebhookReceiver, aws_client, slack_connection, start_webhook

ALERT_ENV = (
    "AIRFLOW_CONN_AWS",
    "AIRFLOW_CONN_SLACK_ALERTS",
    "AIRFLOW_CONN_SMTP_ALERTS",
    "SPARKIFY_ALERT_SNS_TOPIC_ARN",
    "SPARKIFY_ALERT_EMAIL_TO",
    "SPARKIFY_ALERT_SLACK_CONN_ID",
    "SPARKIFY_ALERT_SMTP_CONN_ID",
    "SPARKIFY_ALERT_SNS_CONN_ID",
)


@pytest.fixture(autouse=True)
def no_alert_channels(monkeypatch) -> None:
    """Every test starts with no channel configured; fixtures switch them on."""
    for name in ALERT_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def slack_webhook(monkeypatch) -> Iterator[WebhookReceiver]:
    receiver, server = start_webhook()
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack_connection(receiver.url))
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


# -- e-mail -------------------------------------------------------------------------------------


@pytest.fixture
def smtp_server(monkeypatch) -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    from sparkify_local.ports import free_port

    box = Mailbox("127.0.0.1", free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
            msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
            box.messages.append((list(envelope.rcpt_tos), msg))
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname=box.host, port=box.port)
    controller.start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_ALERTS",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": box.host,
                "port": box.port,
                "extra": {
                    "from_email": "airflow@sparkify.test",
                    "to": "data-team@sparkify.test, oncall@sparkify.test",
                    "disable_ssl": True,
                    "disable_tls": True,
                    "timeout": 5,
                    "retry_limit": 0,
                },
            }
        ),
    )
    try:
        yield box
    finally:
        controller.stop()


# -- SNS ----------------------------------------------------------------------------------------


@pytest.fixture
def sns_topic(moto_server, monkeypatch) -> SnsTopic:
    """A topic with an SQS queue subscribed, on moto's server, as SPARKIFY_ALERT_SNS_TOPIC_ARN."""
    sns, sqs = aws_client("sns", moto_server.endpoint), aws_client("sqs", moto_server.endpoint)
    name = "sparkify-alerts-" + uuid.uuid4().hex[:8]
    arn = sns.create_topic(Name=name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing-secret-key",
                "extra": {"endpoint_url": moto_server.endpoint, "region_name": "us-west-2"},
            }
        ),
    )
    monkeypatch.setenv("SPARKIFY_ALERT_SNS_TOPIC_ARN", arn)
    return SnsTopic(arn, queue_url, sqs)
