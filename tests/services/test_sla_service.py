"""The SLA engine as requests live through it: clocks start, pause, resume, meet, breach, get exempted.

Time is frozen: `clock` replaces utcnow() in the request and SLA services, and the SLA functions
that take `now` are given it explicitly.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditLog, ServiceRequest, SlaDefinition, SlaEvent, SlaExemption, SlaMetric
from portal.models.sla import EVENT_KINDS
from portal.services import requests as svc
from portal.services import sla
from portal.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tests.services.sla_helpers import (
    Clock,
    H,
    audit_rows,
    count,
    events_of,
    kinds_of,
    london,
    make_calendar,
    make_definition,
    metric_of,
    state_of_all,
)

T0 = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)           # a Monday; 11:00 in London
BANK_HOLIDAY = date(2024, 8, 26)                        # a Monday


@pytest.fixture()
def clock(ctx, monkeypatch):
    c = Clock(T0)
    monkeypatch.setattr("portal.services.requests.commands.utcnow", c)
    monkeypatch.setattr("portal.services.sla.exemptions.utcnow", c)
    monkeypatch.setattr("portal.services.sla.checks.utcnow", c)
    return c


@pytest.fixture()
def defs(ctx):
    """hardware/high 2h/8h and hardware/critical 1h/4h around the clock; software/high 1h/9h on UK office
    hours (Mon-Fri 09:00-18:00 London, with the August bank holiday). Nothing for network."""
    cal = make_calendar(holidays=(BANK_HOLIDAY,))
    return {
        "calendar": cal,
        "high": make_definition("hardware", "high", 2, 8),
        "critical": make_definition("hardware", "critical", 1, 4),
        "office": make_definition("software", "high", 1, 9, calendar=cal),
    }


@pytest.fixture()
def requester(factories):
    return factories.make_user("requester")


@pytest.fixture()
def agent(factories):
    return factories.make_user("agent")


@pytest.fixture()
def manager(factories):
    return factories.make_user("manager")


@pytest.fixture()
def admin(factories):
    return factories.make_user("admin")


@pytest.fixture()
def raise_request(factories, requester, clock, defs):
    """raise_request(category, priority, at=None): a request raised by `requester` at the clock's time."""

    def make(category: str = "hardware", priority: str = "high", at: datetime | None = None) -> ServiceRequest:
        if at is not None:
            clock.set(at)
        return factories.make_request(requester, category=category, priority=priority)

    return make


def reply(actor, req, internal: bool = False, body: str = "On it."):
    return svc.add_comment(actor, req.id, body, internal=internal)


def move(actor, req, status: str) -> ServiceRequest:
    return svc.update_request(actor, req.id, {"status": status})


# ---------------------------------------------------------------- starting the clock

def test_the_clock_starts_with_the_request_and_copies_the_targets_24x7(raise_request, defs):
    req = raise_request()
    m = metric_of(req)
    assert m.definition_id == defs["high"].id
    assert m.calendar_id is None
    assert (m.response_target_hours, m.resolution_target_hours) == (2, 8)
    assert m.at_risk_percent == 75
    assert m.pause_statuses == ["waiting_on_customer"]
    assert m.started_at == T0 == req.created_at
    assert m.status == "open"
    assert (m.response_due_at, m.resolution_due_at) == (T0 + 2 * H, T0 + 8 * H)
    assert (m.response_warn_at, m.resolution_warn_at) == (T0 + 1.5 * H, T0 + 6 * H)
    assert (m.responded_at, m.resolved_at, m.paused_since, m.paused_seconds) == (None, None, None, 0)
    assert (m.response_sla_met, m.resolution_sla_met, m.is_breached, m.breach_type) == (None, None, False, None)
    [started] = events_of(req)
    assert (started.kind, started.target, started.at) == ("started", None, T0)
    assert started.detail == {"definition_id": defs["high"].id, "response_hours": 2.0, "resolution_hours": 8.0}


def test_business_hours_due_times(raise_request, defs):
    start = london(2024, 6, 3, 10)                      # Monday 10:00 London
    req = raise_request("software", "high", at=start)
    m = metric_of(req)
    assert m.calendar_id == defs["calendar"].id
    assert m.response_due_at == london(2024, 6, 3, 11)
    assert m.response_warn_at == london(2024, 6, 3, 10, 45)         # 75% of 1h
    assert m.resolution_due_at == london(2024, 6, 4, 10)            # 8h Monday + 1h Tuesday
    assert m.resolution_warn_at == london(2024, 6, 3, 16, 45)       # 75% of 9h = 6h45m


