"""``LoadDimensionOperator``: load a dimension table by rebuild or by merge."""

from __future__ import annotations

from typing import Any

from sparkify.operators.table_load import TableLoadOperator


class LoadDimensionOperator(TableLoadOperator):
    """Load a dimension from the SELECT in ``include/sql/<select>``, in one transaction.

    Modes:

    * ``truncate_insert``: delete the rows the load owns (all of them, or with ``scope_column``
      those of the run's interval) and insert the select's rows;
    * ``upsert``: merge by the table's key; the select returns only new or changed rows.

    :param table: dimension table (``users``, ``songs``, ``artists``, ``time``).
    :param select: SQL file whose SELECT yields the table's columns.
    :param mode: ``truncate_insert`` or ``upsert``.
    :param scope_column: with ``truncate_insert``, restrict the rebuild to the run's interval.
    :param refresh_from: staging task id whose changed objects this load refreshes (as for
        :class:`~sparkify.operators.LoadFactOperator`; see :mod:`sparkify.refresh`).
    :param schema: warehouse schema.
    :param redshift_conn_id: warehouse connection (``redshift`` or ``postgres`` type).
    """

    ui_color = "#80BD9E"

    def __init__(
        self, *, table: str, select: str, mode: str = "upsert", scope_column: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(table=table, select=select, mode=mode, scope_column=scope_column, **kwargs)
