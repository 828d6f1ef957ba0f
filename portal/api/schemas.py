"""Request-body parsing for the API: malformed JSON, unknown fields and wrong types are 4xx."""

from __future__ import annotations

from typing import Any

from flask import request

from portal.models import Comment, ServiceRequest, User
from portal.policy import can
from portal.services.errors import ServiceError, ValidationFailed
from portal.services.sla import as_float
from portal.services.text import unstorable_reason


class BadJson(ServiceError):
    """The body is not a JSON object."""

    status = 400
    code = "invalid_json"


NUMBER = (int, float)
TYPE_NAMES = {str: "a string", bool: "true or false", int: "an integer", NUMBER: "a number", list: "a list"}


def parse_body(fields: dict[str, tuple[type, bool]], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON object in the body, checked against {name: (type, nullable)}."""
    if not request.is_json:
        raise BadJson("Send a JSON object with Content-Type: application/json.")
    body = request.get_json(silent=True)
    if body is None:
        raise BadJson("The request body is not valid JSON.")
    if not isinstance(body, dict):
        raise BadJson("The request body must be a JSON object.")
    errors: dict[str, str] = {}
    for name in body:
        if name not in fields:
            errors[name] = f"Unknown field. Allowed: {', '.join(sorted(fields))}."
    for name in required:
        if name not in body:
            errors[name] = "This field is required."
    for name, value in body.items():
        if name not in fields:
            continue
        kind, nullable = fields[name]
        if value is None and nullable:
            continue
        # bool is a subclass of int in Python; JSON true is not an id or a number.
        if not isinstance(value, kind) or (kind in (int, NUMBER) and isinstance(value, bool)):
            errors[name] = f"Must be {TYPE_NAMES[kind]}{' or null' if nullable else ''}."
    for name, value in body.items():
        texts = value if isinstance(value, list) else [value]
        problem = next((unstorable_reason(t) for t in texts if isinstance(t, str) and unstorable_reason(t)), None)
        if problem and name not in errors:
            errors[name] = problem
    if errors:
        raise ValidationFailed(errors)
    return body


def iso(value) -> str | None:
    return value.isoformat() if value else None


def user_ref(user: User | None, viewer) -> dict | None:
    """A person as `viewer` may see them: staff see email addresses; requesters see names (and their own)."""
    if user is None:
        return None
    ref = {"id": user.id, "name": user.name}
    if can(viewer, "people.see_email") or user.id == getattr(viewer, "id", None):
        ref["email"] = user.email
    return ref


def request_json(req: ServiceRequest, viewer) -> dict[str, Any]:
    """A service request as the API shows it to `viewer`."""
    return {
        "id": req.id,
        "title": req.title,
        "description": req.description,
        "category": req.category,
        "priority": req.priority,
        "status": req.status,
        "requester": user_ref(req.requester, viewer),
        "assignee": user_ref(req.assignee, viewer),
        "created_at": iso(req.created_at),
        "updated_at": iso(req.updated_at),
        "first_response_at": iso(req.first_response_at),
        "resolved_at": iso(req.resolved_at),
        "closed_at": iso(req.closed_at),
        "follow_up_of_id": req.follow_up_of_id,
        "version": req.version,
    }


def comment_json(comment: Comment, viewer) -> dict[str, Any]:
    """A comment as the API shows it to `viewer`."""
    return {
        "id": comment.id,
        "author": user_ref(comment.author, viewer),
        "body": comment.body,
        "internal": comment.internal,
        "created_at": iso(comment.created_at),
    }


def definition_json(d) -> dict[str, Any]:
    """An SLA definition as the API shows it."""
    return {
        "id": d.id, "category": d.category, "priority": d.priority,
        "response_time_hours": float(d.response_time_hours), "resolution_time_hours": float(d.resolution_time_hours),
        "is_active": d.is_active, "calendar_id": d.calendar_id, "pause_statuses": list(d.pause_statuses),
        "at_risk_percent": d.at_risk_percent, "created_at": iso(d.created_at), "updated_at": iso(d.updated_at),
    }


def metric_json(m) -> dict[str, Any]:
    """A request's SLA clock as the API shows it (the guide's sla_metrics entry, and more)."""
    num = as_float
    return {
        "status": m.status,
        "definition_id": m.definition_id,
        "response_time_hours": num(m.response_target_hours),
        "resolution_time_hours": num(m.resolution_target_hours),
        "calendar_id": m.calendar_id,
        "started_at": iso(m.started_at),
        "response_due_at": iso(m.response_due_at),
        "resolution_due_at": iso(m.resolution_due_at),
        "response_warn_at": iso(m.response_warn_at),
        "resolution_warn_at": iso(m.resolution_warn_at),
        "responded_at": iso(m.responded_at),
        "resolved_at": iso(m.resolved_at),
        "paused_seconds": m.paused_seconds,
        "paused_since": iso(m.paused_since),
        "response_sla_met": m.response_sla_met,
        "resolution_sla_met": m.resolution_sla_met,
        "response_at_risk": m.response_at_risk_at is not None and m.responded_at is None,
        "resolution_at_risk": m.resolution_at_risk_at is not None and m.resolved_at is None,
        "is_breached": m.is_breached,
        "breach_type": m.breach_type,
        "created_at": iso(m.created_at),
        "updated_at": iso(m.updated_at),
    }


def exemption_json(x, now, viewer) -> dict[str, Any]:
    """An SLA exemption as the API shows it to `viewer`."""
    return {
        "id": x.id, "exemption_type": x.exemption_type, "reason": x.reason,
        "duration_hours": float(x.duration_hours) if x.duration_hours is not None else None,
        "granted_by": user_ref(x.granted_by, viewer), "granted_at": iso(x.granted_at), "expires_at": iso(x.expires_at),
        "revoked_at": iso(x.revoked_at), "revoked_by": user_ref(x.revoked_by, viewer), "active": x.is_active(now),
    }
