"""The dashboard (managers and admins): summary cards, charts and the SLA breach widget, each an HTMX partial."""

from flask import Blueprint

bp = Blueprint("dashboard", __name__)

from portal.dashboard import routes  # noqa: E402,F401
