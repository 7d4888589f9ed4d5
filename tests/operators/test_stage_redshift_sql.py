"""The Redshift path, by the exact SQL it sends.

Redshift cannot run here, so the ``redshift`` connection is a real ``redshift``-type Airflow
connection whose DB-API connection (only that) is a recorder (:class:`FakeRedshift`). S3 stays
real (moto's server): the COPY manifests the operator writes are read back from it.
"""

from __future__ import annotations

import json
import logging
import re

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from sparkify.errors import TransientError
from sparkify.operators import LoadDimensionOperator, LoadFactOperator, StageToRedshiftOperator

from .helpers import (
    EVENTS_KEY,
    JSONPATHS_KEY,
    ROLE_ARN,
    SECRET,
    SESSION_TOKEN,
    SONGS,
    assert_redshift_compatible,
    at,
    make_context,
    normalize,
    put_sources,
    without_rss,
)

RUN_ID = "scheduled__2018-11-04T10:00:00+00:00"
SAFE_RUN = "scheduled__2018-11-04T10_00_00_00_00"
CONTEXT = make_context(at(10), run_id=RUN_ID, dag_id="sparkify_etl")
EVENT_COLUMNS = ("artist, auth, firstname, gender, iteminsession, lastname, length, level, location, method, page, "
                 "registration, sessionid, song, status, ts, useragent, userid")
SONG_COLUMNS = ("num_songs, artist_id, artist_latitude, artist_longitude, artist_location, artist_name, song_id, "
                "title, duration, year")


@pytest.fixture
def aws(moto_server, monkeypatch):
    """Set the ``aws`` connection: ``role`` (an IAM role for COPY), ``keys`` or ``session`` (temporary keys)."""
    from conftest import aws_connection

    def use(kind: str) -> None:
        extra = {
            # the provider assumes role_arn for its own S3 calls too: STS answers from moto's server
            "role": {"role_arn": ROLE_ARN, "service_config": {"sts": {"endpoint_url": moto_server.endpoint}}},
            "keys": {},
            "session": {"aws_session_token": SESSION_TOKEN},
        }[kind]
        monkeypatch.setenv("AIRFLOW_CONN_AWS", aws_connection(moto_server.endpoint, **extra))

    return use


def stage_events(bucket, manifests, **kwargs) -> StageToRedshiftOperator:
    args = dict(
        task_id="Stage_events", table="staging_events", s3_bucket=bucket.name, s3_key=EVENTS_KEY,
        json_format=f"s3://{bucket.name}/{JSONPATHS_KEY}", source_key_column="source_key", hour_counts=True,
        manifest_bucket=manifests.name, manifest_prefix="sparkify-manifests",
    )
    return StageToRedshiftOperator(**{**args, **kwargs})


def stage_songs(bucket, manifests, **kwargs) -> StageToRedshiftOperator:
    args = dict(
        task_id="Stage_songs", table="staging_songs", s3_bucket=bucket.name, s3_prefix="song_data",
        json_format="auto", dedupe_key="song_id", listing_period_hours=0,
        manifest_bucket=manifests.name, manifest_prefix="sparkify-manifests",
    )
    return StageToRedshiftOperator(**{**args, **kwargs})


def read_manifest(manifest_bucket, key: str) -> dict:
    return json.loads(manifest_bucket.client.get_object(Bucket=manifest_bucket.name, Key=key)["Body"].read())


def manifest_keys(manifest_bucket) -> list[str]:
    listing = manifest_bucket.client.list_objects_v2(Bucket=manifest_bucket.name)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def size_of(bucket, key: str) -> int:
    return bucket.client.head_object(Bucket=bucket.name, Key=key)["ContentLength"]


def etag_of(bucket, key: str) -> str:
    return bucket.client.head_object(Bucket=bucket.name, Key=key)["ETag"].strip('"')


def copy_statements(redshift) -> list[str]:
    return [sql for sql, _ in redshift.statements if sql.lstrip().startswith("COPY")]


# -- staging events: one object, a JSONPaths file, an IAM role ------------------------------------------


