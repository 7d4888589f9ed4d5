"""The one place that knows the warehouse's tables, and the command that creates them.

    python -m sparkify.tables create --conn-id redshift [--schema public]

creates every table (idempotent) on the warehouse the Airflow connection points at; the local
run and the AWS setup DAG both call :func:`create_tables`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from sparkify import settings, warehouse


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]


SONGPLAYS = Table(
    "songplays",
    ("songplay_id",),
    ("songplay_id", "start_time", "user_id", "level", "song_id", "artist_id", "session_id", "location", "user_agent"),
)
USERS = Table("users", ("user_id",), ("user_id", "first_name", "last_name", "gender", "level", "last_event_ts"))
SONGS = Table("songs", ("song_id",), ("song_id", "title", "artist_id", "year", "duration"))
ARTISTS = Table("artists", ("artist_id",), ("artist_id", "name", "location", "latitude", "longitude"))
TIME = Table("time", ("start_time",), ("start_time", "hour", "day", "week", "month", "year", "weekday"))

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
BOOKKEEPING_TABLES = ("load_manifest", "load_manifest_hours", "load_listing", "quality_results")
ALL_TABLES = (*STAGING_TABLES, *STAR_TABLES, *BOOKKEEPING_TABLES)


def create_tables(session: warehouse.Session, schema: str) -> None:
    """Create the schema and every table in it, if missing, in ``session``'s transaction."""
    settings.validate_identifier(schema, "schema")
    session.run_file("ddl/create_tables.sql", schema=schema)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparkify.tables", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["create"])
    parser.add_argument("--conn-id", default=settings.DEFAULTS.redshift_conn_id)
    parser.add_argument("--schema", default=settings.DEFAULTS.schema)
    args = parser.parse_args(argv)
    wh = warehouse.Warehouse(args.conn_id)
    with wh.transaction() as session:
        create_tables(session, args.schema)
    print(f"tables ready in schema {args.schema} ({wh.dialect}, connection {args.conn_id})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
