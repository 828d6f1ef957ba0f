"""PDF rendering (reportlab) for the request-list export and the SLA report: layout only, no queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from portal.domain.workflow import PRIORITIES, PRIORITY_LABELS, STATUS_LABELS
from portal.models._time import utcnow

INK = colors.HexColor("#1f2933")
MUTED = colors.HexColor("#616e7c")
LINE = colors.HexColor("#d9dee4")
ACCENT = colors.HexColor("#2f5d62")
GOOD = colors.HexColor("#2e6b3f")
BAD = colors.HexColor("#a23b3b")
SOFT = colors.HexColor("#f3f5f8")
WARM = colors.HexColor("#d9822b")

_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


def _fonts() -> tuple[str, str]:
    """DejaVu Sans when installed (every script people type in titles), else Helvetica (Latin-1 only)."""
    if "Portal" in pdfmetrics.getRegisteredFontNames():
        return "Portal", "Portal-Bold"
    try:
        pdfmetrics.registerFont(TTFont("Portal", str(_DEJAVU / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont("Portal-Bold", str(_DEJAVU / "DejaVuSans-Bold.ttf")))
    except Exception:  # noqa: BLE001 - any font problem: the built-in font still makes a readable PDF
        return "Helvetica", "Helvetica-Bold"
    return "Portal", "Portal-Bold"


def _styles() -> dict[str, ParagraphStyle]:
    regular, bold = _fonts()
    base = getSampleStyleSheet()
    return {
        "title": ParagraphStyle("title", parent=base["Title"], fontName=bold, fontSize=18, leading=22,
                                alignment=TA_LEFT, textColor=INK, spaceAfter=2),
        "sub": ParagraphStyle("sub", parent=base["Normal"], fontName=regular, fontSize=9, leading=12,
                              textColor=MUTED),
        "h2": ParagraphStyle("h2", parent=base["Heading2"], fontName=bold, fontSize=12, leading=15,
                             textColor=INK, spaceBefore=10, spaceAfter=4),
        "body": ParagraphStyle("body", parent=base["Normal"], fontName=regular, fontSize=9, leading=12,
                               textColor=INK),
        "note": ParagraphStyle("note", parent=base["Normal"], fontName=regular, fontSize=9, leading=12,
                               textColor=INK, backColor=SOFT, borderPadding=6, spaceBefore=6, spaceAfter=8),
        "regular": regular, "bold": bold,
    }


def _numbered_canvas(footer: str):
    """A canvas that knows the page count when it saves, for "Page x of y" on every page."""
    regular, _ = _fonts()

    class NumberedCanvas(canvas.Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self):  # noqa: N802 - reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            count = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                width, _ = self._pagesize
                self.setFont(regular, 8)
                self.setFillColor(MUTED)
                self.drawString(15 * mm, 9 * mm, footer)
                self.drawRightString(width - 15 * mm, 9 * mm, f"Page {self._pageNumber} of {count}")
                super().showPage()
            super().save()

    return NumberedCanvas


def _doc(path: Path, title: str, pagesize=A4) -> SimpleDocTemplate:
    return SimpleDocTemplate(str(path), pagesize=pagesize, title=title, author="Service Portal",
                             leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm, bottomMargin=18 * mm)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _n(value: int) -> str:
    return f"{value:,}"


def _when(value: datetime | None) -> str:
    return value.strftime("%d %b %Y %H:%M UTC") if value else ""


def _grid(data: Sequence[Sequence[Any]], widths: Sequence[float], numeric_from: int = 1,
          repeat: int = 1) -> Table:
    s = _styles()
    table = Table(data, colWidths=widths, repeatRows=repeat)
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), s["regular"], 8),
        ("FONT", (0, 0), (-1, 0), s["bold"], 8),
        ("TEXTCOLOR", (0, 0), (-1, -1), INK),
        ("TEXTCOLOR", (0, 0), (-1, 0), MUTED),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, INK),
        ("LINEBELOW", (0, 1), (-1, -1), 0.25, LINE),
        ("ALIGN", (numeric_from, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]))
    return table


def _key_figures(figures: Sequence[tuple[str, str]], width: float) -> Table:
    """A row of big numbers with their labels (the summary's first glance)."""
    s = _styles()
    cells = [[Paragraph(f'<font name="{s["bold"]}" size="16">{escape(value)}</font><br/>'
                        f'<font size="8" color="#616e7c">{escape(label)}</font>', s["body"])
              for label, value in figures]]
    table = Table(cells, colWidths=[width / len(figures)] * len(figures))
    table.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 0.5, LINE), ("INNERGRID", (0, 0), (-1, -1), 0.5, LINE),
                               ("BACKGROUND", (0, 0), (-1, -1), SOFT), ("TOPPADDING", (0, 0), (-1, -1), 6),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 8), ("LEFTPADDING", (0, 0), (-1, -1), 8)]))
    return table


