"""JSON API v1: bearer-token authenticated, same services and rules as the pages."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from portal.api import routes, sla_routes, token_routes  # noqa: E402,F401
