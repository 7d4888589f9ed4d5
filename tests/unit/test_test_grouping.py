"""`make test` relies on pytest-xdist's ``--dist loadgroup``: tests/conftest.py puts a module's tests
(and the tests/aws modules) in one ``xdist_group`` so that their module fixtures (a scheduler
stack, a runner session) are built on one worker only. pytest 9.2 broke
that silently with pytest-xdist 3.8 (the groups were spread over the workers, each building its own
stack): this runs a small suite on three workers with the installed pair and checks where each
grouped test ran.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = textwrap.dedent("""
    import os, pathlib

    import pytest

    def record(name):
        out = pathlib.Path(os.environ["GROUPING_OUT"]) / name
        out.write_text(os.environ.get("PYTEST_XDIST_WORKER", "none"))

    @pytest.mark.xdist_group("together")
    @pytest.mark.parametrize("n", range(6))
    def test_grouped(n):
        record(f"grouped-{n}")

    @pytest.mark.parametrize("n", range(6))
    def test_free(n):
        record(f"free-{n}")
""")


def test_loadgroup_keeps_a_group_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_groups.py").write_text(TESTS)
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "3", "--dist", "loadgroup",
         "-o", "addopts=", "--rootdir", str(tmp_path), str(tmp_path / "test_groups.py")],
        cwd=tmp_path, env={**_env(), "GROUPING_OUT": str(out)}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    workers = {path.name: path.read_text() for path in out.iterdir()}
    grouped = {name: worker for name, worker in workers.items() if name.startswith("grouped-")}
    assert len(grouped) == 6 and len(workers) == 12, json.dumps(workers)
    assert len(set(grouped.values())) == 1, f"the group ran on several workers: {json.dumps(grouped)}"
    # xdist hands every worker a work unit before any test runs, so the free tests reach the others.
    assert set(workers.values()) - set(grouped.values()), f"the other tests never left the group's worker: {workers}"


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GROUPING_"))}

