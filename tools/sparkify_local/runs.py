"""The runs of `make run`, through Airflow's REST API: the hourly backfill (created, waited for),
the runs of a day or window grain (manual data intervals), and closing what an interrupted run left.

Which runs a backfill made: the API's runs carry no ``backfill_id``, so they are found by what
creating a backfill does to them: every run it creates or reprocesses becomes a ``backfill`` run
updated at or after the backfill's ``created_at``, with a logical date in its range; a run it keeps
("already exists") is not touched.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sparkify_local.airflow_api import DONE, ApiError
from sparkify_local.config import DAG_ID, RunnerError
from sparkify_local.progress import say

if TYPE_CHECKING:
    from sparkify_local.stack import Stack

UNFINISHED = ["queued", "running"]


def _hour(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M}"


def _progress(runs: list, planned: int, last: str | None) -> str:
    """Print the runs' progress line when it changed; the line."""
    done = [r for r in runs if r.state.value in DONE]
    ok = sum(1 for r in done if r.state.value == "success")
    running = sorted(r.data_interval_start for r in runs if r.state.value == "running")
    line = (f"  runs {len(done)}/{planned} done ({ok} succeeded, {len(done) - ok} failed); "
            f"running: {_hour(running[0]) if running else '-'}")
    if line != last:
        say(line)
    return line


def create_backfill(stack: Stack) -> int | None:
    """Start Airflow's backfill of the window (``POST /api/v2/backfills``); its id, or None when it has
    no run to do (no hour of the window has ended yet, or every run is kept as REPROCESS says)."""
    config = stack.config
    last_start = config.end - timedelta(hours=1)  # to_date is inclusive
    say(f"• POST /api/v2/backfills: {DAG_ID} from {_hour(config.start)} to {_hour(last_start)} (inclusive), "
        f"max_active_runs {config.max_active_runs}, reprocess_behavior {config.reprocess}"
        + (", run_backwards" if config.run_backwards else ""))
    try:
        backfill = stack.rest.create_backfill(
            DAG_ID, config.start, last_start, max_active_runs=config.max_active_runs,
            reprocess_behavior=config.reprocess, run_backwards=config.run_backwards,
        )
    except ApiError as err:
        # 422 with NoBackfillRunsToCreate's or InvalidBackfillDate's message: no hour has ended yet.
        if err.status == 422 and ("No runs to create" in err.detail or "future dates" in err.detail):
            say("  no run to create: no hour of the window has ended yet")
            return None
        raise RunnerError(f"creating the backfill failed: {err}") from None
    to_run = len(backfill_runs(stack, backfill))
    kept = config.hours - to_run
    if not to_run:
        done = "succeeded" if config.reprocess == "failed" else "ran"
        say(f"  every run of the window already {done} (REPROCESS={config.reprocess}); "
            "REPROCESS=completed reloads them")
        stack.rest.cancel_backfill(backfill.id)  # nothing to wait for: free the DAG's one backfill slot now
        return None
    if kept:
        say(f"  {kept} run(s) of the window already ran and are kept (REPROCESS={config.reprocess})")
    return backfill.id


def backfill_runs(stack: Stack, backfill: Any) -> list:
    """The runs a backfill created or reprocessed (see the module's docstring)."""
    return stack.rest.dag_runs(DAG_ID, logical_from=backfill.from_date,
                               logical_before=backfill.to_date + timedelta(microseconds=1),
                               run_types=["backfill"], updated_since=backfill.created_at)


def wait_for_backfill(stack: Stack, backfill_id: int, poll: float = 2.0) -> None:
    """Wait until every run of the backfill has finished, printing progress as it changes. (The
    backfill itself is marked complete seconds later: the runs are what counts.)"""
    backfill = stack.rest.backfill(backfill_id)
    last = None
    while True:
        runs = backfill_runs(stack, backfill)
        last = _progress(runs, len(runs), last)
        if runs and all(r.state.value in DONE for r in runs):
            return
        if not runs and stack.rest.backfill(backfill_id).completed_at is not None:
            return  # a backfill with no run to wait for
        stack.check_processes(verb="stopped")
        time.sleep(poll)


def manual_run_body(start: datetime, end: datetime, grain: str) -> dict[str, Any]:
    """The body of ``POST /api/v2/dags/sparkify_etl/dagRuns`` for one run over ``[start, end)``:
    what the UI's Trigger form sends with a manual data interval."""
    from sparkify.intervals import manual_logical_date

    def iso(moment: datetime) -> str:
        return f"{moment:%Y-%m-%dT%H:%M:%S}Z"

    return {
        "dag_run_id": f"manual__{grain}__{start:%Y-%m-%dT%H}--{end:%Y-%m-%dT%H}",
        "logical_date": iso(manual_logical_date(start, end)),
        "data_interval_start": iso(start),
        "data_interval_end": iso(end),
        "conf": {},
        "note": f"make run GRAIN={grain}",
    }


