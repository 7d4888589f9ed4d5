"""What the quality page shows, from a window's results: the grid, the summary, the history, the failures.

Columns are the window's hours. Each hour belongs to the run whose interval covers it and whose
checks ran last (a rerun or a wide run over the same hours replaces what an older run said), and
neighbouring hours of the same run make one cell: an hourly run is one hour's cell, a daily run's
cell spans its 24 hours. Rows are the checks; a cell is ``pass``, ``warn`` (a failed warn-severity
check), ``fail`` (a failed error check) or ``none`` (no run, or the run did not have that check).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote

from sparkify.quality_page.results import Result

HOUR = timedelta(hours=1)
#: The widest window the page draws (one column an hour).
MAX_WINDOW = timedelta(days=14)
#: The window the page shows when none is asked for: this long, ending at the latest recorded interval.
DEFAULT_WINDOW = timedelta(hours=48)
#: Failures listed per check (the latest first).
MAX_FAILURES = 10
#: The history chart's size in SVG user units.
CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 160.0, 18.0, 3.0
STATUSES = ("pass", "warn", "fail")


@dataclass(frozen=True)
class Span:
    """Neighbouring hours of the window that belong to one run (``run`` None: no run checked them)."""

    start: datetime
    end: datetime
    run: Result | None  # any result of the run: its run_id, interval and checked_at

    @property
    def hours(self) -> int:
        return round((self.end - self.start) / HOUR)


@dataclass(frozen=True)
class Cell:
    span: Span
    status: str  # pass, warn, fail, none
    result: Result | None
    href: str | None

    @property
    def title(self) -> str:
        if self.result is None:
            return f"{self.span.start:%Y-%m-%d %H:%M}: no result"
        r = self.result
        text = f"{r.check_name} {self.status} for {r.interval_start:%Y-%m-%d %H:%M} to {r.interval_end:%Y-%m-%d %H:%M}"
        return text + f" (run {r.run_id}): actual {r.actual}, expected {r.expected}"


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    status: str
    label: str


@dataclass
class CheckRow:
    """One check: its cells across the window, its history chart and its failures."""

    name: str
    table: str | None
    column: str | None
    severity: str
    description: str | None
    cells: list[Cell] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    failures: list[Result] = field(default_factory=list)

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)

    @property
    def worst(self) -> str:
        statuses = {c.status for c in self.cells}
        return next((s for s in ("fail", "warn", "pass") if s in statuses), "none")


@dataclass(frozen=True)
class Summary:
    hours: int  # hours of the window
    checked: int  # hours a run checked
    passed: int
    warned: int  # hours whose run failed a warn check and no error check
    failed: int  # hours whose run failed an error check
    runs: int


@dataclass
class Page:
    dag_id: str
    start: datetime
    end: datetime
    spans: list[Span]
    checks: list[CheckRow]
    summary: Summary

    @property
    def days(self) -> list[tuple[str, int]]:
        """The header's days: each date and how many of the window's hours it has."""
        days: list[tuple[str, int]] = []
        hour = self.start
        while hour < self.end:
            label = f"{hour:%Y-%m-%d}"
            if days and days[-1][0] == label:
                days[-1] = (label, days[-1][1] + 1)
            else:
                days.append((label, 1))
            hour += HOUR
        return days


def task_href(base: str, dag_id: str, run_id: str, task_id: str) -> str:
    """The task's instance in a run, on Airflow's grid view."""
    return f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id, safe='')}"


def hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def spans(results: list[Result], start: datetime, end: datetime) -> list[Span]:
    """The window's hours grouped into runs: each hour goes to the covering run checked last."""
    latest: dict[str, Result] = {}
    for r in results:
        if r.run_id not in latest or r.checked_at > latest[r.run_id].checked_at:
            latest[r.run_id] = r
    runs = sorted(latest.values(), key=lambda r: (r.checked_at, r.run_id))
    out: list[Span] = []
    hour = start
    while hour < end:
        covering = [r for r in runs if r.interval_start < hour + HOUR and r.interval_end > hour]
        run = covering[-1] if covering else None
        if out and (out[-1].run.run_id if out[-1].run else None) == (run.run_id if run else None):
            out[-1] = Span(out[-1].start, hour + HOUR, run)
        else:
            out.append(Span(hour, hour + HOUR, run))
        hour += HOUR
    return out


def build(results: list[Result], dag_id: str, start: datetime, end: datetime, *, base: str = "",
          task_id: str = "Run_data_quality_checks") -> Page:
    """The page for ``[start, end)`` (whole hours) from the results of the runs overlapping it."""
    window = spans(results, start, end)
    by_run_check = {(r.run_id, r.check_name): r for r in results}
    names = sorted({r.check_name for r in results})
    last_of = {}
    for r in sorted(results, key=lambda r: r.checked_at):
        last_of[r.check_name] = r
    rows = []
    for name in names:
        declared = last_of[name]
        row = CheckRow(name, declared.table_name, declared.column_name, declared.severity, declared.description)
        for span in window:
            result = by_run_check.get((span.run.run_id, name)) if span.run else None
            href = task_href(base, dag_id, result.run_id, task_id) if result else None
            row.cells.append(Cell(span, result.status if result else "none", result, href))
        row.points = _points([c for c in row.cells if c.result is not None], start, end)
        shown = {c.result.run_id for c in row.cells if c.result is not None}
        row.failures = sorted((r for r in results if r.check_name == name and r.run_id in shown and not r.passed),
                              key=lambda r: r.interval_start, reverse=True)[:MAX_FAILURES]
        rows.append(row)
    return Page(dag_id, start, end, window, rows, _summary(window, rows, start, end))


def _summary(window: list[Span], rows: list[CheckRow], start: datetime, end: datetime) -> Summary:
    counts = dict.fromkeys(STATUSES, 0)
    for i, span in enumerate(window):
        statuses = {row.cells[i].status for row in rows}
        worst = next((s for s in ("fail", "warn", "pass") if s in statuses), None)
        if worst:
            counts[worst] += span.hours
    runs = len({s.run.run_id for s in window if s.run})
    checked = sum(counts.values())
    return Summary(round((end - start) / HOUR), checked, counts["pass"], counts["warn"], counts["fail"], runs)


def _points(cells: list[Cell], start: datetime, end: datetime) -> list[Point]:
    """The chart of a check's actual values: x is the middle of the run's cell, y the value scaled
    between the window's lowest and highest (values that are not numbers are left out)."""
    values = []
    for cell in cells:
        try:
            values.append((cell, float(cell.result.actual)))
        except (TypeError, ValueError):
            continue
    if not values:
        return []
    low, high = min(v for _, v in values), max(v for _, v in values)
    width, height = CHART_WIDTH - 2 * CHART_PAD, CHART_HEIGHT - 2 * CHART_PAD
    total = (end - start).total_seconds()
    points = []
    for cell, value in values:
        middle = ((cell.span.start - start) + (cell.span.end - cell.span.start) / 2).total_seconds()
        x = CHART_PAD + width * middle / total
        y = CHART_PAD + (height / 2 if high == low else height * (high - value) / (high - low))
        label = f"{cell.span.start:%Y-%m-%d %H:%M}: {cell.result.actual} ({cell.status})"
        points.append(Point(x, y, cell.status, label))
    return points
