"""The admin dashboard's JSON endpoints (/api/dashboard/admin/...), bearer-token authenticated."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from portal.api.auth import token_required
from portal.api.schemas import iso
from portal.extensions import csrf
from portal.paging import page_args
from portal.policy import require
from portal.services import sla_reports

bp = Blueprint("dashboard_api", __name__, url_prefix="/api/dashboard")
csrf.exempt(bp)


@bp.get("/admin/sla-breaches")
@token_required
def sla_breaches():
    """Open requests that breached or are at risk, most overdue first."""
    require(g.api_user, "dashboard.admin")
    page_no, per_page = page_args(request.args, 10, strict=True)
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
    require(g.api_user, "dashboard.admin")
    return jsonify(sla_reports.dashboard_summary())
