"""Which objects a staging run stages: the run's own (every one must be there: the missing-file
policy), the earlier days' that may have changed since, or what a prefix holds when it is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sparkify.errors import PermanentError, TransientError
from sparkify.s3 import S3, S3Object
from sparkify.staging.params import StagingParams
from sparkify.warehouse import Warehouse


class SourceNotReady(TransientError):
    """The run's source object is not there yet: waited for until the grace period ends."""

    def __init__(self, message: str, deadline: datetime) -> None:
        super().__init__(message)
        self.deadline = deadline


class SourceOverdue(PermanentError):
    """The run's source object is still missing after the grace period: fail, once, and alert."""


def required_objects(s3: S3, p: StagingParams, interval_end: datetime) -> list[S3Object]:
    """The run's own objects; every one must exist and hold data. Raises :class:`SourceNotReady`
    while the grace period lasts, :class:`SourceOverdue` after it, naming every missing object."""
    found = [(key, s3.head(p.s3_bucket, key)) for key in p.s3_keys]
    present = [obj for _, obj in found if obj is not None and obj.size > 0]
    if len(present) == len(found):
        return present
    missing = ", ".join(f"s3://{p.s3_bucket}/{key} {'does not exist' if obj is None else 'is empty'}"
                        for key, obj in found if obj is None or obj.size == 0)
    deadline = interval_end + timedelta(hours=p.grace_hours)
    if datetime.now(UTC) < deadline:
        raise SourceNotReady(
            f"{missing} yet; waiting (deferred, no worker slot held) until {deadline.isoformat()} "
            f"({p.grace_hours:g} h after the interval ends), then the task fails",
            deadline,
        )
    raise SourceOverdue(
        f"{missing}, and the run's interval ended more than {p.grace_hours:g} h ago: "
        "the source is missing. Once the file is delivered, clear this run to load it."
    )


def late_objects(s3: S3, p: StagingParams) -> list[S3Object]:
    """The earlier days' objects that exist and are not empty (whether they changed is decided
    against the manifest, under its lock)."""
    found = [s3.head(p.s3_bucket, key) for key in p.late_keys if key not in p.s3_keys]
    return [obj for obj in found if obj is not None and obj.size > 0]


def listing_due(wh: Warehouse, p: StagingParams, now: datetime, log) -> bool:
    """Whether the prefix is to be listed now: at most once every ``listing_period_hours``."""
    with wh.transaction() as tx:
        row = tx.fetch_file("stage/listing_age.sql", {"prefix": p.s3_prefix}, schema=p.schema)
    if row and now - row[0][0] < timedelta(hours=p.listing_period_hours):
        log.info(
            "s3://%s/%s/ was listed at %s; it is listed again %g h after that. Nothing to do.",
            p.s3_bucket, p.s3_prefix, row[0][0].isoformat(), p.listing_period_hours,
        )
        return False
    return True
