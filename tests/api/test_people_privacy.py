"""Which people's email addresses the JSON API shows: staff see them; requesters see names only.

A requester learns who handles their request (a name), not the staff's addresses; their own
address may come back to them.
"""

from __future__ import annotations

import pytest

from portal.policy import SYSTEM
from portal.services import sla_admin


def _emails(node) -> set[str]:
    """Every value of an "email" key anywhere in a JSON document."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "email":
                found.add(value)
            else:
                found |= _emails(value)
    elif isinstance(node, list):
        for item in node:
            found |= _emails(item)
    return found


def _names(node) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "name" and isinstance(value, str):
                found.add(value)
            else:
                found |= _names(value)
    elif isinstance(node, list):
        for item in node:
            found |= _names(item)
    return found


@pytest.fixture()
def handled_request(factories, as_user):
    """A requester's request, assigned to an agent who replied, with an exemption a manager granted."""
    sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "medium",
                                         "response_time_hours": 4, "resolution_time_hours": 24})
    requester = as_user(factories.make_user("requester"))
    agent = as_user(factories.make_user("agent"))
    manager = as_user(factories.make_user("manager"))
    created = requester.post("service-requests", json={"title": "Laptop will not start",
                                                       "description": "Black screen.", "category": "hardware"})
    assert created.status_code == 201, created.get_json()
    request_id = created.get_json()["id"]
    assert agent.patch(f"service-requests/{request_id}", json={"assignee_id": agent.user.id}).status_code == 200
    assert agent.post(f"service-requests/{request_id}/comments", json={"body": "On it."}).status_code == 201
    granted = manager.post(f"service-requests/{request_id}/sla-exemptions",
                           json={"exemption_type": "resolution", "reason": "Part on order", "duration_hours": 24})
    assert granted.status_code == 201, granted.get_json()
    return {"requester": requester, "agent": agent, "manager": manager, "request_id": request_id}


def _requester_reads(caller, request_id: int) -> dict[str, object]:
    """Every API answer a requester gets about their request and the people on it."""
    path = f"service-requests/{request_id}"
    return {
        "list": caller.get("service-requests"),
        "get": caller.get(path),
        "patch": caller.patch(path, json={"description": "Black screen, fan spins."}),
        "comment": caller.post(f"{path}/comments", json={"body": "Thanks."}),
        "sla-metrics": caller.get(f"{path}/sla-metrics"),
        "sla-exemptions": caller.get(f"{path}/sla-exemptions"),
        "new": caller.post("service-requests", json={"title": "Mouse", "description": "Broken.",
                                                     "category": "hardware"}),
        "dashboard-breaches": caller.get("/api/dashboard/admin/sla-breaches"),
        "dashboard-summary": caller.get("/api/dashboard/admin/summary"),
    }


def test_privacy_requester_sees_staff_names_but_no_staff_emails(handled_request):
    requester, agent = handled_request["requester"], handled_request["agent"]

    answers = _requester_reads(requester, handled_request["request_id"])

    for what, response in answers.items():
        assert response.status_code < 500, (what, response.status_code)
        body = response.get_json()
        assert _emails(body) <= {requester.user.email}, (what, body)
        for staff in (agent, handled_request["manager"]):
            assert staff.user.email not in response.get_data(as_text=True), what
    detail = answers["get"].get_json()
    assert detail["assignee"] == {"id": agent.user.id, "name": agent.user.name}
    assert {"id": agent.user.id, "name": agent.user.name} in [c["author"] for c in detail["comments"]]
    assert detail["requester"]["email"] == requester.user.email  # their own address
    assert agent.user.name in _names(answers["list"].get_json())
    assert answers["patch"].status_code == 200
    assert answers["patch"].get_json()["assignee"] == {"id": agent.user.id, "name": agent.user.name}
    # What a requester may not read at all stays closed.
    assert answers["sla-exemptions"].status_code == 403
    assert answers["dashboard-breaches"].status_code == 403


@pytest.mark.parametrize("role", ["agent", "manager"])
def test_privacy_staff_keep_email_addresses(handled_request, role):
    caller = handled_request[role]
    agent, manager, requester = handled_request["agent"], handled_request["manager"], handled_request["requester"]
    path = f"service-requests/{handled_request['request_id']}"

    detail = caller.get(path).get_json()
    listed = caller.get("service-requests").get_json()
    exemptions = caller.get(f"{path}/sla-exemptions").get_json()

    assert detail["assignee"] == {"id": agent.user.id, "name": agent.user.name, "email": agent.user.email}
    assert detail["requester"]["email"] == requester.user.email
    assert agent.user.email in {c["author"]["email"] for c in detail["comments"]}
    assert agent.user.email in _emails(listed)
    assert exemptions["exemptions"][0]["granted_by"]["email"] == manager.user.email
