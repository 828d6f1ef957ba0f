"""Breach page and per-request SLA panel. Thin: parse, authorise, call a service, render."""

from __future__ import annotations

from flask import current_app, request, url_for
from flask_login import current_user, login_required

from portal.forms import EmptyForm
from portal.htmx import form_done, form_refused, render_page_or_partial, revalidated_poll
from portal.models._time import utcnow
from portal.paging import PAGE_MAX, whole_number
from portal.policy import can, permission_required
from portal.replica import read_on_replica
from portal.services import requests as svc
from portal.services import sla, sla_reports, users
from portal.services.errors import ServiceError, ValidationFailed
from portal.sla import bp
from portal.sla.forms import ExemptionForm
from portal.sla.panel import panel_context

PANEL = "sla/_panel.html"
TARGETS = "sla/_targets.html"
TIMELINE = "requests/_timeline.html"


def _breach_filters() -> sla_reports.BreachFilters:
    """The page's filters; agents see only what is assigned to them or to nobody."""
    filters = sla_reports.parse_breach_filters(request.args)
    if not can(current_user, "sla.reports"):
        filters.mine_or_unassigned = current_user.id
    return filters


def _breach_table_stamp() -> str | None:
    """The 30-second poll's stamp (the table alone); the full page is never kept."""
    if request.headers.get("HX-Target") != "breach-table":
        return None
    return sla_reports.breach_list_stamp(_breach_filters())


@bp.get("/sla/breaches")
@permission_required("sla.read")
@revalidated_poll(stamp=_breach_table_stamp)
def breaches():
    """Breached and at-risk requests, most overdue first; the table polls every 30 s.

    Managers and admins see every one and the compliance report; agents see, read only, those
    assigned to them or to nobody."""
    filters = _breach_filters()
    report = can(current_user, "sla.reports")
    page_no = whole_number(request.args.get("page", "1"), 1, PAGE_MAX) or 1
    page = sla_reports.breach_list(filters, page_no, current_app.config["PER_PAGE"])
    try:
        days = sla_reports.parse_days(request.args.get("days"))
    except ValidationFailed as exc:
        days = 30
        filters.errors.update(exc.fields)
    return render_page_or_partial(
        "sla/breaches.html", "sla/_breach_table.html", target="breach-table",
        page=page, filters=filters, now=utcnow(),
        # The 30-second poll refreshes only the table; the report is for the full page.
        page_only=lambda: {
            "days": days, "period_choices": (7, 30, 90, 365), "report": report,
            "categories": svc.list_categories(include_inactive=True),
            "staff": users.list_staff() if report else [current_user],
            # Read-only figures: on the read replica when there is one (portal/replica.py).
            **(read_on_replica(lambda: {"compliance": sla_reports.compliance_report(days),
                                        "stats": sla_reports.statistics(days)}) if report else {}),
        },
    )


@bp.get("/requests/<int:request_id>/sla")
@login_required
@revalidated_poll
def request_sla(request_id: int):
    """The SLA panel alone; the targets' 30-second poll (HX-Target: sla-targets) gets just the targets."""
    req = svc.get_request(current_user, request_id)
    return render_page_or_partial(PANEL, TARGETS, target="sla-targets", **panel_context(req))


def _answer(request_id: int, message: str | None = None, exc: ServiceError | None = None,
            form: ExemptionForm | None = None):
    """The SLA panel after an exemption change, with the timeline (which shows it) out of band."""
    req = svc.get_request(current_user, request_id)
    context = {**panel_context(req, form=form), "entries": svc.timeline(current_user, req)}
    back = url_for("requests.show_request", request_id=request_id)
    if exc is not None:
        return form_refused(exc, back, PANEL, context, oob=(TIMELINE,))
    return form_done(message, back, PANEL, context, oob=(TIMELINE,))


@bp.post("/requests/<int:request_id>/sla/exemptions")
@permission_required("sla.exempt")
def grant_exemption(request_id: int):
    """Grant an exemption from the request's SLA panel."""
    svc.get_request(current_user, request_id)
    form = ExemptionForm()
    try:
        if not form.validate_on_submit():
            raise ValidationFailed({name: errors[0] for name, errors in form.errors.items()},
                                   "The exemption was not granted: check the highlighted fields.")
        sla.grant_exemption(current_user, request_id, form.reason.data, form.exemption_type.data,
                            form.duration_hours.data)
    except ServiceError as exc:
        for name, text in exc.fields.items():
            if hasattr(form, name) and text not in getattr(form, name).errors:
                getattr(form, name).errors.append(text)
        return _answer(request_id, exc=exc, form=form)
    return _answer(request_id, "Exemption granted.")


@bp.post("/requests/<int:request_id>/sla/exemptions/<int:exemption_id>/revoke")
@permission_required("sla.exempt")
def revoke_exemption(request_id: int, exemption_id: int):
    """End an exemption now."""
    svc.get_request(current_user, request_id)
    try:
        if not EmptyForm().validate_on_submit():
            raise ValidationFailed({}, "The form expired; reload and try again.")
        sla.revoke_exemption(current_user, request_id, exemption_id)
    except ServiceError as exc:
        return _answer(request_id, exc=exc)
    return _answer(request_id, "Exemption revoked; the clock counts again.")
