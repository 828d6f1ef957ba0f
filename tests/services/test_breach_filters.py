"""The breach list's filters (portal.services.sla_reports): one parser for the page, its HTMX table
and the API; a date range whose end is before its start is refused whole."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from portal.extensions import db
from portal.models import ServiceRequest, SlaMetric
from portal.models._time import utcnow
from portal.services import requests as svc
from portal.services import sla, sla_reports
from portal.services.errors import ValidationFailed
from tests.services.sla_helpers import make_definition

REVERSED = {"priority": "high", "category": "network", "state": "breached", "assignee": "none",
            "from": "2026-03-10", "to": "2026-03-05"}
END_BEFORE_START = "The end date is before the start date."


def test_parse_breach_filters_end_before_start_applies_nothing(ctx):
    filters = sla_reports.parse_breach_filters(MultiDict(REVERSED))

    assert filters.refused
    assert filters.errors == {"to": END_BEFORE_START}
    assert (filters.priority, filters.category, filters.state, filters.assignee) == ("", "", "", "")
    assert filters.date_from is None and filters.date_to is None


def test_parse_breach_filters_end_before_start_keeps_what_was_typed(ctx):
    filters = sla_reports.parse_breach_filters(MultiDict({**REVERSED, "to": " 2026-03-05 "}))

    assert filters.form_value("from") == "2026-03-10" and filters.form_value("to") == "2026-03-05"
    assert filters.form_value("priority") == "high"
    # The poll and pager URLs ask for the same submission, so a refresh shows the same refusal.
    assert filters.as_query(page=2) == {**REVERSED, "page": 2}


def _breached_request(factories, category: str, priority: str) -> int:
    """A request raised three hours ago against a one-hour response target: breached."""
    req = factories.make_request(category=category, priority=priority)
    metric = sla.get_metric(req.id)
    req.created_at -= timedelta(hours=3)
    metric.started_at -= timedelta(hours=3)
    sla.recompute(metric, utcnow())
    db.session.commit()
    sla.check_all_breaches()
    return req.id


def test_breach_list_of_a_refused_submission_is_the_unfiltered_list(ctx, factories):
    make_definition("network", "high", 1, 4)
    make_definition("software", "low", 1, 4)
    ids = {_breached_request(factories, "network", "high"), _breached_request(factories, "software", "low")}
    refused = sla_reports.parse_breach_filters(MultiDict(REVERSED))

    unfiltered = sla_reports.breach_list(sla_reports.BreachFilters())
    listed = sla_reports.breach_list(refused)

    assert unfiltered.total == 2 and {row.request.id for row in unfiltered.items} == ids
    assert listed.total == unfiltered.total
    assert [row.request.id for row in listed.items] == [row.request.id for row in unfiltered.items]


def test_parse_breach_filters_strict_names_the_end_date(ctx):
    with pytest.raises(ValidationFailed) as raised:
        sla_reports.parse_breach_filters(MultiDict(REVERSED), strict=True)

    assert raised.value.fields == {"to": END_BEFORE_START}


@pytest.mark.parametrize("start, end", [("2026-03-05", "2026-03-05"), ("2026-03-05", "2026-03-06"),
                                        ("2026-03-05", ""), ("", "2026-03-05")])
def test_parse_breach_filters_ordered_or_open_range_is_applied(ctx, start, end):
    filters = sla_reports.parse_breach_filters(MultiDict({"from": start, "to": end, "priority": "high"}))

    assert not filters.refused and filters.errors == {}
    assert filters.date_from == (date.fromisoformat(start) if start else None)
    assert filters.date_to == (date.fromisoformat(end) if end else None)
    assert filters.priority == "high"


def test_parse_breach_filters_other_bad_values_are_left_out_and_the_rest_applied(ctx):
    filters = sla_reports.parse_breach_filters(MultiDict({"priority": "urgent", "from": "2026-03-05"}))

    assert not filters.refused
    assert filters.errors == {"priority": "Unknown priority 'urgent'."}
    assert filters.priority == "" and filters.date_from == date(2026, 3, 5)
    assert filters.as_query() == {"from": "2026-03-05"}


def _listed(**filters) -> set[int]:
    return {row.request.id for row in sla_reports.breach_list(sla_reports.BreachFilters(**filters)).items}


def test_breach_filters_follow_the_request_as_it_is_reassigned_and_reprioritised(ctx, factories):
    """The list filters the clocks' own copies of priority, category and assignee (migration 0023):
    a change to the request moves its row between filters in the same transaction."""
    make_definition("network", "high", 1, 4)
    alex, sam = factories.make_user("agent"), factories.make_user("agent")
    manager = factories.make_user("manager")
    request_id = _breached_request(factories, "network", "high")

    assert request_id in _listed(mine_or_unassigned=alex.id) and request_id in _listed(assignee="none")
    svc.assign(manager, request_id, sam.id)
    assert request_id not in _listed(mine_or_unassigned=alex.id)
    assert request_id in _listed(mine_or_unassigned=sam.id) and request_id in _listed(assignee=str(sam.id))
    assert request_id not in _listed(assignee="none")

    svc.update_request(manager, request_id, {"priority": "low", "category": "software"})
    assert request_id in _listed(priority="low", category="software")
    assert request_id not in _listed(priority="high") and request_id not in _listed(category="network")


def test_breach_filters_of_requests_moved_by_two_agents_at_once(app, ctx, factories):
    """Two agents take and reprioritise the same breached requests at the same moment (real
    PostgreSQL, two connections): each clock ends with its request's final values, no deadlock."""
    from tests.services.test_concurrency import race

    make_definition("network", "high", 1, 4)
    alex, sam = factories.make_user("agent"), factories.make_user("agent")
    ids = [_breached_request(factories, "network", "high") for _ in range(6)]

    def take_all(agent_id: int, priority: str):
        def run():
            agent = db.session.get(type(alex), agent_id)
            for request_id in ids:
                svc.assign(agent, request_id, agent_id)
                svc.update_request(agent, request_id, {"priority": priority})
        return run

    assert race(app, take_all(alex.id, "low"), take_all(sam.id, "critical")) == [None, None]
    db.session.expire_all()
    for request_id in ids:
        req = db.session.get(ServiceRequest, request_id)
        row = db.session.execute(select(SlaMetric.assignee_id, SlaMetric.priority, SlaMetric.category)
                                 .where(SlaMetric.request_id == request_id)).one()
        assert tuple(row) == (req.assignee_id, req.priority, req.category)
    listed_alex, listed_sam = _listed(assignee=str(alex.id)), _listed(assignee=str(sam.id))
    assert listed_alex | listed_sam == set(ids) and not listed_alex & listed_sam