def test_events_copy_statement_and_manifest(redshift, bucket, manifest_bucket, aws):
    aws("role")
    put_sources(bucket, songs=False)
    result = stage_events(bucket, manifest_bucket).execute(CONTEXT)

    assert without_rss(result) == {"listed": False, "staged_objects": 1, "rows": 6,
                                   "fetched_objects": 0, "list_calls": 0, "changed_objects": [], "refresh_range": None}
    key = f"sparkify-manifests/sparkify_etl/{SAFE_RUN}/Stage_events-0.manifest"
    assert manifest_keys(manifest_bucket) == [key]
    assert read_manifest(manifest_bucket, key) == {"entries": [
        {"url": f"s3://{bucket.name}/{EVENTS_KEY}", "mandatory": True,
         "meta": {"content_length": size_of(bucket, EVENTS_KEY)}}]}

    (copy,) = copy_statements(redshift)
    assert copy == (
        f"COPY sparkify_batch ({EVENT_COLUMNS})\n"
        f"FROM 's3://{manifest_bucket.name}/{key}'\n"
        f"CREDENTIALS 'aws_iam_role={ROLE_ARN}'\n"
        f"FORMAT AS JSON 's3://{bucket.name}/{JSONPATHS_KEY}'\n"
        "MANIFEST\n"
        "REGION 'us-west-2'\n"
        "COMPUPDATE OFF STATUPDATE OFF"
    )


def test_events_statement_sequence_is_one_transaction(redshift, bucket, manifest_bucket, aws):
    aws("role")
    put_sources(bucket, songs=False)
    stage_events(bucket, manifest_bucket).execute(CONTEXT)

    expected_starts = [
        "LOCK TABLE public.load_refresh, public.load_manifest",
        "CREATE TEMPORARY TABLE sparkify_listing (",
        "INSERT INTO sparkify_listing (s3_key, etag, size_bytes, late) VALUES",
        "SELECT l.s3_key, l.etag, l.size_bytes, CASE WHEN m.s3_key IS NULL THEN 0 ELSE 1 END FROM sparkify_listing l "
        "LEFT JOIN public.load_manifest m ON m.s3_key = l.s3_key AND m.source = %(source)s",
        "CREATE TEMPORARY TABLE sparkify_batch (LIKE public.staging_events)",
        "CREATE TEMPORARY TABLE sparkify_batch_objects (",
        "COPY sparkify_batch (",
        "SELECT pg_last_copy_count()",
        "UPDATE sparkify_batch SET source_key = %(s3_key)s WHERE source_key IS NULL",
        "INSERT INTO sparkify_batch_objects (s3_key, etag, size_bytes, row_count) VALUES",
        "DELETE FROM public.load_manifest_hours USING sparkify_batch_objects o",
        "INSERT INTO public.load_manifest_hours (s3_key, hour_start, events, next_song_events)",
        "DELETE FROM public.staging_events USING sparkify_batch_objects o",
        "INSERT INTO public.staging_events SELECT DISTINCT * FROM sparkify_batch",
        "DELETE FROM public.load_manifest USING sparkify_batch_objects o",
        "INSERT INTO public.load_manifest (s3_key, source, etag, size_bytes, row_count, staged_at, run_id)",
        "DROP TABLE sparkify_batch",
        "DROP TABLE sparkify_batch_objects",
        "DROP TABLE sparkify_listing",
    ]
    assert len(redshift.sql) == len(expected_starts), redshift.sql
    for sent, start in zip(redshift.sql, expected_starts, strict=True):
        assert sent.startswith(start), (sent, start)
    # Redshift's LOCK takes no mode; load_refresh comes first (the lock order of docs/backfills.md).
    assert redshift.sql[0] == "LOCK TABLE public.load_refresh, public.load_manifest"

    # One transaction, committed once, with autocommit off and pyformat parameters.
    assert [e[0] for e in redshift.log if e[0] != "execute"] == ["commit", "close"]
    assert set(redshift.paramstyles) == {"pyformat"}
    assert_redshift_compatible(redshift.statements)

    update = next(p for s, p in redshift.statements if s.startswith("UPDATE sparkify_batch"))
    assert update == {"s3_key": EVENTS_KEY}
    objects = next(p for s, p in redshift.statements if s.startswith("INSERT INTO sparkify_batch_objects"))
    assert objects == {"k0": EVENTS_KEY, "e0": etag_of(bucket, EVENTS_KEY), "s0": size_of(bucket, EVENTS_KEY),
                       "r0": 6}
    record = next(p for s, p in redshift.statements if s.startswith("INSERT INTO public.load_manifest ("))
    assert record["source"] == "staging_events" and record["run_id"] == RUN_ID
    # every statement was sent with a mapping (possibly empty), never with values formatted in
    assert all(isinstance(p, dict) for _, p in redshift.statements)


