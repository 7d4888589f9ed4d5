"""Data-quality checks declared in ``include/quality/checks.yaml``, compiled to SQL.

The vocabulary and the column-check SQL are common-sql's (``SQLColumnCheckOperator``,
``SQLTableCheckOperator``); results are common-sql's ``SQLCheckResult`` records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkify import settings, tables
from sparkify.errors import PermanentError

if TYPE_CHECKING:
    from airflow.providers.common.sql.operators.sql import SQLCheckResult

COMPARISONS = ("equal_to", "greater_than", "geq_to", "less_than", "leq_to")
SEVERITIES = ("error", "warn")
DEFAULT_CHECKS_FILE = settings.INCLUDE_DIR / "quality" / "checks.yaml"


def _column_checks() -> dict[str, str]:
    """common-sql's column checks (name -> SQL expression), imported when checks are read or run:
    the DAG file, parsed by every task process, does not pay for common-sql's import."""
    from airflow.providers.common.sql.operators.sql import SQLColumnCheckOperator

    return SQLColumnCheckOperator.column_checks


class CheckDeclarationError(PermanentError):
    """A checks file that cannot be compiled; the message names the file and the check."""


class ChecksFailed(PermanentError):
    """Error-severity checks failed: rerunning does not fix data, so the task fails without retrying."""


