"""Every statement the project can send to Redshift, rendered with ``dialect='redshift'`` and read
for what Redshift rejects. No server: Redshift cannot run here, so this is the check.

What is rendered (a new file under ``include/sql`` is covered without editing this test):

* every ``.sql`` file under ``include/sql`` (migrations, stage, load, quality, refresh,
  maintenance, access, schema, analysis: ``make analysis`` may run against Redshift too), with
  every combination of the sample values below for the variables it (and what it includes) uses;
  a file using a variable with no sample fails here, naming it;
* the loads as the operators render them (``loading.load_template_context``: every star table,
  both modes, every ``personal_data`` choice) and every check of ``include/quality/checks.yaml``
  with its samples query, as ``DataQualityOperator`` renders them;
* except :data:`POSTGRES_ONLY`: files only the PostgreSQL backend sends. ``{% if dialect ==
  'postgres' %}`` branches drop out by themselves: everything is rendered for Redshift.

Each statement (``warehouse.split``, as the warehouse sends them) must hold none of
:data:`REJECTED` (syntax PostgreSQL takes and Redshift does not) and must parse with sqlglot's
Redshift dialect. sqlglot does not understand every Redshift statement: it parses these only as an
opaque ``Command`` (no syntax checked beyond the keyword), and the test fails if another kind
appears, so the list stays true (sqlglot 30.31.0):

* ``LOCK`` (``LOCK TABLE public.load_manifest``, ``LOCK TABLE public.load_refresh, public.users``):
  every staging, load, refresh and migration transaction;
* ``VACUUM`` (``maintenance/vacuum_analyze.sql``);
* ``CREATE ROLE`` (``access/create_role.sql``).

And it cannot parse one statement Redshift documents (``BEGIN``/``START TRANSACTION … READ ONLY``),
held to the exact text in :data:`NOT_PARSED`: ``START TRANSACTION READ ONLY``
(``quality_page/read_only.sql``, the quality page's read-only transaction).

It does parse the rest: the Redshift ``COPY`` with its options, ``GRANT … TO ROLE``, ``ANALYZE``,
``LISTAGG … WITHIN GROUP``, ``DATEADD``.

Those statements are held to the rejected constructs only, and to the exact text the operator
tests assert (tests/operators/test_stage_redshift_sql.py and the maintenance and access tests).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import jinja2
import pytest
import sqlglot
from jinja2 import meta
from sqlglot import exp

from sparkify import settings, warehouse
from sparkify.loading import MODES, PERSONAL_DATA, load_template_context
from sparkify.quality import load_checks
from sparkify.tables import STAR_TABLES

SQL_DIR: Path = settings.SQL_DIR

#: Files only the PostgreSQL backend sends (the reason is the test's record of it).
POSTGRES_ONLY = {
    "stage/copy_postgres.sql": "COPY … FROM STDIN: the PostgreSQL backend; Redshift COPYs from S3",
    "stage/table_columns.sql": "the PostgreSQL backend's column types for its JSON reader",
}

#: What each variable the files use is rendered with; several values = every one is tried.
SAMPLES: dict[str, list[Any]] = {
    "dialect": ["redshift"],
    "schema": ["public"],
    "table": ["songplays", "users"],
    "tables": [["songplays", "time"]],
    "columns": [["user_id", "first_name"]],
    "key": [["user_id"], ["artist_id", "song_id"]],
    "text_columns": [frozenset({"artist_id", "song_id"})],
    "with_refresh": [False, True],
    "expression_postgres": ["SUM(CASE WHEN user_id IS NULL THEN 1 ELSE 0 END)"],
    "text": [False, True],
    "threshold": [95],
    "scope_column": [None, "start_time"],
    "select": ["load/songplays.sql", "load/users.sql", "load/songs.sql", "load/artists.sql", "load/time.sql"],
    "personal_data": list(PERSONAL_DATA),
    "raise_invalid_personal_data": [""],
    "count": [1, 3],
    "limit": [1000],
    "role": ["sparkify_analyst"],
    "readable": [["songplays", "users"]],
    "private": [["staging_events"]],
    "vacuum": [True, False],
    "analyze": [True, False],
    "expression": ["SUM(CASE WHEN user_id IS NULL THEN 1 ELSE 0 END)"],
    "check_type": ["null_check", "unique_check", "min", "max"],
    "column": ["user_id"],
    "shown": [["user_id", "level"]],
    "check_statement": ["level IN ('free', 'paid')"],
    "source_keys": [[], ["source_key_0", "source_key_1"]],
    "source_key_column": ["source_key"],
    "dedupe_key": [None, "song_id"],
    "manifest_url": ["s3://sparkify-manifests/sparkify_etl/run/Stage_events-0.manifest"],
    "credentials": ["aws_iam_role=arn:aws:iam::123456789012:role/sparkify-redshift"],
    "json_format": ["auto", "s3://udacity-dend/log_json_path.json"],
    "region": ["us-west-2"],
}

#: Syntax PostgreSQL takes and Redshift rejects (matched outside string literals, case-insensitive).
REJECTED = {
    "ON CONFLICT": r"\bON\s+CONFLICT\b",
    "DISTINCT ON": r"\bDISTINCT\s+ON\b",
    "RETURNING": r"\bRETURNING\b",
    "string_agg": r"\bSTRING_AGG\s*\(",
    "array_agg / ARRAY[…] / array types": r"\bARRAY_AGG\s*\(|\bARRAY\s*\[|\w\s*\[\s*\]|\bUNNEST\s*\(",
    "FILTER (WHERE …)": r"\bFILTER\s*\(\s*WHERE\b",
    "jsonb / json operators": r"\bJSONB\b|->>|#>",
    "GENERATED columns": r"\bGENERATED\s+(ALWAYS|BY\s+DEFAULT)\b",
    "SERIAL types": r"\b(BIG|SMALL)?SERIAL\b",
    "TRUNCATE (commits at once on Redshift)": r"\bTRUNCATE\b",
    "COPY … FROM STDIN / TO STDOUT": r"\bCOPY\b[^;]*\b(STDIN|STDOUT)\b",
    "LOCK … IN … MODE (Redshift's LOCK takes no mode)": r"\bLOCK\b[^;]*\bIN\b[^;]*\bMODE\b",
    "CREATE INDEX (Redshift has none)": r"\bCREATE\s+(UNIQUE\s+)?INDEX\b",
    "ADD/DROP COLUMN IF [NOT] EXISTS": r"\b(ADD|DROP)\s+COLUMN\s+IF\b",
    "LATERAL": r"\bLATERAL\b",
    "generate_series (leader node only)": r"\bGENERATE_SERIES\s*\(",
    "SELECT … FOR UPDATE / SHARE": r"\bFOR\s+(UPDATE|SHARE|NO\s+KEY\s+UPDATE)\b",
    "ON COMMIT (temporary tables)": r"\bON\s+COMMIT\b",
    "CREATE EXTENSION / DO blocks": r"\bCREATE\s+EXTENSION\b|\bDO\s+\$",
    "UNLOGGED tables": r"\bUNLOGGED\b",
    "PostgreSQL casts to regclass/oid types": r"::\s*(REGCLASS|OID|TEXT\[\])\b",
}

#: The statement kinds sqlglot's Redshift dialect parses only as an opaque Command (see above).
NOT_UNDERSTOOD = {"LOCK", "VACUUM", "CREATE ROLE"}
#: Statements Redshift documents that sqlglot's Redshift dialect cannot parse, held to their exact text.
NOT_PARSED = {"START TRANSACTION READ ONLY"}

_LITERAL = re.compile(r"'(?:[^']|'')*'")
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _files() -> list[str]:
    return sorted(str(p.relative_to(SQL_DIR)) for p in SQL_DIR.rglob("*.sql"))


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(SQL_DIR)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, autoescape=False)


def _variables(env: jinja2.Environment, template: str, seen: set[str] | None = None) -> set[str]:
    """The variables ``template`` and everything it includes or imports use; a dynamic include
    (``{% include select %}``) counts every file ``select`` may name."""
    seen = seen if seen is not None else set()
    if template in seen:
        return set()
    seen.add(template)
    tree = env.parse(Path(SQL_DIR, template).read_text())
    names = set(meta.find_undeclared_variables(tree))
    for ref in meta.find_referenced_templates(tree):
        for included in ([ref] if ref is not None else SAMPLES["select"]):
            names |= _variables(env, included, seen)
    return names


def _renderings(template: str) -> list[tuple[str, str]]:
    """(what, rendered text) for every combination of the samples of ``template``'s variables."""
    env = _env()
    names = sorted(_variables(env, template))
    missing = [n for n in names if n not in SAMPLES]
    assert not missing, f"{template} uses {missing}: add sample values to SAMPLES in {__file__}"
    varied = [n for n in names if len(SAMPLES[n]) > 1]
    base = {n: SAMPLES[n][0] for n in names}
    out = []
    for values in itertools.product(*(SAMPLES[n] for n in varied)):
        context = {**base, **dict(zip(varied, values, strict=True))}
        shown = ", ".join(f"{n}={v!r}" for n, v in zip(varied, values, strict=True))
        out.append((f"{template} ({shown})" if shown else template, env.get_template(template).render(**context)))
    return out


