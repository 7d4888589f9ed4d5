"""The one place that knows the warehouse's tables, and the command that creates or migrates them.

    python -m sparkify.tables migrate --conn-id redshift [--schema public] [--to N]
    python -m sparkify.tables version --conn-id redshift [--schema public]

``migrate`` (alias ``create``) brings the warehouse the Airflow connection points at to the current
schema version by the ordered files in ``include/sql/migrations/`` (see :mod:`sparkify.migrations`):
on an empty warehouse it creates every table, on an older one it applies what is missing, and on
a current one it does nothing. The local run, the AWS setup DAG and the maintenance DAG call it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

from sparkify import migrations, settings, warehouse
from sparkify.errors import SparkifyError


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    #: Its VARCHAR columns: compared as Redshift compares text, trailing blanks aside (sql/text.jinja).
    text: frozenset[str] = frozenset()


SONGPLAYS = Table(
    "songplays",
    ("songplay_id",),
    ("songplay_id", "start_time", "user_id", "level", "song_id", "artist_id", "session_id", "location", "user_agent"),
    frozenset({"songplay_id", "level", "song_id", "artist_id", "location", "user_agent"}),
)
USERS = Table("users", ("user_id",), ("user_id", "first_name", "last_name", "gender", "level", "last_event_ts"),
              frozenset({"first_name", "last_name", "gender", "level"}))
SONGS = Table("songs", ("song_id",), ("song_id", "title", "artist_id", "year", "duration"),
              frozenset({"song_id", "title", "artist_id"}))
ARTISTS = Table("artists", ("artist_id",), ("artist_id", "name", "location", "latitude", "longitude"),
                frozenset({"artist_id", "name", "location"}))
TIME = Table("time", ("start_time",), ("start_time", "hour", "day", "week", "month", "year", "weekday"))

#: Columns that may identify a person: never shown in a failed check's samples (they go to alerts).
PERSONAL_COLUMNS = frozenset({"first_name", "last_name", "location", "user_agent"})
STAR_TABLES: dict[str, Table] = {t.name: t for t in (SONGPLAYS, USERS, SONGS, ARTISTS, TIME)}
# Staging columns in the order of the JSON they come from (log_json_path.json for the events).
STAGING_COLUMNS: dict[str, tuple[str, ...]] = {
    "staging_events": (
        "artist", "auth", "firstname", "gender", "iteminsession", "lastname", "length", "level",
        "location", "method", "page", "registration", "sessionid", "song", "status", "ts",
        "useragent", "userid", "source_key",
    ),
    "staging_songs": (
        "num_songs", "artist_id", "artist_latitude", "artist_longitude", "artist_location",
        "artist_name", "song_id", "title", "duration", "year",
    ),
}
STAGING_TABLES = tuple(STAGING_COLUMNS)
BOOKKEEPING_TABLES = (
    "load_manifest", "load_manifest_hours", "load_listing", "quality_results", "maintenance_log", "schema_migrations",
    "load_refresh",
)
# Which loads owe a refresh when a table's rows change beyond one run's interval: a changed event
# object staged again (whole UTC days of its events) owes one to the loads of songplays and users,
# and a songplays load that reloaded such days owes one to time, which is rebuilt from songplays.
# The debts are rows of load_refresh (see sparkify.loading.load_table).
REFRESHES: dict[str, tuple[str, ...]] = {"staging_events": ("songplays", "users"), "songplays": ("time",)}
ALL_TABLES = (*STAGING_TABLES, *STAR_TABLES, *BOOKKEEPING_TABLES)


def create_tables(session: warehouse.Session, schema: str) -> list[migrations.Migration]:
    """Create or migrate the schema and every table in it, in ``session``'s transaction."""
    return migrations.migrate(session, schema)


def counts(session: warehouse.Session, schema: str, start: str | None, end: str | None) -> dict[str, Any]:
    """Rows per star table, the data-quality results recorded for runs in ``[start, end)`` by outcome,
    and each failed ``error`` check among them (with its description and offending rows)."""
    rows = {t: session.fetchone(f"SELECT COUNT(*) FROM {schema}.{t}")[0] for t in STAR_TABLES}
    quality = dict(session.fetchall(
        "SELECT CASE WHEN passed THEN 'passed' WHEN severity = 'warn' THEN 'warnings' ELSE 'failed' END, COUNT(*) "
        f"FROM {schema}.quality_results WHERE interval_start >= %(start)s AND interval_start < %(end)s GROUP BY 1",
        {"start": start, "end": end},
    )) if start and end else {}
    failures = [
        {"run_id": r[0], "checked_at": r[1].isoformat(), "check": r[2], "table": r[3], "column": r[4],
         "actual": r[5], "expected": r[6], "description": r[7], "samples": r[8]}
        for r in session.fetchall(
            "SELECT run_id, checked_at, check_name, table_name, column_name, actual, expected, description, samples "
            f"FROM {schema}.quality_results WHERE NOT passed AND severity = 'error' "
            "AND interval_start >= %(start)s AND interval_start < %(end)s ORDER BY checked_at, check_name",
            {"start": start, "end": end},
        )
    ] if start and end else []
    return {"tables": rows, "quality": quality, "failures": failures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparkify.tables", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["migrate", "create", "version", "counts"],
                        help="migrate (or its alias create): bring the schema to the current version; "
                             "version: print the warehouse's version and the code's; counts: rows per star "
                             "table and data-quality results of [--start, --end), as JSON")
    parser.add_argument("--conn-id", default=settings.DEFAULTS.redshift_conn_id)
    parser.add_argument("--schema", default=settings.DEFAULTS.schema)
    parser.add_argument("--to", type=int, default=None, metavar="N", help="migrate to version N (default: latest)")
    parser.add_argument("--start", help="counts: first hour of the window (UTC, ISO)")
    parser.add_argument("--end", help="counts: end of the window (UTC, ISO, excluded)")
    args = parser.parse_args(argv)
    try:
        wh = warehouse.Warehouse(args.conn_id)
        settings.validate_identifier(args.schema, "schema")
        with wh.transaction() as session:
            if args.command == "counts":
                print(json.dumps(counts(session, args.schema, args.start, args.end)))
                return 0
            if args.command == "version":
                print(f"schema {args.schema}: version {migrations.version(session, args.schema)} "
                      f"(this code: {migrations.head()})")
                return 0
            before = migrations.version(session, args.schema)
            done = migrations.migrate(session, args.schema, args.to)
    except SparkifyError as err:  # bad input or parameter: said in one line, not a traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    after = done[-1].version if done else before
    applied = ", ".join(f"{m.version:04d}_{m.name}" for m in done) or "nothing to apply"
    print(f"tables ready in schema {args.schema} ({wh.dialect}, connection {args.conn_id}): "
          f"version {before} -> {after} ({applied})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
