"""Breach page and per-request SLA panel. Thin: parse, authorise, call a service, render."""

from __future__ import annotations

from flask import current_app, flash, render_template, request, url_for
from flask_login import current_user, login_required

from portal.auth.forms import EmptyForm
from portal.htmx import is_htmx, redirect_to, render_page_or_partial, trigger
from portal.models._time import utcnow
from portal.policy import role_required
from portal.services import requests as svc
from portal.services import sla, sla_reports, users
from portal.services.errors import Conflict, Forbidden, ValidationFailed
from portal.sla import bp
from portal.sla.forms import ExemptionForm
from portal.sla.panel import panel_context


@bp.get("/sla/breaches")
@role_required("manager")
def breaches():
    """Breached and at-risk requests, most overdue first; the table polls every 30 s."""
    filters = sla_reports.parse_breach_filters(request.args)
    page_no = request.args.get("page", "1")
    page_no = int(page_no) if page_no.isascii() and page_no.isdecimal() and 0 < int(page_no) < 100_000 else 1
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
            "days": days, "period_choices": (7, 30, 90, 365),
            "categories": svc.list_categories(include_inactive=True), "staff": users.list_staff(),
            "compliance": sla_reports.compliance_report(days), "stats": sla_reports.statistics(days),
        },
    )


@bp.get("/requests/<int:request_id>/sla")
@login_required
def request_sla(request_id: int):
    """The SLA panel alone, for HTMX refreshes."""
    req = svc.get_request(current_user, request_id)
    return render_template("sla/_panel.html", **panel_context(req))


def _panel(req, status: int = 200, **kwargs):
    response = current_app.make_response((render_template("sla/_panel.html", **panel_context(req, **kwargs)), status))
    if status < 400:
        trigger(response, "request-changed")
    return response


@bp.post("/requests/<int:request_id>/sla/exemptions")
@role_required("manager")
def grant_exemption(request_id: int):
    """Grant an exemption from the request's SLA panel."""
    req = svc.get_request(current_user, request_id)
    form = ExemptionForm()
    if not form.validate_on_submit():
        if not is_htmx():
            flash("The exemption was not granted: " + "; ".join(e for errs in form.errors.values() for e in errs),
                  "error")
            return redirect_to(url_for("requests.show_request", request_id=request_id))
        return _panel(req, 422, form=form)
    try:
        sla.grant_exemption(request_id, form.reason.data, form.exemption_type.data, form.duration_hours.data,
                            current_user.id)
    except (ValidationFailed, Conflict, Forbidden) as exc:
        for name, text in exc.fields.items():
            if hasattr(form, name):
                getattr(form, name).errors.append(text)
        if not is_htmx():
            flash(exc.message, "error")
            return redirect_to(url_for("requests.show_request", request_id=request_id))
        return _panel(req, exc.status, form=form, message=None if exc.fields else exc.message, ok=False)
    if not is_htmx():
        flash("Exemption granted.", "success")
        return redirect_to(url_for("requests.show_request", request_id=request_id))
    return _panel(req, message="Exemption granted.")


@bp.post("/requests/<int:request_id>/sla/exemptions/<int:exemption_id>/revoke")
@role_required("manager")
def revoke_exemption(request_id: int, exemption_id: int):
    """End an exemption now."""
    req = svc.get_request(current_user, request_id)
    form = EmptyForm()
    if not form.validate_on_submit():
        return _panel(req, 400, message="The form expired; reload and try again.", ok=False)
    try:
        sla.revoke_exemption(request_id, exemption_id, current_user.id)
    except Conflict as exc:
        if not is_htmx():
            flash(exc.message, "error")
            return redirect_to(url_for("requests.show_request", request_id=request_id))
        return _panel(req, exc.status, message=exc.message, ok=False)
    if not is_htmx():
        flash("Exemption revoked; the clock counts again.", "success")
        return redirect_to(url_for("requests.show_request", request_id=request_id))
    return _panel(req, message="Exemption revoked; the clock counts again.")
