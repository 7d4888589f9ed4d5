"""The SQL templates' compiled code is kept between task processes (Jinja's bytecode cache): a fresh
environment, as a new task process has, renders a known file without compiling it, a changed file
is compiled again, and environments whose compiled code would differ do not share files."""

from __future__ import annotations

import jinja2
import pytest
from jinja2.nativetypes import NativeEnvironment
from jinja2.sandbox import SandboxedEnvironment

from sparkify import sql_templates


def airflow_like_env(folder, cls=SandboxedEnvironment) -> jinja2.Environment:
    """As Airflow's create_template_env builds a DAG's environment: no template cache."""
    return cls(loader=jinja2.FileSystemLoader(str(folder)), cache_size=0, extensions=["jinja2.ext.do"],
               undefined=jinja2.StrictUndefined)


@pytest.fixture
def compiles(monkeypatch) -> list[str]:
    compiled: list[str] = []
    real = jinja2.Environment.compile

    def counting(self, source, name=None, filename=None, raw=False, defer_init=False):
        compiled.append(name)
        return real(self, source, name, filename, raw, defer_init)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    return compiled


def test_a_fresh_environment_renders_a_known_file_without_compiling_it(tmp_path, compiles, monkeypatch):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    monkeypatch.setattr(sql_templates, "_bytecode_cache",
                        lambda key: jinja2.FileSystemBytecodeCache(str(cache_dir), f"__t_{key}_%s.cache"))
    (tmp_path / "load.sql").write_text("SELECT {{ columns | join(', ') }} FROM {{ table }}")

    def render(env_class=SandboxedEnvironment) -> str:
        env = sql_templates.sql_env(airflow_like_env(tmp_path, env_class))
        return env.get_template("load.sql").render(columns=["a", "b"], table="songs")

    assert render() == "SELECT a, b FROM songs" and compiles == ["load.sql"]
    assert len(list(cache_dir.iterdir())) == 1
    assert render() == "SELECT a, b FROM songs" and compiles == ["load.sql"]  # from the cache

    (tmp_path / "load.sql").write_text("SELECT {{ columns | join(', ') }} FROM {{ table }} WHERE true")
    assert render() == "SELECT a, b FROM songs WHERE true" and compiles == ["load.sql", "load.sql"]

    # Another kind of environment compiles differently: its own file, never the sandbox's code.
    assert render(NativeEnvironment) == "SELECT a, b FROM songs WHERE true"
    assert compiles == ["load.sql"] * 3
    assert len(list(cache_dir.iterdir())) == 2


def test_environments_with_other_syntax_get_other_cache_files():
    plain = sql_templates.bytecode_cache(SandboxedEnvironment())
    assert sql_templates.bytecode_cache(SandboxedEnvironment()) is plain
    assert sql_templates.bytecode_cache(SandboxedEnvironment(trim_blocks=True)) is not plain
    assert sql_templates.bytecode_cache(SandboxedEnvironment(variable_start_string="[[")) is not plain
    assert sql_templates.bytecode_cache(NativeEnvironment()) is not plain


def test_a_cache_that_cannot_be_written_only_costs_a_compile(tmp_path, compiles, monkeypatch):
    cache_dir = tmp_path / "gone"  # does not exist: every write fails
    monkeypatch.setattr(sql_templates, "_bytecode_cache",
                        lambda key: sql_templates._BestEffortBytecodeCache(str(cache_dir), "%s.cache"))
    (tmp_path / "load.sql").write_text("SELECT {{ table }}")
    for _ in range(2):
        env = sql_templates.sql_env(airflow_like_env(tmp_path))
        assert env.get_template("load.sql").render(table="songs") == "SELECT songs"
    assert compiles == ["load.sql", "load.sql"] and not cache_dir.exists()
