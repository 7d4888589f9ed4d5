"""moto's S3 server (the real S3 API) as a child process on 127.0.0.1 (see ``moto_main``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sparkify_local.ports import free_port, port_in_use

TOOLS = Path(__file__).resolve().parents[1]


class S3ServerError(RuntimeError):
    pass


class MotoServer:
    def __init__(self, port: int | None = None, log_file: Path | None = None) -> None:
        self.port = port
        self.log_file = log_file
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> MotoServer:
        if self.port is None:
            self.port = free_port()
        elif port_in_use(self.port):
            raise S3ServerError(f"port {self.port} on 127.0.0.1 is already in use: choose another (S3_PORT)")
        log = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        path = os.pathsep.join(p for p in (str(TOOLS), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true", "PYTHONPATH": path}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sparkify_local.moto_main", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise S3ServerError(f"moto's server exited at start (code {self.process.returncode})")
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/data.json", timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise S3ServerError(f"moto's server did not answer on {self.endpoint} within {timeout:g} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
