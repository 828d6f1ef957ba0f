from __future__ import annotations

from datetime import datetime

import pytest

from portal.models import AuditLog, ServiceRequest
from tests.api.helpers import API, error_of

NEW = {"title": "Laptop will not boot", "description": "Black screen after the logo.", "category": "hardware"}


def _path(req_or_id) -> str:
    return f"service-requests/{getattr(req_or_id, 'id', req_or_id)}"


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["items"]]


# ---------------------------------------------------------------- create

def test_create_returns_201_with_location_and_fields(requester, stored):
    response = requester.post("service-requests", json={**NEW, "priority": "high"})

    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"].endswith(f"{API}/service-requests/{body['id']}")
    assert body["title"] == NEW["title"]
    assert body["description"] == NEW["description"]
    assert body["category"] == "hardware"
    assert body["priority"] == "high"
    assert body["status"] == "open"
    assert body["requester"] == {"id": requester.user.id, "name": requester.user.name, "email": requester.user.email}
    assert body["assignee"] is None
    assert body["first_response_at"] is None and body["resolved_at"] is None and body["closed_at"] is None
    datetime.fromisoformat(body["created_at"])
    row = stored(ServiceRequest, body["id"])
    assert row["requester_id"] == requester.user.id and row["status"] == "open" and row["priority"] == "high"


def test_create_location_serves_the_new_request(requester):
    created = requester.post("service-requests", json=NEW)

    response = requester.get(created.headers["Location"])

    assert response.status_code == 200
    assert response.get_json()["id"] == created.get_json()["id"]
    assert response.get_json()["comments"] == []


def test_create_defaults_priority_to_medium_and_trims_title(requester):
    response = requester.post("service-requests", json={**NEW, "title": "   Padded title  "})

    assert response.status_code == 201
    assert response.get_json()["priority"] == "medium"
    assert response.get_json()["title"] == "Padded title"


def test_create_by_staff_makes_them_the_requester(agent):
    response = agent.post("service-requests", json=NEW)

    assert response.status_code == 201
    assert response.get_json()["requester"]["id"] == agent.user.id


def test_create_writes_a_created_audit_row(requester, ctx):
    from sqlalchemy import select

    from portal.extensions import db

    response = requester.post("service-requests", json=NEW)

    entry = db.session.scalars(select(AuditLog).where(AuditLog.action == "request.created")).one()
    assert entry.entity_id == response.get_json()["id"] and entry.actor_id == requester.user.id


@pytest.mark.parametrize("body, field", [
    ({k: v for k, v in NEW.items() if k != "title"}, "title"),
    ({k: v for k, v in NEW.items() if k != "description"}, "description"),
    ({k: v for k, v in NEW.items() if k != "category"}, "category"),
    ({**NEW, "title": "   "}, "title"),
    ({**NEW, "title": "x" * 201}, "title"),
    ({**NEW, "description": "x" * 20_001}, "description"),
    ({**NEW, "priority": "urgent"}, "priority"),
    ({**NEW, "category": "food"}, "category"),
    ({**NEW, "title": 5}, "title"),
    ({**NEW, "title": None}, "title"),
    ({**NEW, "priority": 1}, "priority"),
    ({**NEW, "status": "closed"}, "status"),
    ({**NEW, "requester_id": 1}, "requester_id"),
])
def test_create_invalid_body_is_422_naming_the_field(requester, count_rows, body, field):
    response = requester.post("service-requests", json=body)

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    assert count_rows(ServiceRequest) == 0


def test_create_title_of_exactly_200_chars_is_accepted(requester):
    response = requester.post("service-requests", json={**NEW, "title": "x" * 200})

    assert response.status_code == 201
    assert len(response.get_json()["title"]) == 200