def _thousands(value: float) -> str:
    return f"{value:,.0f}"


def _chart_frame(chart, title: str, labels: list[str], series: list, width: float, height: float,
                 chart_width: float, value_format=_thousands, max_value: float | None = None):
    """A drawing with its title and `chart` laid out in it: category labels (slanted when many), value axis
    from 0 with a grid. Returns (drawing, chart); the caller adds the chart once it has styled its series."""
    regular, bold = _fonts()
    drawing = Drawing(width, height)
    drawing.add(String(0, height - 10, title, fontName=bold, fontSize=9, fillColor=INK))
    chart.x, chart.y, chart.width, chart.height = 30, 28, chart_width, height - 50
    chart.data = series
    chart.categoryAxis.categoryNames = labels
    chart.categoryAxis.labels.fontName = regular
    chart.categoryAxis.labels.fontSize = 7
    if len(labels) > 16:
        chart.categoryAxis.labels.angle = 45
        chart.categoryAxis.labels.boxAnchor = "ne"
        chart.y, chart.height = 40, height - 62
    chart.valueAxis.labels.fontName = regular
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    top = max([max(s) for s in series if s] + [0])
    chart.valueAxis.valueMax = max_value if max_value is not None else max(1, top * 1.15)
    chart.valueAxis.labelTextFormat = value_format
    chart.valueAxis.gridStrokeColor = LINE
    chart.valueAxis.visibleGrid = True
    return drawing, chart


def _bar_chart(title: str, labels: list[str], series: list[list[float]], names: list[str],
               fills: list, width: float, height: float = 55 * mm, value_format=_thousands,
               max_value: float | None = None) -> Drawing:
    regular, _ = _fonts()
    drawing, chart = _chart_frame(VerticalBarChart(), title, labels, series, width, height,
                                  width - 40 - (90 if len(names) > 1 else 0), value_format, max_value)
    chart.barSpacing = 1
    chart.groupSpacing = 6 if len(labels) < 20 else 2
    for i, fill in enumerate(fills):
        chart.bars[i].fillColor = fill
        chart.bars[i].strokeColor = None
    if len(labels) <= 8:
        chart.barLabelFormat = value_format
        chart.barLabels.fontName = regular
        chart.barLabels.fontSize = 7
        chart.barLabels.nudge = 6
    drawing.add(chart)
    if len(names) > 1:
        drawing.add(_legend(list(zip(fills, names, strict=True)), width - 85, height - 30))
    return drawing


def _legend(pairs: list[tuple[Any, str]], x: float, y: float) -> Legend:
    regular, _ = _fonts()
    legend = Legend()
    legend.x, legend.y = x, y
    legend.fontName = regular
    legend.fontSize = 7
    legend.alignment = "right"
    legend.colorNamePairs = pairs
    legend.boxAnchor = "nw"
    legend.deltay = 10
    return legend


# ---------------------------------------------------------------- the request-list export

