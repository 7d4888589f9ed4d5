"""The analysts' questions, answered from the star schema.

    python -m sparkify.analysis [--conn-id redshift] [--schema public]

runs every query in ``include/sql/analysis/`` (in file-name order) and prints the answers.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from sparkify import settings, warehouse

ANALYSIS_DIR = settings.SQL_DIR / "analysis"


@dataclass
class Answer:
    question: str
    columns: list[str]
    rows: list[tuple]


def queries() -> list[tuple[str, str]]:
    """(question, template) for each analysis file; the question is the file's first comment."""
    found = []
    for path in sorted(ANALYSIS_DIR.glob("*.sql")):
        first = path.read_text().splitlines()[0]
        question = first.removeprefix("--").strip() if first.startswith("--") else path.stem
        found.append((question, f"analysis/{path.name}"))
    return found


def answer_all(session: warehouse.Session, schema: str) -> list[Answer]:
    settings.validate_identifier(schema, "schema")
    answers = []
    for question, template in queries():
        rows = session.fetch_file(template, {}, schema=schema)
        columns = [d[0] for d in session.cursor.description]
        answers.append(Answer(question, columns, rows))
    return answers


def format_answers(answers: list[Answer]) -> str:
    out = []
    for answer in answers:
        out.append(f"## {answer.question}")
        table = [answer.columns] + [[_cell(v) for v in row] for row in answer.rows]
        widths = [max(len(str(r[i])) for r in table) for i in range(len(answer.columns))]
        for n, row in enumerate(table):
            out.append("  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
            if n == 0:
                out.append("  " + "  ".join("-" * w for w in widths))
        if not answer.rows:
            out.append("  (no rows)")
        out.append("")
    return "\n".join(out)


def _cell(value: object) -> str:
    return "NULL" if value is None else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparkify.analysis", description=__doc__.splitlines()[0])
    parser.add_argument("--conn-id", default=settings.DEFAULTS.redshift_conn_id)
    parser.add_argument("--schema", default=settings.DEFAULTS.schema)
    args = parser.parse_args(argv)
    with warehouse.Warehouse(args.conn_id).transaction() as session:
        print(format_answers(answer_all(session, args.schema)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
