"""Dashboard page and its polling partials."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user

from portal.dashboard import bp
from portal.dashboard.charts import dashboard_charts
from portal.htmx import revalidated_poll
from portal.models._time import utcnow
from portal.policy import can, permission_required
from portal.services import dashboard_charts as chart_data
from portal.services import sla_admin, sla_reports


@bp.get("/dashboard")
@permission_required("dashboard.read")
def dashboard():
    """Summary cards, charts and the breach widget, each refreshing itself. Managers oversee every
    request (there are no teams), so they see what admins see, except the admin notices: a reminder
    when a calendar in use has no holidays for the coming year."""
    holiday_year, calendars_without_holidays = (sla_admin.holiday_reminder() if can(current_user, "dashboard.admin")
                                                else (None, []))
    return render_template("dashboard/page.html", summary=sla_reports.dashboard_summary(),
                           breaches=_widget_page(), now=utcnow(), charts=_charts(), holiday_year=holiday_year,
                           calendars_without_holidays=calendars_without_holidays)


def _charts():
    return dashboard_charts(chart_data.chart_data())


def _widget_page():
    return sla_reports.breach_list(sla_reports.BreachFilters(), 1, 10)


@bp.get("/dashboard/summary")
@permission_required("dashboard.read")
@revalidated_poll
def summary_cards():
    """The summary cards partial."""
    return render_template("dashboard/_summary.html", summary=sla_reports.dashboard_summary())


def _widget_stamp() -> str:
    return sla_reports.breach_list_stamp(sla_reports.BreachFilters())


@bp.get("/dashboard/breaches")
@permission_required("dashboard.read")
@revalidated_poll(stamp=_widget_stamp)
def breach_widget():
    """The breach widget partial."""
    return render_template("dashboard/_breaches.html", breaches=_widget_page(), now=utcnow())


@bp.get("/dashboard/charts")
@permission_required("dashboard.read")
@revalidated_poll
def charts():
    """The charts partial."""
    return render_template("dashboard/_charts.html", charts=_charts())
