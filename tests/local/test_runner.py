"""The local run (`make run`, `make up`, `make down`) as a user runs it: the runner as a subprocess.

End to end through Airflow's real scheduler on generated demo data, over a short window, into an
existing PostgreSQL (WAREHOUSE_URL): a first run interrupted with Ctrl-C while the backfill runs,
a second run on the same state folder with no manual cleanup, which must load the window exactly
as the data contract says (tests/reference.py), and a third run, which must find the window loaded
and change nothing. After every run, nothing it started may be left running.

The runner's failure paths (a port in use, a missing SOURCE folder, START after END, an unreachable
WAREHOUSE_URL) must each give a clear message and exit code 2 without leaving anything running.

The UI: `up` on the embedded warehouse, a backfill through the REST API, then the DAG's grid page
in headless Chromium (Debian's package, installed when missing and root) with the admin's token,
then `down`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

import reference as ref
from conftest import ROOT, SCRATCH, create_database

from .browser import AuthProxy, chromium_page

DAG_ID = "sparkify_etl"
START, END = datetime(2018, 11, 1, 0), datetime(2018, 11, 1, 4)  # 4 hourly runs; the demo data has plays in each
HOURS = 4
INTERRUPTED_END = START + timedelta(days=2)  # 48 runs: the interrupted run cannot finish before its Ctrl-C
RUN_TIMEOUT = 900  # seconds for one whole `run` on a loaded machine
CONFIG_NAMES = (
    "START", "END", "SOURCE", "WAREHOUSE_URL", "PG_PORT", "S3_PORT", "AIRFLOW_PORT", "MAX_ACTIVE_RUNS",
    "AIRFLOW_PARALLELISM", "REPROCESS", "RUN_BACKWARDS", "BUCKET", "STATE_DIR", "GRAIN", "EXECUTOR", "WORKERS",
    "BROKER_PORT",
)


# -- running the runner ---------------------------------------------------------------------------------


def new_state_dir(name: str) -> Path:
    """A state folder PostgreSQL's unprivileged user can reach (the session scratch folder is 0755)."""
    state = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=SCRATCH))
    state.chmod(0o755)
    return state


def runner_env(state: Path, **settings: str) -> dict[str, str]:
    """The environment of a user's shell: every setting explicit, so a developer's .env cannot leak in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "SPARKIFY_")) and k not in CONFIG_NAMES}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "tools")]),
            "STATE_DIR": str(state),
            "START": f"{START:%Y-%m-%dT%H:%M}",
            "END": f"{END:%Y-%m-%dT%H:%M}",
            "SOURCE": "",
            "WAREHOUSE_URL": "",
            "PG_PORT": "",
            "S3_PORT": "",
            "AIRFLOW_PORT": "",
            "MAX_ACTIVE_RUNS": "4",
            "AIRFLOW_PARALLELISM": "8",
            "REPROCESS": "failed",
            "RUN_BACKWARDS": "",
            "BUCKET": "sparkify-local",
        }
    )
    env.update(settings)
    return env


def _as_from_a_terminal() -> None:
    """In the runner's process before it starts: Ctrl-C and Ctrl-\\ as a terminal delivers them.

    A program started in the background by a shell without job control (``cmd &`` in a script,
    as a CI system may start the suite) inherits SIGINT and SIGQUIT *ignored*, and Python then
    installs no KeyboardInterrupt handler: the Ctrl-C test would send a signal nobody hears."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


@dataclass
class Runner:
    """One `python -m sparkify_local.runner <command>` in its own session, as a terminal would start it."""

    command: str
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None
    seconds: float = 0.0  # from start to exit
    interrupted_at: float | None = None
    ended_at: float | None = None

    def start(self) -> Runner:
        self._started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sparkify_local", self.command], cwd=ROOT, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            preexec_fn=_as_from_a_terminal,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        """Wait until a line of the output matches ``pattern``; fail if the runner exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            if self.process.poll() is not None:
                self._reader.join(5)
                break
            time.sleep(0.5)
        pytest.fail(f"no line matching {pattern!r} within {timeout:g} s (exit code {self.process.poll()}):\n"
                    + self.tail())

    def wait(self, timeout: float = RUN_TIMEOUT) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.interrupt()
            pytest.fail(f"`runner {self.command}` did not finish within {timeout:g} s:\n{self.tail()}")
        self.ended_at = time.monotonic()
        self._reader.join(10)
        self.seconds = self.ended_at - self._started
        return code

    def interrupt(self, sig: int = signal.SIGINT) -> None:
        """Ctrl-C: the signal goes to the terminal's foreground process group, the runner's."""
        self.interrupted_at = self.interrupted_at or time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.lines[-lines:])


