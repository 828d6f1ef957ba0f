"""The admin dashboard's JSON endpoints (/api/dashboard/admin/...), bearer-token authenticated."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from portal.api.routes import token_required
from portal.api.schemas import iso
from portal.extensions import csrf
from portal.policy import has_role
from portal.services import sla_reports
from portal.services.errors import Forbidden, ValidationFailed

bp = Blueprint("dashboard_api", __name__, url_prefix="/api/dashboard")
csrf.exempt(bp)


def _page_args() -> tuple[int, int]:
    errors = {}
    values = {}
    for name, default, top in (("page", 1, 100_000), ("per_page", 10, 100)):
        raw = request.args.get(name, "")
        if raw == "":
            values[name] = default
        elif not (raw.isascii() and raw.isdecimal()) or not 1 <= int(raw) <= top:
            errors[name] = f"Use a whole number from 1 to {top}."
        else:
            values[name] = int(raw)
    if errors:
        raise ValidationFailed(errors)
    return values["page"], values["per_page"]


def _require_admin() -> None:
    if not has_role(g.api_user, "admin"):
        raise Forbidden("Only admins can read the admin dashboard (managers: /sla/breaches).")


@bp.get("/admin/sla-breaches")
@token_required
def sla_breaches():
    """Open requests that breached or are at risk, most overdue first."""
    _require_admin()
    page_no, per_page = _page_args()
    filters = sla_reports.parse_breach_filters(request.args, strict=True)
    page = sla_reports.breach_list(filters, page_no, per_page)
    return jsonify({
        "items": [{
            "request_id": row.request.id, "title": row.request.title, "priority": row.request.priority,
            "category": row.request.category, "status": row.request.status,
            "assignee": row.request.assignee.name if row.request.assignee else None,
            "state": row.state, "breach_type": row.metric.breach_type, "hours_overdue": row.hours_overdue,
            "hours_left": row.hours_left, "response_due_at": iso(row.metric.response_due_at),
            "resolution_due_at": iso(row.metric.resolution_due_at),
        } for row in page.items],
        "page": page.page, "per_page": page.per_page, "total": page.total, "pages": page.pages,
    })


@bp.get("/admin/summary")
@token_required
def summary():
    """The dashboard's summary cards."""
    _require_admin()
    return jsonify(sla_reports.dashboard_summary())
