"""What happens to open clocks when the rules change: calendars, definitions and pause statuses."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from portal.policy import SYSTEM
from portal.services import requests as svc
from portal.services import sla, sla_admin
from tests.services.sla_helpers import Clock, H, kinds_of, london, make_calendar, make_definition, metric_of

T0 = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in London


@pytest.fixture()
def clock(ctx, monkeypatch):
    c = Clock(T0)
    monkeypatch.setattr("portal.services.requests.commands.utcnow", c)
    monkeypatch.setattr("portal.services.sla.exemptions.utcnow", c)
    monkeypatch.setattr("portal.services.sla.checks.utcnow", c)
    monkeypatch.setattr("portal.services.sla_admin.utcnow", c)
    return c


@pytest.fixture()
def office(clock):
    """software/high: 1 h response, 9 h resolution on London office hours (Mon-Fri 09:00-18:00)."""
    cal = make_calendar("London office")
    make_definition("software", "high", 1, 9, calendar=cal)
    return cal


def test_calendar_edits_reach_open_clocks_only_when_applied(factories, clock, office):
    req = factories.make_request(category="software", priority="high")
    before = metric_of(req).resolution_due_at
    assert before == london(2024, 6, 4, 11)  # 7 h on Monday (11:00-18:00) + 2 h on Tuesday

    # The admin declares Tuesday a holiday without applying it: the open clock keeps its calendar,
    # even when something else about the request changes later.
    sla_admin.add_holiday(SYSTEM, office.id, date(2024, 6, 4), "Office move")
    clock.advance(hours=1)
    svc.add_comment(factories.make_user("agent"), req.id, "Looking into it.")
    assert metric_of(req).resolution_due_at == before

    # Applied: the clock is rebuilt under the new calendar, with its targets as they were.
    assert sla_admin.rebuild_open_clocks(calendar_id=office.id, now=clock()) == 1
    m = metric_of(req)
    assert m.resolution_due_at == london(2024, 6, 5, 11)  # Tuesday no longer counts
    assert float(m.resolution_target_hours) == 9
    assert kinds_of(req)[-1] == ("recalculated", None)


def test_a_calendar_rebuild_does_not_apply_unapplied_target_changes(factories, clock, office):
    req = factories.make_request(category="software", priority="high")
    definition = sla.find_definition("software", "high")
    sla_admin.update_definition(SYSTEM, definition.id, {"resolution_time_hours": 40})  # not applied
    sla_admin.update_calendar(SYSTEM, office.id, {"opens": time(8, 0)})
    sla_admin.rebuild_open_clocks(calendar_id=office.id, now=clock())
    m = metric_of(req)
    assert float(m.resolution_target_hours) == 9
    assert m.calendar["opens"] == "08:00"


def test_a_definition_pausing_in_open_starts_paused(factories, clock):
    make_definition("hardware", "low", 4, 24, pause_statuses=["open", "waiting_on_customer"])
    req = factories.make_request(category="hardware", priority="low")
    m = metric_of(req)
    assert (m.response_due_at, m.resolution_due_at, m.paused_since) == (None, None, T0)
    assert kinds_of(req) == [("started", None), ("paused", None)]

    clock.advance(hours=3)
    svc.change_status(factories.make_user("agent"), req.id, "in_progress")
    m = metric_of(req)
    assert m.paused_since is None
    assert m.resolution_due_at == T0 + 3 * H + 24 * H  # the three open hours did not count


def test_reclassifying_into_a_rule_that_pauses_the_current_status_pauses_the_clock(factories, clock):
    make_definition("hardware", "high", 2, 8)
    make_definition("network", "high", 2, 8, pause_statuses=["in_progress"])
    agent = factories.make_user("agent")
    req = factories.make_request(category="hardware", priority="high")
    svc.change_status(agent, req.id, "in_progress")
    clock.advance(hours=1)
    svc.update_request(agent, req.id, {"category": "network"})
    m = metric_of(req)
    assert m.paused_since == T0 + 1 * H and m.resolution_due_at is None
    assert ("paused", None) in kinds_of(req)