def test_unchanged_event_file_is_not_copied_again(redshift, bucket, manifest_bucket, aws):
    aws("keys")
    put_sources(bucket, songs=False)
    redshift.manifest_rows = [(EVENTS_KEY, etag_of(bucket, EVENTS_KEY), size_of(bucket, EVENTS_KEY))]
    result = stage_events(bucket, manifest_bucket).execute(CONTEXT)

    assert without_rss(result) == {"listed": False, "staged_objects": 0, "fetched_objects": 0, "list_calls": 0}
    sent = redshift.sql
    assert sent[0] == "LOCK TABLE public.load_refresh, public.load_manifest" and len(sent) == 5, sent
    assert sent[1].startswith("CREATE TEMPORARY TABLE sparkify_listing (")
    assert sent[2].startswith("INSERT INTO sparkify_listing (s3_key, etag, size_bytes, late) VALUES")
    assert sent[3].startswith("SELECT l.s3_key, l.etag, l.size_bytes")  # the comparison: nothing to do
    assert sent[4] == "DROP TABLE sparkify_listing"
    assert manifest_keys(manifest_bucket) == []
    assert redshift.count("commit") == 1


def test_temporary_credentials_go_in_the_credentials_string(redshift, bucket, manifest_bucket, aws):
    aws("session")
    put_sources(bucket, songs=False)
    stage_events(bucket, manifest_bucket).execute(CONTEXT)
    (copy,) = copy_statements(redshift)
    assert (f"CREDENTIALS 'aws_access_key_id=testing;aws_secret_access_key={SECRET};token={SESSION_TOKEN}'\n"
            in copy)

    redshift.log.clear()
    aws("keys")
    stage_events(bucket, manifest_bucket, task_id="Stage_events_again").execute(CONTEXT)
    (copy,) = copy_statements(redshift)
    assert f"CREDENTIALS 'aws_access_key_id=testing;aws_secret_access_key={SECRET}'\n" in copy


def test_manifest_bucket_is_required_on_redshift(redshift, bucket, manifest_bucket, aws):
    aws("keys")
    put_sources(bucket, songs=False)
    with pytest.raises(AirflowException, match="manifest_bucket is required on Redshift"):
        stage_events(bucket, manifest_bucket, manifest_bucket="").execute(CONTEXT)
    assert redshift.count("rollback") == 1 and redshift.count("commit") == 0


# -- staging songs: a prefix, 'auto', only new or changed objects in the manifest ----------------------


