"""The quality page (plugins/sparkify_quality_page.py): Airflow's own api-server app (``create_app``),
which loads the plugin from plugins/ as the api-server does, asked with Starlette's TestClient, over
a real PostgreSQL warehouse holding ``quality_results`` rows, behind Airflow's real auth manager.

Browser-level: tests/local/test_quality_page_ui.py (after a real backfill with a failing hour).
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timedelta
from html import unescape
from urllib.parse import quote

import pytest

from conftest import ROOT

DAG_ID = "sparkify_etl"
H = timedelta(hours=1)
T0 = datetime(2018, 11, 1, 0)
PAGE = "/sparkify/quality/"
TASK = "Run_data_quality_checks"


def record(db, run_id: str, start: datetime, end: datetime, checks: dict[str, tuple], *,
           checked_at: datetime | None = None, dag_id: str = DAG_ID) -> None:
    """One attempt of a run's checks: name -> (passed, severity, actual, expected[, samples])."""
    with db.connect() as conn:
        for name, (passed, severity, actual, expected, *samples) in checks.items():
            conn.execute(
                "INSERT INTO public.quality_results (run_id, dag_id, interval_start, interval_end, check_name, "
                "table_name, column_name, severity, actual, expected, passed, checked_at, description, samples) "
                "VALUES (%s, %s, %s, %s, %s, 'songplays', 'level', %s, %s, %s, %s, %s, %s, %s)",
                (run_id, dag_id, start, end, name, severity, actual, expected, passed, checked_at or end + H,
                 f"what {name} checks", samples[0] if samples else None),
            )


def ok(actual="0"):
    return (True, "error", actual, "= 0")


@pytest.fixture(scope="module")
def airflow_app(airflow_db):
    """Airflow's api-server app: its plugins (ours among them), its auth manager, its middlewares."""
    from airflow.api_fastapi.app import create_app, purge_cached_app

    purge_cached_app()
    app = create_app("core")
    yield app
    purge_cached_app()


@pytest.fixture(scope="module")
def token(airflow_app):
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="analyst", role="viewer"))


@pytest.fixture
def client(airflow_app, token, warehouse):
    from fastapi.testclient import TestClient

    with TestClient(airflow_app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


@pytest.fixture
def loaded(warehouse):
    """Hours 00-03 hourly (01 fails an error check, 02 warns), a 4-hour run over 04-08, nothing at 08."""
    level = "songplays_level_accepted"
    for hour in range(4):
        start = T0 + hour * H
        checks = {level: ok("1"), "users_share_matched": (True, "warn", "0.9", ">= 0.5")}
        if hour == 1:
            checks[level] = (False, "error", "0", "= 1", "songplay_id='a1', level='gold'")
        if hour == 2:
            checks["users_share_matched"] = (False, "warn", "0.25", ">= 0.5")
        record(warehouse, f"backfill__{start:%Y-%m-%dT%H:%M:%S}+00:00", start, start + H, checks)
    record(warehouse, "manual__wide", T0 + 4 * H, T0 + 8 * H,
           {level: ok("1"), "users_share_matched": (True, "warn", "0.7", ">= 0.5")})
    return warehouse


def cells(html: str) -> list[dict[str, str]]:
    """The grid's cells: their attributes and their link."""
    found = [dict(re.findall(r'([\w-]+)="([^"]*)"', tag)) | {"href": unescape(href or "")}
             for tag, href in re.findall(r"<td ([^>]*)>\s*(?:<a href=\"([^\"]*)\")?", html)]
    return [cell for cell in found if "data-check" in cell]


def test_an_anonymous_request_is_refused(airflow_app, loaded):
    from fastapi.testclient import TestClient

    with TestClient(airflow_app) as anonymous:
        response = anonymous.get(PAGE, params={"dag_id": DAG_ID})
        assert response.status_code == 401, response.text
        assert "songplays_level_accepted" not in response.text
        forged = anonymous.get(PAGE, headers={"Authorization": "Bearer not-a-token"})
        assert forged.status_code in (401, 403), forged.text
        anonymous.cookies.set("_token", "not-a-token")
        assert anonymous.get(PAGE).status_code in (401, 403)
        # A browser that is not logged in is sent to Airflow's login page, and back to the page after it.
        anonymous.cookies.clear()
        browser = anonymous.get(PAGE, params={"dag_id": DAG_ID}, headers={"Accept": "text/html"},
                                follow_redirects=False)
        assert browser.status_code == 303, browser.text
        assert browser.headers["location"].startswith("/auth/login?next="), browser.headers
        assert "%2Fsparkify%2Fquality%2F%3Fdag_id%3Dsparkify_etl" in browser.headers["location"]


def test_a_user_without_a_role_may_not_read_the_dag(airflow_app, loaded):
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    nobody = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="nobody", role=None))
    with TestClient(airflow_app) as client:
        response = client.get(PAGE, headers={"Authorization": f"Bearer {nobody}"})
    assert response.status_code == 403, response.text


