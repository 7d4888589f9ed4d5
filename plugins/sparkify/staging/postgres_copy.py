"""The PostgreSQL backend: read the objects through S3 and bulk-load them with ``COPY … FROM STDIN``,
giving the rows Redshift's COPY would give (see :mod:`sparkify.jsonload`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from sparkify import jsonload
from sparkify.s3 import S3, S3Object, SourceMissing
from sparkify.staging.params import StagingParams
from sparkify.staging.run import Copy
from sparkify.warehouse import Session, WarehouseError

log = logging.getLogger(__name__)

STREAM_ALONE_BYTES = 8 << 20  # objects larger than this are streamed one at a time
_NUMERIC = ("integer", "bigint", "smallint", "double precision", "real", "numeric", "boolean")

def copier(tx: Session, s3: S3, p: StagingParams, task_id: str) -> Copy:
    """A function that bulk-loads objects into ``sparkify_batch``, in ``tx``."""
    columns = _columns(tx, p)
    jsonpaths = _jsonpaths(s3, p)
    extract = jsonload.make_extractor(columns, p.json_format, jsonpaths, p.json_format)
    copy_columns = [c.name for c in columns] + ([p.source_key_column] if p.source_key_column else [])
    sql = tx.render_one("stage/copy_postgres.sql", columns=copy_columns)
    log.info("Copying with: %s", sql)

    def copy(todo: list[S3Object]) -> tuple[dict[str, int | None], int]:
        rows: dict[str, int | None] = {}

        def encode(obj: S3Object, chunks) -> Iterator[bytes]:
            uri = f"s3://{p.s3_bucket}/{obj.key}"
            counter = [0]
            extra = (obj.key,) if p.source_key_column else ()
            yield from jsonload.encode_rows(
                jsonload.iter_json_objects(chunks, uri), columns, extract, uri, extra, counter=counter
            )
            rows[obj.key] = counter[0]

        def encode_small(obj: S3Object) -> bytes:
            return b"".join(encode(obj, [s3.read(p.s3_bucket, obj.key)]))

        def chunks() -> Iterator[bytes]:
            large = [o for o in todo if o.size > STREAM_ALONE_BYTES]
            small = [o for o in todo if o.size <= STREAM_ALONE_BYTES]
            for obj in large:  # streamed: memory stays flat however large the file
                yield from encode(obj, s3.stream(p.s3_bucket, obj.key, obj.etag))
            if len(small) == 1:
                yield from encode(small[0], s3.stream(p.s3_bucket, small[0].key, small[0].etag))
            else:  # many small objects: fetched and parsed concurrently, a bounded window ahead
                yield from s3.map_bounded(encode_small, small)

        try:
            tx.copy_from_chunks(sql, chunks())
        except (jsonload.SourceDataError, SourceMissing) as err:
            # Same class (a bad line fails at once, a vanished object is retried), with the task
            # and the fact that the whole batch was rolled back.
            raise type(err)(f"{task_id}: {err}. Nothing was staged.") from None
        return rows, sum(n for n in rows.values() if n is not None)

    return copy


def _columns(tx: Session, p: StagingParams) -> list[jsonload.Column]:
    rows = tx.fetch_file("stage/table_columns.sql", {"schema": p.schema, "table": p.table})
    if not rows:
        raise WarehouseError(f"table {p.schema}.{p.table} does not exist: create the tables first")
    return [
        jsonload.Column(name, data_type if data_type in _NUMERIC else "text",
                        width if data_type == "character varying" else None)
        for name, data_type, width in rows
        if name != p.source_key_column
    ]


def _jsonpaths(s3: S3, p: StagingParams) -> list[tuple[str | int, ...]] | None:
    location = p.jsonpaths_location
    if location is None:
        return None
    try:
        document = s3.read(*location)
    except SourceMissing as err:  # a configuration error, not a late delivery: no retry
        raise jsonload.SourceDataError(f"JSONPaths file: {err}") from None
    return jsonload.parse_jsonpaths(document, p.json_format)
