"""The Redshift backend: one ``COPY … FORMAT AS JSON … MANIFEST`` per chunk of objects (per object
with a source-key column), its manifest written to ``manifest_bucket``.

COPY takes no bind parameters, so the credentials are part of the statement: they are registered
with Airflow's secrets masker where they are read, and the statement is logged, and its errors
reported, with their values shown as ``***``.

When a COPY fails, Redshift says only "Check 'stl_load_errors' system table for details": the
rejected rows are read back (``stage/load_errors_sys.sql``, else ``stage/load_errors_stl.sql``) and
the task fails at once (:class:`LoadRejected`) naming, for up to five rows, the object's S3 URI,
the line, the column, the raw value and Redshift's reason, as the PostgreSQL path's messages do.
A failure with no rejected row (access denied, a throttled read) stays a :class:`TransientError`.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

from sparkify.errors import PermanentError, TransientError, error_code
from sparkify.s3 import S3, S3Object
from sparkify.settings import InvalidParam
from sparkify.staging.params import StagingParams
from sparkify.staging.run import Copy
from sparkify.tables import STAGING_COLUMNS
from sparkify.warehouse import Session

log = logging.getLogger(__name__)

LOAD_ERROR_SOURCES = ("stage/load_errors_sys.sql", "stage/load_errors_stl.sql")


class LoadRejected(PermanentError):
    """Redshift's COPY rejected rows of the data: the same objects fail the same way again."""


@dataclass(frozen=True)
class Credentials:
    """A COPY ``CREDENTIALS`` string, the same with its secret values masked, and those values."""

    text: str
    shown: str
    secrets: tuple[str, ...]

    def hide(self, text: str) -> str:
        """``text`` with every secret value masked, however a driver quoted the statement."""
        for secret in sorted(self.secrets, key=len, reverse=True):  # a key id may be in a longer secret
            text = text.replace(secret, "***")
        return text


def credentials(s3: S3, aws_conn_id: str | None) -> Credentials:
    """The AWS connection's ``role_arn`` (``aws_iam_role=``), else its keys; the keys are masked
    in every log from here on (``mask_secret``)."""
    from airflow.providers.amazon.aws.utils.redshift import build_credentials_block
    from airflow.sdk.log import mask_secret

    connection = s3.hook.get_connection(aws_conn_id) if aws_conn_id else None
    if connection and connection.extra_dejson.get("role_arn"):
        text = f"aws_iam_role={connection.extra_dejson['role_arn']}"
        return Credentials(text, text, ())
    keys = s3.hook.get_credentials()
    secrets = tuple(value for value in (keys.access_key, keys.secret_key, keys.token) if value)
    for value in secrets:
        mask_secret(value)
    text = build_credentials_block(keys)
    shown = ";".join(f"{part.partition('=')[0]}=***" for part in text.split(";"))
    return Credentials(text, shown, secrets)


def copier(tx: Session, s3: S3, p: StagingParams, *, aws_conn_id: str | None, manifest_base: str) -> Copy:
    """A function that COPYs objects into ``sparkify_batch`` through manifests written under
    ``manifest_base``; rows per object are None when one COPY loaded several."""
    if not p.manifest_bucket:
        raise InvalidParam(
            "manifest_bucket is required on Redshift: COPY reads its object list from a manifest "
            "written there (the source bucket may be read-only)"
        )
    check_manifest_region(s3, p)
    if p.table not in STAGING_COLUMNS:
        raise InvalidParam(f"{p.table} is not a staging table ({', '.join(STAGING_COLUMNS)})")
    columns = [c for c in STAGING_COLUMNS[p.table] if c != p.source_key_column]
    secret = credentials(s3, aws_conn_id)
    numbers = iter(range(1 << 30))  # manifests are numbered across the whole run

    def statement(manifest_key: str, creds: str) -> str:
        return tx.render_one(
            "stage/copy_redshift.sql",
            columns=columns,
            manifest_url=_literal(f"s3://{p.manifest_bucket}/{manifest_key}"),
            credentials=_literal(creds),
            json_format=_literal(p.json_format),
            region=_literal(p.region),
        )

    def copy(todo: list[S3Object]) -> tuple[dict[str, int | None], int]:
        # With a source-key column, one COPY per object so each row can be told its object;
        # without one, a single COPY of every new or changed object.
        groups = [[o] for o in todo] if p.source_key_column else [todo]
        rows: dict[str, int | None] = {}
        total = 0
        for group in groups:
            key = f"{manifest_base}-{next(numbers)}.manifest"
            s3.put(p.manifest_bucket, key, json.dumps(manifest(p, group)).encode())
            shown = statement(key, secret.shown)
            log.info("Running %s", shown)
            try:
                tx.execute(statement(key, secret.text), shown=shown)
            except Exception as err:
                reason = secret.hide(str(err))
                rejected = load_errors(tx, [f"s3://{p.s3_bucket}/{o.key}" for o in group])
                if rejected:
                    raise LoadRejected(
                        f"COPY into {p.table} rejected the data; nothing was staged. "
                        + "; ".join(describe(row) for row in rejected)
                    ) from None
                raise TransientError(f"COPY into {p.table} failed: {reason}") from None
            (copied,) = tx.fetchone("SELECT pg_last_copy_count()")
            total += copied
            if p.source_key_column:
                tx.run_file("stage/set_batch_source_key.sql", {"s3_key": group[0].key},
                            source_key_column=p.source_key_column)
            for o in group:
                rows[o.key] = copied if len(group) == 1 else None
        return rows, total

    return copy


