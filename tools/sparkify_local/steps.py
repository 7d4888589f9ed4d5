"""Several of the project's commands in one interpreter: the stack's warehouse steps.

    python -m sparkify_local.steps "sparkify.tables migrate --conn-id redshift" \
        "sparkify.access grant --conn-id redshift"

runs each command's ``main(argv)`` in turn, as ``python -m <module> <args>`` would, and stops at the
first that fails. Each of these commands imports Airflow (the warehouse is reached through Airflow's
connection, as the tasks reach it): one interpreter for all of them pays that once, about 3 CPU-s
and as many seconds of the stack's start and of `make run`'s summary per command saved.

The last line of the output is JSON: one ``{"command", "code", "stdout"}`` per command run. Their
logs and errors go to stderr, as they would.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import shlex
import sys
import traceback


def run(commands: list[str]) -> list[dict]:
    """Run each ``"<module> <args>"`` through its module's ``main``; one result per command run."""
    results = []
    for command in commands:
        module, *argv = shlex.split(command)
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                code = importlib.import_module(module).main(argv)
        except SystemExit as exit_:  # argparse's errors, or a command that exits
            code = exit_.code if isinstance(exit_.code, int) else 1
        except Exception:  # noqa: BLE001 - as `python -m` would: the traceback on stderr, exit code 1
            traceback.print_exc()
            code = 1
        results.append({"command": command, "code": code or 0, "stdout": out.getvalue()})
        if code:
            break
    return results


def main(argv: list[str] | None = None) -> int:
    commands = sys.argv[1:] if argv is None else argv
    results = run(commands)
    sys.stdout.write(json.dumps(results) + "\n")
    return next((r["code"] for r in results if r["code"]), 0)


if __name__ == "__main__":
    raise SystemExit(main())
