"""``load_manifest`` bookkeeping inside the staging transaction: what S3 holds goes to a temporary
listing table and is compared with the manifest there, chunk by chunk, so the task holds one page
and one chunk of objects at a time, however many there are."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sparkify.s3 import S3Object
from sparkify.staging.params import StagingParams
from sparkify.warehouse import Session

OBJECTS_PER_INSERT = 500
OBJECTS_PER_CHUNK = 2000  # objects read from the listing and copied at a time


def record_listing(tx: Session, p: StagingParams, pages: Iterable[list[S3Object]]) -> int:
    """Insert what was found into ``sparkify_listing``, page by page; how many objects."""
    late = set(p.late_keys)
    count = 0
    for page in pages:
        for start in range(0, len(page), OBJECTS_PER_INSERT):
            part = page[start : start + OBJECTS_PER_INSERT]
            params: dict[str, Any] = {}
            for i, o in enumerate(part):
                params.update({f"k{i}": o.key, f"e{i}": o.etag, f"s{i}": o.size, f"l{i}": o.key in late})
            tx.run_file("stage/add_listing.sql", params, count=len(part))
        count += len(page)
    return count


def record_prefix_listed(tx: Session, p: StagingParams, listed_at: datetime, count: int) -> None:
    tx.run_file("stage/record_listing.sql", {"prefix": p.s3_prefix, "listed_at": listed_at, "object_count": count},
                schema=p.schema)


def next_chunk(tx: Session, p: StagingParams, after: str) -> list[tuple]:
    """The next chunk of new or changed objects after key ``after``: (key, etag, size, staged before)."""
    return tx.fetch_file("stage/todo.sql", {"source": p.table, "after": after}, schema=p.schema,
                         limit=OBJECTS_PER_CHUNK)


def record_objects(tx: Session, todo: list[S3Object], rows: dict[str, int | None]) -> None:
    """Note the batch's objects (ETag, size, rows) in ``sparkify_batch_objects``."""
    for start in range(0, len(todo), OBJECTS_PER_INSERT):
        part = todo[start : start + OBJECTS_PER_INSERT]
        params: dict[str, Any] = {}
        for i, o in enumerate(part):
            params.update({f"k{i}": o.key, f"e{i}": o.etag, f"s{i}": o.size, f"r{i}": rows.get(o.key)})
        tx.run_file("stage/add_batch_objects.sql", params, count=len(part))


def replace_rows(tx: Session, p: StagingParams, staged_at: datetime, run_id: str) -> None:
    """Replace the staging rows of the batch's objects and record them in the manifest."""
    tx.run_file(
        "stage/replace_rows.sql",
        {"source": p.table, "staged_at": staged_at, "run_id": run_id},
        schema=p.schema,
        table=p.table,
        source_key_column=p.source_key_column,
        dedupe_key=p.dedupe_key,
    )
