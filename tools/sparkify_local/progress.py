"""Progress lines of the local run, stamped with the seconds since the command started."""

from __future__ import annotations

import time

_STARTED = time.monotonic()


def say(message: str) -> None:
    """Print a progress line, stamped with the seconds since the command started."""
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}" if message else "", flush=True)
