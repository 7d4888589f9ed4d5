"""Airflow's REST API (/api/v2) for the local stack, through the official client.

The client is ``apache-airflow-client``, pinned to the Airflow version it talks to (3.3.2, the
``local`` extra): its models are generated from the api-server's own OpenAPI document, so a
renamed field or parameter fails here, at the call, rather than as a silently missing key in a
hand-written urllib client, and it is maintained by the Airflow project with each release.
``AirflowApi`` keeps what the local run reads and changes in a few typed methods, and
:meth:`AirflowApi.request` is the untyped way in (``Stack.api``) for callers that want JSON.

Nothing in the local stack connects to Airflow's metadata database: every read and every state
change goes through here.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DONE = ("success", "failed")
PAGE = 100  # the api-server's default maximum page size


class ApiError(RuntimeError):
    """A request the api-server answered with an error status (``status``), or could not answer."""

    def __init__(self, method: str, path: str, status: int | None, detail: str) -> None:
        super().__init__(f"{method} {path}: {status or 'no answer'} {detail}".strip())
        self.status = status
        self.detail = detail


def generated_password(airflow_home: Path, username: str = "admin", timeout: float = 10) -> str | None:
    """The password Airflow's simple auth manager generated for ``username`` (in AIRFLOW_HOME's
    ``simple_auth_manager_passwords.json.generated``, written once the api-server has started), or
    None if it did not appear within ``timeout`` seconds."""
    path = Path(airflow_home) / "simple_auth_manager_passwords.json.generated"
    deadline = time.monotonic() + timeout
    while True:
        if path.exists():
            return json.loads(path.read_text()).get(username)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)


def _utc(moment: datetime) -> datetime:
    """A naive datetime of the local run (UTC by convention) as an aware one, for the API."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class AirflowApi:
    """Airflow's REST API as one user (the stack's `admin`), on loopback.

    ``password`` is called when a token is first needed: the simple auth manager writes the
    generated password only once the api-server has started."""

    def __init__(self, base_url: str, username: str, password: Callable[[], str | None],
                 timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self._client = None

    # -- plumbing ----------------------------------------------------------------------------------

    @property
    def client(self):  # airflow_client.client.ApiClient, imported lazily: the CLI's other commands skip it
        if self._client is None:
            from airflow_client.client import ApiClient, Configuration

            token = self._token()
            self._client = ApiClient(Configuration(host=self.base_url, access_token=token))
        return self._client

    def _token(self) -> str:
        from airflow_client.client import ApiClient, Configuration

        body = {"username": self.username, "password": self.password()}
        plain = ApiClient(Configuration(host=self.base_url))
        response = self._send(plain, "POST", "/auth/token", body)
        return json.loads(response)["access_token"]

    def _send(self, client, method: str, path: str, body: Any = None) -> bytes:
        from airflow_client.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if client.configuration.access_token:
            headers["Authorization"] = f"Bearer {client.configuration.access_token}"
        try:
            response = client.call_api(method, self.base_url + path, header_params=headers, body=body,
                                       _request_timeout=self.timeout)
            data = response.read()
        except (ApiException, HTTPError) as err:
            raise ApiError(method, path, getattr(err, "status", None), str(err).strip()) from None
        if not 200 <= response.status < 300:
            raise ApiError(method, path, response.status, (data or b"").decode(errors="replace")[:2000])
        return data

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        """Any endpoint, as JSON in and out (``path`` from the server's root, with its query string)."""
        data = self._send(self.client, method, path, body)
        return json.loads(data) if data else {}

    @contextlib.contextmanager
    def _errors(self, method: str, path: str) -> Iterator[None]:
        """The generated client's exceptions as :class:`ApiError`."""
        from airflow_client.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            yield
        except ApiException as err:
            raise ApiError(method, path, err.status, (err.body or err.reason or "").strip()[:2000]) from None
        except HTTPError as err:
            raise ApiError(method, path, None, str(err)) from None

    def healthy(self) -> bool:
        """Whether the api-server answers its health check (no token needed)."""
        from airflow_client.client import ApiClient, Configuration

        try:
            self._send(ApiClient(Configuration(host=self.base_url, retries=0)), "GET", "/api/v2/monitor/health")
            return True
        except ApiError:
            return False

    # -- DAGs ------------------------------------------------------------------------------------------

    def unpause(self, dag_id: str) -> None:
        """``PATCH /api/v2/dags/{dag_id}`` with ``{"is_paused": false}`` (the UI's pause toggle)."""
        from airflow_client.client.api.dag_api import DAGApi
        from airflow_client.client.models import DAGPatchBody

        with self._errors("PATCH", f"/api/v2/dags/{dag_id}"):
            DAGApi(self.client).patch_dag(dag_id, DAGPatchBody(is_paused=False))

    # -- backfills -------------------------------------------------------------------------------------

    def create_backfill(self, dag_id: str, from_date: datetime, to_date: datetime, *, max_active_runs: int,
                        reprocess_behavior: str, run_backwards: bool = False,
                        dag_run_conf: dict | None = None):
        """``POST /api/v2/backfills``; ``to_date`` is inclusive (the last run's logical date)."""
        from airflow_client.client.api.backfill_api import BackfillApi
        from airflow_client.client.models import BackfillPostBody, ReprocessBehavior

        body = BackfillPostBody(
            dag_id=dag_id, from_date=_utc(from_date), to_date=_utc(to_date), max_active_runs=max_active_runs,
            reprocess_behavior=ReprocessBehavior(reprocess_behavior), run_backwards=run_backwards,
            dag_run_conf=dag_run_conf or {},
        )
        with self._errors("POST", "/api/v2/backfills"):
            return BackfillApi(self.client).create_backfill(body)

    def backfill(self, backfill_id: int):
        from airflow_client.client.api.backfill_api import BackfillApi

        with self._errors("GET", f"/api/v2/backfills/{backfill_id}"):
            return BackfillApi(self.client).get_backfill(backfill_id)

    def backfills(self, dag_id: str) -> list:
        from airflow_client.client.api.backfill_api import BackfillApi

        found, offset = [], 0
        with self._errors("GET", f"/api/v2/backfills?dag_id={dag_id}"):
            while True:
                page = BackfillApi(self.client).list_backfills(dag_id, limit=PAGE, offset=offset, order_by=["id"])
                found += page.backfills
                offset += PAGE
                if len(page.backfills) < PAGE:
                    return found

    def cancel_backfill(self, backfill_id: int) -> None:
        """``PUT /api/v2/backfills/{id}/cancel`` (the UI's "Cancel backfill"): paused, its queued runs
        failed, marked completed. A backfill already completed is left as it is."""
        from airflow_client.client.api.backfill_api import BackfillApi

        try:
            with self._errors("PUT", f"/api/v2/backfills/{backfill_id}/cancel"):
                BackfillApi(self.client).cancel_backfill(backfill_id)
        except ApiError as err:
            if err.status != 409:  # 409: completed meanwhile (by the scheduler)
                raise

    # -- runs and task instances ---------------------------------------------------------------------------

    def dag_runs(self, dag_id: str, *, logical_from: datetime | None = None, logical_before: datetime | None = None,
                 states: list[str] | None = None, run_types: list[str] | None = None,
                 updated_since: datetime | None = None) -> list:
        """``GET /api/v2/dags/{dag_id}/dagRuns``, every page, oldest first (by id): runs whose logical
        date is in ``[logical_from, logical_before)``, in ``states``, of ``run_types`` (manual,
        scheduled, backfill…), updated at or after ``updated_since``."""
        from airflow_client.client.api.dag_run_api import DagRunApi

        filters: dict[str, Any] = {
            "logical_date_gte": logical_from and _utc(logical_from),
            "logical_date_lt": logical_before and _utc(logical_before),
            "updated_at_gte": updated_since and _utc(updated_since),
            "state": states, "run_type": run_types,
        }
        filters = {k: v for k, v in filters.items() if v is not None}
        found, offset = [], 0
        with self._errors("GET", f"/api/v2/dags/{dag_id}/dagRuns"):
            while True:
                page = DagRunApi(self.client).get_dag_runs(dag_id, limit=PAGE, offset=offset, order_by=["id"],
                                                           **filters)
                found += page.dag_runs
                offset += PAGE
                if len(page.dag_runs) < PAGE:
                    return found

    def dag_run(self, dag_id: str, run_id: str):
        """``GET /api/v2/dags/{dag_id}/dagRuns/{run_id}`` (an :class:`ApiError` with status 404 when it
        does not exist)."""
        from airflow_client.client.api.dag_run_api import DagRunApi

        with self._errors("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"):
            return DagRunApi(self.client).get_dag_run(dag_id, run_id)

    def trigger_dag_run(self, dag_id: str, body: dict[str, Any]) -> str:
        """``POST /api/v2/dags/{dag_id}/dagRuns`` (``body`` as the UI's Trigger form sends it); the run id."""
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def clear_dag_run(self, dag_id: str, run_id: str) -> None:
        from airflow_client.client.api.dag_run_api import DagRunApi
        from airflow_client.client.models import DAGRunClearBody

        with self._errors("POST", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/clear"):
            DagRunApi(self.client).clear_dag_run(dag_id, run_id, DAGRunClearBody(dry_run=False))

    def mark_dag_run_failed(self, dag_id: str, run_id: str) -> None:
        """``PATCH …/dagRuns/{run_id}`` with ``{"state": "failed"}``: Airflow's "mark failed" (its
        running tasks failed, those not started skipped)."""
        from airflow_client.client.api.dag_run_api import DagRunApi
        from airflow_client.client.models import DagRunMutableStates, DAGRunPatchBody

        with self._errors("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"):
            DagRunApi(self.client).patch_dag_run(dag_id, run_id, DAGRunPatchBody(state=DagRunMutableStates.FAILED))

    def task_instances(self, dag_id: str, run_id: str, states: list[str] | None = None) -> list:
        """``GET …/dagRuns/{run_id}/taskInstances``, in ``states``, by start date (unstarted last)."""
        from airflow_client.client.api.task_instance_api import TaskInstanceApi

        with self._errors("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"):
            found = TaskInstanceApi(self.client).get_task_instances(
                dag_id, run_id, limit=PAGE, **({"state": states} if states else {})).task_instances
        return sorted(found, key=lambda ti: (ti.start_date is None, ti.start_date or datetime.min.replace(tzinfo=UTC)))
