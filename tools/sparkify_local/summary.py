"""`make run`'s summary: the runs of the window (through Airflow's REST API), the failed tasks and
their logs, the failed data-quality checks (worded by :func:`sparkify.quality.describe_failure`),
the rows per table, and the analysis queries' answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkify_local.config import DAG_ID, RunnerError
from sparkify_local.progress import say
from sparkify_local.runs import naive
from sparkify_local.stack import redact_url
from sparkify_local.workers import tasks_per_worker

if TYPE_CHECKING:
    from sparkify_local.stack import Stack


@dataclass
class Summary:
    succeeded: int
    failed: list[tuple[str, str, str, Path, str]]  # (interval, task, state, log path, run id)
    missing: int
    table_rows: dict[str, int]
    quality: dict[str, int]
    analysis: str
    failed_checks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # run id -> failed checks
    per_worker: dict[str, int] = field(default_factory=dict)  # EXECUTOR=celery: task instances per worker


def summarise(stack: Stack) -> Summary:
    config = stack.config
    planned = set(config.intervals())
    # The latest run of each of this grain's intervals (a window may also hold runs of another grain).
    latest: dict[tuple[datetime, datetime], Any] = {}
    for run in stack.rest.dag_runs(DAG_ID, logical_from=config.start, logical_before=config.end):  # by id
        interval = (naive(run.data_interval_start), naive(run.data_interval_end))
        if interval in planned:
            latest[interval] = run
    runs = [(run.dag_run_id, run.state.value, start) for (start, _), run in sorted(latest.items())]
    succeeded = sum(1 for r in runs if r[1] == "success")
    failed = []
    for run_id, state, interval in runs:
        if state == "success":
            continue
        tasks = [(ti.task_id, ti.state.value, ti.try_number) for ti in stack.rest.task_instances(
            DAG_ID, run_id, states=["failed", "upstream_failed", "up_for_retry"])]
        for task_id, task_state, try_number in tasks or [("?", state, 1)]:
            if task_state == "upstream_failed":
                continue
            log = (stack.airflow_home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
                   / f"attempt={max(try_number, 1)}.log")
            failed.append((f"{interval:%Y-%m-%dT%H:%M}", task_id, task_state, log, run_id))
    # Through Airflow's `redshift` connection, as the tasks saw it (connections.yaml or the user's
    # AIRFLOW_CONN_REDSHIFT may point it elsewhere than the embedded warehouse): the rows, then the
    # analysts' questions, in one process.
    results, errors = stack.project_commands([
        f"sparkify.tables counts --conn-id redshift --start {config.start.isoformat()} --end {config.end.isoformat()}",
        "sparkify.analysis --conn-id redshift",
    ])
    counted = results[0]
    if counted["code"]:
        raise RunnerError(f"counting the warehouse's rows failed:\n{errors[-2000:]}")
    figures = json.loads(counted["stdout"].strip().splitlines()[-1])
    table_rows, quality = figures["tables"], figures["quality"]
    # The checks that failed in each failed run's last data-quality attempt.
    failed_runs = {run_id for run_id, state, _ in runs if state != "success"}
    last = {}
    for failure in figures.get("failures", []):
        if failure["run_id"] in failed_runs:
            last[failure["run_id"]] = max(last.get(failure["run_id"], ""), failure["checked_at"])
    checks: dict[str, list[dict[str, Any]]] = {}
    for failure in figures.get("failures", []):
        if failure["checked_at"] == last.get(failure["run_id"]):
            checks.setdefault(failure["run_id"], []).append(failure)
    analysed = results[1]
    answers = analysed["stdout"] if analysed["code"] == 0 else f"(analysis failed: {errors[-500:]})"
    per_worker = dict(sorted(tasks_per_worker(stack, DAG_ID).items())) if config.celery else {}
    return Summary(succeeded, failed, len(planned) - len(runs), table_rows, quality, answers, checks, per_worker)


def print_summary(stack: Stack, summary: Summary, wall: float) -> None:
    from sparkify.quality import describe_failure

    config = stack.config
    say("")
    count = len(config.intervals())
    runs = {"hour": f"{count} hourly runs", "day": f"{count} daily run{'s' if count != 1 else ''}",
            "window": "1 run over the whole window"}[config.grain]
    say(f"=== sparkify_etl over [{config.start:%Y-%m-%dT%H:%M}, {config.end:%Y-%m-%dT%H:%M}) UTC: {runs} ===")
    say(f"runs succeeded: {summary.succeeded}   failed: {len(set(f[0] for f in summary.failed))}"
        + (f"   not run: {summary.missing}" if summary.missing else ""))
    say(f"wall time: {wall:.1f} s")
    for interval, task, state, log, run_id in summary.failed:
        say(f"  FAILED {interval}  {task} ({state})  log: {log}")
        if task == "Run_data_quality_checks":
            for check in summary.failed_checks.get(run_id, []):
                text = describe_failure(check["check"], check["table"], check["column"], check["actual"],
                                        check["expected"], description=check["description"],
                                        samples=check["samples"].splitlines() if check["samples"] else None)
                for line in ("    " + text).splitlines():
                    say(line)
    if summary.per_worker:
        say("task instances per Celery worker (hostname of the last try): "
            + ", ".join(f"{name} {n}" for name, n in summary.per_worker.items()))
    say("rows per table: " + ", ".join(f"{t} {n}" for t, n in summary.table_rows.items()))
    say("data-quality results in the window: " + (", ".join(f"{k} {v}" for k, v in sorted(summary.quality.items()))
                                                   or "none recorded"))
    elsewhere = stack.redshift_elsewhere()
    if elsewhere:
        say(f"warehouse: the `redshift` connection of {elsewhere}")
    else:
        say(f"warehouse: {redact_url(stack.warehouse_url)}   (psql '{redact_url(stack.warehouse_url)}')")
    say("")
    say(summary.analysis.rstrip())
