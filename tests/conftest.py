"""Shared fixtures: a real PostgreSQL server, moto's real S3 server, and an Airflow home.

Everything starts on 127.0.0.1 with free ports and stops at the end of the session. Run as
root (CI), PostgreSQL runs as an unprivileged user (see sparkify_local.pgserver).

Under pytest-xdist (``make test``) the two servers are started once, by the controller, and every
worker uses them: each test works in databases and buckets of its own (random names), and what
is built once for many tests (the real-songs template) is built by the first worker that needs it,
the others waiting on a PostgreSQL advisory lock. Without xdist the session starts its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SPARKIFY_SHARED_DATA", ROOT.parent / "shared" / "data" / "sparkify"))


def scratch_parent() -> str | None:
    """Where the session's scratch folder goes: in memory (``/dev/shm``) when it has room for the
    PostgreSQL cluster, the Airflow homes and the runners' state with plenty to spare (SCRATCH_ROOM),
    else the system's temporary folder; ``TMPDIR``, when set, always wins. The tests' PostgreSQL
    clones a database per test (a few hundred files each): on tmpfs the clones and the deletion of
    the folder at the end cost no disk I/O (docs/performance.md)."""
    if os.environ.get("TMPDIR"):
        return None
    try:
        room = os.statvfs(MEMORY_FS)
    except OSError:
        return None
    enough = room.f_bavail * room.f_frsize >= SCRATCH_ROOM
    return MEMORY_FS if enough and os.access(MEMORY_FS, os.W_OK | os.X_OK) else None


MEMORY_FS = "/dev/shm"
SCRATCH_ROOM = 12 << 30  # bytes free on MEMORY_FS to use it; a whole `make test` peaked at 2.5 GB there

# One scratch folder per session; world-traversable so an unprivileged PostgreSQL can use it.
SCRATCH = Path(tempfile.mkdtemp(prefix="sparkify-tests-", dir=scratch_parent()))
SCRATCH.chmod(0o755)

# Airflow reads its configuration at import: set it before anything imports airflow.
os.environ.update(
    {
        "AIRFLOW_HOME": str(SCRATCH / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "SPARKIFY_S3_BUCKET": "sparkify-tests",
    }
)
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "tools"), str(ROOT / "dags"), str(ROOT / "tests")]
# Subprocesses (python -m sparkify.tables, airflow) import the project's package too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT / "plugins"), str(ROOT / "tools"), os.environ.get("PYTHONPATH")) if p)

from sparkify_local.pgserver import PostgresServer  # noqa: E402
from sparkify_local.s3server import MotoServer  # noqa: E402

SERVERS = pytest.StashKey[tuple]()


def real_data() -> Path:
    """The public Sparkify data beside the project, or skip saying where it was looked for."""
    if not (SHARED_DATA / "log_data").is_dir() or not (SHARED_DATA / "song_data").is_dir():
        pytest.skip(f"the real Sparkify data is missing: expected it in {SHARED_DATA} (set SPARKIFY_SHARED_DATA)")
    return SHARED_DATA


# -- what runs where ---------------------------------------------------------------------------------

# Fixtures of the 14,896 real songs staged (minutes): built once per session on the shared servers
# (tests/dags/conftest.py), so they are slow tests but their modules may run on any worker.
REAL_SONGS_FIXTURES = frozenset({"real_songs_warehouse_template", "loaded_window", "make_etl", "real_songs",
                                 "hourly_runs_templates"})
# Modules that start Airflow's processes, the local runner or a package install in every test.
SLOW_MODULES = (
    "tests/backfill/", "tests/local/test_runner.py", "tests/local/test_configuration.py",
    "tests/local/test_quality_page_ui.py",
    "tests/containers/test_compose.py", "tests/containers/test_lock_install.py", "tests/dags/test_airflow_cli.py",
    "tests/dags/test_etl_real_data.py", "tests/alerts/test_late_run.py", "tests/aws/test_setup_teardown.py",
    "tests/celery/",
)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Mark the slow tests (``make test-fast`` leaves them out) and group the tests for pytest-xdist
    (``--dist loadgroup``): a module's tests stay together (its module fixtures are built once), and
    the modules of a folder in SHARED_STATE_FOLDERS too. A test that names its own group
    (``@pytest.mark.xdist_group("<module>::<part>")``, for a long module whose tests share no module
    fixture with it) keeps it. The groups are handed out slow tests first, in collection order, the
    fast ones last, filling the workers as the long groups end. xdist's own order (groups with more
    tests first) started single-test groups of 60 to 150 s last. Measured 2026-12-08: 10 min 7 s
    against 11 min 13 s in one checkout, one run after the other, but 11 min 25 s in a clean clone
    against 11 min 28 s for the code before: within this machine's drift."""
    for item in items:
        path = item.nodeid.split("::")[0]
        real_songs = bool(REAL_SONGS_FIXTURES & set(item.fixturenames))
        if real_songs or path.startswith(SLOW_MODULES) or item.get_closest_marker("scheduler"):
            item.add_marker(pytest.mark.slow)
        if not any(mark.name == "xdist_group" for mark in item.own_markers):
            item.add_marker(pytest.mark.xdist_group(group_of(path)))
    # The slow tests first: xdist hands the groups out in this order (pytest_configure turns off
    # its own reordering, by number of tests, which left the longest single-test groups for last).
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


