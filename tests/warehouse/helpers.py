"""Tests of operating the warehouse for months: migrations, upkeep, retention, late data, access.

What the modules share: a second day of events beside tests/operators' first, and the pipeline's
staging and loads run hour by hour through the operators themselves.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from tests.operators.helpers import at, event, make_context

from sparkify.operators import LoadDimensionOperator, LoadFactOperator, StageToRedshiftOperator
from sparkify.tables import ALL_TABLES, STAR_TABLES

DAY_B = at(0) + timedelta(days=1)
KEY_A = "log_data/2018/11/2018-11-04-events.json"
KEY_B = "log_data/2018/11/2018-11-05-events.json"
EVENTS_B = [
    event(at(9, 5, day=DAY_B), user="10", level="paid", session=300, item=0, song="Song A", artist="Artist A",
          length=200.5),
    event(at(9, 7, day=DAY_B), user="12", session=301, item=0, first="Ana", last="Lee", location="Austin, TX"),
    event(at(10, 1, day=DAY_B), user="12", session=301, item=1, first="Ana", last="Lee", location="Austin, TX",
          page="Home", song=None, artist=None, length=None),
]
STAR_AND_STAGING = (*STAR_TABLES, "staging_events", "load_manifest", "load_manifest_hours")


def sums(db, tables=STAR_AND_STAGING, columns: dict[str, str] | None = None) -> dict[str, tuple]:
    columns = columns or {"load_manifest": "s3_key, source, etag, size_bytes, row_count"}
    return {t: tuple(db.query(
        f"SELECT COUNT(*), MD5(COALESCE(STRING_AGG(r::text, ',' ORDER BY r::text), '')) "
        f"FROM (SELECT {columns.get(t, '*')} FROM {t}) r")[0]) for t in tables}


def wait_for_stats(db, table: str, timeout: float = 30) -> None:
    """PostgreSQL publishes a backend's table counters when it goes idle (at most ~1 s later, or at
    once after pg_stat_force_next_flush()); wait until ``table``'s changes show, as a scheduled
    maintenance run (hours after the loads) would find them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.scalar("SELECT n_mod_since_analyze + n_dead_tup FROM pg_stat_user_tables WHERE relname = %s",
                     (table,)):
            return
        time.sleep(0.2)
    pytest.fail(f"PostgreSQL's statistics never showed the changes to {table}")


def no_autovacuum(db) -> None:
    """Autovacuum would race the test for the same counters: off for these tables alone."""
    with db.connect() as conn:
        for table in ALL_TABLES:
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")


def stage(bucket, key: str, hour: datetime, late_keys: tuple[str, ...] = ()) -> dict:
    """Stage_events of the hour, as the DAG configures it; its XCom."""
    return StageToRedshiftOperator(
        task_id="Stage_events", table="staging_events", s3_bucket=bucket.name, s3_key=key,
        json_format=f"s3://{bucket.name}/log_json_path.json", source_key_column="source_key", hour_counts=True,
        late_keys=late_keys,
    ).execute(make_context(hour))


def load_hour(hour: datetime, staged: dict | None = None) -> None:
    """The fact, users and time loads of the hour; ``staged`` is what Stage_events returned (its XCom)."""
    context = make_context(hour)
    context["ti"] = SimpleNamespace(xcom_pull=lambda task_ids: staged if task_ids == "Stage_events" else None)
    refresh = {"refresh_from": "Stage_events"}
    LoadFactOperator(task_id="Load_songplays_fact_table", table="songplays", select="load/songplays.sql",
                     **refresh).execute(context)
    LoadDimensionOperator(task_id="Load_user_dim_table", table="users", select="load/users.sql",
                          **refresh).execute(context)
    LoadDimensionOperator(task_id="Load_time_dim_table", table="time", select="load/time.sql",
                          mode="truncate_insert", scope_column="start_time", **refresh).execute(context)


def run_hour(bucket, key: str, hour: datetime, late_keys: tuple[str, ...] = ()) -> dict:
    staged = stage(bucket, key, hour, late_keys)
    load_hour(hour, staged)
    return staged