@pytest.mark.parametrize(("opened", "response_due", "resolution_due"), [
    # Friday 17:30: half an hour on Friday, the rest on Monday.
    (london(2024, 6, 7, 17, 30), london(2024, 6, 10, 9, 30), london(2024, 6, 10, 17, 30)),
    # Friday 17:30 before the bank holiday: the rest on Tuesday.
    (london(2024, 8, 23, 17, 30), london(2024, 8, 27, 9, 30), london(2024, 8, 27, 17, 30)),
    # Saturday: the clock starts on Monday at 09:00.
    (london(2024, 6, 8, 12), london(2024, 6, 10, 10), london(2024, 6, 10, 18)),
], ids=["friday-evening", "friday-before-bank-holiday", "weekend"])
def test_business_hours_crossings(raise_request, opened, response_due, resolution_due):
    m = metric_of(raise_request("software", "high", at=opened))
    assert (m.started_at, m.response_due_at, m.resolution_due_at) == (opened, response_due, resolution_due)


def test_no_matching_definition_gives_a_clock_without_targets(raise_request, manager, clock):
    req = raise_request("network", "low")
    m = metric_of(req)
    assert m.definition_id is None and m.calendar_id is None
    assert (m.response_target_hours, m.resolution_target_hours) == (None, None)
    assert (m.response_due_at, m.resolution_due_at, m.response_warn_at, m.resolution_warn_at) == (None,) * 4
    assert (m.response_sla_met, m.resolution_sla_met, m.is_breached) == (None, None, False)
    assert events_of(req)[0].detail == {"definition_id": None, "response_hours": None, "resolution_hours": None}
    assert sla.check_all_breaches(now=T0 + 1000 * H) == []
    assert sla.check_at_risk(now=T0 + 1000 * H) == 0
    with pytest.raises(Conflict):
        sla.grant_exemption(manager, req.id, "Vendor outage", "both", None, now=clock())
    assert count(SlaExemption) == 0
    assert [k for k, _ in kinds_of(req)] == ["started"]
    assert audit_rows(req.id, "sla.exemption_granted") == []


def test_an_inactive_definition_is_not_used(ctx, raise_request, defs):
    defs["high"].is_active = False
    db.session.commit()
    m = metric_of(raise_request("hardware", "high"))
    assert m.definition_id is None and m.response_due_at is None


# ---------------------------------------------------------------- response

def test_first_public_agent_comment_is_the_response(raise_request, clock, requester, agent):
    req = raise_request()
    clock.advance(minutes=20)
    reply(requester, req, body="Any news?")
    clock.advance(minutes=20)
    reply(agent, req, internal=True, body="Internal: check the spare stock.")
    assert metric_of(req).responded_at is None
    clock.advance(minutes=20)
    reply(agent, req)
    m = metric_of(req)
    assert m.responded_at == T0 + H
    assert m.response_sla_met is True
    assert m.is_breached is False and m.breach_type is None
    assert kinds_of(req) == [("started", None), ("responded", "response")]
    assert events_of(req)[1].at == T0 + H
    # A second reply changes nothing.
    clock.advance(hours=5)
    reply(agent, req, body="Still on it.")
    assert metric_of(req).responded_at == T0 + H
    assert kinds_of(req) == [("started", None), ("responded", "response")]
    assert sla.check_all_breaches(now=T0 + 7 * H) == []


def test_starting_work_is_a_response(raise_request, clock, agent):
    req = raise_request()
    clock.advance(hours=1.5)
    move(agent, req, "in_progress")
    m = metric_of(req)
    assert (m.responded_at, m.response_sla_met, m.status) == (T0 + 1.5 * H, True, "in_progress")


def test_a_late_response_is_breached_once(raise_request, clock, agent):
    req = raise_request()
    clock.advance(hours=3)
    reply(agent, req)
    m = metric_of(req)
    assert (m.responded_at, m.response_sla_met) == (T0 + 3 * H, False)
    assert m.response_breached_at == T0 + 3 * H
    assert (m.is_breached, m.breach_type) == (True, "response")
    breached = [e for e in events_of(req) if e.kind == "breached"]
    assert len(breached) == 1
    assert breached[0].target == "response"
    assert breached[0].detail["hours_overdue"] == 1.0
    assert datetime.fromisoformat(breached[0].detail["due_at"]) == T0 + 2 * H
    # Later syncs and checks neither re-flag it nor add events.
    clock.advance(hours=1)
    reply(agent, req, body="More news.")
    move(agent, req, "in_progress")
    assert sla.check_all_breaches(now=clock()) == []
    assert count(SlaEvent, SlaEvent.kind == "breached") == 1
    assert metric_of(req).response_breached_at == T0 + 3 * H


def test_a_response_after_the_check_flagged_the_breach_adds_no_second_event(raise_request, clock, agent):
    req = raise_request()
    result = sla.check_all_breaches(now=T0 + 2.5 * H)
    assert result == [{"request_id": req.id, "title": req.title, "priority": "high",
                       "breaches": [{"type": "response", "hours_overdue": 0.5}]}]
    assert metric_of(req).response_sla_met is False
    clock.advance(hours=3)
    reply(agent, req)
    m = metric_of(req)
    assert (m.responded_at, m.response_sla_met, m.response_breached_at) == (T0 + 3 * H, False, T0 + 2.5 * H)
    assert (m.is_breached, m.breach_type) == (True, "response")
    assert [(e.kind, e.target) for e in events_of(req) if e.kind == "breached"] == [("breached", "response")]


