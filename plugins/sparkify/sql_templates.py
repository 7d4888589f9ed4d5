"""The operators' SQL as Airflow template fields, rendered by Airflow from ``include/sql``.

A load's or a check's statements are rendered by Airflow before ``execute`` (so the UI's Rendered
Template tab shows the SQL the task runs), with the DAG's Jinja environment: its
``template_searchpath`` (``include/sql``), macros and ``params`` are all available in the files.
On top of Airflow's context the files get the warehouse context they always had (``dialect``,
``schema``, ``table``…), validated first: identifiers are checked, values stay bound parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2

from sparkify import settings

SQL_TEMPLATE_EXT = (".sql",)


def sql_env(env: jinja2.Environment) -> jinja2.Environment:
    """``env`` (the DAG's) able to find include/sql even when the DAG's template_searchpath does not
    list it (an operator outside such a DAG, as in the operator tests), and strict about undefined names."""
    include_sql = jinja2.FileSystemLoader(str(settings.SQL_DIR))
    loader = jinja2.ChoiceLoader([env.loader, include_sql]) if env.loader else include_sql
    return env.overlay(loader=loader, undefined=jinja2.StrictUndefined)


def render_sql(operator: Any, template: str, context: Mapping[str, Any], jinja_env: jinja2.Environment | None,
               **sql_context: Any) -> str:
    """Render ``include/sql/<template>`` as ``operator``'s template fields are rendered, with the
    already validated ``sql_context`` added to Airflow's context."""
    env = sql_env(jinja_env or operator.get_template_env())
    return operator.render_template(template, {**context, **sql_context}, env)
