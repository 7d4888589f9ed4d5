"""Runs over any whole number of hours (a manual data interval): the same tables as the hourly runs.

With ``dag.test()`` on a real PostgreSQL and moto's S3 server, over the real data (read from
``../shared/data/sparkify``; the session fixtures skip when it is missing):

* one run over three days leaves every star and staging table, the manifest's objects and the
  per-hour counts with the same content checksums as the 72 hourly runs of those hours (the
  session's ``hourly_runs_templates``, tests/dags/conftest.py);
* a run that starts and ends mid-day, and one over the whole of November, equal the reference;
* a run wider than ``SPARKIFY_MAX_INTERVAL_DAYS``, or not whole hours, fails before any SQL,
  naming the interval and the setting;
* a three-day run whose middle day's file is missing fails in Stage_events, naming the file; and
  when its staging is made to skip that file anyway, the data-quality checks fail naming the day.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from tests import reference
from tests.dags.conftest import HOURLY_CHECKPOINTS, HOURLY_FROM
from tests.helpers import hours

from conftest import real_data

from .conftest import JSONPATHS_KEY, assert_matches, checksums, say, snapshot

THREE_DAYS = (datetime(2018, 11, 5), datetime(2018, 11, 8))
MID_DAY = (datetime(2018, 11, 5, 13), datetime(2018, 11, 7, 5))
NOVEMBER = (datetime(2018, 11, 1), datetime(2018, 12, 1))


def day_key(day: datetime) -> str:
    return f"log_data/{day:%Y/%m}/{day:%Y-%m-%d}-events.json"


@pytest.fixture(scope="module")
def reference_tables(real_songs):
    """``tables(start, end)``: the contract's tables for a window of the real data."""
    def tables(start: datetime, end: datetime) -> dict[str, list[tuple]]:
        events = reference.read_events(reference.event_log_paths(real_data(), start, end))
        return reference.expected_tables(events, real_songs, start, end)

    return tables


def test_a_three_day_run_equals_its_72_hourly_runs(make_etl, reference_tables, hourly_runs_templates):
    assert THREE_DAYS == (HOURLY_FROM, HOURLY_CHECKPOINTS[-1])
    hourly = make_etl(hourly_runs_templates.names[THREE_DAYS[1]])  # the session's 72 hourly runs
    assert [start for (start,) in hourly.db.query(
        "SELECT DISTINCT interval_start FROM quality_results ORDER BY 1")] == hours(*THREE_DAYS)
    wide = make_etl()
    run = wide.run_window(*THREE_DAYS)
    assert (run.data_interval_start.replace(tzinfo=None), run.data_interval_end.replace(tzinfo=None)) == THREE_DAYS

    expected = reference_tables(*THREE_DAYS)
    assert_matches(wide.db, expected, "one run over three days")
    assert checksums(wide.db) == checksums(hourly.db)
    staged = wide.db.query("SELECT s3_key FROM load_manifest WHERE source = 'staging_events' ORDER BY s3_key")
    assert staged == [(day_key(THREE_DAYS[0] + timedelta(days=n)),) for n in range(3)]
    assert wide.db.scalar("SELECT COUNT(*) FROM quality_results WHERE NOT passed") == 0
    say(f"[2018-11-05, 2018-11-08): 72 hourly dag.test() runs ({hourly_runs_templates.describe()}); "
        "one run: same checksums")


def test_a_run_that_starts_and_ends_mid_day_equals_the_reference(make_etl, reference_tables):
    etl = make_etl()
    etl.run_window(*MID_DAY)
    expected = reference_tables(*MID_DAY)
    assert expected["songplays"], "the window should hold plays"
    assert_matches(etl.db, expected, "[11-05T13:00, 11-07T05:00)")
    # Only the window's hours: the plays of 11-05 before 13:00 and of 11-07 from 05:00 are not loaded.
    assert etl.db.scalar("SELECT MIN(start_time) >= %s AND MAX(start_time) < %s FROM songplays", MID_DAY)


