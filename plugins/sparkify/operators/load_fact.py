"""``LoadFactOperator``: load the run's interval of a fact table, idempotently."""

from __future__ import annotations

from typing import Any

from sparkify.operators.table_load import TableLoadOperator


class LoadFactOperator(TableLoadOperator):
    """Replace the fact rows of the run's interval with those the ``select`` file gives.

    In one transaction the rows whose ``scope_column`` falls in ``[data_interval_start,
    data_interval_end)`` are deleted and inserted again (``truncate_insert`` scoped to the
    interval), so any number of reruns, in any order, leave the same table.

    :param table: fact table, e.g. ``songplays``.
    :param select: SQL file under ``include/sql`` whose SELECT yields the table's columns.
    :param scope_column: the fact's time column.
    :param refresh_from: staging task id whose changed objects this load refreshes: the load first
        pays the refreshes its table owes (``load_refresh``, noted by that task's staging
        transaction), reloading the whole UTC days of the changed objects' events, however the run
        was retried or cleared since (see :mod:`sparkify.refresh`).
    :param schema: warehouse schema.
    :param redshift_conn_id: warehouse connection (``redshift`` or ``postgres`` type).
    """

    ui_color = "#F98866"

    def __init__(self, *, table: str, select: str, scope_column: str = "start_time", **kwargs: Any) -> None:
        super().__init__(table=table, select=select, mode="truncate_insert", scope_column=scope_column, **kwargs)
