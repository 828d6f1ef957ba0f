from __future__ import annotations

from datetime import datetime

import pytest

from portal.models import Comment, ServiceRequest
from tests.api.helpers import error_of


@pytest.fixture()
def own_request(factories, requester):
    return factories.make_request(requester.user)


def _comments(req) -> str:
    return f"service-requests/{req.id}/comments"


def _detail(caller, req) -> dict:
    response = caller.get(f"service-requests/{req.id}")
    assert response.status_code == 200
    return response.get_json()


def test_comment_requester_on_own_request_is_201(requester, own_request, stored):
    response = requester.post(_comments(own_request), json={"body": "  Still broken after a restart.  "})

    assert response.status_code == 201
    body = response.get_json()
    assert body["body"] == "Still broken after a restart."
    assert body["internal"] is False
    assert body["author"]["id"] == requester.user.id
    datetime.fromisoformat(body["created_at"])
    row = stored(Comment, body["id"])
    assert row["request_id"] == own_request.id and row["author_id"] == requester.user.id
    assert [c["id"] for c in _detail(requester, own_request)["comments"]] == [body["id"]]


def test_comment_on_someone_elses_request_is_404(factories, requester, count_rows):
    other = factories.make_request()

    response = requester.post(_comments(other), json={"body": "Let me in"})

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert count_rows(Comment) == 0


def test_comment_on_missing_request_is_404(agent, count_rows):
    response = agent.post("service-requests/999999/comments", json={"body": "Hello"})

    assert response.status_code == 404
    assert count_rows(Comment) == 0


def test_comment_requester_internal_note_is_403(requester, own_request, count_rows):
    response = requester.post(_comments(own_request), json={"body": "Secret", "internal": True})

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert count_rows(Comment) == 0


def test_comment_requester_may_say_internal_false(requester, own_request):
    response = requester.post(_comments(own_request), json={"body": "Public", "internal": False})

    assert response.status_code == 201


def test_comment_agent_internal_note_hidden_from_requester(requester, agent, own_request):
    note = agent.post(_comments(own_request), json={"body": "User deleted system32 again", "internal": True})
    reply = agent.post(_comments(own_request), json={"body": "Fixed it for you"})

    assert note.status_code == 201 and note.get_json()["internal"] is True
    assert [c["body"] for c in _detail(requester, own_request)["comments"]] == ["Fixed it for you"]
    assert [c["id"] for c in _detail(agent, own_request)["comments"]] == [
        note.get_json()["id"], reply.get_json()["id"]]


def test_comment_first_public_agent_reply_sets_first_response_at(agent, requester, own_request):
    assert _detail(agent, own_request)["first_response_at"] is None

    reply = agent.post(_comments(own_request), json={"body": "Looking into it"})
    first = _detail(requester, own_request)["first_response_at"]
    agent.post(_comments(own_request), json={"body": "Still looking"})

    assert first == reply.get_json()["created_at"]
    assert _detail(requester, own_request)["first_response_at"] == first


def test_comment_internal_note_does_not_set_first_response_at(agent, own_request, stored):
    response = agent.post(_comments(own_request), json={"body": "Checking logs first", "internal": True})

    assert response.status_code == 201
    assert _detail(agent, own_request)["first_response_at"] is None
    assert stored(ServiceRequest, own_request.id)["first_response_at"] is None


def test_comment_requester_reply_does_not_set_first_response_at(requester, agent, own_request):
    requester.post(_comments(own_request), json={"body": "Any news?"})

    assert _detail(agent, own_request)["first_response_at"] is None


def test_comment_requester_reply_moves_waiting_request_back_to_in_progress(requester, agent, own_request):
    agent.patch(f"service-requests/{own_request.id}", json={"status": "waiting_on_customer"})

    requester.post(_comments(own_request), json={"body": "Here is the screenshot you asked for"})

    assert _detail(agent, own_request)["status"] == "in_progress"


@pytest.mark.parametrize("body, field", [
    ({"body": ""}, "body"),
    ({"body": "   \n "}, "body"),
    ({"body": "x" * 20_001}, "body"),
    ({}, "body"),
    ({"body": None}, "body"),
    ({"body": 42}, "body"),
    ({"body": "Hi", "internal": "yes"}, "internal"),
    ({"body": "Hi", "internal": 1}, "internal"),
    ({"body": "Hi", "author_id": 1}, "author_id"),
    ({"body": "Hi", "attachments": []}, "attachments"),
])
def test_comment_invalid_body_is_422_naming_the_field(agent, own_request, stored, count_rows, body, field):
    before = stored(ServiceRequest, own_request.id)

    response = agent.post(_comments(own_request), json=body)

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    assert count_rows(Comment) == 0
    assert stored(ServiceRequest, own_request.id) == before