# Folders whose modules share state outside their own databases and buckets (moto's IAM roles and
# account-wide bucket listings in tests/aws): their modules run on one worker, one after another.
SHARED_STATE_FOLDERS = ("tests/aws/",)


def group_of(path: str) -> str:
    """A test's xdist group: its folder when the folder's modules share state, else its module."""
    return next((folder for folder in SHARED_STATE_FOLDERS if path.startswith(folder)), path)


EARLY_BUILDER = "gw0"  # the xdist worker that builds the real-songs template before its first test


@pytest.fixture(scope="session", autouse=True)
def real_songs_template_early(request) -> None:
    """Under xdist, when the session has tests that use the real songs, its first worker builds their
    template (tests/dags/conftest.py) before its first test. Built on demand, it was first asked for
    about a minute into the session, and the next workers that needed it then waited, idle, for the
    rest of its build (about 100 s of one core); now the other workers run other tests meanwhile. A
    failure here is left to the tests that need the template: they build it again and report it."""
    if os.environ.get("PYTEST_XDIST_WORKER") != EARLY_BUILDER or not (SHARED_DATA / "song_data").is_dir():
        return
    if not any(REAL_SONGS_FIXTURES & set(item.fixturenames) for item in request.session.items):
        return
    from tests.dags.conftest import ensure_real_songs_template

    try:
        request.getfixturevalue("airflow_db")
        ensure_real_songs_template(*(request.getfixturevalue(name)
                                     for name in ("pg_server", "moto_server", "tables_template")))
    except Exception as err:  # noqa: BLE001 - the tests that need it build it again and report it
        warnings.warn(f"building the real-songs template early failed: {err!r}", stacklevel=1)


# -- the servers, shared by the xdist workers ------------------------------------------------------

SERVERS_KEY = "sparkify_servers"  # in each worker's workerinput: the controller's servers' ports


def _is_xdist_controller(config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def pytest_configure(config):
    if _is_xdist_controller(config):
        # --dist loadgroup hands out the groups in collection order (see pytest_collection_modifyitems).
        config.option.loadscopereorder = False
        pg = PostgresServer(SCRATCH / "pg" / "data").start()
        try:
            moto = MotoServer(log_file=SCRATCH / "moto.log").start()
        except BaseException:
            pg.stop()
            raise
        config.stash[SERVERS] = (pg, moto)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """pytest-xdist, in the controller, for each worker it starts: where the servers are."""
    pg, moto = node.config.stash[SERVERS]
    node.workerinput[SERVERS_KEY] = json.dumps({"pg_port": pg.port, "moto_port": moto.port})


def pytest_sessionfinish(session, exitstatus):
    for server in session.config.stash.get(SERVERS, ()):
        server.stop()
    shutil.rmtree(SCRATCH, ignore_errors=True)


def shared_servers(config) -> dict | None:
    """The controller's servers' ports, in an xdist worker; None otherwise."""
    found = getattr(config, "workerinput", {}).get(SERVERS_KEY)
    return json.loads(found) if found else None


class SharedPostgres:
    """The controller's PostgreSQL server, as a worker sees it: it neither starts nor stops it."""

    ensure_database = PostgresServer.ensure_database
    url = PostgresServer.url

    def __init__(self, port: int) -> None:
        self.port = port


# -- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server(request) -> Iterator[PostgresServer]:
    shared = shared_servers(request.config)
    if shared:
        yield SharedPostgres(shared["pg_port"])
        return
    server = PostgresServer(SCRATCH / "pg" / "data").start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Database:
    """A throwaway database on the test server, reachable as the Airflow connection ``redshift``."""

    url: str
    name: str

    def connect(self):
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def query(self, sql: str, params=None) -> list[tuple]:
        with self.connect() as conn:
            return [tuple(r) for r in conn.execute(sql, params).fetchall()]

    def scalar(self, sql: str, params=None):
        rows = self.query(sql, params)
        return rows[0][0] if rows else None


def create_database(server: PostgresServer, template: str | None = None) -> Database:
    import psycopg

    name = "t_" + uuid.uuid4().hex[:10]
    with psycopg.connect(server.url(), autocommit=True) as conn:
        # FILE_COPY: copying the template's files is about a quarter of the CPU of PostgreSQL 15's
        # default (WAL_LOG, every page through the WAL) on the tests' server (wal_level=minimal).
        source = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{source} STRATEGY FILE_COPY')
    return Database(server.url(name), name)


@pytest.fixture(scope="session")
def tables_template(pg_server) -> str:
    """A database with every table created, cloned by each test that needs an empty warehouse."""
    db = create_database(pg_server)
    env = {**os.environ, "AIRFLOW_CONN_REDSHIFT": db.url}
    subprocess.run(
        [sys.executable, "-m", "sparkify.tables", "create", "--conn-id", "redshift"],
        check=True, env=env, cwd=ROOT, capture_output=True,
    )
    return db.name


@pytest.fixture
def warehouse(pg_server, tables_template, monkeypatch) -> Database:
    """An empty warehouse (all tables created) as the ``redshift`` connection."""
    db = create_database(pg_server, template=tables_template)
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT", db.url)
    return db


@pytest.fixture
def empty_database(pg_server, monkeypatch) -> Database:
    """A database with no tables, as the ``redshift`` connection."""
    db = create_database(pg_server)
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT", db.url)
    return db


# -- S3 (moto's server) ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_server(request) -> Iterator[MotoServer]:
    shared = shared_servers(request.config)
    if shared:
        yield MotoServer(port=shared["moto_port"])  # not started here: only its endpoint is used
        return
    server = MotoServer(log_file=SCRATCH / "moto.log").start()
    try:
        yield server
    finally:
        server.stop()


def aws_connection(endpoint: str, **extra) -> str:
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing-secret-key",
            "extra": {"endpoint_url": endpoint, "region_name": "us-west-2", **extra},
        }
    )


