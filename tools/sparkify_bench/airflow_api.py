"""What the bench reads of Airflow's state, through its REST API (/api/v2, Airflow 3.3) and the stack's
``Stack.api`` (logged in as admin): backfills, DAG runs, task instances, XComs, the scheduler's health.
No connection to Airflow's metadata database.

Endpoints and fields, as in airflow/api_fastapi/core_api/routes/public/ and datamodels/ of Airflow 3.3:

- ``GET /api/v2/backfills?dag_id=…`` (dag_id required; ``order_by``, ``limit``, ``offset``) and
  ``GET /api/v2/backfills/{id}``: ``id``, ``dag_id``, ``from_date``, ``to_date``, ``created_at``,
  ``completed_at``.
- ``GET /api/v2/dags/{dag_id}/dagRuns`` with ``run_type``, ``state``, ``logical_date_gte`` / ``logical_date_lte``:
  ``dag_run_id``, ``logical_date``, ``state``, ``start_date``, ``end_date``. A run's backfill is not in
  the response: a backfill's runs are the DAG's ``backfill`` runs whose logical dates lie in its
  [from_date, to_date] (one run per logical date; a backfill that reprocesses a run takes it over).
- ``GET /api/v2/dags/{dag_id}/dagRuns/{run_id}`` (404 when it does not exist).
- ``GET /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances`` (``~`` for every run) with ``task_id``,
  ``state``: ``task_id``, ``dag_run_id``, ``state``, ``start_date``, ``end_date``, ``duration``,
  ``try_number``.
- ``GET /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value``:
  ``value`` (as stored).
- ``GET /api/v2/monitor/health``: ``scheduler.status`` (``healthy`` when the latest scheduler job runs
  and has heartbeaten recently) and ``scheduler.latest_scheduler_heartbeat``.

Lists are paged: at most [api] maximum_page_limit (100 by default) items per request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from sparkify_local.airflow_api import ApiError
from sparkify_local.stack import Stack

PAGE = 100
FINISHED = ("success", "failed")
UNFINISHED = ("queued", "running")


def when(value: str | None) -> datetime | None:
    """A timestamp of the API (ISO 8601, with its offset) as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _path(template: str, *parts: str) -> str:
    return template.format(*(quote(p, safe="~") for p in parts))


def get(stack: Stack, path: str, **params: Any) -> dict[str, Any]:
    """GET ``path`` with query parameters (lists repeat the parameter; None is left out)."""
    query = urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
    return stack.api("GET", f"{path}?{query}" if query else path)


