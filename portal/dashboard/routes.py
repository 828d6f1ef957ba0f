"""Dashboard page and its polling partials."""

from __future__ import annotations

from flask import render_template

from portal.dashboard import bp
from portal.models._time import utcnow
from portal.policy import role_required
from portal.services import sla_reports


@bp.get("/dashboard")
@role_required("admin")
def dashboard():
    """Summary cards and the breach widget; each part refreshes itself every 30 s."""
    return render_template("dashboard/page.html", summary=sla_reports.dashboard_summary(),
                           breaches=_widget_page(), now=utcnow())


def _widget_page():
    return sla_reports.breach_list(sla_reports.BreachFilters(), 1, 10)


@bp.get("/dashboard/summary")
@role_required("admin")
def summary_cards():
    """The summary cards partial."""
    return render_template("dashboard/_summary.html", summary=sla_reports.dashboard_summary())


@bp.get("/dashboard/breaches")
@role_required("admin")
def breach_widget():
    """The breach widget partial."""
    return render_template("dashboard/_breaches.html", breaches=_widget_page(), now=utcnow())
