"""The warehouse databases the bench loads and reads (PostgreSQL through psycopg): never Airflow's
metadata database, whose state the bench reads through Airflow's REST API (airflow_api.py)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sparkify_bench.plan import ROOT, STAR


def pg_query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of one query on a warehouse database (the bench's, or the stack's ``warehouse_url``)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]


def pg_execute(url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def star_checksums(url: str) -> dict[str, str]:
    """Rows and an MD5 over every row of each star table (sorted): equal when the tables are."""
    return {t: "{} rows, md5 {}".format(*pg_query(
        url, f"SELECT COUNT(*), MD5(COALESCE(STRING_AGG(r::text, E'\\n' ORDER BY r::text), '')) FROM public.{t} r")[0])
        for t in STAR}


def check_contract(url: str, source: Path, start: datetime, end: datetime) -> dict[str, str]:
    """Each star table against tests/reference.py's independent reading of the data contract: '' when equal."""
    from tests import reference

    events = reference.read_events(reference.event_log_paths(source, start, end))
    songs = reference.read_songs(reference.song_paths(source))
    expected = reference.expected_tables(events, songs, start, end)
    out = {}
    for table in reference.STAR_TABLES:
        actual = pg_query(url, f"SELECT {', '.join(reference.COLUMNS[table])} FROM public.{table}")
        out[table] = reference.describe_difference(table, expected[table], actual)
    return out


def explain(url: str) -> dict[str, str]:
    """EXPLAIN of each analyst query (include/sql/analysis) on the warehouse, after ANALYZE."""
    from sparkify.warehouse import render

    pg_execute(url, "ANALYZE")
    out = {}
    for path in sorted((ROOT / "include" / "sql" / "analysis").glob("*.sql")):
        sql = render(f"analysis/{path.name}", schema="public", dialect="postgres")
        out[path.name] = "\n".join(r[0] for r in pg_query(url, "EXPLAIN " + sql))
    return out
