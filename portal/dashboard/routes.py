"""Dashboard page and its polling partials."""

from __future__ import annotations

from flask import render_template

from portal.dashboard import bp
from portal.htmx import revalidated_poll
from portal.models._time import utcnow
from portal.policy import permission_required
from portal.services import sla_admin, sla_reports


@bp.get("/dashboard")
@permission_required("dashboard.admin")
def dashboard():
    """Summary cards and the breach widget; each part refreshes itself every 30 s. Above them, a reminder
    when a calendar in use has no holidays for the coming year."""
    holiday_year, calendars_without_holidays = sla_admin.holiday_reminder()
    return render_template("dashboard/page.html", summary=sla_reports.dashboard_summary(),
                           breaches=_widget_page(), now=utcnow(), holiday_year=holiday_year,
                           calendars_without_holidays=calendars_without_holidays)


def _widget_page():
    return sla_reports.breach_list(sla_reports.BreachFilters(), 1, 10)


@bp.get("/dashboard/summary")
@permission_required("dashboard.admin")
@revalidated_poll
def summary_cards():
    """The summary cards partial."""
    return render_template("dashboard/_summary.html", summary=sla_reports.dashboard_summary())


@bp.get("/dashboard/breaches")
@permission_required("dashboard.admin")
@revalidated_poll
def breach_widget():
    """The breach widget partial."""
    return render_template("dashboard/_breaches.html", breaches=_widget_page(), now=utcnow())