@pytest.mark.parametrize("raw", ['{"title": "x",', "[]", '"text"'])
def test_create_malformed_or_non_object_json_is_400(requester, count_rows, raw):
    response = requester.post("service-requests", data=raw, content_type="application/json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"
    assert count_rows(ServiceRequest) == 0


def test_create_nul_character_in_title_is_rejected_not_500(requester, count_rows):
    response = requester.post("service-requests", json={**NEW, "title": "Printer\u0000 on fire"})

    assert response.status_code == 422, response.get_json()
    assert "title" in error_of(response)["fields"]
    assert count_rows(ServiceRequest) == 0


# ---------------------------------------------------------------- list and visibility

def test_list_requester_sees_only_own_requests(factories, requester):
    own = factories.make_request(requester.user)
    factories.make_request()  # someone else's

    response = requester.get("service-requests")

    assert _ids(response) == [own.id]
    assert response.get_json()["total"] == 1


def test_list_staff_see_all_requests(factories, agent, as_user):
    made = {factories.make_request().id for _ in range(3)}
    manager = as_user(factories.make_user("manager"))

    assert set(_ids(agent.get("service-requests"))) == made
    assert set(_ids(manager.get("service-requests"))) == made


def test_list_newest_first_by_default(factories, agent):
    first, second, third = (factories.make_request() for _ in range(3))

    assert _ids(agent.get("service-requests")) == [third.id, second.id, first.id]


def test_list_item_has_the_request_fields(factories, agent):
    req = factories.make_request(title="Mouse broken")

    item = agent.get("service-requests").get_json()["items"][0]

    assert item["id"] == req.id and item["title"] == "Mouse broken" and item["status"] == "open"
    assert "comments" not in item


@pytest.mark.parametrize("status, expected", [
    ("open", {"open"}),
    ("in_progress", {"in_progress"}),
    ("resolved", {"resolved"}),
    ("active", {"open", "in_progress"}),
    ("done", {"resolved"}),
])
def test_list_filters_by_status(factories, agent, status, expected):
    from portal.services import requests as svc

    made = {}
    for target in ("open", "in_progress", "resolved"):
        req = factories.make_request()
        if target != "open":
            svc.update_request(agent.user, req.id, {"status": target})
        made[req.id] = target

    ids = _ids(agent.get("service-requests", query={"status": status}))

    assert {made[i] for i in ids} == expected
    assert len(ids) == sum(1 for s in made.values() if s in expected)


def test_list_filters_by_priority_and_category(factories, agent):
    high_hw = factories.make_request(priority="high", category="hardware")
    factories.make_request(priority="low", category="hardware")
    high_net = factories.make_request(priority="high", category="network")

    assert set(_ids(agent.get("service-requests", query={"priority": "high"}))) == {high_hw.id, high_net.id}
    assert _ids(agent.get("service-requests", query={"category": "network"})) == [high_net.id]
    assert _ids(agent.get("service-requests", query={"priority": "high", "category": "hardware"})) == [high_hw.id]


def test_list_filters_by_assignee(factories, agent):
    from portal.services import requests as svc

    other_agent = factories.make_user("agent")
    mine, theirs, nobody = (factories.make_request() for _ in range(3))
    svc.assign(agent.user, mine.id, agent.user.id)
    svc.assign(agent.user, theirs.id, other_agent.id)

    assert _ids(agent.get("service-requests", query={"assignee": "me"})) == [mine.id]
    assert _ids(agent.get("service-requests", query={"assignee": "none"})) == [nobody.id]
    assert _ids(agent.get("service-requests", query={"assignee": str(other_agent.id)})) == [theirs.id]
    assert _ids(agent.get("service-requests", query={"assignee": "999999"})) == []


def test_list_text_search_matches_title_description_and_number(factories, agent):
    in_title = factories.make_request(title="VPN drops every hour")
    in_description = factories.make_request(title="Slow laptop", description="Probably the vpn client")
    factories.make_request(title="Printer jam", description="Tray 2")

    assert set(_ids(agent.get("service-requests", query={"q": "VPN"}))) == {in_title.id, in_description.id}
    assert _ids(agent.get("service-requests", query={"q": f"#{in_description.id}"})) == [in_description.id]
    assert _ids(agent.get("service-requests", query={"q": "nothing matches this"})) == []


def test_list_text_search_treats_wildcards_literally(factories, agent):
    literal = factories.make_request(title="Disk 100% full")
    factories.make_request(title="Printer jam", description="no percent sign")

    assert _ids(agent.get("service-requests", query={"q": "100%"})) == [literal.id]
    assert _ids(agent.get("service-requests", query={"q": "_"})) == []


def test_list_requester_search_cannot_reach_others_requests(factories, requester):
    other = factories.make_request(title="Secret project laptop")

    assert _ids(requester.get("service-requests", query={"q": "Secret"})) == []
    assert _ids(requester.get("service-requests", query={"q": str(other.id)})) == []


def test_list_sorts(factories, agent):
    low = factories.make_request(priority="low")
    critical = factories.make_request(priority="critical")
    medium = factories.make_request(priority="medium")

    assert _ids(agent.get("service-requests", query={"sort": "priority"})) == [critical.id, medium.id, low.id]
    assert _ids(agent.get("service-requests", query={"sort": "oldest"})) == [low.id, critical.id, medium.id]


def test_list_paginates_with_totals(factories, agent):
    made = [factories.make_request().id for _ in range(5)]
    newest_first = made[::-1]

    first = agent.get("service-requests", query={"per_page": "2"}).get_json()
    last = agent.get("service-requests", query={"per_page": "2", "page": "3"}).get_json()
    beyond = agent.get("service-requests", query={"per_page": "2", "page": "4"}).get_json()

    assert [i["id"] for i in first["items"]] == newest_first[:2]
    assert (first["page"], first["per_page"], first["total"], first["pages"]) == (1, 2, 5, 3)
    assert [i["id"] for i in last["items"]] == newest_first[4:]
    assert last["page"] == 3
    # Past the end (an old link): the last page, said plainly, rather than an empty page.
    assert beyond["page"] == 3 and [i["id"] for i in beyond["items"]] == newest_first[4:]
    assert beyond["total"] == 5


def test_list_empty_has_one_page(agent):
    body = agent.get("service-requests").get_json()

    assert body == {"items": [], "page": 1, "per_page": 25, "total": 0, "pages": 1,
                    "next_cursor": None, "prev_cursor": None}


def test_list_cursors_walk_every_request_once_in_each_sort(factories, agent, monkeypatch):
    """next_cursor/prev_cursor page by position in every sort (status mixes directions); staff
    totals come from the request tally, exact past COUNT_CAP; the walk covers everything."""
    from sqlalchemy import update

    from portal.extensions import db
    from portal.models import ServiceRequest
    from portal.services.requests import queries

    monkeypatch.setattr(queries, "COUNT_CAP", 4)
    made = [factories.make_request(priority=p) for p in ("low", "high", "critical", "medium", "high", "low", "medium")]
    for req, status in ((made[1], "in_progress"), (made[4], "waiting_on_customer"), (made[6], "closed")):
        db.session.execute(update(ServiceRequest).where(ServiceRequest.id == req.id).values(status=status))
    db.session.commit()
    for sort in ("newest", "oldest", "updated", "priority", "status"):
        first = agent.get("service-requests", query={"per_page": "3", "sort": sort}).get_json()
        assert first["total"] == 7 and first["pages"] == 3 and "total_more_than" not in first
        seen, body, pages = [], first, []
        while True:
            pages.append([i["id"] for i in body["items"]])
            seen += pages[-1]
            if not body["next_cursor"]:
                break
            body = agent.get("service-requests", query={"per_page": "3", "sort": sort,
                                                        "after": body["next_cursor"]}).get_json()
        everything = agent.get("service-requests", query={"per_page": "100", "sort": sort}).get_json()
        assert seen == [i["id"] for i in everything["items"]], sort
        assert sorted(seen) == sorted(r.id for r in made), sort
        back = agent.get("service-requests", query={"per_page": "3", "sort": sort,
                                                    "before": body["prev_cursor"]}).get_json()
        assert [i["id"] for i in back["items"]] == pages[-2], sort


@pytest.mark.parametrize("query", [{"priority": "high", "sort": "priority"}, {"priority": "low", "sort": "priority"},
                                   {"status": "closed", "sort": "status"}, {"status": "open", "sort": "status"}])
def test_list_filter_and_sort_on_the_same_field_walks_exactly_the_filtered_requests(factories, agent, query):
    """A filter said again as the sort's rank (queries._seek_rank) changes no answer: page by page,
    forwards and back, exactly the matching requests, in the sort's order (oldest first within a
    priority, newest first within a status)."""
    from sqlalchemy import update

    from portal.extensions import db
    from portal.models import ServiceRequest

    made = [factories.make_request(priority=p) for p in ("low", "high", "critical", "high", "low", "medium", "high")]
    for req, status in ((made[1], "closed"), (made[4], "closed"), (made[5], "in_progress")):
        db.session.execute(update(ServiceRequest).where(ServiceRequest.id == req.id).values(status=status))
    db.session.commit()
    field, value = next((k, v) for k, v in query.items() if k != "sort")
    matching = [r.id for r in made if getattr(db.session.get(ServiceRequest, r.id), field) == value]
    expected = matching if field == "priority" else matching[::-1]
    assert len(expected) >= 2
    seen, pages = [], []
    body = agent.get("service-requests", query={**query, "per_page": "1"}).get_json()
    while True:
        pages.append([i["id"] for i in body["items"]])
        seen += pages[-1]
        if not body["next_cursor"]:
            break
        body = agent.get("service-requests", query={**query, "per_page": "1", "after": body["next_cursor"]}).get_json()
    assert seen == expected
    back = agent.get("service-requests", query={**query, "per_page": "1", "before": body["prev_cursor"]}).get_json()
    assert [i["id"] for i in back["items"]] == pages[-2]


def test_list_numbered_page_counts_everything_only_past_the_capped_count(factories, requester, monkeypatch):
    """page=N within the capped count needs no exact total (it would cost a count of every row);
    past it the list is counted, so a page beyond the end is still the last page. (A requester's
    list: staff totals come from the request tally, exact at any size.)"""
    from portal.services.requests import queries

    monkeypatch.setattr(queries, "COUNT_CAP", 4)
    newest_first = [factories.make_request(requester.user).id for _ in range(7)][::-1]

    second = requester.get("service-requests", query={"per_page": "2", "page": "2"}).get_json()
    fourth = requester.get("service-requests", query={"per_page": "2", "page": "4"}).get_json()
    beyond = requester.get("service-requests", query={"per_page": "2", "page": "9"}).get_json()

    assert [i["id"] for i in second["items"]] == newest_first[2:4]
    assert second["total"] is None and second["total_more_than"] == 4
    assert [i["id"] for i in fourth["items"]] == newest_first[6:] and fourth["total"] == 7
    assert beyond["page"] == 4 and [i["id"] for i in beyond["items"]] == newest_first[6:]


def test_list_cursor_of_another_sort_or_damaged_is_422(factories, agent):
    factories.make_request()
    factories.make_request()
    cursor = agent.get("service-requests", query={"per_page": "1"}).get_json()["next_cursor"]
    for query in ({"after": cursor, "sort": "oldest"}, {"after": "bm9wZQ"}, {"before": "#$%"}):
        response = agent.get("service-requests", query={"per_page": "1", **query})
        assert response.status_code == 422, query
        assert set(response.get_json()["error"]["fields"]) & {"after", "before"}


def test_list_per_page_over_100_is_refused(agent):
    response = agent.get("service-requests", query={"per_page": "1000"})

    assert response.status_code == 422
    assert response.get_json()["error"]["fields"]["per_page"] == "per_page must be a whole number from 1 to 100."
    assert agent.get("service-requests", query={"per_page": "100"}).get_json()["per_page"] == 100


@pytest.mark.parametrize("query, field", [
    ({"status": "bogus"}, "status"),
    ({"priority": "urgent"}, "priority"),
    ({"category": "food"}, "category"),
    ({"assignee": "someone"}, "assignee"),
    ({"sort": "random"}, "sort"),
    ({"page": "0"}, "page"),
    ({"page": "-1"}, "page"),
    ({"page": "abc"}, "page"),
    ({"per_page": "abc"}, "per_page"),
    ({"per_page": "0"}, "per_page"),
    ({"per_page": "2.5"}, "per_page"),
])
def test_list_invalid_filter_is_422_naming_it(agent, query, field):
    response = agent.get("service-requests", query=query)

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert field in error["fields"]


@pytest.mark.parametrize("query, field", [
    ({"page": "\u00b2"}, "page"),
    ({"per_page": "\u00b2"}, "per_page"),
    ({"assignee": "\u00b2"}, "assignee"),
])
def test_list_non_ascii_digit_filter_is_422_not_500(agent, query, field):
    response = agent.get("service-requests", query=query)

    assert response.status_code == 422
    assert field in error_of(response)["fields"]


@pytest.mark.parametrize("q", ["\u00b2", "#\u00b9"])
def test_list_search_for_non_ascii_digits_is_200_not_500(agent, q):
    response = agent.get("service-requests", query={"q": q})

    assert response.status_code == 200
    assert response.get_json()["items"] == []


def test_list_search_with_nul_character_is_not_500(agent):
    response = agent.get("service-requests", query={"q": "a\u0000b"})

    assert response.status_code in (200, 422)


# ---------------------------------------------------------------- detail

def test_detail_requester_gets_own_request(factories, requester):
    req = factories.make_request(requester.user, title="My monitor flickers")

    response = requester.get(_path(req))

    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == req.id and body["title"] == "My monitor flickers"
    assert body["requester"]["id"] == requester.user.id
    assert body["comments"] == []


def test_detail_requester_gets_404_for_someone_elses_request(factories, requester):
    other = factories.make_request()

    response = requester.get(_path(other))

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_detail_missing_request_is_404(agent):
    for request_id in (12345, 2**31, 10**12):
        response = agent.get(_path(request_id))
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"


def test_detail_staff_see_any_request(factories, agent):
    req = factories.make_request()

    assert agent.get(_path(req)).status_code == 200


def test_detail_includes_comments_but_hides_internal_ones_from_requester(factories, requester, agent):
    from portal.services import requests as svc

    req = factories.make_request(requester.user)
    svc.add_comment(requester.user, req.id, "It happened again")
    svc.add_comment(agent.user, req.id, "Customer's disk is failing", internal=True)
    svc.add_comment(agent.user, req.id, "We will replace the disk")

    as_requester = requester.get(_path(req)).get_json()["comments"]
    as_agent = agent.get(_path(req)).get_json()["comments"]

    assert [c["body"] for c in as_requester] == ["It happened again", "We will replace the disk"]
    assert all(c["internal"] is False for c in as_requester)
    assert [c["body"] for c in as_agent] == [
        "It happened again", "Customer's disk is failing", "We will replace the disk"]
    assert [c["internal"] for c in as_agent] == [False, True, False]
    assert as_agent[0]["author"]["id"] == requester.user.id
    assert as_agent[1]["author"]["id"] == agent.user.id


def test_unknown_api_path_and_method_answer_json_errors(factories, agent):
    req = factories.make_request()

    missing = agent.get("no-such-thing")
    wrong_method = agent("DELETE", _path(req))

    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    assert wrong_method.status_code == 405 and error_of(wrong_method)["code"] == "method_not_allowed"


# ---------------------------------------------------------------- PATCH: success

def test_patch_title_by_requester(factories, requester, stored):
    req = factories.make_request(requester.user)
    before = stored(ServiceRequest, req.id)

    response = requester.patch(_path(req), json={"title": "Printer jammed on floor 3"})

    assert response.status_code == 200
    assert response.get_json()["title"] == "Printer jammed on floor 3"
    row = stored(ServiceRequest, req.id)
    assert row["title"] == "Printer jammed on floor 3"
    assert row["updated_at"] > before["updated_at"]


def test_patch_several_fields_by_staff(factories, agent, stored):
    req = factories.make_request()

    response = agent.patch(_path(req), json={
        "title": "New title", "description": "New text", "category": "network", "priority": "critical"})

    assert response.status_code == 200
    body = response.get_json()
    assert (body["title"], body["description"], body["category"], body["priority"]) == (
        "New title", "New text", "network", "critical")
    row = stored(ServiceRequest, req.id)
    assert (row["title"], row["description"], row["category"], row["priority"]) == (
        "New title", "New text", "network", "critical")


def test_patch_description_only_is_saved_and_bumps_updated_at(factories, requester, stored):
    req = factories.make_request(requester.user)
    before = stored(ServiceRequest, req.id)

    response = requester.patch(_path(req), json={"description": "More detail: it smells of smoke."})

    assert response.status_code == 200
    assert response.get_json()["description"] == "More detail: it smells of smoke."
    row = stored(ServiceRequest, req.id)
    assert row["description"] == "More detail: it smells of smoke."
    assert row["updated_at"] > before["updated_at"]
    assert response.get_json()["updated_at"] != before["updated_at"].isoformat()


def test_patch_description_only_writes_an_audit_row(factories, requester, ctx):
    from sqlalchemy import select

    from portal.extensions import db

    req = factories.make_request(requester.user)

    response = requester.patch(_path(req), json={"description": "More detail: it smells of smoke."})

    assert response.status_code == 200
    actions = db.session.scalars(
        select(AuditLog.action).where(AuditLog.entity_type == "service_request", AuditLog.entity_id == req.id)
        .order_by(AuditLog.id)).all()
    assert actions == ["request.created", "request.updated"]


def test_patch_priority_by_requester_is_403_and_changes_nothing(factories, requester, stored):
    req = factories.make_request(requester.user)
    before = stored(ServiceRequest, req.id)

    response = requester.patch(_path(req), json={"priority": "critical"})

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert stored(ServiceRequest, req.id) == before


@pytest.mark.parametrize("change", [{"category": "software"}, {"assignee_id": None}, {"title": "x", "priority": "low"}])
def test_patch_staff_only_fields_by_requester_are_403(factories, requester, stored, change):
    req = factories.make_request(requester.user)
    before = stored(ServiceRequest, req.id)

    response = requester.patch(_path(req), json=change)

    assert response.status_code == 403
    assert stored(ServiceRequest, req.id) == before


def test_patch_someone_elses_request_is_404(factories, requester, stored):
    other = factories.make_request()
    before = stored(ServiceRequest, other.id)

    response = requester.patch(_path(other), json={"title": "Hijacked"})

    assert response.status_code == 404
    assert stored(ServiceRequest, other.id) == before


def test_patch_missing_request_is_404(agent):
    response = agent.patch(_path(999999), json={"title": "x"})

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


@pytest.mark.parametrize("path", [
    ["in_progress"],
    ["waiting_on_customer", "in_progress", "resolved", "closed"],
    ["resolved", "open"],
    ["in_progress", "open"],
])
def test_patch_allowed_status_transitions_are_200(factories, agent, stored, path):
    req = factories.make_request()

    for status in path:
        response = agent.patch(_path(req), json={"status": status})
        assert response.status_code == 200, (status, response.get_json())
        assert response.get_json()["status"] == status

    assert stored(ServiceRequest, req.id)["status"] == path[-1]


def test_patch_open_to_closed_is_409_with_clear_message_and_changes_nothing(factories, agent, stored, count_rows):
    req = factories.make_request()
    before = stored(ServiceRequest, req.id)
    audit_rows = count_rows(AuditLog)

    response = agent.patch(_path(req), json={"status": "closed"})

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "conflict"
    assert "resolved" in error["message"].lower() and "closed" in error["message"].lower()
    assert "status" in error["fields"]
    assert stored(ServiceRequest, req.id) == before
    assert count_rows(AuditLog) == audit_rows


def test_patch_refused_transition_with_valid_title_changes_neither(factories, agent, stored):
    req = factories.make_request()
    before = stored(ServiceRequest, req.id)

    response = agent.patch(_path(req), json={"title": "Should not stick", "status": "closed"})

    assert response.status_code == 409
    assert stored(ServiceRequest, req.id) == before


def test_patch_closed_request_can_be_reopened(factories, agent, stored):
    req = factories.make_request()
    for status in ("resolved", "closed"):
        assert agent.patch(_path(req), json={"status": status}).status_code == 200
    closed = stored(ServiceRequest, req.id)
    assert closed["closed_at"] is not None and closed["resolved_at"] is not None

    response = agent.patch(_path(req), json={"status": "open"})

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "open" and body["closed_at"] is None and body["resolved_at"] is None
    assert stored(ServiceRequest, req.id)["status"] == "open"


def test_patch_requester_reopens_resolved_closes_it_and_then_it_stays_closed(factories, requester, agent):
    req = factories.make_request(requester.user)
    agent.patch(_path(req), json={"status": "resolved"})

    reopened = requester.patch(_path(req), json={"status": "open"})
    agent.patch(_path(req), json={"status": "resolved"})
    closed = requester.patch(_path(req), json={"status": "closed"})
    refused = requester.patch(_path(req), json={"status": "open"})

    assert reopened.status_code == 200 and reopened.get_json()["status"] == "open"
    assert closed.status_code == 200 and closed.get_json()["closed_at"] is not None
    assert refused.status_code == 409 and "follow-up" in error_of(refused)["message"]


def test_patch_requester_cannot_work_the_request(factories, requester, stored):
    req = factories.make_request(requester.user)
    before = stored(ServiceRequest, req.id)

    response = requester.patch(_path(req), json={"status": "in_progress"})

    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"
    assert stored(ServiceRequest, req.id) == before


def test_patch_requester_cannot_edit_a_resolved_request(factories, requester, agent, stored):
    req = factories.make_request(requester.user)
    agent.patch(_path(req), json={"status": "resolved"})
    before = stored(ServiceRequest, req.id)

    response = requester.patch(_path(req), json={"title": "Too late"})

    assert response.status_code == 409
    assert stored(ServiceRequest, req.id) == before


def test_patch_same_status_is_a_no_op(factories, agent, stored):
    req = factories.make_request()
    before = stored(ServiceRequest, req.id)

    response = agent.patch(_path(req), json={"status": "open"})

    assert response.status_code == 200
    assert stored(ServiceRequest, req.id) == before


def test_patch_in_progress_sets_first_response_at_once(factories, agent, stored):
    req = factories.make_request()
    assert stored(ServiceRequest, req.id)["first_response_at"] is None

    first = agent.patch(_path(req), json={"status": "in_progress"}).get_json()["first_response_at"]
    agent.patch(_path(req), json={"status": "open"})
    again = agent.patch(_path(req), json={"status": "in_progress"}).get_json()["first_response_at"]

    assert first is not None
    assert again == first
    assert stored(ServiceRequest, req.id)["first_response_at"] == datetime.fromisoformat(first)


def test_patch_assign_to_active_staff_and_unassign(factories, agent):
    manager = factories.make_user("manager")
    req = factories.make_request()

    assigned = agent.patch(_path(req), json={"assignee_id": manager.id})
    to_self = agent.patch(_path(req), json={"assignee_id": agent.user.id})
    cleared = agent.patch(_path(req), json={"assignee_id": None})

    assert assigned.status_code == 200
    assert assigned.get_json()["assignee"] == {"id": manager.id, "name": manager.name, "email": manager.email}
    assert to_self.get_json()["assignee"]["id"] == agent.user.id
    assert cleared.status_code == 200 and cleared.get_json()["assignee"] is None


@pytest.mark.parametrize("who", ["requester", "inactive_agent", "missing"])
def test_patch_assignee_must_be_active_staff(factories, agent, stored, who):
    target = {
        "requester": lambda: factories.make_user("requester").id,
        "inactive_agent": lambda: factories.make_user("agent", active=False).id,
        "missing": lambda: 999999,
    }[who]()
    req = factories.make_request()
    before = stored(ServiceRequest, req.id)

    response = agent.patch(_path(req), json={"assignee_id": target})

    assert response.status_code == 422
    assert "assignee_id" in error_of(response)["fields"]
    assert stored(ServiceRequest, req.id) == before


# ---------------------------------------------------------------- PATCH: rejected bodies change nothing

def test_patch_empty_body_is_422(factories, agent, stored):
    req = factories.make_request()
    before = stored(ServiceRequest, req.id)

    response = agent.patch(_path(req), json={})

    assert response.status_code == 422
    assert error_of(response)["code"] == "validation_error"
    assert stored(ServiceRequest, req.id) == before


@pytest.mark.parametrize("raw", ['{"title": "x"', "not json", "[]", '["title"]', "null", "3"])
def test_patch_malformed_or_non_object_json_is_400(factories, agent, stored, raw):
    req = factories.make_request()
    before = stored(ServiceRequest, req.id)

    response = agent.patch(_path(req), data=raw, content_type="application/json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"
    assert stored(ServiceRequest, req.id) == before


def test_patch_without_json_content_type_is_400(factories, agent, stored):
    req = factories.make_request()
    before = stored(ServiceRequest, req.id)

    response = agent.patch(_path(req), data='{"title": "x"}', content_type="text/plain")

    assert response.status_code == 400
    assert stored(ServiceRequest, req.id) == before


@pytest.mark.parametrize("body, field", [
    ({"title": "Fine", "requester_id": 1}, "requester_id"),
    ({"id": 5}, "id"),
    ({"created_at": "2020-01-01T00:00:00+00:00", "title": "Fine"}, "created_at"),
    ({"title": "x" * 201}, "title"),
    ({"title": ""}, "title"),
    ({"title": "   "}, "title"),
    ({"description": ""}, "description"),
    ({"description": "x" * 20_001}, "description"),
    ({"priority": "urgent"}, "priority"),
    ({"status": "done"}, "status"),
    ({"category": "food"}, "category"),
    ({"title": 5}, "title"),
    ({"title": None}, "title"),
    ({"title": ["a"]}, "title"),
    ({"priority": None}, "priority"),
    ({"status": 3}, "status"),
    ({"assignee_id": True}, "assignee_id"),
    ({"assignee_id": "1"}, "assignee_id"),
    ({"assignee_id": 1.5}, "assignee_id"),
    ({"title": "Valid new title", "priority": "urgent"}, "priority"),
    ({"title": "Valid new title", "status": "done"}, "status"),
    ({"priority": "high", "category": "food"}, "category"),
    ({"title": "Valid new title", "assignee_id": 999999}, "assignee_id"),
])
def test_patch_invalid_body_is_422_and_changes_nothing(factories, agent, stored, count_rows, body, field):
    req = factories.make_request()
    before = stored(ServiceRequest, req.id)
    audit_rows = count_rows(AuditLog)

    response = agent.patch(_path(req), json=body)

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert field in error["fields"], error
    assert stored(ServiceRequest, req.id) == before
    assert count_rows(AuditLog) == audit_rows


def test_patch_nul_character_in_title_is_422_not_500(factories, agent, stored):
    req = factories.make_request()
    before = stored(ServiceRequest, req.id)

    response = agent.patch(_path(req), json={"title": "Printer\u0000 on fire"})

    assert response.status_code == 422, response.get_json()
    assert "title" in error_of(response)["fields"]
    assert stored(ServiceRequest, req.id) == before


def test_patch_unknown_field_message_lists_allowed_fields(factories, agent):
    req = factories.make_request()

    response = agent.patch(_path(req), json={"colour": "red"})

    message = error_of(response)["fields"]["colour"]
    assert "title" in message and "assignee_id" in message


def test_patch_reports_every_bad_field_at_once(factories, agent):
    req = factories.make_request()

    response = agent.patch(_path(req), json={"title": 5, "priority": "urgent", "bogus": 1})

    assert response.status_code == 422
    assert {"title", "bogus"} <= set(error_of(response)["fields"])


def test_patch_title_of_exactly_200_chars_is_accepted(factories, agent, stored):
    req = factories.make_request()

    response = agent.patch(_path(req), json={"title": "y" * 200})

    assert response.status_code == 200
    assert stored(ServiceRequest, req.id)["title"] == "y" * 200
