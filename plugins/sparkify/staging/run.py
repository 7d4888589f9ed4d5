"""The staging transaction: lock the manifest, record what S3 holds, copy what is new or changed
into a private batch table (through a backend), replace those objects' staging rows, record them
in the manifest, and note the reloads the loads now owe. A failure leaves all of it as it was."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sparkify.resources import peak_rss_mb
from sparkify.s3 import S3, S3Object
from sparkify.staging import late_data, manifest
from sparkify.staging.params import StagingParams
from sparkify.tables import REFRESHES
from sparkify.warehouse import Session, Warehouse

log = logging.getLogger(__name__)

_CHANGED_KEPT = 1000  # changed objects' keys kept for the result (a day's events file is one object)

#: Loads a chunk of objects into the batch table: rows per object (None when unknown), and all rows.
Copy = Callable[[list[S3Object]], tuple[dict[str, int | None], int]]
#: Builds a backend's :data:`Copy` inside the staging transaction.
Backend = Callable[[Session], Copy]


def nothing_staged(s3: S3, *, listed: bool) -> dict[str, Any]:
    """The task's result when nothing was copied."""
    return {"listed": listed, "staged_objects": 0, "fetched_objects": 0, "list_calls": s3.list_calls,
            "peak_rss_mb": peak_rss_mb()}


def stage(
    wh: Warehouse,
    s3: S3,
    p: StagingParams,
    pages: Iterable[list[S3Object]],
    backend: Backend,
    *,
    now: datetime,
    run_id: str,
    run_day: datetime,
) -> dict[str, Any]:
    """Stage the new or changed objects of ``pages`` into ``p.table`` in one transaction; the task's result."""
    with wh.transaction() as tx:
        tx.run_file("stage/lock_manifest.sql", schema=p.schema, with_refresh=bool(REFRESHES.get(p.table)))
        tx.run_file("stage/create_listing.sql")
        listed = manifest.record_listing(tx, p, pages)
        if p.s3_prefix:
            log.info("Listed %d object(s) under s3://%s/%s/ in %d call(s)",
                     listed, p.s3_bucket, p.s3_prefix, s3.list_calls)
            manifest.record_prefix_listed(tx, p, now, listed)
        chunk = manifest.next_chunk(tx, p, "")
        if not chunk:
            tx.run_file("stage/drop_listing.sql")
            log.info("All %d object(s) already staged unchanged; nothing to copy", listed)
            return nothing_staged(s3, listed=bool(p.s3_prefix))
        tx.run_file("stage/create_batch.sql", schema=p.schema, table=p.table)
        copy = backend(tx)
        staged, total, changed, changed_count = 0, 0, [], 0
        while chunk:
            objects = [S3Object(key, etag, int(size)) for key, etag, size, _ in chunk]
            # Objects staged before under another ETag or size changed since (their keys are kept
            # for the refresh and the result, up to a bound: a prefix may hold 100,000 of them).
            changed_count += sum(1 for *_, before in chunk if before)
            changed += [key for key, _, _, before in chunk if before][: _CHANGED_KEPT - len(changed)]
            rows, copied = copy(objects)
            total += copied
            manifest.record_objects(tx, objects, rows)
            staged += len(objects)
            log.info("Staged %d new or changed object(s) of %d listed into %s.%s so far",
                     staged, listed, p.schema, p.table)
            chunk = manifest.next_chunk(tx, p, objects[-1].key) if len(chunk) == manifest.OBJECTS_PER_CHUNK else []
        if p.hour_counts:
            tx.run_file("stage/events_hour_counts.sql", schema=p.schema)
        # Changed objects: the loads downstream owe a reload of the whole days of their events.
        days = late_data.refresh_range(tx, p, changed) if changed and p.hour_counts else None
        if changed:
            late_data.note_owed_reloads(tx, p, days, run_day, run_id)
        manifest.replace_rows(tx, p, now, run_id)
        tx.run_file("stage/drop_batch.sql")
    log.info("Staged %d row(s) from %d object(s) into %s.%s", total, staged, p.schema, p.table)
    if changed:
        log.info("Changed since last staged: %s%s", ", ".join(changed[:20])
                 + (f" and {changed_count - 20} more" if changed_count > 20 else ""),
                 f"; the loads refresh [{days[0]}, {days[1]})" if days else "")
    return {"listed": bool(p.s3_prefix), "staged_objects": staged, "rows": total,
            "fetched_objects": s3.get_calls, "list_calls": s3.list_calls, "changed_objects": changed,
            "refresh_range": days, "peak_rss_mb": peak_rss_mb()}