def test_songs_manifest_lists_only_new_or_changed_objects(redshift, bucket, manifest_bucket, aws):
    aws("role")
    put_sources(bucket)
    keys = sorted(SONGS)
    unchanged, changed, new = keys[0], keys[1], keys[2]
    redshift.manifest_rows = [
        (unchanged, etag_of(bucket, unchanged), size_of(bucket, unchanged)),
        (changed, "0123456789abcdef0123456789abcdef", size_of(bucket, changed)),  # rewritten since
    ]
    redshift.copy_count = 2
    result = stage_songs(bucket, manifest_bucket).execute(CONTEXT)

    # The rewritten object is reported as changed (the loads downstream then refresh its day).
    assert without_rss(result) == {"listed": True, "staged_objects": 2, "rows": 2,
                                   "fetched_objects": 0, "list_calls": 1, "changed_objects": [changed],
                                   "refresh_range": None}
    key = f"sparkify-manifests/sparkify_etl/{SAFE_RUN}/Stage_songs-0.manifest"
    assert manifest_keys(manifest_bucket) == [key]
    assert read_manifest(manifest_bucket, key) == {"entries": [
        {"url": f"s3://{bucket.name}/{k}", "mandatory": True, "meta": {"content_length": size_of(bucket, k)}}
        for k in (changed, new)]}

    (copy,) = copy_statements(redshift)
    assert copy == (
        f"COPY sparkify_batch ({SONG_COLUMNS})\n"
        f"FROM 's3://{manifest_bucket.name}/{key}'\n"
        f"CREDENTIALS 'aws_iam_role={ROLE_ARN}'\n"
        "FORMAT AS JSON 'auto'\n"
        "MANIFEST\n"
        "REGION 'us-west-2'\n"
        "COMPUPDATE OFF STATUPDATE OFF"
    )

    listing, main = redshift.transactions()
    assert listing == ["SELECT listed_at FROM public.load_listing WHERE prefix = %(prefix)s"]
    expected_starts = [
        "LOCK TABLE public.load_manifest",
        "CREATE TEMPORARY TABLE sparkify_listing (",
        "INSERT INTO sparkify_listing (s3_key, etag, size_bytes, late) VALUES",
        "DELETE FROM public.load_listing WHERE prefix = %(prefix)s",
        "INSERT INTO public.load_listing (prefix, listed_at, object_count)",
        "SELECT l.s3_key, l.etag, l.size_bytes",
        "CREATE TEMPORARY TABLE sparkify_batch (LIKE public.staging_songs)",
        "CREATE TEMPORARY TABLE sparkify_batch_objects",
        "COPY sparkify_batch",
        "SELECT pg_last_copy_count()",
        "INSERT INTO sparkify_batch_objects",
        "DELETE FROM public.staging_songs USING sparkify_batch b WHERE public.staging_songs.song_id = b.song_id",
        "INSERT INTO public.staging_songs SELECT DISTINCT * FROM sparkify_batch",
        "DELETE FROM public.load_manifest USING sparkify_batch_objects o",
        "INSERT INTO public.load_manifest",
        "DROP TABLE sparkify_batch",
        "DROP TABLE sparkify_batch_objects",
        "DROP TABLE sparkify_listing",
    ]
    assert len(main) == len(expected_starts), main
    for sent, start in zip(main, expected_starts, strict=True):
        assert sent.startswith(start), (sent, start)
    assert [e[0] for e in redshift.log if e[0] != "execute"] == ["commit", "close", "commit", "close"]
    assert_redshift_compatible(redshift.statements)

    objects = next(p for s, p in redshift.statements if s.startswith("INSERT INTO sparkify_batch_objects"))
    # One COPY for two objects: the per-object row count is unknown (NULL), not guessed.
    assert objects == {"k0": changed, "e0": etag_of(bucket, changed), "s0": size_of(bucket, changed), "r0": None,
                       "k1": new, "e1": etag_of(bucket, new), "s1": size_of(bucket, new), "r1": None}
    listing_params = next(p for s, p in redshift.statements if s.startswith("INSERT INTO public.load_listing"))
    assert listing_params["prefix"] == "song_data" and listing_params["object_count"] == 3


def test_songs_listing_period_on_redshift(redshift, bucket, manifest_bucket, aws):
    from datetime import UTC, datetime, timedelta

    aws("keys")
    put_sources(bucket)
    redshift.listing_rows = [(datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1),)]
    result = stage_songs(bucket, manifest_bucket, listing_period_hours=24).execute(CONTEXT)
    assert without_rss(result) == {"listed": False, "staged_objects": 0, "fetched_objects": 0, "list_calls": 0}
    assert redshift.sql == ["SELECT listed_at FROM public.load_listing WHERE prefix = %(prefix)s"]
    assert manifest_keys(manifest_bucket) == []


# -- the DAG's own staging tasks, rendered from its params ------------------------------------------------


def test_the_dags_staging_tasks_render_and_run_on_redshift(redshift, bucket, manifest_bucket, aws):
    import copy

    from tests.helpers import load_dag

    aws("session")
    put_sources(bucket)
    dag = load_dag("sparkify_etl")
    params = {**dag.params.dump(), "s3_bucket": bucket.name, "manifest_bucket": manifest_bucket.name}
    from airflow.sdk.execution_time import macros

    context = {**make_context(at(10), run_id=RUN_ID), "params": params, "dag": dag, "macros": macros}

    rendered = {}
    for task_id in ("Stage_events", "Stage_songs"):
        task = copy.deepcopy(dag.get_task(task_id))  # the DAG's tasks stay unrendered
        task.render_template_fields(context)
        task.execute(context)
        rendered[task_id] = {f: getattr(task, f) for f in task.template_fields}

    assert rendered["Stage_events"]["s3_key"] == EVENTS_KEY  # the run's daily file
    # the day before (the rendered field is the keys separated by white space, as the DAG gives them)
    assert rendered["Stage_events"]["late_keys"].split() == ["log_data/2018/11/2018-11-03-events.json"]
    assert rendered["Stage_events"]["json_format"] == f"s3://{bucket.name}/{JSONPATHS_KEY}"
    assert rendered["Stage_songs"]["s3_prefix"] == "song_data"
    for fields in rendered.values():
        for name, value in fields.items():
            assert SECRET not in str(value) and SESSION_TOKEN not in str(value), name

    events_copy, songs_copy = copy_statements(redshift)
    assert f"FORMAT AS JSON 's3://{bucket.name}/{JSONPATHS_KEY}'\n" in events_copy
    assert "FORMAT AS JSON 'auto'\n" in songs_copy and "REGION 'us-west-2'\n" in songs_copy
    events_manifest = f"sparkify-manifests/sparkify_etl/{SAFE_RUN}/Stage_events-0.manifest"
    songs_manifest = f"sparkify-manifests/sparkify_etl/{SAFE_RUN}/Stage_songs-0.manifest"
    assert manifest_keys(manifest_bucket) == sorted([events_manifest, songs_manifest])
    assert [e["url"] for e in read_manifest(manifest_bucket, events_manifest)["entries"]] == [
        f"s3://{bucket.name}/{EVENTS_KEY}"]
    assert sorted(e["url"] for e in read_manifest(manifest_bucket, songs_manifest)["entries"]) == [
        f"s3://{bucket.name}/{key}" for key in sorted(SONGS)]
    assert_redshift_compatible(redshift.statements)


