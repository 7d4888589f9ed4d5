"""The runner (`make run`, `make up`, `make down`, `make clean`) starts without importing Airflow: the
pipeline's package imports it (its errors are Airflow's), about 2.7 CPU-s, which a command that stops
at a bad setting, `make down` or `make clean` never needs. The runner imports the pipeline's modules
where it uses them, and Airflow's processes and the project's commands import Airflow themselves."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT

RUNNER_MODULES = ("sparkify_local.runner", "sparkify_local.stack", "sparkify_local.runs", "sparkify_local.summary",
                  "sparkify_local.config", "sparkify_local.steps")


def imported(statement: str) -> list[str]:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
    code += "('airflow', 'sparkify'))))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "tools")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_runners_modules_import_neither_airflow_nor_the_pipeline():
    assert imported("; ".join(f"import {m}" for m in RUNNER_MODULES)) == []


def test_a_module_the_runner_uses_later_does_import_them():
    """The check above can fail: the pipeline's modules the runner imports where it uses them do
    import Airflow."""
    found = imported("import sparkify.intervals")
    assert "airflow" in found and "sparkify.errors" in found, found
