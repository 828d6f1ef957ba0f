"""The API's 429: one Content-Type (JSON), the JSON error body and Retry-After."""

from __future__ import annotations

import pytest

from tests.api.helpers import error_of


@pytest.fixture()
def one_attempt(app):
    previous = app.config["LOGIN_RATE_LIMIT"]
    app.config["LOGIN_RATE_LIMIT"] = "1 per minute"
    yield
    app.config["LOGIN_RATE_LIMIT"] = previous


def test_rate_limited_token_request_has_one_json_content_type_and_retry_after(api, factories, one_attempt):
    user = factories.make_user("requester")
    wrong = {"email": user.email, "password": "not-the-password"}
    assert api("POST", "auth/token", json=wrong).status_code == 401

    response = api("POST", "auth/token", json=wrong)

    assert response.status_code == 429
    raw = [(name.lower(), value) for name, value in response.headers.to_wsgi_list()]
    content_types = [value for name, value in raw if name == "content-type"]
    assert content_types == ["application/json"], raw
    assert error_of(response)["code"] == "too_many_requests"
    retry_after = [value for name, value in raw if name == "retry-after"]
    assert len(retry_after) == 1 and int(retry_after[0]) > 0, raw