def test_the_uis_session_cookie_is_accepted(airflow_app, token, loaded):
    from fastapi.testclient import TestClient

    with TestClient(airflow_app) as browser:
        browser.cookies.set("_token", token)
        response = browser.get(PAGE, params={"dag_id": DAG_ID})
    assert response.status_code == 200, response.text
    assert "songplays_level_accepted" in response.text


def test_the_grid_colours_each_runs_interval(client, loaded):
    response = client.get(PAGE, params={"dag_id": DAG_ID, "start": "2018-11-01T00:00", "end": "2018-11-01T09:00"})
    assert response.status_code == 200, response.text
    html = response.text
    grid = [(c["data-check"], c["data-start"], c["data-end"], c["colspan"], c["data-status"]) for c in cells(html)]
    level = [g[1:] for g in grid if g[0] == "songplays_level_accepted"]
    assert level == [
        ("2018-11-01T00:00", "2018-11-01T01:00", "1", "pass"),
        ("2018-11-01T01:00", "2018-11-01T02:00", "1", "fail"),
        ("2018-11-01T02:00", "2018-11-01T03:00", "1", "pass"),
        ("2018-11-01T03:00", "2018-11-01T04:00", "1", "pass"),
        ("2018-11-01T04:00", "2018-11-01T08:00", "4", "pass"),  # the wide run: one cell over its interval
        ("2018-11-01T08:00", "2018-11-01T09:00", "1", "none"),
    ]
    assert [g[4] for g in grid if g[0] == "users_share_matched"] == ["pass", "pass", "warn", "pass", "pass", "none"]
    failed = next(c for c in cells(html) if c["data-status"] == "fail")
    run_id = "backfill__2018-11-01T01:00:00+00:00"
    assert failed["href"] == f"/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/{TASK}"
    assert 'class="fail"' in html and ".fail { background: #e53e3e; }" in html

    summary = re.search(r'<p id="summary">(.*?)</p>', html, re.S).group(1)
    summary = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", summary)).strip()
    assert summary == "8 of 9 hours checked (5 runs): 1 failed, 1 warned, 6 passed."


def test_a_failure_shows_actual_expected_and_the_offending_rows(client, loaded):
    html = client.get(PAGE, params={"start": "2018-11-01T00:00", "end": "2018-11-01T09:00"}).text
    failures = re.search(r'<section id="failures">(.*?)</section>', html, re.S).group(1)
    rows = re.findall(r'<tr class="(\w+)-row" data-check="([\w]+)" data-status="\w+">(.*?)</tr>', failures, re.S)
    def text(cols: str) -> list[str]:
        return [unescape(re.sub(r"<[^>]+>", "", v)).strip() for v in re.findall(r"<td[^>]*>(.*?)</td>", cols, re.S)]

    table = [(status, check, *text(cols)) for status, check, cols in rows]
    assert table == [
        ("fail", "songplays_level_accepted", "songplays_level_accepted", "2018-11-01 01:00 to 02:00", "0", "= 1",
         "songplay_id='a1', level='gold'", "backfill__2018-11-01T01:00:00+00:00"),
        ("warn", "users_share_matched", "users_share_matched", "2018-11-01 02:00 to 03:00", "0.25", ">= 0.5",
         "none kept", "backfill__2018-11-01T02:00:00+00:00"),
    ]
    detail = re.search(r'<section class="check-detail" id="check-songplays_level_accepted"[^>]*>(.*?)</section>',
                       html, re.S).group(1)
    assert "what songplays_level_accepted checks" in detail
    # The history: one point per run with a value, the failed hour's in red, on a polyline.
    row = re.search(r'<tr data-check="songplays_level_accepted">(.*?)</tr>', html, re.S).group(1)
    points = re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="2" class="(\w+)"', row)
    assert [p[2] for p in points] == ["pass", "fail", "pass", "pass", "pass"]
    assert float(points[1][1]) > float(points[0][1])  # actual 0 is drawn below actual 1
    assert "<polyline points=" in row


