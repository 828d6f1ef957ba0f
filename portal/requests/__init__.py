"""Service request pages: list, new, detail and the HTMX forms that work a request."""

from flask import Blueprint

bp = Blueprint("requests", __name__)

from portal.requests import canned_routes, routes, view_routes  # noqa: E402,F401
