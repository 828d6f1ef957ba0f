"""Admin pages: users, categories, SLA definitions, business calendars, failed jobs,
the system status and the database backups."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from portal.admin import backup_routes, job_routes, routes, sla_routes, status_routes  # noqa: E402,F401
