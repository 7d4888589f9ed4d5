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


def run_window(dag: Any, start: datetime, end: datetime, **conf: Any):
    """Run ``dag`` with ``dag.test()`` over the data interval ``[start, end)`` (UTC), as a run
    triggered with a manual data interval (the UI's form, the REST API) would own it.

    ``dag.test()`` takes no interval: it asks the timetable for the interval of its logical date,
    so the timetable's answer is replaced, for this call only, by ``[start, end)``."""
    from unittest import mock

    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval

    from sparkify.intervals import manual_logical_date

    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))
    timetable_class = type(coerce_to_core_timetable(dag.timetable))
    with mock.patch.object(timetable_class, "infer_manual_data_interval",
                           lambda self, run_after: DataInterval(start, end)):
        return dag.test(logical_date=manual_logical_date(start, end), run_conf=conf or None)