# -- failures roll back, and say so without leaking the credentials -------------------------------------


def test_copy_failure_rolls_back_and_is_redacted(redshift, bucket, manifest_bucket, aws, logs):
    aws("session")
    put_sources(bucket, songs=False)
    # A driver error that echoes the statement it was given, credentials and all.
    redshift.fail_on = ("COPY", RuntimeError(
        "S3ServiceException: Access denied for statement: COPY sparkify_batch FROM 's3://x' CREDENTIALS "
        f"'aws_access_key_id=testing;aws_secret_access_key={SECRET};token={SESSION_TOKEN}' "
        f"(key {SECRET}, token {SESSION_TOKEN})"))

    # Retried (a COPY may fail for a passing reason), never a PermanentError.
    with pytest.raises(TransientError) as info:
        stage_events(bucket, manifest_bucket).execute(CONTEXT)
    assert not isinstance(info.value, AirflowFailException)

    message = str(info.value)
    assert message.startswith("COPY into staging_events failed: S3ServiceException: Access denied")
    assert SECRET not in message and SESSION_TOKEN not in message, message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # the raw error is not chained
    assert redshift.count("commit") == 0
    # After the failed COPY only the two load-error lookups ran (each after a ROLLBACK); neither had a row.
    copy_at = max(i for i, s in enumerate(redshift.sql) if s.startswith("COPY sparkify_batch"))
    assert [s.split(" FROM ")[1].split()[0] for s in redshift.sql[copy_at + 1:]] == [
        "sys_load_error_detail", "stl_load_errors"]
    logs.assert_clean()


# -- rows Redshift rejected: read back from the load-error views, the task fails without retrying ---------

SYS_SQL = (
    "SELECT TRIM(d.file_name), d.line_number, TRIM(d.column_name), CAST(NULL AS VARCHAR(1)), TRIM(d.error_message) "
    "FROM sys_load_error_detail d "
    "WHERE d.session_id = pg_backend_pid() "
    "AND d.query_id = ( SELECT MAX(l.query_id) FROM sys_load_error_detail l "
    "WHERE l.session_id = pg_backend_pid() AND TRIM(l.file_name) IN (%(f0)s) ) "
    "ORDER BY 1, 2 LIMIT 5"
)
STL_SQL = ("SELECT TRIM(filename), line_number, TRIM(colname), TRIM(raw_field_value), TRIM(err_reason) "
           "FROM stl_load_errors WHERE query = pg_last_copy_id() AND TRIM(filename) IN (%(f0)s) ORDER BY 1, 2 LIMIT 5")
COPY_ERROR = RuntimeError("Load into table 'sparkify_batch' failed. Check 'stl_load_errors' system table for details.")


def _after_copy(redshift) -> list[tuple]:
    """What happened on the connection after the failed COPY: statements (normalized) and rollbacks."""
    copy_at = max(i for i, e in enumerate(redshift.log) if e[0] == "execute" and e[1].lstrip().startswith("COPY"))
    return [(e[0], normalize(e[1]), e[2]) if e[0] == "execute" else e for e in redshift.log[copy_at + 1:]]


