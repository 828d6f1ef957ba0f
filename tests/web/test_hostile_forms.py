"""Hostile input to pages: numbers that are not finite in the SLA forms, and JSON bodies sent to pages."""

from __future__ import annotations

import pytest

from tests.web.helpers import HX, text_of

NOT_FINITE = ["sNaN", "-sNaN", "NaN", "Infinity", "-Infinity", "1e999", "inf"]
DEFINITION = {"category": "access", "priority": "high", "response_time_hours": "2", "resolution_time_hours": "8",
              "calendar_id": "", "pause_statuses": "waiting_on_customer", "at_risk_percent": "75", "is_active": "y"}
GRANT = {"exemption_type": "resolution", "duration_hours": "24", "reason": "Vendor part on order"}


@pytest.fixture()
def people(make):
    return {"admin": make.user("admin"), "manager": make.user("manager"), "requester": make.user("requester")}


def _definition_hours(app) -> list[tuple[float, float]]:
    from portal.services import sla_admin

    with app.app_context():
        return sorted((float(d.response_time_hours), float(d.resolution_time_hours))
                      for d in sla_admin.list_definitions())


@pytest.mark.parametrize("value", NOT_FINITE)
@pytest.mark.parametrize("field", ["response_time_hours", "resolution_time_hours"])
def test_hostile_form_new_definition_not_finite_hours_422(app, login_client, make, people, field, value):
    make.sla()
    admin = login_client(people["admin"])
    for headers in ({}, HX):
        response = admin.post("/admin/sla", data={**DEFINITION, field: value}, headers=headers)
        assert response.status_code == 422, (value, response.status_code)
        html = text_of(response)
        assert "Not a valid decimal value." in html or "Number must be between 0.01 and 8760." in html
    assert _definition_hours(app) == [(4.0, 24.0)]


@pytest.mark.parametrize("value", NOT_FINITE)
def test_hostile_form_edit_definition_not_finite_hours_422(app, login_client, make, people, value):
    ids = make.sla()
    admin = login_client(people["admin"])
    data = {f"edit-{k}": v for k, v in {**DEFINITION, "response_time_hours": value}.items()
            if k not in ("category", "priority")}

    response = admin.post(f"/admin/sla/{ids.definition_id}", data=data, headers=HX)

    assert response.status_code == 422, (value, response.status_code)
    html = text_of(response)
    assert "Not a valid decimal value." in html or "Number must be between 0.01 and 8760." in html
    assert _definition_hours(app) == [(4.0, 24.0)]


@pytest.mark.parametrize("value", NOT_FINITE)
def test_hostile_form_exemption_not_finite_hours_422(login_client, make, people, value):
    make.sla()
    req = make.request(people["requester"])
    manager = login_client(people["manager"])

    response = manager.post(f"/requests/{req.id}/sla/exemptions", data={**GRANT, "duration_hours": value},
                            headers=HX)

    assert response.status_code == 422, (value, response.status_code)
    html = text_of(response)
    assert "Not a valid decimal value." in html or "Number must be between 0.01 and 8760." in html
    assert make.count("SlaExemption") == 0


# ---------------------------------------------------------------- JSON sent to pages

JSON_BODIES = {"nested": "[" * 100_000, "array": "[1, 2, 3]", "object-values": '{"email": {"a": 1}, "password": [1]}',
               "nested-in-object": '{"email": ' + "[" * 100_000}


@pytest.mark.parametrize("shape", sorted(JSON_BODIES))
def test_hostile_json_to_the_sign_in_page_is_refused_not_500(client, make, shape):
    response = client.post("/login", data=JSON_BODIES[shape], content_type="application/json")

    assert response.status_code in (400, 415), response.status_code
    assert response.mimetype == "text/html"
    assert client.get("/requests").status_code == 302  # not signed in


@pytest.mark.parametrize("shape", sorted(JSON_BODIES))
def test_hostile_json_to_a_signed_in_form_is_refused_not_500(login_client, make, shape):
    client = login_client(make.user("requester"))

    response = client.post("/requests/new", data=JSON_BODIES[shape], content_type="application/json", headers=HX)

    assert response.status_code in (400, 415), response.status_code
    assert make.count("ServiceRequest") == 0
