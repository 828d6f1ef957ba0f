"""A reply that also moves the request ("Send and resolve"): one unit of work, version-checked, on real PostgreSQL.

The reply, the status change and what they write beside them (audit rows, SLA clock events,
notification and outbox rows, attachment files) land together or not at all; a race with another
agent's status change leaves either the whole reply-and-move or nothing of it.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    Attachment,
    AuditLog,
    Comment,
    Notification,
    OutboxMessage,
    ServiceRequest,
    SlaEvent,
    SlaMetric,
)
from portal.policy import SYSTEM
from portal.services import requests as svc
from portal.services import sla_admin
from portal.services.attachments import Upload
from portal.services.errors import Conflict, StaleChange, ValidationFailed
from tests.services.test_concurrency import ROUNDS, actor, fresh, race


def count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def actions(request_id: int) -> list[str]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditLog.action).where(
        AuditLog.entity_type == "service_request", AuditLog.entity_id == request_id).order_by(AuditLog.id)))


def on_disk(app) -> set[str]:
    path = Path(app.config["UPLOAD_DIR"])
    return {p.name for p in path.iterdir()} if path.exists() else set()


def footprint(request_id: int) -> dict[str, int]:
    """How many rows of each kind a request has: what a refused change must leave as it was."""
    return {
        "comments": count(Comment, Comment.request_id == request_id),
        "attachments": count(Attachment, Attachment.request_id == request_id),
        "audit": count(AuditLog, AuditLog.entity_type == "service_request", AuditLog.entity_id == request_id),
        "sla_events": count(SlaEvent, SlaEvent.request_id == request_id),
        "notifications": count(Notification, Notification.request_id == request_id),
        "outbox": count(OutboxMessage),
    }


@pytest.fixture()
def desk(ctx, factories):
    """An SLA for hardware/medium (the factories' request), two agents and a requester."""
    sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "medium", "response_time_hours": 4,
                                         "resolution_time_hours": 24})
    return {"alex": factories.make_user("agent"), "sam": factories.make_user("agent"),
            "riley": factories.make_user("requester")}


def test_reply_and_resolve_commits_the_reply_the_move_and_their_records_together(desk, factories):
    req = factories.make_request(desk["riley"])
    seen = req.version
    comment = svc.add_comment(desk["alex"], req.id, "Replaced the toner; it prints again.", status="resolved",
                              expected_version=seen)
    after = fresh(ServiceRequest, req.id)
    assert (after.status, comment.internal) == ("resolved", False)
    assert after.resolved_at is not None and after.first_response_at is not None
    assert after.version > seen
    assert actions(req.id)[-3:] == ["comment.added", "request.updated", "request.status_changed"]
    metric = db.session.scalar(select(SlaMetric).where(SlaMetric.request_id == req.id))
    db.session.refresh(metric)
    assert metric.status == "resolved" and metric.resolved_at == after.resolved_at
    kinds = set(db.session.scalars(select(SlaEvent.kind).where(SlaEvent.request_id == req.id)))
    assert {"responded", "resolved"} <= kinds
    mails = set(db.session.scalars(select(Notification.kind).where(Notification.request_id == req.id,
                                                                   Notification.recipient_id == desk["riley"].id)))
    assert {"public_comment", "status_changed"} <= mails


def test_reply_and_wait_on_customer_pauses_the_clock_when_the_definition_says_so(desk, factories):
    req = factories.make_request(desk["riley"])
    svc.add_comment(desk["alex"], req.id, "Which printer is it?", status="waiting_on_customer",
                    expected_version=req.version)
    assert fresh(ServiceRequest, req.id).status == "waiting_on_customer"
    metric = db.session.scalar(select(SlaMetric).where(SlaMetric.request_id == req.id))
    db.session.refresh(metric)
    assert metric.status == "waiting_on_customer"