# ---------------------------------------------------------------- pausing

def test_waiting_on_customer_pauses_and_resuming_moves_the_due_24x7(raise_request, clock, agent, requester):
    req = raise_request()
    clock.advance(hours=0.5)
    reply(agent, req)
    clock.advance(hours=0.5)
    move(agent, req, "waiting_on_customer")
    m = metric_of(req)
    assert m.paused_since == T0 + H
    assert (m.resolution_due_at, m.resolution_warn_at) == (None, None)
    assert m.status == "waiting_on_customer"
    # While paused nothing can breach or be at risk, however long it waits.
    assert sla.check_all_breaches(now=T0 + 100 * H) == []
    assert sla.check_at_risk(now=T0 + 100 * H) == 0
    m = metric_of(req)
    assert (m.is_breached, m.resolution_breached_at, m.resolution_at_risk_at) == (False, None, None)
    # The customer answers four hours later: the clock runs again, four hours later than it would have.
    clock.set(T0 + 5 * H)
    reply(requester, req, body="Here is the serial number.")
    m = metric_of(req)
    assert m.status == "in_progress"
    assert m.paused_since is None
    assert m.paused_seconds == 4 * 3600
    assert m.resolution_due_at == T0 + 12 * H
    assert m.resolution_warn_at == T0 + 10 * H
    assert m.responded_at == T0 + 0.5 * H           # the customer's answer is no response
    assert kinds_of(req) == [("started", None), ("responded", "response"), ("paused", None), ("resumed", None)]
    paused, resumed = events_of(req)[2:]
    assert (paused.at, paused.detail) == (T0 + H, {"status": "waiting_on_customer"})
    assert (resumed.at, resumed.detail) == (T0 + 5 * H, {"from": "waiting_on_customer", "to": "in_progress"})
    assert sla.check_all_breaches(now=T0 + 11.9 * H) == []
    assert sla.check_all_breaches(now=T0 + 12.5 * H)[0]["breaches"] == [{"type": "resolution", "hours_overdue": 0.5}]


def test_a_pause_in_business_hours_moves_the_due_by_the_paused_business_time(raise_request, clock, agent):
    req = raise_request("software", "high", at=london(2024, 6, 3, 10))
    clock.set(london(2024, 6, 3, 10, 15))
    reply(agent, req)
    clock.set(london(2024, 6, 3, 17))
    move(agent, req, "waiting_on_customer")
    assert metric_of(req).resolution_due_at is None
    clock.set(london(2024, 6, 4, 10))                   # Tuesday 10:00: 1h on Monday + 1h on Tuesday paused
    move(agent, req, "in_progress")
    m = metric_of(req)
    assert m.paused_seconds == 2 * 3600
    assert m.resolution_due_at == london(2024, 6, 4, 12)
    assert m.response_due_at == london(2024, 6, 3, 11)  # the pause began after the response was due


# ---------------------------------------------------------------- resolving and reopening

def test_resolving_on_time_meets_the_resolution_target(raise_request, clock, agent):
    req = raise_request()
    clock.advance(hours=1)
    move(agent, req, "in_progress")
    clock.advance(hours=5)
    move(agent, req, "resolved")
    m = metric_of(req)
    assert (m.resolved_at, m.resolution_sla_met, m.response_sla_met) == (T0 + 6 * H, True, True)
    assert (m.is_breached, m.status) == (False, "resolved")
    assert kinds_of(req)[-1] == ("resolved", "resolution")
    assert sla.check_all_breaches(now=T0 + 100 * H) == []
    assert sla.check_at_risk(now=T0 + 100 * H) == 0


def test_resolving_directly_is_also_the_response(raise_request, clock, agent):
    req = raise_request()
    clock.advance(hours=0.5)
    move(agent, req, "resolved")
    m = metric_of(req)
    assert m.responded_at == m.resolved_at == T0 + 0.5 * H
    assert (m.response_sla_met, m.resolution_sla_met) == (True, True)


def test_resolving_late_breaches_both_targets_once(raise_request, clock, agent):
    req = raise_request()
    clock.advance(hours=9)
    move(agent, req, "resolved")
    m = metric_of(req)
    assert (m.response_sla_met, m.resolution_sla_met, m.is_breached, m.breach_type) == (False, False, True, "both")
    breached = {e.target: e.detail["hours_overdue"] for e in events_of(req) if e.kind == "breached"}
    assert breached == {"response": 7.0, "resolution": 1.0}
    assert sla.check_all_breaches(now=T0 + 10 * H) == []


