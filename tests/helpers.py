"""Helpers for running sparkify_etl in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def hours(start: datetime, end: datetime) -> list[datetime]:
    """The hourly interval starts in [start, end)."""
    out, t = [], start
    while t < end:
        out.append(t)
        t += timedelta(hours=1)
    return out


def run_interval(dag: Any, interval_start: datetime, **conf: Any):
    """Run ``dag`` with ``dag.test()`` for the hour starting at ``interval_start`` (UTC).

    For a CronDataIntervalTimetable, a manual run at ``run_after`` owns the interval that ended
    there, so the logical date passed is the interval's end.
    """
    if interval_start.tzinfo is None:
        interval_start = interval_start.replace(tzinfo=UTC)
    return dag.test(logical_date=interval_start + timedelta(hours=1), run_conf=conf or None)


def load_dag(dag_id: str = "sparkify_etl"):
    import importlib

    module = importlib.import_module(dag_id)
    return module.dag
