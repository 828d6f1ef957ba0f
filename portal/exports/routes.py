"""Export and report pages. Thin: read the form, call portal/services/exports.py, render."""

from __future__ import annotations

from datetime import timedelta

from flask import render_template, request, send_file, url_for
from flask_login import current_user

from portal.exports import bp
from portal.forms import EmptyForm
from portal.htmx import form_done, form_refused, render_page_or_partial, revalidated_poll
from portal.models._time import utcnow
from portal.policy import permission_required
from portal.services import exports as svc
from portal.services.errors import ServiceError, ValidationFailed

PROGRESS = "exports/_progress.html"
ROWS = "exports/_rows.html"
PRESETS = (("Last 7 days", 7), ("Last 30 days", 30), ("Last 90 days", 90), ("Last 12 months", 365))


@bp.app_context_processor
def _export_filter_keys() -> dict:
    """The filters an export carries, for the request list's export buttons (one list: the service's)."""
    return {"EXPORT_FILTER_KEYS": svc.FILTER_KEYS}


def _list_url_for(filters: dict) -> str:
    """Back to the request list with the filters the export was asked with (the valid ones)."""
    keep = {k: v for k, v in filters.items() if isinstance(v, str) and v and k in svc.FILTER_KEYS}
    return url_for("requests.list_requests", **keep)


@bp.get("/exports")
@permission_required("reports.export")
@revalidated_poll
def list_exports():
    """The user's exports and reports of the last 7 days; HTMX polls the rows while any is running."""
    exports = svc.list_exports(current_user)
    context = {"exports": exports, "labels": svc.KIND_LABELS, "days": svc.LIST_DAYS,
               "summaries": {e.id: svc.short_summary(e) for e in exports}}
    return render_page_or_partial("exports/list.html", ROWS, **context)


@bp.post("/exports")
@permission_required("reports.export")
def create_export():
    """Export the request list with the filters and sort it was showing (CSV or PDF)."""
    form_values = request.form.to_dict()
    back = _list_url_for(form_values)
    try:
        if not EmptyForm().validate_on_submit():
            raise ServiceError("The form expired; reload the page and try again.")
        export = svc.request_export(current_user, request.form.get("format", ""), request.form)
    except ServiceError as exc:
        return form_refused(exc, back)
    what = "CSV" if export.kind == "requests_csv" else "PDF"
    return form_done(f"Your {what} export was queued; this page shows when it is ready.",
                     url_for("exports.show_export", export_id=export.id))


@bp.get("/exports/<int:export_id>")
@permission_required("reports.export")
@revalidated_poll
def show_export(export_id: int):
    """One export: progress while it runs (HTMX polls the partial), then the download link."""
    export = svc.get_export(current_user, export_id)
    context = {"export": export, "labels": svc.KIND_LABELS,
               "filters": svc.filter_labels(export.params.get("filters") or {}) if export.kind != "sla_report"
               else [],
               "list_url": _list_url_for(export.params.get("filters") or {})}
    return render_page_or_partial("exports/show.html", PROGRESS, **context)


@bp.get("/exports/<int:export_id>/download")
@permission_required("reports.export")
def download_export(export_id: int):
    """The file, for its owner and admins only (anyone else: 404)."""
    path, name, mimetype = svc.file_for_download(current_user, export_id)
    return send_file(path, mimetype=mimetype, as_attachment=True, download_name=name, max_age=0)


def _report_context(errors: dict | None = None, start: str = "", end: str = "") -> dict:
    today = utcnow().date()
    return {
        "errors": errors or {},
        "start": start or (today - timedelta(days=29)).isoformat(),
        "end": end or today.isoformat(),
        "today": today,
        "presets": [(label, (today - timedelta(days=days - 1)).isoformat()) for label, days in PRESETS],
        "reports": [e for e in svc.list_exports(current_user) if e.kind == "sla_report"],
        "labels": svc.KIND_LABELS,
        "form": EmptyForm(formdata=None),
    }


@bp.get("/reports")
@permission_required("reports.export")
def reports_page():
    """Ask for an SLA compliance and volume report (PDF) for a period."""
    start, end = request.args.get("start", ""), request.args.get("end", "")
    return render_template("reports/page.html", **_report_context(start=start[:10], end=end[:10]))


@bp.post("/reports")
@permission_required("reports.export")
def create_report():
    """Queue the report on the `reports` queue and go to its progress page; a bad period is shown on the form."""
    start, end = request.form.get("start", ""), request.form.get("end", "")
    try:
        if not EmptyForm().validate_on_submit():
            raise ServiceError("The form expired; reload the page and try again.")
        export = svc.request_report(current_user, start, end)
    except ValidationFailed as exc:
        return render_template("reports/page.html", **_report_context(exc.fields, start, end)), 422
    except ServiceError as exc:
        return form_refused(exc, url_for("exports.reports_page"))
    return form_done("Your report was queued; this page shows when it is ready.",
                     url_for("exports.show_export", export_id=export.id))
