"""The one place that knows which warehouse a connection reaches and how to talk to it.

``redshift`` connections (``RedshiftSQLHook``, driver ``redshift_connector``) are Amazon Redshift;
``postgres`` connections (``PostgresHook``) are the local stand-in. Both run the same SQL files,
rendered from ``include/sql`` with ``dialect`` set, and every load runs in one transaction.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jinja2

from sparkify import settings
from sparkify.errors import PermanentError

log = logging.getLogger(__name__)

REDSHIFT = "redshift"
POSTGRES = "postgres"
_DIALECTS = {"redshift": REDSHIFT, "postgres": POSTGRES, "postgresql": POSTGRES}

class WarehouseError(PermanentError):
    """A warehouse that cannot be used as configured (unknown connection type, say)."""


def dialect_of_conn_type(conn_type: str) -> str:
    try:
        return _DIALECTS[conn_type]
    except KeyError:
        raise WarehouseError(
            f"connection type {conn_type!r} is not a warehouse this project supports: "
            "use a 'redshift' connection for Amazon Redshift or a 'postgres' one for PostgreSQL"
        ) from None


def dialect_of(conn_id: str) -> str:
    """The dialect of the warehouse ``conn_id`` reaches, from the connection's type alone."""
    from airflow.sdk import BaseHook

    return dialect_of_conn_type(BaseHook.get_connection(conn_id).conn_type)


