"""Sections of Airflow backfills: against the floor DAG (backfill), a whole month with its plot and the
data contract (scale), and over max-active-runs and [core] parallelism (sweep)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sparkify_bench.bench import Backfill, Bench
from sparkify_bench.plan import BACKFILL_START, ETL, FLOOR, GOALS, OUT, ROOT
from sparkify_bench.plot import plot_runs, scale_title
from sparkify_bench.stats import largest_that_helps, spread
from sparkify_bench.warehouse import check_contract, explain, pg_query
from sparkify_local.progress import say


def section_backfill(bench: Bench) -> dict[str, Any]:
    bench.ensure_airflow()
    bench.warm_up()
    hours = bench.plan.backfill_hours
    say(f"• backfill: {hours} hourly runs from {BACKFILL_START:%Y-%m-%dT%H:%M}, {ETL} and {FLOOR} alternately, "
        f"{bench.plan.repeats}x each")
    runs: dict[str, list[Backfill]] = {ETL: [], FLOOR: []}
    for _ in range(bench.plan.repeats):
        bench.reset_events()
        runs[ETL].append(bench.backfill(ETL, BACKFILL_START, hours))
        runs[FLOOR].append(bench.backfill(FLOOR, BACKFILL_START, hours))
    ok = all(b.succeeded == b.runs for bs in runs.values() for b in bs)
    walls = {d: spread([b.wall for b in bs]) for d, bs in runs.items()}
    cpus = {d: spread([b.cpu["airflow"] for b in bs]) for d, bs in runs.items()}
    net = {d: spread([b.cpu["airflow"] - bench.idle["airflow"] * b.wall for b in bs]) for d, bs in runs.items()}
    pairs = list(zip(runs[ETL], runs[FLOOR], strict=True))
    wall_ratio = walls[ETL]["median"] / walls[FLOOR]["median"]
    cpu_ratio = cpus[ETL]["median"] / cpus[FLOOR]["median"] if cpus[FLOOR]["median"] else None
    return {
        "runs": hours, "all_succeeded": ok,
        "command": {d: bs[0].command for d, bs in runs.items()},
        "wall_s": walls, "airflow_cpu_s": cpus, "airflow_cpu_above_idle_s": net,
        "task_instances_run": {ETL: hours * 8, FLOOR: hours * (8 if not bench.args.floor_all_tasks else 10)},
        "postgres_cpu_s": {d: spread([b.cpu["postgres"] for b in bs]) for d, bs in runs.items()},
        "moto_cpu_s": {d: spread([b.cpu["moto"] for b in bs]) for d, bs in runs.items()},
        "wall_ratio": wall_ratio, "wall_ratio_pairs": spread([e.wall / f.wall for e, f in pairs]),
        "cpu_ratio": cpu_ratio,
        "cpu_ratio_pairs": spread([e.cpu["airflow"] / f.cpu["airflow"] for e, f in pairs if f.cpu["airflow"]]),
        "seconds_per_run": {d: walls[d]["median"] / hours for d in runs},
        "failures": [f for bs in runs.values() for b in bs for f in b.failures],
        # How long a run's transaction waited for another's lock (ACCESS EXCLUSIVE, docs/backfills.md).
        "longest_lock_wait_s": max(b.longest_lock_wait for b in runs[ETL]),
        "goal": GOALS["backfill"], "pass": ok and wall_ratio <= 1.25,
    }


def section_scale(bench: Bench) -> dict[str, Any]:
    bench.ensure_airflow()
    bench.warm_up()
    plan = bench.plan
    start, end = plan.scale_start, plan.scale_start + timedelta(hours=plan.scale_hours)
    say(f"• scale: one backfill of {plan.scale_hours} hourly runs [{start:%Y-%m-%dT%H:%M}, {end:%Y-%m-%dT%H:%M}) "
        f"on a warehouse emptied of events (songs staged)")
    bench.reset_events()
    run = bench.backfill(ETL, start, plan.scale_hours)
    say("  checking every star table against the data contract (tests/reference.py)")
    contract = check_contract(bench.stack.warehouse_url, bench.source, start, end)
    errors = pg_query(bench.stack.warehouse_url, "SELECT check_name, COUNT(*) FROM public.quality_results "
                      "WHERE NOT passed AND severity = 'error' GROUP BY 1")
    for table, diff in contract.items():
        say(f"    {table}: {'matches' if not diff else 'DIFFERS: ' + diff[:300]}")
    png = OUT / "month_backfill.png"
    title = scale_title(plan.scale_hours, run.max_active_runs)
    writer = plot_runs(png, run.completions, title)
    say(f"  plot of runs completed over time: {png.relative_to(ROOT)} ({writer})")
    bench.results["explain"] = explain(bench.stack.warehouse_url)
    rows = pg_query(bench.stack.warehouse_url, "SELECT 'songplays', COUNT(*) FROM public.songplays UNION ALL "
                    "SELECT 'users', COUNT(*) FROM public.users UNION ALL SELECT 'time', COUNT(*) FROM public.time")
    return {
        "runs": run.runs, "succeeded": run.succeeded, "command": run.command, "wall_s": run.wall,
        "runs_per_minute": run.runs / (run.wall / 60), "airflow_cpu_s": run.cpu["airflow"],
        "longest_lock_wait_s": run.longest_lock_wait,
        "postgres_cpu_s": run.cpu["postgres"], "moto_cpu_s": run.cpu["moto"],
        "contract": {t: ("matches" if not d else d) for t, d in contract.items()},
        "contract_pass": not any(contract.values()), "quality_errors": dict(errors), "rows": dict(rows),
        "plot": str(png.relative_to(ROOT)), "failures": run.failures[:20],
        # What the plot is drawn from: `python -m sparkify_bench.plot results.json` redraws it.
        "max_active_runs": run.max_active_runs, "completions_min": run.completions,
        "pass": run.succeeded == run.runs and not any(contract.values()) and not errors,
    }


def section_sweep(bench: Bench) -> dict[str, Any]:
    bench.ensure_airflow()
    bench.warm_up()
    plan, stack = bench.plan, bench.stack
    default_parallelism = stack.config.parallelism
    say(f"• sweep: {plan.sweep_hours} runs from {BACKFILL_START:%Y-%m-%dT%H:%M}; max-active-runs "
        f"{plan.sweep_mar} at parallelism {default_parallelism}, then parallelism {plan.sweep_parallelism}")
    by_mar: dict[int, dict[str, Any]] = {}
    for mar in plan.sweep_mar:
        bench.reset_events()
        b = bench.backfill(ETL, BACKFILL_START, plan.sweep_hours, max_active_runs=mar)
        by_mar[mar] = {"wall_s": b.wall, "airflow_cpu_s": b.cpu["airflow"], "succeeded": b.succeeded,
                       "command": b.command}
    best_mar = largest_that_helps({k: v["wall_s"] for k, v in by_mar.items()})
    by_par: dict[int, dict[str, Any]] = {}
    try:
        for parallelism in plan.sweep_parallelism:
            if parallelism != stack.config.parallelism:
                say(f"  restarting the scheduler with [core] parallelism {parallelism}")
                stack.restart_scheduler(parallelism)
            bench.reset_events()
            b = bench.backfill(ETL, BACKFILL_START, plan.sweep_hours, max_active_runs=best_mar)
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


def section_celery(bench: Bench) -> dict[str, Any]:
    """The same backfill on the LocalExecutor, then on the CeleryExecutor with two workers and a Redis
    broker (make run EXECUTOR=celery WORKERS=2), side by side on one stack. Celery runs last: the
    scheduler is left on it (SECTIONS puts this section after every other)."""
    bench.ensure_airflow()
    bench.warm_up()
    plan, stack = bench.plan, bench.stack
    hours, workers = plan.celery_hours, 2
    say(f"• celery: {hours} hourly runs from {BACKFILL_START:%Y-%m-%dT%H:%M} on the LocalExecutor, then on the "
        f"CeleryExecutor with {workers} workers")
    bench.reset_events()
    local = bench.backfill(ETL, BACKFILL_START, hours)
    stack.switch_to_celery(workers)
    bench.reset_events()
    celery = bench.backfill(ETL, BACKFILL_START, hours)
    end = BACKFILL_START + timedelta(hours=hours)
    contract = check_contract(stack.warehouse_url, bench.source, BACKFILL_START, end)
    per_worker = stack.tasks_per_worker(celery.run_ids)
    say("  tables vs the data contract after the Celery backfill: "
        + ", ".join(f"{t} {'matches' if not d else 'DIFFERS'}" for t, d in contract.items()))
    say("  task instances per worker: " + ", ".join(f"{k} {v}" for k, v in per_worker.items()))
    shapes = {"LocalExecutor": local, f"CeleryExecutor, {workers} workers": celery}
    return {
        "runs": hours, "workers": workers,
        "shapes": {name: {"wall_s": b.wall, "airflow_cpu_s": b.cpu["airflow"], "broker_cpu_s": b.cpu.get("broker", 0.0),
                          "postgres_cpu_s": b.cpu["postgres"], "moto_cpu_s": b.cpu["moto"],
                          "succeeded": b.succeeded, "command": b.command} for name, b in shapes.items()},
        "wall_ratio": celery.wall / local.wall if local.wall else None,
        "cpu_ratio": (celery.cpu["airflow"] + celery.cpu.get("broker", 0.0)) / local.cpu["airflow"]
        if local.cpu["airflow"] else None,
        "task_instances_per_worker": per_worker,
        "contract": {t: ("matches" if not d else d) for t, d in contract.items()},
        "failures": (local.failures + celery.failures)[:20],
        "pass": local.succeeded == celery.succeeded == hours and not any(contract.values())
        and len(per_worker) == workers,
    }
