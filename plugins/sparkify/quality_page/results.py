"""Reading ``quality_results`` for the quality page: a window of one DAG's check results.

The page only reads, through the warehouse connection (``sparkify.warehouse``), in a read-only
transaction; the SQL is in ``include/sql/quality_page/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sparkify import settings
from sparkify.warehouse import Session, Warehouse


@dataclass(frozen=True)
class Result:
    """One check's result in one run (a row of ``quality_results``)."""

    run_id: str
    interval_start: datetime
    interval_end: datetime
    check_name: str
    table_name: str | None
    column_name: str | None
    severity: str
    actual: str | None
    expected: str | None
    passed: bool
    checked_at: datetime
    description: str | None
    samples: str | None

    @property
    def status(self) -> str:
        """``pass``, ``warn`` (a failed warn-severity check) or ``fail`` (a failed error check)."""
        if self.passed:
            return "pass"
        return "warn" if self.severity == "warn" else "fail"


@contextmanager
def read_only(conn_id: str) -> Iterator[Session]:
    """A session on the warehouse whose statements run in one read-only transaction."""
    with Warehouse(conn_id).autocommit() as session:
        session.run_file("quality_page/read_only.sql")
        yield session


def last_interval_end(session: Session, dag_id: str, schema: str = settings.DEFAULTS.schema) -> datetime | None:
    """The end of the latest interval the DAG's checks recorded, or None when there are none."""
    settings.validate_identifier(schema, "schema")
    rows = session.fetch_file("quality_page/last_interval_end.sql", {"dag_id": dag_id}, schema=schema)
    return rows[0][0] if rows else None


def window_results(session: Session, dag_id: str, start: datetime, end: datetime,
                   schema: str = settings.DEFAULTS.schema) -> list[Result]:
    """The results of the latest attempt of every run whose interval overlaps ``[start, end)``."""
    settings.validate_identifier(schema, "schema")
    rows = session.fetch_file("quality_page/results.sql", {"dag_id": dag_id, "start": start, "end": end},
                              schema=schema)
    return [Result(*row) for row in rows]


def recent_days(session: Session, dag_id: str, limit: int = 14,
                schema: str = settings.DEFAULTS.schema) -> list[tuple[datetime, int, int]]:
    """The latest ``limit`` days with results, newest first: (day, runs, runs that failed an error check)."""
    settings.validate_identifier(schema, "schema")
    rows = session.fetch_file("quality_page/days.sql", {"dag_id": dag_id}, schema=schema, limit=limit)
    return [(day, int(runs), int(failed)) for day, runs, failed in rows]
