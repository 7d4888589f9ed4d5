"""Draw the lineage graph that OpenLineage events describe (docs/lineage.png).

    python -m sparkify_local.lineage_graph EVENTS.jsonl OUT.png

``EVENTS.jsonl`` is what the OpenLineage file transport writes (one event a line). Each task's last
event (COMPLETE or FAIL) gives a job node with an edge from each input dataset and to each output
dataset; a dataset that carries data-quality assertions is outlined red when one of them failed,
and the edge to the job that checked it says how many checks passed. Drawn with matplotlib (the dev
extra), Agg backend, no display; the layout is by longest path from the sources, so it needs no
graph library.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Graph:
    jobs: dict[str, str] = field(default_factory=dict)  # job name -> eventType of its last event
    datasets: dict[str, str] = field(default_factory=dict)  # dataset key -> label
    edges: set[tuple[str, str]] = field(default_factory=set)  # (from, to): dataset -> job or job -> dataset
    checks: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # (dataset, job) -> passed, all

    def failed(self, dataset: str) -> bool:
        return any(passed < total for (d, _), (passed, total) in self.checks.items() if d == dataset)


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _label(dataset: dict[str, Any]) -> str:
    """``s3://bucket/key`` for S3; ``schema.table`` for a warehouse table (its database left out)."""
    if dataset["namespace"].startswith("s3://"):
        return f"{dataset['namespace']}/{dataset['name']}"
    return ".".join(dataset["name"].split(".")[-2:])


def build(events: Iterable[dict[str, Any]]) -> Graph:
    """The graph of the tasks' last events (a DAG run's own events carry no datasets)."""
    last: dict[str, dict[str, Any]] = {}
    for event in events:
        if event["eventType"] in ("COMPLETE", "FAIL") and (event.get("inputs") or event.get("outputs")):
            last[event["job"]["name"]] = event
    graph = Graph()
    for job, event in last.items():
        name = job.split(".", 1)[-1]
        graph.jobs[name] = event["eventType"]
        for dataset in event.get("inputs", []):
            key = f"{dataset['namespace']}/{dataset['name']}"
            graph.datasets[key] = _label(dataset)
            graph.edges.add((key, name))
            assertions = dataset.get("inputFacets", {}).get("dataQualityAssertions", {}).get("assertions")
            if assertions:
                graph.checks[(key, name)] = (sum(1 for a in assertions if a["success"]), len(assertions))
        for dataset in event.get("outputs", []):
            key = f"{dataset['namespace']}/{dataset['name']}"
            graph.datasets[key] = _label(dataset)
            graph.edges.add((name, key))
    return graph


def _layers(graph: Graph) -> dict[str, int]:
    """Each node's column: the longest path to it from a node with no inputs; a node with no inputs
    stands one column left of its first reader (so a table only the checks read sits beside them)."""
    nodes = [*graph.datasets, *graph.jobs]
    incoming = {n: sorted(a for a, b in graph.edges if b == n) for n in nodes}
    outgoing = {n: sorted(b for a, b in graph.edges if a == n) for n in nodes}
    layer: dict[str, int] = {}

    def depth(node: str, seen: frozenset[str] = frozenset()) -> int:
        if node not in layer:
            parents = [p for p in incoming[node] if p not in seen]
            layer[node] = 1 + max((depth(p, seen | {node}) for p in parents), default=-1)
        return layer[node]

    for node in nodes:
        depth(node)
    for node in nodes:
        if not incoming[node] and outgoing[node]:
            layer[node] = max(0, min(layer[b] for b in outgoing[node]) - 1)
    return layer


def _positions(graph: Graph) -> dict[str, tuple[float, float]]:
    """Columns by :func:`_layers`; in a column, nodes in the order of their parents' rows (fewer crossings)."""
    layer = _layers(graph)
    rows: dict[str, float] = {}
    position: dict[str, tuple[float, float]] = {}
    for x in sorted(set(layer.values())):
        column = [n for n in layer if layer[n] == x]
        def order(node: str) -> tuple[float, str]:
            parents = [rows[a] for a, b in graph.edges if b == node and a in rows]
            return (sum(parents) / len(parents) if parents else 0.0, node)
        column.sort(key=order)
        for i, node in enumerate(column):
            rows[node] = i - (len(column) - 1) / 2
            position[node] = (x * 2.7, -rows[node])
    return position


def draw(graph: Graph, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    position = _positions(graph)
    width = max(x for x, _ in position.values())
    height = max(abs(y) for _, y in position.values())
    fig, ax = plt.subplots(figsize=(width * 0.95 + 3, height * 1.5 + 2))
    ax.set_xlim(-1.6, width + 1.6)
    ax.set_ylim(-height - 0.7, height + 0.7)
    ax.axis("off")
    boxes = {}
    for node, (x, y) in position.items():
        if node in graph.jobs:
            face, edge, text = "#d5f5e3" if graph.jobs[node] == "COMPLETE" else "#fadbd8", "#1e8449", node
        else:
            face, edge, text = "#eaf2f8", "#c0392b" if graph.failed(node) else "#2e86c1", graph.datasets[node]
            if text.startswith("s3://"):
                bucket, _, key = text[5:].partition("/")
                text = f"s3://{bucket}/\n{key}"
        boxes[node] = ax.text(x, y, text, ha="center", va="center", fontsize=7, zorder=2,
                              bbox={"boxstyle": "round,pad=0.4" if node in graph.jobs else "square,pad=0.4",
                                    "facecolor": face, "edgecolor": edge, "linewidth": 1.5})
    for a, b in sorted(graph.edges):
        checks = graph.checks.get((a, b))
        red = bool(checks and checks[0] < checks[1])
        # From the right side of one box to the left side of the other, whatever their widths.
        ax.annotate("", xy=(0, 0.5), xycoords=boxes[b], xytext=(1, 0.5), textcoords=boxes[a], zorder=1,
                    arrowprops={"arrowstyle": "-|>", "color": "#c0392b" if red else "#888888", "lw": 1,
                                "shrinkA": 2, "shrinkB": 2})
        if checks:
            x, y = position[a]  # beside the checked table, above its edge to the checks
            ax.text(x + 0.55, y + 0.2, f"{checks[0]}/{checks[1]} checks passed", fontsize=6, ha="left",
                    color="#c0392b" if red else "#555555", zorder=3)
    ax.set_title("sparkify_etl, one run: OpenLineage jobs (rounded; green COMPLETE, red FAIL) and datasets "
                 "(square; red: a check on it failed)", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    graph = build(read_events(Path(args[0])))
    draw(graph, Path(args[1]))
    print(f"{args[1]}: {len(graph.jobs)} jobs, {len(graph.datasets)} datasets, {len(graph.edges)} edges")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