def requests_pdf(path: Path, *, title: str, filters: list[tuple[str, str]], owner: str, summary: dict,
                 rows: list[tuple], total: int) -> None:
    """The list as a report: what was asked, the SLA summary with a chart, then the first rows."""
    s = _styles()
    pagesize = landscape(A4)
    doc = _doc(path, title, pagesize)
    width = pagesize[0] - 30 * mm
    generated = utcnow()
    story: list = [
        Paragraph(escape(title), s["title"]),
        Paragraph(f"Generated {_when(generated)} for {escape(owner)} · {_n(total)} matching "
                  f"request{'s' if total != 1 else ''}", s["sub"]),
        Spacer(1, 4),
        Paragraph(" · ".join(f"<b>{escape(label)}:</b> {escape(value)}" for label, value in filters), s["body"]),
        Paragraph("SLA summary", s["h2"]),
        _key_figures([("requests", _n(summary["total"])), ("still open", _n(summary["open"])),
                      ("resolved within target", _pct(summary["met_rate"])),
                      ("breached an SLA target", _n(summary["breached"]))], width),
        Spacer(1, 6),
    ]
    order = list(reversed(PRIORITIES))
    by = summary["by_priority"]
    chart = _bar_chart("Breaches and open requests by priority", [PRIORITY_LABELS[p] for p in order],
                       [[by[p]["breached"] for p in order], [by[p]["open"] for p in order]],
                       ["Breached", "Still open"], [BAD, ACCENT], width * 0.5)
    split = [["Priority", "Requests", "Open", "Met", "Missed", "Met rate", "Breached"]] + [
        [PRIORITY_LABELS[p], _n(by[p]["total"]), _n(by[p]["open"]), _n(by[p]["met"]), _n(by[p]["missed"]),
         _pct(by[p]["met"] / (by[p]["met"] + by[p]["missed"]) if by[p]["met"] + by[p]["missed"] else None),
         _n(by[p]["breached"])] for p in order]
    side = Table([[chart, _grid(split, [20 * mm] + [18 * mm] * 6)]], colWidths=[width * 0.52, width * 0.48])
    side.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    story += [side, Paragraph("Met rate: resolved requests resolved within their resolution target.", s["sub"])]

    story.append(Paragraph("Requests", s["h2"]))
    if len(rows) < total:
        story.append(Paragraph(f"This table shows the <b>first {_n(len(rows))} of {_n(total)}</b> requests, "
                               "in the list's order. Use the CSV export for all of them.", s["note"]))
    header = ["#", "Title", "Status", "Priority", "Category", "Requester", "Assignee", "Created", "SLA"]
    data = [header]
    for rid, rtitle, status, priority, category, requester, assignee, created, breached, met in rows:
        sla = "Breached" if breached else ("Met" if met else ("" if breached is None else "On track"))
        data.append([str(rid), _clip(rtitle, 62), STATUS_LABELS.get(status, status),
                     PRIORITY_LABELS.get(priority, priority), _clip(category, 16), _clip(requester, 24),
                     _clip(assignee or "—", 24), created.strftime("%Y-%m-%d"), sla])
    if not rows:
        story.append(Paragraph("No requests match these filters.", s["body"]))
    else:
        widths = [14 * mm, 80 * mm, 26 * mm, 17 * mm, 22 * mm, 37 * mm, 37 * mm, 20 * mm, 14 * mm]
        table = _grid(data, widths, numeric_from=99)
        table.setStyle(TableStyle([("ALIGN", (0, 0), (0, -1), "RIGHT")]))
        story.append(table)
    doc.build(story, canvasmaker=_numbered_canvas(f"Service Portal · {title} · {_when(generated)}"))


def _clip(value: str | None, length: int) -> str:
    value = " ".join((value or "").split())  # newlines and tabs as single spaces
    return value if len(value) <= length else value[: length - 1] + "…"


# ---------------------------------------------------------------- the SLA report

