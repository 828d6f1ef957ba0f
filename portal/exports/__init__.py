"""Exports and reports pages: /exports (a user's files), /exports/<id> (progress), /reports."""

from flask import Blueprint

bp = Blueprint("exports", __name__)

from portal.exports import routes  # noqa: E402,F401
