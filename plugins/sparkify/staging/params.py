"""The staging operator's arguments, validated once, before the warehouse or S3 is reached."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sparkify import settings
from sparkify.aws.names import REGION

S3_URI = re.compile(r"^s3://([^/]+)/(.+)$")
JSON_FORMATS = ("auto", "auto ignorecase")


@dataclass(frozen=True)
class StagingParams:
    """What a staging run needs, every identifier, key and number checked."""

    table: str
    schema: str
    s3_bucket: str
    s3_keys: list[str]  # the run's own objects (s3_key), in order, once each; or []
    s3_prefix: str | None
    late_keys: list[str]
    json_format: str
    region: str
    source_key_column: str | None
    dedupe_key: str | None
    hour_counts: bool
    manifest_bucket: str
    manifest_prefix: str
    listing_period_hours: float
    grace_hours: float

    @property
    def jsonpaths_location(self) -> tuple[str, str] | None:
        """(bucket, key) of the JSONPaths file, when ``json_format`` names one."""
        match = S3_URI.match(self.json_format)
        return (match.group(1), match.group(2)) if match else None


def validated(
    task_id: str,
    *,
    table: str,
    schema: str,
    s3_bucket: str,
    s3_key: str | Sequence[str] | None,
    s3_prefix: str | None,
    late_keys: str | Sequence[str],
    json_format: str,
    region: str,
    redshift_conn_id: str,
    aws_conn_id: str,
    source_key_column: str | None,
    dedupe_key: str | None,
    hour_counts: bool,
    manifest_bucket: str,
    manifest_prefix: str,
    listing_period_hours: float | str,
    grace_hours: float | str,
) -> StagingParams:
    """The rendered arguments as :class:`StagingParams`; raises ``InvalidParam`` (no retry) naming
    the task and the argument."""
    try:
        settings.validate_identifier(table, "table")
        settings.validate_identifier(schema, "schema")
        settings.validate_bucket(s3_bucket)
        settings.validate_conn_id(redshift_conn_id, "redshift_conn_id")
        settings.validate_conn_id(aws_conn_id, "aws_conn_id")
        if bool(s3_key) == bool(s3_prefix):
            raise settings.InvalidParam("give exactly one of s3_key and s3_prefix")
        late = late_keys.split() if isinstance(late_keys, str) else list(late_keys)
        if late and not s3_key:
            raise settings.InvalidParam("late_keys go with s3_key, not with s3_prefix")
        late = [settings.validate_prefix(k, "late_keys") for k in late]
        keys: list[str] = []
        if s3_key:
            given = s3_key.split() if isinstance(s3_key, str) else list(s3_key)
            # In order, once each: a wide interval's days, or one hour's day.
            keys = list(dict.fromkeys(settings.validate_prefix(k, "s3_key") for k in given))
            if not keys:  # blank after rendering: never fall through to listing the whole bucket
                raise settings.InvalidParam(f"s3_key={s3_key!r} names no object")
        else:
            s3_prefix = settings.validate_prefix(s3_prefix, "s3_prefix")
        for name, column in (("source_key_column", source_key_column), ("dedupe_key", dedupe_key)):
            if column is not None:
                settings.validate_identifier(column, name)
        if json_format not in JSON_FORMATS and not S3_URI.match(json_format):
            raise settings.InvalidParam(
                f"json_format={json_format!r}: use 'auto', 'auto ignorecase' or s3://bucket/jsonpaths.json"
            )
        if S3_URI.match(json_format) and re.search(r"['\\]", json_format):
            raise settings.InvalidParam(
                f"json_format={json_format!r}: the JSONPaths file's URI must not hold ' or \\ (it is written into the "
                "COPY statement's quoted FORMAT AS JSON literal, which takes no bind parameter)"
            )
        if not REGION.match(region):
            raise settings.InvalidParam(f"region={region!r} is not an AWS region name")
        listing_period = _non_negative(listing_period_hours, "listing_period_hours")
        grace = _non_negative(grace_hours, "grace_hours")
        if manifest_bucket:
            settings.validate_bucket(manifest_bucket, "manifest_bucket")
        manifest_prefix = settings.validate_prefix(manifest_prefix, "manifest_prefix")
    except settings.InvalidParam as err:
        # The task's name first: a DAG stages several tables with the same arguments' names.
        raise settings.InvalidParam(f"{task_id}: {err}") from None
    return StagingParams(
        table=table, schema=schema, s3_bucket=s3_bucket, s3_keys=keys, s3_prefix=None if s3_key else s3_prefix,
        late_keys=late, json_format=json_format, region=region, source_key_column=source_key_column,
        dedupe_key=dedupe_key, hour_counts=hour_counts, manifest_bucket=manifest_bucket,
        manifest_prefix=manifest_prefix, listing_period_hours=listing_period, grace_hours=grace,
    )


def _non_negative(value: float | str, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise settings.InvalidParam(f"{name}={value!r} is not a number") from None
    if number < 0:
        raise settings.InvalidParam(f"{name}={value!r} must not be negative")
    return number
