"""DataQualityOperator on PostgreSQL: include/quality/checks.yaml against a warehouse loaded by the
operators from the hand-made data set, then broken one way at a time."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sparkify.operators import (
    DataQualityOperator,
    LoadDimensionOperator,
    LoadFactOperator,
    StageToRedshiftOperator,
)
from sparkify.quality import Check, load_checks

from .helpers import EVENTS_KEY, JSONPATHS_KEY, at, make_context, put_sources

CHECK_COUNT = len(load_checks())


@pytest.fixture(scope="module")
def loaded(pg_server, tables_template, moto_server) -> str:
    """A database loaded for hours 10 and 11 of 2018-11-04 by the real operators (the clean state)."""
    from conftest import aws_connection, create_bucket, create_database

    db = create_database(pg_server, template=tables_template)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_REDSHIFT", db.url)
        mp.setenv("AIRFLOW_CONN_AWS", aws_connection(moto_server.endpoint))
        bucket = create_bucket(moto_server.endpoint)
        put_sources(bucket)
        context = make_context(at(10))
        StageToRedshiftOperator(
            task_id="Stage_events", table="staging_events", s3_bucket=bucket.name, s3_key=EVENTS_KEY,
            json_format=f"s3://{bucket.name}/{JSONPATHS_KEY}", source_key_column="source_key", hour_counts=True,
        ).execute(context)
        StageToRedshiftOperator(
            task_id="Stage_songs", table="staging_songs", s3_bucket=bucket.name, s3_prefix="song_data",
            json_format="auto", dedupe_key="song_id",
        ).execute(context)
        for hour in (10, 11):
            context = make_context(at(hour))
            LoadFactOperator(task_id="Load_songplays_fact_table", table="songplays",
                             select="load/songplays.sql").execute(context)
            for table in ("users", "songs", "artists"):
                LoadDimensionOperator(task_id=f"Load_{table}", table=table, select=f"load/{table}.sql",
                                      mode="upsert").execute(context)
            LoadDimensionOperator(task_id="Load_time_dim_table", table="time", select="load/time.sql",
                                  mode="truncate_insert", scope_column="start_time").execute(context)
    assert db.scalar("SELECT COUNT(*) FROM songplays") == 4
    return db.name


@pytest.fixture
def db(pg_server, loaded, monkeypatch):
    """A fresh copy of the loaded warehouse, as the ``redshift`` connection."""
    from conftest import create_database

    copy = create_database(pg_server, template=loaded)
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT", copy.url)
    return copy


def run_checks(hour: int = 10, run_id: str = "dq_run", **kwargs):
    context = make_context(at(hour), run_id=run_id, dag_id="sparkify_etl")
    op = DataQualityOperator(task_id="Run_data_quality_checks", source_keys=EVENTS_KEY, **kwargs)
    return op, context, op.execute(context)


def results(db, run_id: str = "dq_run") -> dict[str, tuple]:
    rows = db.query(
        "SELECT check_name, table_name, column_name, severity, actual, expected, passed, dag_id, interval_start, "
        "interval_end FROM quality_results WHERE run_id = %s", (run_id,))
    return {r[0]: r[1:] for r in rows}


def test_clean_data_passes_and_every_result_is_recorded(db):
    op, context, outcome = run_checks(10)

    assert outcome == {"checks": CHECK_COUNT, "failed": 0, "warnings": 0}
    assert context["ti"].xcom["warnings"] == []
    recorded = results(db)
    assert len(recorded) == CHECK_COUNT
    assert all(r[5] for r in recorded.values()), {k: v for k, v in recorded.items() if not v[5]}
    assert recorded["songplays_songplay_id_unique_check"] == (
        "songplays", "songplay_id", "error", "0", "= 0", True, "sparkify_etl", datetime(2018, 11, 4, 10),
        datetime(2018, 11, 4, 11))
    assert recorded["events_source_staged"][:6] == ("load_manifest", None, "error", "0", "= 0", True)
    assert len(op.check_results) == CHECK_COUNT and all(r.success for r in op.check_results)


def test_a_quiet_hour_passes(db):
    """Hour 12 has no event at all, but its daily file was staged: an empty hour, not a missing file."""
    assert db.scalar("SELECT COUNT(*) FROM songplays WHERE start_time >= '2018-11-04 12:00'") == 0
    _, _, outcome = run_checks(12, run_id="quiet")
    assert outcome["failed"] == 0
    assert all(r[5] for r in results(db, "quiet").values())


def test_a_quiet_hour_without_its_daily_file_fails(db):
    """The same empty hour, but the day's file was never staged: a missing source, not a quiet hour."""
    with db.connect() as conn:
        conn.execute("DELETE FROM load_manifest WHERE s3_key = %s", (EVENTS_KEY,))
    with pytest.raises(AirflowFailException) as info:
        run_checks(12, run_id="missing")
    assert str(info.value).splitlines()[1:] == [
        f"  - events_source_staged [error] on load_manifest: actual 1, expected = 0 (not staged: {EVENTS_KEY})",
        "      checks: every daily event file the interval needs was staged (files missing from the load manifest)"]