def test_rejected_rows_are_read_from_sys_load_error_detail(redshift, bucket, manifest_bucket, aws):
    from sparkify.staging.redshift_copy import LoadRejected

    aws("role")
    put_sources(bucket, songs=False)
    uri = f"s3://{bucket.name}/{EVENTS_KEY}"
    redshift.fail_on = ("COPY", COPY_ERROR)
    # A row as the view gives it: fixed-width text padded with blanks.
    redshift.load_errors["sys_load_error_detail"] = [
        (uri.ljust(256), 3, "ts".ljust(127), None, "Invalid digit, Value 'a', Pos 0, Type: Long".ljust(512)),
        (uri.ljust(256), 7, "userid".ljust(127), None, "String length exceeds DDL length".ljust(512)),
    ]
    with pytest.raises(LoadRejected) as info:
        stage_events(bucket, manifest_bucket).execute(CONTEXT)
    assert isinstance(info.value, AirflowFailException)  # no retry: the same data fails the same way
    assert str(info.value) == (
        "COPY into staging_events rejected the data; nothing was staged. "
        f"{uri}, line 3: column ts: Invalid digit, Value 'a', Pos 0, Type: Long (raw value not recorded); "
        f"{uri}, line 7: column userid: String length exceeds DDL length (raw value not recorded)"
    )
    # The aborted transaction is rolled back, then the view is read on the same connection (the session).
    assert _after_copy(redshift) == [("rollback",), ("execute", SYS_SQL, {"f0": uri}), ("rollback",), ("close",)]


def test_rejected_rows_fall_back_to_stl_load_errors(redshift, bucket, manifest_bucket, aws):
    from sparkify.staging.redshift_copy import LoadRejected

    aws("role")
    put_sources(bucket, songs=False)
    uri = f"s3://{bucket.name}/{EVENTS_KEY}"
    redshift.fail_on = ("COPY", COPY_ERROR)
    redshift.load_errors["sys_load_error_detail"] = RuntimeError('relation "sys_load_error_detail" does not exist')
    # A recorded stl_load_errors row (err_code 1207: a text where a BIGINT belongs).
    redshift.load_errors["stl_load_errors"] = [
        (uri.ljust(256), 4, "ts".ljust(127), "1541-11-04".ljust(1024),
         "Invalid digit, Value '-', Pos 4, Type: Long".ljust(100)),
    ]
    with pytest.raises(LoadRejected) as info:
        stage_events(bucket, manifest_bucket).execute(CONTEXT)
    assert str(info.value) == (
        "COPY into staging_events rejected the data; nothing was staged. "
        f"{uri}, line 4: column ts: Invalid digit, Value '-', Pos 4, Type: Long (raw value '1541-11-04')"
    )
    assert _after_copy(redshift) == [
        ("rollback",), ("execute", SYS_SQL, {"f0": uri}),
        ("rollback",), ("execute", STL_SQL, {"f0": uri}),
        ("rollback",), ("close",)]


def test_rejected_rows_of_a_multi_object_copy_name_each_object(redshift, bucket, manifest_bucket, aws):
    """Songs: one COPY for several objects; the view is asked about each of them, five rows at most."""
    from sparkify.staging.redshift_copy import LoadRejected

    aws("role")
    put_sources(bucket)
    redshift.fail_on = ("COPY", COPY_ERROR)
    uris = [f"s3://{bucket.name}/{key}" for key in sorted(SONGS)]
    redshift.load_errors["stl_load_errors"] = [(uris[0], n, "year", "MCMXC", "Invalid digit") for n in range(1, 9)]
    with pytest.raises(LoadRejected) as info:
        stage_songs(bucket, manifest_bucket).execute(CONTEXT)
    assert str(info.value).count("Invalid digit") == 5
    (sys_sent,) = [(s, p) for e, s, p in (x for x in _after_copy(redshift) if x[0] == "execute")
                   if "sys_load_error_detail" in s]
    assert sys_sent[1] == {f"f{i}": uri for i, uri in enumerate(uris)}
    assert "TRIM(l.file_name) IN (" + ", ".join(f"%(f{i})s" for i in range(len(uris))) + ")" in sys_sent[0]


