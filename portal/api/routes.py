"""API v1 routes."""

from __future__ import annotations

from functools import wraps

from flask import current_app, g, jsonify, url_for

from portal.api import bp
from portal.api.openapi import openapi_document
from portal.api.schemas import comment_json, iso, parse_body, request_json
from portal.extensions import csrf, limiter
from portal.services import requests as svc
from portal.services import users
from portal.web import json_error

csrf.exempt(bp)

REQUEST_FIELDS = {
    "title": (str, False), "description": (str, False), "category": (str, False), "priority": (str, False),
}
PATCH_FIELDS = {**REQUEST_FIELDS, "status": (str, False), "assignee_id": (int, True)}
COMMENT_FIELDS = {"body": (str, False), "internal": (bool, False)}


def token_required(view):
    """401 unless `Authorization: Bearer <token>` names an active user's unexpired token."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        from flask import request

        header = request.headers.get("Authorization", "")
        scheme, _, raw = header.partition(" ")
        user = users.user_for_token(raw.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            response = json_error(401, "unauthorized", "Send a valid bearer token (POST /api/v1/auth/token).")
            response[0].headers["WWW-Authenticate"] = 'Bearer realm="api"'
            return response
        g.api_user = user
        return view(*args, **kwargs)

    return wrapped


@bp.post("/auth/token")
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"],
               deduct_when=lambda response: response.status_code == 401)
def create_token():
    """Exchange email and password for a bearer token."""
    body = parse_body({"email": (str, False), "password": (str, False)}, required=("email", "password"))
    user = users.authenticate(body["email"], body["password"])
    if user is None:
        return json_error(401, "invalid_credentials", "That email and password do not match an active account.")
    raw, token = users.issue_token(user)
    return jsonify({"token": raw, "token_type": "Bearer", "expires_at": iso(token.expires_at)}), 201


@bp.get("/service-requests")
@token_required
def list_service_requests():
    """The caller's visible requests, filtered and paginated."""
    from flask import request

    filters = svc.parse_filters(request.args, default_per_page=25, strict=True)
    page = svc.list_requests(g.api_user, filters)
    return jsonify({
        "items": [request_json(r) for r in page.items],
        "page": page.page, "per_page": page.per_page, "total": page.total, "pages": page.pages,
    })


@bp.post("/service-requests")
@token_required
def create_service_request():
    """Raise a request."""
    body = parse_body(REQUEST_FIELDS, required=("title", "description", "category"))
    req = svc.create_request(g.api_user, body["title"], body["description"], body["category"],
                             body.get("priority", "medium"))
    response = jsonify(request_json(req))
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_service_request", request_id=req.id)
    return response


@bp.get("/service-requests/<int:request_id>")
@token_required
def get_service_request(request_id: int):
    """One request with the comments the caller may see."""
    req = svc.get_request(g.api_user, request_id)
    comments = [e.comment for e in svc.timeline(g.api_user, req) if e.kind == "comment"]
    return jsonify({**request_json(req), "comments": [comment_json(c) for c in comments]})


@bp.patch("/service-requests/<int:request_id>")
@token_required
def update_service_request(request_id: int):
    """Change fields, status or assignee; all or nothing."""
    body = parse_body(PATCH_FIELDS)
    if not body:
        return json_error(422, "validation_error", "Send at least one field to change.")
    req = svc.update_request(g.api_user, request_id, body)
    return jsonify(request_json(req))


@bp.post("/service-requests/<int:request_id>/comments")
@token_required
def add_service_request_comment(request_id: int):
    """Reply on a request (staff may add internal notes)."""
    body = parse_body(COMMENT_FIELDS, required=("body",))
    comment = svc.add_comment(g.api_user, request_id, body["body"], body.get("internal", False))
    return jsonify(comment_json(comment)), 201


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3 description of this API."""
    return jsonify(openapi_document())
