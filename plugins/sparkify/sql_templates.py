"""The operators' SQL as Airflow template fields, rendered by Airflow from ``include/sql``.

A load's or a check's statements are rendered by Airflow before ``execute`` (so the UI's Rendered
Template tab shows the SQL the task runs), with the DAG's Jinja environment: its
``template_searchpath`` (``include/sql``), macros and ``params`` are all available in the files.
On top of Airflow's context the files get the warehouse context they always had (``dialect``,
``schema``, ``table``…), validated first: identifiers are checked, values stay bound parameters.

Compiling a template is most of what rendering it costs (Airflow's environments keep no template
cache: ``cache_size=0``), and every task process renders its files afresh. Jinja's own
``FileSystemBytecodeCache`` keeps the compiled code between processes (in the user's private
temporary folder, one file per template and environment settings, replaced atomically); a file
whose source changed is compiled again (Jinja compares the source's checksum).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import cache
from typing import Any

import jinja2
from jinja2.bccache import FileSystemBytecodeCache

from sparkify import settings

SQL_TEMPLATE_EXT = (".sql",)


class _BestEffortBytecodeCache(FileSystemBytecodeCache):
    """A cache that cannot be written (a full or read-only temporary folder) only costs a compile."""

    def dump_bytecode(self, bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


@cache
def _bytecode_cache(settings_key: str) -> FileSystemBytecodeCache | None:
    try:
        return _BestEffortBytecodeCache(pattern=f"__sparkify_sql_{settings_key}_%s.cache")
    except (OSError, RuntimeError):  # no private temporary folder to be had: compile every time
        return None


def bytecode_cache(env: jinja2.Environment) -> FileSystemBytecodeCache | None:
    """The bytecode cache for templates compiled by environments like ``env``: compiled code depends
    on the environment's class and syntax settings, so each combination has files of its own."""
    settings_key = repr((
        type(env).__module__, type(env).__qualname__, env.block_start_string, env.block_end_string,
        env.variable_start_string, env.variable_end_string, env.comment_start_string, env.comment_end_string,
        env.line_statement_prefix, env.line_comment_prefix, env.trim_blocks, env.lstrip_blocks,
        env.newline_sequence, env.keep_trailing_newline, sorted(env.extensions), env.optimized,
        env.finalize is not None, env.autoescape if isinstance(env.autoescape, bool) else "callable",
        env.is_async, env.code_generator_class.__qualname__, env.context_class.__qualname__,
    ))
    return _bytecode_cache(hashlib.sha1(settings_key.encode()).hexdigest()[:12])


def sql_env(env: jinja2.Environment) -> jinja2.Environment:
    """``env`` (the DAG's) able to find include/sql even when the DAG's template_searchpath does not
    list it (an operator outside such a DAG, as in the operator tests), and strict about undefined names."""
    include_sql = jinja2.FileSystemLoader(str(settings.SQL_DIR))
    loader = jinja2.ChoiceLoader([env.loader, include_sql]) if env.loader else include_sql
    return env.overlay(loader=loader, undefined=jinja2.StrictUndefined, bytecode_cache=bytecode_cache(env))


def render_sql(operator: Any, template: str, context: Mapping[str, Any], jinja_env: jinja2.Environment | None,
               **sql_context: Any) -> str:
    """Render ``include/sql/<template>`` as ``operator``'s template fields are rendered, with the
    already validated ``sql_context`` added to Airflow's context."""
    env = sql_env(jinja_env or operator.get_template_env())
    return operator.render_template(template, {**context, **sql_context}, env)