def sla_report_pdf(path: Path, data, owner: str) -> None:
    """SLA compliance and volume trends for a period, from the daily trend table."""
    s = _styles()
    title = "SLA compliance and volume"
    doc = _doc(path, title)
    width = A4[0] - 30 * mm
    generated = utcnow()
    total = data.total
    period = f"{data.start:%d %b %Y} – {data.end:%d %b %Y}"
    story: list = [
        Paragraph(title, s["title"]),
        Paragraph(f"Period {period} ({(data.end - data.start).days + 1} days, UTC) · generated {_when(generated)} "
                  f"for {escape(owner)}", s["sub"]),
        Paragraph(f"Figures from the hourly trend table, last counted {_when(data.computed_at) or 'never'}.",
                  s["sub"]),
        Paragraph("Summary", s["h2"]),
        _key_figures([("requests created", _n(total.created)), ("resolved", _n(total.resolved)),
                      ("resolved within target", _pct(total.met_rate)),
                      ("SLA breaches", _n(total.breached))], width),
    ]
    if not total.created and not total.resolved and not total.breached:
        story.append(Paragraph("Nothing happened in this period (no requests created, resolved or breached).",
                               s["note"]))
    labels = [b.label for b in data.series]
    unit = "week starting" if data.series_unit == "week" else "day"
    story += [
        Spacer(1, 8),
        _line_chart(f"Requests created and resolved per {data.series_unit}", labels,
                    [[b.created for b in data.series], [b.resolved for b in data.series]],
                    ["Created", "Resolved"], [ACCENT, WARM], width),
        Spacer(1, 6),
        _bar_chart(f"Resolved within the resolution target, per {data.series_unit} (%)", labels,
                   [[round((b.met_rate or 0) * 100, 1) for b in data.series]], ["Met rate"], [GOOD], width,
                   max_value=100),
        Paragraph("A period with no resolutions shows 0%; see the table below for the counts.", s["sub"]),
    ]
    story.append(Paragraph("By priority", s["h2"]))
    story.append(_grid(_bucket_rows("Priority", data.by_priority), _bucket_widths(width)))
    story.append(Paragraph("By category", s["h2"]))
    story.append(_grid(_bucket_rows("Category", data.by_category), _bucket_widths(width)))
    story.append(KeepTogether([
        Paragraph(f"Per {unit}", s["h2"]),
        _grid(_bucket_rows(unit.capitalize(), data.series[:40]), _bucket_widths(width)),
    ]))
    if len(data.series) > 40:
        story.append(_grid(_bucket_rows(unit.capitalize(), data.series[40:]), _bucket_widths(width)))
    story.append(Paragraph("Created, resolved and breached count by the day each happened. Met: resolved "
                           "within the resolution target; missed: resolved after it.", s["sub"]))
    doc.build(story, canvasmaker=_numbered_canvas(f"Service Portal · {title} · {period}"))


def _bucket_rows(first: str, buckets) -> list[list[str]]:
    return [[first, "Created", "Resolved", "Met", "Missed", "Met rate", "Response\nbreaches",
             "Resolution\nbreaches"]] + [
        [b.label, _n(b.created), _n(b.resolved), _n(b.within), _n(b.late), _pct(b.met_rate),
         _n(b.response_breached), _n(b.resolution_breached)] for b in buckets]


def _bucket_widths(width: float) -> list[float]:
    first = 34 * mm
    return [first] + [(width - first) / 7] * 7


def _line_chart(title: str, labels: list[str], series: list[list[int]], names: list[str], fills: list,
                width: float, height: float = 62 * mm) -> Drawing:
    drawing, chart = _chart_frame(HorizontalLineChart(), title, labels, series, width, height, width - 130)
    chart.joinedLines = 1
    for i, fill in enumerate(fills):
        chart.lines[i].strokeColor = fill
        chart.lines[i].strokeWidth = 1.6
    drawing.add(chart)
    drawing.add(_legend(list(zip(fills, names, strict=True)), width - 85, height - 30))
    return drawing
