"""Request-body parsing for the API: malformed JSON, unknown fields and wrong types are 4xx."""

from __future__ import annotations

from typing import Any

from flask import request

from portal.models import Comment, ServiceRequest, User
from portal.services.errors import ServiceError, ValidationFailed


class BadJson(ServiceError):
    """The body is not a JSON object."""

    status = 400
    code = "invalid_json"


TYPE_NAMES = {str: "a string", bool: "true or false", int: "an integer"}


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
        # bool is a subclass of int in Python; JSON true is not an id.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            errors[name] = f"Must be {TYPE_NAMES[kind]}{' or null' if nullable else ''}."
    if errors:
        raise ValidationFailed(errors)
    return body


def iso(value) -> str | None:
    return value.isoformat() if value else None


def user_ref(user: User | None) -> dict | None:
    if user is None:
        return None
    return {"id": user.id, "name": user.name, "email": user.email}


def request_json(req: ServiceRequest) -> dict[str, Any]:
    """A service request as the API shows it."""
    return {
        "id": req.id,
        "title": req.title,
        "description": req.description,
        "category": req.category,
        "priority": req.priority,
        "status": req.status,
        "requester": user_ref(req.requester),
        "assignee": user_ref(req.assignee),
        "created_at": iso(req.created_at),
        "updated_at": iso(req.updated_at),
        "first_response_at": iso(req.first_response_at),
        "resolved_at": iso(req.resolved_at),
        "closed_at": iso(req.closed_at),
    }


def comment_json(comment: Comment) -> dict[str, Any]:
    """A comment as the API shows it."""
    return {
        "id": comment.id,
        "author": user_ref(comment.author),
        "body": comment.body,
        "internal": comment.internal,
        "created_at": iso(comment.created_at),
    }
