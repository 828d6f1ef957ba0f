"""Plain helpers shared by the API tests."""

from __future__ import annotations

API = "/api/v1"


def error_of(response) -> dict:
    """The {"code", "message", "fields"?} object of an API error body."""
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], body
    return body["error"]
