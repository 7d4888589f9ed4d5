"""Several of the project's commands in one interpreter (``sparkify_local.steps``): the stack's
warehouse steps and `make run`'s summary. Each command's output is its own, the first failure stops
the rest, and a failure looks as ``python -m <module>`` would make it look."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from sparkify_local import steps

COMMANDS = {
    "say_args": "def main(argv):\n    print('args', *argv)\n    return 0\n",
    "fails_with_2": "import sys\ndef main(argv):\n    print('partial')\n    print('bad input', file=sys.stderr)\n"
                    "    return 2\n",
    "raises": "def main(argv):\n    raise RuntimeError('the warehouse is gone')\n",
    "parses": "import argparse\ndef main(argv):\n    argparse.ArgumentParser(prog='parses').parse_args(argv)\n"
              "    return 0\n",
}


@pytest.fixture
def commands(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "commands"
    folder.mkdir()
    for name, code in COMMANDS.items():
        (folder / f"{name}.py").write_text(code)
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_each_command_runs_with_its_own_arguments_and_output(commands):
    results = steps.run(["say_args --conn-id redshift", "say_args 'two words'"])
    assert results == [
        {"command": "say_args --conn-id redshift", "code": 0, "stdout": "args --conn-id redshift\n"},
        {"command": "say_args 'two words'", "code": 0, "stdout": "args two words\n"},
    ]


@pytest.mark.parametrize(("failing", "code", "stderr"), [
    ("fails_with_2", 2, "bad input"),
    ("raises", 1, "RuntimeError: the warehouse is gone"),  # the traceback, as `python -m` prints it
    ("parses --unknown", 2, "unrecognized arguments: --unknown"),
])
def test_the_first_failure_stops_the_rest(commands, capsys, failing, code, stderr):
    results = steps.run(["say_args first", failing, "say_args never"])
    assert [(r["command"], r["code"]) for r in results] == [("say_args first", 0), (failing, code)]
    assert stderr in capsys.readouterr().err


def test_the_command_line_prints_the_results_as_its_last_line_and_exits_with_the_failure(commands):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(commands), str(ROOT / "tools"), str(ROOT / "plugins")])}
    result = subprocess.run([sys.executable, "-m", "sparkify_local.steps", "say_args one", "fails_with_2"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    results = json.loads(result.stdout.strip().splitlines()[-1])
    assert [r["stdout"] for r in results] == ["args one\n", "partial\n"]
    assert "bad input" in result.stderr
