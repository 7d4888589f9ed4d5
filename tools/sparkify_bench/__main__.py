"""make bench: the pipeline against its floors, measured side by side in one run on one machine.

    make bench                                   # every section, full sizes (2-3 hours)
    make bench BENCH_ARGS="--quick"              # smoke mode: tiny sizes, every section (~10 min)
    make bench BENCH_ARGS="--only backfill,staging --repeats 5"

Sections (``--only``, comma-separated; default all, run in this order):

``staging``      First-time staging of every song object from moto's S3 server by
                 ``StageToRedshiftOperator.execute()`` (the ``Stage_songs`` task of
                 ``sparkify_etl``), against a plain parallel boto3 GET of the same keys at the best
                 thread count (swept first), same server. Goal: >= 0.8x the floor's objects/s.
``incremental``  The same staging once every object is staged: objects fetched (goal 0), S3 list
                 calls, wall time; once with the listing due, once inside the listing period.
``memory``       Peak RSS of the staging task on generated daily event logs of growing size
                 (default 100 MiB and 1 GiB) and on 100k song objects. Goal: flat, under 200 MB.
``backfill``     Airflow backfills of 24 hourly runs of ``sparkify_etl`` (songs already staged)
                 against the same 24 intervals of ``sparkify_floor`` (tools/sparkify_bench/floor_dag.py:
                 the same shape, tasks that do nothing), same scheduler, executor and metadata
                 database. Wall and CPU time. Goal: pipeline wall <= 1.25x the floor's.
``scale``        One backfill of a whole month (720 hourly runs): wall, runs per minute, a plot of
                 runs completed over time (bench-output/month_backfill.png), and every star table
                 checked against the data contract (tests/reference.py) afterwards.
``sweep``        Backfills of 48 runs over max-active-runs, then over [core] parallelism: the
                 largest value that still helps (>= 5% less wall than every smaller value).
``month``        November 2018 ([2018-11-01, 2018-12-01), songs already staged) loaded three ways on
                 the same stack, the events emptied before each: 720 hourly runs (Airflow's backfill),
                 30 daily runs and 1 run, both triggered with a manual data interval through the
                 REST API (``make run GRAIN=day`` / ``GRAIN=window``; their logical dates never equal
                 an hourly run's, so one metadata database holds all three). Wall, CPU of Airflow's
                 processes, peak RSS of the Stage_events tasks and a checksum of every star table
                 (equal in all three). Then the month as one run from an empty warehouse (songs not
                 yet staged): wall, and its Stage_songs task's objects/s against a boto3 GET of the
                 same objects. Goals: one run >= 50x faster than the hourly runs, daily >= 20x,
                 first-time Stage_songs >= 0.8x the GET floor.

Every ratio comes from the pipeline and its floor run alternately (``--repeats``, default 3,
each), reported as medians with the spread (min-max). Everything runs on a private stack
(sparkify_local.runner's Stack: PostgreSQL for Airflow's metadata and the warehouse, moto's S3
server, Airflow's api-server, scheduler, dag-processor and triggerer with LocalExecutor) under
bench-output/state/, started once and stopped at the end. Results: bench-output/results.json,
bench-output/month_backfill.png, and a Markdown block for docs/performance.md on stdout
(also bench-output/performance-figures.md).

CPU time of a backfill is the CPU of Airflow's four processes and every descendant (LocalExecutor
workers, task supervisors, task processes), read before and after from /proc through psutil:
utime + stime of each live process plus cutime + cstime (the CPU of children it has reaped, so
task processes that exited during the backfill are counted by the process that waited for them).
PostgreSQL's and moto's CPU is reported beside it, the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import struct
import subprocess
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
for _path in (str(ROOT / "plugins"), str(ROOT / "tools")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from sparkify_local.runner import (  # noqa: E402
    Config,
    RunnerError,
    Stack,
    metadata_query,
    redact_url,
    say,
    stop_group,
)

SCRIPT = Path(__file__).resolve()
FLOOR_DAG_FILE = Path(__file__).resolve().parent / "floor_dag.py"
OUT = ROOT / "bench-output"
DATA = (ROOT / ".." / "shared" / "data" / "sparkify").resolve()
ETL, FLOOR = "sparkify_etl", "sparkify_floor"
SECTIONS = ("staging", "incremental", "memory", "backfill", "scale", "sweep", "month")
MONTH = (datetime(2018, 11, 1), datetime(2018, 12, 1))
STAR = ("songplays", "users", "songs", "artists", "time")
MEMORY_BUCKET = "sparkify-bench-memory"
EVENTS_DAY = "2018-11-15"  # the largest daily log of the real data: the seed of the generated ones
WARM_UP_HOUR = datetime(2018, 11, 4)
BACKFILL_START = datetime(2018, 11, 5)
RESET_EVENT_TABLES = (
    "TRUNCATE public.staging_events, public.songplays, public.users, public.time, "
    "public.load_manifest_hours, public.quality_results",
    "DELETE FROM public.load_manifest WHERE source = 'staging_events'",
)
RESET_SONG_STAGING = (
    "TRUNCATE public.staging_songs, public.load_listing",
    "DELETE FROM public.load_manifest WHERE source = 'staging_songs'",
)
GOALS = {
    "backfill": "pipeline wall <= 1.25x the floor's",
    "staging": "pipeline objects/s >= 0.8x the floor's",
    "incremental": "0 objects fetched when everything is staged",
    "memory": "peak RSS flat with size (largest within 10% of smallest) and under 200 MB",
    "month": "one run >= 50x faster than 720 hourly runs, 30 daily runs >= 20x, first-time Stage_songs >= 0.8x GET",
}


@dataclass
class Plan:
    """Sizes of one bench run: full (the figures) or quick (a smoke test)."""

    songs: int | None
    repeats: int
    backfill_hours: int
    get_threads: list[int]
    get_sample: int
    events_mib: list[int]
    memory_songs: int
    scale_start: datetime
    scale_hours: int
    sweep_hours: int
    sweep_mar: list[int]
    sweep_parallelism: list[int]
    settle_timeout: float
    idle_seconds: float

    @classmethod
    def make(cls, args: argparse.Namespace) -> Plan:
        if args.quick:
            plan = cls(songs=300, repeats=2, backfill_hours=3, get_threads=[4, 16], get_sample=300,
                       events_mib=[2, 10], memory_songs=600, scale_start=BACKFILL_START, scale_hours=4,
                       sweep_hours=3, sweep_mar=[1, 3], sweep_parallelism=[4], settle_timeout=30, idle_seconds=10)
        else:
            plan = cls(songs=None, repeats=3, backfill_hours=24, get_threads=[1, 2, 4, 8, 16, 32, 64],
                       get_sample=2000, events_mib=[100, 1024], memory_songs=100_000,
                       scale_start=datetime(2018, 11, 1), scale_hours=720, sweep_hours=48,
                       sweep_mar=[1, 2, 4, 8, 16], sweep_parallelism=[2, 4, 8, 16], settle_timeout=60,
                       idle_seconds=30)
        for name in ("repeats", "memory_songs"):
            if getattr(args, name) is not None:
                setattr(plan, name, getattr(args, name))
        if args.songs is not None:
            plan.songs = args.songs or None
        if args.events_mib:
            plan.events_mib = args.events_mib
        return plan


# -- small helpers ----------------------------------------------------------------------------------


def spread(values: list[float]) -> dict[str, Any]:
    """Median, min, max and the values themselves."""
    values = [v for v in values if v is not None]
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0, "values": []}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "values": values}


def fmt(stat: dict[str, Any], unit: str = "", digits: int = 1) -> str:
    if not stat or stat.get("median") is None:
        return "n/a"
    m, lo, hi = (f"{stat[k]:.{digits}f}" for k in ("median", "min", "max"))
    return f"{m}{unit} (spread {lo}-{hi}{unit}, n={stat['n']})"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def pg_query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    return metadata_query(url, sql, params)


def pg_execute(url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def process_cpu(pid: int | None) -> float:
    """CPU seconds of a process tree: user+system of each live process plus what it has reaped."""
    import psutil

    if not pid:
        return 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return total


def machine() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    info: dict[str, Any] = {"hostname": platform.node(), "kernel": platform.release(),
                            "python": platform.python_version(), "nproc": len(os.sched_getaffinity(0)),
                            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
        info["cpu_model"] = models[0].strip() if models else platform.processor() or "unknown"
        mhz = re.findall(r"^cpu MHz\s*:\s*([\d.]+)$", cpuinfo, re.M)
        info["cpu_mhz"] = float(mhz[0]) if mhz else None
        meminfo = Path("/proc/meminfo").read_text()
        info["memory_gib"] = round(int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1)) / 1024**2, 1)
    except OSError:
        pass
    info["loadavg_start"] = os.getloadavg()
    for package in ("apache-airflow", "apache-airflow-task-sdk", "apache-airflow-providers-amazon", "moto",
                    "boto3", "psycopg"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            info[package] = None
    return info


# -- the stack --------------------------------------------------------------------------------------


class BenchStack(Stack):
    """The local run's Stack with its own DAG folder (sparkify_etl + sparkify_floor) and bench helpers."""

    def __init__(self, config: Config, dags_folder: Path, max_parallelism: int) -> None:
        super().__init__(config)
        self.dags_folder = dags_folder
        self.max_parallelism = max_parallelism
        self.airflow_ready = False

    def airflow_env(self, scheduled_runs: bool = True) -> dict[str, str]:
        env = super().airflow_env(scheduled_runs)
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(self.dags_folder)
        # The DAGs' max_active_tasks is fixed when they are parsed; keep it above every parallelism the
        # sweep tries, so that [core] parallelism (the executor's slots) is what the sweep varies.
        env["AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG"] = str(max(self.max_parallelism, self.config.parallelism))
        env["SPARKIFY_LATE_AFTER_MINUTES"] = env.get("SPARKIFY_LATE_AFTER_MINUTES", "60")
        return env

    def postgres_pid(self) -> int | None:
        try:
            return int((self.pg.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError, AttributeError):
            return None

    def cpu(self) -> dict[str, float]:
        return {
            "airflow": sum(process_cpu(p.pid) for p in self.processes.values()),
            "postgres": process_cpu(self.postgres_pid()),
            "moto": process_cpu(self.moto.process.pid if self.moto and self.moto.process else None),
        }

    def restart_scheduler(self, parallelism: int) -> None:
        """Restart the scheduler (and so LocalExecutor) with another [core] parallelism."""
        before = pg_query(self.metadata_url, "SELECT COALESCE(MAX(id), 0) FROM job WHERE job_type = 'SchedulerJob'")
        stop_group(self.processes.pop("scheduler").pid, "scheduler")
        self.config.parallelism = parallelism
        log = open(self.logs / "scheduler.log", "ab")  # noqa: SIM115 - owned by the child
        self.processes["scheduler"] = subprocess.Popen(
            [sys.executable, "-m", "airflow", "scheduler", "--skip-serve-logs"], env=self.airflow_env(False),
            stdout=log, stderr=subprocess.STDOUT, cwd=self.config.root, start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            rows = pg_query(self.metadata_url, "SELECT 1 FROM job WHERE job_type = 'SchedulerJob' AND id > %s "
                            "AND state = 'running'", (before[0][0],))
            if rows:
                return
            if self.processes["scheduler"].poll() is not None:
                raise RunnerError(f"the scheduler exited on restart; see {self.logs / 'scheduler.log'}")
            time.sleep(1)
        raise RunnerError("the restarted scheduler did not start within 120 s")


# -- PNG without matplotlib ---------------------------------------------------------------------------

_FONT = """
A .#. #.# ### #.# #.#|B ##. #.# ##. #.# ##.|C .## #.. #.. #.. .##|D ##. #.# #.# #.# ##.|E ### #.. ##. #.. ###
F ### #.. ##. #.. #..|G .## #.. #.# #.# .##|H #.# #.# ### #.# #.#|I ### .#. .#. .#. ###|J ..# ..# ..# #.# .#.
K #.# #.# ##. #.# #.#|L #.. #.. #.. #.. ###|M #.# ### ### #.# #.#|N ##. #.# #.# #.# #.#|O .#. #.# #.# #.# .#.
P ##. #.# ##. #.. #..|Q .#. #.# #.# ##. .##|R ##. #.# ##. #.# #.#|S .## #.. .#. ..# ##.|T ### .#. .#. .#. .#.
U #.# #.# #.# #.# ###|V #.# #.# #.# #.# .#.|W #.# #.# ### ### #.#|X #.# #.# .#. #.# #.#|Y #.# #.# .#. .#. .#.
Z ### ..# .#. #.. ###|0 ### #.# #.# #.# ###|1 .#. ##. .#. .#. ###|2 ##. ..# .#. #.. ###|3 ##. ..# .#. ..# ##.
4 #.# #.# ### ..# ..#|5 ### #.. ##. ..# ##.|6 .## #.. ### #.# ###|7 ### ..# .#. .#. .#.|8 ### #.# ### #.# ###
9 ### #.# ### ..# ##.|- ... ... ### ... ...|_ ... ... ... ... ###|: ... .#. ... .#. ...|. ... ... ... ... .#.
( .#. #.. #.. #.. .#.|) .#. ..# ..# ..# .#.|, ... ... ... .#. #..|/ ..# ..# .#. #.. #..|= ... ### ... ### ...
"""
#: A 3x5 pixel font (rows top to bottom) for the plot's labels when matplotlib is not installed.
GLYPHS = {entry.strip()[0]: entry.strip()[2:].replace(" ", "")
          for entry in _FONT.replace("\n", "|").split("|") if entry.strip()}
GLYPHS[" "] = "." * 15


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(b"\xff" * width * height * 3)

    def dot(self, x: int, y: int, color: tuple[int, int, int]) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = (y * self.width + x) * 3
            self.pixels[i:i + 3] = bytes(color)

    def line(self, x0: int, y0: int, x1: int, y1: int, color: tuple[int, int, int], width: int = 1) -> None:
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        while True:
            for w in range(width):
                self.dot(x0, y0 + w, color)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def text(self, x: int, y: int, text: str, color=(0, 0, 0), scale: int = 2) -> None:
        for n, ch in enumerate(text.upper()):
            bits = GLYPHS.get(ch, GLYPHS[" "])
            for row in range(5):
                for col in range(3):
                    if bits[row * 3 + col] == "#":
                        for a in range(scale):
                            for b in range(scale):
                                self.dot(x + n * 4 * scale + col * scale + a, y + row * scale + b, color)

    def png(self) -> bytes:
        rows = b"".join(b"\x00" + bytes(self.pixels[y * self.width * 3:(y + 1) * self.width * 3])
                        for y in range(self.height))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(
            b"IEND", b"")


def nice_step(span: float, ticks: int = 6) -> float:
    raw = max(span, 1e-9) / ticks
    power = 10 ** int(f"{raw:e}".split("e")[1])
    for m in (1, 2, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


def plot_runs(path: Path, minutes: list[float], title: str) -> str:
    """Runs completed over time; matplotlib if installed, else a plain PNG written here."""
    minutes = sorted(minutes)
    counts = list(range(1, len(minutes) + 1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
        ax.step([0, *minutes], [0, *counts], where="post")
        ax.set_xlabel("minutes since the backfill was created")
        ax.set_ylabel("runs completed")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return "matplotlib"
    except ImportError:
        pass
    w, h, left, right, top, bottom = 820, 520, 80, 30, 50, 60
    c = Canvas(w, h)
    x_max = max(minutes[-1] if minutes else 1, 1e-3)
    y_max = max(len(minutes), 1)
    xs, ys = nice_step(x_max), nice_step(y_max)
    x_top, y_top = (int(x_max / xs) + 1) * xs, (int(y_max / ys) + 1) * ys

    def px(m: float) -> int:
        return left + round(m / x_top * (w - left - right))

    def py(n: float) -> int:
        return h - bottom - round(n / y_top * (h - top - bottom))

    grid, axis, blue = (225, 225, 225), (0, 0, 0), (31, 119, 180)
    tick = 0.0
    while tick <= x_top + 1e-9:
        c.line(px(tick), top, px(tick), h - bottom, grid)
        label = f"{tick:g}"
        c.text(px(tick) - len(label) * 4, h - bottom + 8, label)
        tick += xs
    tick = 0.0
    while tick <= y_top + 1e-9:
        c.line(left, py(tick), w - right, py(tick), grid)
        label = f"{tick:g}"
        c.text(left - 8 - len(label) * 8, py(tick) - 5, label)
        tick += ys
    c.line(left, top, left, h - bottom, axis)
    c.line(left, h - bottom, w - right, h - bottom, axis)
    x0, y0 = px(0), py(0)
    for m, n in zip(minutes, counts, strict=True):
        x1, y1 = px(m), py(n)
        c.line(x0, y0, x1, y0, blue, 2)
        c.line(x1, y0, x1, y1, blue, 2)
        x0, y0 = x1, y1
    c.text(left, 8, title.upper())
    c.text(left + 150, h - 25, "MINUTES SINCE THE BACKFILL WAS CREATED")
    c.text(8, top - 16, "RUNS COMPLETED")
    path.write_bytes(c.png())
    return "built-in PNG writer"


# -- subprocess drivers (run with the stack's environment) --------------------------------------------


def driver_stage(argv: list[str]) -> int:
    """`bench.py _stage …`: StageToRedshiftOperator.execute() once; prints one JSON line."""
    import resource

    parser = argparse.ArgumentParser(prog="bench.py _stage")
    parser.add_argument("--table", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key")
    parser.add_argument("--prefix")
    parser.add_argument("--json-format", default="auto")
    parser.add_argument("--dedupe-key")
    parser.add_argument("--source-key-column")
    parser.add_argument("--hour-counts", action="store_true")
    parser.add_argument("--listing-period-hours", type=float, default=24)
    parser.add_argument("--fetch-threads", type=int, default=16)
    parser.add_argument("--interval-start", default="2018-11-05T00:00:00")
    args = parser.parse_args(argv)
    import logging

    import psutil

    logging.basicConfig(level=logging.WARNING)
    from sparkify.operators import StageToRedshiftOperator
    from sparkify.resources import peak_rss_mb

    op = StageToRedshiftOperator(
        task_id="Stage_songs" if args.prefix else "Stage_events", table=args.table, s3_bucket=args.bucket,
        s3_key=args.key, s3_prefix=args.prefix, json_format=args.json_format, dedupe_key=args.dedupe_key,
        source_key_column=args.source_key_column, hour_counts=args.hour_counts,
        listing_period_hours=args.listing_period_hours, fetch_threads=args.fetch_threads,
    )
    start = datetime.fromisoformat(args.interval_start).replace(tzinfo=UTC)
    context = {"run_id": f"bench__{time.time_ns()}", "data_interval_start": start,
               "data_interval_end": start + timedelta(hours=1), "logical_date": start,
               "dag": argparse.Namespace(dag_id=ETL), "params": {}}
    baseline = psutil.Process().memory_info().rss / 2**20
    usage0, began = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    result = op.execute(context)
    wall = time.perf_counter() - began
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    print(json.dumps({"result": result, "wall": wall, "cpu": cpu, "baseline_rss_mb": baseline,
                      "peak_rss_mb": peak_rss_mb()}, default=str))
    return 0


def driver_get(argv: list[str]) -> int:
    """`bench.py _get …`: GET every key of a list with boto3 on N threads; prints one JSON line."""
    parser = argparse.ArgumentParser(prog="bench.py _get")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--keys-file", type=Path, required=True)
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args(argv)
    from sparkify_local.seed import s3_client

    keys = args.keys_file.read_text().split()
    client = s3_client(args.endpoint, threads=args.threads)

    def get(key: str) -> int:
        return len(client.get_object(Bucket=args.bucket, Key=key)["Body"].read())

    began = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        total = sum(pool.map(get, keys))
    wall = time.perf_counter() - began
    print(json.dumps({"objects": len(keys), "bytes": total, "wall": wall}))
    return 0


def driver_shape(argv: list[str]) -> int:
    """`bench.py _shape FOLDER`: task ids, edges and operator kinds of the DAGs in a folder."""
    from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=argv[0])
    if bag.import_errors:
        print(json.dumps({"errors": {k: str(v)[-500:] for k, v in bag.import_errors.items()}}))
        return 1
    shape = {
        dag_id: {t.task_id: {"downstream": sorted(t.downstream_task_ids), "kind": t.task_type}
                 for t in dag.tasks}
        for dag_id, dag in bag.dags.items()
    }
    print(json.dumps({"dags": shape}))
    return 0


# -- the bench ----------------------------------------------------------------------------------------


@dataclass
class Backfill:
    dag_id: str
    runs: int
    wall: float  # backfill created -> last run finished, from the metadata database's clock
    cpu: dict[str, float]
    succeeded: int
    command: str
    max_active_runs: int
    parallelism: int
    completions: list[float] = field(default_factory=list)  # minutes after creation, per run
    failures: list[str] = field(default_factory=list)


class Bench:
    def __init__(self, args: argparse.Namespace, plan: Plan) -> None:
        self.args, self.plan = args, plan
        self.results: dict[str, Any] = {"plan": {k: (v.isoformat() if isinstance(v, datetime) else v)
                                                 for k, v in plan.__dict__.items()},
                                        "quick": args.quick, "sections": {}}
        self.state = OUT / "state"
        self.source = DATA
        self.stack: BenchStack | None = None
        self.song_keys: list[str] = []
        self.bench_dbs: dict[str, str] = {}
        self.idle: dict[str, float] = {"airflow": 0.0, "postgres": 0.0, "moto": 0.0}

    # -- setup ------------------------------------------------------------------------------------

    def prepare_state(self) -> None:
        """A fresh state folder (stopping a PostgreSQL left running there by an interrupted bench)."""
        from sparkify_local.pgserver import PostgresServer

        data = self.state / "pg" / "data"
        location = self.state / "pg" / "data.location"
        if data.exists() or location.exists():
            real = Path(location.read_text().strip()) if location.exists() else data
            PostgresServer(data).stop()
            if location.exists():
                shutil.rmtree(real.parent, ignore_errors=True)
        shutil.rmtree(self.state, ignore_errors=True)
        self.state.mkdir(parents=True)
        if self.plan.songs:  # a source folder with the first N song files and every daily log
            self.source = self.state / "source"
            songs = sorted((DATA / "song_data").rglob("*.json"))[: self.plan.songs]
            for path in songs:
                target = self.source / path.relative_to(DATA)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(path)
            (self.source / "log_data").symlink_to(DATA / "log_data")
            (self.source / "log_json_path.json").symlink_to(DATA / "log_json_path.json")
        self.song_keys = sorted(p.relative_to(self.source).as_posix()
                                for p in (self.source / "song_data").rglob("*.json"))
        dags = self.state / "dags"
        dags.mkdir()
        shutil.copy2(ROOT / "dags" / f"{ETL}.py", dags / f"{ETL}.py")
        floor = FLOOR_DAG_FILE.read_text()
        if self.args.floor_all_tasks:
            floor = floor.replace("\nEMPTY_ENDS = True\n", "\nEMPTY_ENDS = False\n")
        (dags / f"{FLOOR}.py").write_text(floor)

    def start(self) -> None:
        self.prepare_state()
        environ = {
            "STATE_DIR": str(self.state), "SOURCE": str(self.source), "START": "2018-11-01", "END": "2018-12-01",
            "WAREHOUSE_URL": "", "PG_PORT": "", "S3_PORT": "", "AIRFLOW_PORT": "",
            "MAX_ACTIVE_RUNS": str(self.args.max_active_runs), "AIRFLOW_PARALLELISM": str(self.args.parallelism),
            "REPROCESS": "completed", "BUCKET": "sparkify-bench",
        }
        config = Config.load(ROOT, environ)
        max_parallelism = max([self.args.parallelism, *self.plan.sweep_parallelism])
        self.stack = BenchStack(config, self.state / "dags", max_parallelism)
        self.stack.scheduled_runs = False
        self.stack.start_servers()
        self.stack.airflow_home.mkdir(parents=True, exist_ok=True)
        say(f"• seeding s3://{config.bucket}/ from {self.source} ({len(self.song_keys)} song objects, 30 daily logs)")
        began = time.monotonic()
        self.stack.seed(until_now=False)
        self.results["seed_seconds"] = time.monotonic() - began

    def ensure_airflow(self) -> None:
        stack = self.stack
        if stack.airflow_ready:
            return
        stack.prepare_airflow()
        shape = self.driver(["_shape", str(stack.dags_folder)], env=stack.airflow_env(False))
        if "errors" in shape:
            raise RunnerError(f"the bench DAG folder does not parse: {shape['errors']}")
        etl, floor = shape["dags"][ETL], shape["dags"][FLOOR]
        edges = {t: v["downstream"] for t, v in etl.items()}
        if edges != {t: v["downstream"] for t, v in floor.items()}:
            raise RunnerError(f"{FLOOR} does not have {ETL}'s shape: {floor} vs {etl}")
        self.results["floor_shape"] = {t: f"{etl[t]['kind']} -> {floor[t]['kind']}" for t in etl}
        say(f"  {FLOOR} has {ETL}'s {len(etl)} task ids and edges; operators: "
            + ", ".join(f"{t} {v}" for t, v in self.results["floor_shape"].items()))
        stack.start_airflow()
        for dag_id in (ETL, FLOOR):
            stack.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        stack.airflow_ready = True

    def bench_db(self, name: str, fresh: bool = False) -> str:
        """A separate warehouse database with every table, for the staging drivers."""
        stack = self.stack
        if fresh and name in self.bench_dbs:
            pg_execute(stack.pg.url(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.bench_dbs.pop(name)
        if name not in self.bench_dbs:
            url = stack.pg.ensure_database(name)
            env = {**stack.airflow_env(False), "AIRFLOW_CONN_REDSHIFT": url}
            result = subprocess.run([sys.executable, "-m", "sparkify.tables", "create", "--conn-id", "redshift"],
                                    env=env, capture_output=True, text=True, cwd=ROOT)
            if result.returncode != 0:
                raise RunnerError(f"creating the tables in {name} failed:\n{result.stderr[-2000:]}")
            self.bench_dbs[name] = url
        return self.bench_dbs[name]

    def driver(self, argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
        result = subprocess.run([sys.executable, str(SCRIPT), *argv], env=env or self.stack.airflow_env(False),
                                capture_output=True, text=True, cwd=ROOT)
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        if result.returncode != 0 or not lines:
            raise RunnerError(f"`bench.py {' '.join(argv[:3])} …` failed ({result.returncode}):\n"
                              f"{(result.stderr or result.stdout)[-3000:]}")
        return json.loads(lines[-1])

    def stage(self, db: str, *, bucket: str, prefix: str | None = None, key: str | None = None,
              listing_period_hours: float = 24) -> tuple[dict[str, Any], str]:
        """Run the staging driver on warehouse ``db``; (its figures, the command that produced them)."""
        if prefix:
            argv = ["_stage", "--table", "staging_songs", "--bucket", bucket, "--prefix", prefix, "--json-format",
                    "auto", "--dedupe-key", "song_id"]
        else:
            argv = ["_stage", "--table", "staging_events", "--bucket", bucket, "--key", key, "--json-format",
                    f"s3://{bucket}/log_json_path.json", "--source-key-column", "source_key", "--hour-counts"]
        argv += ["--listing-period-hours", f"{listing_period_hours:g}"]
        env = {**self.stack.airflow_env(False), "AIRFLOW_CONN_REDSHIFT": self.bench_dbs[db]}
        command = (f"make bench BENCH_ARGS={shlex.quote(shlex.join(argv))}   "
                   f"# StageToRedshiftOperator.execute() as in {ETL}, warehouse database {db}")
        return self.driver(argv, env=env), command

    # -- backfills ----------------------------------------------------------------------------------

    def settle(self) -> None:
        """Wait until Airflow has marked every backfill complete (a few seconds after its last run)."""
        deadline = time.monotonic() + self.plan.settle_timeout
        while True:
            open_ids = pg_query(self.stack.metadata_url, "SELECT id FROM backfill WHERE completed_at IS NULL")
            if not open_ids:
                return
            if time.monotonic() > deadline:
                for (backfill_id,) in open_ids:
                    self.stack.api("PUT", f"/api/v2/backfills/{backfill_id}/cancel")
                time.sleep(2)
                return
            time.sleep(1)

    def backfill(self, dag_id: str, start: datetime, hours: int, max_active_runs: int | None = None,
                 quiet: bool = False) -> Backfill:
        stack = self.stack
        self.settle()
        mar = max_active_runs or self.args.max_active_runs
        last = start + timedelta(hours=hours - 1)  # --to-date is inclusive
        body = {"dag_id": dag_id, "from_date": iso(start), "to_date": iso(last), "max_active_runs": mar,
                "reprocess_behavior": "completed"}
        command = (f"airflow backfill create --dag-id {dag_id} --from-date {iso(start)} --to-date {iso(last)} "
                   f"--max-active-runs {mar} --reprocess-behavior completed   "
                   f"# [core] parallelism {stack.config.parallelism}, LocalExecutor"
                   + ("" if self.args.via_cli else "; sent as POST /api/v2/backfills"))
        cpu0 = stack.cpu()
        if self.args.via_cli:
            args = command.split("#")[0].split()[1:]
            stack.airflow(*args)
            backfill_id = pg_query(stack.metadata_url, "SELECT MAX(id) FROM backfill WHERE dag_id = %s",
                                   (dag_id,))[0][0]
        else:
            backfill_id = stack.api("POST", "/api/v2/backfills", body)["id"]
        if not quiet:
            say(f"  {command}")
        poll, last_report, began = (1.0 if hours <= 48 else 2.0), time.monotonic(), time.monotonic()
        while True:
            total, done, ok = pg_query(
                stack.metadata_url,
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE dr.state IN ('success', 'failed')), "
                "COUNT(*) FILTER (WHERE dr.state = 'success') FROM backfill_dag_run b "
                "JOIN dag_run dr ON dr.id = b.dag_run_id WHERE b.backfill_id = %s", (backfill_id,))[0]
            if total and done == total:
                break
            for name, process in stack.processes.items():
                if process.poll() is not None:
                    raise RunnerError(f"Airflow's {name} stopped; see {stack.logs / name}.log")
            if time.monotonic() - last_report > 60:
                say(f"    {done}/{total} runs done after {time.monotonic() - began:.0f} s")
                last_report = time.monotonic()
            time.sleep(poll)
        cpu1 = stack.cpu()
        created, rows = pg_query(stack.metadata_url, "SELECT created_at FROM backfill WHERE id = %s",
                                 (backfill_id,))[0][0], pg_query(
            stack.metadata_url,
            "SELECT dr.end_date, dr.state, dr.run_id FROM backfill_dag_run b JOIN dag_run dr ON dr.id = b.dag_run_id "
            "WHERE b.backfill_id = %s", (backfill_id,))
        wall = (max(r[0] for r in rows) - created).total_seconds()
        failures = []
        for _, state, run_id in rows:
            if state != "success":
                failed = pg_query(stack.metadata_url, "SELECT task_id FROM task_instance WHERE dag_id = %s AND "
                                  "run_id = %s AND state = 'failed'", (dag_id, run_id))
                failures.append(f"{run_id}: {', '.join(t for (t,) in failed) or state}")
        result = Backfill(dag_id=dag_id, runs=total, wall=wall,
                          cpu={k: cpu1[k] - cpu0[k] for k in cpu0}, succeeded=ok, command=command,
                          max_active_runs=mar, parallelism=stack.config.parallelism,
                          completions=sorted((r[0] - created).total_seconds() / 60 for r in rows),
                          failures=failures)
        if not quiet:
            say(f"    {dag_id}: {ok}/{total} runs succeeded, wall {wall:.1f} s, Airflow CPU "
                f"{result.cpu['airflow']:.1f} s (PostgreSQL {result.cpu['postgres']:.1f} s, "
                f"moto {result.cpu['moto']:.1f} s)")
            for failure in failures[:5]:
                say(f"    FAILED {failure} (logs in {stack.airflow_home / 'logs'})")
        return result

    def reset_events(self) -> None:
        """Empty what the hourly loads wrote; the songs stay staged and loaded."""
        pg_execute(self.stack.warehouse_url, *RESET_EVENT_TABLES)

    def warm_up(self) -> None:
        if self.results.get("warm_up"):
            return
        say(f"• warm-up (untimed): one run of each DAG for {WARM_UP_HOUR:%Y-%m-%dT%H:%M}; "
            f"{ETL}'s stages the {len(self.song_keys)} songs and lists song_data/ once")
        etl = self.backfill(ETL, WARM_UP_HOUR, 1)
        floor = self.backfill(FLOOR, WARM_UP_HOUR, 1)
        if etl.succeeded != 1 or floor.succeeded != 1:
            raise RunnerError(f"the warm-up runs failed: {etl.failures + floor.failures}")
        self.results["warm_up"] = {"etl_wall": etl.wall, "floor_wall": floor.wall}
        self.settle()
        say(f"• idle: CPU of the stack's processes over {self.plan.idle_seconds:g} s with nothing to run")
        cpu0, began = self.stack.cpu(), time.monotonic()
        time.sleep(self.plan.idle_seconds)
        cpu1, seconds = self.stack.cpu(), time.monotonic() - began
        self.idle = {k: (cpu1[k] - cpu0[k]) / seconds for k in cpu0}
        self.results["idle_cpu_per_s"] = self.idle
        say("    " + ", ".join(f"{k} {v:.3f} CPU-s/s" for k, v in self.idle.items()))

    # -- sections -------------------------------------------------------------------------------------

    def section_backfill(self) -> dict[str, Any]:
        self.ensure_airflow()
        self.warm_up()
        hours = self.plan.backfill_hours
        say(f"• backfill: {hours} hourly runs from {BACKFILL_START:%Y-%m-%dT%H:%M}, {ETL} and {FLOOR} alternately, "
            f"{self.plan.repeats}x each")
        runs: dict[str, list[Backfill]] = {ETL: [], FLOOR: []}
        for _ in range(self.plan.repeats):
            self.reset_events()
            runs[ETL].append(self.backfill(ETL, BACKFILL_START, hours))
            runs[FLOOR].append(self.backfill(FLOOR, BACKFILL_START, hours))
        ok = all(b.succeeded == b.runs for bs in runs.values() for b in bs)
        walls = {d: spread([b.wall for b in bs]) for d, bs in runs.items()}
        cpus = {d: spread([b.cpu["airflow"] for b in bs]) for d, bs in runs.items()}
        net = {d: spread([b.cpu["airflow"] - self.idle["airflow"] * b.wall for b in bs]) for d, bs in runs.items()}
        pairs = list(zip(runs[ETL], runs[FLOOR], strict=True))
        wall_ratio = walls[ETL]["median"] / walls[FLOOR]["median"]
        cpu_ratio = cpus[ETL]["median"] / cpus[FLOOR]["median"] if cpus[FLOOR]["median"] else None
        return {
            "runs": hours, "all_succeeded": ok,
            "command": {d: bs[0].command for d, bs in runs.items()},
            "wall_s": walls, "airflow_cpu_s": cpus, "airflow_cpu_above_idle_s": net,
            "task_instances_run": {ETL: hours * 8, FLOOR: hours * (8 if not self.args.floor_all_tasks else 10)},
            "postgres_cpu_s": {d: spread([b.cpu["postgres"] for b in bs]) for d, bs in runs.items()},
            "moto_cpu_s": {d: spread([b.cpu["moto"] for b in bs]) for d, bs in runs.items()},
            "wall_ratio": wall_ratio, "wall_ratio_pairs": spread([e.wall / f.wall for e, f in pairs]),
            "cpu_ratio": cpu_ratio,
            "cpu_ratio_pairs": spread([e.cpu["airflow"] / f.cpu["airflow"] for e, f in pairs if f.cpu["airflow"]]),
            "seconds_per_run": {d: walls[d]["median"] / hours for d in runs},
            "failures": [f for bs in runs.values() for b in bs for f in b.failures],
            "goal": GOALS["backfill"], "pass": ok and wall_ratio <= 1.25,
        }

    def section_staging(self) -> dict[str, Any]:
        stack, plan = self.stack, self.plan
        self.bench_db("bench_staging")
        keys_file = self.state / "song_keys.txt"
        keys_file.write_text("\n".join(self.song_keys) + "\n")
        sample = self.state / "song_keys_sample.txt"
        sample.write_text("\n".join(self.song_keys[: plan.get_sample]) + "\n")
        bucket, endpoint = stack.config.bucket, stack.moto.endpoint

        def get(threads: int, keys: Path) -> tuple[dict[str, Any], str]:
            argv = ["_get", "--endpoint", endpoint, "--bucket", bucket, "--keys-file", str(keys.relative_to(ROOT)),
                    "--threads", str(threads)]
            command = (f"make bench BENCH_ARGS={shlex.quote(shlex.join(argv))}"
                       f"   # boto3 get_object of each key, {threads} threads")
            return self.driver(argv), command

        n_sample = min(plan.get_sample, len(self.song_keys))
        say(f"• staging: boto3 GET floor, thread sweep on {n_sample} keys: {plan.get_threads}")
        sweep = {}
        for threads in plan.get_threads:
            figures, _ = get(threads, sample)
            sweep[threads] = figures["objects"] / figures["wall"]
            say(f"    {threads:3d} threads: {sweep[threads]:.0f} objects/s")
        best = max(sweep, key=sweep.get)
        say(f"• staging: first-time staging of {len(self.song_keys)} song objects vs GET at {best} threads, "
            f"alternately, {plan.repeats}x each")
        pipeline, floor, rss = [], [], []
        commands = {}
        for _ in range(plan.repeats):
            pg_execute(self.bench_dbs["bench_staging"], *RESET_SONG_STAGING)
            figures, commands["pipeline"] = self.stage("bench_staging", bucket=bucket, prefix="song_data")
            staged = figures["result"]["staged_objects"]
            pipeline.append(staged / figures["wall"])
            rss.append(figures["peak_rss_mb"])
            say(f"    pipeline: {staged} objects in {figures['wall']:.1f} s = {pipeline[-1]:.0f} objects/s "
                f"({figures['result']['list_calls']} list calls, peak RSS {figures['peak_rss_mb']:.0f} MB)")
            got, commands["floor"] = get(best, keys_file)
            floor.append(got["objects"] / got["wall"])
            say(f"    floor:    {got['objects']} objects in {got['wall']:.1f} s = {floor[-1]:.0f} objects/s")
        ratio = statistics.median(pipeline) / statistics.median(floor)
        return {
            "objects": len(self.song_keys), "command": commands, "thread_sweep_objects_per_s": sweep,
            "best_threads": best, "pipeline_objects_per_s": spread(pipeline), "floor_objects_per_s": spread(floor),
            "ratio": ratio, "ratio_pairs": spread([p / f for p, f in zip(pipeline, floor, strict=True)]),
            "pipeline_peak_rss_mb": spread(rss), "goal": GOALS["staging"], "pass": ratio >= 0.8,
        }

    def section_incremental(self) -> dict[str, Any]:
        bucket = self.stack.config.bucket
        self.bench_db("bench_staging")
        rows = pg_query(self.bench_dbs["bench_staging"],
                        "SELECT COUNT(*) FROM public.load_manifest WHERE source = 'staging_songs'")
        if rows[0][0] < len(self.song_keys):
            say("• incremental: staging every song once first (untimed)")
            pg_execute(self.bench_dbs["bench_staging"], *RESET_SONG_STAGING)
            self.stage("bench_staging", bucket=bucket, prefix="song_data")
        say(f"• incremental: {len(self.song_keys)} objects already staged; listing due (period 0 h) and inside the "
            f"listing period (24 h), {self.plan.repeats}x each")
        out: dict[str, Any] = {"objects": len(self.song_keys)}
        fetched_ok = True
        for label, period in (("listing_due", 0), ("within_period", 24)):
            walls, fetched, lists = [], [], []
            command = ""
            for _ in range(self.plan.repeats):
                figures, command = self.stage("bench_staging", bucket=bucket, prefix="song_data",
                                              listing_period_hours=period)
                walls.append(figures["wall"])
                fetched.append(figures["result"]["fetched_objects"])
                lists.append(figures["result"]["list_calls"])
            fetched_ok &= max(fetched) == 0
            out[label] = {"command": command, "wall_s": spread(walls), "fetched_objects": spread(fetched),
                          "list_calls": spread(lists)}
            say(f"    {label}: fetched {max(fetched)} objects, {max(lists)} list calls, "
                f"wall {fmt(spread(walls), ' s', 2)}")
        out.update(goal=GOALS["incremental"], **{"pass": fetched_ok})
        return out

    def section_memory(self) -> dict[str, Any]:
        stack, plan = self.stack, self.plan
        from sparkify_local.seed import ensure_bucket, s3_client

        client = s3_client(stack.moto.endpoint, threads=16)
        ensure_bucket(client, MEMORY_BUCKET, "us-west-2")
        client.upload_file(str(DATA / "log_json_path.json"), MEMORY_BUCKET, "log_json_path.json")
        cache = OUT / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        events: list[dict[str, Any]] = []
        say(f"• memory: staging generated daily logs of {plan.events_mib} MiB (events of {EVENTS_DAY}, repeated)")
        for mib in plan.events_mib:
            path = cache / f"events-{mib}MiB.json"
            lines = make_events_file(DATA / "log_data" / "2018" / "11" / f"{EVENTS_DAY}-events.json", mib << 20, path)
            key = f"log_data/2018/11/{EVENTS_DAY}-events-{mib}MiB.json"
            from boto3.s3.transfer import TransferConfig

            client.upload_file(str(path), MEMORY_BUCKET, key, Config=TransferConfig(multipart_threshold=5 << 30))
            self.bench_db("bench_memory", fresh=True)
            figures, command = self.stage("bench_memory", bucket=MEMORY_BUCKET, key=key)
            events.append({"mib": mib, "events": lines, "rows": figures["result"].get("rows"),
                           "wall_s": figures["wall"], "peak_rss_mb": figures["peak_rss_mb"],
                           "baseline_rss_mb": figures["baseline_rss_mb"], "command": command})
            say(f"    {mib:5d} MiB ({lines} events): staged {figures['result'].get('rows')} rows in "
                f"{figures['wall']:.1f} s, peak RSS {figures['peak_rss_mb']:.0f} MB "
                f"(after imports {figures['baseline_rss_mb']:.0f} MB)")
            client.delete_object(Bucket=MEMORY_BUCKET, Key=key)
        songs: list[dict[str, Any]] = []
        if plan.memory_songs:
            say(f"• memory: staging {len(self.song_keys)} song objects, then {plan.memory_songs} generated ones")
            self.bench_db("bench_memory", fresh=True)
            figures, command = self.stage("bench_memory", bucket=stack.config.bucket, prefix="song_data")
            songs.append({"objects": figures["result"]["staged_objects"], "wall_s": figures["wall"],
                          "peak_rss_mb": figures["peak_rss_mb"], "baseline_rss_mb": figures["baseline_rss_mb"],
                          "command": command})
            began = time.monotonic()
            upload_generated_songs(client, self.source, self.song_keys, plan.memory_songs)
            say(f"    uploaded {plan.memory_songs} generated song objects in {time.monotonic() - began:.0f} s")
            self.bench_db("bench_memory", fresh=True)
            figures, command = self.stage("bench_memory", bucket=MEMORY_BUCKET, prefix="song_data")
            songs.append({"objects": figures["result"]["staged_objects"], "wall_s": figures["wall"],
                          "peak_rss_mb": figures["peak_rss_mb"], "baseline_rss_mb": figures["baseline_rss_mb"],
                          "command": command})
            for s in songs:
                say(f"    {s['objects']:6d} song objects: {s['wall_s']:.1f} s, peak RSS {s['peak_rss_mb']:.0f} MB")
            empty_bucket(client, MEMORY_BUCKET)
        pg_execute(stack.pg.url(), 'DROP DATABASE IF EXISTS "bench_memory" WITH (FORCE)')
        self.bench_dbs.pop("bench_memory", None)

        def flat(series: list[dict[str, Any]]) -> bool | None:
            if len(series) < 2:
                return None
            peaks = [s["peak_rss_mb"] for s in series]
            return max(peaks) < 200 and peaks[-1] <= peaks[0] * 1.10

        verdicts = [v for v in (flat(events), flat(songs)) if v is not None]
        return {"events": events, "songs": songs, "events_flat": flat(events), "songs_flat": flat(songs),
                "goal": GOALS["memory"], "pass": all(verdicts) if verdicts else None}

    def section_scale(self) -> dict[str, Any]:
        self.ensure_airflow()
        self.warm_up()
        plan = self.plan
        start, end = plan.scale_start, plan.scale_start + timedelta(hours=plan.scale_hours)
        say(f"• scale: one backfill of {plan.scale_hours} hourly runs [{start:%Y-%m-%dT%H:%M}, {end:%Y-%m-%dT%H:%M}) "
            f"on a warehouse emptied of events (songs staged)")
        self.reset_events()
        run = self.backfill(ETL, start, plan.scale_hours)
        say("  checking every star table against the data contract (tests/reference.py)")
        contract = check_contract(self.stack.warehouse_url, self.source, start, end)
        errors = pg_query(self.stack.warehouse_url, "SELECT check_name, COUNT(*) FROM public.quality_results "
                          "WHERE NOT passed AND severity = 'error' GROUP BY 1")
        for table, diff in contract.items():
            say(f"    {table}: {'matches' if not diff else 'DIFFERS: ' + diff[:300]}")
        png = OUT / "month_backfill.png"
        title = f"{ETL} backfill: {plan.scale_hours} hourly runs, max-active-runs {run.max_active_runs}"
        writer = plot_runs(png, run.completions, title)
        say(f"  plot of runs completed over time: {png.relative_to(ROOT)} ({writer})")
        self.results["explain"] = self.explain()
        rows = pg_query(self.stack.warehouse_url, "SELECT 'songplays', COUNT(*) FROM public.songplays UNION ALL "
                        "SELECT 'users', COUNT(*) FROM public.users UNION ALL SELECT 'time', COUNT(*) FROM public.time")
        return {
            "runs": run.runs, "succeeded": run.succeeded, "command": run.command, "wall_s": run.wall,
            "runs_per_minute": run.runs / (run.wall / 60), "airflow_cpu_s": run.cpu["airflow"],
            "postgres_cpu_s": run.cpu["postgres"], "moto_cpu_s": run.cpu["moto"],
            "contract": {t: ("matches" if not d else d) for t, d in contract.items()},
            "contract_pass": not any(contract.values()), "quality_errors": dict(errors), "rows": dict(rows),
            "plot": str(png.relative_to(ROOT)), "failures": run.failures[:20],
            "pass": run.succeeded == run.runs and not any(contract.values()) and not errors,
        }

    def section_sweep(self) -> dict[str, Any]:
        self.ensure_airflow()
        self.warm_up()
        plan, stack = self.plan, self.stack
        default_parallelism = stack.config.parallelism
        say(f"• sweep: {plan.sweep_hours} runs from {BACKFILL_START:%Y-%m-%dT%H:%M}; max-active-runs "
            f"{plan.sweep_mar} at parallelism {default_parallelism}, then parallelism {plan.sweep_parallelism}")
        by_mar: dict[int, dict[str, Any]] = {}
        for mar in plan.sweep_mar:
            self.reset_events()
            b = self.backfill(ETL, BACKFILL_START, plan.sweep_hours, max_active_runs=mar)
            by_mar[mar] = {"wall_s": b.wall, "airflow_cpu_s": b.cpu["airflow"], "succeeded": b.succeeded,
                           "command": b.command}
        best_mar = largest_that_helps({k: v["wall_s"] for k, v in by_mar.items()})
        by_par: dict[int, dict[str, Any]] = {}
        try:
            for parallelism in plan.sweep_parallelism:
                if parallelism != stack.config.parallelism:
                    say(f"  restarting the scheduler with [core] parallelism {parallelism}")
                    stack.restart_scheduler(parallelism)
                self.reset_events()
                b = self.backfill(ETL, BACKFILL_START, plan.sweep_hours, max_active_runs=best_mar)
                by_par[parallelism] = {"wall_s": b.wall, "airflow_cpu_s": b.cpu["airflow"], "succeeded": b.succeeded,
                                       "command": b.command}
        finally:
            if stack.config.parallelism != default_parallelism:
                stack.restart_scheduler(default_parallelism)
        best_par = largest_that_helps({k: v["wall_s"] for k, v in by_par.items()})
        say(f"  largest max-active-runs that still helps: {best_mar}; largest parallelism (at that): {best_par}")
        return {"runs": plan.sweep_hours, "max_active_runs": by_mar, "parallelism_at_best_mar": by_par,
                "best_max_active_runs": best_mar, "best_parallelism": best_par,
                "rule": "largest value whose wall time is >= 5% below every smaller value's"}

    def star_checksums(self) -> dict[str, str]:
        """Rows and an MD5 over every row of each star table (sorted): equal when the tables are."""
        return {t: "{} rows, md5 {}".format(*pg_query(
            self.stack.warehouse_url,
            f"SELECT COUNT(*), MD5(COALESCE(STRING_AGG(r::text, E'\\n' ORDER BY r::text), '')) FROM public.{t} r")[0])
            for t in STAR}

    @property
    def month(self) -> tuple[datetime, datetime]:
        """November 2018; with --quick, its first two days."""
        return (MONTH[0], MONTH[0] + timedelta(days=2)) if self.args.quick else MONTH

    def manual_runs(self, grain: str) -> dict[str, Any]:
        """The month as runs triggered with a manual data interval (runner.run_intervals, as make run
        GRAIN=…): wall from the first request to the last run's end, CPU, and the runs' task figures."""
        from sparkify_local.runner import manual_run_body, run_intervals

        stack = self.stack
        config = stack.config
        config.start, config.end, config.grain, config.reprocess = *self.month, grain, "completed"
        planned = config.intervals()
        cpu0, began, wall_clock = stack.cpu(), time.monotonic(), pg_query(stack.metadata_url, "SELECT now()")[0][0]
        run_intervals(stack, poll=0.5)
        cpu1 = stack.cpu()
        run_ids = [manual_run_body(a, b, grain)["dag_run_id"] for a, b in planned]
        rows = pg_query(stack.metadata_url,
                        "SELECT state, end_date FROM dag_run WHERE dag_id = %s AND run_id = ANY(%s)", (ETL, run_ids))
        return {
            "runs": len(planned), "succeeded": sum(1 for r in rows if r[0] == "success"),
            "wall_s": (max(r[1] for r in rows) - wall_clock).total_seconds() if rows else time.monotonic() - began,
            "cpu": {k: cpu1[k] - cpu0[k] for k in cpu0},
            "stage_events": self.task_results(run_ids, "Stage_events"),
            "stage_songs": self.task_results(run_ids, "Stage_songs"),
            "command": (f"make run SOURCE=… START={config.start:%Y-%m-%d} END={config.end:%Y-%m-%d} GRAIN={grain}   "
                        f"# {len(planned)} "
                        f"POST /api/v2/dags/{ETL}/dagRuns with a manual data interval, at most "
                        f"{config.max_active_runs} unfinished at a time"),
        }

    def task_results(self, run_ids: list[str], task_id: str) -> dict[str, Any]:
        """Peak RSS (the staging operator's result) and seconds of ``task_id`` over the runs."""
        rows = pg_query(
            self.stack.metadata_url,
            "SELECT x.value, EXTRACT(EPOCH FROM ti.end_date - ti.start_date) FROM task_instance ti "
            "LEFT JOIN xcom x ON x.dag_id = ti.dag_id AND x.run_id = ti.run_id AND x.task_id = ti.task_id "
            "AND x.key = 'return_value' WHERE ti.dag_id = %s AND ti.run_id = ANY(%s) AND ti.task_id = %s",
            (ETL, run_ids, task_id))
        values = [json.loads(v) if isinstance(v, str) else (v or {}) for v, _ in rows]
        rss = [v.get("peak_rss_mb") for v in values if isinstance(v, dict) and v.get("peak_rss_mb")]
        return {"peak_rss_mb": max(rss) if rss else None, "seconds": [float(s) for _, s in rows if s is not None],
                "staged_objects": sum(v.get("staged_objects", 0) for v in values if isinstance(v, dict))}

    def section_month(self) -> dict[str, Any]:
        self.ensure_airflow()
        self.warm_up()
        hours = int((self.month[1] - self.month[0]).total_seconds() // 3600)
        days = hours // 24
        say(f"• month: [{self.month[0]:%Y-%m-%d}, {self.month[1]:%Y-%m-%d}) as {hours} hourly runs, as {days} "
            "daily runs and as 1 run, on a warehouse emptied of events before each (songs staged)")
        shapes: dict[str, dict[str, Any]] = {}
        self.reset_events()
        hourly = self.backfill(ETL, self.month[0], hours)
        run_ids = [r for (r,) in pg_query(
            self.stack.metadata_url, "SELECT dr.run_id FROM backfill_dag_run b JOIN dag_run dr ON dr.id = b.dag_run_id "
            "WHERE b.backfill_id = (SELECT MAX(id) FROM backfill WHERE dag_id = %s)", (ETL,))]
        shapes["hourly"] = {"runs": hourly.runs, "succeeded": hourly.succeeded, "wall_s": hourly.wall,
                            "cpu": hourly.cpu, "stage_events": self.task_results(run_ids, "Stage_events"),
                            "command": hourly.command, "checksums": self.star_checksums()}
        for name, grain in (("daily", "day"), ("one_run", "window")):
            self.settle()
            self.reset_events()
            shapes[name] = self.manual_runs(grain)
            shapes[name]["checksums"] = self.star_checksums()
            x = shapes[name]
            say(f"    {name}: {x['succeeded']}/{x['runs']} runs succeeded, wall {x['wall_s']:.1f} s, Airflow CPU "
                f"{x['cpu']['airflow']:.1f} s, Stage_events peak RSS {x['stage_events']['peak_rss_mb']} MB")
        say("  checking the one run's star tables against the data contract (tests/reference.py)")
        contract = check_contract(self.stack.warehouse_url, self.source, *self.month)
        # From an empty warehouse: the songs are staged again, by the month's one run.
        say("• month from an empty warehouse (songs not yet staged): one run, and a boto3 GET of the song objects")
        pg_execute(self.stack.warehouse_url, *RESET_EVENT_TABLES, *RESET_SONG_STAGING, "TRUNCATE public.songs, "
                   "public.artists")
        empty = self.manual_runs("window")
        keys_file = self.state / "song_keys.txt"
        keys_file.write_text("\n".join(self.song_keys) + "\n")
        argv = ["_get", "--endpoint", self.stack.moto.endpoint, "--bucket", self.stack.config.bucket,
                "--keys-file", str(keys_file.relative_to(ROOT)), "--threads", "16"]
        got = self.driver(argv)
        songs_seconds = empty["stage_songs"]["seconds"][0] if empty["stage_songs"]["seconds"] else None
        songs_rate = empty["stage_songs"]["staged_objects"] / songs_seconds if songs_seconds else None
        floor_rate = got["objects"] / got["wall"]
        empty.update(stage_songs_objects_per_s=songs_rate, get_floor_objects_per_s=floor_rate,
                     get_command=(f"make bench BENCH_ARGS={shlex.quote(shlex.join(argv))}"
                                  "   # boto3 get_object, 16 threads"),
                     checksums=self.star_checksums())
        say(f"    one run from empty: wall {empty['wall_s']:.1f} s; Stage_songs {songs_rate or 0:.0f} objects/s vs GET "
            f"{floor_rate:.0f} objects/s")
        sums = {name: x["checksums"] for name, x in shapes.items()}
        equal = all(v == sums["hourly"] for v in sums.values()) and empty["checksums"] == sums["hourly"]
        speedup = {name: shapes["hourly"]["wall_s"] / x["wall_s"] for name, x in shapes.items() if name != "hourly"}
        ok = all(x["succeeded"] == x["runs"] for x in (*shapes.values(), empty))
        return {
            "window": [f"{self.month[0]:%Y-%m-%d}", f"{self.month[1]:%Y-%m-%d}"],
            "shapes": shapes, "from_empty": empty, "speedup": speedup, "checksums_equal": equal,
            "contract": {t: ("matches" if not d else d) for t, d in contract.items()},
            "stage_songs_ratio": songs_rate / floor_rate if songs_rate else None,
            "goal": GOALS["month"],
            "pass": ok and equal and not any(contract.values()) and speedup["one_run"] >= 50 and speedup["daily"] >= 20
            and bool(songs_rate) and songs_rate / floor_rate >= 0.8,
        }

    def explain(self) -> dict[str, str]:
        from sparkify.warehouse import render

        url = self.stack.warehouse_url
        pg_execute(url, "ANALYZE")
        out = {}
        for path in sorted((ROOT / "include" / "sql" / "analysis").glob("*.sql")):
            sql = render(f"analysis/{path.name}", schema="public", dialect="postgres")
            out[path.name] = "\n".join(r[0] for r in pg_query(url, "EXPLAIN " + sql))
        return out

    # -- the run --------------------------------------------------------------------------------------

    def run(self, sections: list[str]) -> int:
        self.results["machine"] = machine()
        failed = False
        try:
            self.start()
            for name in SECTIONS:
                if name not in sections:
                    continue
                try:
                    self.results["sections"][name] = getattr(self, f"section_{name}")()
                except (RunnerError, subprocess.SubprocessError, OSError, KeyError, ValueError) as err:
                    failed = True
                    say(f"  section {name} failed: {err}")
                    self.results["sections"][name] = {"error": str(err)[-3000:]}
                # What is measured so far survives an interrupted run (the full bench takes hours).
                (OUT / "results.partial.json").write_text(json.dumps(self.results, indent=2, default=str))
            if "explain" not in self.results and self.stack.airflow_ready:
                try:
                    self.results["explain"] = self.explain()
                except Exception as err:  # noqa: BLE001 - the report goes on without it
                    self.results["explain"] = {"error": str(err)}
            self.results["machine"]["loadavg_end"] = os.getloadavg()
            self.results["machine"]["postgresql"] = pg_query(self.stack.warehouse_url, "SHOW server_version")[0][0]
            self.results["stack"] = {"warehouse": redact_url(self.stack.warehouse_url),
                                     "s3": self.stack.moto.endpoint, "state": str(self.state)}
        finally:
            if self.stack:
                say("• stopping everything the bench started")
                self.stack.stop()
        return 1 if failed else 0


# -- data generators and checks --------------------------------------------------------------------------


def make_events_file(source: Path, size: int, out: Path) -> int:
    """A valid NDJSON daily log of ``size`` bytes: the day's events repeated, each copy shifted by
    k ms (staying on that day) and with its sessionId moved by k * 100000. Cached; returns the line count."""
    meta = out.with_suffix(".lines")
    if out.exists() and meta.exists() and out.stat().st_size >= size:
        return int(meta.read_text())
    day = datetime.strptime(source.name[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    day_start = int(day.timestamp() * 1000)
    day_end = day_start + 86_400_000
    lines = [line for line in source.read_bytes().splitlines() if line.strip()]
    ts_re, session_re = re.compile(rb'"ts":(\d+)'), re.compile(rb'"sessionId":(\d+)')
    written = count = copy = 0
    tmp = out.with_suffix(".tmp")
    with tmp.open("wb") as f:
        while written < size:
            for line in lines:
                ts = int(ts_re.search(line).group(1))
                shifted = ts + copy if ts + copy < day_end else max(day_start, ts - copy)
                new = ts_re.sub(b'"ts":%d' % shifted, line, count=1)
                new = session_re.sub(lambda m, c=copy: b'"sessionId":%d' % (int(m.group(1)) + c * 100_000), new, 1)
                f.write(new + b"\n")
                written += len(new) + 1
                count += 1
            copy += 1
    tmp.replace(out)
    meta.write_text(str(count))
    return count


def upload_generated_songs(client, source: Path, keys: list[str], n: int) -> None:
    """``n`` song objects under song_data/ of the memory bucket: the real ones, cycled, each with a new song_id."""
    bodies = [(source / key).read_bytes() for key in keys]
    song_id = re.compile(rb'"song_id":\s*"([^"]*)"')

    def put(k: int) -> None:
        body = song_id.sub(lambda m: b'"song_id": "%s-%06d"' % (m.group(1), k), bodies[k % len(bodies)], 1)
        client.put_object(Bucket=MEMORY_BUCKET, Key=f"song_data/G/{k % 26:02d}/{k % 1000:03d}/bench-{k:06d}.json",
                          Body=body)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(n)))


def empty_bucket(client, bucket: str) -> None:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    for start in range(0, len(keys), 1000):
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]]})


def check_contract(url: str, source: Path, start: datetime, end: datetime) -> dict[str, str]:
    """Each star table against tests/reference.py's independent reading of the data contract: '' when equal."""
    from tests import reference

    events = reference.read_events(reference.event_log_paths(source, start, end))
    songs = reference.read_songs(reference.song_paths(source))
    expected = reference.expected_tables(events, songs, start, end)
    out = {}
    for table in reference.STAR_TABLES:
        actual = pg_query(url, f"SELECT {', '.join(reference.COLUMNS[table])} FROM public.{table}")
        out[table] = reference.describe_difference(table, expected[table], actual)
    return out


def largest_that_helps(walls: dict[int, float]) -> int:
    """The largest setting whose wall time is at least 5% below that of every smaller setting."""
    best, best_wall = None, None
    for value in sorted(walls):
        if best_wall is None or walls[value] <= 0.95 * best_wall:
            best, best_wall = value, walls[value]
    return best


# -- the report ------------------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> tuple[str, str]:
    """The figures as text (with commands) and as Markdown for docs/performance.md."""
    s, m = results["sections"], results["machine"]
    lines = ["", "=" * 100, "make bench" + ("  (--quick: smoke-test sizes, not figures)" if results["quick"] else ""),
             "=" * 100]
    md = ["### Figures" + (" (quick smoke run: not representative)" if results["quick"] else ""), "",
          f"Measured {m['when']} on `{m['hostname']}`: {m['nproc']} CPUs ({m.get('cpu_model')}), "
          f"{m.get('memory_gib')} GiB RAM, Linux {m['kernel']}, Python {m['python']}, Airflow "
          f"{m['apache-airflow']} (task-sdk {m['apache-airflow-task-sdk']}, amazon provider "
          f"{m['apache-airflow-providers-amazon']}), PostgreSQL {m.get('postgresql')}, moto {m['moto']}, "
          f"boto3 {m['boto3']}. Load average at start {m['loadavg_start'][0]:.2f}, at end "
          f"{m.get('loadavg_end', [0])[0]:.2f}.", "",
          "| Figure | Pipeline | Floor | Ratio (median; spread of pairs) | Goal | Result |",
          "|---|---|---|---|---|---|"]
    commands: list[str] = []
    if results.get("idle_cpu_per_s"):
        idle = results["idle_cpu_per_s"]
        lines.append("\nIdle stack (nothing to run), CPU-s per second: "
                     + ", ".join(f"{k} {v:.3f}" for k, v in idle.items()))
        md[2] += (f" With nothing to run, Airflow's processes used {idle['airflow']:.3f} CPU-s per second "
                  f"(scheduler loop, DAG parsing every 10 s, heartbeats); 'above idle' subtracts that.")

    def both(line: str, row: str | None = None) -> None:
        lines.append(line)
        if row:
            md.append(row)

    if "backfill" in s and "error" not in s["backfill"]:
        b = s["backfill"]
        both(f"\n1. Backfill vs Airflow's floor ({b['runs']} hourly runs, {ETL} vs {FLOOR})")
        for d in (ETL, FLOOR):
            both(f"   {d:15s} wall {fmt(b['wall_s'][d], ' s')}   Airflow CPU {fmt(b['airflow_cpu_s'][d], ' s')}   "
                 f"PostgreSQL CPU {fmt(b['postgres_cpu_s'][d], ' s')}   moto CPU {fmt(b['moto_cpu_s'][d], ' s')}")
            both(f"     per run: {b['wall_s'][d]['median'] / b['runs']:.2f} s wall; Airflow CPU above idle "
                 f"{fmt(b['airflow_cpu_above_idle_s'][d], ' s')} = "
                 f"{b['airflow_cpu_above_idle_s'][d]['median'] / b['task_instances_run'][d]:.2f} CPU-s per task "
                 f"instance run ({b['task_instances_run'][d]})")
            both(f"     command: {b['command'][d]}")
            commands.append(b["command"][d])
        both(f"   wall ratio {b['wall_ratio']:.2f}x (pairs {fmt(b['wall_ratio_pairs'], 'x', 2)}); CPU ratio "
             f"{b['cpu_ratio'] or 0:.2f}x (pairs {fmt(b['cpu_ratio_pairs'], 'x', 2)})   goal: {b['goal']}   "
             f"{verdict(b['pass'])}",
             f"| Backfill of {b['runs']} runs, wall | {fmt(b['wall_s'][ETL], ' s')} | {fmt(b['wall_s'][FLOOR], ' s')} "
             f"| {b['wall_ratio']:.2f}x; {fmt(b['wall_ratio_pairs'], 'x', 2)} | <= 1.25x | {verdict(b['pass'])} |")
        md.append(f"| Backfill of {b['runs']} runs, CPU of Airflow's processes | {fmt(b['airflow_cpu_s'][ETL], ' s')} "
                  f"| {fmt(b['airflow_cpu_s'][FLOOR], ' s')} | {b['cpu_ratio'] or 0:.2f}x; "
                  f"{fmt(b['cpu_ratio_pairs'], 'x', 2)} | - | - |")
        net = b["airflow_cpu_above_idle_s"]
        md.append(f"| Backfill of {b['runs']} runs, CPU of Airflow's processes above idle | {fmt(net[ETL], ' s')} "
                  f"| {fmt(net[FLOOR], ' s')} | {net[ETL]['median'] / net[FLOOR]['median']:.2f}x | - | - |")
        if b["failures"]:
            both(f"   FAILED RUNS: {b['failures'][:5]}")
    if "staging" in s and "error" not in s["staging"]:
        st = s["staging"]
        both(f"\n2. Staging vs the S3 read floor ({st['objects']} song objects, first time)")
        both("   GET floor thread sweep (objects/s): "
             + ", ".join(f"{k}: {v:.0f}" for k, v in st["thread_sweep_objects_per_s"].items())
             + f"; best {st['best_threads']}")
        both(f"   pipeline {fmt(st['pipeline_objects_per_s'], ' obj/s', 0)}   peak RSS "
             f"{fmt(st['pipeline_peak_rss_mb'], ' MB', 0)}")
        both(f"     command: {st['command']['pipeline']}")
        both(f"   floor    {fmt(st['floor_objects_per_s'], ' obj/s', 0)}")
        both(f"     command: {st['command']['floor']}")
        commands += [st["command"]["pipeline"], st["command"]["floor"]]
        both(f"   ratio {st['ratio']:.2f}x (pairs {fmt(st['ratio_pairs'], 'x', 2)})   goal: {st['goal']}   "
             f"{verdict(st['pass'])}",
             f"| First-time staging of {st['objects']} song objects | "
             f"{fmt(st['pipeline_objects_per_s'], ' obj/s', 0)} | {fmt(st['floor_objects_per_s'], ' obj/s', 0)} "
             f"({st['best_threads']} threads) | {st['ratio']:.2f}x; {fmt(st['ratio_pairs'], 'x', 2)} | >= 0.8x | "
             f"{verdict(st['pass'])} |")
    if "incremental" in s and "error" not in s["incremental"]:
        inc = s["incremental"]
        both(f"\n3. Incremental staging ({inc['objects']} objects, all already staged)")
        for label in ("listing_due", "within_period"):
            x = inc[label]
            both(f"   {label:13s}: fetched {x['fetched_objects']['max']} objects, {x['list_calls']['max']} S3 list "
                 f"calls, wall {fmt(x['wall_s'], ' s', 2)}")
            both(f"     command: {x['command']}")
            commands.append(x["command"])
            md.append(f"| Incremental staging, {label.replace('_', ' ')} | fetched {x['fetched_objects']['max']}, "
                      f"{x['list_calls']['max']} list calls, {fmt(x['wall_s'], ' s', 2)} | - | - | 0 fetched | "
                      f"{verdict(x['fetched_objects']['max'] == 0)} |")
        both(f"   goal: {inc['goal']}   {verdict(inc['pass'])}")
    if "memory" in s and "error" not in s["memory"]:
        mem = s["memory"]
        both("\n4. Memory of the staging task (peak RSS of the process, imports included)")
        for e in mem["events"]:
            both(f"   daily log {e['mib']:5d} MiB ({e['events']} events): peak {e['peak_rss_mb']:.0f} MB "
                 f"(after imports {e['baseline_rss_mb']:.0f} MB), {e['wall_s']:.1f} s",
                 f"| Staging a {e['mib']} MiB daily log ({e['events']} events), peak RSS | "
                 f"{e['peak_rss_mb']:.0f} MB ({e['baseline_rss_mb']:.0f} MB after imports), {e['wall_s']:.0f} s "
                 "| - | - | "
                 f"flat, < 200 MB | {verdict(mem['events_flat'])} |")
        if mem["events"]:
            both(f"     command: {mem['events'][-1]['command']}")
            commands.append(mem["events"][-1]["command"])
        for x in mem["songs"]:
            both(f"   {x['objects']:6d} song objects: peak {x['peak_rss_mb']:.0f} MB, {x['wall_s']:.1f} s",
                 f"| Staging {x['objects']} song objects, peak RSS | {x['peak_rss_mb']:.0f} MB, {x['wall_s']:.0f} s "
                 f"| - | - | flat, < 200 MB | {verdict(mem['songs_flat'])} |")
        if mem["songs"]:
            both(f"     command: {mem['songs'][-1]['command']}")
        both(f"   goal: {mem['goal']}   {verdict(mem['pass'])}")
    if "scale" in s and "error" not in s["scale"]:
        sc = s["scale"]
        both(f"\n5a. Scale: one backfill of {sc['runs']} hourly runs")
        both(f"   {sc['succeeded']}/{sc['runs']} succeeded, wall {sc['wall_s']:.0f} s, "
             f"{sc['runs_per_minute']:.1f} runs/min, "
             f"Airflow CPU {sc['airflow_cpu_s']:.0f} s, PostgreSQL CPU {sc['postgres_cpu_s']:.0f} s",
             f"| Backfill of {sc['runs']} runs | {sc['wall_s']:.0f} s, {sc['runs_per_minute']:.1f} runs/min, "
             f"Airflow CPU {sc['airflow_cpu_s']:.0f} s | - | - | contract holds | {verdict(sc['pass'])} |")
        both(f"     command: {sc['command']}")
        commands.append(sc["command"])
        both("   tables vs the data contract: " + ", ".join(f"{t} {v if v == 'matches' else 'DIFFERS'}"
                                                         for t, v in sc["contract"].items())
             + f"; data-quality errors: {sc['quality_errors'] or 'none'}; rows {sc['rows']}")
        both(f"   plot: {sc['plot']}")
    if "sweep" in s and "error" not in s["sweep"]:
        sw = s["sweep"]
        both(f"\n5b. Sweep on {sw['runs']} runs ({sw['rule']})")
        for mar, x in sw["max_active_runs"].items():
            both(f"   max-active-runs {mar:>3}: wall {x['wall_s']:.1f} s, Airflow CPU {x['airflow_cpu_s']:.1f} s",
                 f"| {sw['runs']} runs, max-active-runs {mar} | {x['wall_s']:.0f} s | - | - | - | - |")
        for par, x in sw["parallelism_at_best_mar"].items():
            both(f"   parallelism {par:>3} (max-active-runs {sw['best_max_active_runs']}): wall {x['wall_s']:.1f} s, "
                 f"Airflow CPU {x['airflow_cpu_s']:.1f} s",
                 f"| {sw['runs']} runs, parallelism {par} | {x['wall_s']:.0f} s | - | - | - | - |")
        first = next(iter(sw["max_active_runs"].values()))
        both(f"     command: {first['command']}")
        both(f"   largest that still helps on {m['nproc']} CPUs: max-active-runs {sw['best_max_active_runs']}, "
             f"parallelism {sw['best_parallelism']}")
    if "month" in s and "error" not in s["month"]:
        mo = s["month"]
        both(f"\n6. The month [{mo['window'][0]}, {mo['window'][1]}) three ways (songs staged): {mo['goal']}")
        for name, x in mo["shapes"].items():
            ratio = f", {mo['speedup'][name]:.1f}x faster than hourly" if name in mo["speedup"] else ""
            both(f"   {name:8}: {x['succeeded']}/{x['runs']} runs, wall {x['wall_s']:.1f} s, Airflow CPU "
                 f"{x['cpu']['airflow']:.1f} s, Stage_events peak RSS {x['stage_events']['peak_rss_mb']} MB{ratio}",
                 f"| [{mo['window'][0]}, {mo['window'][1]}), {name} ({x['runs']} runs) | {x['wall_s']:.0f} s wall, "
                 f"{x['cpu']['airflow']:.0f} "
                 f"CPU-s | - | {mo['speedup'].get(name, 1):.1f}x vs hourly | - | "
                 f"{x['succeeded']}/{x['runs']} ok |")
            both(f"     command: {x['command']}")
            commands.append(x["command"])
        fe = mo["from_empty"]
        commands.append(fe["get_command"])
        both(f"   one run from an empty warehouse: wall {fe['wall_s']:.1f} s; Stage_songs "
             f"{fe['stage_songs_objects_per_s'] or 0:.0f} objects/s vs GET floor {fe['get_floor_objects_per_s']:.0f} "
             f"objects/s = {mo['stage_songs_ratio'] or 0:.2f}x",
             f"| [{mo['window'][0]}, {mo['window'][1]}), 1 run from empty | {fe['wall_s']:.0f} s wall | - | "
             "Stage_songs "
             f"{mo['stage_songs_ratio'] or 0:.2f}x GET | >= 0.8x | - |")
        both(f"     floor: {fe['get_command']}")
        both(f"   star tables equal in all shapes: {mo['checksums_equal']}; one run vs the data contract: "
             + ", ".join(f"{t} {v if v == 'matches' else 'DIFFERS'}" for t, v in mo["contract"].items()))
        both(f"   verdict: {verdict(mo['pass'])}")
    for name, section in s.items():
        if "error" in section:
            both(f"\n{name}: ERROR {section['error'][-500:]}")
    md += ["", "Commands, as run by `make bench` in its private stack under `bench-output/state/` "
           "(sparkify_local.runner's Stack; DAG folder `bench-output/state/dags`, holding `sparkify_etl` and "
           "`sparkify_floor`):", "", "```"]
    md += commands + ["```"]
    if isinstance(results.get("explain"), dict) and "error" not in results["explain"]:
        md += ["", "EXPLAIN (PostgreSQL) of the analyst queries on the warehouse the bench loaded"
               + (" (after the scale section's backfill):" if "scale" in s else ":"), ""]
        for name, plan in results["explain"].items():
            md += [f"`{name}`:", "", "```", plan, "```", ""]
    lines += ["", "-" * 100, "Markdown for docs/performance.md:", "-" * 100, *md]
    return "\n".join(lines), "\n".join(md)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    drivers = {"_stage": driver_stage, "_get": driver_get, "_shape": driver_shape}
    if argv and argv[0] in drivers:
        return drivers[argv[0]](argv[1:])
    parser = argparse.ArgumentParser(prog="make bench BENCH_ARGS=…", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections (default all): {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true",
                        help="smoke mode: tiny sizes, every section (about 10 minutes on 2 idle cores)")
    parser.add_argument("--repeats", type=int, help="runs of the pipeline and of its floor, alternately (default 3)")
    parser.add_argument("--songs", type=int, help="song objects to seed (default all 14,896; --quick 300; 0 all)")
    parser.add_argument("--events-mib", type=lambda v: [int(x) for x in v.split(",")],
                        help="sizes of the generated daily logs in MiB (default 100,1024; --quick 2,10)")
    parser.add_argument("--memory-songs", type=int,
                        help="generated song objects for the memory section (default 100000; --quick 600; 0 skips)")
    parser.add_argument("--max-active-runs", type=int, default=4, help="of the backfills (default 4, as the DAG)")
    parser.add_argument("--parallelism", type=int, default=8, help="[core] parallelism (default 8, as make run)")
    parser.add_argument("--floor-all-tasks", action="store_true",
                        help="a @task in every position of the floor DAG, Begin/End included")
    parser.add_argument("--via-cli", action="store_true",
                        help="create backfills with `airflow backfill create` rather than the REST API")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    plan = Plan.make(args)
    if plan.repeats < 1:
        parser.error("--repeats must be at least 1")
    OUT.mkdir(exist_ok=True)
    bench = Bench(args, plan)
    say(f"make bench: sections {', '.join(s for s in SECTIONS if s in sections)}; "
        f"{'quick smoke sizes' if args.quick else 'full sizes'}; repeats {plan.repeats}")
    try:
        code = bench.run(sections)
    except RunnerError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr, flush=True)
        return 130
    text, md = report(bench.results)
    (OUT / "results.json").write_text(json.dumps(bench.results, indent=2, default=str))
    (OUT / "performance-figures.md").write_text(md + "\n")
    print(text, flush=True)
    say(f"results: {(OUT / 'results.json').relative_to(ROOT)}, {(OUT / 'performance-figures.md').relative_to(ROOT)}")
    return code


if __name__ == "__main__":
    import signal

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    raise SystemExit(main())
