"""``DataQualityOperator``: run declared checks, record every result, fail on errors."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from sparkify import settings
from sparkify.errors import PermanentError
from sparkify.loading import interval_params
from sparkify.quality import DEFAULT_CHECKS_FILE, SAMPLES, Check, ChecksFailed, describe_failure, load_checks
from sparkify.sql_templates import SQL_TEMPLATE_EXT, render_sql
from sparkify.warehouse import Warehouse, dialect_of, naive_utc

if TYPE_CHECKING:
    import jinja2
    from airflow.providers.common.sql.operators.sql import SQLCheckResult
    from airflow.sdk import Context

_RESULTS_PER_INSERT = 200


class DataQualityOperator(BaseOperator):
    """Run data-quality checks on the warehouse and fail naming every failing check.

    Each check is SQL that yields one value and an expectation on it (``equal_to``, ``geq_to``…),
    declared per table in ``include/quality/checks.yaml`` in common-sql's vocabulary, or passed
    as ``checks``. ``error`` checks fail the task without retries (rerunning does not fix data);
    ``warn`` checks are logged and recorded, and pushed to XCom as ``warnings`` for alerting.
    Every result is stored in ``quality_results``; ``check_results`` holds them as common-sql's
    ``SQLCheckResult`` for listeners.

    :param checks_file: YAML declarations (default ``include/quality/checks.yaml``).
    :param checks: already compiled checks, instead of a file.
    :param query_params: extra bound parameters for the checks' SQL.
    :param source_keys: the S3 objects the run's interval needs (templated; a list or one string of
        keys separated by white space): bound as ``source_key_0``, ``source_key_1``, … and named in
        the checks' template context as ``source_keys``, for the check that each was staged.

    ``sql`` maps each check's name (and ``<name> samples`` for the query that explains a failure)
    to its SQL, rendered by Airflow before ``execute`` like every template field, so the Rendered
    Template tab shows what the task runs; the run's interval and the keys are bound at execute time.
    """

    template_fields: Sequence[str] = (
        "schema", "redshift_conn_id", "query_params", "checks_file", "source_keys", "sql",
    )
    template_ext: Sequence[str] = SQL_TEMPLATE_EXT
    template_fields_renderers = {"sql": "json"}
    ui_color = "#89DA59"

    def __init__(
        self,
        *,
        checks_file: str | None = None,
        checks: list[Check] | None = None,
        query_params: dict[str, Any] | None = None,
        source_keys: str | Sequence[str] = (),
        schema: str = settings.DEFAULTS.schema,
        redshift_conn_id: str = settings.DEFAULTS.redshift_conn_id,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.checks_file = checks_file
        self.checks = checks
        self.query_params = query_params or {}
        self.source_keys = source_keys
        self.schema = schema
        self.redshift_conn_id = redshift_conn_id
        self.check_results: list[SQLCheckResult] = []
        self.sql: dict[str, str] = {}  # rendered with the other template fields (render_template_fields)

    def execute(self, context: Context) -> dict[str, Any]:
        params = interval_params(context)
        checks, keys = self._declared()
        sql = self.sql or self.render_sql(context)  # rendered here when execute is called directly
        key_params = {f"source_key_{i}": key for i, key in enumerate(keys)}
        params = {**params, **self.query_params, **key_params}
        wh = Warehouse(self.redshift_conn_id)
        outcomes: list[tuple[Check, Any, bool]] = []
        details: dict[str, str] = {}
        samples: dict[str, list[str]] = {}
        # Each check's query is a transaction of its own (autocommit): a check never holds one table
        # while it waits for another, so it cannot close a deadlock with staging or the loads, whose
        # LOCKs are ACCESS EXCLUSIVE (docs/backfills.md). The results are recorded together below.
        with wh.autocommit() as tx:
            for check in checks:
                rows = tx.fetch_sql(sql[check.name], params)
                actual = rows[0][0] if rows else None
                if isinstance(actual, Decimal):
                    actual = float(actual)
                if rows and len(rows[0]) > 1 and rows[0][1] is not None:
                    details[check.name] = str(rows[0][1])
                passed = check.evaluate(actual)
                if not passed and check.samples:
                    # Only for a failed check: the rows that explain it, kept with its result.
                    found = tx.fetch_sql(sql[_samples(check)], params)
                    names = [d[0] for d in tx.cursor.description]
                    samples[check.name] = [_sample(names, row) for row in found[:SAMPLES]]
                outcomes.append((check, actual, passed))
        with wh.transaction() as tx:
            self._record(tx, outcomes, samples, params, context)
        self.check_results = [check.result(actual, passed) for check, actual, passed in outcomes]

        def describe(check: Check, actual: Any) -> str:
            return _describe(check, actual, details.get(check.name), samples.get(check.name))

        failed = [(c, a) for c, a, ok in outcomes if not ok and c.severity == "error"]
        warned = [(c, a) for c, a, ok in outcomes if not ok and c.severity == "warn"]
        for check, actual in warned:
            self.log.warning("Data-quality WARNING %s", describe(check, actual))
        context["ti"].xcom_push(key="warnings", value=[describe(c, a) for c, a in warned])
        self.log.info(
            "%d check(s): %d passed, %d failed (error), %d warning(s)",
            len(outcomes), len(outcomes) - len(failed) - len(warned), len(failed), len(warned),
        )
        if failed:
            lines = "\n".join(f"  - {describe(c, a)}" for c, a in failed)
            raise ChecksFailed(f"{len(failed)} data-quality check(s) failed:\n{lines}")
        return {"checks": len(outcomes), "failed": 0, "warnings": len(warned)}

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        super().render_template_fields(context, jinja_env)
        with suppress(PermanentError):  # a bad param or checks file fails execute, naming it, before any SQL
            self.sql = self.render_sql(context, jinja_env)

    def render_sql(self, context: Context, jinja_env: jinja2.Environment | None = None) -> dict[str, str]:
        """Each check's SQL (and its samples query) for this warehouse, from the rendered fields."""
        checks, keys = self._declared()
        base = {"dialect": dialect_of(self.redshift_conn_id), "schema": self.schema,
                "source_keys": [f"source_key_{i}" for i in range(len(keys))]}
        sql: dict[str, str] = {}
        for check in checks:
            sql[check.name] = render_sql(self, check.template, context, jinja_env, **base, **check.context)
            if check.samples:
                sql[_samples(check)] = render_sql(self, check.samples, context, jinja_env, **base, **check.context)
        return sql

    def _declared(self) -> tuple[list[Check], list[str]]:
        """The checks and the source keys, validated (``PermanentError`` naming what is wrong)."""
        settings.validate_identifier(self.schema, "schema")
        keys = self.source_keys.split() if isinstance(self.source_keys, str) else list(self.source_keys)
        keys = [settings.validate_prefix(key, "source_keys") for key in keys]
        checks = self.checks if self.checks is not None else load_checks(self.checks_file or DEFAULT_CHECKS_FILE)
        return checks, keys

    def _record(
        self,
        tx: Any,
        outcomes: list[tuple[Check, Any, bool]],
        samples: dict[str, list[str]],
        params: dict[str, Any],
        context: Context,
    ) -> None:
        base = {
            "run_id": params["run_id"],
            "dag_id": context["dag"].dag_id,
            "interval_start": params["interval_start"],
            "interval_end": params["interval_end"],
            "checked_at": naive_utc(datetime.now(UTC)),
        }
        for start in range(0, len(outcomes), _RESULTS_PER_INSERT):
            part = outcomes[start : start + _RESULTS_PER_INSERT]
            values = dict(base)
            for i, (check, actual, passed) in enumerate(part):
                values.update({
                    f"n{i}": check.name, f"t{i}": check.table, f"c{i}": check.column, f"s{i}": check.severity,
                    f"a{i}": None if actual is None else str(actual), f"x{i}": check.expected_text(), f"p{i}": passed,
                    f"d{i}": _fit(check.description, 1024) or None,
                    f"e{i}": _fit("\n".join(samples[check.name]), 4096) if check.name in samples else None,
                })
            tx.run_file("quality/record_results.sql", values, schema=self.schema, count=len(part))


def _samples(check: Check) -> str:
    """The key of a check's samples query in ``sql``."""
    return f"{check.name} samples"


def _describe(check: Check, actual: Any, detail: str | None = None, samples: list[str] | None = None) -> str:
    """One failed (or warned) check for the error, the alert and the log (sparkify.quality's wording)."""
    return describe_failure(check.name, check.table, check.column, actual, check.expected_text(),
                            severity=check.severity, detail=detail, description=check.description, samples=samples)


def _sample(names: list[str], row: tuple) -> str:
    """One offending row as ``column=value, …`` (text quoted, so trailing blanks show)."""
    def value(v: Any) -> str:
        if v is None:
            return "NULL"
        if isinstance(v, str):
            return "'" + v.replace("'", "''")[:200] + "'"
        if isinstance(v, datetime):
            return v.isoformat(sep=" ")
        return str(v)

    return ", ".join(f"{name}={value(v)}" for name, v in zip(names, row, strict=False))


def _fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` bytes of UTF-8 (Redshift's VARCHAR counts bytes), on a character boundary."""
    data = text.encode("utf-8")
    return text if len(data) <= width else data[: width - 3].decode("utf-8", "ignore") + "..."
