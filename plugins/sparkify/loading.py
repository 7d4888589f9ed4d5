"""What the fact and dimension loads share: the run's interval as bound parameters, and one
transaction that replaces (``truncate_insert``) or merges (``upsert``) a table's rows."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sparkify import intervals, settings
from sparkify import refresh as refresh_debt
from sparkify.tables import REFRESHES, STAR_TABLES
from sparkify.warehouse import Warehouse, naive_utc

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

MODES = ("truncate_insert", "upsert")
# How columns holding personal data are loaded (include/sql/load/personal_data.jinja).
PERSONAL_DATA = ("keep", "hash", "omit")


def checked_interval(context: Context) -> tuple[datetime, datetime]:
    """The run's data interval as naive UTC times; fails the task (no retry, before any SQL) when it
    is not whole hours or is wider than the deployment allows (:mod:`sparkify.intervals`)."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    intervals.check(start, end)
    return naive_utc(start), naive_utc(end)


def interval_params(context: Context) -> dict[str, Any]:
    """The run's data interval ``[start, end)`` as UTC timestamps and as epoch milliseconds, once
    :func:`checked_interval` accepted it."""
    return _interval(*checked_interval(context), context["run_id"])


def _interval(start: datetime, end: datetime, run_id: str) -> dict[str, Any]:
    epoch = datetime(1970, 1, 1)
    return {
        "interval_start": start,
        "interval_end": end,
        "interval_start_ms": int((start - epoch).total_seconds() * 1000),
        "interval_end_ms": int((end - epoch).total_seconds() * 1000),
        "run_id": run_id,
    }


def load_template_context(
    *, schema: str, table: str, select: str, mode: str, scope_column: str | None, personal_data: str
) -> dict[str, Any]:
    """What ``load/modes/<mode>.sql`` is rendered with, every identifier validated (``InvalidParam``
    naming the parameter otherwise)."""
    settings.validate_identifier(schema, "schema")
    settings.validate_identifier(table, "table")
    if scope_column is not None:
        settings.validate_identifier(scope_column, "scope_column")
    if mode not in MODES:
        raise settings.InvalidParam(f"mode={mode!r}: use one of {', '.join(MODES)}")
    if table not in STAR_TABLES:
        raise settings.InvalidParam(f"table={table!r} is not a star table ({', '.join(STAR_TABLES)})")
    if personal_data not in PERSONAL_DATA:
        raise settings.InvalidParam(f"personal_data={personal_data!r}: use one of {', '.join(PERSONAL_DATA)}")
    spec = STAR_TABLES[table]
    return {"schema": schema, "table": table, "columns": spec.columns, "key": spec.key, "text_columns": spec.text,
            "scope_column": scope_column, "select": select, "personal_data": personal_data}


def load_table(
    *,
    conn_id: str,
    schema: str,
    table: str,
    sql: str,
    mode: str,
    scope_column: str | None,
    params: dict[str, Any],
    refresh: bool = False,
) -> int:
    """Run the load statements ``sql`` (rendered, identifiers validated) on ``schema.table``, in one
    transaction.

    With ``refresh``, the load first pays the refreshes its table owes (:mod:`sparkify.refresh`):
    when a changed object was staged again, the scope widens from the run's interval to cover the
    whole UTC days of its events, so every hour already loaded from it is brought up to date in
    the same transaction, and the debt is cleared in it.

    Returns the table's row count in the scope (with ``scope_column``) or in all, after the load.
    """
    wh = Warehouse(conn_id)
    with wh.transaction() as tx:
        run = {"run_id": params["run_id"], "run_start": params["interval_start"], "run_end": params["interval_end"]}
        debt = refresh_debt.owed(tx, schema, table, run) if refresh else None
        if debt:
            start, end = min(params["interval_start"], debt[0]), max(params["interval_end"], debt[1])
            params = {**params, **_interval(start, end, params["run_id"])}
            log.info("%s.%s owes a refresh of [%s, %s) (a changed object was staged again): loading [%s, %s)",
                     schema, table, debt[0].isoformat(), debt[1].isoformat(), start.isoformat(), end.isoformat())
        tx.run_sql(sql, params)
        if debt:
            refresh_debt.paid(tx, schema, table, run)
            # Tables rebuilt from this one owe the same range, from now on (sparkify.tables.REFRESHES).
            refresh_debt.note(tx, schema, REFRESHES.get(table, ()), params["interval_start"],
                              params["interval_end"], params["run_id"])
        ((rows,),) = tx.fetch_file(
            "load/count_rows.sql", params, schema=schema, table=table, scope_column=scope_column
        )
    log.info("%s.%s (%s): %d row(s)%s after the load", schema, table, mode, rows,
             " in the interval" if scope_column else "")
    return int(rows)
