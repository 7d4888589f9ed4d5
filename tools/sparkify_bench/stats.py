"""Figures of repeated measurements: median and spread, their text, a verdict, the sweep's rule."""

from __future__ import annotations

import statistics
from typing import Any


def spread(values: list[float]) -> dict[str, Any]:
    """Median, min, max and the values themselves."""
    values = [v for v in values if v is not None]
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0, "values": []}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "values": values}


def fmt(stat: dict[str, Any], unit: str = "", digits: int = 1) -> str:
    if not stat or stat.get("median") is None:
        return "n/a"
    m, lo, hi = (f"{stat[k]:.{digits}f}" for k in ("median", "min", "max"))
    return f"{m}{unit} (spread {lo}-{hi}{unit}, n={stat['n']})"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")



def largest_that_helps(walls: dict[int, float]) -> int:
    """The largest setting whose wall time is at least 5% below that of every smaller setting."""
    best, best_wall = None, None
    for value in sorted(walls):
        if best_wall is None or walls[value] <= 0.95 * best_wall:
            best, best_wall = value, walls[value]
    return best
