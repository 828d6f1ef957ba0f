"""The admin's "System status" page: the checks of `flask doctor`, refreshed every 30 s by HTMX."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import make_response, render_template

from portal.admin import bp
from portal.htmx import is_htmx
from portal.policy import permission_required
from portal.services import health

STATUS = "admin/_status.html"


@bp.get("/status")
@permission_required("system.status")
def system_status():
    """Every operator check with what to do about anything not OK; the partial alone for HTMX polls."""
    checks = health.run_checks()
    context = {"checks": checks, "overall": health.worst(checks), "checked_at": datetime.now(UTC),
               "counts": {s: sum(1 for c in checks if c.status == s) for s in (health.OK, health.WARN, health.FAIL)}}
    response = make_response(render_template(STATUS if is_htmx() else "admin/status.html", **context))
    response.headers["Vary"] = "HX-Request"
    return response