def test_a_wide_interval_needs_every_daily_file_it_touches(db):
    """A run over two days needs both days' files: the staged 2018-11-04 alone does not do."""
    next_day = "log_data/2018/11/2018-11-05-events.json"
    context = make_context(at(0), hours=48, run_id="two_days", dag_id="sparkify_etl")
    op = DataQualityOperator(task_id="Run_data_quality_checks", source_keys=f"{EVENTS_KEY} {next_day}")
    with pytest.raises(AirflowFailException) as info:
        op.execute(context)
    assert (f"  - events_source_staged [error] on load_manifest: actual 1, expected = 0 (not staged: {next_day})"
            in str(info.value).splitlines())
    assert results(db, "two_days")["events_source_staged"][3:6] == ("1", "= 0", False)


FAILURES = {
    "duplicate_user_key": (
        ["ALTER TABLE users DROP CONSTRAINT users_pkey",  # Redshift does not enforce keys
         "INSERT INTO users SELECT * FROM users WHERE user_id = 10"],
        "users_user_id_unique_check [error] on users.user_id: actual 1, expected = 0",
    ),
    "duplicate_songplay_key": (
        ["ALTER TABLE songplays DROP CONSTRAINT songplays_pkey",
         "INSERT INTO songplays SELECT * FROM songplays WHERE song_id IS NULL"],
        "songplays_songplay_id_unique_check [error] on songplays.songplay_id: actual 1, expected = 0",
    ),
    "null_songplay_user": (
        ["UPDATE songplays SET user_id = NULL WHERE song_id IS NULL"],
        "songplays_user_id_null_check [error] on songplays.user_id: actual 1, expected = 0",
    ),
    "null_artist_key": (
        ["ALTER TABLE artists DROP CONSTRAINT artists_pkey",
         "ALTER TABLE artists ALTER COLUMN artist_id DROP NOT NULL",
         "INSERT INTO artists (artist_id, name) VALUES (NULL, 'nobody')"],
        "artists_artist_id_null_check [error] on artists.artist_id: actual 1, expected = 0",
    ),
    "orphan_songplay_user": (
        ["DELETE FROM users WHERE user_id = 20"],
        "songplays_user_in_users [error] on songplays.user_id: actual 1, expected = 0",
    ),
    "wrong_level": (
        ["UPDATE songplays SET level = 'gold' WHERE user_id = 20"],
        "songplays_level_accepted [error] on songplays: actual 0, expected = 1",
    ),
    "missing_events_file": (
        [f"DELETE FROM load_manifest WHERE s3_key = '{EVENTS_KEY}'"],
        f"events_source_staged [error] on load_manifest: actual 1, expected = 0 (not staged: {EVENTS_KEY})",
    ),
    "songplay_lost": (
        ["DELETE FROM songplays WHERE song_id IS NULL"],
        "songplays_match_source_counts [error] on songplays: actual -1, expected = 0",
    ),
    "source_count_differs": (
        ["UPDATE load_manifest_hours SET next_song_events = next_song_events + 2 "
         "WHERE hour_start = '2018-11-04 10:00'"],
        "songplays_match_source_counts [error] on songplays: actual -2, expected = 0",
    ),
    "orphan_time": (
        ["DELETE FROM time WHERE start_time = (SELECT MIN(start_time) FROM songplays)"],
        "songplays_start_time_in_time [error] on songplays.start_time: actual 1, expected = 0",
    ),
}


