"""SLA pages: the manager's breach page and the SLA panel on a request."""

from flask import Blueprint

bp = Blueprint("sla", __name__)

from portal.sla import routes  # noqa: E402,F401