def _operator_renderings() -> list[tuple[str, str]]:
    """The loads and the declared checks, rendered with the contexts the operators give them."""
    out = []
    for table, mode, personal, scope in itertools.product(STAR_TABLES, MODES, PERSONAL_DATA, (None, "start_time")):
        context = load_template_context(schema="public", table=table, select=f"load/{table}.sql", mode=mode,
                                        scope_column=scope, personal_data=personal)
        out.append((f"load {table} {mode} personal_data={personal} scope={scope}",
                    warehouse.render(f"load/modes/{mode}.sql", dialect="redshift", **context)))
    for check in load_checks():
        base = {"dialect": "redshift", "schema": "public", "source_keys": ["source_key_0", "source_key_1"]}
        for template in filter(None, (check.template, check.samples)):
            out.append((f"check {check.name}: {template}", warehouse.render(template, **base, **check.context)))
    return out


def _statements() -> tuple[list[tuple[str, str]], set[str]]:
    """Each distinct statement once, with the first rendering that gave it; the files that gave any."""
    rendered = [r for f in _files() if f not in POSTGRES_ONLY for r in _renderings(f)] + _operator_renderings()
    first: dict[str, str] = {}
    sources = set()
    for what, text in rendered:
        for statement in warehouse.split(text):
            first.setdefault(statement, what)
            sources.add(what.split(" (")[0])
    return [(what, statement) for statement, what in first.items()], sources


