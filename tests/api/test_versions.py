"""API writes may say which version they were made from; a stale one is refused with 409, never applied."""

from __future__ import annotations

import pytest

from portal.models import ServiceRequest
from tests.api.helpers import error_of

NEW = {"title": "Laptop will not boot", "description": "Black screen after the logo.", "category": "hardware"}


@pytest.fixture()
def other_agent(factories, as_user):
    return as_user(factories.make_user("agent", name="Sam Rivera"))


@pytest.fixture()
def created(requester):
    response = requester.post("service-requests", json=NEW)
    assert response.status_code == 201
    return response


def test_get_and_create_carry_the_version_as_etag(requester, created):
    body = created.get_json()
    assert body["version"] == 1
    assert created.headers["ETag"] == '"1"'
    got = requester.get(f"service-requests/{body['id']}")
    assert got.headers["ETag"] == '"1"' and got.get_json()["version"] == 1


def test_patch_with_current_if_match_applies_and_returns_the_new_etag(agent, created, stored):
    request_id = created.get_json()["id"]
    response = agent.patch(f"service-requests/{request_id}", json={"priority": "high"}, headers={"If-Match": '"1"'})
    assert response.status_code == 200, response.get_json()
    assert response.headers["ETag"] == '"2"' and response.get_json()["version"] == 2
    assert stored(ServiceRequest, request_id)["priority"] == "high"


def test_patch_with_stale_if_match_is_409_and_changes_nothing(agent, other_agent, created, stored):
    request_id = created.get_json()["id"]
    etag = agent.get(f"service-requests/{request_id}").headers["ETag"]
    assert other_agent.patch(f"service-requests/{request_id}", json={"status": "resolved"},
                             headers={"If-Match": etag}).status_code == 200

    response = agent.patch(f"service-requests/{request_id}", json={"status": "in_progress"}, headers={"If-Match": etag})

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "stale_version"
    assert error["current_version"] == 2 and error["changed_by"] == "Sam Rivera"
    assert error["changed_at"]
    assert "here is the current state" in error["message"]
    assert response.headers["ETag"] == '"2"'
    row = stored(ServiceRequest, request_id)
    assert (row["status"], row["version"]) == ("resolved", 2)


def test_patch_with_stale_version_field_is_409(agent, other_agent, created, stored):
    request_id = created.get_json()["id"]
    first = other_agent.patch(f"service-requests/{request_id}", json={"priority": "low", "version": 1})
    assert first.status_code == 200

    response = agent.patch(f"service-requests/{request_id}", json={"priority": "critical", "version": 1})

    assert response.status_code == 409 and error_of(response)["code"] == "stale_version"
    assert stored(ServiceRequest, request_id)["priority"] == "low"


def test_patch_without_a_version_is_last_writer_wins_as_before(agent, other_agent, created, stored):
    request_id = created.get_json()["id"]
    assert other_agent.patch(f"service-requests/{request_id}", json={"priority": "low"}).status_code == 200
    assert agent.patch(f"service-requests/{request_id}", json={"priority": "critical"}).status_code == 200
    assert stored(ServiceRequest, request_id)["priority"] == "critical"


def test_if_match_star_means_any_version(agent, created):
    request_id = created.get_json()["id"]
    response = agent.patch(f"service-requests/{request_id}", json={"priority": "high"}, headers={"If-Match": "*"})
    assert response.status_code == 200


@pytest.mark.parametrize(("headers", "body", "field"), [
    ({"If-Match": "nonsense"}, {}, "If-Match"),
    ({"If-Match": 'W/"1"'}, {}, "If-Match"),
    ({"If-Match": '"1", "2"'}, {}, "If-Match"),
    ({"If-Match": '"abc"'}, {}, "If-Match"),
    ({}, {"version": 0}, "version"),
    ({}, {"version": True}, "version"),
    ({}, {"version": "1"}, "version"),
    ({"If-Match": '"1"'}, {"version": 2}, "version"),
])
def test_bad_versions_are_422_and_change_nothing(agent, created, stored, headers, body, field):
    request_id = created.get_json()["id"]
    response = agent.patch(f"service-requests/{request_id}", json={"priority": "high", **body}, headers=headers)
    assert response.status_code == 422, response.get_json()
    assert field in error_of(response)["fields"]
    assert stored(ServiceRequest, request_id)["priority"] == "medium"


def test_a_reply_moves_the_version_so_a_change_from_before_it_is_stale(agent, requester, created):
    request_id = created.get_json()["id"]
    etag = agent.get(f"service-requests/{request_id}").headers["ETag"]
    assert requester.post(f"service-requests/{request_id}/comments", json={"body": "Now it beeps."}).status_code == 201

    response = agent.patch(f"service-requests/{request_id}", json={"status": "resolved"}, headers={"If-Match": etag})

    assert response.status_code == 409  # the agent had not seen the reply


def test_patch_resending_a_retired_category_unchanged_is_accepted(agent, created, ctx, stored):
    """The page and the API agree: an unchanged field is not a change to check."""
    from portal.policy import SYSTEM
    from portal.services import categories

    request_id = created.get_json()["id"]
    categories.set_active(SYSTEM, "hardware", False)
    response = agent.patch(f"service-requests/{request_id}", json={"category": "hardware", "priority": "high"})
    assert response.status_code == 200, response.get_json()
    assert stored(ServiceRequest, request_id)["priority"] == "high"
    moved = agent.patch(f"service-requests/{request_id}", json={"category": "software"})
    assert moved.status_code == 200
    back = agent.patch(f"service-requests/{request_id}", json={"category": "hardware"})
    assert back.status_code == 422 and "category" in error_of(back)["fields"]
