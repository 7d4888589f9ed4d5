"""The report of a bench run (its results dict, as in bench-output/results.json): text with the commands
for the terminal, and the Markdown block that docs/performance.md's tables come from."""

from __future__ import annotations

from typing import Any

from sparkify_bench.plan import ETL, FLOOR
from sparkify_bench.stats import fmt, verdict


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
        both(f"   longest lock wait (a transaction waiting for another run's lock): {b['longest_lock_wait_s']:.2f} s",
             f"| Backfill of {b['runs']} runs, longest lock wait | {b['longest_lock_wait_s']:.2f} s | - | - | - | - |")
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
        both(f"     longest lock wait: {sc['longest_lock_wait_s']:.2f} s")
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
    if "celery" in s and "error" not in s["celery"]:
        ce = s["celery"]
        both(f"\n7. LocalExecutor vs CeleryExecutor with {ce['workers']} workers ({ce['runs']} hourly runs, {ETL})")
        for name, x in ce["shapes"].items():
            both(f"   {name:28}: {x['succeeded']}/{ce['runs']} runs, wall {x['wall_s']:.1f} s, Airflow CPU "
                 f"{x['airflow_cpu_s']:.1f} s (workers included), broker CPU {x['broker_cpu_s']:.1f} s, PostgreSQL "
                 f"CPU {x['postgres_cpu_s']:.1f} s")
            both(f"     command: {x['command']}")
            commands.append(x["command"])
        local, celery = ce["shapes"].values()
        md.append(f"| Backfill of {ce['runs']} runs, LocalExecutor vs CeleryExecutor ({ce['workers']} workers): "
                  f"wall, CPU of Airflow's processes (and Redis) | Celery {celery['wall_s']:.0f} s, "
                  f"{celery['airflow_cpu_s'] + celery['broker_cpu_s']:.0f} CPU-s | Local {local['wall_s']:.0f} s, "
                  f"{local['airflow_cpu_s']:.0f} CPU-s | {ce['wall_ratio'] or 0:.2f}x wall, "
                  f"{ce['cpu_ratio'] or 0:.2f}x CPU | - | {verdict(ce['pass'])} |")
        both(f"   Celery/Local: wall {ce['wall_ratio'] or 0:.2f}x, CPU {ce['cpu_ratio'] or 0:.2f}x; task instances "
             f"per worker: {ce['task_instances_per_worker']}; tables vs the data contract: "
             + ", ".join(f"{t} {v if v == 'matches' else 'DIFFERS'}" for t, v in ce["contract"].items()))
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
