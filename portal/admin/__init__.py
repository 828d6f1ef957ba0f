"""Admin pages: user management (later issues add SLA, calendars and operations here)."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from portal.admin import routes, sla_routes  # noqa: E402,F401
