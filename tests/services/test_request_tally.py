"""The request tally (migration 0019): its sums equal a count of the requests after every kind of
change, after a fold, and while changes race each other and a fold; the list, the dashboard and
/metrics read their totals from it."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import delete, func, select, text, update

from portal.extensions import db
from portal.models import RequestTally, ServiceRequest
from portal.services import request_tally, sla_reports
from portal.services import requests as svc
from tests import factories as make

KEY = (ServiceRequest.status, ServiceRequest.priority, ServiceRequest.category, ServiceRequest.assignee_id)


def _counted() -> Counter:
    return Counter({tuple(row[:4]): row[4] for row in db.session.execute(select(*KEY, func.count()).group_by(*KEY))})


def _tallied() -> Counter:
    rows = request_tally.grouped((RequestTally.status, RequestTally.priority, RequestTally.category,
                                  RequestTally.assignee_id))
    return Counter({tuple(row[:4]): row[4] for row in rows})


def test_the_tally_equals_a_count_after_every_kind_of_change_and_after_a_fold(ctx):
    requester, agent = make.make_user("requester"), make.make_user("agent")
    admin = make.make_user("admin")
    made = [make.make_request(requester, priority=p, category=c)
            for p, c in (("low", "hardware"), ("high", "software"), ("high", "hardware"), ("critical", "network"))]
    assert _tallied() == _counted() and sum(_tallied().values()) == 4
    svc.change_status(agent, made[0].id, "in_progress")
    svc.assign(agent, made[1].id, agent.id)
    svc.update_request(admin, made[2].id, {"priority": "low", "category": "software"})
    svc.add_comment(agent, made[3].id, "Looking at it")      # no counted column changes: no tally row
    rows_before_delete = db.session.scalar(select(func.count()).select_from(RequestTally))
    db.session.execute(delete(ServiceRequest).where(ServiceRequest.id == made[3].id))
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(RequestTally)) == rows_before_delete + 1
    assert _tallied() == _counted() and sum(_tallied().values()) == 3

    summary = request_tally.fold()
    assert summary == {"skipped": False, "rows": 3}           # one row per combination in use
    assert _tallied() == _counted()
    combos = db.session.execute(select(RequestTally.status, RequestTally.priority, RequestTally.category,
                                       RequestTally.assignee_id, RequestTally.n)).all()
    assert len({tuple(r[:4]) for r in combos}) == len(combos) and all(r.n > 0 for r in combos)


def test_truncating_the_requests_empties_the_tally(ctx):
    make.make_request()
    db.session.execute(text("TRUNCATE service_request CASCADE"))
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(RequestTally)) == 0


def test_changes_racing_each_other_and_a_fold_leave_the_tally_exact(app, ctx):
    """Agents move requests between the same two combinations in opposite directions at the same
    moment while the fold runs: the trigger only inserts, so no change waits on another's counter
    row, none deadlocks, and the sums still equal a count of the requests."""
    requester, agent = make.make_user("requester"), make.make_user("agent")
    opened = [make.make_request(requester).id for _ in range(12)]
    started = [make.make_request(requester).id for _ in range(12)]
    db.session.execute(update(ServiceRequest).where(ServiceRequest.id.in_(started)).values(status="in_progress"))
    db.session.commit()
    agent_id = agent.id
    barrier = threading.Barrier(3)
    failures: list[BaseException] = []

    def run(work) -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                work()
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    def move(ids: list[int], status: str):
        def work():
            actor = db.session.get(type(agent), agent_id)
            for request_id in ids:
                svc.change_status(actor, request_id, status)
        return work

    def folds():
        for _ in range(6):
            request_tally.fold()

    threads = [threading.Thread(target=run, args=(w,))
               for w in (move(opened, "in_progress"), move(started, "waiting_on_customer"), folds)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures, failures
    db.session.expire_all()
    assert _tallied() == _counted()
    request_tally.fold()
    assert _tallied() == _counted()
    assert _tallied()[("in_progress", "medium", "hardware", None)] == 12


def test_the_list_total_is_exact_past_the_count_cap_for_staff_and_capped_for_a_search(ctx, monkeypatch):
    from portal.services.requests import queries

    monkeypatch.setattr(queries, "COUNT_CAP", 4)
    requester, agent = make.make_user("requester"), make.make_user("agent")
    for i in range(7):
        make.make_request(requester, title=f"Printer {i}", priority="high" if i % 2 else "low")
    page = svc.list_requests(agent, svc.RequestFilters(per_page=2))
    assert (page.total, page.total_exact) == (7, True)
    page = svc.list_requests(agent, svc.RequestFilters(per_page=2, priority="high"))
    assert (page.total, page.total_exact) == (3, True)
    page = svc.list_requests(agent, svc.RequestFilters(per_page=2, q="printer"))
    assert (page.total, page.total_exact) == (4, False)        # a search still counts to the cap
    page = svc.list_requests(requester, svc.RequestFilters(per_page=2))
    assert (page.total, page.total_exact) == (4, False)        # a requester's own: counted to the cap


def test_the_dashboard_cards_count_open_work_from_the_tally(ctx):
    requester, agent = make.make_user("requester"), make.make_user("agent")
    made = [make.make_request(requester, priority=p) for p in ("low", "high", "high", "critical")]
    svc.change_status(agent, made[0].id, "in_progress")
    svc.change_status(agent, made[1].id, "resolved")
    summary = sla_reports.dashboard_summary()
    assert summary["open_total"] == 3
    assert summary["open_by_status"] == {"open": 2, "in_progress": 1, "waiting_on_customer": 0}
    assert summary["open_by_priority"] == {"critical": 1, "high": 1, "medium": 0, "low": 1}


def test_the_fold_job_is_scheduled_every_minute_on_the_default_queue():
    from portal.queueing import JOB_QUEUES, SCHEDULE

    entry = next(s for s in SCHEDULE if s.id == "fold-request-tally")
    assert entry.func == "jobs.maintenance.fold_request_tally" and entry.cron == "* * * * *"
    assert JOB_QUEUES["jobs.maintenance.fold_request_tally"] == "default"
