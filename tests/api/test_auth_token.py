from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from portal.models import ApiToken
from portal.models._time import utcnow
from portal.policy import SYSTEM
from tests.api.helpers import error_of
from tests.conftest import TEST_PASSWORD

PROTECTED = "service-requests"


def _assert_unauthorized(response):
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert error_of(response)["code"] == "unauthorized"


def test_token_issued_for_valid_credentials(api, factories, count_rows):
    user = factories.make_user("requester")

    response = api("POST", "auth/token", json={"email": user.email, "password": TEST_PASSWORD})

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"token", "token_type", "expires_at"}
    assert body["token_type"] == "Bearer"
    assert isinstance(body["token"], str) and len(body["token"]) >= 32
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert expires_at.tzinfo is not None
    assert utcnow() + timedelta(days=29) < expires_at <= utcnow() + timedelta(days=30, minutes=1)
    assert count_rows(ApiToken) == 1


def test_token_email_matches_regardless_of_case(api, factories):
    user = factories.make_user("agent")

    response = api("POST", "auth/token", json={"email": user.email.upper(), "password": TEST_PASSWORD})

    assert response.status_code == 201


def test_token_works_on_a_protected_endpoint(api, factories, token_for):
    token = token_for(factories.make_user("requester"))

    response = api("GET", PROTECTED, token=token)

    assert response.status_code == 200
    assert response.get_json()["items"] == []


def test_token_each_issue_is_a_distinct_working_token(api, factories, token_for):
    user = factories.make_user("requester")

    first, second = token_for(user), token_for(user)

    assert first != second
    assert api("GET", PROTECTED, token=first).status_code == 200
    assert api("GET", PROTECTED, token=second).status_code == 200


def test_token_wrong_password_is_401_invalid_credentials(api, factories, count_rows):
    user = factories.make_user("requester")

    response = api("POST", "auth/token", json={"email": user.email, "password": "not-the-password"})

    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_credentials"
    assert "token" not in response.get_json()
    assert count_rows(ApiToken) == 0


def test_token_unknown_email_is_401_invalid_credentials(api, count_rows):
    response = api("POST", "auth/token", json={"email": "nobody@example.com", "password": TEST_PASSWORD})

    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_credentials"
    assert count_rows(ApiToken) == 0


def test_token_inactive_user_is_401(api, factories, count_rows):
    user = factories.make_user("agent", active=False)

    response = api("POST", "auth/token", json={"email": user.email, "password": TEST_PASSWORD})

    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_credentials"
    assert count_rows(ApiToken) == 0


@pytest.mark.parametrize("body, missing", [
    ({}, {"email", "password"}),
    ({"email": "someone@example.com"}, {"password"}),
    ({"password": TEST_PASSWORD}, {"email"}),
])
def test_token_missing_fields_is_422_naming_them(api, count_rows, body, missing):
    response = api("POST", "auth/token", json=body)

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == missing
    assert count_rows(ApiToken) == 0


def test_token_wrong_types_and_unknown_fields_are_422(api, factories):
    user = factories.make_user("requester")

    response = api("POST", "auth/token", json={"email": user.email, "password": 12345, "remember": True})

    assert response.status_code == 422
    assert set(error_of(response)["fields"]) == {"password", "remember"}


def test_token_malformed_json_is_400_invalid_json(api):
    response = api("POST", "auth/token", data='{"email": "a@example.com", "password":', content_type="application/json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


@pytest.mark.parametrize("raw", ['["a@example.com", "pw"]', '"a@example.com"', "42", "null"])
def test_token_non_object_json_is_400(api, raw):
    response = api("POST", "auth/token", data=raw, content_type="application/json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


def test_token_form_encoded_body_is_400(api, factories):
    user = factories.make_user("requester")

    response = api("POST", "auth/token", data={"email": user.email, "password": TEST_PASSWORD})

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


def test_protected_endpoint_without_token_is_401(api):
    _assert_unauthorized(api("GET", PROTECTED))


@pytest.mark.parametrize("header", [
    "Bearer not-a-real-token",
    "Bearer ",
    "Bearer",
    "Token abc",
    "Basic dXNlcjpwYXNz",
    "Bearer " + "x" * 500,
])
def test_protected_endpoint_garbage_token_is_401(api, header):
    _assert_unauthorized(api("GET", PROTECTED, headers={"Authorization": header}))


def test_protected_endpoint_token_with_other_scheme_is_401(api, factories, token_for):
    token = token_for(factories.make_user("requester"))

    _assert_unauthorized(api("GET", PROTECTED, headers={"Authorization": f"Basic {token}"}))


def test_protected_endpoint_expired_token_is_401(api, ctx, factories, token_for):
    from portal.extensions import db

    user = factories.make_user("requester")
    token = token_for(user)
    db.session.execute(update(ApiToken).where(ApiToken.user_id == user.id)
                       .values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()

    _assert_unauthorized(api("GET", PROTECTED, token=token))


@pytest.mark.parametrize("method, path", [
    ("GET", "service-requests"),
    ("POST", "service-requests"),
    ("GET", "service-requests/1"),
    ("PATCH", "service-requests/1"),
    ("POST", "service-requests/1/comments"),
])
def test_every_protected_endpoint_without_token_is_401(api, factories, method, path):
    factories.make_request()
    kwargs = {"json": {"title": "x"}} if method != "GET" else {}

    _assert_unauthorized(api(method, path, **kwargs))


def test_deactivated_user_token_stops_working(api, ctx, factories, token_for):
    from portal.services import users

    user = factories.make_user("agent")
    token = token_for(user)
    assert api("GET", PROTECTED, token=token).status_code == 200

    users.set_active(SYSTEM, user.id, False)

    _assert_unauthorized(api("GET", PROTECTED, token=token))


def test_reactivated_user_old_token_stays_dead(api, ctx, factories, token_for):
    from portal.services import users

    user = factories.make_user("agent")
    token = token_for(user)
    users.set_active(SYSTEM, user.id, False)
    users.set_active(SYSTEM, user.id, True)

    _assert_unauthorized(api("GET", PROTECTED, token=token))
    assert api("GET", PROTECTED, token=token_for(user)).status_code == 200


@pytest.fixture()
def strict_login_limit(app):
    previous = app.config["LOGIN_RATE_LIMIT"]
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    yield
    app.config["LOGIN_RATE_LIMIT"] = previous


def test_token_repeated_wrong_passwords_are_rate_limited(api, factories, strict_login_limit):
    user = factories.make_user("requester")
    wrong = {"email": user.email, "password": "not-the-password"}

    statuses = [api("POST", "auth/token", json=wrong).status_code for _ in range(4)]
    blocked = api("POST", "auth/token", json={"email": user.email, "password": TEST_PASSWORD})

    assert statuses == [401, 401, 401, 429]
    assert blocked.status_code == 429
    assert error_of(blocked)["code"] == "too_many_requests"


def test_token_successful_sign_ins_do_not_count_towards_the_limit(api, factories, strict_login_limit):
    user = factories.make_user("requester")
    good = {"email": user.email, "password": TEST_PASSWORD}

    statuses = [api("POST", "auth/token", json=good).status_code for _ in range(5)]

    assert statuses == [201] * 5


def test_token_nul_character_in_email_is_not_500(api, ctx):
    response = api("POST", "auth/token", json={"email": "a\u0000@example.com", "password": TEST_PASSWORD})

    assert response.status_code in (401, 422), response.get_json()
