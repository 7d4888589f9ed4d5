"""
### Sparkify maintenance: schema migrations, retention and VACUUM/ANALYZE, once a day

Keeps the warehouse that `sparkify_etl` loads every hour fit to run for years, outside the hourly
runs' critical path (daily at 03:30 UTC; trigger it by hand at any time, it is safe to repeat):

1. **Migrate_schema** brings the warehouse to the current schema version
   (`include/sql/migrations/`, the same as `python -m sparkify.tables migrate`); a no-op when it
   is current.
2. **Apply_retention** removes staged event rows, per-hour counts and manifest entries of daily
   files staged more than `retention_days` ago (default 30). The star schema, the song catalogue
   in staging and the data-quality history are kept. A later rerun of an older hour stages its
   file again from S3, with the same result.
3. **Vacuum_analyze** runs VACUUM and ANALYZE (Redshift: each only where needed, VACUUM only past
   Redshift's own 95 percent thresholds; PostgreSQL: `VACUUM ANALYZE`) on the tables that changed
   since their last upkeep, as the warehouse itself reports it; a no-op when nothing changed. On
   Redshift its user must be able to read `svv_table_info` (a superuser, or
   `GRANT ROLE sys:operator TO <user>`): when it cannot, the task log warns, naming that grant.

Every action is recorded in `maintenance_log`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, CronTriggerTimetable, Param, chain, task

from sparkify.alerts import alert_on_failure
from sparkify.settings import DEFAULTS

with DAG(
    dag_id="sparkify_maintenance",
    description="Daily upkeep of the Sparkify warehouse: migrations, retention, VACUUM/ANALYZE",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("30 3 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "sparkify",
        "retries": 1,
        "retry_delay": timedelta(minutes=10),
        "on_failure_callback": alert_on_failure,
    },
    tags=["sparkify", "maintenance", "redshift"],
    params={
        "schema": Param(DEFAULTS.schema, type="string", description="Warehouse schema"),
        "redshift_conn_id": Param(DEFAULTS.redshift_conn_id, type="string", description="Warehouse connection"),
        "retention_days": Param(
            DEFAULTS.retention_days, type="number", minimum=0,
            description="Remove staged event files staged more than this many days ago",
        ),
    },
) as dag:

    @task(task_id="Migrate_schema")
    def Migrate_schema(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Bring the warehouse to the current schema version (`include/sql/migrations/`)."""
        from sparkify import migrations
        from sparkify.warehouse import Warehouse

        with Warehouse(params["redshift_conn_id"]).transaction() as tx:
            before = migrations.version(tx, params["schema"])
            applied = migrations.migrate(tx, params["schema"])
        return {"from": before, "to": applied[-1].version if applied else before,
                "applied": [f"{m.version:04d}_{m.name}" for m in applied]}

    @task(task_id="Apply_retention")
    def Apply_retention(params: dict[str, Any] | None = None, data_interval_end: Any = None,
                        run_id: str | None = None) -> dict[str, int]:
        """Remove staged event files staged more than `retention_days` before this run."""
        from sparkify.maintenance import apply_retention, retention_bound

        bound = retention_bound(data_interval_end, float(params["retention_days"]))
        return apply_retention(params["redshift_conn_id"], params["schema"], run_id, bound)

    @task(task_id="Vacuum_analyze")
    def Vacuum_analyze(params: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, str]:
        """VACUUM and ANALYZE the tables that changed since their last upkeep; nothing else."""
        from sparkify.maintenance import vacuum_analyze

        return vacuum_analyze(params["redshift_conn_id"], params["schema"], run_id)

    chain(Migrate_schema(), Apply_retention(), Vacuum_analyze())