def run_runner(command: str, env: dict[str, str], timeout: float = RUN_TIMEOUT, show: bool = False) -> Runner:
    runner = Runner(command, env).start()
    runner.wait(timeout)
    if show:  # seen with pytest -s
        print(f"\n$ runner {command}   ({runner.seconds:.0f} s, exit {runner.process.returncode})\n{runner.output}")
    return runner


# -- what is left running -----------------------------------------------------------------------------


def leftovers(state: Path) -> list[str]:
    """Live processes started for ``state``: their environment names it (every child of the runner
    inherits STATE_DIR) or their command line does (postgres -D <state>/pg/data)."""
    found = []
    marker = str(state)
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmdline = " ".join(proc.info["cmdline"] or ())
        try:
            environ = proc.environ()
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            environ = {}
        if marker in cmdline or environ.get("STATE_DIR") == marker:
            found.append(f"{proc.pid}: {cmdline[:200]}")
    return found


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def assert_nothing_left(state: Path, runner: Runner | None = None, grace: float = 15) -> None:
    """No process of the run, no open port it printed, no running PostgreSQL in the state folder."""
    deadline = time.monotonic() + grace  # an orphan may take a moment to notice its parent left
    while (left := leftovers(state)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, "still running after the runner ended:\n" + "\n".join(left)
    if runner is not None:
        ports = {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", runner.output)}
        if runner.env.get("WAREHOUSE_URL"):  # not the runner's: it must stay up
            ports.discard(urlsplit(runner.env["WAREHOUSE_URL"]).port)
        assert not [p for p in ports if port_open(p)], f"ports still open: {ports}\n{runner.tail()}"
    pid_files = list(state.glob("pg/**/postmaster.pid"))
    assert not pid_files, f"PostgreSQL still running: {pid_files}"


# -- the warehouse ----------------------------------------------------------------------------------------


def query(url: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def star_rows(url: str) -> dict[str, list[tuple]]:
    return {table: query(url, f"SELECT {', '.join(cols)} FROM public.{table}") for table, cols in ref.COLUMNS.items()}


def checksums(url: str) -> dict[str, tuple]:
    """Rows and an MD5 over every column of every row of each star and bookkeeping table."""
    tables = (*ref.STAR_TABLES, "load_manifest")
    return {
        t: query(url, f"SELECT COUNT(*), md5(COALESCE(string_agg(x::text, '|' ORDER BY x::text), '')) "
                      f"FROM public.{t} x")[0]
        for t in tables
    }


def expected_tables(demo: Path, start: datetime, end: datetime) -> dict[str, list[tuple]]:
    """The contract's tables for the window, from the demo files the runner generated and uploaded."""
    events = ref.read_events(ref.event_log_paths(demo, start, end))
    songs = ref.read_songs(ref.song_paths(demo))
    return ref.expected_tables(events, songs, start, end)


def assert_contract(url: str, demo: Path, start: datetime, end: datetime) -> dict[str, int]:
    expected = expected_tables(demo, start, end)
    assert expected["songplays"] and any(r[4] for r in expected["songplays"]), "the window should have matched plays"
    actual = star_rows(url)
    problems = [d for t in ref.STAR_TABLES if (d := ref.describe_difference(t, expected[t], actual[t]))]
    assert not problems, "\n".join(problems)
    return {t: len(rows) for t, rows in expected.items()}


def summary_counts(output: str) -> dict[str, int]:
    match = re.search(r"rows per table: (.*)", output)
    assert match, output
    return {name: int(n) for name, n in re.findall(r"(\w+) (\d+)", match.group(1))}


# -- end to end: interrupted, then complete, then again --------------------------------------------------------


@dataclass
class Session:
    state: Path
    warehouse_url: str
    runs: dict[str, Runner] = field(default_factory=dict)
    during: list[str] = field(default_factory=list)  # processes seen while the interrupted run ran

    def env(self) -> dict[str, str]:
        return runner_env(self.state, WAREHOUSE_URL=self.warehouse_url)


@pytest.fixture(scope="module")
def session(pg_server) -> Session:
    """A state folder and an existing, empty PostgreSQL database as WAREHOUSE_URL."""
    return Session(new_state_dir("e2e"), create_database(pg_server).url)


@pytest.fixture(scope="module")
def interrupted(session) -> Runner:
    """`make run`, interrupted with Ctrl-C as soon as the runner reports a run of the window running.

    The interrupt follows an event the test observes, not a delay: the interrupted run's window is
    two days (48 hourly runs, one at a time), so it cannot finish between the runner's report of its
    first running run and the Ctrl-C, however fast the machine is. The next run (``complete``) loads
    the first hours of that window, which share the demo day with it."""
    runner = Runner("run", {**session.env(), "END": f"{INTERRUPTED_END:%Y-%m-%dT%H:%M}",
                            "MAX_ACTIVE_RUNS": "1"}).start()
    session.runs["interrupted"] = runner
    try:
        runner.wait_for(r"runs \d+/\d+ done .*running: 2018", timeout=RUN_TIMEOUT)
        session.during = leftovers(session.state)
    finally:
        runner.interrupt()
        runner.wait(timeout=120)
    print(f"\n$ runner run, Ctrl-C\n{runner.tail(12)}")
    return runner


@pytest.fixture(scope="module")
def complete(session, interrupted) -> Runner:
    """`make run` again on the same state folder, with no cleanup in between."""
    runner = run_runner("run", session.env(), show=True)
    session.runs["complete"] = runner
    return runner


@pytest.fixture(scope="module")
def repeated(session, complete) -> tuple[Runner, dict, dict]:
    """A third `make run` of the same window; the tables' checksums before and after."""
    before = checksums(session.warehouse_url)
    runner = run_runner("run", session.env(), show=True)
    session.runs["repeated"] = runner
    return runner, before, checksums(session.warehouse_url)


@pytest.mark.scheduler
def test_ctrl_c_stops_everything(session, interrupted):
    assert session.during, "the leftover detector saw nothing while the stack ran: it cannot be trusted"
    stopped_in = interrupted.ended_at - interrupted.interrupted_at
    assert "runs succeeded:" not in interrupted.output, "the window finished before the Ctrl-C:\n" + interrupted.tail()
    assert interrupted.process.returncode != 0, interrupted.tail()
    assert stopped_in < 60, f"took {stopped_in:.0f} s to stop after Ctrl-C\n{interrupted.tail()}"
    assert "stopping everything this run started" in interrupted.output
    # What it left unfinished in Airflow's metadata is closed, so the next run starts clean.
    assert "closed backfill" in interrupted.output and "marked failed" in interrupted.output
    assert "interrupted; everything started was stopped" in interrupted.output
    assert "Traceback" not in interrupted.output
    assert_nothing_left(session.state, interrupted)


@pytest.mark.scheduler
def test_run_after_interrupt_loads_window_into_warehouse_url(session, complete):
    out = complete.output
    assert complete.process.returncode == 0, complete.tail(120)
    assert f"runs succeeded: {HOURS}   failed: 0" in out, out
    assert "not run:" not in out
    # The existing database given as WAREHOUSE_URL is the warehouse: printed, and loaded.
    assert f"warehouse: {session.warehouse_url}" in out
    assert "and warehouse)" not in out  # the embedded PostgreSQL holds Airflow's metadata only
    counts = assert_contract(session.warehouse_url, session.state / "demo", START, END)
    assert summary_counts(out) == counts
    assert_nothing_left(session.state, complete)


@pytest.mark.scheduler
def test_second_run_keeps_the_window(session, repeated):
    runner, before, after = repeated
    out = runner.output
    assert runner.process.returncode == 0, runner.tail(120)
    assert "every run of the window already succeeded (REPROCESS=failed)" in out, out
    assert f"runs succeeded: {HOURS}   failed: 0" in out, out
    assert after == before, "a second run of a loaded window changed the tables"
    assert_contract(session.warehouse_url, session.state / "demo", START, END)
    assert_nothing_left(session.state, runner)


@pytest.mark.xdist_group("tests/local/test_runner.py::failures")  # shares no module fixture: may run beside the rest
@pytest.mark.scheduler
def test_a_killed_scheduler_is_reported_and_leaves_nothing_running(pg_server):
    """The scheduler SIGKILLed in the middle of `make run`'s backfill: the runner says so, closes what
    it left, and stops every process of every group it started, the dead scheduler's LocalExecutor
    workers (orphaned in its process group) included."""
    state = new_state_dir("crash")
    runner = Runner("run", runner_env(state, WAREHOUSE_URL=create_database(pg_server).url,
                                      END=f"{INTERRUPTED_END:%Y-%m-%dT%H:%M}", MAX_ACTIVE_RUNS="1")).start()
    try:
        runner.wait_for(r"runs \d+/\d+ done .*running: 2018", timeout=RUN_TIMEOUT)
        marker = str(state)
        scheduler = next(p for p in psutil.process_iter(["cmdline"])
                         if "scheduler" in (p.info["cmdline"] or []) and marker_of(p) == marker)
        deadline = time.monotonic() + 120
        while not scheduler.children() and time.monotonic() < deadline:  # its LocalExecutor workers
            time.sleep(0.2)
        workers = scheduler.children()
        assert workers, "the scheduler started no worker"
        scheduler.kill()
    finally:
        code = runner.wait(timeout=300)
    assert code == 2, runner.tail()
    assert "error: Airflow's scheduler stopped (code -9)" in runner.output, runner.tail()
    assert "closed backfill" in runner.output and "marked failed" in runner.output, runner.tail()
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE], "orphaned workers"
    assert_nothing_left(state, runner)


def test_stop_groups_stops_the_group_of_a_dead_leader():
    """What a SIGKILLed leader leaves in its process group (a child that ignores SIGTERM, as Airflow's
    LocalExecutor workers do) is still stopped."""
    from sparkify_local.processes import stop_groups

    code = ("import os, signal, sys, time\n"
            "if os.fork() == 0:\n"
            "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "    print(os.getpid(), flush=True)\n"
            "    time.sleep(600)\n"
            "time.sleep(600)\n")
    leader = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    child = psutil.Process(int(leader.stdout.readline()))
    leader.kill()
    leader.wait()  # reaped: the leader's pid is gone, its group is not
    assert child.is_running() and os.getpgid(child.pid) == leader.pid
    stop_groups([leader.pid], timeout=3, group_after=1)
    with contextlib.suppress(psutil.NoSuchProcess):
        child.wait(5)
    assert not child.is_running(), "the dead leader's child is still running"


def marker_of(proc: psutil.Process) -> str | None:
    try:
        return proc.environ().get("STATE_DIR")
    except psutil.Error:
        return None


# -- failure paths --------------------------------------------------------------------------------------


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("name", ["PG_PORT", "S3_PORT", "AIRFLOW_PORT"])
def test_port_in_use(name, held_port):
    state = new_state_dir("port")
    runner = run_runner("run", runner_env(state, **{name: str(held_port)}), timeout=120)
    assert runner.process.returncode == 2, runner.output
    assert f"error: {name}={held_port}: port {held_port} on 127.0.0.1 is already in use" in runner.output
    assert "Traceback" not in runner.output
    assert_nothing_left(state)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"SOURCE": "/nonexistent/sparkify"}, "error: SOURCE=/nonexistent/sparkify: no such folder"),
        ({"START": "2018-11-02", "END": "2018-11-01"}, "error: START (2018-11-02T00:00) must be before END"),
        ({"START": "2018-11-01T05:00", "END": "2018-11-01T05:00"}, "must be before END"),
        ({"START": "yesterday"}, "error: START='yesterday' is not a UTC date"),
        ({"REPROCESS": "all"}, "error: REPROCESS='all': use none, failed or completed"),
        ({"GRAIN": "week"}, "error: GRAIN='week': use hour, day, window"),
    ],
    ids=["missing-source", "start-after-end", "empty-window", "bad-start", "bad-reprocess", "bad-grain"],
)
def test_bad_settings(settings, message):
    state = new_state_dir("settings")
    runner = run_runner("run", runner_env(state, **settings), timeout=120)
    assert runner.process.returncode == 2, runner.output
    assert message in runner.output
    assert "Traceback" not in runner.output
    assert "starting" not in runner.output, "nothing should start with invalid settings"
    assert_nothing_left(state)