STATEMENTS, RENDERED_FROM = _statements()


def _kind(statement: str) -> str:
    words = statement.split()
    return " ".join(words[:2]).upper() if words[0].upper() == "CREATE" else words[0].upper()


def test_every_file_is_rendered():
    """Nothing is left out silently: every file but the PostgreSQL-only ones gave statements."""
    assert set(POSTGRES_ONLY) <= set(_files()), "POSTGRES_ONLY names a file that is gone"
    assert sorted(set(_files()) - set(POSTGRES_ONLY) - RENDERED_FROM) == []
    assert len(STATEMENTS) > 150


@pytest.mark.parametrize(("what", "statement"), STATEMENTS, ids=[f"{i}" for i in range(len(STATEMENTS))])
def test_no_construct_redshift_rejects(what, statement):
    text = _LITERAL.sub("''", statement)
    found = [name for name, pattern in REJECTED.items() if re.search(pattern, text, re.IGNORECASE)]
    assert not found, f"{what} sends {found} to Redshift:\n{statement}"


@pytest.mark.parametrize(("what", "statement"), STATEMENTS, ids=[f"{i}" for i in range(len(STATEMENTS))])
def test_sqlglot_parses_it_as_redshift(what, statement):
    # Bound parameters go as %(name)s; sqlglot reads them as :name placeholders.
    text = _PLACEHOLDER.sub(lambda m: f":{m.group(1)}", statement)
    if statement in NOT_PARSED:
        return
    try:
        parsed = sqlglot.parse_one(text, read="redshift", error_level=sqlglot.ErrorLevel.RAISE)
    except sqlglot.errors.SqlglotError as err:
        pytest.fail(f"{what}: sqlglot's Redshift dialect cannot parse it ({err}):\n{statement}")
    if isinstance(parsed, exp.Command):
        assert _kind(statement) in NOT_UNDERSTOOD, (
            f"{what}: sqlglot reads this only as an opaque command; if Redshift takes it, add "
            f"{_kind(statement)!r} to NOT_UNDERSTOOD and the docstring:\n{statement}")


