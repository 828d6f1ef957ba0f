"""The SLA report rollups: the reports equal a count over every clock, before and after the
fold, after changes of every kind, while changes race each other and while a fold races a change."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from portal.extensions import db
from portal.models import ServiceRequest, SlaMetric, SlaRollupAgent, SlaRollupBreach, SlaRollupTarget, User
from portal.services import sla_reports, sla_rollup
from tests import factories as make
from tests.services.sla_helpers import make_definition

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
    for name in ("category", "priority", "agent", "week"):  # the report has these even when empty
        groups[name]
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


def _rows() -> int:
    return sum(db.session.scalar(select(func.count()).select_from(model))
               for model in (SlaRollupTarget, SlaRollupAgent, SlaRollupBreach))


def _keys_with_several_rows() -> int:
    return db.session.scalar(text(
        "SELECT (SELECT count(*) FROM (SELECT 1 FROM sla_rollup_target GROUP BY day, category, priority "
        "HAVING count(*) > 1) a) + (SELECT count(*) FROM (SELECT 1 FROM sla_rollup_agent GROUP BY day, "
        "assignee_id HAVING count(*) > 1) b) + (SELECT count(*) FROM (SELECT 1 FROM sla_rollup_breach "
        "GROUP BY day, category, priority HAVING count(*) > 1) c)"))


def test_reports_equal_a_count_of_every_clock_before_and_after_the_fold(ctx):
    ids = _seed()
    _assert_exact()       # each clock added its own rows
    assert _keys_with_several_rows() > 0
    assert sla_rollup.fold()["rows"] > 0
    assert _keys_with_several_rows() == 0
    _assert_exact()

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
    _assert_exact()       # the folded rows plus the changes' differences
    before = _rows()
    sla_rollup.fold()
    assert _rows() < before
    _assert_exact()


def test_a_change_that_moves_no_figure_adds_no_row(ctx):
    ids = _seed(count=20, seed=5)
    sla_rollup.fold()
    before = _rows()
    metric = db.session.scalar(select(SlaMetric).where(SlaMetric.request_id == ids[0]))
    metric.paused_seconds = (metric.paused_seconds or 0) + 60   # not a figure of any report
    req = db.session.get(ServiceRequest, ids[1])
    req.title = "Renamed"
    db.session.commit()
    assert _rows() == before


def test_the_reports_count_today_from_the_rollups_as_changes_land(ctx):
    """With `now` the present, today's figures come from the rows the changes added, not live."""
    make_definition("hardware", "high", 4, 24)
    req = make.make_request(category="hardware", priority="high")
    metric = db.session.scalar(select(SlaMetric).where(SlaMetric.request_id == req.id))
    metric.response_sla_met = True
    db.session.commit()
    first = sla_reports.statistics(1)
    metric.resolution_sla_met = False
    metric.resolution_breached_at = datetime.now(UTC)
    db.session.commit()
    second = sla_reports.statistics(1)
    assert (first["targets_met"], first["targets_decided"]) == (1, 1)
    assert (second["targets_met"], second["targets_decided"], second["resolution_breaches"]) == (1, 2, 1)
    assert second["breaches_by_priority"] == {"high": 1}