@pytest.mark.parametrize("via_close", [False, True], ids=["reopen-resolved", "reopen-closed"])
def test_reopening_continues_the_resolution_clock_without_the_resolved_period(
        raise_request, clock, agent, requester, via_close):
    req = raise_request()
    clock.advance(hours=0.5)
    reply(agent, req)
    clock.set(T0 + 3 * H)
    move(agent, req, "resolved")                      # 3 of 8 hours used
    if via_close:
        clock.set(T0 + 4 * H)
        move(requester, req, "closed")
    assert sla.check_all_breaches(now=T0 + 19 * H) == []
    clock.set(T0 + 20 * H)
    move(agent if via_close else requester, req, "open")  # reopened after 17 hours resolved (closed: by staff)
    m = metric_of(req)
    assert (m.resolved_at, m.resolution_sla_met, m.status) == (None, None, "open")
    assert m.resolution_due_at == T0 + 25 * H
    assert m.responded_at == T0 + 0.5 * H and m.response_sla_met is True
    reopened = events_of(req)[-1]
    assert (reopened.kind, reopened.at, reopened.detail) == ("resumed", T0 + 20 * H,
                                                             {"reason": "reopened", "to": "open"})
    assert sla.check_all_breaches(now=T0 + 24.5 * H) == []
    assert sla.check_all_breaches(now=T0 + 26 * H) == [{
        "request_id": req.id, "title": req.title, "priority": "high",
        "breaches": [{"type": "resolution", "hours_overdue": 1.0}]}]


def test_a_requester_reply_to_a_resolved_request_reopens_it_and_continues_the_resolution_clock(
        raise_request, clock, agent, requester):
    req = raise_request()
    clock.set(T0 + 0.5 * H)
    reply(agent, req)
    clock.set(T0 + 3 * H)
    move(agent, req, "resolved")                      # 3 of 8 hours used
    clock.set(T0 + 20 * H)
    reply(requester, req, body="It is broken again.")  # reopened by the reply, 17 hours later
    m = metric_of(req)
    assert (m.resolved_at, m.resolution_sla_met, m.status) == (None, None, "open")
    assert m.resolution_due_at == T0 + 25 * H
    reopened = events_of(req)[-1]
    assert (reopened.kind, reopened.at, reopened.detail) == ("resumed", T0 + 20 * H,
                                                             {"reason": "reopened", "to": "open"})
    assert sla.check_all_breaches(now=T0 + 24.5 * H) == []


def test_resolving_again_after_a_reopen_is_judged_on_the_continued_clock(raise_request, clock, agent):
    req = raise_request()
    clock.set(T0 + 0.5 * H)
    reply(agent, req)
    clock.set(T0 + 3 * H)
    move(agent, req, "resolved")
    clock.set(T0 + 20 * H)
    move(agent, req, "in_progress")
    clock.set(T0 + 24 * H)                             # 7 of 8 hours used
    move(agent, req, "resolved")
    m = metric_of(req)
    assert (m.resolved_at, m.resolution_sla_met, m.is_breached) == (T0 + 24 * H, True, False)
    assert [k for k, _ in kinds_of(req)] == ["started", "responded", "resolved", "resumed", "resolved"]


# ---------------------------------------------------------------- reclassification and definition edits

def test_a_priority_change_restarts_from_the_original_start_with_the_new_definition(
        raise_request, clock, agent, defs):
    req = raise_request()
    clock.advance(hours=0.5)
    svc.update_request(agent, req.id, {"priority": "critical"})
    m = metric_of(req)
    assert m.started_at == T0
    assert m.definition_id == defs["critical"].id
    assert (m.response_target_hours, m.resolution_target_hours) == (1, 4)
    assert (m.response_due_at, m.resolution_due_at) == (T0 + H, T0 + 4 * H)
    assert (m.response_warn_at, m.resolution_warn_at) == (T0 + 0.75 * H, T0 + 3 * H)
    recalculated = events_of(req)[-1]
    assert (recalculated.kind, recalculated.at, recalculated.actor_id) == ("recalculated", T0 + 0.5 * H, agent.id)
    assert recalculated.detail == {
        "reason": "reclassified",
        "from": {"category": "hardware", "priority": "high", "definition_id": defs["high"].id,
                 "response_hours": 2.0, "resolution_hours": 8.0},
        "to": {"category": "hardware", "priority": "critical", "definition_id": defs["critical"].id,
               "response_hours": 1.0, "resolution_hours": 4.0},
    }
    [row] = audit_rows(req.id, "sla.recalculated")
    assert row.actor_id == agent.id
    assert row.before == {"definition_id": defs["high"].id, "response_hours": 2.0, "resolution_hours": 8.0}
    assert row.after == {"definition_id": defs["critical"].id, "response_hours": 1.0, "resolution_hours": 4.0}
    # The new, shorter response target is already past due at 1h30.
    assert sla.check_all_breaches(now=T0 + 1.5 * H)[0]["breaches"] == [{"type": "response", "hours_overdue": 0.5}]


def test_a_category_change_picks_up_the_new_calendar(raise_request, clock, agent, defs):
    req = raise_request()                              # Monday 11:00 London
    clock.advance(hours=1)
    svc.update_request(agent, req.id, {"category": "software"})
    m = metric_of(req)
    assert (m.definition_id, m.calendar_id) == (defs["office"].id, defs["calendar"].id)
    assert m.response_due_at == london(2024, 6, 3, 12)
    assert m.resolution_due_at == london(2024, 6, 4, 11)   # 7h Monday + 2h Tuesday
    assert [k for k, _ in kinds_of(req)] == ["started", "recalculated"]


