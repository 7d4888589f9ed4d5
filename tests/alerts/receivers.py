"""Loopback receivers for the alert channels (used by the fixtures in conftest.py)."""

from __future__ import annotations

import email
import email.message
import email.policy
import html
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def wait_for(predicate, timeout: float = 10.0, poll: float = 0.05):
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > end:
            return value
        time.sleep(poll)


@dataclass
class WebhookReceiver:
    """What a Slack incoming webhook would have received: the JSON bodies, in order."""

    url: str
    messages: list[dict] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    status: int = 200

    @property
    def texts(self) -> list[str]:
        return [m.get("text", "") for m in self.messages]


def start_webhook() -> tuple[WebhookReceiver, ThreadingHTTPServer]:
    receiver = WebhookReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.paths.append(self.path)
            receiver.messages.append(json.loads(body or b"{}"))
            reply = b"ok" if receiver.status == 200 else b"invalid_token"
            self.send_response(receiver.status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), name="slack-webhook", daemon=True).start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/services/T0000/B0000/sparkify-test"
    return receiver, server


def slack_connection(url: str) -> str:
    return json.dumps({"conn_type": "slackwebhook", "password": url, "extra": {"timeout": 5}})


@dataclass
class Mailbox:
    """Messages aiosmtpd received: envelope recipients and the parsed message."""

    host: str
    port: int
    messages: list[tuple[list[str], email.message.EmailMessage]] = field(default_factory=list)

    def texts(self) -> list[str]:
        out = []
        for _, msg in self.messages:
            parts = [p for p in msg.walk() if p.get_content_maintype() == "text"]
            body = "\n".join(p.get_content() for p in parts)
            out.append(html.unescape(f"Subject: {msg['Subject']}\n{body}"))
        return out


@dataclass
class SnsTopic:
    arn: str
    queue_url: str
    sqs: object
    received: list[dict] = field(default_factory=list)

    def poll(self, timeout: float = 10.0) -> list[dict]:
        """SNS notifications delivered to the subscribed queue so far (``Subject``, ``Message``)."""

        def fetch():
            reply = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            for m in reply.get("Messages", []):
                self.received.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
            return self.received

        return wait_for(fetch, timeout=timeout, poll=0.2)


def aws_client(service: str, endpoint: str):
    import boto3

    return boto3.client(
        service, endpoint_url=endpoint, aws_access_key_id="testing",
        aws_secret_access_key="testing-secret-key", region_name="us-west-2",
    )
