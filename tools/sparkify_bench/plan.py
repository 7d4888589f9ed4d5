"""The bench's constants (paths, DAG ids, windows, goals) and its sizes (Plan: full or --quick)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(__file__).resolve().parent
FLOOR_DAG_FILE = PACKAGE / "floor_dag.py"
OUT = ROOT / "bench-output"
DATA = (ROOT / ".." / "shared" / "data" / "sparkify").resolve()
ETL, FLOOR = "sparkify_etl", "sparkify_floor"
SECTIONS = ("staging", "incremental", "memory", "backfill", "scale", "sweep", "month", "celery")
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
    celery_hours: int = 48  # the celery section's backfill, on each executor

    @classmethod
    def make(cls, args: argparse.Namespace) -> Plan:
        if args.quick:
            plan = cls(songs=300, repeats=2, backfill_hours=3, get_threads=[4, 16], get_sample=300,
                       events_mib=[2, 10], memory_songs=600, scale_start=BACKFILL_START, scale_hours=4,
                       sweep_hours=3, sweep_mar=[1, 3], sweep_parallelism=[4], settle_timeout=30, idle_seconds=10,
                       celery_hours=3)
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