def test_reclassifying_to_a_pair_without_a_definition_clears_the_targets(raise_request, clock, agent):
    req = raise_request()
    clock.advance(hours=1)
    svc.update_request(agent, req.id, {"category": "network"})
    m = metric_of(req)
    assert (m.definition_id, m.response_target_hours, m.response_due_at, m.resolution_due_at) == (None,) * 4
    assert events_of(req)[-1].detail["to"] == {"category": "network", "priority": "high", "definition_id": None,
                                               "response_hours": None, "resolution_hours": None}
    assert sla.check_all_breaches(now=T0 + 100 * H) == []


def test_other_edits_do_not_recalculate(raise_request, clock, agent):
    req = raise_request()
    clock.advance(hours=1)
    svc.update_request(agent, req.id, {"title": "Printer on fire", "assignee_id": agent.id})
    assert [k for k, _ in kinds_of(req)] == ["started"]
    assert audit_rows(req.id, "sla.recalculated") == []


def test_editing_the_definition_does_not_change_an_open_clock(ctx, raise_request, clock, agent, defs):
    req = raise_request()
    definition = db.session.get(SlaDefinition, defs["high"].id)
    definition.response_time_hours = 10
    definition.resolution_time_hours = 20
    db.session.commit()
    clock.advance(hours=1)
    move(agent, req, "waiting_on_customer")
    clock.advance(hours=1)
    move(agent, req, "in_progress")                   # two syncs, two recomputes
    m = metric_of(req)
    assert (m.response_target_hours, m.resolution_target_hours) == (2, 8)
    assert m.resolution_due_at == T0 + 9 * H
    # A new request gets the new targets.
    assert metric_of(raise_request()).response_target_hours == 10


# ---------------------------------------------------------------- exemptions

@pytest.mark.parametrize(("reason", "kind", "duration", "fields"), [
    ("", "both", None, {"reason"}),
    ("   ", "both", None, {"reason"}),
    (None, "both", None, {"reason"}),
    (42, "both", None, {"reason"}),
    ("x" * 2001, "both", None, {"reason"}),
    ("bad\x00reason", "both", None, {"reason"}),
    ("Vendor outage", "everything", None, {"exemption_type"}),
    ("Vendor outage", None, None, {"exemption_type"}),
    ("Vendor outage", "both", "soon", {"duration_hours"}),
    ("Vendor outage", "both", 0, {"duration_hours"}),
    ("Vendor outage", "both", "-4", {"duration_hours"}),
    ("Vendor outage", "both", "NaN", {"duration_hours"}),
    ("Vendor outage", "both", "Infinity", {"duration_hours"}),
    ("Vendor outage", "both", 8761, {"duration_hours"}),
    ("Vendor outage", "both", True, {"duration_hours"}),
    ("", "nope", "x", {"reason", "exemption_type", "duration_hours"}),
], ids=["empty", "blank", "none", "not-text", "too-long", "nul", "bad-type", "no-type", "not-a-number", "zero",
        "negative", "nan", "infinite", "over-a-year", "bool", "all-wrong"])
def test_grant_exemption_validates(raise_request, manager, clock, reason, kind, duration, fields):
    req = raise_request()
    before = state_of_all()
    with pytest.raises(ValidationFailed) as err:
        sla.grant_exemption(manager, req.id, reason, kind, duration, now=clock())
    assert set(err.value.fields) == fields
    assert state_of_all() == before
    assert audit_rows(req.id, "sla.exemption_granted") == []


def test_grant_exemption_refuses_a_duration_that_rounds_to_zero(raise_request, manager, clock):
    """BUG: 0.001 passes the "> 0" check, is then quantized to 0.00 and stored; the database's
    duration_positive check constraint rejects the insert, so an IntegrityError (a 500) escapes
    instead of a ValidationFailed on duration_hours."""
    req = raise_request()
    with pytest.raises(ValidationFailed) as err:
        sla.grant_exemption(manager, req.id, "Vendor outage", "both", "0.001", now=clock())
    assert set(err.value.fields) == {"duration_hours"}


@pytest.mark.parametrize("role", ["requester", "agent"])
def test_only_managers_and_admins_may_grant(factories, raise_request, clock, role):
    req = raise_request()
    user = factories.make_user(role)
    with pytest.raises(Forbidden):
        sla.grant_exemption(user, req.id, "Vendor outage", "both", None, now=clock())
    assert count(SlaExemption) == 0


def test_an_inactive_manager_may_not_grant(factories, raise_request, clock):
    req = raise_request()
    retired = factories.make_user("manager", active=False)
    with pytest.raises(Forbidden):
        sla.grant_exemption(retired, req.id, "Vendor outage", "both", None, now=clock())


def test_grant_exemption_on_a_missing_request(raise_request, manager, clock):
    raise_request()
    with pytest.raises(NotFound):
        sla.grant_exemption(manager, 987654, "Vendor outage", "both", None, now=clock())


