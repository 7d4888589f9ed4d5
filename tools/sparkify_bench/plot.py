"""The scale section's figure: runs completed over time during one backfill, drawn with matplotlib
(Agg backend: a PNG file, no display needed).

    PYTHONPATH=plugins:tools .venv/bin/python -m sparkify_bench.plot bench-output/results.json [out.png]

redraws it from a results file whose scale section holds ``completions_min`` (written by make bench
since the plot moved to matplotlib).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sparkify_bench.plan import ETL, OUT


def plot_runs(path: Path, minutes: list[float], title: str) -> str:
    """A step plot of runs completed against minutes since the backfill was created; returns the writer's name."""
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: files only, whatever $DISPLAY or MPLBACKEND say
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    minutes = sorted(minutes)
    counts = list(range(1, len(minutes) + 1))
    fig, ax = plt.subplots(figsize=(8.2, 5.2), dpi=100)
    try:
        ax.step([0, *minutes], [0, *counts], where="post", color="tab:blue", linewidth=1.8)
        ax.set_xlabel("minutes since the backfill was created")
        ax.set_ylabel("runs completed")
        ax.set_title(title)
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return f"matplotlib {matplotlib.__version__}"


def scale_title(runs: int, max_active_runs: int | None) -> str:
    return f"{ETL} backfill: {runs} hourly runs" + (f", max-active-runs {max_active_runs}" if max_active_runs else "")


def plot_from_results(results: dict[str, Any], path: Path) -> str:
    """Redraw the scale section's plot from a results file (its ``completions_min``)."""
    scale = results.get("sections", {}).get("scale") or {}
    minutes = scale.get("completions_min")
    if not minutes:
        raise SystemExit("the results hold no scale section with completions_min (per-run completion minutes)")
    return plot_runs(path, minutes, scale_title(scale.get("runs", len(minutes)), scale.get("max_active_runs")))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    source = Path(argv[0])
    out = Path(argv[1]) if len(argv) > 1 else OUT / "month_backfill.png"
    writer = plot_from_results(json.loads(source.read_text()), out)
    print(f"{out} ({writer})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
