"""Admin pages: users, categories, SLA definitions, business calendars, failed jobs
and the system status."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from portal.admin import job_routes, routes, sla_routes, status_routes  # noqa: E402,F401
