"""The test session's own plumbing (tests/conftest.py): where its scratch folder goes, and the
migrated Airflow metadata database the xdist workers copy instead of each migrating one."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import conftest


@dataclass
class Venv:
    prefix: Path
    migrations: list[Path] = field(default_factory=list)


@pytest.fixture
def venv(tmp_path, monkeypatch) -> Venv:
    """A virtual environment's prefix of the test's own, where no migration is run: the stand-in
    for ``airflow db migrate`` writes the setting it saw into the database file."""
    found = Venv(tmp_path / "venv")
    found.prefix.mkdir()
    monkeypatch.setattr(sys, "prefix", str(found.prefix))

    def migrate(target: Path) -> None:
        found.migrations.append(target)
        target.write_text(os.environ.get("AIRFLOW__CORE__PARALLELISM", "default"))

    monkeypatch.setattr(conftest, "migrate_metadata_db", migrate)
    return found


def test_the_first_worker_migrates_and_the_others_copy(venv, tmp_path):
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    assert conftest.copy_migrated_metadata_db(first) and conftest.copy_migrated_metadata_db(second)
    assert first.read_text() == second.read_text() == "default"
    (cached,) = (venv.prefix / "sparkify-test-cache").glob("airflow-metadata-*.db")
    assert len(venv.migrations) == 1 and venv.migrations[0].parent == cached.parent  # one migration, then copies


def test_other_airflow_settings_make_a_new_one_and_the_old_is_removed(venv, tmp_path, monkeypatch):
    assert conftest.copy_migrated_metadata_db(tmp_path / "before.db")
    monkeypatch.setenv("AIRFLOW__CORE__PARALLELISM", "7")
    assert conftest.copy_migrated_metadata_db(tmp_path / "after.db")
    assert (tmp_path / "after.db").read_text() == "7" and len(venv.migrations) == 2
    folder = venv.prefix / "sparkify-test-cache"
    assert len(list(folder.glob("airflow-metadata-*.db"))) == 1 and not list(folder.glob("partial-*"))


def test_outside_a_virtual_environment_or_in_a_read_only_one_nothing_is_cached(venv, tmp_path, monkeypatch):
    (venv.prefix / "sparkify-test-cache").write_text("a file where the folder would go")  # mkdir fails as if read-only
    assert not conftest.copy_migrated_metadata_db(tmp_path / "a.db")
    monkeypatch.setattr(sys, "prefix", sys.base_prefix)
    assert not conftest.copy_migrated_metadata_db(tmp_path / "b.db")
    assert venv.migrations == [] and not (tmp_path / "a.db").exists() and not (tmp_path / "b.db").exists()


def test_the_scratch_folder_goes_to_memory_only_with_room_and_no_tmpdir(tmp_path, monkeypatch):
    monkeypatch.delenv("TMPDIR", raising=False)
    monkeypatch.setattr(conftest, "MEMORY_FS", str(tmp_path))
    monkeypatch.setattr(conftest, "SCRATCH_ROOM", 1)
    assert conftest.scratch_parent() == str(tmp_path)
    monkeypatch.setattr(conftest, "SCRATCH_ROOM", 1 << 60)  # more than any disk has
    assert conftest.scratch_parent() is None
    monkeypatch.setattr(conftest, "SCRATCH_ROOM", 1)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert conftest.scratch_parent() is None  # TMPDIR wins: tempfile uses it
    monkeypatch.delenv("TMPDIR")
    monkeypatch.setattr(conftest, "MEMORY_FS", str(tmp_path / "missing"))
    assert conftest.scratch_parent() is None
