"""Upkeep of a warehouse that loads every hour: VACUUM/ANALYZE and retention of staged data.

Run by the ``sparkify_maintenance`` DAG (daily), outside the hourly runs' critical path, and by
``python -m sparkify.maintenance {vacuum,retention} --conn-id redshift``. Each action is recorded
in ``maintenance_log`` (migration 0002).

* :func:`vacuum_analyze` asks the warehouse which tables changed since their last upkeep
  (PostgreSQL: ``pg_stat_user_tables``; Redshift: ``svv_table_info``) and runs VACUUM and ANALYZE
  on those alone, one table at a time and outside a transaction, as both warehouses require. A
  warehouse where nothing changed gets no statement at all. On Redshift a table is vacuumed only
  past Redshift's own thresholds (:data:`VACUUM_TO_PERCENT`), below which its VACUUM would do
  nothing; and since ``svv_table_info`` shows nothing to a user without the right to read it, an
  empty answer while the pipeline's tables hold rows is logged as a warning naming the grant.
* :func:`apply_retention` removes the staged event rows, per-hour counts and manifest entries of
  daily files staged more than ``retention_days`` ago, in one transaction under the manifest lock
  the staging tasks take. The star schema keeps everything; ``staging_songs`` and its manifest
  entries are kept too (the song catalogue matches every later play, and dropping it would make
  the next listing stage all songs again); ``quality_results`` is history and is kept. A later run
  of an hour whose file was removed stages that file again from S3, so reruns give the same
  tables whatever the retention: only their cost differs.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sparkify import settings
from sparkify.tables import ALL_TABLES
from sparkify.warehouse import REDSHIFT, Session, Warehouse, naive_utc

log = logging.getLogger(__name__)

# Tables the maintenance writes or that only migrations change: upkeep would find them changed
# by its own log on every run and never be a no-op.
_NOT_MAINTAINED = ("maintenance_log", "schema_migrations")
MAINTAINED_TABLES = tuple(t for t in ALL_TABLES if t not in _NOT_MAINTAINED)
EVENTS_SOURCE = "staging_events"  # load_manifest.source of the daily event files
# Redshift's VACUUM skips the sort phase of a table more than this percent sorted, and reclaims
# deleted rows only until this percent of the rest are not deleted (its default; stated in every
# VACUUM sent). A table within both thresholds is not vacuumed: Redshift would do nothing with it.
VACUUM_TO_PERCENT = 95
# What lets a user other than a superuser read svv_table_info (and run VACUUM and ANALYZE).
SVV_TABLE_INFO_GRANT = "GRANT ROLE sys:operator TO <the connection's user>"


@dataclass(frozen=True)
class TableState:
    """What the warehouse reports for a table since its last VACUUM and ANALYZE."""

    table: str
    stale_stats: float  # PostgreSQL: rows modified since ANALYZE; Redshift: stats_off (percent)
    dead_rows: int  # rows deleted (or updated) but not yet reclaimed
    unsorted: float  # Redshift: percent of rows out of sort order; PostgreSQL: 0
    rows: int = 0  # rows the table holds, the deleted ones included

    @property
    def deleted_percent(self) -> float:
        return 100.0 * self.dead_rows / self.rows if self.rows > 0 else 0.0

    def needs_vacuum(self, dialect: str) -> bool:
        """PostgreSQL: any row to reclaim. Redshift: only past its thresholds, where VACUUM ... TO
        95 PERCENT has something to do: at most 95 percent of the rows sorted (Redshift skips the
        sort of a table more sorted than that), or more than 5 percent of them deleted."""
        if dialect != REDSHIFT:
            return self.dead_rows > 0 or self.unsorted > 0
        return (self.unsorted >= 100 - VACUUM_TO_PERCENT
                or self.deleted_percent > 100 - VACUUM_TO_PERCENT)

    @property
    def needs_analyze(self) -> bool:
        return self.stale_stats > 0


def table_states(session: Session, schema: str) -> list[TableState]:
    rows = session.fetch_file("maintenance/table_changes.sql", {"schema": schema}, schema=schema)
    states = [TableState(str(t).strip(), float(s), int(d), float(u), int(n)) for t, s, d, u, n in rows]
    if not states and session.dialect == REDSHIFT:
        _warn_if_hidden(session, schema)
    return [state for state in states if state.table in MAINTAINED_TABLES]


def tables_with_rows(session: Session, schema: str) -> list[str]:
    """The pipeline's tables in ``schema`` that exist and hold at least one row."""
    existing = {str(t).strip() for (t,) in session.fetch_file("maintenance/existing_tables.sql", {"schema": schema})}
    tables = [t for t in MAINTAINED_TABLES if t in existing]
    if not tables:
        return []
    found = {str(t).strip() for (t,) in session.fetch_file("maintenance/tables_with_rows.sql", schema=schema,
                                                             tables=tables)}
    return [t for t in tables if t in found]