def paged(stack: Stack, path: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every item of a paged list (``key`` of the response), page by page."""
    offset = 0
    while True:
        page = get(stack, path, limit=PAGE, offset=offset, **params)
        items = list(page.get(key) or [])
        yield from items
        offset += len(items)
        total = page.get("total_entries")
        if not items or len(items) < PAGE or (total is not None and offset >= total):
            return


# -- backfills -----------------------------------------------------------------------------------------


def backfill(stack: Stack, backfill_id: int) -> dict[str, Any]:
    return stack.api("GET", f"/api/v2/backfills/{int(backfill_id)}")


def backfills(stack: Stack, dag_id: str) -> list[dict[str, Any]]:
    return list(paged(stack, "/api/v2/backfills", "backfills", dag_id=dag_id, order_by="id"))


def open_backfill_ids(stack: Stack, dag_ids: tuple[str, ...]) -> list[int]:
    """Backfills of these DAGs that Airflow has not marked complete yet."""
    return [b["id"] for dag_id in dag_ids for b in backfills(stack, dag_id) if not b.get("completed_at")]


def latest_backfill_id(stack: Stack, dag_id: str) -> int | None:
    page = get(stack, "/api/v2/backfills", dag_id=dag_id, order_by="-id", limit=1)
    found = list(page.get("backfills") or [])
    return found[0]["id"] if found else None


def _backfill_filter(info: dict[str, Any]) -> dict[str, Any]:
    return {"run_type": "backfill", "logical_date_gte": info["from_date"], "logical_date_lte": info["to_date"]}


def backfill_runs(stack: Stack, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The DAG runs of a backfill (``info`` from GET /api/v2/backfills/{id})."""
    return list(paged(stack, _path("/api/v2/dags/{}/dagRuns", info["dag_id"]), "dag_runs",
                      order_by="logical_date", **_backfill_filter(info)))


def count_backfill_runs(stack: Stack, info: dict[str, Any], states: tuple[str, ...] = ()) -> int:
    """How many runs of the backfill are in one of ``states`` (all when empty): one small request
    (``total_entries`` of a one-item page), cheap enough to poll; the api-server's CPU counts as Airflow's."""
    page = get(stack, _path("/api/v2/dags/{}/dagRuns", info["dag_id"]), limit=1, state=list(states) or None,
               **_backfill_filter(info))
    return int(page.get("total_entries") or 0)


# -- runs, task instances, XComs -------------------------------------------------------------------------


def dag_run(stack: Stack, dag_id: str, run_id: str) -> dict[str, Any] | None:
    try:
        return stack.api("GET", _path("/api/v2/dags/{}/dagRuns/{}", dag_id, run_id))
    except ApiError as err:
        if err.status == 404:
            return None
        raise


def run_states(stack: Stack, dag_id: str, first: datetime, last: datetime, run_type: str) -> dict[str, str]:
    """run id -> state of the DAG's runs of ``run_type`` with logical dates in [first, last]: one request
    per 100 runs, to poll many runs at once."""
    return {r["dag_run_id"]: r["state"] for r in paged(
        stack, _path("/api/v2/dags/{}/dagRuns", dag_id), "dag_runs", run_type=run_type,
        logical_date_gte=first.isoformat(), logical_date_lte=last.isoformat())}


def runs_at(stack: Stack, dag_id: str, logical_date: datetime) -> list[dict[str, Any]]:
    """The DAG's runs with exactly this logical date (at most one)."""
    moment = logical_date.isoformat()
    return list(paged(stack, _path("/api/v2/dags/{}/dagRuns", dag_id), "dag_runs",
                      logical_date_gte=moment, logical_date_lte=moment))


def failed_task_ids(stack: Stack, dag_id: str, run_id: str) -> list[str]:
    path = _path("/api/v2/dags/{}/dagRuns/{}/taskInstances", dag_id, run_id)
    return [ti["task_id"] for ti in paged(stack, path, "task_instances", state="failed")]


def task_instances(stack: Stack, dag_id: str, run_ids: list[str], task_id: str) -> list[dict[str, Any]]:
    """``task_id``'s task instances in these runs (one list over every run of the DAG, then filtered)."""
    wanted = set(run_ids)
    path = _path("/api/v2/dags/{}/dagRuns/~/taskInstances", dag_id)
    return [ti for ti in paged(stack, path, "task_instances", task_id=task_id)
            if (ti.get("dag_run_id") or ti.get("run_id")) in wanted]


def return_value(stack: Stack, dag_id: str, run_id: str, task_id: str) -> Any:
    """A task instance's return value (its ``return_value`` XCom), None when it has none."""
    path = _path("/api/v2/dags/{}/dagRuns/{}/taskInstances/{}/xcomEntries/return_value", dag_id, run_id, task_id)
    try:
        value = stack.api("GET", path).get("value")
    except ApiError as err:
        if err.status == 404:
            return None
        raise
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


# -- the scheduler -----------------------------------------------------------------------------------------


def scheduler_health(stack: Stack) -> tuple[str | None, datetime | None]:
    """(status, latest heartbeat) of the most recent scheduler job, from GET /api/v2/monitor/health."""
    scheduler = stack.api("GET", "/api/v2/monitor/health").get("scheduler") or {}
    return scheduler.get("status"), when(scheduler.get("latest_scheduler_heartbeat"))