def test_reply_with_a_stale_version_saves_nothing(app, desk, factories):
    req = factories.make_request(desk["riley"])
    seen = req.version
    svc.change_status(desk["sam"], req.id, "in_progress", seen)
    before = footprint(req.id)
    with pytest.raises(StaleChange) as refused:
        svc.add_comment(desk["alex"], req.id, "Fixed.", status="resolved", expected_version=seen)
    assert refused.value.changed_by == desk["sam"].name
    assert refused.value.version == fresh(ServiceRequest, req.id).version
    assert footprint(req.id) == before
    assert fresh(ServiceRequest, req.id).status == "in_progress"


def test_reply_with_a_stale_version_and_a_file_leaves_no_file_behind(app, desk, factories):
    req = factories.make_request(desk["riley"])
    seen = req.version
    svc.change_status(desk["sam"], req.id, "in_progress", seen)
    files_before = on_disk(app)
    with pytest.raises(StaleChange):
        svc.add_comment(desk["alex"], req.id, "Log attached.", uploads=[Upload("fix.txt", io.BytesIO(b"steps"))],
                        status="resolved", expected_version=seen)
    assert on_disk(app) == files_before
    assert count(Attachment, Attachment.request_id == req.id) == 0


def test_reply_with_a_move_the_workflow_refuses_saves_nothing(desk, factories):
    req = factories.make_request(desk["riley"])
    svc.change_status(desk["alex"], req.id, "resolved")
    before = footprint(req.id)
    with pytest.raises(Conflict) as refused:
        svc.add_comment(desk["alex"], req.id, "Still waiting?", status="waiting_on_customer")
    assert "cannot move from resolved to waiting on customer" in refused.value.message
    assert footprint(req.id) == before and fresh(ServiceRequest, req.id).status == "resolved"


def test_reply_to_the_status_it_already_has_is_refused_with_nothing_saved(desk, factories):
    req = factories.make_request(desk["riley"])
    svc.change_status(desk["alex"], req.id, "waiting_on_customer")
    before = footprint(req.id)
    with pytest.raises(Conflict, match="already waiting on customer"):
        svc.add_comment(desk["alex"], req.id, "Any news?", status="waiting_on_customer")
    assert footprint(req.id) == before


@pytest.mark.parametrize("status", ["closed", "open", "in_progress", "exploded", ["resolved"], 7])
def test_reply_may_set_only_the_reply_statuses(desk, factories, status):
    req = factories.make_request(desk["riley"])
    with pytest.raises(ValidationFailed) as refused:
        svc.add_comment(desk["alex"], req.id, "Done.", status=status)
    assert "waiting on customer or resolved" in refused.value.fields["status"]
    assert count(Comment, Comment.request_id == req.id) == 0


def test_requester_cannot_resolve_their_own_request_with_a_reply(desk, factories):
    req = factories.make_request(desk["riley"])
    with pytest.raises(Conflict, match="Requesters can only"):
        svc.add_comment(desk["riley"], req.id, "Sorted it myself.", status="resolved")
    assert count(Comment, Comment.request_id == req.id) == 0
    assert fresh(ServiceRequest, req.id).status == "open"


def test_internal_note_may_move_the_request_too(desk, factories):
    req = factories.make_request(desk["riley"])
    svc.add_comment(desk["alex"], req.id, "Asked the vendor by phone.", internal=True, status="waiting_on_customer",
                    expected_version=req.version)
    after = fresh(ServiceRequest, req.id)
    assert after.status == "waiting_on_customer" and after.first_response_at is None  # a note is no response
    mails = set(db.session.scalars(select(Notification.kind).where(Notification.request_id == req.id)))
    assert "public_comment" not in mails


def test_reply_statuses_offer_only_what_the_workflow_allows_now(desk, factories):
    req = factories.make_request(desk["riley"])
    assert svc.reply_statuses(desk["alex"], req) == ["waiting_on_customer", "resolved"]
    assert svc.reply_statuses(desk["riley"], req) == []
    svc.change_status(desk["alex"], req.id, "waiting_on_customer")
    assert svc.reply_statuses(desk["alex"], fresh(ServiceRequest, req.id)) == ["resolved"]
    svc.change_status(desk["alex"], req.id, "resolved")
    assert svc.reply_statuses(desk["alex"], fresh(ServiceRequest, req.id)) == []