@dataclass
class Bucket:
    """A fresh bucket on moto's server, reachable as the Airflow connection ``aws``."""

    name: str
    client: object

    def put(self, key: str, body: bytes | str) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=body.encode() if isinstance(body, str) else body)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=key)

    def upload(self, root: Path, paths: list[Path], threads: int = 8) -> None:
        from concurrent.futures import ThreadPoolExecutor

        def one(path: Path) -> None:
            self.client.upload_file(str(path), self.name, path.relative_to(root).as_posix())

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, paths))


def s3_client(endpoint: str):
    import boto3

    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="testing",
        aws_secret_access_key="testing-secret-key", region_name="us-west-2",
    )


def create_bucket(endpoint: str, name: str | None = None) -> Bucket:
    client = s3_client(endpoint)
    name = name or "t-" + uuid.uuid4().hex[:12]
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    return Bucket(name, client)


@pytest.fixture
def bucket(moto_server, monkeypatch) -> Bucket:
    monkeypatch.setenv("AIRFLOW_CONN_AWS", aws_connection(moto_server.endpoint))
    return create_bucket(moto_server.endpoint)


# -- Airflow ------------------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def dag_test_with_deadlines() -> Iterator[None]:
    """sparkify_etl has a deadline: let dag.test() finish successful runs (apache/airflow#73428)."""
    from sparkify.compat import patch_dag_test_deadlines

    undo = patch_dag_test_deadlines()
    yield
    undo()


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Airflow's metadata database (SQLite in the worker's Airflow home), migrated once per session:
    a copy of the migrated database the installed packages made (see copy_migrated_metadata_db)."""
    target = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not copy_migrated_metadata_db(target):
        migrate_metadata_db(target)


def migrate_metadata_db(target: Path) -> None:
    env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{target}"}
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=env)


def copy_migrated_metadata_db(target: Path) -> bool:
    """Copy to ``target`` an empty Airflow metadata database as ``airflow db migrate`` leaves it,
    kept in the virtual environment and named by the installed packages' versions and the
    ``AIRFLOW__`` settings (all that Airflow's and its providers' migrations depend on): every
    worker of every session copies it instead of migrating (about 5 CPU-s each). The first to need
    it makes it; all of it happens under a file lock (a worker with other settings replaces it).
    False, with nothing copied, outside a virtual environment or in one the tests cannot write to."""
    import fcntl
    import hashlib
    from importlib import metadata

    if sys.prefix == sys.base_prefix:
        return False
    versions = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    settings = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("AIRFLOW__"))
    key = hashlib.sha256("\n".join(versions + settings).encode()).hexdigest()[:16]
    folder = Path(sys.prefix) / "sparkify-test-cache"
    try:
        folder.mkdir(exist_ok=True)
        lock = open(folder / "lock", "w")  # noqa: SIM115 - closed below
    except OSError:  # a virtual environment the tests may not write to
        return False
    cached = folder / f"airflow-metadata-{key}.db"
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cached.exists():
            for stale in [*folder.glob("airflow-metadata-*"), *folder.glob("partial-*")]:
                stale.unlink()
            partial = folder / f"partial-{os.getpid()}.db"
            migrate_metadata_db(partial)
            partial.rename(cached)
        shutil.copyfile(cached, target)
    return True
