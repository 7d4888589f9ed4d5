"""Late or corrected event files: when an object staged before changed, the loads owe a reload of
the whole UTC days its events fall on, noted in the staging transaction (see :mod:`sparkify.refresh`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sparkify import refresh
from sparkify.staging.params import StagingParams
from sparkify.tables import REFRESHES
from sparkify.warehouse import Session


def refresh_range(tx: Session, p: StagingParams, changed: list[str]) -> list[str] | None:
    """The whole UTC days on which the changed objects' events fall, as [start, end) ISO strings;
    None when no event has a time (the loads then fall back to the run's day)."""
    hours = [(first, last) for key, first, last in tx.fetch_file("stage/batch_hours.sql", schema=p.schema)
             if key in changed]
    if not hours:
        return None
    start = _day(min(first for first, _ in hours))
    end = _day(max(last for _, last in hours)) + timedelta(days=1)
    return [start.isoformat(), end.isoformat()]


def note_owed_reloads(tx: Session, p: StagingParams, days: list[str] | None, run_day: datetime, run_id: str) -> None:
    """Note that the loads fed by ``p.table`` owe a reload of ``days`` (or of the run's day), in
    this transaction, so the debt outlives any retry or clearing of the run."""
    tables = REFRESHES.get(p.table)
    if not tables:
        return
    if days:
        first, last = (datetime.fromisoformat(moment) for moment in days)
    else:
        first = _day(run_day)
        last = first + timedelta(days=1)
    refresh.note(tx, p.schema, tables, first, last, run_id)


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)