def test_plain_reply_still_carries_no_version_check(desk, factories):
    req = factories.make_request(desk["riley"])
    seen = req.version
    svc.change_status(desk["sam"], req.id, "in_progress", seen)
    svc.add_comment(desk["alex"], req.id, "On my way.")  # the page sends no version without a status
    assert count(Comment, Comment.request_id == req.id) == 1


# ---------------------------------------------------------------- races, on real PostgreSQL

def test_race_reply_and_resolve_against_another_agents_status_change_all_or_nothing(app, desk, factories):
    """Alex sends "Send and resolve" while Sam moves the request to waiting on customer, both from the
    same version: one wins whole, the other is refused as stale and leaves no trace."""
    alex, sam = desk["alex"].id, desk["sam"].id
    outcomes = set()
    for n in range(ROUNDS):
        req = factories.make_request(desk["riley"])
        seen = req.version
        before = footprint(req.id)
        reply, move = race(
            app,
            lambda r=req.id, v=seen, n=n: svc.add_comment(actor(alex), r, f"Fixed it ({n}).", status="resolved",
                                                          expected_version=v).id,
            lambda r=req.id, v=seen: svc.change_status(actor(sam), r, "waiting_on_customer", v).status,
        )
        after = fresh(ServiceRequest, req.id)
        metric = db.session.scalar(select(SlaMetric).where(SlaMetric.request_id == req.id))
        db.session.refresh(metric)
        assert metric.status == after.status
        if isinstance(reply, int):
            assert isinstance(move, StaleChange), move
            outcomes.add("reply")
            assert after.status == "resolved" and after.resolved_at is not None
            assert [c.id for c in db.session.scalars(select(Comment).where(Comment.request_id == req.id))] == [reply]
            assert actions(req.id).count("request.status_changed") == 1
            assert "comment.added" in actions(req.id)
        else:
            assert isinstance(reply, StaleChange) and move == "waiting_on_customer", (reply, move)
            outcomes.add("move")
            assert after.status == "waiting_on_customer" and after.resolved_at is None
            now = footprint(req.id)
            # Only Sam's move was written: no comment, no comment audit, no mail about a reply.
            assert now["comments"] == 0 and "comment.added" not in actions(req.id)
            assert actions(req.id).count("request.status_changed") == 1
            assert now["audit"] == before["audit"] + 1
            kinds = set(db.session.scalars(select(Notification.kind).where(Notification.request_id == req.id)))
            assert "public_comment" not in kinds
        assert after.version > seen
    assert outcomes  # at least one round decided; which side wins is up to the scheduler


def test_race_reply_and_resolve_with_a_file_loser_leaves_no_file(app, desk, factories):
    """The losing reply had stored its file before the lock: its rollback removes it."""
    alex, sam = desk["alex"].id, desk["sam"].id
    for n in range(ROUNDS):
        req = factories.make_request(desk["riley"])
        seen = req.version
        files_before = on_disk(app)
        reply, _move = race(
            app,
            lambda r=req.id, v=seen, n=n: svc.add_comment(
                actor(alex), r, "Steps attached.", uploads=[Upload(f"steps{n}.txt", io.BytesIO(b"1. 2. 3."))],
                status="resolved", expected_version=v).id,
            lambda r=req.id, v=seen: svc.change_status(actor(sam), r, "in_progress", v).status,
        )
        db.session.expire_all()
        stored = set(db.session.scalars(select(Attachment.storage_name).where(Attachment.request_id == req.id)))
        assert len(stored) == (1 if isinstance(reply, int) else 0)
        assert on_disk(app) - files_before == stored  # a refused reply leaves no orphan file