@pytest.mark.parametrize("case", FAILURES)
def test_a_broken_table_fails_naming_check_table_column_actual_and_expected(db, case):
    statements, line = FAILURES[case]
    with db.connect() as conn:
        for statement in statements:
            conn.execute(statement)

    with pytest.raises(AirflowFailException) as info:
        run_checks(10)

    message = str(info.value)
    header, *lines = message.splitlines()
    assert header.endswith("data-quality check(s) failed:")
    listed = {}
    for text in lines:
        if text.startswith("      "):  # what the check checks and its offending rows, under its line
            continue
        match = LINE.match(text)
        assert match, f"not a check line: {text!r}"
        listed[match["name"]] = match.groupdict()
    name, severity, where, actual, expected, detail = LINE.match("  - " + line).groups()
    assert name in listed, message
    assert listed[name]["severity"] == severity and listed[name]["where"] == where, message
    assert float(listed[name]["actual"]) == float(actual) and listed[name]["expected"] == expected, message
    assert listed[name]["detail"] == detail, message

    recorded = results(db)
    assert len(recorded) == CHECK_COUNT  # every result is recorded, failed or not
    assert float(recorded[name][3]) == float(actual) and recorded[name][4:6] == (expected, False)
    assert {k for k, v in recorded.items() if not v[5]} == set(listed)  # the message lists every failure


LINE = re.compile(r"^  - (?P<name>\w+) \[(?P<severity>\w+)\] on (?P<where>[\w.]+): actual (?P<actual>\S+), "
                  r"expected (?P<expected>.+?)(?: \((?P<detail>.+)\))?$")


def test_a_failing_warn_check_does_not_fail_the_task(db):
    with db.connect() as conn:
        conn.execute("UPDATE songplays SET song_id = NULL, artist_id = NULL")

    op, context, outcome = run_checks(10)

    assert outcome == {"checks": CHECK_COUNT, "failed": 0, "warnings": 1}
    (warning,) = context["ti"].xcom["warnings"]
    first, *more = warning.splitlines()
    assert first.startswith("songplays_matched_song_share [warn] on songplays: actual 0")
    assert first.endswith("expected >= 0.01")
    assert more == ["      checks: the share of all songplays matched to a song"]
    recorded = results(db)
    share = recorded["songplays_matched_song_share"]
    assert share[2] == "warn" and share[5] is False
    assert sum(1 for r in recorded.values() if not r[5]) == 1


def test_checks_passed_as_objects_and_their_results(db):
    from sparkify.quality import Check

    check = Check("songplays_from_user_20", "songplays", "sql_check", "quality/orphan_users.sql", {"leq_to": 0},
                  "warn", "user_id")
    _, _, outcome = run_checks(10, checks=[check])
    assert outcome == {"checks": 1, "failed": 0, "warnings": 0}
    assert results(db)["songplays_from_user_20"][:6] == ("songplays", "user_id", "warn", "0", "<= 0", True)


def row_check(statement: str) -> Check:
    """A table check of songplays (scoped to the run's interval), as checks.yaml declares one."""
    return Check("songplays_row_check", "songplays", "table_check", "quality/table_check.sql", {"equal_to": 1},
                 "error", None, {"check_statement": statement, "table": "songplays", "scope_column": "start_time"})


def test_a_row_level_check_statement_is_evaluated_on_every_row(db):
    """As common-sql's SQLTableCheckOperator: one bad row among many fails the check, whichever row
    it is (the old reading looked at the first row only)."""
    rows = db.query("SELECT songplay_id FROM songplays WHERE start_time >= '2018-11-04 10:00' "
                    "AND start_time < '2018-11-04 11:00' ORDER BY songplay_id")
    assert len(rows) > 1
    _, _, outcome = run_checks(10, checks=[row_check("session_id > 0")])
    assert outcome["failed"] == 0
    with db.connect() as conn:  # the last row, not the first: a reader of one row would miss it
        conn.execute("UPDATE songplays SET session_id = -1 WHERE songplay_id = %s", (rows[-1][0],))
    with pytest.raises(AirflowFailException, match=r"songplays_row_check \[error\] on songplays: actual 0, "
                                                   r"expected = 1"):
        run_checks(10, run_id="one_bad_row", checks=[row_check("session_id > 0")])


