"""What the figures were measured on (machine(): CPU, memory, versions) and CPU time of a process tree."""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def process_cpu(pid: int | None) -> float:
    """CPU seconds of a process tree: user+system of each live process plus what it has reaped."""
    import psutil

    if not pid:
        return 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return total


def machine() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    info: dict[str, Any] = {"hostname": platform.node(), "kernel": platform.release(),
                            "python": platform.python_version(), "nproc": len(os.sched_getaffinity(0)),
                            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
        info["cpu_model"] = models[0].strip() if models else platform.processor() or "unknown"
        mhz = re.findall(r"^cpu MHz\s*:\s*([\d.]+)$", cpuinfo, re.M)
        info["cpu_mhz"] = float(mhz[0]) if mhz else None
        meminfo = Path("/proc/meminfo").read_text()
        info["memory_gib"] = round(int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1)) / 1024**2, 1)
    except OSError:
        pass
    info["loadavg_start"] = os.getloadavg()
    for package in ("apache-airflow", "apache-airflow-task-sdk", "apache-airflow-providers-amazon", "moto",
                    "boto3", "psycopg"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            info[package] = None
    return info
