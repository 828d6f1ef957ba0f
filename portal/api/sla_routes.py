"""API v1: SLA definitions, a request's SLA metrics and exemptions, SLA statistics."""

from __future__ import annotations

from flask import g, jsonify, request, url_for

from portal.api import bp
from portal.api.auth import token_required
from portal.api.schemas import (
    NUMBER,
    definition_json,
    exemption_json,
    metric_json,
    parse_body,
)
from portal.models._time import utcnow
from portal.policy import require
from portal.replica import read_on_replica
from portal.services import requests as svc
from portal.services import sla, sla_admin, sla_reports

DEFINITION_FIELDS = {
    "category": (str, False), "priority": (str, False),
    "response_time_hours": (NUMBER, False), "resolution_time_hours": (NUMBER, False),
    "is_active": (bool, False), "calendar_id": (int, True), "pause_statuses": (list, False),
    "at_risk_percent": (int, False),
}
PATCH_DEFINITION_FIELDS = {**DEFINITION_FIELDS, "apply_to_open": (bool, False)}
EXEMPTION_FIELDS = {"exemption_type": (str, False), "reason": (str, False), "duration_hours": (NUMBER, True)}


@bp.get("/sla/definitions")
@token_required
def list_sla_definitions():
    """Every SLA definition (staff only)."""
    require(g.api_user, "sla.read")
    return jsonify({"definitions": [definition_json(d) for d in sla_admin.list_definitions()]})


@bp.post("/sla/definitions")
@token_required
def create_sla_definition():
    """Add a definition (admin only)."""
    require(g.api_user, "sla.configure")
    body = parse_body(DEFINITION_FIELDS, required=("category", "priority", "response_time_hours",
                                                   "resolution_time_hours"))
    definition = sla_admin.create_definition(g.api_user, body)
    response = jsonify(definition_json(definition))
    response.status_code = 201
    response.headers["Location"] = url_for("api.list_sla_definitions") + f"/{definition.id}"
    return response


@bp.patch("/sla/definitions/<int:definition_id>")
@token_required
def update_sla_definition(definition_id: int):
    """Change a definition (admin only); `apply_to_open` rebuilds open clocks in the background."""
    require(g.api_user, "sla.configure")
    body = parse_body(PATCH_DEFINITION_FIELDS)
    apply_to_open = body.pop("apply_to_open", False)
    definition, note = sla_admin.update_definition(g.api_user, definition_id, body, apply_to_open)
    return jsonify({**definition_json(definition), "rebuild": note})


@bp.get("/service-requests/<int:request_id>/sla-metrics")
@token_required
def get_sla_metrics(request_id: int):
    """The request's SLA clock (visible to whoever can see the request)."""
    svc.get_request(g.api_user, request_id)
    metric = sla.get_metric(request_id)
    return jsonify({"sla_metrics": [metric_json(metric)] if metric else []})


@bp.get("/service-requests/<int:request_id>/sla-exemptions")
@token_required
def list_sla_exemptions(request_id: int):
    """All exemptions of a request, with which are active now (staff only)."""
    require(g.api_user, "sla.read")
    svc.get_request(g.api_user, request_id)
    now = utcnow()
    items = [exemption_json(x, now, g.api_user) for x in sla.list_exemptions(request_id)]
    return jsonify({"exemptions": items, "active": [x for x in items if x["active"]]})


@bp.post("/service-requests/<int:request_id>/sla-exemptions")
@token_required
def grant_sla_exemption(request_id: int):
    """Grant an exemption (managers and admins)."""
    require(g.api_user, "sla.exempt")
    svc.get_request(g.api_user, request_id)
    body = parse_body(EXEMPTION_FIELDS, required=("exemption_type", "reason"))
    exemption = sla.grant_exemption(g.api_user, request_id, body["reason"], body["exemption_type"],
                                    body.get("duration_hours"))
    return jsonify(exemption_json(exemption, utcnow(), g.api_user)), 201


@bp.post("/service-requests/<int:request_id>/sla-exemptions/<int:exemption_id>/revoke")
@token_required
def revoke_sla_exemption(request_id: int, exemption_id: int):
    """End an exemption now (managers and admins)."""
    require(g.api_user, "sla.exempt")
    svc.get_request(g.api_user, request_id)
    exemption = sla.revoke_exemption(g.api_user, request_id, exemption_id)
    return jsonify(exemption_json(exemption, utcnow(), g.api_user))


@bp.get("/analytics/sla-statistics")
@token_required
def sla_statistics():
    """Breach counts and compliance over the last `days` days (managers and admins)."""
    require(g.api_user, "sla.reports")
    days = sla_reports.parse_days(request.args.get("days"))
    return jsonify(read_on_replica(lambda: sla_reports.statistics(days)))


@bp.get("/analytics/sla-compliance")
@token_required
def sla_compliance():
    """Share of targets met per category, priority, agent and week (managers and admins)."""
    require(g.api_user, "sla.reports")
    days = sla_reports.parse_days(request.args.get("days"), default=90)
    return jsonify(read_on_replica(lambda: sla_reports.compliance_report(days)))
