"""Two people at once, on real PostgreSQL: racing changes are serialised or refused, never lost.

Each race runs the two changes in two threads, each with its own app context (so its own
database session and connection), released together by a barrier, many rounds over. The
outcomes asserted hold whichever thread wins; before the row locks and version checks, the
losing change was applied on top of the winner's (or both passed a check only one may pass).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditLog, Comment, ServiceRequest, SlaEvent, SlaExemption, SlaMetric, User
from portal.models._time import utcnow
from portal.policy import SYSTEM
from portal.services import requests as svc
from portal.services import sla, sla_admin, users
from portal.services.errors import Conflict, Forbidden, RequestClosed, ServiceError, StaleChange

ROUNDS = 12


def race(app, *changes: Callable[[], object]) -> list[object]:
    """Run each change in its own thread and app context, all released at once; results or errors."""
    barrier = threading.Barrier(len(changes))
    results: list[object] = [None] * len(changes)

    def run(i: int, change: Callable[[], object]) -> None:
        with app.app_context():
            barrier.wait()
            try:
                results[i] = change()
            except ServiceError as exc:
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(changes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a change never finished (deadlock?)"
    return results


def actor(user_id: int) -> User:
    """The user loaded in the calling thread's own session."""
    return db.session.get(User, user_id)


def fresh(model, row_id: int):
    db.session.expire_all()
    return db.session.get(model, row_id)


@pytest.fixture()
def desk(ctx, factories):
    """An SLA for hardware/medium, two agents and a requester (ids, usable from any thread)."""
    sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "medium", "response_time_hours": 4,
                                         "resolution_time_hours": 24})
    return {
        "alex": factories.make_user("agent").id,
        "sam": factories.make_user("agent").id,
        "riley": factories.make_user("requester").id,
        "morgan": factories.make_user("manager").id,
    }


def test_race_two_status_changes_from_the_same_version_one_wins_one_is_refused(app, desk, factories):
    for _ in range(ROUNDS):
        req = factories.make_request(actor(desk["riley"]))
        seen = req.version
        results = race(
            app,
            lambda r=req.id, v=seen: svc.change_status(actor(desk["alex"]), r, "resolved", v).status,
            lambda r=req.id, v=seen: svc.change_status(actor(desk["sam"]), r, "waiting_on_customer", v).status,
        )
        won = [r for r in results if isinstance(r, str)]
        lost = [r for r in results if isinstance(r, StaleChange)]
        assert len(won) == 1 and len(lost) == 1, results
        after = fresh(ServiceRequest, req.id)
        assert after.status == won[0]
        assert after.version == seen + 1
        assert lost[0].version == after.version and lost[0].changed_by is not None
        changes = db.session.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.entity_id == req.id, AuditLog.action == "request.status_changed"))
        assert changes == 1
        assert fresh(SlaMetric, db.session.scalar(
            select(SlaMetric.id).where(SlaMetric.request_id == req.id))).status == won[0]


def test_race_requester_reopens_while_agent_closes_leaves_a_consistent_request(app, desk, factories):
    for _ in range(ROUNDS):
        req = factories.make_request(actor(desk["riley"]))
        svc.change_status(actor(desk["alex"]), req.id, "resolved")
        results = race(
            app,
            lambda r=req.id: svc.change_status(actor(desk["riley"]), r, "open").status,
            lambda r=req.id: svc.change_status(actor(desk["alex"]), r, "closed").status,
        )
        assert any(isinstance(r, str) for r in results), results
        after = fresh(ServiceRequest, req.id)
        # Whichever came first, the second was decided against the first's result.
        assert after.status in ("open", "closed")
        if after.status == "open":
            assert after.closed_at is None and after.resolved_at is None
        else:
            assert after.closed_at is not None
        metric = db.session.scalar(select(SlaMetric).where(SlaMetric.request_id == req.id))
        db.session.refresh(metric)
        assert metric.status == after.status


def test_race_requester_replies_while_agent_closes_reopened_or_refused_never_ignored(app, desk, factories):
    for _ in range(ROUNDS):
        req = factories.make_request(actor(desk["riley"]))
        svc.change_status(actor(desk["alex"]), req.id, "resolved")
        reply, close = race(
            app,
            lambda r=req.id: svc.add_comment(actor(desk["riley"]), r, "Still broken.").id,
            lambda r=req.id: svc.change_status(actor(desk["alex"]), r, "closed").status,
        )
        after = fresh(ServiceRequest, req.id)
        replies = db.session.scalar(select(func.count()).select_from(Comment).where(Comment.request_id == req.id))
        if isinstance(reply, int):
            # The reply came first and reopened it; the close was then decided against an open request.
            assert isinstance(close, Conflict) and not isinstance(close, RequestClosed), close
            assert (after.status, after.resolved_at, after.closed_at, replies) == ("open", None, None, 1)
        else:
            # The close came first: the reply was refused and nothing of it was saved.
            assert isinstance(reply, RequestClosed) and close == "closed", (reply, close)
            assert (after.status, replies) == ("closed", 0)
            assert after.closed_at is not None
        metric = db.session.scalar(select(SlaMetric).where(SlaMetric.request_id == req.id))
        db.session.refresh(metric)
        assert metric.status == after.status