@lru_cache(maxsize=1)
def _jinja() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(settings.SQL_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env


def render(template: str, **context: Any) -> str:
    """Render ``include/sql/<template>``; identifiers in ``context`` must already be validated."""
    return _jinja().get_template(template).render(**context)


# What split() must see to tell a statement's ';' from one inside a string or comment: -- comments,
# /* comments */, '...' and "..." (doubled quotes inside), and $tag$...$tag$ (PostgreSQL/Redshift).
_SQL_TOKEN = re.compile(
    r"(?P<line>--[^\n]*)"
    r"|(?P<block>/\*.*?\*/)"
    r"|(?P<quoted>'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|(?P<tag>\$[A-Za-z_]*\$).*?(?P=tag))"
    r"|(?P<semicolon>;)",
    re.DOTALL,
)


def split(sql: str) -> list[str]:
    """Split a rendered file into statements (comments dropped, trailing semicolons removed).

    Gives what ``sqlparse.format(sql, strip_comments=True)`` then ``sqlparse.split`` gave (a test
    holds it to that on every file in include/sql), about 200 times faster: sqlparse cost each
    hourly run about 0.7 CPU-s (docs/performance.md). Migration checksums depend on this output.
    """
    statements: list[str] = []
    pieces: list[str] = []
    pos = 0
    for match in _SQL_TOKEN.finditer(sql):
        pieces.append(sql[pos:match.start()])
        pos = match.end()
        if match.group("quoted"):
            pieces.append(match.group(0))
        elif match.group("semicolon"):
            statements.append("".join(pieces))
            pieces = []
        elif match.group("line"):
            pieces[-1] = pieces[-1].rstrip(" \t")  # the blanks before a -- comment go with it
        elif sql[match.start() - 1:match.start()] != "\n" and sql[pos:pos + 1] not in ("\n", ""):
            pieces.append(" ")  # an inline /* comment */ still separates what it stood between
    pieces.append(sql[pos:])
    statements.append("".join(pieces))
    return [statement.strip() for statement in statements if statement.strip()]


class Session:
    """One open transaction on the warehouse: statements, files and (PostgreSQL) bulk COPY."""

    def __init__(self, connection: Any, cursor: Any, dialect: str) -> None:
        self.connection = connection
        self.cursor = cursor
        self.dialect = dialect

    def execute(self, sql: str, params: Mapping[str, Any] | None = None, *, shown: str | None = None) -> None:
        """Run one statement; ``shown`` is what the log shows instead of a statement holding a secret."""
        log.debug("SQL: %s", sql if shown is None else shown)
        # Parameters always go as a mapping, so '%' is always written '%%' in the SQL files.
        self.cursor.execute(sql, dict(params or {}))

    def fetchall(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        self.execute(sql, params)
        return [tuple(r) for r in self.cursor.fetchall()]

    def fetchone(self, sql: str, params: Mapping[str, Any] | None = None) -> tuple | None:
        self.execute(sql, params)
        row = self.cursor.fetchone()
        return None if row is None else tuple(row)

    def run_sql(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run each statement of rendered ``sql``, in order."""
        for statement in split(sql):
            self.execute(statement, params)

    def fetch_sql(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        """Run each statement of rendered ``sql``; the rows of the last one."""
        statements = split(sql)
        for statement in statements[:-1]:
            self.execute(statement, params)
        return self.fetchall(statements[-1], params)

    def run_file(self, template: str, params: Mapping[str, Any] | None = None, **context: Any) -> None:
        """Render ``template`` for this dialect and run each of its statements, in order."""
        self.run_sql(render(template, dialect=self.dialect, **context), params)

    def fetch_file(self, template: str, params: Mapping[str, Any] | None = None, **context: Any) -> list[tuple]:
        return self.fetch_sql(render(template, dialect=self.dialect, **context), params)

    def render_one(self, template: str, **context: Any) -> str:
        """The single statement of ``template``, rendered for this dialect, without its ';'."""
        return render(template, dialect=self.dialect, **context).strip().rstrip(";")

    def copy_from_chunks(self, sql: str, chunks: Iterable[bytes]) -> None:
        """PostgreSQL ``COPY … FROM STDIN``, fed chunk by chunk (psycopg 3 or psycopg2)."""
        if self.dialect != POSTGRES:
            raise WarehouseError("COPY FROM STDIN is the PostgreSQL path; Redshift copies from S3")
        if hasattr(self.cursor, "copy"):
            with self.cursor.copy(sql) as copy:
                for chunk in chunks:
                    copy.write(chunk)
        else:  # psycopg2
            self.cursor.copy_expert(sql, _ChunkReader(chunks))


class _ChunkReader:
    """A file-like ``read()`` over an iterator of byte chunks, for psycopg2's copy_expert."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                break
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    readline = read


class Warehouse:
    """A warehouse reached through an Airflow connection id; the dialect comes from its type."""

    def __init__(self, conn_id: str) -> None:
        from airflow.sdk import BaseHook

        self.conn_id = conn_id
        connection = BaseHook.get_connection(conn_id)
        self.dialect = dialect_of_conn_type(connection.conn_type)
        self.hook = connection.get_hook()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Yield a session whose statements commit together, or not at all."""
        connection = self.hook.get_conn()
        try:
            connection.autocommit = False
            cursor = _cursor(connection, self.dialect)
            session = Session(connection, cursor, self.dialect)
            try:
                yield session
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
        finally:
            connection.close()


    @contextmanager
    def autocommit(self) -> Iterator[Session]:
        """Yield a session whose every statement commits on its own: for VACUUM, which can run
        inside no transaction block on either warehouse, and for reads that must not hold one
        table's lock while they wait for another's (the data-quality checks)."""
        connection = self.hook.get_conn()
        try:
            connection.autocommit = True
            yield Session(connection, _cursor(connection, self.dialect), self.dialect)
        finally:
            connection.close()


def _cursor(connection: Any, dialect: str) -> Any:
    if dialect == REDSHIFT:
        cursor = connection.cursor()
        cursor.paramstyle = "pyformat"
        return cursor
    try:  # psycopg 3: bind on the client like psycopg2 and Redshift's driver, for one SQL style
        import psycopg

        if isinstance(connection, psycopg.Connection):
            return psycopg.ClientCursor(connection)
    except ImportError:  # pragma: no cover - psycopg2-only installs
        pass
    return connection.cursor()


def naive_utc(moment: datetime) -> datetime:
    """``moment`` as the warehouse stores times: UTC, without a time zone."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment
