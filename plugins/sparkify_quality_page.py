"""The data-quality page in Airflow's UI: which hours passed which checks (docs/quality.md).

Registers a FastAPI app at ``/sparkify/quality`` (``sparkify.quality_page.app``) and two external
views that open it inside the UI: one in the navigation, one on each DAG's page.

Airflow imports every plugin file in every task process too (for macros), so this file stays cheap:
the app, FastAPI and Airflow's API security modules (about 1.8 s of imports) are loaded by the
api-server on the page's first request, not here.
"""

from __future__ import annotations

import threading
from typing import Any

from airflow.plugins_manager import AirflowPlugin

PREFIX = "/sparkify/quality"


class _LazyApp:
    """An ASGI app that imports ``sparkify.quality_page.app`` when it is first called."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from sparkify.quality_page.app import app

                    self._app = app
        await self._app(scope, receive, send)


class SparkifyQualityPagePlugin(AirflowPlugin):
    name = "sparkify_quality_page"
    fastapi_apps = [{"app": _LazyApp(), "url_prefix": PREFIX, "name": "Sparkify data quality"}]
    external_views = [
        {"name": "Data quality", "href": f"{PREFIX}/?dag_id=sparkify_etl", "destination": "nav",
         "category": "browse", "url_route": "sparkify-quality"},
        {"name": "Data quality", "href": f"{PREFIX}/?dag_id={{DAG_ID}}", "destination": "dag",
         "url_route": "sparkify-quality-dag"},
    ]