def test_race_follow_up_while_agent_reopens_one_or_the_other_never_both_ignored(app, desk, factories):
    for _ in range(ROUNDS):
        req = factories.make_request(actor(desk["riley"]))
        svc.change_status(actor(desk["alex"]), req.id, "resolved")
        svc.change_status(actor(desk["alex"]), req.id, "closed")
        follow, reopen = race(
            app,
            lambda r=req.id: svc.open_follow_up(actor(desk["riley"]), r, "It is back.").id,
            lambda r=req.id: svc.change_status(actor(desk["alex"]), r, "open").status,
        )
        assert reopen == "open", reopen
        linked = db.session.scalars(select(ServiceRequest.id).where(ServiceRequest.follow_up_of_id == req.id)).all()
        if isinstance(follow, int):
            assert linked == [follow]   # opened while the request was still closed
        else:
            assert isinstance(follow, Conflict) and linked == [], follow  # reopened first: reply there instead


def test_race_two_replies_both_land_and_the_version_counts_both(app, desk, factories):
    req = factories.make_request(actor(desk["riley"]))
    before = req.version
    results = race(
        app,
        lambda: svc.add_comment(actor(desk["alex"]), req.id, "On it.").id,
        lambda: svc.add_comment(actor(desk["riley"]), req.id, "Still broken.").id,
    )
    assert all(isinstance(r, int) for r in results), results
    assert fresh(ServiceRequest, req.id).version == before + 2


def test_race_two_revokes_of_one_exemption_one_succeeds(app, desk, factories):
    for _ in range(ROUNDS):
        req = factories.make_request(actor(desk["riley"]))
        exemption = sla.grant_exemption(actor(desk["morgan"]), req.id, "Vendor part on order", "both", None)
        results = race(
            app,
            lambda r=req.id, x=exemption.id: sla.revoke_exemption(actor(desk["morgan"]), r, x).id,
            lambda r=req.id, x=exemption.id: sla.revoke_exemption(actor(desk["morgan"]), r, x).id,
        )
        assert sorted(type(r).__name__ for r in results) == ["Conflict", "int"], results
        revoked_events = db.session.scalar(select(func.count()).select_from(SlaEvent).where(
            SlaEvent.request_id == req.id, SlaEvent.kind == "exemption_revoked"))
        assert revoked_events == 2  # one per target of a "both" exemption, recorded once
        assert fresh(SlaExemption, exemption.id).revoked_at is not None


def test_race_two_admins_demoting_each_other_leave_one_admin(app, ctx, factories):
    for n in range(ROUNDS):
        a = factories.make_user("admin", email=f"a{n}@example.com").id
        b = factories.make_user("admin", email=f"b{n}@example.com").id
        # Only these two are active admins this round.
        for other in db.session.scalars(select(User).where(User.role == "admin", User.id.not_in((a, b)))):
            users.change_role(SYSTEM, other.id, "agent")
        results = race(
            app,
            lambda a=a, b=b: users.change_role(actor(a), b, "agent").id,
            lambda a=a, b=b: users.change_role(actor(b), a, "agent").id,
        )
        assert sorted(type(r).__name__ for r in results) in (["Forbidden", "int"], ["Conflict", "int"]), results
        db.session.expire_all()
        admins = db.session.scalar(select(func.count()).select_from(User).where(
            User.role == "admin", User.active.is_(True)))
        assert admins == 1


def test_race_two_admins_deactivating_each_other_leave_one_admin(app, ctx, factories):
    a = factories.make_user("admin", email="first.admin@example.com").id
    b = factories.make_user("admin", email="second.admin@example.com").id
    results = race(
        app,
        lambda: users.set_active(actor(a), b, False).id,
        lambda: users.set_active(actor(b), a, False).id,
    )
    assert any(isinstance(r, Forbidden | Conflict) for r in results), results
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(User).where(
        User.role == "admin", User.active.is_(True))) == 1


def test_race_rebuild_and_resolve_the_resolved_clock_stays_resolved(app, desk, factories):
    for _ in range(ROUNDS):
        reqs = [factories.make_request(actor(desk["riley"])) for _ in range(3)]
        definition_id = fresh(SlaMetric, db.session.scalar(
            select(SlaMetric.id).where(SlaMetric.request_id == reqs[0].id))).definition_id
        target = reqs[1]
        results = race(
            app,
            lambda d=definition_id: sla_admin.rebuild_open_clocks(definition_id=d, batch_size=2),
            lambda t=target.id: svc.change_status(actor(desk["alex"]), t, "resolved").status,
        )
        assert not any(isinstance(r, ServiceError) for r in results), results
        metric = db.session.scalar(select(SlaMetric).where(SlaMetric.request_id == target.id))
        db.session.refresh(metric)
        assert (metric.status, metric.resolved_at is not None) == ("resolved", True)
        assert fresh(ServiceRequest, target.id).status == "resolved"


def test_stale_change_names_who_changed_it_last(ctx, desk, factories):
    req = factories.make_request(actor(desk["riley"]))
    seen = req.version
    svc.change_status(actor(desk["alex"]), req.id, "in_progress", seen)
    with pytest.raises(StaleChange) as caught:
        svc.update_request(actor(desk["sam"]), req.id, {"priority": "high"}, seen)
    alex = actor(desk["alex"])
    assert caught.value.changed_by == alex.name
    assert caught.value.changed_at is not None and utcnow() - caught.value.changed_at < timedelta(minutes=1)
    assert f"changed by {alex.name}" in caught.value.message
    assert fresh(ServiceRequest, req.id).priority == "medium"  # the stale change was not applied
