"""The SLA report rollups: the reports equal a count over every clock, before and after the
recount, after changes of every kind, and while a recount races a change."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from portal.extensions import db
from portal.models import ServiceRequest, SlaMetric, SlaRollupDirty, User
from portal.services import sla_reports, sla_rollup
from tests import factories as make

NOW = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
CATEGORIES = ("hardware", "software", "network")
PRIORITIES = ("low", "medium", "high", "critical")


def _seed(count: int = 160, seed: int = 7) -> list[int]:
    """Requests with clocks over the last 70 days: targets met, late or open, breaches recorded."""
    rng = random.Random(seed)
    requester = make.make_user("requester")
    agents = [make.make_user("agent", name=f"Agent {i}") for i in range(3)]
    ids = []
    for _ in range(count):
        created = NOW - timedelta(days=rng.uniform(0, 70))
        assignee = rng.choice([*agents, None])
        req = ServiceRequest(title="Rollup", description="d", category=rng.choice(CATEGORIES),
                             priority=rng.choice(PRIORITIES), status="open", requester_id=requester.id,
                             assignee_id=assignee.id if assignee else None, created_at=created, updated_at=created)
        db.session.add(req)
        db.session.flush()
        metric = SlaMetric(request_id=req.id, started_at=created, created_at=created, updated_at=created,
                           status="open", pause_statuses=[], at_risk_percent=75)
        for target in ("response", "resolution"):
            met = rng.choice([True, False, None])
            setattr(metric, f"{target}_sla_met", met)
            if met is False:
                setattr(metric, f"{target}_breached_at", min(NOW, created + timedelta(hours=rng.uniform(1, 90))))
        metric.is_breached = bool(metric.response_breached_at or metric.resolution_breached_at)
        db.session.add(metric)
        ids.append(req.id)
    db.session.commit()
    return ids


def _oracle(days: int) -> tuple[dict, dict]:
    """The compliance report and breach statistics counted from every clock, by brute force."""
    since = NOW - timedelta(days=days)
    rows = db.session.execute(select(SlaMetric, ServiceRequest).join(
        ServiceRequest, ServiceRequest.id == SlaMetric.request_id)).all()
    names = dict(db.session.execute(select(User.id, User.name)).all())
    groups: dict[str, dict] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    breaches = {"response": 0, "resolution": 0, "priority": defaultdict(int), "category": defaultdict(int)}
    for metric, req in rows:
        if since <= metric.created_at <= NOW:
            for target in ("response", "resolution"):
                met = getattr(metric, f"{target}_sla_met")
                if met is None:
                    continue
                week = (metric.created_at.date() - timedelta(days=metric.created_at.weekday())).isoformat()
                for name, key in (("category", req.category), ("priority", req.priority), ("week", week),
                                  ("agent", names.get(req.assignee_id, "Unassigned")), ("overall", None)):
                    groups[name][key][0] += int(met)
                    groups[name][key][1] += 1
        for target in ("response", "resolution"):
            at = getattr(metric, f"{target}_breached_at")
            if at is not None and since <= at <= NOW:
                breaches[target] += 1
                breaches["priority"][req.priority] += 1
                breaches["category"][req.category] += 1
    report = {name: {k: tuple(v) for k, v in counts.items()} for name, counts in groups.items()}
    stats = {"response": breaches["response"], "resolution": breaches["resolution"],
             "priority": dict(breaches["priority"]), "category": dict(breaches["category"])}
    return report, stats


def _reported(days: int) -> tuple[dict, dict]:
    report = sla_reports.compliance_report(days, NOW)
    stats = sla_reports.statistics(days, NOW)
    shaped = {
        "category": {r["category"]: (r["met"], r["total"]) for r in report["by_category"]},
        "priority": {r["priority"]: (r["met"], r["total"]) for r in report["by_priority"]},
        "agent": {r["agent"]: (r["met"], r["total"]) for r in report["by_agent"]},
        "week": {r["week"]: (r["met"], r["total"]) for r in report["weekly"]},
    }
    if report["overall"]["total"]:
        shaped["overall"] = {None: (report["overall"]["met"], report["overall"]["total"])}
    assert (stats["targets_met"], stats["targets_decided"]) == (report["overall"]["met"], report["overall"]["total"])
    return shaped, {"response": stats["response_breaches"], "resolution": stats["resolution_breaches"],
                    "priority": stats["breaches_by_priority"], "category": stats["breaches_by_category"]}


def _assert_exact() -> None:
    for days in (1, 7, 30, 365):
        assert _reported(days) == _oracle(days), days


def _dirty_days() -> set:
    return set(db.session.scalars(select(SlaRollupDirty.day)))


def test_reports_equal_a_count_of_every_clock_before_and_after_the_recount(ctx):
    ids = _seed()
    assert _dirty_days()  # the triggers logged every day a clock was added on
    _assert_exact()       # all live
    assert sla_rollup.refresh()["days"] > 0
    assert _dirty_days() == set()
    _assert_exact()       # all from the rollups (but today and the window's first part-day)

    rng = random.Random(3)
    changed = rng.sample(ids, 40)
    for request_id in changed[:10]:  # recategorised, reprioritised, reassigned
        req = db.session.get(ServiceRequest, request_id)
        req.category = "network" if req.category != "network" else "software"
        req.priority = "critical"
        req.assignee_id = None
    for request_id in changed[10:25]:  # a target decided, or a breach recorded, later
        metric = db.session.scalar(select(SlaMetric).where(SlaMetric.request_id == request_id))
        metric.resolution_sla_met = not metric.resolution_sla_met
        metric.response_breached_at = NOW - timedelta(hours=3)
    for request_id in changed[25:30]:  # deleted (clocks and all)
        db.session.delete(db.session.get(ServiceRequest, request_id))
    db.session.commit()
    assert _dirty_days()
    _assert_exact()       # rollups for the clean days, live for the touched ones
    sla_rollup.refresh()
    _assert_exact()


def test_a_change_committed_during_a_recount_is_not_lost(app, ctx):
    """The recount reads one snapshot and clears only the dirty rows it saw: a change committed
    while it runs stays dirty and is counted (live now, by the next recount later)."""
    ids = _seed(count=40, seed=11)
    sla_rollup.refresh()
    blocker = db.engine.connect()
    blocker_txn = blocker.begin()
    blocker.execute(text("LOCK TABLE sla_rollup_breach IN EXCLUSIVE MODE"))  # the recount will wait here
    metric = db.session.scalar(select(SlaMetric).where(SlaMetric.request_id == ids[0]))
    changed_day = metric.created_at.astimezone(UTC).date()
    # The day is already dirty when the recount starts: it recounts it and clears the rows it saw.
    db.session.execute(text("INSERT INTO sla_rollup_dirty (day) VALUES (:d)"), {"d": changed_day})
    db.session.commit()
    outcome: dict = {}

    def recount() -> None:
        with app.app_context():
            outcome.update(sla_rollup.refresh())
            db.session.remove()

    worker = threading.Thread(target=recount)
    worker.start()
    try:
        # Wait until the recount is blocked on the lock (its snapshot taken), then change a clock.
        for _ in range(200):
            waiting = db.session.scalar(text(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'sla_rollup_breach'::regclass"))
            db.session.rollback()
            if waiting:
                break
            threading.Event().wait(0.05)
        else:
            pytest.fail("the recount never reached the rollup tables")
        metric = db.session.scalar(select(SlaMetric).where(SlaMetric.request_id == ids[0]))
        metric.resolution_sla_met = not metric.resolution_sla_met
        db.session.commit()
    finally:
        blocker_txn.rollback()
        blocker.close()
        worker.join(timeout=30)
    assert outcome == {"skipped": False, "days": 1}
    assert _dirty_days() == {changed_day}  # the change's own mark is left for the next recount
    _assert_exact()
    sla_rollup.refresh()
    assert _dirty_days() == set()
    _assert_exact()


def test_the_recount_job_is_scheduled_on_the_analytics_queue():
    from portal.queueing import JOB_QUEUES, SCHEDULE

    entry = next(s for s in SCHEDULE if s.id == "refresh-sla-rollup")
    assert entry.func == "jobs.analytics.refresh_sla_rollup" and entry.cron == "*/5 * * * *"
    assert JOB_QUEUES["jobs.analytics.refresh_sla_rollup"] == "analytics"
