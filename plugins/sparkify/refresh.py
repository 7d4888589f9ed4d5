"""Refreshes the loads owe, kept in the warehouse (``load_refresh``) rather than in a task's XCom.

When Stage_events stages again an object that changed since it was staged (late or corrected
events), every hour already loaded from it is stale, not only the run's: the songplays and users
loads must reload the whole UTC days of its events. Stage_events notes that debt, one row per
load (:data:`sparkify.tables.REFRESHES`), in its staging transaction; a load pays what its table
owes, in its own transaction, by reloading the range; a songplays load that did so notes the same
range for time, which is rebuilt from songplays (so time is never rebuilt from songplays that are
still stale). A debt is paid by the loads of the run that noted it, or by any run whose interval
falls in its range, whichever comes first.

Because the debt is a row committed with the staging, not a value handed from one task to the
next, it survives what an XCom does not: a load that fails and is retried later, a run cleared
and run again (its Stage_events then finds the object unchanged), a killed task, a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sparkify.warehouse import Session, naive_utc


def note(tx: Session, schema: str, tables: Sequence[str], start: datetime, end: datetime, run_id: str) -> None:
    """Note, in ``tx``, that the loads of ``tables`` owe a reload of ``[start, end)``."""
    if not tables:
        return
    params: dict[str, Any] = {"range_start": start, "range_end": end, "run_id": run_id,
                              "noted_at": naive_utc(datetime.now(UTC))}
    params.update({f"table{i}": table for i, table in enumerate(tables)})
    tx.run_file("refresh/note.sql", params, schema=schema, tables=tuple(tables))


def owed(tx: Session, schema: str, table: str, run: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """Lock ``load_refresh`` and ``table``; the range the load of ``table`` owes, or None.

    ``run``: ``run_id``, ``run_start`` and ``run_end`` (the run's own interval)."""
    ((start, end),) = tx.fetch_file("refresh/owed.sql", {**run, "refresh_table": table}, schema=schema, table=table)
    return None if start is None else (start, end)


def paid(tx: Session, schema: str, table: str, run: dict[str, Any]) -> None:
    """Remove what :func:`owed` found (``load_refresh`` is still locked by ``tx``)."""
    tx.run_file("refresh/paid.sql", {**run, "refresh_table": table}, schema=schema)
