"""Sections on the staging operator alone (no Airflow scheduler): first-time staging against a boto3 GET
floor (staging), staging when everything is staged (incremental), peak RSS on large inputs (memory)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from sparkify_bench.bench import Bench
from sparkify_bench.data import empty_bucket, make_events_file, upload_generated_songs
from sparkify_bench.drivers import driver_command
from sparkify_bench.plan import DATA, EVENTS_DAY, GOALS, MEMORY_BUCKET, OUT, RESET_SONG_STAGING, ROOT
from sparkify_bench.stats import fmt, spread
from sparkify_bench.warehouse import pg_execute, pg_query
from sparkify_local.progress import say


def section_staging(bench: Bench) -> dict[str, Any]:
    stack, plan = bench.stack, bench.plan
    bench.bench_db("bench_staging")
    keys_file = bench.state / "song_keys.txt"
    keys_file.write_text("\n".join(bench.song_keys) + "\n")
    sample = bench.state / "song_keys_sample.txt"
    sample.write_text("\n".join(bench.song_keys[: plan.get_sample]) + "\n")
    bucket, endpoint = stack.config.bucket, stack.moto.endpoint

    def get(threads: int, keys: Path) -> tuple[dict[str, Any], str]:
        argv = ["_get", "--endpoint", endpoint, "--bucket", bucket, "--keys-file", str(keys.relative_to(ROOT)),
                "--threads", str(threads)]
        command = f"{driver_command(argv)}   # boto3 get_object of each key, {threads} threads"
        return bench.driver(argv), command

    n_sample = min(plan.get_sample, len(bench.song_keys))
    say(f"• staging: boto3 GET floor, thread sweep on {n_sample} keys: {plan.get_threads}")
    sweep = {}
    for threads in plan.get_threads:
        figures, _ = get(threads, sample)
        sweep[threads] = figures["objects"] / figures["wall"]
        say(f"    {threads:3d} threads: {sweep[threads]:.0f} objects/s")
    best = max(sweep, key=sweep.get)
    say(f"• staging: first-time staging of {len(bench.song_keys)} song objects vs GET at {best} threads, "
        f"alternately, {plan.repeats}x each")
    pipeline, floor, rss = [], [], []
    commands = {}
    for _ in range(plan.repeats):
        pg_execute(bench.bench_dbs["bench_staging"], *RESET_SONG_STAGING)
        figures, commands["pipeline"] = bench.stage("bench_staging", bucket=bucket, prefix="song_data")
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
        "objects": len(bench.song_keys), "command": commands, "thread_sweep_objects_per_s": sweep,
        "best_threads": best, "pipeline_objects_per_s": spread(pipeline), "floor_objects_per_s": spread(floor),
        "ratio": ratio, "ratio_pairs": spread([p / f for p, f in zip(pipeline, floor, strict=True)]),
        "pipeline_peak_rss_mb": spread(rss), "goal": GOALS["staging"], "pass": ratio >= 0.8,
    }


def section_incremental(bench: Bench) -> dict[str, Any]:
    bucket = bench.stack.config.bucket
    bench.bench_db("bench_staging")
    rows = pg_query(bench.bench_dbs["bench_staging"],
                    "SELECT COUNT(*) FROM public.load_manifest WHERE source = 'staging_songs'")
    if rows[0][0] < len(bench.song_keys):
        say("• incremental: staging every song once first (untimed)")
        pg_execute(bench.bench_dbs["bench_staging"], *RESET_SONG_STAGING)
        bench.stage("bench_staging", bucket=bucket, prefix="song_data")
    say(f"• incremental: {len(bench.song_keys)} objects already staged; listing due (period 0 h) and inside the "
        f"listing period (24 h), {bench.plan.repeats}x each")
    out: dict[str, Any] = {"objects": len(bench.song_keys)}
    fetched_ok = True
    for label, period in (("listing_due", 0), ("within_period", 24)):
        walls, fetched, lists = [], [], []
        command = ""
        for _ in range(bench.plan.repeats):
            figures, command = bench.stage("bench_staging", bucket=bucket, prefix="song_data",
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


def section_memory(bench: Bench) -> dict[str, Any]:
    stack, plan = bench.stack, bench.plan
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
        bench.bench_db("bench_memory", fresh=True)
        figures, command = bench.stage("bench_memory", bucket=MEMORY_BUCKET, key=key)
        events.append({"mib": mib, "events": lines, "rows": figures["result"].get("rows"),
                       "wall_s": figures["wall"], "peak_rss_mb": figures["peak_rss_mb"],
                       "baseline_rss_mb": figures["baseline_rss_mb"], "command": command})
        say(f"    {mib:5d} MiB ({lines} events): staged {figures['result'].get('rows')} rows in "
            f"{figures['wall']:.1f} s, peak RSS {figures['peak_rss_mb']:.0f} MB "
            f"(after imports {figures['baseline_rss_mb']:.0f} MB)")
        client.delete_object(Bucket=MEMORY_BUCKET, Key=key)
    songs: list[dict[str, Any]] = []
    if plan.memory_songs:
        say(f"• memory: staging {len(bench.song_keys)} song objects, then {plan.memory_songs} generated ones")
        bench.bench_db("bench_memory", fresh=True)
        figures, command = bench.stage("bench_memory", bucket=stack.config.bucket, prefix="song_data")
        songs.append({"objects": figures["result"]["staged_objects"], "wall_s": figures["wall"],
                      "peak_rss_mb": figures["peak_rss_mb"], "baseline_rss_mb": figures["baseline_rss_mb"],
                      "command": command})
        began = time.monotonic()
        upload_generated_songs(client, bench.source, bench.song_keys, plan.memory_songs)
        say(f"    uploaded {plan.memory_songs} generated song objects in {time.monotonic() - began:.0f} s")
        bench.bench_db("bench_memory", fresh=True)
        figures, command = bench.stage("bench_memory", bucket=MEMORY_BUCKET, prefix="song_data")
        songs.append({"objects": figures["result"]["staged_objects"], "wall_s": figures["wall"],
                      "peak_rss_mb": figures["peak_rss_mb"], "baseline_rss_mb": figures["baseline_rss_mb"],
                      "command": command})
        for s in songs:
            say(f"    {s['objects']:6d} song objects: {s['wall_s']:.1f} s, peak RSS {s['peak_rss_mb']:.0f} MB")
        empty_bucket(client, MEMORY_BUCKET)
    pg_execute(stack.pg.url(), 'DROP DATABASE IF EXISTS "bench_memory" WITH (FORCE)')
    bench.bench_dbs.pop("bench_memory", None)

    def flat(series: list[dict[str, Any]]) -> bool | None:
        if len(series) < 2:
            return None
        peaks = [s["peak_rss_mb"] for s in series]
        return max(peaks) < 200 and peaks[-1] <= peaks[0] * 1.10

    verdicts = [v for v in (flat(events), flat(songs)) if v is not None]
    return {"events": events, "songs": songs, "events_flat": flat(events), "songs_flat": flat(songs),
            "goal": GOALS["memory"], "pass": all(verdicts) if verdicts else None}