def check_manifest_region(s3: S3, p: StagingParams) -> None:
    """Redshift reads a COPY's manifest from the COPY's ``REGION``: a manifest bucket elsewhere fails
    every COPY, so it fails the task first, naming both. A role without ``s3:GetBucketLocation``
    (the setup DAG's policy grants it) leaves the check to the COPY, with a warning."""
    try:
        actual = s3.bucket_region(p.manifest_bucket)
    except Exception as err:
        if error_code(err) not in ("AccessDenied", "403"):
            raise
        log.warning("Cannot check the region of manifest_bucket=%s (no s3:GetBucketLocation); the COPY will tell",
                    p.manifest_bucket)
        return
    if actual != p.region:
        raise InvalidParam(
            f"manifest_bucket={p.manifest_bucket!r} is in {actual}, but region={p.region!r}: Redshift reads the "
            f"COPY manifest from the COPY's REGION, so use a manifest bucket in {p.region} (or set region to {actual} "
            "if the source bucket is there too)"
        )


def load_errors(tx: Session, uris: list[str]) -> list[tuple]:
    """Up to five rows the failed COPY rejected: (S3 URI, line, column, raw value, reason).

    A failed statement aborts Redshift's transaction, so it is rolled back first; the connection
    (the session the error views are keyed on) stays. A view this user cannot read is skipped."""
    params = {f"f{i}": uri for i, uri in enumerate(uris)}
    for template in LOAD_ERROR_SOURCES:
        tx.connection.rollback()
        try:
            rows = tx.fetch_file(template, params, count=len(uris))
        except Exception as err:  # not readable here (stl_load_errors on Serverless, say)
            log.info("Could not read the load errors with %s: %s", template, err)
            continue
        if rows:
            return rows[:5]
    return []


def describe(row: tuple) -> str:
    """One rejected row as the PostgreSQL path words a bad line: URI, line, column, value, reason."""
    uri, line, column, value, reason = (v.strip() if isinstance(v, str) else v for v in row)
    shown = "not recorded" if value is None else repr(value)
    return f"{uri}, line {line}: column {column}: {reason} (raw value {shown})"


def manifest(p: StagingParams, objects: list[S3Object]) -> dict:
    """A COPY manifest naming ``objects``, each mandatory, with its size."""
    return {"entries": [
        {"url": f"s3://{p.s3_bucket}/{o.key}", "mandatory": True, "meta": {"content_length": o.size}}
        for o in objects
    ]}


def manifest_base(p: StagingParams, dag_id: str, run_id: str, task_id: str) -> str:
    """Where a run's manifests go: ``<prefix>/<dag>/<run>/<task>``, the run id made key-safe."""
    safe_run = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    return f"{p.manifest_prefix}/{dag_id}/{safe_run}/{task_id}"


def _literal(value: str) -> str:
    """Escape a value for a single-quoted SQL literal (Redshift's COPY takes no parameters)."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
