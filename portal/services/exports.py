"""Exports of the request list (CSV, PDF) and SLA reports: asking for one, building it, handing it out.

A request for an export writes the `export` row and its job (an outbox row) in one unit of work;
the job (jobs/exports.py) calls `build_export`, which writes the file under EXPORT_DIR and records
progress on the row, so the export page can poll it. The list's filters, sort and visibility come
from portal/services/requests/queries.py, the same query the list runs.

CSV is `COPY (SELECT ...) TO STDOUT` straight into the file: constant memory whatever the size,
with spreadsheet formula escaping done in the SELECT. Files over EXPORT_GZIP_OVER_BYTES are gzipped.
"""

from __future__ import annotations

import gzip
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import Select, case, func, literal, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import aliased

from portal import policy
from portal.domain.workflow import PRIORITY_LABELS, STATUS_LABELS
from portal.extensions import db
from portal.models import Category, Export, ServiceRequest, SlaMetric, User
from portal.models._time import utcnow
from portal.paging import as_id
from portal.queueing import enqueue
from portal.replica import read_engine, replica_session
from portal.services.errors import NotFound, ServiceError, ValidationFailed
from portal.services.requests.queries import (
    DATE_FILTERS,
    SORTS,
    STATUS_ANY,
    STATUS_GROUPS,
    describe_date_range,
    filtered_requests,
    parse_filters,
    sort_order,
)
from portal.services.uow import unit_of_work

log = logging.getLogger(__name__)

KIND_LABELS = {"requests_csv": "Requests (CSV)", "requests_pdf": "Requests (PDF)", "sla_report": "SLA report (PDF)"}
FORMATS = {"csv": "requests_csv", "pdf": "requests_pdf"}
FILTER_KEYS = ("status", "priority", "category", "assignee", "created", "resolved", "breached", "q", "sort")
LIST_DAYS = 7                      # the exports page shows this many days
REPORT_MAX_DAYS = 366
# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PROGRESS_EVERY_ROWS = 5_000
PROGRESS_EVERY_SECONDS = 0.5


class ExportFailed(ServiceError):
    """The export cannot be made (not worth retrying); the message is shown on its page."""

    status = 409
    code = "export_failed"


# ---------------------------------------------------------------- asking for one