def test_an_indefinite_exemption_stops_the_targets_breaching_until_revoked(raise_request, clock, manager, admin):
    req = raise_request()
    clock.advance(hours=1)
    exemption = sla.grant_exemption(manager, req.id, "  Waiting for the vendor  ", "both", "", now=clock())
    assert (exemption.reason, exemption.duration_hours, exemption.expires_at) == ("Waiting for the vendor", None,
                                                                                    None)
    assert (exemption.granted_at, exemption.granted_by_id) == (T0 + H, manager.id)
    m = metric_of(req)
    assert (m.response_due_at, m.resolution_due_at, m.response_warn_at, m.resolution_warn_at) == (None,) * 4
    assert kinds_of(req) == [("started", None), ("exempted", "response"), ("exempted", "resolution")]
    assert events_of(req)[1].detail == {"exemption_id": exemption.id, "reason": "Waiting for the vendor",
                                        "duration_hours": None}
    [granted] = audit_rows(req.id, "sla.exemption_granted")
    assert granted.actor_id == manager.id
    assert granted.after == {"exemption_id": exemption.id, "type": "both", "duration_hours": None,
                             "reason": "Waiting for the vendor"}
    assert sla.check_all_breaches(now=T0 + 100 * H) == []
    assert sla.check_at_risk(now=T0 + 100 * H) == 0
    assert metric_of(req).is_breached is False
    # Revoked four hours later: the clock counts again from now, four hours later than it would have.
    clock.set(T0 + 5 * H)
    revoked = sla.revoke_exemption(admin, req.id, exemption.id)
    assert (revoked.revoked_at, revoked.revoked_by_id) == (T0 + 5 * H, admin.id)
    m = metric_of(req)
    assert (m.response_due_at, m.resolution_due_at) == (T0 + 6 * H, T0 + 12 * H)
    assert kinds_of(req)[-2:] == [("exemption_revoked", "response"), ("exemption_revoked", "resolution")]
    assert len(audit_rows(req.id, "sla.exemption_revoked")) == 1
    with pytest.raises(Conflict):
        sla.revoke_exemption(admin, req.id, exemption.id, now=T0 + 6 * H)
    assert sla.check_all_breaches(now=T0 + 7 * H)[0]["breaches"] == [{"type": "response", "hours_overdue": 1.0}]


def test_a_four_hour_exemption_moves_the_due_by_the_time_it_covers_24x7(raise_request, clock, manager):
    req = raise_request()
    clock.advance(hours=1)
    exemption = sla.grant_exemption(manager, req.id, "Part on order", "response", 4, now=clock())
    assert exemption.expires_at == T0 + 5 * H
    assert exemption.duration_hours == 4
    m = metric_of(req)
    assert (m.response_due_at, m.resolution_due_at) == (T0 + 6 * H, T0 + 8 * H)   # resolution not exempt
    assert kinds_of(req)[-1] == ("exempted", "response")
    # After it expires the clock runs again without anyone doing anything.
    assert sla.check_all_breaches(now=T0 + 5.5 * H) == []
    assert sla.check_all_breaches(now=T0 + 6.5 * H)[0]["breaches"] == [{"type": "response", "hours_overdue": 0.5}]
    with pytest.raises(Conflict):
        sla.revoke_exemption(manager, req.id, exemption.id, now=T0 + 7 * H)


def test_a_four_hour_exemption_in_business_hours_moves_the_due_by_business_time(raise_request, clock, manager,
                                                                                agent):
    req = raise_request("software", "high", at=london(2024, 6, 3, 10))
    clock.set(london(2024, 6, 3, 10, 15))
    reply(agent, req)
    clock.set(london(2024, 6, 3, 16))
    sla.grant_exemption(manager, req.id, "Site closed", "resolution", "4", now=clock())
    # 16:00-20:00 covers two business hours (16:00-18:00): Tuesday 10:00 becomes Tuesday 12:00.
    assert metric_of(req).resolution_due_at == london(2024, 6, 4, 12)
    assert sla.check_all_breaches(now=london(2024, 6, 4, 11, 59)) == []
    assert sla.check_all_breaches(now=london(2024, 6, 4, 12, 30))[0]["breaches"] == [
        {"type": "resolution", "hours_overdue": 0.5}]


def test_revoke_exemption_permissions(factories, raise_request, clock, manager):
    req = raise_request()
    exemption = sla.grant_exemption(manager, req.id, "Part on order", "both", None, now=clock())
    with pytest.raises(Forbidden):
        sla.revoke_exemption(factories.make_user("agent"), req.id, exemption.id, now=clock())
    with pytest.raises(NotFound):
        sla.revoke_exemption(manager, req.id, 987654, now=clock())
    assert db.session.get(SlaExemption, exemption.id).revoked_at is None
    assert sla.list_exemptions(req.id)[0].id == exemption.id


def test_an_exemption_granted_after_the_due_does_not_undo_the_breach(raise_request, clock, manager):
    req = raise_request()
    clock.advance(hours=3)
    sla.grant_exemption(manager, req.id, "Too late", "response", None, now=clock())
    assert metric_of(req).response_due_at == T0 + 2 * H
    assert sla.check_all_breaches(now=clock())[0]["breaches"] == [{"type": "response", "hours_overdue": 1.0}]


