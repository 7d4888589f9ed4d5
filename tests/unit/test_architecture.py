"""The import direction of docs/architecture.md, checked with import-linter (contracts in pyproject.toml).

DAGs -> operators/sensors -> domain modules -> clients -> base; tools/ (the local stack and the
benchmark) imports the pipeline and is never imported by it. The second test shows the check can
fail: the same contracts on a copy of the code in which the warehouse client imports an operator.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "plugins"), str(root / "tools")]),
           "NO_COLOR": "1"}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_are_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers(tmp_path):
    for folder in ("plugins", "tools"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    client = tmp_path / "plugins" / "sparkify" / "warehouse.py"
    client.write_text(client.read_text() + "\n\ndef _upward():\n    from sparkify.operators import load_fact  # noqa\n")
    tool_user = tmp_path / "plugins" / "sparkify" / "tables.py"
    tool_user.write_text(tool_user.read_text() + "\n\ndef _tooling():\n    import sparkify_local.seed  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "sparkify.warehouse -> sparkify.operators" in result.stdout
    assert "sparkify.tables -> sparkify_local.seed" in result.stdout


def test_the_architecture_page_names_every_module():
    """docs/architecture.md matches the tree: each module of the pipeline and the tooling is on the map."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    missing = []
    for top in (ROOT / "plugins" / "sparkify", ROOT / "tools"):
        for path in top.rglob("*.py"):
            if path.stem in ("__init__", "__main__") or "__pycache__" in path.parts:
                continue
            if f"`{path.stem}`" not in page and f"{path.stem}.py" not in page:
                missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"docs/architecture.md does not name: {', '.join(sorted(missing))}"


AIRFLOW_TABLES = re.compile(
    r"\b(FROM|UPDATE|JOIN|INTO)\s+(dag_run|task_instance|backfill|backfill_dag_run|job|dag|xcom|deadline)\b",
    re.IGNORECASE)


def test_no_code_reads_or_writes_airflows_metadata_tables():
    """Airflow's metadata belongs to Airflow: the project reads and changes run and task state through
    its REST API (tools/sparkify_local/airflow_api.py), never with SQL on its tables."""
    offenders = []
    for top in ("plugins", "tools", "dags", "tests"):
        for path in (ROOT / top).rglob("*.py"):
            if path == Path(__file__).resolve():
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if AIRFLOW_TABLES.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