def test_unreachable_warehouse_url():
    state = new_state_dir("warehouse")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    url = f"postgresql://postgres:secret@127.0.0.1:{closed}/x"
    runner = run_runner("run", runner_env(state, WAREHOUSE_URL=url), timeout=180)
    assert runner.process.returncode == 2, runner.output
    assert f"error: WAREHOUSE_URL postgresql://postgres:***@127.0.0.1:{closed}/x is not reachable" in runner.output
    assert "secret" not in runner.output
    assert "Traceback" not in runner.output
    # The metadata PostgreSQL had started: it must be stopped again.
    assert "starting PostgreSQL" in runner.output and "stopping everything" in runner.output
    assert_nothing_left(state, runner)


# -- grains: one run per day, one run for the window ----------------------------------------------------


GRAIN_WINDOW = (datetime(2018, 11, 1, 20), datetime(2018, 11, 2, 4))  # crosses a daily file boundary


@pytest.mark.parametrize(("grain", "intervals"), [
    ("hour", [(datetime(2018, 11, 1, 20) + timedelta(hours=n), datetime(2018, 11, 1, 21) + timedelta(hours=n))
              for n in range(8)]),
    ("day", [(GRAIN_WINDOW[0], datetime(2018, 11, 2)), (datetime(2018, 11, 2), GRAIN_WINDOW[1])]),
    ("window", [GRAIN_WINDOW]),
])
def test_grain_splits_the_window_into_runs(grain, intervals):
    from sparkify_local.config import Config

    config = Config.load(ROOT, {"START": "2018-11-01T20:00", "END": "2018-11-02T04:00", "GRAIN": grain})
    assert config.intervals() == intervals


