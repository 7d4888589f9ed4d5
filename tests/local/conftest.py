"""Fixtures of the local-run tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from .browser import find_chromium


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium (installed when missing and the tests run as root)."""
    return find_chromium()