# ---------------------------------------------------------------- the polls' stamp (migration 0026)

def _stamp(**filters) -> str:
    db.session.rollback()  # a fresh snapshot, as a new poll has
    return sla_reports.breach_list_stamp(sla_reports.BreachFilters(**filters))


def test_the_stamp_moves_with_every_change_the_list_shows_and_only_then(ctx, factories):
    from portal.services.sla import exemptions

    make_definition("network", "high", 1, 4)
    first, second = _breached_request(factories, "network", "high"), _breached_request(factories, "network", "high")
    agent = factories.make_user("agent")
    manager = factories.make_user("manager")
    quiet = _stamp()
    assert quiet == _stamp()                           # nothing changed: the same stamp
    assert quiet.startswith("2:")                      # two listed clocks

    factories.make_request(category="network", priority="high")   # a new request, not (yet) listed
    assert _stamp() == quiet

    stamps = [quiet]
    svc.update_request(agent, first, {"title": "Core switch down"})              # the title shown
    stamps.append(_stamp())
    svc.assign(agent, first, agent.id)                                            # the assignee shown
    stamps.append(_stamp())
    exemptions.grant_exemption(manager, second, "Vendor outage, waiting on the carrier.", "response", 24)
    stamps.append(_stamp())                                                       # the exemption note
    svc.change_status(agent, second, "resolved")                                  # leaves the list
    stamps.append(_stamp())
    assert stamps[-1].startswith("1:")
    assert len(set(stamps)) == len(stamps), stamps
    # Filtered lists have their own: the agent's view (theirs or unassigned) holds the first one only.
    assert _stamp(mine_or_unassigned=agent.id).startswith("1:")
    assert _stamp(priority="low") == "0:0"


def test_a_change_that_commits_after_a_later_one_still_moves_the_stamp(app, ctx, factories):
    """Two changes take numbers 1 and 2; the one with 2 commits first and a poll reads the stamp; when
    the one with 1 commits, the stamp moves (a maximum would still say 2 and the poll would keep the
    stale list)."""
    from sqlalchemy import text

    make_definition("network", "high", 1, 4)
    first, second = _breached_request(factories, "network", "high"), _breached_request(factories, "network", "high")
    db.session.commit()
    early, late = db.engine.connect(), db.engine.connect()
    try:
        early_txn = early.begin()
        early.execute(text("UPDATE sla_metric SET paused_seconds = paused_seconds + 1 WHERE request_id = :id"),
                      {"id": first})                     # takes the lower number, commits last
        with late.begin():
            late.execute(text("UPDATE sla_metric SET paused_seconds = paused_seconds + 1 WHERE request_id = :id"),
                         {"id": second})
        between = _stamp()
        early_txn.commit()
    finally:
        early.close()
        late.close()
    after = _stamp()
    assert after != between
    seqs = db.session.execute(text("SELECT request_id, change_seq FROM sla_metric WHERE request_id IN (:a, :b)"),
                              {"a": first, "b": second}).all()
    assert dict(seqs)[first] < dict(seqs)[second]     # the race really was out of order
