"""A run's data interval: any whole number of hours, from one hour to a width the deployment allows.

An hourly scheduled run owns one hour; a manual run (the UI's Trigger form with a manual data
interval, or ``POST /api/v2/dags/sparkify_etl/dagRuns`` with ``data_interval_start`` and
``data_interval_end``) may own a day, three days or a month, and loads the same tables as the
hourly runs of those hours would. Stage_events then stages every daily event file the interval
touches (:func:`event_log_keys`), and the data-quality checks require each of them.

The widest interval a run may have is a deployment setting, read from the task's environment
(``SPARKIFY_MAX_INTERVAL_DAYS``, default 31), never a DAG param that a trigger form could raise:
a wider run holds more in the staging task's memory, makes a bigger Redshift transaction and
keeps the tables locked longer while hourly runs wait (docs/backfills.md).
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta

from sparkify.errors import PermanentError
from sparkify.warehouse import naive_utc

MAX_DAYS_SETTING = "SPARKIFY_MAX_INTERVAL_DAYS"
DEFAULT_MAX_DAYS = 31.0
_HOUR = timedelta(hours=1)


class IntervalError(PermanentError):
    """A data interval this pipeline cannot load; the message names the interval."""


def max_width() -> timedelta:
    """The widest interval allowed, from ``SPARKIFY_MAX_INTERVAL_DAYS`` (read on each call)."""
    raw = os.environ.get(MAX_DAYS_SETTING, "").strip()
    if not raw:
        return timedelta(days=DEFAULT_MAX_DAYS)
    try:
        days = float(raw)
    except ValueError:
        raise IntervalError(f"{MAX_DAYS_SETTING}={raw!r} is not a number of days") from None
    if days <= 0:
        raise IntervalError(f"{MAX_DAYS_SETTING}={raw!r} must be a positive number of days")
    return timedelta(days=days)


def _hours(start: datetime, end: datetime) -> int:
    """Whole hours from ``start`` to ``end`` (plain numbers: pendulum's and datetime's intervals differ)."""
    return int((end - start).total_seconds() // 3600)


def describe(start: datetime, end: datetime) -> str:
    return f"[{start.isoformat()}, {end.isoformat()})"


def check(start: datetime, end: datetime) -> None:
    """Raise :class:`IntervalError` unless ``[start, end)`` is whole hours, not empty, and no wider
    than :func:`max_width`."""
    if start is None or end is None:
        raise IntervalError("the run has no data interval (a manual run needs a logical date or an interval)")
    what = describe(start, end)
    for moment in (naive_utc(start), naive_utc(end)):  # on the hour in UTC (a +05:30 zone is not)
        if (moment.minute, moment.second, moment.microsecond) != (0, 0, 0):
            raise IntervalError(
                f"data interval {what} is not a whole number of hours: it must start and end on the hour (UTC)"
            )
    if end <= start:
        raise IntervalError(f"data interval {what} is empty: its end must be after its start")
    limit = max_width()
    if _hours(start, end) * _HOUR > limit:
        raise IntervalError(
            f"data interval {what} is {_hours(start, end):g} hours wide, wider than this deployment "
            f"allows ({MAX_DAYS_SETTING}={limit / timedelta(days=1):g} days): split it into narrower runs "
            f"(make run GRAIN=day) or raise {MAX_DAYS_SETTING} in Airflow's environment"
        )


def manual_logical_date(start: datetime, end: datetime) -> datetime:
    """The logical date this project gives a run triggered with the manual data interval
    ``[start, end)``: its start plus one second per hour of width (a day: ``00:00:24``).

    Airflow allows one run per logical date of a DAG, and an hourly run's is its interval's start,
    on the hour: this one never equals it, and equals another run's only when that run has the
    same interval (so triggering a day again finds that day's run)."""
    return start + timedelta(seconds=_hours(start, end))


def days(start: datetime, end: datetime) -> list[date]:
    """The UTC days that ``[start, end)`` touches, in order (``start`` and ``end`` in UTC)."""
    if end <= start:
        return []
    first = start.date()
    last = (end - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def event_log_key(prefix: str, day: date) -> str:
    """The daily event file of ``day``: ``<prefix>/<yyyy>/<mm>/<yyyy-mm-dd>-events.json``."""
    return f"{prefix}/{day:%Y/%m}/{day:%Y-%m-%d}-events.json"


def event_log_keys(prefix: str, start: datetime, end: datetime) -> list[str]:
    """Every daily event file the interval ``[start, end)`` needs (one per UTC day it touches)."""
    return [event_log_key(prefix, day) for day in days(naive_utc(start), naive_utc(end))]


def late_event_log_keys(prefix: str, start: datetime, late_days: int) -> list[str]:
    """The ``late_days`` days' files before the interval's first day, nearest first: staged again
    when they changed after they were loaded."""
    first = naive_utc(start).date()
    return [event_log_key(prefix, first - timedelta(days=n)) for n in range(1, int(late_days) + 1)]