def _warn_if_hidden(session: Session, schema: str) -> None:
    """svv_table_info named no table: right for a warehouse whose tables are all empty (it omits
    those), but also what a user who may not read it sees, and then upkeep never runs."""
    holding_rows = tables_with_rows(session, schema)
    if holding_rows:
        log.warning(
            "svv_table_info shows no table of schema %s, yet %d of its tables hold rows (%s): the view is "
            "visible only to superusers, so upkeep cannot tell what needs VACUUM or ANALYZE and does "
            "nothing. Let the connection's user read it: %s; (docs/operations.md, Upkeep)",
            schema, len(holding_rows), ", ".join(holding_rows), SVV_TABLE_INFO_GRANT,
        )


def vacuum_analyze(conn_id: str, schema: str, run_id: str) -> dict[str, str]:
    """VACUUM and ANALYZE the tables that changed; returns {table: what was done}, {} when none did."""
    settings.validate_identifier(schema, "schema")
    wh = Warehouse(conn_id)
    with wh.transaction() as tx:
        states = [s for s in table_states(tx, schema) if s.needs_vacuum(wh.dialect) or s.needs_analyze]
    if not states:
        log.info("No table of schema %s changed enough since its last VACUUM/ANALYZE to need either: "
                 "nothing to do", schema)
        return {}
    done: dict[str, str] = {}
    with wh.autocommit() as session:
        for state in states:
            # PostgreSQL's VACUUM ANALYZE does both in one pass; Redshift runs each only when needed.
            vacuum = state.needs_vacuum(wh.dialect) or wh.dialect != REDSHIFT
            analyze = state.needs_analyze or wh.dialect != REDSHIFT
            done[state.table] = " ".join(a for a, on in (("VACUUM", vacuum), ("ANALYZE", analyze)) if on)
            log.info("%s.%s: %d dead row(s) of %d (%.1f%%), statistics %s off, %s%% unsorted: %s", schema,
                     state.table, state.dead_rows, state.rows, state.deleted_percent, state.stale_stats,
                     state.unsorted, done[state.table])
            session.run_file("maintenance/vacuum_analyze.sql", schema=schema, table=state.table,
                             vacuum=vacuum, analyze=analyze, threshold=VACUUM_TO_PERCENT)
    _record(wh, schema, run_id, "vacuum_analyze", {t: (a, None) for t, a in done.items()})
    return done


def apply_retention(conn_id: str, schema: str, run_id: str, older_than: datetime) -> dict[str, int]:
    """Remove staged event objects staged before ``older_than``; returns rows removed per table."""
    settings.validate_identifier(schema, "schema")
    older_than = naive_utc(older_than)
    wh = Warehouse(conn_id)
    with wh.transaction() as tx:
        tx.run_file("stage/lock_manifest.sql", schema=schema)
        counts = {str(t): int(n) for t, n in tx.fetch_file(
            "maintenance/expired_objects.sql", {"source": EVENTS_SOURCE, "older_than": older_than}, schema=schema)}
        tx.run_file("maintenance/delete_expired.sql", schema=schema)  # deletes nothing when nothing expired
        log.info("Retention: objects staged before %s: %s", older_than.isoformat(),
                 ", ".join(f"{t} {n} row(s) removed" for t, n in counts.items()))
        if counts.get("load_manifest"):
            action = f"deleted rows staged before {older_than:%Y-%m-%dT%H:%M:%S}"
            _record_in(tx, schema, run_id, "retention", {t: (action, n) for t, n in counts.items()})
    return counts


def retention_bound(now: datetime, retention_days: float) -> datetime:
    if retention_days < 0:
        raise settings.InvalidParam(f"retention_days={retention_days!r}: must be 0 or more")
    return naive_utc(now) - timedelta(days=retention_days)


def _record(wh: Warehouse, schema: str, run_id: str, task: str, actions: dict[str, tuple[str, Any]]) -> None:
    with wh.transaction() as tx:
        _record_in(tx, schema, run_id, task, actions)


def _record_in(tx: Session, schema: str, run_id: str, task: str, actions: dict[str, tuple[str, Any]]) -> None:
    now = naive_utc(datetime.now(UTC))
    for table, (action, rows) in actions.items():
        tx.run_file("maintenance/record.sql", {"run_id": run_id, "task": task, "table_name": table,
                                                "action": action, "rows_affected": rows, "logged_at": now},
                    schema=schema)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparkify.maintenance", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["vacuum", "retention"])
    parser.add_argument("--conn-id", default=settings.DEFAULTS.redshift_conn_id)
    parser.add_argument("--schema", default=settings.DEFAULTS.schema)
    parser.add_argument("--retention-days", type=float, default=settings.DEFAULTS.retention_days)
    args = parser.parse_args(argv)
    run_id = "manual__" + datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if args.command == "vacuum":
        done = vacuum_analyze(args.conn_id, args.schema, run_id)
        print("\n".join(f"{t}: {a}" for t, a in done.items()) or "nothing changed: no VACUUM or ANALYZE needed")
    else:
        bound = retention_bound(datetime.now(UTC), args.retention_days)
        counts = apply_retention(args.conn_id, args.schema, run_id, bound)
        print(f"staged before {bound:%Y-%m-%dT%H:%M:%S}: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