def test_a_row_level_check_passes_on_an_empty_interval(db):
    """Hour 12 holds no songplay: nothing violates the statement (common-sql's MIN over no rows is
    NULL, a failure; a quiet hour is normal here)."""
    assert db.scalar("SELECT COUNT(*) FROM songplays WHERE start_time >= '2018-11-04 12:00' "
                     "AND start_time < '2018-11-04 13:00'") == 0
    _, _, outcome = run_checks(12, run_id="empty", checks=[row_check("session_id > 0")])
    assert outcome["failed"] == 0
    assert results(db, "empty")["songplays_row_check"][3:6] == ("1", "= 1", True)


BAD_FILES = {
    "unknown_check": ("tables:\n  users:\n    columns:\n      user_id:\n        nul_check: {equal_to: 0}\n",
                      "tables.users.columns.user_id: unknown check 'nul_check'"),
    "not_a_number": ("tables:\n  users:\n    columns:\n      user_id:\n        null_check: {equal_to: zero}\n",
                     "tables.users.columns.user_id.null_check.equal_to: 'zero' is not a number"),
    "no_comparison": ("tables:\n  users:\n    columns:\n      user_id:\n        null_check: {severity: warn}\n",
                      "tables.users.columns.user_id.null_check: needs one of equal_to"),
    "bad_severity": ("tables:\n  users:\n    table_checks:\n      lvl:\n        check_statement: \"1 = 1\"\n"
                     "        severity: fatal\n", "tables.users.table_checks.lvl: severity 'fatal' is not one of"),
    "missing_sql": ("tables:\n  songplays:\n    sql_checks:\n      gap:\n        sql: quality/nope.sql\n"
                    "        equal_to: 0\n", "tables.songplays.sql_checks.gap: sql file 'quality/nope.sql' not found"),
    "bad_table": ("tables:\n  \"users; drop\":\n    columns: {}\n", "tables.users; drop"),
    "not_yaml": ("tables: [unclosed\n", "cannot read the checks"),
    "no_tables": ("checks: []\n", "expected a mapping with a 'tables' key"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_checks_file_names_file_and_check(db, tmp_path, case):
    text, needle = BAD_FILES[case]
    path = tmp_path / "checks.yaml"
    path.write_text(text)
    with pytest.raises(AirflowFailException) as info:
        run_checks(10, checks_file=str(path))
    assert str(info.value).startswith(f"{path}: "), str(info.value)
    assert needle in str(info.value), str(info.value)
    assert db.scalar("SELECT COUNT(*) FROM quality_results") == 0


def test_a_missing_checks_file_is_named(db, tmp_path):
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(AirflowFailException, match=f"{path}: cannot read the checks"):
        run_checks(10, checks_file=str(path))


def recorded_samples(db, run_id: str = "dq_run") -> dict[str, tuple]:
    return {r[0]: (r[1], r[2]) for r in db.query(
        "SELECT check_name, description, samples FROM quality_results WHERE run_id = %s", (run_id,))}


def failure_block(message: str, name: str) -> list[str]:
    """The lines of ``name``'s entry in a failure message: its line, then the indented ones under it."""
    lines = message.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  - {name} "))
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith("      "):
            break
        block.append(line)
    return block


def break_and_check(db, statements: list[str]) -> str:
    with db.connect() as conn:
        for statement in statements:
            conn.execute(statement)
    with pytest.raises(AirflowFailException) as info:
        run_checks(10)
    return str(info.value)


def test_every_result_is_recorded_with_what_it_checks_and_samples_only_when_it_failed(db):
    run_checks(10)
    recorded = recorded_samples(db)
    assert len(recorded) == CHECK_COUNT
    assert all(description for description, _ in recorded.values()), recorded
    assert all(samples is None for _, samples in recorded.values()), "samples are kept for failed checks only"
    assert recorded["songplays_level_accepted"][0] == (
        "every row satisfies level IN ('free', 'paid') (rows of the run's interval by start_time)")
    assert recorded["users_user_id_null_check"][0] == "no user_id is NULL (the whole table)"


def test_a_failed_table_check_shows_its_offending_rows(db):
    gold = [r[0] for r in db.query(
        "SELECT songplay_id FROM songplays WHERE user_id = 20 AND start_time >= '2018-11-04 10:00' "
        "AND start_time < '2018-11-04 11:00' ORDER BY songplay_id")]
    assert gold
    message = break_and_check(db, ["UPDATE songplays SET level = 'gold' WHERE user_id = 20"])
    rows = [f"songplay_id='{songplay_id}', level='gold'" for songplay_id in gold]
    assert failure_block(message, "songplays_level_accepted") == [
        "  - songplays_level_accepted [error] on songplays: actual 0, expected = 1",
        "      checks: every row satisfies level IN ('free', 'paid') (rows of the run's interval by start_time)",
        "      offending rows (up to 5):",
        *(f"        {row}" for row in rows),
    ]
    description, samples = recorded_samples(db)["songplays_level_accepted"]
    assert samples.splitlines() == rows


def test_at_most_five_offending_rows_are_kept_the_first_by_key(db):
    message = break_and_check(db, [
        "INSERT INTO users (user_id, first_name, last_name, gender, level, last_event_ts) "
        "SELECT 900 + n, 'Ann', 'Secret', 'F', 'gold', 0 FROM generate_series(1, 7) AS n"])
    expected = [f"user_id={900 + n}, level='gold'" for n in range(1, 6)]
    assert recorded_samples(db)["users_level_accepted"][1].splitlines() == expected
    block = failure_block(message, "users_level_accepted")
    assert block[3:] == [f"        {row}" for row in expected]
    assert "Secret" not in message and "Ann" not in message  # personal columns are never shown


@pytest.mark.parametrize(("case", "name", "samples"), [
    ("duplicate_user_key", "users_user_id_unique_check", ["user_id=10, rows_holding_it=2"]),
    ("null_artist_key", "artists_artist_id_null_check",
     ["artist_id=NULL, name='nobody', latitude=NULL, longitude=NULL"]),
    ("source_count_differs", "songplays_match_source_counts", None),
    ("orphan_songplay_user", "songplays_user_in_users", None),
    ("null_songplay_user", "songplays_user_id_null_check", None),
])
def test_each_kind_of_check_gives_its_own_samples(db, case, name, samples):
    if samples is None:  # rows whose content the loaded data decides: read it before breaking it
        hour10 = "start_time >= '2018-11-04 10:00' AND start_time < '2018-11-04 11:00'"
        if case == "source_count_differs":
            n = db.scalar(f"SELECT COUNT(*) FROM songplays WHERE {hour10}")
            samples = [f"hour_start=2018-11-04 10:00:00, songplays={n}, next_song_events_read={n + 2}"]
        elif case == "orphan_songplay_user":
            samples = [f"songplay_id='{i}', user_id=20" for (i,) in db.query(
                f"SELECT songplay_id FROM songplays WHERE user_id = 20 AND {hour10} ORDER BY 1")]
        else:
            samples = [f"songplay_id='{i}', user_id=NULL" for (i,) in db.query(
                f"SELECT songplay_id FROM songplays WHERE song_id IS NULL AND {hour10} ORDER BY 1")]
    message = break_and_check(db, FAILURES[case][0])
    assert recorded_samples(db)[name][1].splitlines() == samples
    assert failure_block(message, name)[3:] == [f"        {row}" for row in samples]


def test_samples_are_cut_to_the_column_width_in_bytes():
    from sparkify.operators.data_quality import _fit

    text = "é" * 3000  # 6,000 bytes
    cut = _fit(text, 4096)
    assert len(cut.encode("utf-8")) <= 4096 and cut.endswith("...") and cut.startswith("é" * 2000)
    assert _fit("short", 4096) == "short"
