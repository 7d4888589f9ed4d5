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
they were.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from sparkify import jsonload, refresh, settings
from sparkify.aws.names import REGION
from sparkify.loading import checked_interval
from sparkify.resources import peak_rss_mb
from sparkify.s3 import S3, S3Object, SourceMissing
from sparkify.tables import REFRESHES, STAGING_COLUMNS
from sparkify.warehouse import POSTGRES, Session, Warehouse, naive_utc, redact

if TYPE_CHECKING:
    from airflow.sdk import Context

_S3_URI = re.compile(r"^s3://([^/]+)/(.+)$")
_JSON_FORMATS = ("auto", "auto ignorecase")
_STREAM_ALONE_BYTES = 8 << 20  # objects larger than this are streamed one at a time
_OBJECTS_PER_INSERT = 500
_OBJECTS_PER_CHUNK = 2000  # objects read from the listing and copied at a time
_POKE_SECONDS = 300.0  # a missing daily file is looked for again this often (more often near the deadline)
# but never more often than this: each look is a task start, and a deferral shorter than a task's own
# start-up races the triggerer (seen: the server killed a task that resumed while it was still deferring).
_MIN_POKE_SECONDS = 30.0
_CHANGED_KEPT = 1000  # changed objects' keys kept for the result (a day's events file is one object)


