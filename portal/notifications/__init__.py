"""In-app notifications: the bell in the top bar, the /notifications list, and @mentions shown in notes."""

from flask import Blueprint

bp = Blueprint("notifications", __name__)

from portal.notifications import routes  # noqa: E402,F401