# ---------------------------------------------------------------- the periodic checks

def test_check_all_breaches_reports_marks_and_records_once(raise_request, clock, agent, defs):
    a = raise_request(at=T0)
    b = raise_request(at=T0 + 0.5 * H)
    c = raise_request("network", "low", at=T0 + 0.5 * H)   # no SLA
    d = raise_request(at=T0 + 0.5 * H)
    clock.advance(hours=0.5)
    reply(agent, d)                                      # d met its response
    now = T0 + 9 * H
    result = sla.check_all_breaches(now=now)
    assert result == [
        {"request_id": a.id, "title": a.title, "priority": "high",
         "breaches": [{"type": "response", "hours_overdue": 7.0}, {"type": "resolution", "hours_overdue": 1.0}]},
        {"request_id": b.id, "title": b.title, "priority": "high",
         "breaches": [{"type": "response", "hours_overdue": 6.5}, {"type": "resolution", "hours_overdue": 0.5}]},
        {"request_id": d.id, "title": d.title, "priority": "high",
         "breaches": [{"type": "resolution", "hours_overdue": 0.5}]},
    ]
    ma, md, mc = metric_of(a), metric_of(d), metric_of(c)
    assert (ma.is_breached, ma.breach_type, ma.response_sla_met, ma.resolution_sla_met) == (True, "both", False, False)
    assert (ma.response_breached_at, ma.resolution_breached_at, ma.updated_at) == (now, now, now)
    assert (md.is_breached, md.breach_type, md.response_sla_met, md.resolution_sla_met) == (
        True, "resolution", True, False)
    assert md.response_breached_at is None
    assert (mc.is_breached, mc.breach_type) == (False, None)
    breached = [(e.request_id, e.target, e.at, e.detail["hours_overdue"])
                for e in db.session.scalars(select(SlaEvent).where(SlaEvent.kind == "breached")
                                            .order_by(SlaEvent.request_id, SlaEvent.target))]
    assert breached == [(a.id, "resolution", now, 1.0), (a.id, "response", now, 7.0),
                        (b.id, "resolution", now, 0.5), (b.id, "response", now, 6.5),
                        (d.id, "resolution", now, 0.5)]
    before = state_of_all()
    assert sla.check_all_breaches(now=now) == []
    assert sla.check_all_breaches(now=now + 5 * H) == []
    assert state_of_all() == before


def test_breach_type_becomes_both_when_the_second_target_breaches(raise_request):
    req = raise_request()
    assert sla.check_all_breaches(now=T0 + 3 * H)[0]["breaches"] == [{"type": "response", "hours_overdue": 1.0}]
    m = metric_of(req)
    assert (m.is_breached, m.breach_type, m.resolution_breached_at) == (True, "response", None)
    assert sla.check_all_breaches(now=T0 + 8 * H) == [{
        "request_id": req.id, "title": req.title, "priority": "high",
        "breaches": [{"type": "resolution", "hours_overdue": 0.0}]}]   # due exactly now counts
    m = metric_of(req)
    assert (m.breach_type, m.response_breached_at, m.resolution_breached_at) == ("both", T0 + 3 * H, T0 + 8 * H)
    assert count(SlaEvent, SlaEvent.kind == "breached") == 2


def test_check_at_risk_flags_at_75_percent_once(raise_request, clock, agent):
    a = raise_request(at=T0)
    b = raise_request(at=T0)
    c = raise_request(at=T0)
    clock.advance(hours=0.5)
    reply(agent, b)                                          # b's response is met: never at risk
    assert sla.check_at_risk(now=T0 + 1.4 * H) == 0
    assert sla.check_at_risk(now=T0 + 1.5 * H) == 2          # a and c, response
    assert sla.check_at_risk(now=T0 + 1.6 * H) == 0
    ma, mb = metric_of(a), metric_of(b)
    assert (ma.response_at_risk_at, ma.resolution_at_risk_at) == (T0 + 1.5 * H, None)
    assert mb.response_at_risk_at is None
    assert ma.is_breached is False
    # c breaches before the next at-risk check: a breached target is not also reported at risk later.
    sla.check_all_breaches(now=T0 + 2.5 * H)
    assert sla.check_at_risk(now=T0 + 6 * H) == 3             # resolution of a, b and c
    assert sla.check_at_risk(now=T0 + 7 * H) == 0
    at_risk = [(e.request_id, e.target, e.at, e.detail)
               for e in db.session.scalars(select(SlaEvent).where(SlaEvent.kind == "at_risk")
                                           .order_by(SlaEvent.at, SlaEvent.request_id))]
    assert at_risk == [
        (a.id, "response", T0 + 1.5 * H, {"due_at": (T0 + 2 * H).isoformat()}),
        (c.id, "response", T0 + 1.5 * H, {"due_at": (T0 + 2 * H).isoformat()}),
        (a.id, "resolution", T0 + 6 * H, {"due_at": (T0 + 8 * H).isoformat()}),
        (b.id, "resolution", T0 + 6 * H, {"due_at": (T0 + 8 * H).isoformat()}),
        (c.id, "resolution", T0 + 6 * H, {"due_at": (T0 + 8 * H).isoformat()}),
    ]


