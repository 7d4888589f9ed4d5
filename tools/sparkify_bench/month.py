"""The month section: November 2018 loaded three ways on one stack (720 hourly runs by Airflow's backfill,
30 daily runs and 1 run triggered with a manual data interval, as `make run GRAIN=day|window` does),
then as one run from an empty warehouse against a boto3 GET of the song objects."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sparkify.intervals import manual_logical_date
from sparkify_bench import airflow_api
from sparkify_bench.bench import Bench
from sparkify_bench.drivers import driver_command
from sparkify_bench.plan import ETL, GOALS, RESET_EVENT_TABLES, RESET_SONG_STAGING, ROOT
from sparkify_bench.warehouse import check_contract, pg_execute, star_checksums
from sparkify_local.config import RunnerError
from sparkify_local.progress import say
from sparkify_local.runs import manual_run_body


def trigger_runs(bench: Bench, intervals: list[tuple[datetime, datetime]], grain: str,
                 poll: float = 0.5) -> list[str]:
    """One run per interval through the REST API, at most MAX_ACTIVE_RUNS unfinished at a time; a run
    that exists for an interval (same logical date) is cleared and run again (REPROCESS=completed).
    Waits for all; their run ids, in order."""
    stack = bench.stack
    limit = stack.config.max_active_runs
    waiting = list(intervals)
    mine: list[str] = []
    states: dict[str, str] = {}
    dates = [manual_logical_date(a, b).replace(tzinfo=UTC) for a, b in intervals]
    while True:
        if mine:
            found = airflow_api.run_states(stack, ETL, min(dates), max(dates), "manual")
            states = {r: found.get(r, "missing") for r in mine}
        unfinished = [r for r in mine if states.get(r) not in airflow_api.FINISHED]
        while waiting and len(unfinished) < limit:
            start, end = waiting.pop(0)
            logical = manual_logical_date(start, end).replace(tzinfo=UTC)
            existing = airflow_api.runs_at(stack, ETL, logical)
            if existing:
                run_id = existing[0]["dag_run_id"]
                if existing[0]["state"] in airflow_api.FINISHED:
                    stack.api("POST", f"/api/v2/dags/{ETL}/dagRuns/{quote(run_id)}/clear", {"dry_run": False})
            else:
                run_id = stack.api("POST", f"/api/v2/dags/{ETL}/dagRuns",
                                   manual_run_body(start, end, grain))["dag_run_id"]
            states[run_id] = "queued"
            mine.append(run_id)
            unfinished.append(run_id)
        if not waiting and not unfinished:
            return mine
        if any(states.get(r) == "missing" for r in mine):
            raise RunnerError(f"a triggered run disappeared: {[r for r in mine if states.get(r) == 'missing']}")
        for name, process in stack.processes.items():
            if process.poll() is not None:
                raise RunnerError(f"Airflow's {name} stopped (code {process.returncode}); see {stack.logs / name}.log")
        time.sleep(poll)


def manual_runs(bench: Bench, grain: str) -> dict[str, Any]:
    """The month as runs triggered with a manual data interval (as make run GRAIN=…): wall from the first
    request (this machine's clock) to the last run's end (Airflow's), CPU, and the runs' task figures."""
    stack = bench.stack
    config = stack.config
    config.start, config.end, config.grain, config.reprocess = *bench.month, grain, "completed"
    planned = config.intervals()
    say(f"• {len(planned)} run(s) over [{config.start:%Y-%m-%dT%H:%M}, {config.end:%Y-%m-%dT%H:%M}) (GRAIN={grain}), "
        f"at most {config.max_active_runs} at a time, through POST /api/v2/dags/{ETL}/dagRuns")
    cpu0, began, wall_clock = stack.cpu(), time.monotonic(), datetime.now(UTC)
    run_ids = trigger_runs(bench, planned, grain)
    cpu1 = stack.cpu()
    runs = [r for r in (airflow_api.dag_run(stack, ETL, run_id) for run_id in run_ids) if r]
    ends = [airflow_api.when(r["end_date"]) for r in runs if r.get("end_date")]
    return {
        "runs": len(planned), "succeeded": sum(1 for r in runs if r["state"] == "success"),
        "wall_s": (max(ends) - wall_clock).total_seconds() if ends else time.monotonic() - began,
        "cpu": {k: cpu1[k] - cpu0[k] for k in cpu0},
        "stage_events": task_results(bench, run_ids, "Stage_events"),
        "stage_songs": task_results(bench, run_ids, "Stage_songs"),
        "command": (f"make run SOURCE=… START={config.start:%Y-%m-%d} END={config.end:%Y-%m-%d} GRAIN={grain}   "
                    f"# {len(planned)} "
                    f"POST /api/v2/dags/{ETL}/dagRuns with a manual data interval, at most "
                    f"{config.max_active_runs} unfinished at a time"),
    }


def task_results(bench: Bench, run_ids: list[str], task_id: str) -> dict[str, Any]:
    """Peak RSS (the staging operator's return value) and seconds (the task instance's duration) of
    ``task_id`` over the runs."""
    stack = bench.stack
    instances = airflow_api.task_instances(stack, ETL, run_ids, task_id)
    values = [airflow_api.return_value(stack, ETL, ti["dag_run_id"], task_id) for ti in instances]
    rss = [v.get("peak_rss_mb") for v in values if isinstance(v, dict) and v.get("peak_rss_mb")]
    return {"peak_rss_mb": max(rss) if rss else None,
            "seconds": [float(ti["duration"]) for ti in instances if ti.get("duration") is not None],
            "staged_objects": sum(v.get("staged_objects", 0) for v in values if isinstance(v, dict))}


def section_month(bench: Bench) -> dict[str, Any]:
    bench.ensure_airflow()
    bench.warm_up()
    hours = int((bench.month[1] - bench.month[0]).total_seconds() // 3600)
    days = hours // 24
    say(f"• month: [{bench.month[0]:%Y-%m-%d}, {bench.month[1]:%Y-%m-%d}) as {hours} hourly runs, as {days} "
        "daily runs and as 1 run, on a warehouse emptied of events before each (songs staged)")
    shapes: dict[str, dict[str, Any]] = {}
    bench.reset_events()
    hourly = bench.backfill(ETL, bench.month[0], hours)
    run_ids = hourly.run_ids
    shapes["hourly"] = {"runs": hourly.runs, "succeeded": hourly.succeeded, "wall_s": hourly.wall,
                        "cpu": hourly.cpu, "stage_events": task_results(bench, run_ids, "Stage_events"),
                        "command": hourly.command, "checksums": star_checksums(bench.stack.warehouse_url)}
    for name, grain in (("daily", "day"), ("one_run", "window")):
        bench.settle()
        bench.reset_events()
        shapes[name] = manual_runs(bench, grain)
        shapes[name]["checksums"] = star_checksums(bench.stack.warehouse_url)
        x = shapes[name]
        say(f"    {name}: {x['succeeded']}/{x['runs']} runs succeeded, wall {x['wall_s']:.1f} s, Airflow CPU "
            f"{x['cpu']['airflow']:.1f} s, Stage_events peak RSS {x['stage_events']['peak_rss_mb']} MB")
    say("  checking the one run's star tables against the data contract (tests/reference.py)")
    contract = check_contract(bench.stack.warehouse_url, bench.source, *bench.month)
    # From an empty warehouse: the songs are staged again, by the month's one run.
    say("• month from an empty warehouse (songs not yet staged): one run, and a boto3 GET of the song objects")
    pg_execute(bench.stack.warehouse_url, *RESET_EVENT_TABLES, *RESET_SONG_STAGING, "TRUNCATE public.songs, "
               "public.artists")
    empty = manual_runs(bench, "window")
    keys_file = bench.state / "song_keys.txt"
    keys_file.write_text("\n".join(bench.song_keys) + "\n")
    argv = ["_get", "--endpoint", bench.stack.moto.endpoint, "--bucket", bench.stack.config.bucket,
            "--keys-file", str(keys_file.relative_to(ROOT)), "--threads", "16"]
    got = bench.driver(argv)
    songs_seconds = empty["stage_songs"]["seconds"][0] if empty["stage_songs"]["seconds"] else None
    songs_rate = empty["stage_songs"]["staged_objects"] / songs_seconds if songs_seconds else None
    floor_rate = got["objects"] / got["wall"]
    empty.update(stage_songs_objects_per_s=songs_rate, get_floor_objects_per_s=floor_rate,
                 get_command=f"{driver_command(argv)}   # boto3 get_object, 16 threads",
                 checksums=star_checksums(bench.stack.warehouse_url))
    say(f"    one run from empty: wall {empty['wall_s']:.1f} s; Stage_songs {songs_rate or 0:.0f} objects/s vs GET "
        f"{floor_rate:.0f} objects/s")
    sums = {name: x["checksums"] for name, x in shapes.items()}
    equal = all(v == sums["hourly"] for v in sums.values()) and empty["checksums"] == sums["hourly"]
    speedup = {name: shapes["hourly"]["wall_s"] / x["wall_s"] for name, x in shapes.items() if name != "hourly"}
    ok = all(x["succeeded"] == x["runs"] for x in (*shapes.values(), empty))
    return {
        "window": [f"{bench.month[0]:%Y-%m-%d}", f"{bench.month[1]:%Y-%m-%d}"],
        "shapes": shapes, "from_empty": empty, "speedup": speedup, "checksums_equal": equal,
        "contract": {t: ("matches" if not d else d) for t, d in contract.items()},
        "stage_songs_ratio": songs_rate / floor_rate if songs_rate else None,
        "goal": GOALS["month"],
        "pass": ok and equal and not any(contract.values()) and speedup["one_run"] >= 50 and speedup["daily"] >= 20
        and bool(songs_rate) and songs_rate / floor_rate >= 0.8,
    }
