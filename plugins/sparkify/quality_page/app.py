"""The quality page's FastAPI app, mounted by Airflow's api-server at ``/sparkify/quality``.

``GET /sparkify/quality/?dag_id=…&start=…&end=…`` renders ``templates/quality.html`` (server-side
Jinja, SVG charts drawn by the template: no JavaScript, no build step). Airflow does not protect a
plugin's endpoints: every request goes through Airflow's auth manager here (``GetUserDep`` reads a
Bearer token or the UI's ``_token`` cookie; ``requires_access_dag`` asks whether that user may read
the DAG's task instances), so an anonymous request gets 401 and a user without the DAG gets 403.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import jinja2
from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from airflow.configuration import conf
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sparkify import settings
from sparkify.quality_page import grid, results

log = logging.getLogger(__name__)

DEFAULT_DAG_ID = "sparkify_etl"
#: The DataQualityOperator's task in the DAG: each grid cell links to it in Airflow's grid view.
QUALITY_TASK_ID = "Run_data_quality_checks"
TEMPLATES = Path(__file__).parent / "templates"

DagId = Annotated[str, Query(max_length=250, pattern=r"^[A-Za-z0-9_.-]+$")]


def authorized(request: Request, user: GetUserDep, dag_id: DagId = DEFAULT_DAG_ID) -> None:
    """Airflow's auth manager: may this user read the task instances of ``dag_id``?"""
    requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE, param_dag_id=dag_id)(request, user)


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def airflow_base() -> str:
    """The path Airflow's UI is served under (``[api] base_url``), for links to its pages."""
    return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


def parse_moment(value: str | None, name: str) -> datetime | None:
    """An ISO date-time from the form (``2018-11-01T05:00``), as naive UTC, or None when blank."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{name}={value!r} is not a date-time such as 2018-11-01T05:00") from None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def window(start: datetime | None, end: datetime | None, last_end: datetime | None) -> tuple[datetime, datetime, str]:
    """Whole hours ``[start, end)``: what was asked, else ``DEFAULT_WINDOW`` up to the latest result;
    a window wider than ``MAX_WINDOW`` keeps its end. The third value says what was changed, if anything."""
    note = ""
    end = grid.hour_floor(end) if end else None
    if end is None:
        latest = last_end or datetime.now(UTC).replace(tzinfo=None)
        end = grid.hour_floor(latest)
        if end < latest:  # the hour the latest interval ends in, whole
            end += grid.HOUR
    start = grid.hour_floor(start) if start else end - grid.DEFAULT_WINDOW
    if start >= end:
        raise HTTPException(400, f"the window's start ({start:%Y-%m-%dT%H:%M}) must be before its end "
                                 f"({end:%Y-%m-%dT%H:%M})")
    if end - start > grid.MAX_WINDOW:
        start = end - grid.MAX_WINDOW
        note = f"The page shows at most {grid.MAX_WINDOW.days} days: the window starts at {start:%Y-%m-%d %H:%M}."
    return start, end, note


def create_app() -> FastAPI:
    app = FastAPI(title="Sparkify data quality", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def to_login(request: Request, exc: HTTPException) -> Response:
        """A browser that is not logged in goes to Airflow's login page, and comes back after it."""
        if exc.status_code == 401 and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
        return await http_exception_handler(request, exc)

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(authorized)])
    def quality_page(dag_id: DagId = DEFAULT_DAG_ID, start: str | None = None, end: str | None = None) -> str:
        """The grid, summary, history and failures of ``dag_id``'s checks over a window."""
        asked_start, asked_end = parse_moment(start, "start"), parse_moment(end, "end")
        conn_id, schema = settings.DEFAULTS.redshift_conn_id, settings.DEFAULTS.schema
        try:
            with results.read_only(conn_id) as session:
                last_end = results.last_interval_end(session, dag_id, schema) if asked_end is None else None
                first, last, note = window(asked_start, asked_end, last_end)
                rows = results.window_results(session, dag_id, first, last, schema)
                days = results.recent_days(session, dag_id, schema=schema)
        except HTTPException:
            raise
        except Exception as err:  # the page says why it has nothing, without the connection's secrets
            log.exception("The quality page could not read %s.quality_results through %r", schema, conn_id)
            raise HTTPException(503, f"could not read {schema}.quality_results through the connection "
                                     f"{conn_id!r}: {type(err).__name__}") from None
        page = grid.build(rows, dag_id, first, last, base=airflow_base(), task_id=QUALITY_TASK_ID)
        return _templates().get_template("quality.html").render(
            page=page, note=note, days=days, one_day=timedelta(days=1), chart=(grid.CHART_WIDTH, grid.CHART_HEIGHT),
            conn_id=conn_id, schema=schema,
            form_start=f"{first:%Y-%m-%dT%H:%M}", form_end=f"{last:%Y-%m-%dT%H:%M}",
        )

    return app


app = create_app()