def test_credentials_never_reach_logs_rendered_fields_or_results(redshift, bucket, manifest_bucket, aws, logs):
    aws("session")
    put_sources(bucket, songs=False)
    op = stage_events(bucket, manifest_bucket)
    op.render_template_fields(CONTEXT)
    result = op.execute(CONTEXT)

    (copy,) = copy_statements(redshift)
    assert SECRET in copy and SESSION_TOKEN in copy  # Redshift did get them...
    # ...and nothing else did: not the logs, not the rendered fields, not the XCom result.
    logs.assert_clean()
    ours = "\n".join(logs.ours())
    assert "Running COPY sparkify_batch" in ours and "aws_secret_access_key=***;token=***" in ours
    assert "SQL: LOCK TABLE public.load_refresh, public.load_manifest" in ours  # the DEBUG statement log was captured
    for field in op.template_fields:
        value = str(getattr(op, field))
        assert SECRET not in value and SESSION_TOKEN not in value, field
    assert SECRET not in json.dumps(result) and SESSION_TOKEN not in json.dumps(result)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Logs:
    """Every log record (DEBUG and up) and everything written to stdout/stderr during a test."""

    def __init__(self, capture: _Capture, caplog, capfd) -> None:
        self.capture, self.caplog, self.capfd = capture, caplog, capfd
        self.printed = ""

    def console(self) -> str:
        """What was written to stdout and stderr: the task's structlog output, the operator's lines."""
        out, err = self.capfd.readouterr()
        self.printed += out + err
        return self.printed

    def ours(self) -> list[str]:
        """Messages of the project's loggers and the task's (airflow.task.*), and the console output."""
        return [r.getMessage() for r in self.capture.records + self.caplog.records
                if r.name.startswith(("sparkify", "airflow.task"))] + self.console().splitlines()

    def assert_clean(self) -> None:
        from airflow.sdk._shared.secrets_masker import redact as airflow_redact

        everything = [r.getMessage() for r in self.capture.records + self.caplog.records] + [self.console()]
        # The project's own log lines must not hold a credential, before any masking.
        for line in self.ours():
            assert SECRET not in line and SESSION_TOKEN not in line, line
        # Third-party DEBUG lines may (botocore logs its signed request headers, session token
        # included); Airflow's secrets masker, which every task log goes through, must hide them:
        # the provider registers the secret key and token when the credentials are read.
        for text in everything:
            masked = airflow_redact(text)
            assert SECRET not in masked and SESSION_TOKEN not in masked, text[:2000]


