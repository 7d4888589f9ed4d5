"""What a process has used: its peak resident memory, reported by the staging tasks and the bench."""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (2**20 bytes).

    On Linux it is ``VmHWM`` from ``/proc/self/status``: the high-water mark of this process's own
    memory, which starts afresh when a program is executed. ``getrusage``'s ``ru_maxrss`` does not:
    a process started by fork and exec from a large parent reports the parent's size at the fork
    (the kernel carries the old mm's peak across exec), so a bench driver started by a parent that
    had uploaded 100,000 objects reported the parent's memory, not its own. Elsewhere ``ru_maxrss``
    is the best there is (kilobytes on Linux, bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 2**20 if sys.platform == "darwin" else peak / 1024, 1)
