"""Bearer-token authentication for every JSON endpoint (API v1 and the dashboard API)."""

from __future__ import annotations

from functools import wraps

from flask import g, request

from portal.metrics import count_auth_failure
from portal.services import users
from portal.web import json_error


def token_required(view):
    """401 unless `Authorization: Bearer <token>` names an active user's unexpired token."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        user = users.user_for_token(raw.strip()) if scheme.lower() == "bearer" else None
        if scheme.lower() != "bearer":
            count_auth_failure("token", "missing")
        if user is None:
            response = json_error(401, "unauthorized", "Send a valid bearer token (POST /api/v1/auth/token).")
            response[0].headers["WWW-Authenticate"] = 'Bearer realm="api"'
            return response
        g.api_user = user
        return view(*args, **kwargs)

    return wrapped
