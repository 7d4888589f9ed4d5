"""``TableLoadOperator``: what the fact and dimension loads share as operators (the SQL they run
is a template field; :mod:`sparkify.loading` runs it in one transaction)."""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from sparkify import settings
from sparkify.loading import interval_params, load_table, load_template_context
from sparkify.sql_templates import SQL_TEMPLATE_EXT, render_sql
from sparkify.warehouse import dialect_of

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context


class TableLoadOperator(BaseOperator):
    """Base of the fact and dimension loads: a table, its SELECT file, a mode and a scope.

    ``sql`` holds the statements the load runs: ``load/modes/<mode>.sql`` with the ``select`` file in
    it, rendered by Airflow before ``execute`` like every template field (the Rendered Template tab
    shows it); the run's interval is bound at execute time, never formatted in.
    """

    template_fields: tuple[str, ...] = ("table", "schema", "mode", "redshift_conn_id", "personal_data", "sql")
    template_ext: tuple[str, ...] = SQL_TEMPLATE_EXT
    template_fields_renderers = {"sql": "sql"}

    def __init__(
        self,
        *,
        table: str,
        select: str,
        mode: str,
        scope_column: str | None,
        schema: str = settings.DEFAULTS.schema,
        redshift_conn_id: str = settings.DEFAULTS.redshift_conn_id,
        refresh_from: str | None = None,
        personal_data: str = settings.DEFAULTS.personal_data,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.select = select
        self.mode = mode
        self.scope_column = scope_column
        self.schema = schema
        self.redshift_conn_id = redshift_conn_id
        self.refresh_from = refresh_from
        self.personal_data = personal_data
        self.sql: str | None = None  # rendered with the other template fields (render_template_fields)

    def execute(self, context: Context) -> int:
        self.loaded_sql: str | None = None  # what ran, for get_openlineage_facets_on_complete
        params = interval_params(context)
        self.loaded_sql = self.sql or self.render_sql(context)
        return load_table(
            conn_id=self.redshift_conn_id,
            schema=self.schema,
            table=self.table,
            sql=self.loaded_sql,  # rendered here when execute is called directly
            mode=self.mode,
            scope_column=self.scope_column,
            params=params,
            refresh=bool(self.refresh_from),
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The tables the SELECT reads, the table loaded and its column lineage, for the OpenLineage
        provider's listener (docs/lineage.md); nothing when the task failed before its SQL was valid."""
        from sparkify.lineage import load_lineage

        if getattr(self, "loaded_sql", None) is None:
            return None
        return load_lineage(self.redshift_conn_id, schema=self.schema, table=self.table, select=self.select,
                            personal_data=self.personal_data, sql=self.loaded_sql)

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        super().render_template_fields(context, jinja_env)
        with suppress(settings.InvalidParam):  # a bad param fails execute, naming it, before any SQL
            self.sql = self.render_sql(context, jinja_env)

    def render_sql(self, context: Context, jinja_env: jinja2.Environment | None = None) -> str:
        """The load's statements for this warehouse, from the rendered fields (validated here)."""
        sql_context = load_template_context(
            schema=self.schema, table=self.table, select=self.select, mode=self.mode,
            scope_column=self.scope_column, personal_data=self.personal_data,
        )
        return render_sql(self, f"load/modes/{self.mode}.sql", context, jinja_env,
                          dialect=dialect_of(self.redshift_conn_id), **sql_context)