@pytest.mark.xdist_group("tests/local/test_runner.py::grains")  # shares no module fixture: may run beside the rest
@pytest.mark.scheduler
def test_daily_then_window_runs_load_the_window_as_the_contract_says(pg_server):
    """`make run GRAIN=day` over a window that crosses midnight (two runs through the REST API), then
    `GRAIN=window` over the same window (one run) on the same state: both succeed, and the tables
    equal the contract's for the window each time."""
    state = new_state_dir("grain")
    url = create_database(pg_server).url
    window = {"START": f"{GRAIN_WINDOW[0]:%Y-%m-%dT%H:%M}", "END": f"{GRAIN_WINDOW[1]:%Y-%m-%dT%H:%M}",
              "WAREHOUSE_URL": url}
    daily = run_runner("run", runner_env(state, GRAIN="day", **window), show=True)
    assert daily.process.returncode == 0, daily.tail(120)
    out = daily.output
    assert "=== sparkify_etl over [2018-11-01T20:00, 2018-11-02T04:00) UTC: 2 daily runs ===" in out, out
    assert "runs succeeded: 2   failed: 0" in out and "not run:" not in out
    counts = assert_contract(url, state / "demo", *GRAIN_WINDOW)
    assert summary_counts(out) == counts
    assert_nothing_left(state, daily)
    before = checksums(url)

    whole = run_runner("run", runner_env(state, GRAIN="window", **window), show=True)
    assert whole.process.returncode == 0, whole.tail(120)
    assert "UTC: 1 run over the whole window ===" in whole.output
    assert "runs succeeded: 1   failed: 0" in whole.output
    assert_contract(url, state / "demo", *GRAIN_WINDOW)
    star = {t: v for t, v in checksums(url).items() if t in ref.STAR_TABLES}
    assert star == {t: v for t, v in before.items() if t in ref.STAR_TABLES}
    assert_nothing_left(state, whole)

    again = run_runner("run", runner_env(state, GRAIN="day", **window))
    assert again.process.returncode == 0, again.tail(120)
    assert "2 run(s) of the window already succeeded and are kept (REPROCESS=failed)" in again.output