def test_check_at_risk_skips_targets_breached_before_their_warning(raise_request):
    req = raise_request()
    sla.check_all_breaches(now=T0 + 3 * H)                   # response breached, never flagged at risk
    assert sla.check_at_risk(now=T0 + 3 * H) == 0
    assert metric_of(req).response_at_risk_at is None


def test_check_at_risk_uses_the_definitions_percentage(ctx, raise_request, defs):
    defs["high"].at_risk_percent = 50
    db.session.commit()
    req = raise_request()
    assert metric_of(req).response_warn_at == T0 + H
    assert sla.check_at_risk(now=T0 + H) == 1


def test_check_at_risk_on_met_targets_of_resolved_requests(raise_request, clock, agent):
    req = raise_request()
    clock.advance(hours=1)
    move(agent, req, "resolved")
    assert sla.check_at_risk(now=T0 + 100 * H) == 0
    # Both at the same instant (the resolution is the response); "resolved" is written first.
    assert sorted(k for k, _ in kinds_of(req)) == ["resolved", "responded", "started"]


# ---------------------------------------------------------------- a whole life

def test_every_event_kind_in_order_over_a_full_lifecycle(raise_request, clock, agent, requester, manager):
    req = raise_request()                                    # hardware/high: 2h / 8h
    assert sla.check_at_risk(now=T0 + 1.6 * H) == 1          # response at risk
    clock.set(T0 + 1.7 * H)
    move(agent, req, "waiting_on_customer")                  # paused
    clock.set(T0 + 2.7 * H)
    reply(requester, req, body="Serial number: 1234")        # resumed; response now due T0+3h
    assert sla.check_all_breaches(now=T0 + 3.5 * H)[0]["breaches"] == [{"type": "response", "hours_overdue": 0.5}]
    clock.set(T0 + 3.6 * H)
    reply(agent, req)                                        # responded (late, already breached)
    clock.set(T0 + 4 * H)
    exemption = sla.grant_exemption(manager, req.id, "Courier strike", "resolution", None, now=clock())
    clock.set(T0 + 4.5 * H)
    sla.revoke_exemption(manager, req.id, exemption.id, now=clock())
    clock.set(T0 + 5 * H)
    svc.update_request(agent, req.id, {"priority": "critical"})   # recalculated: 4h resolution from T0
    # 4h + 1h paused + 0.5h exempt
    assert metric_of(req).resolution_due_at == T0 + 5.5 * H
    clock.set(T0 + 5.2 * H)
    move(agent, req, "resolved")
    assert metric_of(req).resolution_sla_met is True
    clock.set(T0 + 6 * H)
    move(requester, req, "open")                             # reopened: resolution due T0+6.3h
    assert metric_of(req).resolution_due_at == T0 + 6.3 * H
    assert sla.check_all_breaches(now=T0 + 7 * H)[0]["breaches"] == [{"type": "resolution", "hours_overdue": 0.7}]

    events = events_of(req)
    assert [(e.kind, e.target) for e in events] == [
        ("started", None),
        ("at_risk", "response"),
        ("paused", None),
        ("resumed", None),
        ("breached", "response"),
        ("responded", "response"),
        ("exempted", "resolution"),
        ("exemption_revoked", "resolution"),
        ("recalculated", None),
        ("resolved", "resolution"),
        ("resumed", None),
        ("breached", "resolution"),
    ]
    assert [e.at for e in events] == [T0 + h * H for h in (0, 1.6, 1.7, 2.7, 3.5, 3.6, 4, 4.5, 5, 5.2, 6, 7)]
    assert {e.kind for e in events} == set(EVENT_KINDS)
    m = metric_of(req)
    assert (m.is_breached, m.breach_type, m.response_sla_met, m.resolution_sla_met) == (True, "both", False, False)
    assert m.paused_seconds == 3600
    assert count(AuditLog, AuditLog.action.like("sla.%")) == 3


# ---------------------------------------------------------------- long targets

def test_a_long_business_hours_target_does_not_stop_requests_being_raised(ctx, factories, requester, clock, defs):
    """BUG (see tests/domain/test_sla_clock.py::test_a_long_target_on_a_working_calendar_gets_a_due_time):
    sla_admin allows targets up to 8760 hours, but on a Mon-Fri 09:00-18:00 calendar anything above
    roughly 7,000 hours makes add_business_time raise CalendarError, so create_request fails and the
    request cannot be raised at all."""
    make_definition("software", "low", 8, 8000, calendar=defs["calendar"])
    req = factories.make_request(requester, category="software", priority="low")   # raises CalendarError
    assert metric_of(req).resolution_due_at is not None
    assert db.session.scalar(select(SlaMetric.id).where(SlaMetric.request_id == req.id)) is not None
