"""BenchStack: the local run's Stack with the bench's DAG folder, CPU readings and a scheduler restart."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sparkify_bench import airflow_api
from sparkify_bench.machine import process_cpu
from sparkify_local.config import Config, RunnerError
from sparkify_local.processes import stop_groups
from sparkify_local.stack import Stack


class BenchStack(Stack):
    """The local run's Stack with its own DAG folder (sparkify_etl + sparkify_floor) and bench helpers."""

    def __init__(self, config: Config, dags_folder: Path, max_parallelism: int) -> None:
        super().__init__(config)
        self.dags_folder = dags_folder
        self.max_parallelism = max_parallelism
        self.airflow_ready = False

    def airflow_env(self, scheduled_runs: bool = True) -> dict[str, str]:
        env = super().airflow_env(scheduled_runs)
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(self.dags_folder)
        # The DAGs' max_active_tasks is fixed when they are parsed; keep it above every parallelism the
        # sweep tries, so that [core] parallelism (the executor's slots) is what the sweep varies.
        env["AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG"] = str(max(self.max_parallelism, self.config.parallelism))
        env["SPARKIFY_LATE_AFTER_MINUTES"] = env.get("SPARKIFY_LATE_AFTER_MINUTES", "60")
        return env

    def postgres_pid(self) -> int | None:
        try:
            return int((self.pg.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError, AttributeError):
            return None

    def cpu(self) -> dict[str, float]:
        return {
            "airflow": sum(process_cpu(p.pid) for p in self.processes.values()),
            "postgres": process_cpu(self.postgres_pid()),
            "moto": process_cpu(self.moto.process.pid if self.moto and self.moto.process else None),
            "broker": process_cpu(self.broker.process.pid if self.broker and self.broker.process else None),
        }

    def restart_scheduler(self, parallelism: int) -> None:
        """Restart the scheduler (and so LocalExecutor) with another [core] parallelism; return once the
        new scheduler job heartbeats (GET /api/v2/monitor/health: healthy, with a heartbeat newer than
        any of the stopped scheduler's)."""
        stop_groups([self.processes.pop("scheduler").pid])
        _, last_heartbeat = airflow_api.scheduler_health(self)
        stopped_at = datetime.now(UTC)
        self.config.parallelism = parallelism
        log = open(self.logs / "scheduler.log", "ab")  # noqa: SIM115 - owned by the child
        self.processes["scheduler"] = subprocess.Popen(
            [sys.executable, "-m", "airflow", "scheduler", "--skip-serve-logs"], env=self.airflow_env(False),
            stdout=log, stderr=subprocess.STDOUT, cwd=self.config.root, start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status, heartbeat = airflow_api.scheduler_health(self)
            if status == "healthy" and heartbeat and heartbeat > max(filter(None, (last_heartbeat, stopped_at))):
                return
            if self.processes["scheduler"].poll() is not None:
                raise RunnerError(f"the scheduler exited on restart; see {self.logs / 'scheduler.log'}")
            time.sleep(1)
        raise RunnerError("the restarted scheduler did not start within 120 s")

    def switch_to_celery(self, workers: int) -> None:
        """From here on, the CeleryExecutor: a Redis broker, the scheduler restarted with the executor,
        and ``workers`` Celery workers (as `make run EXECUTOR=celery WORKERS=…` starts them)."""
        self.config.executor, self.config.workers = "celery", workers
        self.start_broker()
        self.restart_scheduler(self.config.parallelism)
        self.start_workers()

    def tasks_per_worker(self, run_ids: list[str]) -> dict[str, int]:
        """Task instances of these runs per hostname (the worker that ran their last try), from the REST API."""
        counts: dict[str, int] = {}
        for run_id in run_ids:
            for ti in self.api("GET", f"/api/v2/dags/sparkify_etl/dagRuns/{run_id}/taskInstances")["task_instances"]:
                if ti.get("hostname"):
                    counts[ti["hostname"]] = counts.get(ti["hostname"], 0) + 1
        return dict(sorted(counts.items()))