@pytest.mark.parametrize(("name", "statement"), [
    ("ON CONFLICT", "INSERT INTO public.users (user_id) VALUES (1) ON CONFLICT (user_id) DO NOTHING"),
    ("DISTINCT ON", "SELECT DISTINCT ON (user_id) user_id FROM public.users"),
    ("RETURNING", "DELETE FROM public.users RETURNING user_id"),
    ("string_agg", "SELECT STRING_AGG(s3_key, ', ') FROM public.load_manifest"),
    ("FILTER (WHERE …)", "SELECT COUNT(*) FILTER (WHERE level = 'paid') FROM public.users"),
    ("jsonb / json operators", "SELECT CAST(x AS JSONB) FROM t"),
    ("array_agg / ARRAY[…] / array types", "SELECT ARRAY[1, 2]"),
    ("GENERATED columns", "CREATE TABLE t (id BIGINT GENERATED ALWAYS AS IDENTITY)"),
    ("TRUNCATE (commits at once on Redshift)", "TRUNCATE public.songplays"),
    ("COPY … FROM STDIN / TO STDOUT", "COPY sparkify_batch (a, b) FROM STDIN (FORMAT csv)"),
    ("LOCK … IN … MODE (Redshift's LOCK takes no mode)", "LOCK TABLE public.songplays IN SHARE ROW EXCLUSIVE MODE"),
])
def test_the_rejected_constructs_are_caught(name, statement):
    """The patterns catch what they name (and not inside a quoted literal)."""
    assert re.search(REJECTED[name], _LITERAL.sub("''", statement), re.IGNORECASE)
    assert not re.search(REJECTED[name], _LITERAL.sub("''", f"SELECT '{statement.replace(chr(39), '')}'"),
                         re.IGNORECASE)


_PERCENT = re.compile(r"%(?!\(\w+\)s)")


@pytest.mark.parametrize(("what", "statement"), STATEMENTS, ids=[f"{i}" for i in range(len(STATEMENTS))])
def test_no_percent_but_placeholders(what, statement):
    """Parameters always go bound (pyformat), so a '%' must be a ``%(name)s`` placeholder: a literal
    one would have to be written '%%', which Redshift's driver passes through unchanged inside
    quotes (``LIKE 'a%%'`` matches two percent signs there). Write a LIKE with a bound pattern."""
    assert not _PERCENT.search(statement), f"{what} has a '%' that is no %(name)s placeholder:\n{statement}"


def test_no_percent_in_the_declared_checks():
    """The checks' own text (check_statement, column expressions) is SQL too."""
    for check in load_checks():
        for name, value in check.context.items():
            if name in ("expression", "check_statement"):
                assert not _PERCENT.search(value), f"{check.name}: {name} {value!r} has a '%'"
    assert _PERCENT.search("title LIKE 'Love%%'") and not _PERCENT.search("ts >= %(interval_start)s")
