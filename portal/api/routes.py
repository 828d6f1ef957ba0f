"""API v1 routes."""

from __future__ import annotations

from flask import current_app, g, jsonify, request, url_for

from portal.api import bp
from portal.api.auth import token_required
from portal.api.openapi import openapi_document
from portal.api.schemas import comment_json, iso, parse_body, request_json
from portal.extensions import csrf, limiter
from portal.metrics import count_auth_failure
from portal.paging import as_id
from portal.services import brute_force, two_factor, users
from portal.services import requests as svc
from portal.services.errors import RequestClosed, ValidationFailed
from portal.web import json_error

csrf.exempt(bp)

REQUEST_FIELDS = {
    "title": (str, False), "description": (str, False), "category": (str, False), "priority": (str, False),
}
PATCH_FIELDS = {**REQUEST_FIELDS, "status": (str, False), "assignee_id": (int, True), "version": (int, False)}
COMMENT_FIELDS = {"body": (str, False), "internal": (bool, False)}
FOLLOW_UP_FIELDS = {"description": (str, False)}


@bp.post("/auth/token")
@limiter.limit(lambda: current_app.config["TOKEN_MINT_RATE_LIMIT"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"],
               deduct_when=lambda response: response.status_code == 401)
def create_token():
    """Exchange email and password (and, with two-factor on, a code) for a bearer token."""
    body = parse_body({"email": (str, False), "password": (str, False), "code": (str, False)},
                      required=("email", "password"))
    refused = brute_force.refusal(request.remote_addr, body["email"])
    if refused:
        count_auth_failure("password", "locked")
        response, status = json_error(429, refused.reason, refused.message)
        response.headers["Retry-After"] = str(refused.seconds)
        return response, status
    user = users.authenticate(body["email"], body["password"])
    if user is None:
        brute_force.record_failure(request.remote_addr, body["email"])
        return json_error(401, "invalid_credentials", "That email and password do not match an active account.")
    if two_factor.required_for(user):
        return json_error(403, "two_factor_setup_required", "Your role must sign in with two-factor: turn it on "
                          "under Account, Security first.")
    if user.totp_enabled_at is not None:
        if not body.get("code"):
            count_auth_failure("2fa", "missing_code")
            return json_error(401, "two_factor_required", "This account uses two-factor sign-in: send `code`, "
                              "the 6 digits of your authenticator app (or a recovery code).")
        if not two_factor.verify(user.id, body["code"]):
            brute_force.record_failure(request.remote_addr, body["email"])
            return json_error(401, "invalid_code", "That code does not match.")
    brute_force.record_success(body["email"])
    raw, token = users.issue_token(user)
    return jsonify({"token": raw, "token_type": "Bearer", "expires_at": iso(token.expires_at)}), 201


@bp.get("/service-requests")
@token_required
def list_service_requests():
    """The caller's visible requests, filtered and paginated."""
    filters = svc.parse_filters(request.args, default_per_page=25, strict=True)
    page = svc.list_requests(g.api_user, filters)
    body = {
        "items": [request_json(r, g.api_user) for r in page.items],
        "page": page.page, "per_page": page.per_page,
        "total": page.total if page.total_exact else None, "pages": page.pages if page.total_exact else None,
        "next_cursor": page.next_cursor or None, "prev_cursor": page.prev_cursor or None,
    }
    if not page.total_exact:
        body["total_more_than"] = page.total
    return jsonify(body)


@bp.post("/service-requests")
@token_required
def create_service_request():
    """Raise a request."""
    body = parse_body(REQUEST_FIELDS, required=("title", "description", "category"))
    req = svc.create_request(g.api_user, body["title"], body["description"], body["category"],
                             body.get("priority", "medium"))
    response = with_etag(jsonify(request_json(req, g.api_user)), req)
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_service_request", request_id=req.id)
    return response


@bp.get("/service-requests/<int:request_id>")
@token_required
def get_service_request(request_id: int):
    """One request with the comments the caller may see."""
    req = svc.get_request(g.api_user, request_id)
    comments = svc.visible_comments(g.api_user, req)
    return with_etag(jsonify({**request_json(req, g.api_user),
                              "comments": [comment_json(c, g.api_user) for c in comments],
                              "follow_up_ids": svc.follow_ups_of(g.api_user, req)}), req)


@bp.patch("/service-requests/<int:request_id>")
@token_required
def update_service_request(request_id: int):
    """Change fields, status or assignee; all or nothing.

    Send the version you read (`If-Match` with the ETag of GET, or a `version` field) and a
    change made meanwhile by someone else is refused with 409 instead of being overwritten.
    """
    body = parse_body(PATCH_FIELDS)
    expected = expected_version(body.pop("version", None))
    if not body:
        return json_error(422, "validation_error", "Send at least one field to change.")
    req = svc.update_request(g.api_user, request_id, body, expected)
    return with_etag(jsonify(request_json(req, g.api_user)), req)


@bp.post("/service-requests/<int:request_id>/comments")
@token_required
def add_service_request_comment(request_id: int):
    """Reply on a request (staff may add internal notes).

    A requester's reply reopens a resolved request; to a closed one it is refused (409
    `request_closed`, nothing saved) with `follow_up_url`, where the same text opens a follow-up.
    """
    body = parse_body(COMMENT_FIELDS, required=("body",))
    try:
        comment = svc.add_comment(g.api_user, request_id, body["body"], body.get("internal", False))
    except RequestClosed as exc:
        return json_error(exc.status, exc.code, exc.message,
                          follow_up_url=url_for("api.create_follow_up", request_id=exc.request_id))
    return jsonify(comment_json(comment, g.api_user)), 201


@bp.post("/service-requests/<int:request_id>/follow-ups")
@token_required
def create_follow_up(request_id: int):
    """Open a follow-up to your closed request: a new request linked to it, with its category and priority."""
    body = parse_body(FOLLOW_UP_FIELDS, required=("description",))
    req = svc.open_follow_up(g.api_user, request_id, body["description"])
    response = with_etag(jsonify(request_json(req, g.api_user)), req)
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_service_request", request_id=req.id)
    return response


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3 description of this API."""
    return jsonify(openapi_document())


def with_etag(response, req):
    """The request's version as a strong ETag, to send back in If-Match."""
    response.set_etag(str(req.version))
    return response


def expected_version(body_version: int | None) -> int | None:
    """The version a write was made from: If-Match (one ETag from GET, or *) or the body's `version`."""
    header = request.headers.get("If-Match")
    from_header = None
    if header is not None and header.strip() != "*":
        tags = request.if_match
        tag = next(iter(tags), None) if len(tags.as_set()) == 1 and not tags.star_tag else None
        from_header = as_id(tag) if tag is not None else None
        if not from_header:  # not one ETag of digits, or "0"
            raise ValidationFailed({"If-Match": "Send one ETag exactly as GET returned it, e.g. \"3\"."})
    if body_version is not None:
        body_version = svc.parse_version(body_version)
    if from_header is not None and body_version is not None and from_header != body_version:
        raise ValidationFailed({"version": "The version field and If-Match name different versions."})
    return from_header if from_header is not None else body_version
