"""A logged-in headless browser for the UI tests: Debian's Chromium through a proxy that adds the
session cookie Airflow's login page sets (shared by test_runner.py and test_quality_page_ui.py; the
``chromium`` fixture is in this folder's conftest.py)."""

from __future__ import annotations

import http.client
import http.server
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")


def find_chromium() -> Path:
    """Debian's chromium; installed with apt-get when missing and the tests run as root (CI)."""
    if not CHROMIUM.exists():
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            pytest.skip(f"{CHROMIUM} is missing; install Debian's chromium package (apt-get install chromium)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for args in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                                                    "chromium", "fonts-liberation"]):
            result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
            if result.returncode != 0:
                pytest.skip(f"`{' '.join(args)}` failed, so no {CHROMIUM}:\n{result.stderr[-1500:]}")
    return CHROMIUM


class AuthProxy(http.server.ThreadingHTTPServer):
    """An HTTP proxy for the browser that adds the admin's session cookie (``_token``, what Airflow's
    login page sets) to every request: a logged-in browser without typing into the login form."""

    daemon_threads = True
    HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
           "proxy-authorization", "proxy-authenticate", "content-length"}

    def __init__(self, token: str, allowed_port: int) -> None:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def forward(self) -> None:
                url = urlsplit(self.path)
                if url.hostname != "127.0.0.1" or url.port != allowed_port:
                    self.send_error(403, "only the api-server under test")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in proxy.HOP | {"cookie"}}
                cookies = [c for c in self.headers.get_all("Cookie", []) if c]
                headers["Cookie"] = "; ".join([*cookies, f"_token={token}"])
                upstream = http.client.HTTPConnection("127.0.0.1", allowed_port, timeout=60)
                try:
                    upstream.request(self.command, url.path + (f"?{url.query}" if url.query else ""), body, headers)
                    response = upstream.getresponse()
                    data = response.read()
                finally:
                    upstream.close()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in proxy.HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = forward

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]


def chromium_page(chromium: Path, url: str, proxy: int, what: list[str], tmp: Path) -> str:
    """Headless Chromium on ``url`` through the proxy: ``--dump-dom`` (returned) or ``--screenshot=<png>``."""
    profile = Path(tempfile.mkdtemp(dir=tmp, prefix="chromium-"))
    args = [
        str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,900",
        "--virtual-time-budget=15000", f"--proxy-server=http://127.0.0.1:{proxy}", "--proxy-bypass-list=<-loopback>",
        *what, url,
    ]
    # A guard against a hung browser, not a speed limit: rendering waits on the api-server, slow under load.
    result = subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=tmp)
    assert result.returncode == 0, f"chromium failed ({result.returncode}):\n{result.stderr[-2000:]}"
    return result.stdout


