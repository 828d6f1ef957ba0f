"""The signed-in person's own page: who they are and which emails they get."""

from flask import Blueprint

bp = Blueprint("account", __name__)

from portal.account import routes, security_routes  # noqa: E402,F401
