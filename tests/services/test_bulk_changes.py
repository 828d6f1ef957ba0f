"""Bulk changes from the list: each request through the same command and version check as one
change, each its own unit of work; refusals are listed, request by request, and two agents
changing the same rows at the same moment never both win one."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditLog, ServiceRequest, User
from portal.services import requests as svc
from portal.services.errors import Forbidden, ValidationFailed
from portal.services.requests import bulk
from tests import factories as make


def _versions(ids: list[int]) -> list[tuple[int, int]]:
    return [(i, db.session.get(ServiceRequest, i).version) for i in ids]


def test_each_ticked_request_changes_through_its_own_command_and_audit_row(ctx):
    agent = make.make_user("agent")
    ids = [make.make_request(priority="low").id for _ in range(3)]
    outcome = bulk.bulk_change(agent, _versions(ids), "priority", "high")
    assert outcome.changed == ids and not outcome.refused and not outcome.unchanged
    db.session.expire_all()
    assert {db.session.get(ServiceRequest, i).priority for i in ids} == {"high"}
    audited = db.session.scalars(select(AuditLog.entity_id).where(AuditLog.action == "request.updated",
                                                                 AuditLog.actor_id == agent.id)).all()
    assert sorted(audited) == ids


def test_a_request_changed_since_the_list_was_loaded_is_refused_and_the_rest_are_changed(ctx):
    agent, other = make.make_user("agent", name="Sam Rivera"), make.make_user("agent")
    ids = [make.make_request().id for _ in range(3)]
    loaded = _versions(ids)
    svc.change_status(other, ids[1], "in_progress")            # after the list was loaded
    svc.change_status(agent, ids[2], "in_progress")
    outcome = bulk.bulk_change(agent, loaded, "assignee", "me")
    assert outcome.changed == [ids[0]]
    assert [i for i, _why in outcome.refused] == [ids[1], ids[2]]
    assert "since the list was loaded" in outcome.refused[0][1]
    db.session.expire_all()
    assert db.session.get(ServiceRequest, ids[1]).assignee_id is None   # never written over


def test_a_status_the_workflow_refuses_is_listed_with_its_reason(ctx):
    agent = make.make_user("agent")
    req = make.make_request()
    svc.change_status(agent, req.id, "resolved")
    svc.change_status(agent, req.id, "closed")
    fresh = make.make_request()
    outcome = bulk.bulk_change(agent, _versions([req.id, fresh.id]), "status", "in_progress")
    assert outcome.changed == [fresh.id] and outcome.refused[0][0] == req.id


def test_a_value_already_set_is_said_as_such(ctx):
    agent = make.make_user("agent")
    ids = [make.make_request(priority="high").id, make.make_request(priority="low").id]
    outcome = bulk.bulk_change(agent, _versions(ids), "priority", "high")
    assert outcome.unchanged == [ids[0]] and outcome.changed == [ids[1]]


@pytest.mark.parametrize("name, value", [("priority", "urgent"), ("status", "done"), ("assignee", "x"),
                                         ("title", "new")])
def test_a_bad_change_is_refused_before_any_request_is_touched(ctx, name, value):
    agent = make.make_user("agent")
    req = make.make_request()
    with pytest.raises(ValidationFailed):
        bulk.bulk_change(agent, _versions([req.id]), name, value)
    db.session.expire_all()
    assert db.session.get(ServiceRequest, req.id).version == 1


def test_requesters_cannot_change_requests_in_bulk(ctx):
    requester = make.make_user("requester")
    req = make.make_request(requester)
    with pytest.raises(Forbidden):
        bulk.bulk_change(requester, _versions([req.id]), "priority", "high")


@pytest.mark.parametrize("values, message", [([], "Select at least one"), (["12:x"], "damaged"),
                                             ([str(i) for i in range(1, 102)], "at most 100")])
def test_the_selection_is_checked(values, message):
    with pytest.raises(ValidationFailed) as refused:
        bulk.parse_selection(values)
    assert message in refused.value.fields["ids"]


def test_two_agents_assigning_the_same_rows_at_once_never_both_win_one(app, ctx):
    """Both loaded the list (the same versions) and assign the same ten requests to themselves at
    the same moment: each request goes to exactly one of them, and the other's outcome lists it."""
    first, second = make.make_user("agent"), make.make_user("agent")
    ids = [make.make_request().id for _ in range(10)]
    loaded = _versions(ids)
    barrier = threading.Barrier(2)
    outcomes: dict[int, bulk.BulkOutcome] = {}
    failures: list[BaseException] = []

    def run(agent_id: int) -> None:
        try:
            with app.app_context():
                actor = db.session.get(User, agent_id)
                barrier.wait(timeout=10)
                outcomes[agent_id] = bulk.bulk_change(actor, loaded, "assignee", "me")
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(a.id,)) for a in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures, failures
    won = {a: set(outcomes[a].changed) for a in outcomes}
    assert won[first.id].isdisjoint(won[second.id]) and won[first.id] | won[second.id] == set(ids)
    for agent_id, outcome in outcomes.items():
        assert {i for i, _ in outcome.refused} == set(ids) - won[agent_id]
    db.session.expire_all()
    for i in ids:
        owner = db.session.get(ServiceRequest, i).assignee_id
        assert i in won[owner]
