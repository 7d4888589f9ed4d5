"""The README's settings table is the truth: every SPARKIFY_* variable the code reads is in it, none
is there that the code does not read, and compose passes each one Airflow's processes read, with
the table's default."""

from __future__ import annotations

import re

from tests.containers.helpers import resolve, service_env

from conftest import ROOT

LOCAL_ONLY = {"SPARKIFY_PG_BINDIR"}  # read by the local run and the tests, not by Airflow's processes
SET_BY_THE_IMAGE = {"SPARKIFY_INCLUDE_DIR"}  # the Dockerfile sets it
LOCAL_SERVICES = {"SPARKIFY_S3_BUCKET", "SPARKIFY_S3_REGION"}  # compose's defaults are its MinIO's


def read_in_code() -> set[str]:
    """SPARKIFY_* names that appear as string literals in the pipeline's code (what it can read)."""
    names: set[str] = set()
    for path in [*(ROOT / "plugins").rglob("*.py"), *(ROOT / "tools").rglob("*.py"), *(ROOT / "dags").glob("*.py")]:
        names |= set(re.findall(r"""["'](SPARKIFY_[A-Z0-9_]+)["']""", path.read_text()))
    return names


def readme_table() -> dict[str, dict[str, str]]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Configuration"):text.index("## Running on AWS")]
    rows = re.findall(r"^\| `(SPARKIFY_[A-Z0-9_]+)` \| (.+?) \| (.+?) \| (.+?) \|$", section, re.MULTILINE)
    return {name: {"read_by": read_by, "default": default, "scope": scope} for name, read_by, default, scope in rows}


def test_every_setting_read_in_code_is_in_the_readme_table_and_only_those():
    table, code = readme_table(), read_in_code()
    assert len(table) > 20
    assert code - set(table) == set(), "read in code, missing from the README's settings table"
    assert set(table) - code == set(), "in the README's settings table, read nowhere in the code"
    for name, row in table.items():
        assert row["scope"].startswith(("per run", "per deployment", "local")), (name, row)


def test_compose_passes_every_setting_airflow_reads_with_the_tables_default():
    table = readme_table()
    resolved, _ = resolve({})
    env = service_env(resolved, "airflow-scheduler")
    for name, row in table.items():
        if name in LOCAL_ONLY | SET_BY_THE_IMAGE:
            continue
        assert name in env, f"{name} is read by Airflow's processes but docker-compose.yaml does not pass it"
        if name in LOCAL_SERVICES:
            continue
        default = "" if row["default"] == "(none)" else row["default"].strip("`")
        assert env[name] == default, (name, env[name], row["default"])
