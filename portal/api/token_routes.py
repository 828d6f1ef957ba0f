"""The caller's API tokens: list them with their last use, revoke one, or revoke the one in hand."""

from __future__ import annotations

from flask import g, jsonify, request

from portal.api import bp
from portal.api.auth import token_required
from portal.api.schemas import iso
from portal.paging import as_id
from portal.services import users
from portal.services.errors import ValidationFailed


def token_json(token, current_id: int | None) -> dict:
    return {"id": token.id, "user_id": token.user_id, "created_at": iso(token.created_at),
            "expires_at": iso(token.expires_at), "last_used_at": iso(token.last_used_at),
            "current": token.id == current_id}


@bp.get("/auth/tokens")
@token_required
def list_tokens():
    """The caller's live tokens (admins: `?user_id=` for someone else's), newest first."""
    user_id = None
    if "user_id" in request.args:
        user_id = as_id(request.args["user_id"])
        if user_id is None:
            raise ValidationFailed({"user_id": "Give a user id (a whole number)."})
    tokens = users.live_tokens(g.api_user, user_id)
    return jsonify({"items": [token_json(t, g.get("api_token_id")) for t in tokens]})


@bp.delete("/auth/tokens/<int:token_id>")
@token_required
def revoke_token(token_id: int):
    """Revoke one of the caller's tokens (admins: anyone's); it stops working at once."""
    users.revoke_token(g.api_user, token_id)
    return "", 204


@bp.delete("/auth/token")
@token_required
def revoke_current_token():
    """Sign out of the API: revoke the token this request carries."""
    users.revoke_token(g.api_user, g.api_token_id)
    return "", 204
