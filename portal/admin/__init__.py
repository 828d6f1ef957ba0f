"""Admin pages: users, categories, SLA definitions, business calendars and failed jobs."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from portal.admin import job_routes, routes, sla_routes  # noqa: E402,F401
