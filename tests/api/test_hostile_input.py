"""Hostile request bodies on every JSON endpoint: deep nesting and numbers that are not finite.

Each answer is a 4xx with the API's error body, never a 500.
"""

from __future__ import annotations

import re

import pytest

from portal.policy import SYSTEM
from portal.services import sla, sla_admin
from tests.api.helpers import error_of

DEEP = 100_000
NESTED_BODIES = {
    "array": "[" * DEEP,
    "object": '{"a":' * DEEP,
    "inside-a-field": '{"title": ' + "[" * DEEP,
    "closed-array": "[" * DEEP + "]" * DEEP,
}
# Routes that take a POST but read no body: a nested body is simply not read.
NO_BODY = {"/api/v1/service-requests/{request_id}/sla-exemptions/{exemption_id}/revoke"}


@pytest.fixture()
def world(factories, as_user):
    """An admin caller and one of each thing a JSON route can name: request, definition, exemption."""
    admin = as_user(factories.make_user("admin"))
    definition = sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "medium",
                                                     "response_time_hours": 4, "resolution_time_hours": 24})
    req = factories.make_request(factories.make_user("requester"), category="hardware", priority="medium")
    exemption = sla.grant_exemption(admin.user, req.id, "Vendor part on order", "resolution", None)
    ids = {"request_id": req.id, "definition_id": definition.id, "exemption_id": exemption.id}
    return admin, ids


def _json_write_routes(app) -> list[tuple[str, str]]:
    """(method, rule) of every JSON route that takes a body, as OpenAPI-style templates."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH"}):
            found.append((method, re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)))
    return sorted(found)


def test_hostile_every_json_write_route_is_covered(app):
    routes = _json_write_routes(app)

    assert ("POST", "/api/v1/auth/token") in routes
    assert ("PATCH", "/api/v1/service-requests/{request_id}") in routes
    assert len(routes) >= 7, routes


@pytest.mark.parametrize("shape", sorted(NESTED_BODIES))
def test_hostile_deeply_nested_json_to_token_is_400_without_a_token(api, ctx, shape):
    response = api("POST", "auth/token", data=NESTED_BODIES[shape], content_type="application/json")

    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    assert error_of(response)["code"] == "invalid_json"


@pytest.mark.parametrize("shape", sorted(NESTED_BODIES))
def test_hostile_deeply_nested_json_to_every_json_route_is_400(app, api, world, shape):
    admin, ids = world
    for method, template in _json_write_routes(app):
        path = template.format(**ids)
        response = api(method, path, token=admin.token, data=NESTED_BODIES[shape], content_type="application/json")
        if template in NO_BODY:
            assert response.status_code < 500, (method, path, response.status_code)
            continue
        assert response.status_code == 400, (method, path, response.get_data(as_text=True)[:300])
        assert error_of(response)["code"] == "invalid_json", (method, path)


def test_hostile_nesting_the_parser_accepts_is_still_a_4xx(api, world):
    """Nested deep but within the parser's reach: refused by the field checks, not a 500."""
    admin, _ = world
    body = '{"title": ' + "[" * 500 + "]" * 500 + ', "description": "x", "category": "other"}'

    response = api("POST", "service-requests", token=admin.token, data=body, content_type="application/json")

    assert response.status_code == 422
    assert set(error_of(response)["fields"]) == {"title"}


def test_hostile_huge_integer_literal_is_400(api, ctx):
    """Python refuses int literals over 4300 digits with a ValueError: bad JSON, not a 500."""
    body = '{"email": "a@example.com", "password": ' + "9" * 5000 + "}"

    response = api("POST", "auth/token", data=body, content_type="application/json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


# ---------------------------------------------------------------- numbers that are not finite

NOT_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", '"sNaN"', '"-sNaN"', '"NaN"', '"Infinity"',
              '"1e999"']


def _raw(fields: dict[str, str]) -> str:
    """A JSON object written by hand, so values such as NaN and 1e999 go out as typed."""
    return "{" + ", ".join(f'"{name}": {value}' for name, value in fields.items()) + "}"


@pytest.mark.parametrize("value", NOT_FINITE)
def test_hostile_not_finite_hours_on_new_definition_is_422(api, world, value):
    admin, _ = world
    body = _raw({"category": '"network"', "priority": '"high"', "response_time_hours": value,
                 "resolution_time_hours": "4"})

    response = api("POST", "sla/definitions", token=admin.token, data=body, content_type="application/json")

    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert set(error_of(response)["fields"]) == {"response_time_hours"}


@pytest.mark.parametrize("value", NOT_FINITE)
def test_hostile_not_finite_hours_on_definition_patch_is_422(api, world, value):
    admin, ids = world
    body = _raw({"resolution_time_hours": value})

    response = api("PATCH", f"sla/definitions/{ids['definition_id']}", token=admin.token, data=body,
                   content_type="application/json")

    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert set(error_of(response)["fields"]) == {"resolution_time_hours"}


@pytest.mark.parametrize("value", NOT_FINITE)
def test_hostile_not_finite_exemption_hours_is_422(api, world, value):
    admin, ids = world
    body = _raw({"exemption_type": '"response"', "reason": '"Vendor"', "duration_hours": value})

    response = api("POST", f"service-requests/{ids['request_id']}/sla-exemptions", token=admin.token, data=body,
                   content_type="application/json")

    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert set(error_of(response)["fields"]) == {"duration_hours"}


@pytest.mark.parametrize("value", ["sNaN", "-sNaN", "NaN", "Infinity", "-Infinity", "inf", "1_0", "٣", True])
def test_hostile_services_refuse_what_is_not_a_finite_number(world, value):
    """The services (behind pages and API alike) read hours through one parse."""
    from portal.services.errors import ValidationFailed

    admin, ids = world
    with pytest.raises(ValidationFailed) as refused:
        sla.grant_exemption(admin.user, ids["request_id"], "Vendor", "response", value)
    assert set(refused.value.fields) == {"duration_hours"}
    with pytest.raises(ValidationFailed) as refused:
        sla_admin.update_definition(SYSTEM, ids["definition_id"], {"response_time_hours": value})
    assert set(refused.value.fields) == {"response_time_hours"}