@pytest.mark.xdist_group("tests/local/test_runner.py::failures")  # shares no module fixture: may run beside the rest
@pytest.mark.scheduler
def test_a_failed_check_is_explained_in_the_summary(pg_server, tmp_path):
    """One NextSong event whose level is `gold`: the run fails, and `make run`'s summary says which
    check failed, what it checks, actual and expected, and the offending row (key and value)."""
    from sparkify_local import demo_data

    source = tmp_path / "source"
    source.mkdir()
    source.chmod(0o755)
    demo_data.generate(source, START.date(), START.date() + timedelta(days=1))
    log = source / demo_data.log_key(START.date())
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    first = min((e for e in events if e["page"] == "NextSong" and e["userId"]), key=lambda e: e["ts"])
    assert first["ts"] < (START + timedelta(hours=1) - datetime(1970, 1, 1)).total_seconds() * 1000
    first["level"] = "gold"
    log.write_text("".join(json.dumps(e) + "\n" for e in events))

    state = new_state_dir("failed-check")
    url = create_database(pg_server).url
    result = run_runner("run", runner_env(state, SOURCE=str(source), GRAIN="window", WAREHOUSE_URL=url,
                                          END=f"{START + timedelta(hours=1):%Y-%m-%dT%H:%M}"), show=True)
    assert result.process.returncode == 1, result.tail(120)
    out = result.output
    assert "runs succeeded: 0   failed: 1" in out, out
    assert re.search(r"FAILED 2018-11-01T00:00  Run_data_quality_checks \(failed\)  log: \S+attempt=1\.log", out)
    (songplay_id,) = query(url, "SELECT songplay_id FROM songplays WHERE level = 'gold'")[0]
    lines = [re.sub(r"^\[ *[\d.]+s\] ", "", line) for line in result.lines]
    start = lines.index("    songplays_level_accepted on songplays: actual 0, expected = 1")
    assert lines[start + 1: start + 4] == [
        "      checks: every row satisfies level IN ('free', 'paid') (rows of the run's interval by start_time)",
        "      offending rows (up to 5):",
        f"        songplay_id='{songplay_id}', level='gold'",
    ], out
    assert_nothing_left(state, result)


