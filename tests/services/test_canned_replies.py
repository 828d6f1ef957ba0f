"""Canned replies: the staff's shared library, its placeholders, its audit trail and filling one in."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditLog, CannedReply
from portal.services import canned_replies as canned
from portal.services.errors import Conflict, Forbidden, NotFound, StaleChange, ValidationFailed
from tests.services.test_concurrency import actor, race

BODY = "Hello {requester_name},\n\nabout {request_number}: restart the router.\n\n{agent_name}"


def trail(reply_id: int) -> list[AuditLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditLog).where(
        AuditLog.entity_type == "canned_reply", AuditLog.entity_id == reply_id).order_by(AuditLog.id)))


@pytest.fixture()
def staff(ctx, factories):
    return {"agent": factories.make_user("agent", name="Alex Agent"),
            "other": factories.make_user("agent", name="Sam Rivera"),
            "manager": factories.make_user("manager"), "admin": factories.make_user("admin"),
            "requester": factories.make_user("requester", name="Riley Requester")}


@pytest.mark.parametrize("role", ["agent", "manager", "admin"])
def test_create_canned_reply_records_who_and_an_audit_row(staff, role):
    reply = canned.create_canned_reply(staff[role], "  Router restart ", BODY)
    assert (reply.title, reply.body, reply.created_by_id, reply.updated_by_id) == (
        "Router restart", BODY, staff[role].id, staff[role].id)
    [row] = trail(reply.id)
    assert (row.action, row.actor_id, row.before) == ("canned_reply.created", staff[role].id, None)
    assert row.after == {"title": "Router restart", "body": BODY}


def test_requester_may_not_see_or_change_the_library(staff):
    reply = canned.create_canned_reply(staff["agent"], "Router restart", BODY)
    for call in (lambda: canned.list_canned_replies(staff["requester"]),
                 lambda: canned.create_canned_reply(staff["requester"], "Mine", "Hi"),
                 lambda: canned.update_canned_reply(staff["requester"], reply.id, "Mine", "Hi"),
                 lambda: canned.delete_canned_reply(staff["requester"], reply.id),
                 lambda: canned.get_canned_reply(staff["requester"], reply.id)):
        with pytest.raises(Forbidden):
            call()
    assert [r.title for r in canned.list_canned_replies(staff["agent"])] == ["Router restart"]


@pytest.mark.parametrize(("body", "named"), [
    ("Hi {requestor_name}", "{requestor_name}"),
    ("Hi {Requester_Name}", "{Requester_Name}"),
    ("Hi { requester_name }", "{ requester_name }"),
    ("Ticket {ticket} for {0.__class__}", "{ticket}, {0.__class__}"),
    ("{}", "{}"),
])
def test_unknown_placeholders_are_refused_by_name(staff, body, named):
    with pytest.raises(ValidationFailed) as refused:
        canned.create_canned_reply(staff["agent"], "Typo", body)
    message = refused.value.fields["body"]
    assert named in message and "{requester_name}, {request_number}, {agent_name}" in message
    assert db.session.scalar(select(CannedReply.id)) is None


def test_lone_braces_are_text_not_placeholders(staff):
    reply = canned.create_canned_reply(staff["agent"], "Braces", "Type } then { alone.\n{agent_name}")
    assert canned.fill(reply.body, {"agent_name": "Alex"}) == "Type } then { alone.\nAlex"


@pytest.mark.parametrize(("title", "body", "fields"), [
    ("", "Hi", {"title"}),
    ("   ", "Hi", {"title"}),
    ("Hi", "  \n ", {"body"}),
    ("x" * 121, "Hi", {"title"}),
    ("Hi", "x" * 5001, {"body"}),
    ("Nul\x00", "Hi", {"title"}),
    (None, None, {"title", "body"}),
    (12, ["list"], {"title", "body"}),
])
def test_bad_titles_and_bodies_are_refused_with_field_messages(staff, title, body, fields):
    with pytest.raises(ValidationFailed) as refused:
        canned.create_canned_reply(staff["agent"], title, body)
    assert set(refused.value.fields) == fields


def test_titles_are_unique_regardless_of_case(staff):
    canned.create_canned_reply(staff["agent"], "Router restart", BODY)
    with pytest.raises(Conflict) as refused:
        canned.create_canned_reply(staff["other"], "ROUTER RESTART", "Hi")
    assert refused.value.fields == {"title": "Another canned reply has this title."}
    other = canned.create_canned_reply(staff["other"], "Printer", "Hi")
    with pytest.raises(Conflict):
        canned.update_canned_reply(staff["other"], other.id, "router Restart", "Hi", other.version)


def test_two_agents_saving_the_same_title_at_once_one_wins(app, staff):
    agent, other = staff["agent"].id, staff["other"].id
    for n in range(6):
        results = race(app, lambda n=n: canned.create_canned_reply(actor(agent), f"Same {n}", "Hi").id,
                       lambda n=n: canned.create_canned_reply(actor(other), f"same {n}", "Hi").id)
        assert sorted(type(r).__name__ for r in results) == ["Conflict", "int"], results


def test_list_is_alphabetical_whoever_wrote_them(staff):
    for title in ("printer", "Account locked", "VPN"):
        canned.create_canned_reply(staff["agent"], title, "Hi")
    assert [r.title for r in canned.list_canned_replies(staff["other"])] == ["Account locked", "printer", "VPN"]


def test_any_staff_member_edits_a_shared_reply_and_only_changes_are_audited(staff):
    reply = canned.create_canned_reply(staff["agent"], "Router restart", BODY)
    seen = reply.version
    edited = canned.update_canned_reply(staff["other"], reply.id, "Router restart", "Hi {requester_name}.", seen)
    assert (edited.created_by_id, edited.updated_by_id, edited.body) == (
        staff["agent"].id, staff["other"].id, "Hi {requester_name}.")
    assert edited.version == seen + 1
    row = trail(reply.id)[-1]
    assert (row.action, row.actor_id) == ("canned_reply.updated", staff["other"].id)
    assert row.before == {"body": BODY} and row.after == {"body": "Hi {requester_name}."}
    canned.update_canned_reply(staff["admin"], reply.id, "Router restart", "Hi {requester_name}.", edited.version)
    assert len(trail(reply.id)) == 2  # nothing changed, nothing recorded


def test_stale_edit_is_refused_with_who_changed_it(staff):
    reply = canned.create_canned_reply(staff["agent"], "Router restart", BODY)
    seen = reply.version
    canned.update_canned_reply(staff["other"], reply.id, "Router restart", "Newer text.", seen)
    with pytest.raises(StaleChange) as refused:
        canned.update_canned_reply(staff["agent"], reply.id, "Router restart", "Older idea.", seen)
    assert refused.value.changed_by == "Sam Rivera"
    db.session.expire_all()
    assert db.session.get(CannedReply, reply.id).body == "Newer text."


def test_delete_keeps_the_text_in_the_audit_trail(staff):
    reply = canned.create_canned_reply(staff["agent"], "Router restart", BODY)
    assert canned.delete_canned_reply(staff["other"], reply.id, reply.version) == "Router restart"
    db.session.expire_all()
    assert db.session.get(CannedReply, reply.id) is None
    row = trail(reply.id)[-1]
    assert (row.action, row.actor_id, row.after) == ("canned_reply.deleted", staff["other"].id, None)
    assert row.before == {"title": "Router restart", "body": BODY}
    with pytest.raises(NotFound):
        canned.delete_canned_reply(staff["other"], reply.id)


def test_stale_delete_is_refused(staff):
    reply = canned.create_canned_reply(staff["agent"], "Router restart", BODY)
    seen = reply.version
    canned.update_canned_reply(staff["other"], reply.id, "Router restart", "Newer text.", seen)
    with pytest.raises(StaleChange):
        canned.delete_canned_reply(staff["agent"], reply.id, seen)
    db.session.expire_all()
    assert db.session.get(CannedReply, reply.id) is not None


@pytest.mark.parametrize("bad_id", [None, "", "abc", "-1", "1e3", 10**20, True])
def test_unknown_ids_are_not_found(staff, bad_id):
    with pytest.raises(NotFound):
        canned.get_canned_reply(staff["agent"], bad_id)


def test_filled_for_request_uses_the_requester_the_number_and_the_sender(staff, factories):
    req = factories.make_request(staff["requester"])
    reply = canned.create_canned_reply(staff["agent"], "Router restart", BODY)
    text = canned.filled_for_request(staff["other"], reply.id, req.id)
    assert text == f"Hello Riley Requester,\n\nabout #{req.id}: restart the router.\n\nSam Rivera"


def test_filled_in_values_are_not_read_as_placeholders_again(staff, factories):
    sneaky = factories.make_user("requester", name="{agent_name}")
    req = factories.make_request(sneaky)
    reply = canned.create_canned_reply(staff["agent"], "Hello", "Hello {requester_name} from {agent_name}")
    assert canned.filled_for_request(staff["agent"], reply.id, req.id) == "Hello {agent_name} from Alex Agent"


def test_filled_for_request_refuses_what_the_actor_may_not_see(staff, factories):
    req = factories.make_request(staff["requester"])
    reply = canned.create_canned_reply(staff["agent"], "Router restart", BODY)
    with pytest.raises(Forbidden):
        canned.filled_for_request(staff["requester"], reply.id, req.id)
    with pytest.raises(NotFound):
        canned.filled_for_request(staff["agent"], reply.id, 999_999)
    with pytest.raises(NotFound):
        canned.filled_for_request(staff["agent"], 999_999, req.id)