def run_intervals(stack: Stack, poll: float = 2.0) -> None:
    """GRAIN=day or window: trigger one run per interval through the REST API (at most MAX_ACTIVE_RUNS
    unfinished at a time), keeping or clearing runs that exist as REPROCESS says, and wait for all."""
    from sparkify.intervals import manual_logical_date

    config = stack.config
    planned = config.intervals()
    say(f"• {len(planned)} run(s) over [{_hour(config.start)}, {_hour(config.end)}) "
        f"(GRAIN={config.grain}), at most {config.max_active_runs} at a time, "
        f"through POST /api/v2/dags/{DAG_ID}/dagRuns")
    redo = {"none": (), "failed": ("failed",), "completed": ("failed", "success")}[config.reprocess]
    # The runs that exist for the window's logical dates (one per logical date), by logical date.
    existing = {naive(r.logical_date): r for r in stack.rest.dag_runs(DAG_ID, logical_from=config.start,
                                                                      logical_before=config.end)}
    waiting = list(planned)
    mine: dict[tuple[datetime, datetime], str] = {}  # interval -> run id, of the runs this command waits for
    kept = 0
    last = None
    while True:
        runs = {r.dag_run_id: r for r in stack.rest.dag_runs(DAG_ID, logical_from=config.start,
                                                             logical_before=config.end)} if mine else {}
        unfinished = [r for r in mine.values() if r not in runs or runs[r].state.value not in DONE]
        while waiting and len(unfinished) < config.max_active_runs:
            start, end = waiting.pop(0)
            found = existing.get(manual_logical_date(start, end))
            if found is None:
                run_id = stack.rest.trigger_dag_run(DAG_ID, manual_run_body(start, end, config.grain))
            else:
                run_id, state = found.dag_run_id, found.state.value
                if state in DONE and state not in redo:
                    kept += 1
                    continue
                if state in redo:
                    stack.rest.clear_dag_run(DAG_ID, run_id)
            mine[(start, end)] = run_id
            unfinished.append(run_id)
        states = {r: runs[r].state.value for r in mine.values() if r in runs}
        done = [r for r in mine.values() if states.get(r) in DONE]
        ok = sum(1 for r in done if states[r] == "success")
        running = sorted(i[0] for i, r in mine.items() if states.get(r) == "running")
        line = (f"  runs {len(done)}/{len(planned) - kept} done ({ok} succeeded, {len(done) - ok} failed); "
                f"running: {_hour(running[0]) if running else '-'}")
        if line != last:
            say(line)
            last = line
        if not waiting and len(done) == len(mine):
            if kept:
                done_word = "succeeded" if config.reprocess == "failed" else "ran"
                say(f"  {kept} run(s) of the window already {done_word} and are kept (REPROCESS={config.reprocess})")
            return
        stack.check_processes(verb="stopped")
        time.sleep(poll)


def naive(moment: datetime | None) -> datetime | None:
    """An API datetime (aware, UTC) as the local run's naive UTC."""
    from sparkify.warehouse import naive_utc

    return None if moment is None else naive_utc(moment)


def close_interrupted_runs(stack: Stack) -> None:
    """Close what an interrupted run left, through the REST API, while no scheduler runs (the
    api-server alone is up): its unfinished backfill, cancelled (Airflow allows one per DAG, and a
    scheduler would resume it), and the runs left queued or running (backfill runs, or runs of this
    window), marked failed as the UI's "mark failed" does (running tasks failed, pending ones skipped),
    so that the next backfill reruns them."""
    config = stack.config
    backfills = [b.id for b in stack.rest.backfills(DAG_ID) if b.completed_at is None]
    runs = {r.dag_run_id: r for r in stack.rest.dag_runs(DAG_ID, states=UNFINISHED, run_types=["backfill"])}
    runs.update({r.dag_run_id: r for r in stack.rest.dag_runs(
        DAG_ID, states=UNFINISHED, logical_from=config.start, logical_before=config.end)})
    for backfill_id in backfills:
        stack.rest.cancel_backfill(backfill_id)  # paused (no run starts), its queued runs failed, completed
    for run_id in runs:
        stack.rest.mark_dag_run_failed(DAG_ID, run_id)
    for backfill_id in backfills:
        say(f"• closed backfill {backfill_id}, left unfinished by an interrupted run")
    if runs:
        hours = ", ".join(_hour(r.data_interval_start) for r in sorted(runs.values(),
                                                                        key=lambda r: r.data_interval_start))
        say(f"  its unfinished runs are marked failed ({hours}); REPROCESS=failed reruns them")
