"""The dashboard's charts as geometry for inline SVG (templates/macros/charts.html): no JavaScript.

Across, positions are percentages of the chart's width; down, pixels. A chart so fills its card at
any width while its text stays 12 px (a viewBox would scale the text down with the chart on a
phone). Every bar and point is a link to the requests behind it; every chart also has its numbers
as a table, and says so calmly when its period has nothing to show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from flask import url_for

from portal.domain.workflow import PRIORITY_LABELS
from portal.services.dashboard_charts import BREACH_DAYS, WEEKS, ChartData
from portal.services.requests import date_range_value

LEFT, RIGHT = 12.0, 99.0         # the plot's edges, % of the width (the y labels sit left of it)
TOP, PLOT_HEIGHT = 12, 150       # px
AXIS_HEIGHT = 26                 # px under the plot for the week labels
ROW_HEIGHT = 40                  # px per horizontal bar (label line, then the bar)
BAR_THICKNESS = 12
MIN_BAR = 2                      # px (or % across): a count of 1 stays visible beside a count of 500
CATEGORY_ROWS = 10


@dataclass
class Mark:
    """One link of a chart: a bar (x, width in %; y, height in px) or a point (x %, y px)."""

    href: str
    label: str          # the link's name for a screen reader, and its tooltip
    value: str          # the figure, shown beside it
    x: float
    y: float
    width: float = 0.0
    height: float = 0.0
    kind: str = ""      # CSS class: the series
    hit_y: float = 0.0  # the link's clickable box, larger than a thin bar or a small point
    hit_height: float = 0.0
    name: str = ""      # a horizontal bar's row name


@dataclass
class Tick:
    text: str
    at: float           # x in % (week labels) or y in px (gridlines)
    alternate: bool = False  # every other week label: left out when the chart is narrow


@dataclass
class Segment:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass
class Cell:
    text: str
    href: str | None = None


@dataclass
class Chart:
    """What the macro draws: one of "line", "bars" (paired, vertical) or "rows" (horizontal)."""

    id: str
    kind: str
    title: str
    description: str
    height: int = 0
    marks: list[Mark] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)   # (CSS class, name)
    empty: str | None = None                                      # shown instead of the drawing
    columns: list[str] = field(default_factory=list)              # the table of its numbers
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""

    # The frame the macro draws in (module constants, here so the template needs no import).
    left, right, axis_y = LEFT, RIGHT, TOP + PLOT_HEIGHT + AXIS_HEIGHT - 8


# ---------------------------------------------------------------- geometry (pure)

def nice_maximum(largest: int) -> int:
    """The top of a count axis: 1, 2, 4, 6, 8, 10, 20, 40 ... at or above `largest` (its half is whole)."""
    scale = 1
    while True:
        for step in (1, 2, 4, 6, 8):
            if step * scale >= largest:
                return step * scale
        scale *= 10


def band_centre(index: int, count: int) -> float:
    """The middle of the index-th of `count` equal bands across the plot, in %."""
    width = (RIGHT - LEFT) / count
    return round(LEFT + (index + 0.5) * width, 3)


def y_of(fraction: float) -> float:
    """The px height on the plot of a share of its axis (0 at the bottom, 1 at the top)."""
    return round(TOP + (1 - fraction) * PLOT_HEIGHT, 2)


def week_ticks(labels: list[str]) -> list[Tick]:
    """The week labels under the plot, every other one marked as left out on a narrow chart (the
    latest always kept)."""
    last = len(labels) - 1
    return [Tick(text, band_centre(i, len(labels)), alternate=(last - i) % 2 == 1) for i, text in enumerate(labels)]


def line_points(values: list[float | None], hrefs: list[str], labels: list[str], texts: list[str]
                ) -> tuple[list[Mark], list[Segment]]:
    """Points of shares (0..1) at the band centres, and the line joining neighbours that both have one
    (a week without a figure breaks the line rather than inventing one)."""
    marks, segments = [], []
    previous: Mark | None = None
    for i, value in enumerate(values):
        if value is None:
            previous = None
            continue
        mark = Mark(hrefs[i], labels[i], texts[i], band_centre(i, len(values)), y_of(value), kind="point",
                    hit_y=TOP, hit_height=PLOT_HEIGHT)
        if previous is not None:
            segments.append(Segment(previous.x, previous.y, mark.x, mark.y))
        marks.append(mark)
        previous = mark
    return marks, segments


def paired_bars(groups: list[list[tuple[int, str, str, str]]], top: int) -> list[Mark]:
    """Vertical bars, a pair per band: each (count, href, label, CSS class). A 0 draws no bar and no link."""
    marks = []
    count = len(groups)
    band = (RIGHT - LEFT) / count
    width = round(band * 0.34, 3)
    for i, pair in enumerate(groups):
        centre = band_centre(i, count)
        for j, (n, href, label, kind) in enumerate(pair):
            if not n:
                continue
            height = max(MIN_BAR, round(n / top * PLOT_HEIGHT, 2))
            x = round(centre - width - band * 0.02 if j == 0 else centre + band * 0.02, 3)
            marks.append(Mark(href, label, str(n), x, round(TOP + PLOT_HEIGHT - height, 2), width, height, kind,
                              hit_y=TOP, hit_height=PLOT_HEIGHT))
    return marks


def row_bars(rows: list[tuple[str, int, str, str]]) -> list[Mark]:
    """Horizontal bars, one row each: (name, count, href, link label). Each row is the link (its
    name, figure and bar), except a row of 0, which is drawn without one."""
    top = max((n for _name, n, _href, _label in rows), default=0) or 1
    marks = []
    for i, (name, n, href, label) in enumerate(rows):
        width = 0.0 if not n else max(MIN_BAR / 2, round(n / top * 100, 3))
        marks.append(Mark(href if n else "", label, str(n), 0.0, i * ROW_HEIGHT + 22, width, BAR_THICKNESS,
                          kind="breach", hit_y=i * ROW_HEIGHT, hit_height=ROW_HEIGHT - 2, name=name))
    return marks


# ---------------------------------------------------------------- the dashboard's three charts

def _day(d: date) -> str:
    return f"{d.day} {d:%b}"


def _list_url(**filters: str) -> str:
    """The request list showing the requests behind a figure (every status: resolved ones too)."""
    return url_for("requests.list_requests", status="any", **filters)


def compliance_chart(data: ChartData) -> Chart:
    """SLA compliance by week, a line of % met; each point opens the requests created that week."""
    weeks = data.weeks
    chart = Chart("chart-compliance", "line", "SLA compliance by week",
                  f"Share of SLA targets met, of those decided, for requests created each week (Monday to "
                  f"Sunday, UTC), the last {WEEKS} weeks.", TOP + PLOT_HEIGHT + AXIS_HEIGHT,
                  columns=["Week of", "Targets met", "Compliance"])
    hrefs, labels, texts, values = [], [], [], []
    for week in weeks:
        rate = week.met_rate
        href = _list_url(created=date_range_value(week.start, week.end))
        text = f"{round(rate * 100)}%" if rate is not None else "–"
        values.append(rate)
        hrefs.append(href)
        texts.append(text)
        labels.append(f"Week of {_day(week.start)}: {text} of SLA targets met ({week.met} of {week.decided}). "
                      f"Show the requests created that week." if rate is not None else "")
        chart.rows.append([Cell(_day(week.start), href if rate is not None else None),
                           Cell(f"{week.met} of {week.decided}"), Cell(text)])
    if all(v is None for v in values):
        chart.empty = "No SLA targets were decided in this period."
        return chart
    chart.marks, chart.segments = line_points(values, hrefs, labels, texts)
    chart.y_ticks = [Tick(f"{p}%", y_of(p / 100)) for p in (100, 75, 50, 25, 0)]
    chart.x_ticks = week_ticks([_day(w.start) for w in weeks])
    return chart


def volume_chart(data: ChartData) -> Chart:
    """Requests opened and resolved per week, paired bars; each opens the list of those requests."""
    weeks = data.weeks
    chart = Chart("chart-volume", "bars", "Requests opened and resolved",
                  f"Requests opened and requests resolved each week (Monday to Sunday, UTC), the last {WEEKS} "
                  f"weeks.", TOP + PLOT_HEIGHT + AXIS_HEIGHT, legend=[("opened", "Opened"), ("resolved", "Resolved")],
                  columns=["Week of", "Opened", "Resolved"])
    if data.volume_counted_at is not None:
        chart.note = f"Counted hourly; last at {data.volume_counted_at:%H:%M} UTC."
    groups = []
    for week in weeks:
        span = date_range_value(week.start, week.end)
        opened = (week.opened, _list_url(created=span),
                  f"Week of {_day(week.start)}: {week.opened} opened. Show them.", "opened")
        resolved = (week.resolved, _list_url(resolved=span),
                    f"Week of {_day(week.start)}: {week.resolved} resolved. Show them.", "resolved")
        groups.append([opened, resolved])
        chart.rows.append([Cell(_day(week.start)), Cell(str(week.opened), opened[1] if week.opened else None),
                           Cell(str(week.resolved), resolved[1] if week.resolved else None)])
    largest = max((max(w.opened, w.resolved) for w in weeks), default=0)
    if not largest:
        chart.empty = "No requests in this period."
        return chart
    top = nice_maximum(largest)
    chart.marks = paired_bars(groups, top)
    chart.y_ticks = [Tick(str(n), y_of(n / top)) for n in sorted({top, top // 2, 0}, reverse=True)]
    chart.x_ticks = week_ticks([_day(w.start) for w in weeks])
    return chart


def breach_charts(data: ChartData) -> tuple[Chart, Chart]:
    """Breaches of the last BREACH_DAYS days by priority and by category, horizontal bars; each opens
    the requests with a target breached in those days."""
    b = data.breaches
    span = date_range_value(b.first, b.last)
    period = f"{_day(b.first)} – {_day(b.last)}"
    note = "A request that misses both its response and its resolution target counts twice."

    def chart(chart_id: str, title: str, what: str, rows: list[tuple[str, int, dict[str, str]]]) -> Chart:
        made = Chart(chart_id, "rows", title,
                     f"SLA breaches recorded in the last {BREACH_DAYS} days ({period}, UTC), by {what}.",
                     note=note, columns=[what.capitalize(), "Breaches"])
        drawn = []
        for name, n, filters in rows:
            href = _list_url(breached=span, **filters)
            # The link's name starts with what it shows ("High 5"): heard as seen (WCAG 2.5.3).
            drawn.append((name, n, href, f"{name} {n} breach{'es' if n != 1 else ''} in the last {BREACH_DAYS} "
                                         f"days. Show the requests."))
            made.rows.append([Cell(name), Cell(str(n), href if n else None)])
        if not b.total:
            made.empty = f"No SLA breaches in the last {BREACH_DAYS} days."
            return made
        made.marks = row_bars(drawn)
        made.height = len(drawn) * ROW_HEIGHT
        return made

    by_priority = chart("chart-breach-priority", "Breaches by priority", "priority",
                        [(PRIORITY_LABELS[p], n, {"priority": p}) for p, n in b.by_priority])
    shown = b.by_category[:CATEGORY_ROWS]
    by_category = chart("chart-breach-category", "Breaches by category", "category",
                        [(name, n, {"category": code}) for code, name, n in shown])
    if len(b.by_category) > CATEGORY_ROWS:
        by_category.note = f"The {CATEGORY_ROWS} categories with the most breaches. " + note
    return by_priority, by_category


def dashboard_charts(data: ChartData) -> list[Chart]:
    """The dashboard's charts in reading order."""
    return [compliance_chart(data), volume_chart(data), *breach_charts(data)]
