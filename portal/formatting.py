"""Display formatting for templates and messages: times, durations, sizes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

from portal.domain.workflow import PRIORITY_LABELS, STATUS_LABELS

# Search matches are marked with these private-use characters by the database (ts_headline); the
# `highlight` filter escapes the text and turns each pair into <mark>.
MARK_START, MARK_END = "\ue000", "\ue001"


def format_datetime(value: datetime | None) -> str:
    """'29 Nov 2026 14:05 UTC': the page script turns it into the reader's local time."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%d %b %Y %H:%M UTC")


def time_ago(value: datetime | None, now: datetime | None = None) -> str:
    """A short relative time: 'just now', '5 min ago', '3 h ago', '12 days ago'."""
    if value is None:
        return ""
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    return "1 day ago" if days == 1 else f"{days} days ago"


def format_filesize(size: int) -> str:
    """Bytes as B, KB or MB."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def format_duration(seconds: float | int) -> str:
    """'3 d 4 h', '2 h 5 min', '12 min'."""
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86400)
    hours_part, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours_part} h" if hours_part else f"{days} d"
    if hours_part:
        return f"{hours_part} h {minutes} min" if minutes else f"{hours_part} h"
    return f"{minutes} min"


def format_remaining(seconds: float | None) -> str:
    """'in 2 h 5 min' or '3 h overdue' (the page script keeps it ticking)."""
    if seconds is None:
        return ""
    if seconds < 0:
        return f"{format_duration(seconds)} overdue"
    return f"in {format_duration(seconds)}"


def format_hours(value: float) -> str:
    """A target length: '4 h', '1.5 h', '30 min'."""
    if value < 1:
        return f"{round(value * 60)} min"
    return f"{value:g} h"


def format_day_month(iso_date: str) -> str:
    """'2026-10-26' as '26 Oct'."""
    from datetime import date

    day = date.fromisoformat(iso_date)
    return f"{day.day} {day.strftime('%b')}"


def format_cron(cron: str) -> str:
    """A daily cron line (UTC) in words: '0 2 * * *' as 'every night at 02:00 UTC'; others as the line itself."""
    fields = cron.split()
    if len(fields) == 5 and fields[0].isdigit() and fields[1].isdigit() and fields[2:] == ["*", "*", "*"]:
        hour, minute = int(fields[1]), int(fields[0])
        when = "every night" if hour < 6 or hour >= 22 else "every day"
        return f"{when} at {hour:02d}:{minute:02d} UTC"
    return f"on the cron line “{cron}” (UTC)"


def highlight_marks(value: str) -> Markup:
    """Search-highlighted text (services.requests.queries.highlights) as HTML: escaped, each marked
    run in <mark>; a mark character the text itself contained is dropped, never turned into markup."""
    out, open_mark = [], False
    for part in re.split(f"([{MARK_START}{MARK_END}])", value or ""):
        if part == MARK_START and not open_mark:
            out.append(Markup("<mark>"))
            open_mark = True
        elif part == MARK_END and open_mark:
            out.append(Markup("</mark>"))
            open_mark = False
        elif part not in (MARK_START, MARK_END):
            out.append(escape(part))
    if open_mark:
        out.append(Markup("</mark>"))
    return Markup("").join(out)


# The badges and relative times every list row shows, as plain functions (templates call them as
# globals): a Jinja macro per cell, or Markup.format (a pure-Python formatter), costs several times more.

def status_badge(status: str) -> Markup:
    """<span class="badge status-open">Open</span>."""
    return Markup(f'<span class="badge status-{escape(status)}">{escape(STATUS_LABELS[status])}</span>')


def priority_badge(priority: str) -> Markup:
    """<span class="badge priority-high">High</span>."""
    return Markup(f'<span class="badge priority-{escape(priority)}">{escape(PRIORITY_LABELS[priority])}</span>')


def when(value: datetime | None) -> Markup:
    """A relative time ("3 h ago") with the exact one as its tooltip and machine-readable value."""
    if not value:
        return Markup("")
    return Markup(f'<time datetime="{value.isoformat()}" title="{escape(format_datetime(value))}">'
                  f'{escape(time_ago(value))}</time>')


_NEXT_VERB = {"response": "Respond", "resolution": "Resolve"}


def sla_cell(state: Any) -> Markup:
    """A queue row's SLA: its next target's state and time left ("Resolve in 2 h 10 min", "At risk ·
    40 min left", "Breached 3 h", "Paused"), as a badge; a dash without an SLA. `state` is an
    sla_rules.TargetState (services.sla.next_targets)."""
    if state is None:
        return Markup('<span class="muted" title="No SLA applies">—</span>')
    left = state.seconds_left
    if state.state == "breached":
        text = f"Breached {format_duration(-left)}" if left is not None and left < 0 else "Breached"
    elif state.state == "at_risk":
        text = f"At risk · {format_duration(left)} left" if left is not None and left > 0 else "At risk"
    elif state.state == "running":
        text = f"{_NEXT_VERB[state.target]} in {format_duration(left)}" if left is not None else "On track"
    else:
        text = {"paused": "Paused", "exempt": "Exempt", "met": "Met", "missed": "Missed"}[state.state]
    title = f"{state.target.capitalize()} target" + (
        f", due {format_datetime(state.due_at)}" if state.due_at is not None and state.done_at is None else "")
    return Markup(f'<span class="badge sla-{escape(state.state)}" title="{escape(title)}">{escape(text)}</span>')
