"""Two statements of the staging as Redshift needs them, by the exact SQL sent (a recording
connection; see test_stage_redshift_sql.py): the manifest's bound values CAST to a type (Redshift's
driver sends them untyped), and the per-hour counts grouped by the selected expressions themselves.
Their results on PostgreSQL are those of tests/operators/test_stage_postgres.py, unchanged."""

from __future__ import annotations

import re

from .helpers import assert_redshift_compatible, put_sources
from .test_stage_redshift_sql import CONTEXT, RUN_ID, aws, stage_events  # noqa: F401 - aws is a fixture

HOUR = "TIMESTAMP 'epoch' + (ts / 3600000) * INTERVAL '1 hour'"


def test_the_manifest_is_recorded_with_typed_values_and_hours_grouped_by_the_selected_expressions(
    redshift, bucket, manifest_bucket, aws  # noqa: F811 - the fixture imported above
):
    aws("role")
    put_sources(bucket, songs=False)
    stage_events(bucket, manifest_bucket).execute(CONTEXT)

    (hours,) = [s for s in redshift.sql if s.startswith("INSERT INTO public.load_manifest_hours")]
    assert hours == (
        "INSERT INTO public.load_manifest_hours (s3_key, hour_start, events, next_song_events) "
        f"SELECT source_key, {HOUR}, COUNT(*), SUM(CASE WHEN page = 'NextSong' THEN 1 ELSE 0 END) "
        "FROM (SELECT DISTINCT * FROM sparkify_batch) AS b WHERE ts IS NOT NULL "
        f"GROUP BY source_key, {HOUR}"
    )
    ((record, params),) = [(s, p) for s, p in redshift.statements if s.startswith("INSERT INTO public.load_manifest (")]
    assert " ".join(record.split()) == (
        "INSERT INTO public.load_manifest (s3_key, source, etag, size_bytes, row_count, staged_at, run_id) "
        "SELECT s3_key, CAST(%(source)s AS VARCHAR(65535)), etag, size_bytes, row_count, "
        "CAST(%(staged_at)s AS TIMESTAMP), CAST(%(run_id)s AS VARCHAR(65535)) FROM sparkify_batch_objects"
    )
    assert not re.findall(r"(?<!CAST\()%\(\w+\)s", record)  # every bound value has its type
    assert params["source"] == "staging_events" and params["run_id"] == RUN_ID
    assert_redshift_compatible(redshift.statements)
