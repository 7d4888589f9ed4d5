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


class LockWaits:
    """The longest lock wait seen in a warehouse database while the block runs: pg_locks' ``waitstart``
    (PostgreSQL 14+) of every lock not yet granted, sampled every ``every`` seconds in a thread. A
    figure (how long a run waited for another's ACCESS EXCLUSIVE lock), not a goal."""

    def __init__(self, url: str, every: float = 0.1) -> None:
        import threading

        self.url, self.every = url, every
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> LockWaits:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _sample(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                (wait,) = conn.execute(
                    "SELECT COALESCE(MAX(EXTRACT(EPOCH FROM clock_timestamp() - waitstart)), 0) FROM pg_locks "
                    "WHERE NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ).fetchone()
                self.longest = max(self.longest, float(wait))
                self._stop.wait(self.every)
