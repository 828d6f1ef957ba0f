"""SQL-shaped input in every filter, sort, search and paging parameter: a 200 with no extra rows or a
clear 4xx, never a 500, and every table intact afterwards."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from tests.web.helpers import HX, text_of

INJECTIONS = [
    "' OR 1=1 --", "1 OR 1=1", "1; DROP TABLE service_request; --", '%\' UNION SELECT email FROM "user" --',
    "') OR ('1'='1", "\\", "\\'", "%", "_", "%%", "1' AND pg_sleep(3) --", "\x00", "a\x00b", "9" * 5000,
    "x" * 10_000, "-1", "0", "2147483648", "1e9", "me' OR '1'='1", "none--", "0001-01-01", "9999-12-31",
    "$1", "::text", "\u202e", "\ud7ff",
]
FEW = {"' OR 1=1 --", "1; DROP TABLE service_request; --", "\x00", "9" * 5000, "0001-01-01", "9999-12-31"}
LIST_PARAMS = ("status", "priority", "category", "assignee", "q", "sort", "page", "per_page")
BREACH_PARAMS = ("priority", "category", "assignee", "state", "from", "to", "page", "per_page", "days")
SECRET = "Secret of another requester"
TABLES = ("User", "ServiceRequest", "Comment", "Category", "SlaDefinition", "SlaMetric", "SlaExemption", "Attachment")


@pytest.fixture()
def world(app, make, login_client):
    """Two requests of the signed-in requester, one of another requester, staff, and breached clocks."""
    from datetime import timedelta

    from portal.models._time import utcnow
    from portal.services import sla

    requester, other = make.user("requester"), make.user("requester", email="victim@example.com")
    admin, manager = make.user("admin"), make.user("manager")
    make.sla()
    own = [make.request(requester, title=f"Own printer {n}").id for n in range(2)]
    make.request(other, title=SECRET, description="victim@example.com")
    with app.app_context():
        sla.run_check(now=utcnow() + timedelta(hours=100))
    counts = {name: make.count(name) for name in TABLES}
    return SimpleNamespace(requester=requester, admin=admin, manager=manager, own=set(own), counts=counts,
                           as_requester=login_client(requester), as_admin=login_client(admin),
                           as_manager=login_client(manager))


def _assert_intact(make, world) -> None:
    assert {name: make.count(name) for name in TABLES} == world.counts


def _assert_answer(response, what) -> None:
    assert response.status_code == 200 or 400 <= response.status_code < 500, (what, response.status_code)


def test_sqli_request_list_page_and_partial(make, world):
    for name in LIST_PARAMS:
        for value in INJECTIONS:
            for headers in ({}, HX, {**HX, "HX-Target": "request-table"}):
                response = world.as_requester.get("/requests", query_string={name: value}, headers=headers)
                _assert_answer(response, (name, value))
                html = text_of(response)
                assert SECRET not in html and "victim@example.com" not in html, (name, value)
    _assert_intact(make, world)


def test_sqli_api_list_is_200_with_own_rows_or_422(app, make, world):
    client = app.test_client()
    auth = {"Authorization": f"Bearer {make.token(world.requester)}"}
    for name in LIST_PARAMS:
        for value in INJECTIONS:
            response = client.get("/api/v1/service-requests", query_string={name: value}, headers=auth)
            assert response.status_code in (200, 422), (name, value, response.status_code)
            assert response.mimetype == "application/json"
            if response.status_code == 200:
                assert {item["id"] for item in response.get_json()["items"]} <= world.own, (name, value)
    # Several at once, and the same name twice.
    response = client.get("/api/v1/service-requests?q=%27+OR+1%3D1+--&q=x&sort=newest;DROP&status=open'--",
                          headers=auth)
    assert response.status_code == 422
    _assert_intact(make, world)


def test_sqli_search_finds_the_literal_text_only(app, make, world):
    """Search is by words: quotes, LIKE wildcards, operators and backslashes are neither SQL nor
    patterns. Symbols alone find nothing (never everything); SQL around words finds what the words do."""
    from portal.extensions import db
    from portal.models import User
    from portal.services import requests as svc

    with app.app_context():
        actor = db.session.get(User, world.requester.id)
        tricky = svc.create_request(actor, "100% done_ish O'Brien \\ path", "x", "hardware", "low").id
    client = app.test_client()
    auth = {"Authorization": f"Bearer {make.token(world.requester)}"}

    def found(q: str) -> set[int]:
        return {item["id"] for item in client.get("/api/v1/service-requests", query_string={"q": q},
                                                  headers=auth).get_json()["items"]}

    for q, expected in (("%", set()), ("_", set()), ("\\", set()), ("%%", set()), ("100%", {tricky}),
                        ("done_ish", {tricky}), ("O'Brien", {tricky}), ("path \\", {tricky}),
                        ("Own printer", world.own)):
        assert found(q) == expected, q
    for q in ("O'Brien' OR 1=1 --", "path' OR '1'='1", "%' OR 'x'='x' AND done --"):
        assert found(q) == {tricky}, q  # every word must match: the OR is a word, not an operator
    assert found("' OR 1=1 --") == found("or 1 1") != set()  # a lone "1" would also look up request #1


def test_sqli_dashboard_sla_pages_and_their_api(app, make, world):
    client = app.test_client()
    auth = {"Authorization": f"Bearer {make.token(world.admin)}"}
    partials = (("/sla/breaches", {**HX, "HX-Target": "breach-table"}), ("/dashboard/breaches", HX))
    pages = (*partials, ("/sla/breaches", {}), ("/dashboard", {}))  # full pages: a few values (they are slower)
    for name in BREACH_PARAMS:
        for value in INJECTIONS:
            for url, headers in pages if value in FEW else partials:
                _assert_answer(world.as_admin.get(url, query_string={name: value}, headers=headers),
                               (url, name, value))
            api = [("/api/dashboard/admin/sla-breaches", name)]
            if name == "days":
                api += [("/api/v1/analytics/sla-statistics", "days"), ("/api/v1/analytics/sla-compliance", "days"),
                        ("/api/v1/auth/tokens", "user_id")]
            for url, key in api:
                response = client.get(url, query_string={key: value}, headers=auth)
                assert response.status_code in (200, 422), (url, key, value, response.status_code)
    _assert_intact(make, world)


def test_sqli_exports_and_reports_refuse_or_export_only_visible_rows(app, make, world):
    from portal.services import exports
    from tests.exports.helpers import csv_rows

    client = app.test_client()
    auth = {"Authorization": f"Bearer {make.token(world.manager)}"}
    made = 0
    for name in ("status", "priority", "category", "assignee", "q", "sort"):
        for value in INJECTIONS[:12]:
            response = world.as_manager.post("/exports", data={"format": "csv", name: value})
            _assert_answer(response, (name, value)) if response.status_code != 303 else None
            created = re.fullmatch(r".*/exports/(\d+)", response.headers.get("Location", ""))
            if created is None:  # refused with the reason, back on the list
                continue
            made += 1
            export_id = int(created.group(1))
            with app.app_context():
                assert exports.build_export(export_id).status == "done", (name, value)
            rows = csv_rows(world.as_manager.get(f"/exports/{export_id}/download").get_data())
            assert len(rows) - 1 <= 3, (name, value)  # never more than the requests there are
            if name == "q":  # text to find: exactly the requests the list's search finds for it
                listed = client.get("/api/v1/service-requests", query_string={"q": value}, headers=auth)
                assert {int(row[0]) for row in rows[1:]} == {item["id"] for item in listed.get_json()["items"]}, value
    assert made >= 12 and make.count("Export") == made
    for value in INJECTIONS:
        _assert_answer(world.as_manager.get("/reports", query_string={"start": value, "end": value}), value)
        response = world.as_manager.post("/reports", data={"start": value, "end": value})
        assert response.status_code in (303, 422), (value, response.status_code)
        if response.status_code == 303:  # a real date, however far back: the report builds
            with app.app_context():
                report_id = int(response.headers["Location"].rsplit("/", 1)[1])
                assert exports.build_report(report_id).status == "done", value
    _assert_intact(make, world)


def test_sqli_sign_in_and_token_forms(app, make, world):
    client = app.test_client()
    for value in INJECTIONS[:12]:
        response = client.post("/login", data={"email": value, "password": value})
        assert response.status_code in (200, 400, 401, 422, 429), (value, response.status_code)
        token = client.post("/api/v1/auth/token", json={"email": "victim@example.com' --", "password": value})
        assert token.status_code in (400, 401, 422, 429), (value, token.status_code)
    assert client.get("/requests").status_code == 302  # nobody got signed in
    _assert_intact(make, world)


def test_sqli_ids_too_large_for_the_database_are_not_found(app, make, world):
    """Ids in paths and filters past PostgreSQL's integer: 404 or 422, never an out-of-range 500."""
    client = app.test_client()
    auth = {"Authorization": f"Bearer {make.token(world.admin)}"}
    for big in ("2147483648", "99999999999", "9" * 30, "9" * 5000):
        for url in (f"/requests/{big}", f"/requests/{big}/timeline", f"/requests/{big}/sla", f"/attachments/{big}"):
            assert world.as_admin.get(url).status_code == 404, url[:60]
        for url in (f"/api/v1/service-requests/{big}", f"/api/v1/service-requests/{big}/sla-metrics"):
            assert client.get(url, headers=auth).status_code == 404, url[:60]
        assert client.delete(f"/api/v1/auth/tokens/{big}", headers=auth).status_code == 404
        assert client.patch(f"/api/v1/sla/definitions/{big}", json={"response_time_hours": 1},
                            headers=auth).status_code == 404
        assert client.get("/api/v1/service-requests", query_string={"assignee": big},
                          headers=auth).status_code == 422
        assert client.get("/api/v1/auth/tokens", query_string={"user_id": big}, headers=auth).status_code == 422
        assert world.as_admin.get("/requests", query_string={"assignee": big}).status_code == 200
    _assert_intact(make, world)


def test_sqli_as_id_refuses_digit_strings_past_the_integer_limit():
    """The 4,300-digit assignee that was a 500: int() raised ValueError before the range check."""
    from portal.paging import MAX_ID, as_id

    assert as_id(str(MAX_ID)) == MAX_ID
    assert as_id(str(MAX_ID + 1)) is None
    assert as_id("9" * 5000) is None
    assert as_id("0" * 12) == 0