def test_a_rerun_replaces_the_attempt_before_it(client, warehouse):
    start = T0 + 5 * H
    record(warehouse, "scheduled__x", start, start + H, {"orphan_songs": (False, "error", "3", "= 0")},
           checked_at=start + 2 * H)
    record(warehouse, "scheduled__x", start, start + H, {"orphan_songs": ok()}, checked_at=start + 3 * H)
    html = client.get(PAGE, params={"start": f"{start:%Y-%m-%dT%H:%M}", "end": f"{start + H:%Y-%m-%dT%H:%M}"}).text
    assert [c["data-status"] for c in cells(html)] == ["pass"]
    assert "fail-row" not in html


def test_the_default_window_ends_at_the_latest_interval(client, loaded):
    html = client.get(PAGE).text
    assert 'name="end" value="2018-11-01T08:00"' in html and 'name="start" value="2018-10-30T08:00"' in html
    assert "<strong>8</strong> of 48 hours checked" in html
    # The index of days with results opens a whole day.
    days = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", re.search(r'<p id="days"[^>]*>(.*?)</p>', html, re.S).group(1)))
    assert days.strip() == "Days with results: 2018-11-01 (5 runs, 1 failed)"
    assert 'href="?dag_id=sparkify_etl&amp;start=2018-11-01T00:00&amp;end=2018-11-02T00:00"' in html


def test_an_empty_window_says_so(client, warehouse):
    html = client.get(PAGE, params={"start": "2018-11-01T00:00", "end": "2018-11-02T00:00"}).text
    assert 'id="empty"' in html and "public.quality_results" in html


@pytest.mark.parametrize(("params", "status"), [
    ({"start": "2018-11-01T05:00", "end": "2018-11-01T05:00"}, 400),
    ({"start": "yesterday"}, 400),
    ({"dag_id": "x' OR 1=1"}, 422),
])
def test_bad_parameters_are_refused(client, params, status):
    response = client.get(PAGE, params=params)
    assert response.status_code == status, response.text


def test_the_page_only_reads(warehouse):
    """Its session is a read-only transaction: a write in it fails on the warehouse itself."""
    import psycopg

    from sparkify.quality_page import results

    with results.read_only("redshift") as session, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        session.execute("DELETE FROM public.quality_results")


def test_the_plugin_file_is_cheap_to_import():
    """Every task process imports plugin files: the app and Airflow's API security stay unloaded."""
    code = ("import sys, sparkify_quality_page as p; "
            "print(p.SparkifyQualityPagePlugin.fastapi_apps[0]['url_prefix']); "
            "print(sorted(m for m in ('fastapi', 'sparkify.quality_page.app', "
            "'airflow.api_fastapi.core_api.security') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["/sparkify/quality", "[]"], result.stdout


def test_the_plugin_registers_its_app_and_views(airflow_app):
    from airflow import plugins_manager

    apps, _ = plugins_manager.get_fastapi_plugins()
    assert [a["url_prefix"] for a in apps if a["name"] == "Sparkify data quality"] == ["/sparkify/quality"]
    views, _ = plugins_manager._get_ui_plugins()
    assert {(v["destination"], v["href"]) for v in views if v["name"] == "Data quality"} == {
        ("nav", "/sparkify/quality/?dag_id=sparkify_etl"), ("dag", "/sparkify/quality/?dag_id={DAG_ID}")}