def test_airflow_command_with_nothing_up():
    state = new_state_dir("cli")
    runner = run_runner("airflow", runner_env(state), timeout=60)  # no ARGS: the stack check comes first
    assert runner.process.returncode == 2, runner.output
    assert f"no stack is up on this state folder ({state}): start it with `make up`" in runner.output


def test_down_with_nothing_up():
    state = new_state_dir("down")
    runner = run_runner("down", runner_env(state), timeout=60)
    assert runner.process.returncode == 0, runner.output
    assert "nothing is running" in runner.output


# -- the UI -----------------------------------------------------------------------------------------------


@dataclass
class Up:
    state: Path
    runner: Runner
    api_port: int
    password: str
    token: str = ""

    def api(self, method: str, path: str, body: dict | None = None, timeout: float = 180) -> dict:
        """Airflow's REST API as admin. The timeout is long: the api-server stalls for seconds (tens of
        seconds on a loaded machine) while it serves the first task's start."""
        base = f"http://127.0.0.1:{self.api_port}"
        if not self.token:
            request = urllib.request.Request(
                base + "/auth/token", method="POST", headers={"Content-Type": "application/json"},
                data=json.dumps({"username": "admin", "password": self.password}).encode(),
            )
            with urllib.request.urlopen(request, timeout=timeout) as response:
                self.token = json.loads(response.read())["access_token"]
        request = urllib.request.Request(
            base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as err:
            raise AssertionError(f"{method} {path}: {err.code} {err.read()[:1000]!r}") from None


@pytest.fixture(scope="module")
def stack_up() -> Iterator[Up]:
    """`make up` over a 2-hour window on the embedded warehouse; `make down` at the end."""
    state = new_state_dir("ui")
    env = runner_env(state, START="2018-11-01T00:00", END="2018-11-01T02:00")
    runner = run_runner("up", env, timeout=600, show=True)
    try:
        assert runner.process.returncode == 0, runner.tail(120)
        match = re.search(r"Airflow UI: http://127\.0\.0\.1:(\d+)/dags/sparkify_etl +login: admin / (\S+)",
                          runner.output)
        assert match, runner.output
        assert leftovers(state), "`up` should leave the stack running"
        yield Up(state, runner, int(match.group(1)), match.group(2))
    finally:
        down = run_runner("down", env, timeout=300, show=True)
        assert down.process.returncode == 0, down.output
        assert "stopped" in down.output
        assert_nothing_left(state, runner)
        assert not (state / "stack.json").exists()


@pytest.mark.xdist_group("tests/local/test_runner.py::ui")  # stack_up is this test's alone: may run beside the rest
@pytest.mark.scheduler
def test_ui_shows_backfilled_window(stack_up, chromium, tmp_path):
    up = stack_up
    # A second `up` on the same state folder refuses, naming `make down`.
    again = run_runner("up", up.runner.env, timeout=120)
    assert again.process.returncode == 2 and "`make down` stops it" in again.output, again.output

    # make airflow ARGS="…": the Airflow CLI against the running stack's metadata database, not SQLite.
    cli = subprocess.run([sys.executable, "-m", "sparkify_local", "airflow", "dags", "list", "-o", "plain"],
                         cwd=ROOT, env=up.runner.env, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stdout[-2000:] + cli.stderr[-2000:]
    assert DAG_ID in cli.stdout and "sparkify_maintenance" in cli.stdout, cli.stdout
    config = subprocess.run([sys.executable, "-m", "sparkify_local", "airflow", "config", "get-value",
                             "database", "sql_alchemy_conn"], cwd=ROOT, env=up.runner.env, capture_output=True,
                            text=True, timeout=300)
    assert config.stdout.strip().startswith("postgresql+psycopg://"), config.stdout + config.stderr

    # Backfill 2 hours through the REST API, as the UI's Trigger → Backfill does.
    window_start, window_end = datetime(2018, 11, 1, 0), datetime(2018, 11, 1, 2)
    backfill = up.api("POST", "/api/v2/backfills", {
        "dag_id": DAG_ID, "from_date": f"{window_start:%Y-%m-%dT%H:%M:%S}Z",
        "to_date": f"{window_end - timedelta(hours=1):%Y-%m-%dT%H:%M:%S}Z",
        "max_active_runs": 2, "reprocess_behavior": "failed", "run_backwards": False, "dag_run_conf": {},
    })
    deadline = time.monotonic() + 600
    while True:
        runs = up.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?run_type=backfill&limit=100")["dag_runs"]
        runs = [r for r in runs if r.get("backfill_id") in (None, backfill["id"])]
        states = sorted(r["state"] for r in runs)
        if len(runs) == 2 and all(s in ("success", "failed") for s in states):
            break
        assert time.monotonic() < deadline, f"backfill {backfill['id']} unfinished: {states}"
        time.sleep(3)
    assert states == ["success", "success"], runs
    intervals = sorted(r["data_interval_start"] for r in runs)
    assert intervals == ["2018-11-01T00:00:00Z", "2018-11-01T01:00:00Z"], intervals

    # The API: the DAG, unpaused, and its backfill finished.
    dag = up.api("GET", f"/api/v2/dags/{DAG_ID}")
    assert dag["dag_id"] == DAG_ID and dag["is_paused"] is False
    dag_tasks = up.api("GET", f"/api/v2/dags/{DAG_ID}/tasks")["tasks"]
    for run in runs:
        tis = up.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]
        assert sorted(ti["state"] for ti in tis) == ["success"] * len(dag_tasks), tis
    deadline = time.monotonic() + 60
    while not up.api("GET", f"/api/v2/backfills/{backfill['id']}").get("completed_at"):
        assert time.monotonic() < deadline, "the scheduler never marked the backfill complete"
        time.sleep(2)

    # The embedded warehouse holds the window's plays as the contract says. (Only the window's rows:
    # `up` runs the DAG on its hourly schedule too, so the current hour may be loaded beside it.)
    stack = json.loads((up.state / "stack.json").read_text())
    expected = expected_tables(up.state / "demo", window_start, window_end)
    for table, column in (("songplays", 1), ("time", 0)):
        rows = [r for r in star_rows(stack["warehouse_url"])[table] if window_start <= r[column] < window_end]
        assert not ref.describe_difference(table, expected[table], rows), ref.describe_difference(
            table, expected[table], rows)
    assert expected["songplays"]

    # The grid page in headless Chromium, logged in as admin: the DOM once the app has rendered, and a
    # screenshot (saved under the test's tmp folder and copied to /tmp/sparkify-ui.png).
    proxy = AuthProxy(up.token, up.api_port)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    png = tmp_path / "sparkify-ui.png"
    try:
        page = f"http://127.0.0.1:{up.api_port}/dags/{DAG_ID}"
        dom = chromium_page(chromium, page, proxy.port, ["--dump-dom", f"--screenshot={png}"], tmp_path)
    finally:
        proxy.shutdown()
        proxy.server_close()
    (tmp_path / "grid.html").write_text(dom)
    print(f"\nUI screenshot: {png}\nDOM: {tmp_path / 'grid.html'}")
    with contextlib.suppress(OSError):
        shutil.copy(png, "/tmp/sparkify-ui.png")
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "no screenshot"
    assert png.stat().st_size > 20_000, "a blank screenshot"
    assert 'data-testid="toggle-pause"' in dom and f">{DAG_ID}<" in dom, "not the DAG's page:\n" + dom[-3000:]
    # Each backfilled hour is a column of the grid; each of its task cells shows the state's icon,
    # for success the check mark (Airflow 3.3's UI draws Lucide's "check": M20 6 9 17l-5-5).
    cells = re.findall(
        r'data-testid="grid-(backfill__[^"]+?)-(\w+)"[^>]*>\s*<span data-testid="task-state-badge"[^>]*>'
        r"\s*<svg[^>]*>(.*?)</svg>", dom,
    )
    for run in runs:
        mine = [(task, icon) for run_id, task, icon in cells if run_id == run["dag_run_id"]]
        assert len(mine) == len(dag_tasks), f"{run['dag_run_id']}: {len(mine)} task cells on the grid"
        assert all('d="M20 6 9 17l-5-5"' in icon for _, icon in mine), f"{run['dag_run_id']} not all success: {mine}"
        assert f'href="/dags/{DAG_ID}/runs/{run["dag_run_id"]}/"' in dom


# -- make clean and the interpreter check ------------------------------------------------------------


def test_make_clean_removes_the_state_dir_it_is_given(tmp_path):
    """`make clean` removes STATE_DIR (from the command line here; the environment and .env work the
    same way, through the runner's configuration), not only the default .state/."""
    state = tmp_path / "elsewhere"
    (state / "airflow").mkdir(parents=True)
    (state / "airflow" / "airflow.cfg").write_text("x")
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_NAMES}
    result = subprocess.run(["make", "-s", "clean", f"STATE_DIR={state}"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not state.exists(), result.stdout
    assert f"removed {state}" in result.stdout


def test_make_refuses_another_python_than_3_11(tmp_path):
    """A wrong interpreter fails at once, saying which one is needed, before anything is installed."""
    fake = tmp_path / "python3"
    fake.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Python 3.9.18"; exit 0; fi\nexit 1\n')
    fake.chmod(0o755)
    # -B: run the install recipe even though .venv is up to date; the check comes first, so nothing changes.
    result = subprocess.run(["make", "-s", "-B", "install", f"PYTHON={fake}"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert f"error: Python 3.11 is needed; {fake} is Python 3.9.18" in result.stderr, result.stderr
