"""The quality page in a real stack, in a real browser: `make up`, one bad event in the demo log file
(a NextSong with level `gold` in the window's first hour), a 2-hour backfill through the REST API
(the first run fails its checks, the second passes), then the page in headless Chromium, logged in
as admin: the grid shows the first hour red on `songplays_level_accepted` and the second green, the
summary counts them, and the failure shows the offending row. Screenshots of the page inside
Airflow's UI and on its own are saved (docs/quality.png is the former, copied from /tmp).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from html import unescape
from urllib.parse import quote

import pytest

from conftest import s3_client

from .browser import AuthProxy, chromium_page
from .test_runner import DAG_ID, Up, assert_nothing_left, new_state_dir, query, run_runner, runner_env

START, END = datetime(2018, 11, 1, 0), datetime(2018, 11, 1, 2)
CHECK = "songplays_level_accepted"


def spoil_first_hour(up: Up, endpoint: str, bucket: str) -> str:
    """Give the first NextSong event of the window's first hour the level `gold`, in the demo file and
    in S3, before any run stages it; return that event's user id."""
    from sparkify_local import demo_data

    key = demo_data.log_key(START.date())
    path = up.state / "demo" / key
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    first = min((e for e in events if e["page"] == "NextSong" and e["userId"]), key=lambda e: e["ts"])
    assert first["ts"] < (START + timedelta(hours=1) - datetime(1970, 1, 1)).total_seconds() * 1000
    first["level"] = "gold"
    body = "".join(json.dumps(e) + "\n" for e in events)
    path.write_text(body)
    s3_client(endpoint).put_object(Bucket=bucket, Key=key, Body=body.encode())
    return str(first["userId"])


def backfill(up: Up) -> list[dict]:
    created = up.api("POST", "/api/v2/backfills", {
        "dag_id": DAG_ID, "from_date": f"{START:%Y-%m-%dT%H:%M:%S}Z",
        "to_date": f"{END - timedelta(hours=1):%Y-%m-%dT%H:%M:%S}Z",
        "max_active_runs": 2, "reprocess_behavior": "failed", "run_backwards": False, "dag_run_conf": {},
    })
    deadline = time.monotonic() + 900
    while True:
        runs = up.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?run_type=backfill&limit=100")["dag_runs"]
        runs = [r for r in runs if r.get("backfill_id") in (None, created["id"])]
        if len(runs) == 2 and all(r["state"] in ("success", "failed") for r in runs):
            return sorted(runs, key=lambda r: r["data_interval_start"])
        assert time.monotonic() < deadline, f"backfill {created['id']} unfinished: {runs}"
        time.sleep(3)


def cells(dom: str) -> dict[tuple[str, str], str]:
    """(check, hour) -> status, from the grid's cells."""
    found = {}
    for tag in re.findall(r"<td ([^>]*)>", dom):
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', tag))
        if "data-check" in attrs:
            found[(attrs["data-check"], attrs["data-start"])] = attrs["data-status"]
    return found


@pytest.mark.scheduler
def test_the_quality_page_shows_the_failing_hour_red(chromium, tmp_path):
    state = new_state_dir("quality-ui")
    env = runner_env(state, START=f"{START:%Y-%m-%dT%H:%M}", END=f"{END:%Y-%m-%dT%H:%M}")
    runner = run_runner("up", env, timeout=600, show=True)
    try:
        assert runner.process.returncode == 0, runner.tail(120)
        login = re.search(r"Airflow UI: http://127\.0\.0\.1:(\d+)/dags/sparkify_etl +login: admin / (\S+)",
                          runner.output)
        s3 = re.search(r"S3: +(http://127\.0\.0\.1:\d+) bucket (\S+)", runner.output)
        page = re.search(r"quality: +(http://127\.0\.0\.1:\d+/plugin/sparkify-quality(/sparkify/quality/\?\S+))",
                         runner.output)
        assert login and s3 and page, runner.output
        up = Up(state, runner, int(login.group(1)), login.group(2))
        in_ui, direct = page.group(1), f"http://127.0.0.1:{up.api_port}{page.group(2)}"
        assert direct.endswith(f"?dag_id={DAG_ID}&start=2018-11-01T00:00&end=2018-11-01T02:00"), direct

        # Airflow's login is on: the live api-server refuses the page to an anonymous request.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(direct, timeout=180)
        assert refused.value.code == 401

        user_id = spoil_first_hour(up, s3.group(1), s3.group(2))
        runs = backfill(up)
        assert [(r["data_interval_start"], r["state"]) for r in runs] == [
            ("2018-11-01T00:00:00Z", "failed"), ("2018-11-01T01:00:00Z", "success")], runs
        stack = json.loads((state / "stack.json").read_text())
        (songplay_id,) = query(stack["warehouse_url"], "SELECT songplay_id FROM songplays WHERE level = 'gold'")[0]

        proxy = AuthProxy(up.token, up.api_port)  # the admin's token, which the REST calls above fetched
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        shot, framed = tmp_path / "quality-page.png", tmp_path / "quality-in-ui.png"
        try:
            dom = chromium_page(chromium, direct, proxy.port, ["--dump-dom", f"--screenshot={shot}"], tmp_path)
            chromium_page(chromium, in_ui, proxy.port, [f"--screenshot={framed}"], tmp_path)
        finally:
            proxy.shutdown()
            proxy.server_close()
        (tmp_path / "quality.html").write_text(dom)
        print(f"\nquality page: {shot}  inside the UI: {framed}  DOM: {tmp_path / 'quality.html'}")
        with contextlib.suppress(OSError):
            shutil.copy(framed, "/tmp/sparkify-quality.png")
            shutil.copy(shot, "/tmp/sparkify-quality-page.png")
        for png in (shot, framed):
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000, png

        grid = cells(dom)
        assert grid[(CHECK, "2018-11-01T00:00")] == "fail", grid
        assert grid[(CHECK, "2018-11-01T01:00")] == "pass", grid
        assert {status for (check, hour), status in grid.items() if hour == "2018-11-01T01:00"} == {"pass"}, grid
        assert f'<th class="check" scope="row"><a href="#check-{CHECK}">{CHECK}</a></th>' in dom
        summary = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", re.search(r'<p id="summary">(.*?)</p>', dom, re.S)[1]))
        assert summary.strip().startswith("2 of 2 hours checked (2 runs): 1 failed,"), summary
        failure = re.search(rf'<tr class="fail-row" data-check="{CHECK}" data-status="fail">(.*?)</tr>', dom, re.S)
        assert failure and f"songplay_id='{songplay_id}', level='gold'" in unescape(failure[1]), dom[-4000:]
        assert user_id  # the spoiled event had a user, so its play is in songplays
        link = f'href="/dags/{DAG_ID}/runs/{quote(runs[0]["dag_run_id"], safe="")}/tasks/Run_data_quality_checks"'
        assert link in dom, dom[-4000:]
    finally:
        down = run_runner("down", env, timeout=300, show=True)
        assert down.process.returncode == 0, down.output
        assert_nothing_left(state, runner)