def test_comment_body_of_exactly_20000_chars_is_accepted(agent, own_request):
    response = agent.post(_comments(own_request), json={"body": "x" * 20_000})

    assert response.status_code == 201
    assert len(response.get_json()["body"]) == 20_000


@pytest.mark.parametrize("raw", ['{"body": "x"', "[]", '"just text"'])
def test_comment_malformed_or_non_object_json_is_400(agent, own_request, count_rows, raw):
    response = agent.post(_comments(own_request), data=raw, content_type="application/json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"
    assert count_rows(Comment) == 0


def test_comment_nul_character_in_body_is_rejected_not_500(agent, own_request, count_rows):
    response = agent.post(_comments(own_request), json={"body": "before\u0000after"})

    assert response.status_code == 422, response.get_json()
    assert "body" in error_of(response)["fields"]
    assert count_rows(Comment) == 0


# ---------------------------------------------------------------- finished requests and follow-ups

def _finish(agent, req, status: str) -> None:
    """Resolve `req` as `agent` (and close it, for "closed")."""
    for step in ("resolved", "closed")[: 2 if status == "closed" else 1]:
        assert agent.patch(f"service-requests/{req.id}", json={"status": step}).status_code == 200


def test_comment_requester_reply_on_resolved_request_reopens_it(requester, agent, own_request):
    _finish(agent, own_request, "resolved")

    response = requester.post(_comments(own_request), json={"body": "It is broken again."})

    assert response.status_code == 201
    detail = _detail(requester, own_request)
    assert (detail["status"], detail["resolved_at"], detail["closed_at"]) == ("open", None, None)
    assert [c["body"] for c in detail["comments"]] == ["It is broken again."]


def test_comment_requester_reply_on_closed_request_is_409_with_the_follow_up_url(requester, agent, own_request,
                                                                                 stored, count_rows):
    _finish(agent, own_request, "closed")
    version = stored(ServiceRequest, own_request.id)["version"]

    response = requester.post(_comments(own_request), json={"body": "It is broken again."})

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "request_closed"
    assert f"#{own_request.id} is closed" in error["message"] and "follow-up" in error["message"]
    assert error["follow_up_url"] == f"/api/v1/service-requests/{own_request.id}/follow-ups"
    assert count_rows(Comment) == 0
    row = stored(ServiceRequest, own_request.id)
    assert (row["status"], row["version"]) == ("closed", version)


def test_follow_up_opens_a_linked_request_from_the_closed_one(requester, agent, own_request, stored):
    _finish(agent, own_request, "closed")
    refused = requester.post(_comments(own_request), json={"body": "It is broken again."})

    response = requester.post(error_of(refused)["follow_up_url"], json={"description": "It is broken again."})

    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/api/v1/service-requests/{body['id']}"
    assert (body["title"], body["description"], body["category"], body["priority"], body["status"]) == (
        f"Follow-up to #{own_request.id}: {own_request.title}", "It is broken again.", own_request.category,
        own_request.priority, "open")
    assert body["follow_up_of_id"] == own_request.id and body["requester"]["id"] == requester.user.id
    assert _detail(requester, own_request)["follow_up_ids"] == [body["id"]]
    assert _detail(agent, own_request)["follow_up_ids"] == [body["id"]]
    assert stored(ServiceRequest, own_request.id)["status"] == "closed"


@pytest.mark.parametrize(("who", "finish", "status", "code"), [
    ("requester", "resolved", 409, "conflict"),   # not closed: reply on it instead
    ("agent", "closed", 403, "forbidden"),        # staff reopen; a follow-up is the requester's
    ("stranger", "closed", 404, "not_found"),
])
def test_follow_up_refused_unless_the_requester_follows_up_a_closed_request(
        factories, as_user, requester, agent, own_request, count_rows, who, finish, status, code):
    _finish(agent, own_request, finish)
    caller = {"requester": requester, "agent": agent,
              "stranger": as_user(factories.make_user("requester"))}[who]

    response = caller.post(f"service-requests/{own_request.id}/follow-ups", json={"description": "Again."})

    assert response.status_code == status
    assert error_of(response)["code"] == code
    assert count_rows(ServiceRequest) == 1


def test_follow_up_without_a_description_is_422(requester, agent, own_request, count_rows):
    _finish(agent, own_request, "closed")
    for body in ({}, {"description": "   "}, {"description": 3}):
        response = requester.post(f"service-requests/{own_request.id}/follow-ups", json=body)
        assert response.status_code == 422
        assert "description" in error_of(response)["fields"]
    assert count_rows(ServiceRequest) == 1