@dataclass
class Check:
    """One compiled check: the SQL file to render and what its single value must satisfy."""

    name: str
    table: str
    check_type: str
    template: str
    expect: dict[str, Any]
    severity: str = "error"
    column: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    #: What the check checks, in words (for the failure message, the alert and quality_results).
    description: str = ""
    #: SQL file giving up to five rows that explain a failure (run only when the check fails), or None.
    samples: str | None = None

    def evaluate(self, actual: Any) -> bool:
        """Compare ``actual`` with the expectation, as common-sql's column checks do."""
        if actual is None:
            # An empty scope gives NULL (SUM, MIN, MAX of no rows): nothing to violate, so a column
            # check reads it as 0, as common-sql's accept_none does. A custom query giving NULL fails.
            if self.check_type not in _column_checks():
                return False
            actual = 0
        tolerance = self.expect.get("tolerance")
        actual = float(actual) if not isinstance(actual, bool) else float(actual)

        def low(bound: float) -> float:
            return bound - abs(bound) * tolerance if tolerance is not None else bound

        def high(bound: float) -> float:
            return bound + abs(bound) * tolerance if tolerance is not None else bound

        ok = True
        if "equal_to" in self.expect:
            bound = self.expect["equal_to"]
            ok = low(bound) <= actual <= high(bound)
        if "geq_to" in self.expect:
            ok = ok and actual >= low(self.expect["geq_to"])
        if "greater_than" in self.expect:
            ok = ok and actual > low(self.expect["greater_than"])
        if "leq_to" in self.expect:
            ok = ok and actual <= high(self.expect["leq_to"])
        if "less_than" in self.expect:
            ok = ok and actual < high(self.expect["less_than"])
        return ok

    def expected_text(self) -> str:
        symbols = {"equal_to": "=", "greater_than": ">", "geq_to": ">=", "less_than": "<", "leq_to": "<="}
        parts = [f"{symbols[k]} {self.expect[k]:g}" for k in COMPARISONS if k in self.expect]
        text = " and ".join(parts)
        if self.expect.get("tolerance") is not None:
            text += f" (tolerance {self.expect['tolerance']:g})"
        return text

    def result(self, actual: Any, passed: bool) -> SQLCheckResult:
        from airflow.providers.common.sql.operators.sql import SQLCheckResult

        return SQLCheckResult(
            name=self.name,
            check_type=self.check_type,
            success=passed,
            severity=self.severity,
            column=self.column,
            table=self.table,
            expected=self.expected_text(),
            actual=None if actual is None else _format(actual),
            description=self.description or None,
        )


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def load_checks(path: Path | str = DEFAULT_CHECKS_FILE) -> list[Check]:
    """Read and compile a checks file; raise :class:`CheckDeclarationError` naming what is wrong."""
    import yaml

    path = Path(path)
    try:
        # libyaml's safe loader when PyYAML has it (ten times faster; every checks task reads the file)
        document = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except (OSError, yaml.YAMLError) as err:
        raise CheckDeclarationError(f"{path}: cannot read the checks ({err})") from None
    if not isinstance(document, dict) or not isinstance(document.get("tables"), dict):
        raise CheckDeclarationError(f"{path}: expected a mapping with a 'tables' key")
    checks: list[Check] = []
    for table, spec in document["tables"].items():
        where = f"{path}: tables.{table}"
        _identifier(table, where)
        spec = spec or {}
        scope = spec.get("scope_column")
        if scope is not None:
            _identifier(scope, f"{where}.scope_column")
        known = tables.STAR_TABLES.get(table)
        key = spec.get("key", list(known.key) if known else [])
        key = [key] if isinstance(key, str) else list(key or [])
        for column in key:
            _identifier(column, f"{where}.key")
        # Samples go to alerts and logs: they show keys and checked values, never personal columns.
        columns = [c for c in known.columns if c not in tables.PERSONAL_COLUMNS] if known else []
        rows_in = f" (rows of the run's interval by {scope})" if scope else " (the whole table)"
        for column, column_checks in (spec.get("columns") or {}).items():
            _identifier(column, f"{where}.columns.{column}")
            for check_type, values in (column_checks or {}).items():
                name = f"{table}_{column}_{check_type}"
                if check_type not in _column_checks():
                    raise CheckDeclarationError(
                        f"{where}.columns.{column}: unknown check {check_type!r} "
                        f"(use {', '.join(_column_checks())})"
                    )
                values = dict(values) if isinstance(values, dict) else values
                description = values.pop("description", None) if isinstance(values, dict) else None
                expect, severity = _expectation(values, f"{where}.columns.{column}.{check_type}")
                expression = _column_checks()[check_type].format(column=column)
                # Distinct values as Redshift counts them (trailing blanks aside): PostgreSQL's form.
                text = known is not None and column in known.text and check_type in ("unique_check", "distinct_check")
                expression_postgres = (_column_checks()[check_type].format(column=f"RTRIM({column})") if text
                                       else expression)
                if column in key:  # a NULL key says nothing: show the whole row
                    shown = columns or [column]
                else:
                    shown = [*key, column]
                context = {"expression": expression, "expression_postgres": expression_postgres, "text": text,
                           "table": table, "scope_column": scope,
                           "check_type": check_type, "column": column, "shown": shown}
                checks.append(Check(
                    name, table, check_type, "quality/column_check.sql", expect, severity, column, context,
                    description or _COLUMN_WORDS[check_type].format(column=column) + rows_in,
                    None if check_type == "distinct_check" else "quality/samples/column.sql",
                ))
        for name, values in (spec.get("table_checks") or {}).items():
            _identifier(name, f"{where}.table_checks")
            statement = (values or {}).get("check_statement")
            if not isinstance(statement, str) or not statement.strip():
                raise CheckDeclarationError(f"{where}.table_checks.{name}: needs a check_statement")
            severity = (values or {}).get("severity", "error")
            _severity(severity, f"{where}.table_checks.{name}")
            named = [c for c in columns if c not in key and re.search(rf"\b{c}\b", statement, re.IGNORECASE)]
            shown = [*key, *named] if known or key else []
            checks.append(Check(
                name, table, "table_check", "quality/table_check.sql", {"equal_to": 1}, severity, None,
                {"check_statement": statement, "table": table, "scope_column": scope, "shown": shown},
                (values or {}).get("description") or f"every row satisfies {statement}{rows_in}",
                "quality/samples/table_check.sql",
            ))
        for name, values in (spec.get("sql_checks") or {}).items():
            _identifier(name, f"{where}.sql_checks")
            values = dict(values or {})
            template = values.pop("sql", None)
            samples = values.pop("samples", None)
            description = values.pop("description", None)
            for what, file in (("sql", template), ("samples", samples)):
                if (what == "sql" or file is not None) and (
                        not isinstance(file, str) or not (settings.SQL_DIR / file).is_file()):
                    raise CheckDeclarationError(
                        f"{where}.sql_checks.{name}: {what} file {file!r} not found under include/sql"
                    )
            expect, severity = _expectation(values, f"{where}.sql_checks.{name}")
            checks.append(Check(name, table, "sql_check", template, expect, severity, values.get("column"), {},
                                description or f"the query in include/sql/{template}", samples))
    names = [c.name for c in checks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CheckDeclarationError(f"{path}: check names must be unique; repeated: {', '.join(duplicates)}")
    return checks


_COLUMN_WORDS = {
    "null_check": "no {column} is NULL",
    "unique_check": "no two rows share a {column}",
    "distinct_check": "the number of distinct {column} values",
    "min": "the smallest {column}",
    "max": "the largest {column}",
}


def _expectation(values: Any, where: str) -> tuple[dict[str, Any], str]:
    if not isinstance(values, dict):
        raise CheckDeclarationError(f"{where}: expected a mapping of comparisons")
    values = dict(values)
    severity = values.pop("severity", "error")
    values.pop("column", None)
    _severity(severity, where)
    unknown = set(values) - set(COMPARISONS) - {"tolerance"}
    if unknown:
        raise CheckDeclarationError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    if not set(values) & set(COMPARISONS):
        raise CheckDeclarationError(f"{where}: needs one of {', '.join(COMPARISONS)}")
    for key, value in values.items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise CheckDeclarationError(f"{where}.{key}: {value!r} is not a number")
    return values, severity


def _severity(value: Any, where: str) -> None:
    if value not in SEVERITIES:
        raise CheckDeclarationError(f"{where}: severity {value!r} is not one of {', '.join(SEVERITIES)}")


def _identifier(value: Any, where: str) -> None:
    try:
        settings.validate_identifier(value, where)
    except settings.InvalidParam as err:
        raise CheckDeclarationError(str(err)) from None


#: Offending rows kept and shown per failed check.
SAMPLES = 5
_DETAIL_INDENT = "      "


def describe_failure(name: str, table: str, column: str | None, actual: Any, expected: str, *,
                     severity: str | None = None, detail: str | None = None, description: str | None = None,
                     samples: list[str] | None = None) -> str:
    """One failed (or warned) check in words, for the error, the alert, the log and `make run`'s
    summary: a line with the check, where, its actual and expected values (and its severity and a
    detail when given); then, indented, what it checks and the offending rows (``samples``: None when
    none were looked for, empty when none were found)."""
    where = table + (f".{column}" if column else "")
    lines = [f"{name}{f' [{severity}]' if severity else ''} on {where}: actual {actual}, expected {expected}"
             + (f" ({detail})" if detail else "")]
    if description:
        lines.append(f"{_DETAIL_INDENT}checks: {description}")
    if samples is not None:
        lines.append(f"{_DETAIL_INDENT}offending rows (up to {SAMPLES}):" + ("" if samples else " none found"))
        lines += [f"{_DETAIL_INDENT}  {sample}" for sample in samples]
    return "\n".join(lines)