@pytest.fixture
def logs(caplog, capfd):
    caplog.set_level(logging.DEBUG)
    capture = _Capture()
    loggers = [logging.getLogger(), logging.getLogger("airflow.task"), logging.getLogger("sparkify")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(capture)
        lg.setLevel(logging.DEBUG)
    try:
        yield Logs(capture, caplog, capfd)
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(capture)
            lg.setLevel(level)


# -- the loads on Redshift --------------------------------------------------------------------------------


def test_fact_load_statements_on_redshift(redshift):
    context = make_context(at(10), run_id=RUN_ID)
    rows = LoadFactOperator(task_id="Load_songplays_fact_table", table="songplays",
                            select="load/songplays.sql").execute(context)
    assert rows == 3  # the fake answers COUNT(*) with 3

    sql = redshift.sql
    assert [s.split(" (")[0][:40] for s in sql] == [
        "LOCK TABLE public.songplays",
        "DELETE FROM public.songplays WHERE start",
        "INSERT INTO public.songplays",
        "SELECT COUNT(*) FROM public.songplays WH",
    ]
    assert sql[1] == ("DELETE FROM public.songplays WHERE start_time >= %(interval_start)s "
                      "AND start_time < %(interval_end)s")
    assert sql[2].startswith("INSERT INTO public.songplays (songplay_id, start_time, user_id, level, song_id, "
                             "artist_id, session_id, location, user_agent) SELECT songplay_id, start_time")
    assert "e.ts >= %(interval_start_ms)s AND e.ts < %(interval_end_ms)s" in sql[2]
    _, params = redshift.statements[1]
    from datetime import datetime

    assert params["interval_start"] == datetime(2018, 11, 4, 10) and params["interval_end"] == datetime(2018, 11, 4, 11)
    assert params["interval_start_ms"] == 1541325600000 and params["interval_end_ms"] == 1541329200000
    for text, _ in redshift.statements:  # values are bound, never formatted into the SQL
        assert "2018-11-04" not in text and "1541325600000" not in text
    assert_redshift_compatible(redshift.statements)
    assert [e[0] for e in redshift.log if e[0] != "execute"] == ["commit", "close"]


@pytest.mark.parametrize(("table", "key"), [("users", "user_id"), ("songs", "song_id"), ("artists", "artist_id")])
def test_upsert_statements_on_redshift(redshift, table, key):
    LoadDimensionOperator(task_id=f"Load_{table}", table=table, select=f"load/{table}.sql",
                          mode="upsert").execute(make_context(at(10), run_id=RUN_ID))

    sql = redshift.sql
    assert sql[0] == f"LOCK TABLE public.{table}"
    assert sql[1] == f"CREATE TEMPORARY TABLE sparkify_merge (LIKE public.{table})"
    assert sql[2].startswith(f"INSERT INTO sparkify_merge ({key}, ")
    assert sql[3] == f"DELETE FROM public.{table} USING sparkify_merge m WHERE public.{table}.{key} = m.{key}"
    assert sql[4].startswith(f"INSERT INTO public.{table} ({key}, ") and sql[4].endswith("FROM sparkify_merge")
    assert sql[5] == "DROP TABLE sparkify_merge"
    assert sql[6] == f"SELECT COUNT(*) FROM public.{table}"
    assert len(sql) == 7
    assert_redshift_compatible(redshift.statements)
    assert [e[0] for e in redshift.log if e[0] != "execute"] == ["commit", "close"]


def test_time_rebuild_statements_on_redshift(redshift):
    LoadDimensionOperator(task_id="Load_time_dim_table", table="time", select="load/time.sql",
                          mode="truncate_insert", scope_column="start_time").execute(make_context(at(10)))
    sql = redshift.sql
    assert sql[0] == "LOCK TABLE public.time"
    assert sql[1] == "DELETE FROM public.time WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s"
    assert sql[2].startswith("INSERT INTO public.time (start_time, hour, day, week, month, year, weekday) SELECT")
    assert "EXTRACT(dow FROM start_time)" in sql[2]
    assert_redshift_compatible(redshift.statements)


def test_load_failure_rolls_back_on_redshift(redshift):
    redshift.fail_on = ("INSERT INTO public.songplays", RuntimeError("disk full"))
    with pytest.raises(RuntimeError, match="disk full"):
        LoadFactOperator(task_id="Load_songplays_fact_table", table="songplays",
                         select="load/songplays.sql").execute(make_context(at(10)))
    assert [e[0] for e in redshift.log if e[0] != "execute"] == ["rollback", "close"]
    assert not any(re.match(r"SELECT COUNT", s) for s in redshift.sql)


# -- the manifest bucket must be in the COPY's REGION ------------------------------------------------------


def test_manifest_bucket_in_another_region_fails_before_any_copy(redshift, bucket, moto_server, aws):
    import uuid

    import boto3

    from conftest import Bucket
    from sparkify.settings import InvalidParam

    aws("role")
    put_sources(bucket, songs=False)
    client = boto3.client("s3", endpoint_url=moto_server.endpoint, region_name="eu-west-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing-secret-key")
    elsewhere = Bucket(f"t-eu-{uuid.uuid4().hex[:12]}", client)
    client.create_bucket(Bucket=elsewhere.name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with pytest.raises(InvalidParam) as info:
        stage_events(bucket, elsewhere).execute(CONTEXT)
    assert isinstance(info.value, AirflowFailException)
    assert str(info.value) == (
        f"manifest_bucket='{elsewhere.name}' is in eu-west-1, but region='us-west-2': Redshift reads the COPY "
        "manifest from the COPY's REGION, so use a manifest bucket in us-west-2 (or set region to eu-west-1 "
        "if the source bucket is there too)")
    assert copy_statements(redshift) == [] and manifest_keys(elsewhere) == []
    assert redshift.count("commit") == 0


@pytest.mark.parametrize(("location", "region"), [(None, "us-east-1"), ("EU", "eu-west-1"), ("us-west-2", "us-west-2")])
def test_bucket_region_reads_get_bucket_location(location, region):
    from sparkify.s3 import S3

    class Client:
        def get_bucket_location(self, Bucket):  # noqa: N803 (boto3's argument name)
            self.asked = Bucket
            return {"LocationConstraint": location}

    s3 = S3(None)
    s3._client = Client()
    assert s3.bucket_region("my-manifests") == region and s3._client.asked == "my-manifests"


def test_no_get_bucket_location_permission_leaves_the_check_to_the_copy(redshift, bucket, manifest_bucket, aws,
                                                                           monkeypatch, caplog):
    from botocore.exceptions import ClientError

    from sparkify.s3 import S3

    def denied(self, name):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "GetBucketLocation")

    monkeypatch.setattr(S3, "bucket_region", denied)
    aws("role")
    put_sources(bucket, songs=False)
    stage_events(bucket, manifest_bucket).execute(CONTEXT)
    assert len(copy_statements(redshift)) == 1
    assert f"Cannot check the region of manifest_bucket={manifest_bucket.name}" in caplog.text