def test_one_run_over_november_equals_the_reference(make_etl, reference_tables):
    etl = make_etl()
    etl.run_window(*NOVEMBER)
    assert_matches(etl.db, reference_tables(*NOVEMBER), "one run over November 2018")
    assert etl.db.scalar("SELECT COUNT(*) FROM load_manifest WHERE source = 'staging_events'") == 30
    results = etl.db.query("SELECT check_name, actual FROM quality_results WHERE check_name = 'events_source_staged'")
    assert results == [("events_source_staged", "0")]


def test_a_run_wider_than_the_deployment_allows_fails_before_any_sql(make_etl, monkeypatch, capfd):
    etl = make_etl()
    before = snapshot(etl.db)
    monkeypatch.setenv("SPARKIFY_MAX_INTERVAL_DAYS", "2")
    capfd.readouterr()
    run = etl.run_window(*THREE_DAYS, expect="failed")
    output = "".join(capfd.readouterr())
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["Stage_events"] == states["Stage_songs"] == "failed", states
    assert "data interval [2018-11-05T00:00:00+00:00, 2018-11-08T00:00:00+00:00) is 72 hours wide" in output
    assert "SPARKIFY_MAX_INTERVAL_DAYS=2 days" in output
    assert snapshot(etl.db) == before
    assert etl.db.scalar("SELECT COUNT(*) FROM quality_results") == 0

    monkeypatch.setenv("SPARKIFY_MAX_INTERVAL_DAYS", "3")
    etl.run_window(*THREE_DAYS)  # exactly the maximum is allowed


def test_a_run_that_is_not_whole_hours_fails_naming_the_interval(make_etl, capfd):
    etl = make_etl()
    before = snapshot(etl.db)
    capfd.readouterr()
    etl.run_window(datetime(2018, 11, 5, 0, 30), datetime(2018, 11, 5, 2), expect="failed")
    output = "".join(capfd.readouterr())
    assert ("data interval [2018-11-05T00:30:00+00:00, 2018-11-05T02:00:00+00:00) is not a whole number of hours"
            in output)
    assert snapshot(etl.db) == before


@pytest.fixture
def bucket_without_middle_day(new_bucket):
    bucket = new_bucket(None)
    for day in (THREE_DAYS[0], THREE_DAYS[0] + timedelta(days=2)):
        bucket.put(day_key(day), (real_data() / day_key(day)).read_bytes())
    assert bucket.client.head_object(Bucket=bucket.name, Key=JSONPATHS_KEY)
    return bucket


def test_a_missing_middle_day_fails_the_run_and_the_checks_catch_a_staging_that_skipped_it(
    make_etl, bucket_without_middle_day, monkeypatch, capfd
):
    bucket = bucket_without_middle_day
    middle = day_key(THREE_DAYS[0] + timedelta(days=1))
    etl = make_etl(bucket=bucket.name)
    before = snapshot(etl.db)

    capfd.readouterr()
    run = etl.run_window(*THREE_DAYS, expect="failed", events_grace_hours=0)
    output = "".join(capfd.readouterr())
    assert run.get_task_instance("Stage_events").state == "failed"
    assert f"s3://{bucket.name}/{middle} does not exist" in output
    assert snapshot(etl.db) == before, "a run that failed on a missing file changed the warehouse"

    # A staging that skips the middle day anyway (a bug, a hand-edited template): the checks must
    # judge the interval by the days it needs, not by what was staged.
    stage = etl.dag.get_task("Stage_events")
    monkeypatch.setattr(stage, "s3_key", f"{day_key(THREE_DAYS[0])} {day_key(THREE_DAYS[1] - timedelta(days=1))}")
    capfd.readouterr()
    run = etl.run_window(*THREE_DAYS, expect="failed", events_grace_hours=0)
    output = "".join(capfd.readouterr())
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["Stage_events"] == "success" and states["Run_data_quality_checks"] == "failed", states
    assert f"events_source_staged [error] on load_manifest: actual 1, expected = 0 (not staged: {middle})" in output