def export_dir() -> Path:
    """Where export files live (EXPORT_DIR), created on first use."""
    path = Path(current_app.config["EXPORT_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def _expiry() -> datetime:
    return utcnow() + timedelta(days=current_app.config["EXPORT_TTL_DAYS"])


def clean_filters(args: Mapping[str, Any]) -> dict[str, str]:
    """The list's filters and sort from a form, checked; unknown values are refused with a reason."""
    picked = {key: args.get(key) or "" for key in FILTER_KEYS}
    if any(not isinstance(v, str) for v in picked.values()):
        raise ValidationFailed({"filters": "The filters could not be read."}, "The filters could not be read.")
    try:
        f = parse_filters(picked, strict=True)
    except ValidationFailed as exc:
        reason = "Some filters are not valid, so nothing was exported: " + " ".join(exc.fields.values())
        raise ValidationFailed({"filters": reason}, reason) from exc
    return {key: getattr(f, key) for key in FILTER_KEYS}


def request_export(actor: User, fmt: str, args: Mapping[str, Any]) -> Export:
    """Queue a CSV or PDF of the request list as the actor sees it with these filters and sort."""
    policy.require(actor, "reports.export")
    if fmt not in FORMATS:
        raise ValidationFailed({"format": "Choose CSV or PDF."}, "Choose CSV or PDF.")
    filters = clean_filters(args)
    with unit_of_work():
        export = Export(owner_id=actor.id, kind=FORMATS[fmt], params={"filters": filters}, status="queued",
                        rows_done=0, gzipped=False, expires_at=_expiry())
        db.session.add(export)
        db.session.flush()
        enqueue("jobs.exports.build_export", export.id)
    return export


def parse_period(start_raw: Any, end_raw: Any, today: date | None = None) -> tuple[date, date]:
    """A report period from two ISO dates: start on or before end, not in the future, at most a year."""
    today = today or utcnow().date()
    errors: dict[str, str] = {}
    days: dict[str, date] = {}
    for name, raw, label in (("start", start_raw, "Start"), ("end", end_raw, "End")):
        text = (raw or "").strip() if isinstance(raw, str) else ""
        try:
            days[name] = date.fromisoformat(text) if len(text) == 10 else None
        except ValueError:
            days[name] = None
        if days[name] is None:
            errors[name] = f"{label} must be a date like {today.isoformat()}."
        elif days[name] > today:
            errors[name] = f"{label} cannot be in the future."
    if not errors and days["start"] > days["end"]:
        errors["end"] = "End must be on or after the start."
    if not errors and (days["end"] - days["start"]).days + 1 > REPORT_MAX_DAYS:
        errors["end"] = f"A report covers at most {REPORT_MAX_DAYS} days."
    if errors:
        raise ValidationFailed(errors, "The period is not valid.")
    return days["start"], days["end"]


def request_report(actor: User, start_raw: Any, end_raw: Any) -> Export:
    """Queue the SLA compliance and volume report (PDF) for a period, on the `reports` queue."""
    policy.require(actor, "reports.export")
    start, end = parse_period(start_raw, end_raw)
    with unit_of_work():
        export = Export(owner_id=actor.id, kind="sla_report",
                        params={"start": start.isoformat(), "end": end.isoformat()}, status="queued",
                        rows_done=0, gzipped=False, expires_at=_expiry())
        db.session.add(export)
        db.session.flush()
        enqueue("jobs.exports.build_report", export.id)
    return export


# ---------------------------------------------------------------- reading

def get_export(actor: User, export_id: Any) -> Export:
    """The export if the actor owns it (admins: any); NotFound otherwise, never saying it exists."""
    policy.require(actor, "reports.export")
    number = as_id(export_id)
    export = db.session.get(Export, number) if number is not None else None
    if export is None or (export.owner_id != actor.id and not policy.can(actor, "exports.see_all")):
        raise NotFound("That export was not found. Exports are kept for a week.")
    return export


def list_exports(actor: User, limit: int = 100) -> list[Export]:
    """The actor's exports and reports of the last LIST_DAYS days, newest first (index: owner, created)."""
    policy.require(actor, "reports.export")
    stmt = (select(Export).where(Export.owner_id == actor.id,
                                 Export.created_at >= utcnow() - timedelta(days=LIST_DAYS))
            .order_by(Export.created_at.desc(), Export.id.desc()).limit(limit))
    return list(db.session.scalars(stmt))


def file_for_download(actor: User, export_id: Any) -> tuple[Path, str, str]:
    """(path, download name, mimetype) of a finished export the actor may download."""
    export = get_export(actor, export_id)
    if export.status != "done" or not export.file_path:
        raise NotFound("That export has no file yet.")
    path = export_dir() / export.file_path
    if not path.is_file():
        raise NotFound("That export's file is gone (exports are kept for a week). Export again.")
    mimetype = {"requests_csv": "text/csv"}.get(export.kind, "application/pdf")
    if export.gzipped:
        mimetype = "application/gzip"
    return path, export.file_name, mimetype


def filter_labels(filters: Mapping[str, str]) -> list[tuple[str, str]]:
    """The filters of an export as people read them: [(label, value)], "All requests" when none."""
    out: list[tuple[str, str]] = []
    status = filters.get("status") or ""
    if status and status != STATUS_ANY:
        out.append(("Status", {"active": "Open work (not resolved)", "done": "Resolved or closed"}.get(
            status, STATUS_LABELS.get(status, status))))
    if filters.get("priority"):
        out.append(("Priority", PRIORITY_LABELS.get(filters["priority"], filters["priority"])))
    if filters.get("category"):
        name = db.session.scalar(select(Category.name).where(Category.code == filters["category"]))
        out.append(("Category", name or filters["category"]))
    assignee = filters.get("assignee") or ""
    if assignee == "me":
        out.append(("Assignee", "the person who exported"))
    elif assignee == "none":
        out.append(("Assignee", "Unassigned"))
    elif assignee:
        name = db.session.scalar(select(User.name).where(User.id == as_id(assignee)))
        out.append(("Assignee", name or f"user #{assignee}"))
    for name, label in DATE_FILTERS.items():
        if filters.get(name):
            try:
                out.append((label, describe_date_range(filters[name]) + " (UTC)"))
            except ValueError:
                out.append((label, filters[name]))
    if filters.get("q"):
        out.append(("Search", f"“{filters['q']}”"))
    if not out:
        out.append(("Requests", "All"))
    out.append(("Sorted by", SORTS.get(filters.get("sort") or "newest", "Newest first")))
    return out


def short_summary(export: Export) -> str:
    """One line saying what an export holds: its filters, or a report's period."""
    if export.kind == "sla_report":
        return f"{export.params.get('start')} to {export.params.get('end')}"
    return " · ".join(f"{label}: {value}" if label != "Requests" else "All requests"
                      for label, value in filter_labels(export.params.get("filters") or {}) if label != "Sorted by")


# ---------------------------------------------------------------- the queries an export runs

def _filters_of(export: Export):
    return parse_filters(export.params.get("filters") or {})


def export_query(owner: User, filters) -> Select:
    """The requests of an export, ordered as the list orders them (the list's own query)."""
    return filtered_requests(owner, filters).order_by(*sort_order(filters.sort, filters.q))


def _formula_safe(column):
    """A text column with spreadsheet formulas defused: a leading = + - @ tab or CR gets a quote."""
    return case((func.left(column, 1).in_(FORMULA_STARTS), literal("'") + column), else_=column)


def _utc(column):
    """A timestamp as 'YYYY-MM-DD HH:MM:SS' in UTC (the header says so)."""
    return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24:MI:SS")


CSV_HEADER = ("id", "title", "status", "priority", "category", "requester", "requester_email", "assignee",
              "created_utc", "updated_utc", "first_response_utc", "resolved_utc", "closed_utc",
              "response_due_utc", "resolution_due_utc", "sla_breached")


def csv_select(owner: User, filters) -> Select:
    """The CSV's SELECT: one row per request, in the list's order, every text cell formula-safe."""
    requester = aliased(User)
    assignee = aliased(User)
    columns = [
        ServiceRequest.id,
        _formula_safe(ServiceRequest.title),
        case(STATUS_LABELS, value=ServiceRequest.status, else_=ServiceRequest.status),
        case(PRIORITY_LABELS, value=ServiceRequest.priority, else_=ServiceRequest.priority),
        _formula_safe(Category.name),
        _formula_safe(requester.name),
        _formula_safe(requester.email),
        _formula_safe(assignee.name),
        _utc(ServiceRequest.created_at), _utc(ServiceRequest.updated_at), _utc(ServiceRequest.first_response_at),
        _utc(ServiceRequest.resolved_at), _utc(ServiceRequest.closed_at),
        _utc(SlaMetric.response_due_at), _utc(SlaMetric.resolution_due_at),
        case((SlaMetric.is_breached.is_(True), "yes"), (SlaMetric.id.is_not(None), "no"), else_=None),
    ]
    columns = [c.label(name) for c, name in zip(columns, CSV_HEADER, strict=True)]
    return (export_query(owner, filters)
            .with_only_columns(*columns, maintain_column_froms=False)
            .select_from(ServiceRequest)
            .join(Category, Category.code == ServiceRequest.category)
            .join(requester, requester.id == ServiceRequest.requester_id)
            .outerjoin(assignee, assignee.id == ServiceRequest.assignee_id)
            .outerjoin(SlaMetric, SlaMetric.request_id == ServiceRequest.id))


def to_sql(stmt: Select, cursor) -> str:
    """A statement as literal SQL (values quoted by psycopg2 itself), for COPY, which takes no parameters."""
    compiled = stmt.compile(dialect=postgresql.psycopg2.dialect(), compile_kwargs={"render_postcompile": True})
    return cursor.mogrify(str(compiled), compiled.params).decode()


# ---------------------------------------------------------------- building one

Progress = Callable[[int, int | None], None]


def _set(export_id: int, **values) -> None:
    """Write progress on its own short transaction, visible to the page at once."""
    with db.engine.begin() as conn:
        conn.execute(update(Export).where(Export.id == export_id).values(**values))


def _start(export_id: int, kinds: tuple[str, ...]) -> Export | None:
    """Mark the export running; None when there is nothing to do (gone, or already done)."""
    export = db.session.get(Export, export_id)
    if export is None or export.kind not in kinds or export.status == "done":
        return None
    with unit_of_work():
        export.status, export.started_at, export.rows_done, export.error = "running", utcnow(), 0, None
    return export


def build_export(export_id: int, progress: Progress | None = None) -> Export | None:
    """Make the file of a requests export (CSV or PDF); marks it done, or failed with the reason."""
    return _build(export_id, ("requests_csv", "requests_pdf"), progress)


def build_report(export_id: int, progress: Progress | None = None) -> Export | None:
    """Make the PDF of an SLA report from the daily trend table."""
    return _build(export_id, ("sla_report",), progress)


def _build(export_id: int, kinds: tuple[str, ...], progress: Progress | None) -> Export | None:
    export = _start(export_id, kinds)
    if export is None:
        return None
    owner = export.owner
    part: Path | None = None
    try:
        if not policy.can(owner, "reports.export"):
            raise ExportFailed("You can no longer export (your role changed), so the file was not made.")
        stamp = utcnow().strftime("%Y-%m-%d-%H%M")
        token = secrets.token_hex(8)
        # The reads go to the read replica when there is one; the export row (above and below) and
        # the progress (_set, on db.engine) are written on the primary.
        with replica_session():
            if export.kind == "requests_csv":
                name, part = f"requests-{stamp}.csv", export_dir() / f"{export.id}-{token}.csv.part"
                rows, total = _write_csv(export, owner, part, progress)
            elif export.kind == "requests_pdf":
                from portal.services.reports_pdf import requests_pdf

                name, part = f"requests-{stamp}.pdf", export_dir() / f"{export.id}-{token}.pdf.part"
                rows, total = _write_requests_pdf(export, owner, part, progress, requests_pdf)
            else:
                from portal.services.reports import write_report_pdf

                start, end = date.fromisoformat(export.params["start"]), date.fromisoformat(export.params["end"])
                name, part = f"sla-report-{start}-to-{end}.pdf", export_dir() / f"{export.id}-{token}.pdf.part"
                rows = total = write_report_pdf(part, start, end, owner.name)
        final, gzipped = _finish_file(part, export.kind)
        part = None
    except Exception as exc:
        if part is not None:
            part.unlink(missing_ok=True)
        db.session.rollback()
        if isinstance(exc, ExportFailed):
            fail(export_id, exc.message)
            return db.session.get(Export, export_id)
        raise
    with unit_of_work():
        db.session.refresh(export)
        export.status, export.finished_at = "done", utcnow()
        export.rows_done, export.rows_total = rows, total
        export.file_path, export.file_name = final.name, name + (".gz" if gzipped else "")
        export.size_bytes, export.gzipped, export.error = final.stat().st_size, gzipped, None
    return export


def fail(export_id: int, message: str) -> None:
    """Mark an export failed with a message its owner reads on its page."""
    _set(export_id, status="failed", error=message[:500], finished_at=utcnow())


def retrying(export_id: int, wait_seconds: int) -> None:
    """An attempt failed and the job will run again: say so instead of showing it stuck."""
    minutes = max(1, round(wait_seconds / 60))
    _set(export_id, status="queued", error=f"The first attempt failed; it will be tried again in about "
                                           f"{minutes} minute{'s' if minutes != 1 else ''}.")


def _finish_file(part: Path, kind: str) -> tuple[Path, bool]:
    """Move the finished file in place, gzipped when it is a CSV over EXPORT_GZIP_OVER_BYTES."""
    final = part.with_suffix("")  # drop .part
    if kind == "requests_csv" and part.stat().st_size > current_app.config["EXPORT_GZIP_OVER_BYTES"]:
        gz = final.with_name(final.name + ".gz")
        with open(part, "rb") as src, gzip.open(gz, "wb", compresslevel=3) as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
        part.unlink()
        return gz, True
    os.replace(part, final)
    return final, False


class _RowCounter:
    """The file COPY writes into: psycopg2 hands over one row per write(), so counting is exact."""

    def __init__(self, fh, report: Callable[[int], None]):
        self._write = fh.write
        self._report = report
        self.rows = -1  # the header is the first write
        self._next = PROGRESS_EVERY_ROWS
        self._last = time.monotonic()

    def write(self, data: bytes) -> int:
        self.rows += 1
        if self.rows >= self._next:
            self._next = self.rows + PROGRESS_EVERY_ROWS
            now = time.monotonic()
            if now - self._last >= PROGRESS_EVERY_SECONDS:
                self._last = now
                self._report(self.rows)
        return self._write(data)


def _write_csv(export: Export, owner: User, path: Path, progress: Progress | None) -> tuple[int, int]:
    """COPY the export's SELECT into `path`; returns (rows written, rows expected)."""
    filters = _filters_of(export)
    raw = read_engine().raw_connection()  # the replica inside replica_session(), else the primary
    try:
        cur = raw.cursor()
        # One snapshot for the count and the rows, so "n of n" adds up even while people work.
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        count_stmt = select(func.count()).select_from(filtered_requests(owner, filters).order_by(None).subquery())
        cur.execute(to_sql(count_stmt, cur))
        total = cur.fetchone()[0]
        _set(export.id, rows_total=total)
        if progress:
            progress(0, total)

        def report(rows: int) -> None:
            _set(export.id, rows_done=rows)
            if progress:
                progress(rows, total)

        sql = to_sql(csv_select(owner, filters), cur)
        with open(path, "wb", buffering=1024 * 1024) as fh:
            counter = _RowCounter(fh, report)
            cur.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')", counter)
        raw.rollback()
        cur.close()
    finally:
        raw.close()
    return counter.rows, total


def _write_requests_pdf(export: Export, owner: User, path: Path, progress: Progress | None,
                        render) -> tuple[int, int]:
    """The PDF report of the list: summary of every matching request, then the first N rows."""
    filters = _filters_of(export)
    summary = sla_summary(owner, filters)
    total = summary["total"]
    _set(export.id, rows_total=total)
    limit = current_app.config["EXPORT_PDF_MAX_ROWS"]
    requester = aliased(User)
    assignee = aliased(User)
    stmt = (export_query(owner, filters)
            .with_only_columns(ServiceRequest.id, ServiceRequest.title, ServiceRequest.status,
                               ServiceRequest.priority, Category.name, requester.name, assignee.name,
                               ServiceRequest.created_at, SlaMetric.is_breached, SlaMetric.resolution_sla_met,
                               maintain_column_froms=False)
            .select_from(ServiceRequest)
            .join(Category, Category.code == ServiceRequest.category)
            .join(requester, requester.id == ServiceRequest.requester_id)
            .outerjoin(assignee, assignee.id == ServiceRequest.assignee_id)
            .outerjoin(SlaMetric, SlaMetric.request_id == ServiceRequest.id)
            .limit(limit))
    rows = [tuple(r) for r in db.session.execute(stmt)]
    if progress:
        progress(len(rows), total)
    render(path, title="Service requests", filters=filter_labels(export.params.get("filters") or {}),
           owner=owner.name, summary=summary, rows=rows, total=total)
    return len(rows), total


def sla_summary(owner: User, filters) -> dict[str, Any]:
    """Counts over every request the export matches: totals, SLA met rate and breaches by priority."""
    matching = filtered_requests(owner, filters).order_by(None).with_only_columns(
        ServiceRequest.id, ServiceRequest.priority, ServiceRequest.status, maintain_column_froms=False
    ).select_from(ServiceRequest).subquery()
    stmt = (select(matching.c.priority,
                   func.count(),
                   func.count().filter(matching.c.status.in_(STATUS_GROUPS["active"])),
                   func.count().filter(SlaMetric.resolution_sla_met.is_(True)),
                   func.count().filter(SlaMetric.resolution_sla_met.is_(False)),
                   func.count().filter(SlaMetric.is_breached.is_(True)))
            .select_from(matching).outerjoin(SlaMetric, SlaMetric.request_id == matching.c.id)
            .group_by(matching.c.priority))
    by_priority = {p: {"total": 0, "open": 0, "met": 0, "missed": 0, "breached": 0} for p in PRIORITY_LABELS}
    for priority, total, open_, met, missed, breached in db.session.execute(stmt):
        by_priority[priority] = {"total": total, "open": open_, "met": met, "missed": missed, "breached": breached}
    met = sum(v["met"] for v in by_priority.values())
    missed = sum(v["missed"] for v in by_priority.values())
    return {
        "total": sum(v["total"] for v in by_priority.values()),
        "open": sum(v["open"] for v in by_priority.values()),
        "met": met, "missed": missed,
        "met_rate": (met / (met + missed)) if met + missed else None,
        "breached": sum(v["breached"] for v in by_priority.values()),
        "by_priority": by_priority,
    }


# ---------------------------------------------------------------- clean-up

def purge_expired(now: datetime | None = None) -> int:
    """Delete exports past their expiry: the rows, then (after the commit) their files. Returns how many."""
    now = now or utcnow()
    base = export_dir()
    with unit_of_work() as work:
        gone = list(db.session.execute(
            Export.__table__.delete().where(Export.expires_at < now).returning(Export.file_path)).scalars())

        def remove_files() -> None:
            for name in gone:
                if name:
                    target = (base / name).resolve()
                    if target.parent == base.resolve():  # never outside EXPORT_DIR
                        target.unlink(missing_ok=True)

        work.after_commit(remove_files)
    return len(gone)
