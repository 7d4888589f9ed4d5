"""The runner's stack (``sparkify_local.stack.Stack``) on the test session's PostgreSQL and moto
servers, for the tests that run Airflow's real scheduler (tests/backfill, tests/celery).

Only Airflow's processes (and, with ``EXECUTOR=celery``, the broker) are started and stopped here;
the servers belong to the session. One ``AIRFLOW_CONN_<NAME>`` per warehouse; the first is also the
stack's own warehouse (``redshift``)."""

from __future__ import annotations

import uuid

from sparkify_local.processes import stop_groups
from sparkify_local.stack import Stack as LocalStack


class SessionStack(LocalStack):
    def __init__(self, config, pg_server, moto_server, warehouses: dict) -> None:
        super().__init__(config)
        self.scheduled_runs = False  # backfills only: no run of the current hour beside them
        self.session_pg = pg_server
        self.moto = moto_server
        self.warehouses = warehouses

    def start_servers(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.state.chmod(0o755)
        self.logs.mkdir(exist_ok=True)
        self.metadata_url = self.session_pg.ensure_database("airflow_" + uuid.uuid4().hex[:8])
        self.warehouse_url = next(iter(self.warehouses.values())).url
        if self.config.celery:
            self.start_broker()

    def redshift_elsewhere(self) -> str | None:
        """The warehouses are databases of the session's server, which the xdist workers share: the
        analysts' and loader's roles (server-wide) are not granted from here, so that two stacks never
        create them at once (tests/warehouse/test_access.py grants and tests them)."""
        return "the test session's PostgreSQL server"

    def airflow_env(self, scheduled_runs: bool = True) -> dict[str, str]:
        env = super().airflow_env(scheduled_runs)
        # The DAG files do not change during a test session: the dag-processor parses them at start and
        # then rarely (the stack's 10 s suit a user editing a DAG, and cost CPU the tests share).
        env.update({"AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "600",
                    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600"})
        env.update({f"AIRFLOW_CONN_{name.upper()}": db.url for name, db in self.warehouses.items()})
        return env

    def stop(self) -> None:
        stop_groups([p.pid for p in self.processes.values()] + self.running_commands())
        self.processes.clear()
        if self.broker:
            self.broker.stop()