def test_changes_racing_on_the_same_day_and_key_are_all_counted(app, ctx):
    """Two transactions move figures of the same day, category and priority at once: neither
    waits on the other's rollup rows (they only insert) and both differences count."""
    _seed(count=30, seed=13)
    sla_rollup.fold()
    rows = db.session.execute(select(SlaMetric.request_id, SlaMetric.created_at, SlaMetric.category,
                                     SlaMetric.priority)).all()
    first = rows[0]
    twin = next((r for r in rows[1:] if (r.created_at.date(), r.category, r.priority)
                 == (first.created_at.date(), first.category, first.priority)), None)
    if twin is None:  # make one: same day, category and priority
        twin = rows[1]
        db.session.execute(text("UPDATE service_request SET category = :c, priority = :p WHERE id = :id"),
                           {"c": first.category, "p": first.priority, "id": twin.request_id})
        db.session.execute(text("UPDATE sla_metric SET created_at = :t WHERE request_id = :id"),
                           {"t": first.created_at, "id": twin.request_id})
        db.session.commit()
    a, b = db.engine.connect(), db.engine.connect()
    try:
        ta, tb = a.begin(), b.begin()
        b.execute(text("SET LOCAL lock_timeout = '5s'"))  # waiting on a would fail here, not hang
        for conn, request_id in ((a, first.request_id), (b, twin.request_id)):
            conn.execute(text("UPDATE sla_metric SET response_sla_met = NOT coalesce(response_sla_met, false) "
                              "WHERE request_id = :id"), {"id": request_id})
        # b did not wait for a: both are open at once, then commit.
        ta.commit()
        tb.commit()
    finally:
        a.close()
        b.close()
    _assert_exact()


def test_a_change_committed_during_a_fold_is_not_lost(app, ctx):
    """The fold deletes and re-adds the rows its snapshot saw, in one statement: a change's rows
    committed while it runs are not among them and stay."""
    ids = _seed(count=40, seed=11)
    # A second (zero) row for a breach key, so the fold has that key to fold; hold its first row.
    held = db.session.execute(text("SELECT id, day, category, priority FROM sla_rollup_breach "
                                   "ORDER BY id LIMIT 1")).one()
    db.session.execute(text("INSERT INTO sla_rollup_breach (day, category, priority, response_breaches, "
                            "resolution_breaches) VALUES (:d, :c, :p, 0, 0)"),
                       {"d": held.day, "c": held.category, "p": held.priority})
    db.session.commit()
    blocker = db.engine.connect()
    blocker_txn = blocker.begin()
    blocker.execute(text("SELECT 1 FROM sla_rollup_breach WHERE id = :id FOR UPDATE"), {"id": held.id})
    outcome: dict = {}

    def run_fold() -> None:
        with app.app_context():
            outcome.update(sla_rollup.fold())
            db.session.remove()

    worker = threading.Thread(target=run_fold)
    worker.start()
    try:
        # Wait until the fold's DELETE waits for the held row (its snapshot taken), then change a clock.
        for _ in range(200):
            waiting = db.session.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%DELETE FROM "
                "sla_rollup_breach%'"))
            db.session.rollback()
            if waiting:
                break
            threading.Event().wait(0.05)
        else:
            pytest.fail("the fold never waited on the breach rollup")
        metric = db.session.scalar(select(SlaMetric).where(SlaMetric.request_id == ids[0]))
        metric.resolution_sla_met = not metric.resolution_sla_met
        metric.response_breached_at = NOW - timedelta(hours=1) if metric.response_breached_at is None else None
        db.session.commit()
    finally:
        blocker_txn.rollback()
        blocker.close()
        worker.join(timeout=30)
    assert outcome["skipped"] is False and outcome["rows"] > 0
    _assert_exact()
    sla_rollup.fold()
    _assert_exact()


def test_a_second_fold_waits_its_turn(app, ctx):
    _seed(count=10, seed=2)
    holder = db.engine.connect()
    txn = holder.begin()
    holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": sla_rollup.FOLD_LOCK})
    try:
        assert sla_rollup.fold() == {"skipped": True, "rows": 0}
    finally:
        txn.rollback()
        holder.close()
    assert sla_rollup.fold()["skipped"] is False


def test_the_recount_job_is_scheduled_on_the_analytics_queue():
    from portal.queueing import JOB_QUEUES, SCHEDULE

    entry = next(s for s in SCHEDULE if s.id == "refresh-sla-rollup")
    assert entry.func == "jobs.analytics.refresh_sla_rollup" and entry.cron == "*/5 * * * *"
    assert JOB_QUEUES["jobs.analytics.refresh_sla_rollup"] == "analytics"
