"""The runner's pieces that talk to Airflow's REST API, against a recording stand-in of
``sparkify_local.airflow_api.AirflowApi`` (the end-to-end runs are in test_runner.py), and the one
wording of a failed check (``sparkify.quality.describe_failure``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from types import SimpleNamespace

import pytest

from conftest import ROOT
from sparkify.quality import SAMPLES, describe_failure
from sparkify_local import runs
from sparkify_local.airflow_api import ApiError
from sparkify_local.config import Config


class State(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


def run(run_id: str, state: str, hour: int, run_type: str = "backfill") -> SimpleNamespace:
    start = datetime(2018, 11, 1, hour, tzinfo=UTC)
    return SimpleNamespace(dag_run_id=run_id, state=State(state), run_type=run_type, data_interval_start=start,
                           data_interval_end=start.replace(hour=hour + 1), logical_date=start)


@dataclass
class FakeRest:
    """What the API holds: backfills and runs; what was asked of it, in order."""

    backfills_: list[SimpleNamespace]
    runs: list[SimpleNamespace]
    calls: list[tuple] = field(default_factory=list)
    backfill_error: ApiError | None = None

    def backfills(self, dag_id):
        return self.backfills_

    def dag_runs(self, dag_id, *, logical_from=None, logical_before=None, states=None, run_types=None,
                 updated_since=None):
        found = []
        for r in self.runs:
            start = r.logical_date.replace(tzinfo=None)
            if ((states is None or r.state.value in states) and (run_types is None or r.run_type in run_types)
                    and (logical_from is None or start >= logical_from)
                    and (logical_before is None or start < logical_before)):
                found.append(r)
        return found

    def cancel_backfill(self, backfill_id):
        self.calls.append(("cancel", backfill_id))

    def mark_dag_run_failed(self, dag_id, run_id):
        self.calls.append(("failed", run_id))
        next(r for r in self.runs if r.dag_run_id == run_id).state = State.FAILED

    def create_backfill(self, *args, **kwargs):
        self.calls.append(("create", args, kwargs))
        if self.backfill_error:
            raise self.backfill_error
        raise AssertionError("not expected")


def stack_with(rest: FakeRest) -> SimpleNamespace:
    config = Config.load(ROOT, {"START": "2018-11-01T00:00", "END": "2018-11-01T04:00"})
    return SimpleNamespace(config=config, rest=rest)


def test_closing_an_interrupted_run_cancels_its_backfill_and_marks_its_unfinished_runs_failed(capsys):
    rest = FakeRest(
        backfills_=[SimpleNamespace(id=1, completed_at=datetime(2018, 1, 1)), SimpleNamespace(id=7, completed_at=None)],
        runs=[run("b0", "success", 0), run("b1", "running", 1), run("b2", "queued", 2),
              run("m3", "running", 3, run_type="manual"), run("x9", "running", 9, run_type="manual")],
    )
    runs.close_interrupted_runs(stack_with(rest))
    # The unfinished backfill is cancelled first (paused: nothing more starts), then each run left
    # queued or running (of a backfill, or in the window) is marked failed; finished runs and runs
    # outside the window that no backfill made are left alone.
    assert rest.calls[0] == ("cancel", 7)
    assert sorted(rest.calls[1:]) == [("failed", "b1"), ("failed", "b2"), ("failed", "m3")]
    assert [r.state.value for r in rest.runs] == ["success", "failed", "failed", "failed", "running"]
    out = capsys.readouterr().out
    assert "closed backfill 7, left unfinished by an interrupted run" in out
    assert "its unfinished runs are marked failed (2018-11-01T01:00, 2018-11-01T02:00, 2018-11-01T03:00)" in out


def test_closing_with_nothing_left_changes_nothing(capsys):
    rest = FakeRest(backfills_=[SimpleNamespace(id=1, completed_at=datetime(2018, 1, 1))],
                    runs=[run("b0", "success", 0), run("b1", "failed", 1)])
    runs.close_interrupted_runs(stack_with(rest))
    assert rest.calls == []
    assert "closed backfill" not in capsys.readouterr().out


@pytest.mark.parametrize("detail", [
    "No runs to create for Dag sparkify_etl in the range [2030-01-01, 2030-01-02]",
    "Backfill cannot be executed for future dates.",
])
def test_a_backfill_with_no_hour_ended_is_no_error(detail, capsys):
    rest = FakeRest(backfills_=[], runs=[], backfill_error=ApiError("POST", "/api/v2/backfills", 422, detail))
    assert runs.create_backfill(stack_with(rest)) is None
    assert "no run to create: no hour of the window has ended yet" in capsys.readouterr().out


def test_another_backfill_error_is_the_users():
    rest = FakeRest(backfills_=[], runs=[], backfill_error=ApiError(
        "POST", "/api/v2/backfills", 409, "There is already a running backfill for dag sparkify_etl"))
    with pytest.raises(runs.RunnerError, match="409 There is already a running backfill"):
        runs.create_backfill(stack_with(rest))


def test_describe_failure_words_a_check_for_the_log_and_the_summary():
    text = describe_failure("songplays_level_accepted", "songplays", None, 0, "= 1", severity="error",
                            description="every row satisfies level IN ('free', 'paid')",
                            samples=["songplay_id='x', level='gold'"])
    assert text.splitlines() == [
        "songplays_level_accepted [error] on songplays: actual 0, expected = 1",
        "      checks: every row satisfies level IN ('free', 'paid')",
        f"      offending rows (up to {SAMPLES}):",
        "        songplay_id='x', level='gold'",
    ]
    # The summary's form: no severity, and no samples line when none were kept.
    assert describe_failure("users_unique", "users", "user_id", 2, "= 0", samples=None) == (
        "users_unique on users.user_id: actual 2, expected = 0")
    assert describe_failure("t", "time", None, 1, "= 0", samples=[]).endswith(
        f"offending rows (up to {SAMPLES}): none found")