class SourceNotReady(AirflowException):
    """The run's source object is not there yet: waited for until the grace period ends."""

    def __init__(self, message: str, deadline: datetime) -> None:
        super().__init__(message)
        self.deadline = deadline


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
        self.s3_keys: list[str] = []  # s3_key's keys, once rendered and validated
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

    # -- what the task does -------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        checked_interval(context)
        self._validate()
        wh = Warehouse(self.redshift_conn_id)
        s3 = S3(self.aws_conn_id, threads=self.fetch_threads)
        now = naive_utc(datetime.now(UTC))

        if self.s3_key:
            try:
                required = self._required_objects(s3, context)
            except SourceNotReady as not_yet:
                self._wait_for(not_yet)
            pages: Iterable[list[S3Object]] = [[*required, *self._late_objects(s3)]]
        elif self._listing_due(wh, now):
            pages = s3.list_pages(self.s3_bucket, self.s3_prefix)
        else:
            return {"listed": False, "staged_objects": 0, "fetched_objects": 0, "list_calls": 0,
                    "peak_rss_mb": peak_rss_mb()}

        run_id = context["run_id"]
        with wh.transaction() as tx:
            tx.run_file("stage/lock_manifest.sql", schema=self.schema)
            # What S3 holds goes to a temporary table, page by page, and is compared with the manifest
            # there: the task holds one page and one chunk of objects at a time, however many there are.
            tx.run_file("stage/create_listing.sql")
            listed = self._record_listing(tx, pages)
            if self.s3_prefix:
                self.log.info("Listed %d object(s) under s3://%s/%s/ in %d call(s)",
                              listed, self.s3_bucket, self.s3_prefix, s3.list_calls)
                tx.run_file(
                    "stage/record_listing.sql",
                    {"prefix": self.s3_prefix, "listed_at": now, "object_count": listed},
                    schema=self.schema,
                )
            chunk = self._todo(tx, "")
            if not chunk:
                tx.run_file("stage/drop_listing.sql")
                self.log.info("All %d object(s) already staged unchanged; nothing to copy", listed)
                return {"listed": bool(self.s3_prefix), "staged_objects": 0, "fetched_objects": 0,
                        "list_calls": s3.list_calls, "peak_rss_mb": peak_rss_mb()}
            tx.run_file("stage/create_batch.sql", schema=self.schema, table=self.table)
            copy = self._postgres_copier(tx, s3) if tx.dialect == POSTGRES else self._redshift_copier(tx, s3, context)
            staged, total, changed, changed_count = 0, 0, [], 0
            while chunk:
                objects = [S3Object(key, etag, int(size)) for key, etag, size, _ in chunk]
                # Objects staged before under another ETag or size changed since (their keys are kept
                # for the refresh and the result, up to a bound: a prefix may hold 100,000 of them).
                changed_count += sum(1 for *_, before in chunk if before)
                changed += [key for key, _, _, before in chunk if before][: _CHANGED_KEPT - len(changed)]
                rows = copy(objects)
                total += sum(n for n in rows.values() if n is not None) if tx.dialect == POSTGRES else rows.pop("")
                self._record_objects(tx, objects, rows)
                staged += len(objects)
                self.log.info("Staged %d new or changed object(s) of %d listed into %s.%s so far",
                              staged, listed, self.schema, self.table)
                chunk = self._todo(tx, objects[-1].key) if len(chunk) == _OBJECTS_PER_CHUNK else []
            if self.hour_counts:
                tx.run_file("stage/events_hour_counts.sql", schema=self.schema)
            # Changed objects: the loads downstream owe a reload of the whole days of their events,
            # noted in this transaction (the run's own day when no event has a time), so the debt
            # outlives any retry or clearing of the run (see sparkify.refresh).
            refresh_range = self._refresh_range(tx, changed) if changed and self.hour_counts else None
            if changed and REFRESHES.get(self.table):
                if refresh_range:
                    first, last = (datetime.fromisoformat(moment) for moment in refresh_range)
                else:
                    first = naive_utc(context["data_interval_start"]).replace(hour=0, minute=0, second=0,
                                                                             microsecond=0)
                    last = first + timedelta(days=1)
                refresh.note(tx, self.schema, REFRESHES[self.table], first, last, run_id)
            tx.run_file(
                "stage/replace_rows.sql",
                {"source": self.table, "staged_at": now, "run_id": run_id},
                schema=self.schema,
                table=self.table,
                source_key_column=self.source_key_column,
                dedupe_key=self.dedupe_key,
            )
            tx.run_file("stage/drop_batch.sql")
        self.log.info("Staged %d row(s) from %d object(s) into %s.%s", total, staged, self.schema, self.table)
        if changed:
            self.log.info("Changed since last staged: %s%s", ", ".join(changed[:20])
                          + (f" and {changed_count - 20} more" if changed_count > 20 else ""),
                          f"; the loads refresh [{refresh_range[0]}, {refresh_range[1]})" if refresh_range else "")
        return {"listed": bool(self.s3_prefix), "staged_objects": staged, "rows": total,
                "fetched_objects": s3.get_calls, "list_calls": s3.list_calls, "changed_objects": changed,
                "refresh_range": refresh_range, "peak_rss_mb": peak_rss_mb()}

    # -- helpers ------------------------------------------------------------------------------

    def _validate(self) -> None:
        try:
            settings.validate_identifier(self.table, "table")
            settings.validate_identifier(self.schema, "schema")
            settings.validate_bucket(self.s3_bucket)
            settings.validate_conn_id(self.redshift_conn_id, "redshift_conn_id")
            settings.validate_conn_id(self.aws_conn_id, "aws_conn_id")
            if bool(self.s3_key) == bool(self.s3_prefix):
                raise settings.InvalidParam("give exactly one of s3_key and s3_prefix")
            if isinstance(self.late_keys, str):
                self.late_keys = self.late_keys.split()
            if self.late_keys and not self.s3_key:
                raise settings.InvalidParam("late_keys go with s3_key, not with s3_prefix")
            self.late_keys = [settings.validate_prefix(k, "late_keys") for k in self.late_keys]
            if self.s3_key:
                keys = self.s3_key.split() if isinstance(self.s3_key, str) else list(self.s3_key)
                # In order, once each: a wide interval's days, or one hour's day.
                self.s3_keys = list(dict.fromkeys(settings.validate_prefix(k, "s3_key") for k in keys))
            else:
                self.s3_prefix = settings.validate_prefix(self.s3_prefix, "s3_prefix")
            for name in ("source_key_column", "dedupe_key"):
                if getattr(self, name) is not None:
                    settings.validate_identifier(getattr(self, name), name)
            if self.json_format not in _JSON_FORMATS and not _S3_URI.match(self.json_format):
                raise settings.InvalidParam(
                    f"json_format={self.json_format!r}: use 'auto', 'auto ignorecase' or s3://bucket/jsonpaths.json"
                )
            if not REGION.fullmatch(self.region):
                raise settings.InvalidParam(f"region={self.region!r} is not an AWS region name")
            self.listing_period_hours = _non_negative(self.listing_period_hours, "listing_period_hours")
            self.grace_hours = _non_negative(self.grace_hours, "grace_hours")
            if self.manifest_bucket:
                settings.validate_bucket(self.manifest_bucket, "manifest_bucket")
            self.manifest_prefix = settings.validate_prefix(self.manifest_prefix, "manifest_prefix")
        except settings.InvalidParam as err:
            raise AirflowFailException(f"{self.task_id}: {err}") from None

    def _required_objects(self, s3: S3, context: Context) -> list[S3Object]:
        """The run's own objects; every one must exist and hold data (the missing-file policy)."""
        found = [(key, s3.head(self.s3_bucket, key)) for key in self.s3_keys]
        present = [obj for _, obj in found if obj is not None and obj.size > 0]
        if len(present) == len(found):
            return present
        missing = ", ".join(f"s3://{self.s3_bucket}/{key} {'does not exist' if obj is None else 'is empty'}"
                            for key, obj in found if obj is None or obj.size == 0)
        deadline = context["data_interval_end"] + timedelta(hours=self.grace_hours)
        if datetime.now(UTC) < deadline:
            raise SourceNotReady(
                f"{missing} yet; waiting (deferred, no worker slot held) until {deadline.isoformat()} "
                f"({self.grace_hours:g} h after the interval ends), then the task fails",
                deadline,
            )
        raise AirflowFailException(
            f"{missing}, and the run's interval ended more than {self.grace_hours:g} h ago: "
            "the source is missing. Once the file is delivered, clear this run to load it."
        )

    def _wait_for(self, not_yet: SourceNotReady) -> NoReturn:
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

    def _late_objects(self, s3: S3) -> list[S3Object]:
        """The earlier days' objects that exist and are not empty (whether they changed is decided
        against the manifest, under its lock)."""
        found = [s3.head(self.s3_bucket, key) for key in self.late_keys if key not in self.s3_keys]
        return [obj for obj in found if obj is not None and obj.size > 0]

    def _refresh_range(self, tx: Session, changed: list[str]) -> list[str] | None:
        """The whole UTC days on which the changed objects' events fall, as [start, end) ISO strings."""
        hours = [(first, last) for key, first, last in tx.fetch_file("stage/batch_hours.sql", schema=self.schema)
                 if key in changed]
        if not hours:  # no event with a time: the loads fall back to the run's day
            return None
        start = min(first for first, _ in hours).replace(hour=0, minute=0, second=0, microsecond=0)
        end = max(last for _, last in hours).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        return [start.isoformat(), end.isoformat()]

    def _listing_due(self, wh: Warehouse, now: datetime) -> bool:
        with wh.transaction() as tx:
            row = tx.fetch_file("stage/listing_age.sql", {"prefix": self.s3_prefix}, schema=self.schema)
        if row and now - row[0][0] < timedelta(hours=self.listing_period_hours):
            self.log.info(
                "s3://%s/%s/ was listed at %s; it is listed again %g h after that. Nothing to do.",
                self.s3_bucket, self.s3_prefix, row[0][0].isoformat(), self.listing_period_hours,
            )
            return False
        return True

    def _record_listing(self, tx: Session, pages: Iterable[list[S3Object]]) -> int:
        """Insert what was found into ``sparkify_listing``, page by page; how many objects."""
        late = set(self.late_keys)
        count = 0
        for page in pages:
            for start in range(0, len(page), _OBJECTS_PER_INSERT):
                part = page[start : start + _OBJECTS_PER_INSERT]
                params: dict[str, Any] = {}
                for i, o in enumerate(part):
                    params.update({f"k{i}": o.key, f"e{i}": o.etag, f"s{i}": o.size, f"l{i}": o.key in late})
                tx.run_file("stage/add_listing.sql", params, count=len(part))
            count += len(page)
        return count

    def _todo(self, tx: Session, after: str) -> list[tuple]:
        """The next chunk of new or changed objects after key ``after``: (key, etag, size, staged before)."""
        return tx.fetch_file("stage/todo.sql", {"source": self.table, "after": after}, schema=self.schema,
                             limit=_OBJECTS_PER_CHUNK)

    def _jsonpaths(self, s3: S3) -> list[tuple[str | int, ...]] | None:
        match = _S3_URI.match(self.json_format)
        if not match:
            return None
        try:
            document = s3.read(match.group(1), match.group(2))
        except SourceMissing as err:
            raise AirflowFailException(f"JSONPaths file: {err}") from None
        try:
            return jsonload.parse_jsonpaths(document, self.json_format)
        except jsonload.SourceDataError as err:
            raise AirflowFailException(str(err)) from None

    def _columns(self, tx: Session) -> list[jsonload.Column]:
        rows = tx.fetch_file("stage/table_columns.sql", {"schema": self.schema, "table": self.table})
        if not rows:
            raise AirflowFailException(f"table {self.schema}.{self.table} does not exist: create the tables first")
        columns = []
        for name, data_type, width in rows:
            if name == self.source_key_column:
                continue
            kind = data_type if data_type in ("integer", "bigint", "smallint", "double precision",
                                               "real", "numeric", "boolean") else "text"
            columns.append(jsonload.Column(name, kind, width if data_type == "character varying" else None))
        return columns

    def _postgres_copier(self, tx: Session, s3: S3) -> Callable[[list[S3Object]], dict[str, int | None]]:
        """A function that bulk-loads objects into the batch table; its result: rows per object."""
        columns = self._columns(tx)
        jsonpaths = self._jsonpaths(s3)
        extract = jsonload.make_extractor(columns, self.json_format, jsonpaths, self.json_format)
        copy_columns = [c.name for c in columns] + ([self.source_key_column] if self.source_key_column else [])
        sql = _render_one(tx, "stage/copy_postgres.sql", columns=copy_columns)

        def copy(todo: list[S3Object]) -> dict[str, int | None]:
            rows: dict[str, int | None] = {}

            def encode(obj: S3Object, chunks) -> Iterator[bytes]:
                uri = f"s3://{self.s3_bucket}/{obj.key}"
                counter = [0]
                extra = (obj.key,) if self.source_key_column else ()
                yield from jsonload.encode_rows(
                    jsonload.iter_json_objects(chunks, uri), columns, extract, uri, extra, counter=counter
                )
                rows[obj.key] = counter[0]

            def encode_small(obj: S3Object) -> bytes:
                return b"".join(encode(obj, [s3.read(self.s3_bucket, obj.key)]))

            def chunks() -> Iterator[bytes]:
                large = [o for o in todo if o.size > _STREAM_ALONE_BYTES]
                small = [o for o in todo if o.size <= _STREAM_ALONE_BYTES]
                for obj in large:  # streamed: memory stays flat however large the file
                    yield from encode(obj, s3.stream(self.s3_bucket, obj.key, obj.etag))
                if len(small) == 1:
                    yield from encode(small[0], s3.stream(self.s3_bucket, small[0].key, small[0].etag))
                else:  # many small objects: fetched and parsed concurrently, a bounded window ahead
                    yield from s3.map_bounded(encode_small, small)

            try:
                tx.copy_from_chunks(sql, chunks())
            except (jsonload.SourceDataError, SourceMissing) as err:
                raise AirflowFailException(f"{self.task_id}: {err}. Nothing was staged.") from None
            return rows

        return copy

    def _redshift_copier(
        self, tx: Session, s3: S3, context: Context
    ) -> Callable[[list[S3Object]], dict[str, int | None]]:
        """A function that COPYs objects into the batch table through manifests; its result: rows per
        object (None when one COPY loaded several), and under ``""`` the rows of all of them."""
        numbers = iter(range(1 << 30))  # manifests are numbered across the whole run

        def copy(todo: list[S3Object]) -> dict[str, int | None]:
            rows, total = self._copy_redshift(tx, s3, todo, context, numbers)
            return {**rows, "": total}

        return copy

    def _copy_redshift(
        self, tx: Session, s3: S3, todo: list[S3Object], context: Context, numbers: Iterator[int]
    ) -> tuple[dict[str, int | None], int]:
        if not self.manifest_bucket:
            raise AirflowFailException(
                "manifest_bucket is required on Redshift: COPY reads its object list from a manifest "
                "written there (the source bucket may be read-only)"
            )
        credentials = self._credentials(s3)
        secrets = _credential_values(credentials)
        safe_run = re.sub(r"[^A-Za-z0-9_.-]", "_", context["run_id"])
        base = f"{self.manifest_prefix}/{context['dag'].dag_id}/{safe_run}/{self.task_id}"
        # With a source-key column, one COPY per object so each row can be told its object;
        # without one, a single COPY of every new or changed object.
        groups = [[o] for o in todo] if self.source_key_column else [todo]
        rows: dict[str, int | None] = {}
        total = 0
        for group in groups:
            number = next(numbers)
            manifest = {
                "entries": [
                    {"url": f"s3://{self.s3_bucket}/{o.key}", "mandatory": True, "meta": {"content_length": o.size}}
                    for o in group
                ]
            }
            key = f"{base}-{number}.manifest"
            s3.put(self.manifest_bucket, key, json.dumps(manifest).encode())
            sql = _render_one(
                tx,
                "stage/copy_redshift.sql",
                columns=self._redshift_columns(),
                manifest_url=_literal(f"s3://{self.manifest_bucket}/{key}"),
                credentials=_literal(credentials),
                json_format=_literal(self.json_format),
                region=_literal(self.region),
            )
            self.log.info("Running %s", redact(sql))
            try:
                tx.execute(sql)
            except Exception as err:
                raise AirflowException(f"COPY into {self.table} failed: {_hide(redact(str(err)), secrets)}") from None
            (copied,) = tx.fetchone("SELECT pg_last_copy_count()")
            total += copied
            if self.source_key_column:
                tx.run_file("stage/set_batch_source_key.sql", {"s3_key": group[0].key},
                            source_key_column=self.source_key_column)
            for o in group:
                rows[o.key] = copied if len(group) == 1 else None
        return rows, total

    def _redshift_columns(self) -> list[str]:
        if self.table not in STAGING_COLUMNS:
            raise AirflowFailException(f"{self.table} is not a staging table ({', '.join(STAGING_COLUMNS)})")
        return [c for c in STAGING_COLUMNS[self.table] if c != self.source_key_column]

    def _credentials(self, s3: S3) -> str:
        from airflow.providers.amazon.aws.utils.redshift import build_credentials_block

        connection = s3.hook.get_connection(self.aws_conn_id) if self.aws_conn_id else None
        if connection and connection.extra_dejson.get("role_arn"):
            return f"aws_iam_role={connection.extra_dejson['role_arn']}"
        return build_credentials_block(s3.hook.get_credentials())

    def _record_objects(self, tx: Session, todo: list[S3Object], rows: dict[str, int | None]) -> None:
        for start in range(0, len(todo), _OBJECTS_PER_INSERT):
            part = todo[start : start + _OBJECTS_PER_INSERT]
            params: dict[str, Any] = {}
            for i, o in enumerate(part):
                params.update({f"k{i}": o.key, f"e{i}": o.etag, f"s{i}": o.size, f"r{i}": rows.get(o.key)})
            tx.run_file("stage/add_batch_objects.sql", params, count=len(part))


def _render_one(tx: Session, template: str, **context: Any) -> str:
    from sparkify.warehouse import render

    return render(template, dialect=tx.dialect, **context).strip().rstrip(";")


def _literal(value: str) -> str:
    """Escape a value for a single-quoted SQL literal (Redshift's COPY takes no parameters)."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _credential_values(credentials: str) -> list[str]:
    """The key id, secret key and token of a CREDENTIALS string (not an IAM role's ARN)."""
    parts = (part.partition("=") for part in credentials.split(";"))
    return [value for name, _, value in parts if name != "aws_iam_role" and value]


def _hide(text: str, secrets: list[str]) -> str:
    """``text`` with every credential value masked, however the driver quoted the statement."""
    for secret in sorted(secrets, key=len, reverse=True):  # a key id may be part of a longer secret
        text = text.replace(secret, "***")
    return text


def _non_negative(value: float | str, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise settings.InvalidParam(f"{name}={value!r} is not a number") from None
    if number < 0:
        raise settings.InvalidParam(f"{name}={value!r} must not be negative")
    return number
