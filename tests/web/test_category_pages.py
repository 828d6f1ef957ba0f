"""Admins extend the category table: add, retire and restore categories."""

from __future__ import annotations

import pytest

from tests.web.helpers import text_of

HX = {"HX-Request": "true"}


@pytest.fixture()
def admin(make, login_client):
    return login_client(make.user("admin"))


def _codes(app, active_only=False):
    from portal.services import requests as svc

    with app.app_context():
        return [c.code for c in svc.list_categories(include_inactive=not active_only)]


def test_admin_adds_a_category_that_new_requests_can_use(app, admin, make, login_client):
    response = admin.post("/admin/categories", data={"code": "Facilities", "name": "Facilities"}, headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<div id="categories-admin"')
    assert "Category Facilities added" in html
    assert "facilities" in _codes(app, active_only=True)  # the code is kept lowercase

    requester = login_client(make.user("requester"))
    assert '<option value="facilities">Facilities</option>' in text_of(requester.get("/requests/new"))
    created = requester.post("/requests/new", data={"title": "Broken chair", "category": "facilities",
                                                    "priority": "low", "description": "Leg snapped."})
    assert created.status_code == 303


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"code": "9lives", "name": "Cats"}, "code", "Use 2-40 lowercase letters"),
    ({"code": "has space", "name": "Spaces"}, "code", "Use 2-40 lowercase letters"),
    ({"code": "hardware", "name": "Again"}, "code", "This code is in use."),
    ({"code": "ok-code", "name": ""}, "name", "This field is required."),
])
def test_bad_categories_are_refused_with_a_reason(app, admin, data, field, message):
    before = _codes(app)
    response = admin.post("/admin/categories", data=data, headers=HX)
    assert response.status_code in (409, 422)
    assert message in text_of(response)
    assert _codes(app) == before


def test_retired_category_keeps_old_requests_but_not_new_ones(app, admin, make, login_client):
    requester = make.user("requester")
    old = make.request(requester, category="other")
    response = admin.post("/admin/categories/other/active", data={"active": "false"}, headers=HX)
    assert "Other is retired: new requests cannot choose it." in text_of(response)
    assert "other" not in _codes(app, active_only=True)
    assert make.get_request(old.id).category == "other"

    client = login_client(requester)
    assert 'value="other"' not in text_of(client.get("/requests/new"))
    refused = client.post("/requests/new", data={"title": "x", "category": "other", "priority": "low",
                                                 "description": "y"})
    assert refused.status_code == 422

    admin.post("/admin/categories/other/active", data={"active": "true"})
    assert "other" in _codes(app, active_only=True)


def test_unknown_category_is_404_and_non_admins_are_refused(admin, make, login_client):
    assert admin.post("/admin/categories/nope/active", data={"active": "false"}).status_code == 404
    manager = login_client(make.user("manager"))
    assert manager.get("/admin/categories").status_code == 403
    assert manager.post("/admin/categories", data={"code": "x1", "name": "X"}).status_code == 403
