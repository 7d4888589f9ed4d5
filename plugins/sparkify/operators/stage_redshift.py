"""``StageToRedshiftOperator``: copy JSON objects from S3 into a staging table, incrementally.

On a Redshift connection it issues one ``COPY … FORMAT AS JSON … MANIFEST`` listing only the
objects that are new or changed since they were last staged. On a PostgreSQL connection (the
local stand-in) it reads the same objects through ``S3Hook`` and bulk-loads them with
``COPY … FROM STDIN``, giving the rows Redshift's COPY would give (see :mod:`sparkify.jsonload`).

Either way a run's staging is one transaction: the manifest table ``load_manifest`` is locked,
the objects are loaded into a private batch table, the staging rows of those objects are
replaced, and the manifest records each object's ETag and size; when an event object that had
been staged before changed, the reloads the loads now owe are noted in ``load_refresh`` (see
:mod:`sparkify.refresh`). A failure leaves the staging table, the manifest and those notes as
they were. The work itself is in :mod:`sparkify.staging`; this operator picks the backend.

Its SQL is not a rendered template field: the statements depend on what S3 and the manifest hold
(and COPY's on the credentials read at run time), so each COPY is logged as it runs, credentials
masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseOperator

from sparkify import settings
from sparkify.loading import checked_interval
from sparkify.s3 import S3
from sparkify.staging import postgres_copy, redshift_copy, run, sources
from sparkify.staging.params import StagingParams, validated
from sparkify.warehouse import POSTGRES, Warehouse, naive_utc

if TYPE_CHECKING:
    from airflow.sdk import Context

_POKE_SECONDS = 300.0  # a missing daily file is looked for again this often (more often near the deadline)
# but never more often than this: each look is a task start, and a deferral shorter than a task's own
# start-up races the triggerer (seen: the server killed a task that resumed while it was still deferring).
_MIN_POKE_SECONDS = 30.0


class StageToRedshiftOperator(BaseOperator):
    """Stage S3 JSON into ``schema.table``: one object (``s3_key``) or a prefix (``s3_prefix``).

    :param table: staging table to load.
    :param s3_bucket: source bucket.
    :param s3_key: the objects the run needs, e.g. the daily log file of each UTC day its interval
        touches (templated; one key, or several separated by white space, or a list). If one of them
        does not exist or is empty, the task defers (no worker slot held) and looks again every
        5 minutes (down to every 30 s in the last hour) until ``grace_hours`` after the interval's end, then
        fails without retrying, naming every missing object.
    :param s3_prefix: all ``*.json`` objects under a prefix, e.g. ``song_data``. The prefix is
        listed at most once every ``listing_period_hours``; between listings the task does nothing.
    :param json_format: ``'auto'``, ``'auto ignorecase'`` or ``s3://bucket/key`` of a JSONPaths file.
    :param region: the bucket's region, for Redshift's COPY.
    :param source_key_column: column that records each row's object, so a changed object's rows
        are replaced; or ``None``.
    :param dedupe_key: column whose value identifies a row across objects (``song_id``); rows
        of a re-staged object replace the rows with the same key.
    :param hour_counts: record per-hour event counts of each object in ``load_manifest_hours``.
    :param late_keys: with ``s3_key``, objects staged by earlier runs (the previous days' files,
        templated; a list or one string of keys separated by white space) that are staged again
        when they changed since (ETag or size); objects never staged, missing or empty are left
        alone. The XCom's ``refresh_range`` then spans the whole UTC days the changed objects'
        events fall on, which the loads owe a reload of (noted in ``load_refresh``).
    :param manifest_bucket: writable bucket for Redshift COPY manifests (Redshift only).
    :param manifest_prefix: key prefix for those manifests.
    :param fetch_threads: parallel S3 reads (PostgreSQL only).
    """

    template_fields: Sequence[str] = (
        "table",
        "schema",
        "s3_bucket",
        "s3_key",
        "s3_prefix",
        "json_format",
        "region",
        "redshift_conn_id",
        "aws_conn_id",
        "manifest_bucket",
        "manifest_prefix",
        "listing_period_hours",
        "grace_hours",
        "late_keys",
    )
    ui_color = "#358140"

    def __init__(
        self,
        *,
        table: str,
        s3_bucket: str,
        s3_key: str | None = None,
        s3_prefix: str | None = None,
        json_format: str = "auto",
        schema: str = settings.DEFAULTS.schema,
        region: str = settings.DEFAULTS.region,
        redshift_conn_id: str = settings.DEFAULTS.redshift_conn_id,
        aws_conn_id: str = settings.DEFAULTS.aws_conn_id,
        source_key_column: str | None = None,
        dedupe_key: str | None = None,
        hour_counts: bool = False,
        manifest_bucket: str = settings.DEFAULTS.manifest_bucket,
        manifest_prefix: str = settings.DEFAULTS.manifest_prefix,
        listing_period_hours: float | str = settings.DEFAULTS.song_listing_period_hours,
        grace_hours: float | str = settings.DEFAULTS.events_grace_hours,
        late_keys: str | Sequence[str] = (),
        fetch_threads: int = 16,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.schema = schema
        self.s3_bucket = s3_bucket
        self.s3_key = s3_key
        self.s3_prefix = s3_prefix
        self.json_format = json_format
        self.region = region
        self.redshift_conn_id = redshift_conn_id
        self.aws_conn_id = aws_conn_id
        self.source_key_column = source_key_column
        self.dedupe_key = dedupe_key
        self.hour_counts = hour_counts
        self.manifest_bucket = manifest_bucket
        self.manifest_prefix = manifest_prefix
        self.listing_period_hours = listing_period_hours
        self.grace_hours = grace_hours
        self.late_keys = late_keys
        self.fetch_threads = fetch_threads

    def execute(self, context: Context) -> dict[str, Any]:
        self.staged: tuple[StagingParams | None, dict[str, Any] | None] = (None, None)  # for the lineage
        checked_interval(context)
        p = validated(
            self.task_id, table=self.table, schema=self.schema, s3_bucket=self.s3_bucket, s3_key=self.s3_key,
            s3_prefix=self.s3_prefix, late_keys=self.late_keys, json_format=self.json_format, region=self.region,
            redshift_conn_id=self.redshift_conn_id, aws_conn_id=self.aws_conn_id,
            source_key_column=self.source_key_column, dedupe_key=self.dedupe_key, hour_counts=self.hour_counts,
            manifest_bucket=self.manifest_bucket, manifest_prefix=self.manifest_prefix,
            listing_period_hours=self.listing_period_hours, grace_hours=self.grace_hours,
        )
        self.staged = (p, None)  # what the run staged, for get_openlineage_facets_on_complete
        result = self._stage(context, p)
        self.staged = (p, result)
        return result

    def _stage(self, context: Context, p: StagingParams) -> dict[str, Any]:
        wh = Warehouse(self.redshift_conn_id)
        s3 = S3(self.aws_conn_id, threads=self.fetch_threads)
        now = naive_utc(datetime.now(UTC))
        self.log.info("Staging into %s.%s (%s) from s3://%s/%s", p.schema, p.table, wh.dialect, p.s3_bucket,
                      p.s3_prefix or " ".join(p.s3_keys))

        if p.s3_keys:
            try:
                required = sources.required_objects(s3, p, context["data_interval_end"])
            except sources.SourceNotReady as not_yet:
                self._wait_for(not_yet)
            pages: Any = [[*required, *sources.late_objects(s3, p)]]
        elif sources.listing_due(wh, p, now, self.log):
            pages = s3.list_pages(p.s3_bucket, p.s3_prefix)
        else:
            return run.nothing_staged(s3, listed=False)

        # The one choice of backend: how objects reach the batch table on this warehouse.
        if wh.dialect == POSTGRES:
            backend = partial(postgres_copy.copier, s3=s3, p=p, task_id=self.task_id)
        else:
            base = redshift_copy.manifest_base(p, context["dag"].dag_id, context["run_id"], self.task_id)
            backend = partial(redshift_copy.copier, s3=s3, p=p, aws_conn_id=self.aws_conn_id, manifest_base=base)
        return run.stage(wh, s3, p, pages, backend, now=now, run_id=context["run_id"],
                         run_day=naive_utc(context["data_interval_start"]))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The objects staged (or the prefix listed) and the staging table, for the OpenLineage provider's
        listener (docs/lineage.md); nothing when the task failed before its arguments were valid."""
        from sparkify.lineage import staging_lineage

        p, result = getattr(self, "staged", (None, None))
        if p is None:
            return None
        return staging_lineage(
            self.redshift_conn_id, schema=p.schema, table=p.table, bucket=p.s3_bucket,
            sources=[p.s3_prefix] if p.s3_prefix else [*p.s3_keys, *(result or {}).get("changed_objects", ())],
            jsonpaths=p.jsonpaths_location, result=result or {},
        )

    def _wait_for(self, not_yet: sources.SourceNotReady) -> NoReturn:
        """Defer until the next look (or the deadline), holding no worker slot: the triggerer waits,
        and the task resumes in :meth:`execute_complete`, which looks again. At the deadline the
        task fails (and alerts) once; the waiting spends none of its retries."""
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        now = datetime.now(UTC)
        left = (not_yet.deadline - now).total_seconds()
        poke = timedelta(seconds=min(_POKE_SECONDS, max(_MIN_POKE_SECONDS, left / 12)))
        moment = min(now + poke, not_yet.deadline)  # the last look is at the deadline itself
        self.log.info("%s. Looking again at %s.", not_yet, moment.isoformat())
        self.defer(trigger=DateTimeTrigger(moment=moment), method_name="execute_complete")

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resumed after a wait for a missing file: look again, from the start."""
        return self.execute(context)
