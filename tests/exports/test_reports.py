"""PDFs people open: the request-list report and the SLA report; and the hourly trend counts behind it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select, text

from portal.extensions import db
from portal.models import TrendDaily
from portal.models._time import utcnow
from portal.queueing import SCHEDULE, push
from tests.exports.conftest import seed_requests
from tests.exports.helpers import export_id_from, pdf_pages, text_of


def _page_numbers(pages: list[str]) -> None:
    count = len(pages)
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {count}" in page, page[-200:]


def test_requests_pdf_is_a_report_with_summary_chart_and_a_capped_table(app, people, signed_in, run_worker):
    seed_requests(app, 300, people.requester.id, people.agent.id)
    manager = signed_in(people.manager)
    export_id = export_id_from(manager.post("/exports", data={"format": "pdf", "status": "active",
                                                                   "sort": "newest"}))
    run_worker("exports", EXPORT_PDF_MAX_ROWS="100")

    page = text_of(manager.get(f"/exports/{export_id}"))
    assert "100 rows of 200 (the PDF shows the first 100; use CSV for all)" in page
    download = manager.get(f"/exports/{export_id}/download")
    assert download.mimetype == "application/pdf"
    pages = pdf_pages(download.get_data())
    first = pages[0]
    assert first.startswith("Service requests")
    assert re.search(r"Generated \d\d \w{3} 20\d\d \d\d:\d\d UTC for Mona Manager · 200 matching requests", first)
    assert "Status: Open work (not resolved)" in first and "Sorted by: Newest first" in first
    assert "SLA summary" in first and "resolved within target" in first
    assert "Breaches and open requests by priority" in first  # the chart's title, drawn with it
    with app.app_context():
        breached = db.session.scalar(text(
            "SELECT count(*) FROM service_request sr JOIN sla_metric m ON m.request_id = sr.id "
            "WHERE sr.status <> 'resolved' AND m.is_breached"))
    assert re.search(rf"200\s*requests\s*200\s*still open\s*—\s*resolved within target\s*{breached}\s*breached",
                     first), first[:600]
    assert "first 100 of 200 requests" in first and "Use the CSV export for all of them." in first
    assert "+1+1 sum #1" in first  # the newest open request heads the table
    body = "\n".join(pages)
    lines = body.splitlines()
    table = lines[lines.index("SLA"):]  # the requests table starts after its last header cell
    assert sum(1 for line in table if line == "Open") == 100  # one status cell per row
    open_numbers = [g for g in range(1, 301) if g % 3]  # the seed's open requests, newest first
    assert re.search(rf"#{open_numbers[99]}\b", body)
    assert not re.search(rf"#{open_numbers[100]}\b", body)  # past the cap: not in the table
    _page_numbers(pages)


def _at(day, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def _seed_trend_history(app, requester_id: int) -> dict:
    today = utcnow().date()
    d0, d1, d2, old = today, today - timedelta(days=1), today - timedelta(days=2), today - timedelta(days=10)
    rows = [  # (title, category, priority, status, created, resolved, met, response_breached, resolution_breached)
        ("A", "hardware", "high", "resolved", _at(d2, 10), _at(d1, 9), True, None, None),
        ("B", "hardware", "high", "resolved", _at(d2, 11), _at(d0, 0), False, None, _at(d1, 12)),
        ("C", "network", "low", "open", _at(d1, 10), None, None, _at(d0, 0), None),
        ("D", "network", "low", "open", _at(old, 10), None, None, None, None),
    ]
    with app.app_context():
        for title, category, priority, status, created, resolved, met, rb, sb in rows:
            rid = db.session.execute(text(
                "INSERT INTO service_request (title, description, category, priority, status, requester_id, "
                "created_at, updated_at, resolved_at, version) VALUES (:t, '', :c, :p, :s, :r, :created, "
                ":created, :resolved, 1) RETURNING id"),
                {"t": title, "c": category, "p": priority, "s": status, "r": requester_id, "created": created,
                 "resolved": resolved}).scalar_one()
            db.session.execute(text(
                "INSERT INTO sla_metric (request_id, at_risk_percent, pause_statuses, started_at, paused_seconds, "
                "is_breached, status, created_at, updated_at, resolution_sla_met, resolved_at, "
                "response_breached_at, resolution_breached_at) VALUES (:id, 75, '{}', :created, 0, :breached, "
                ":s, :created, :created, :met, :resolved, :rb, :sb)"),
                {"id": rid, "created": created, "breached": bool(rb or sb), "s": status, "met": met,
                 "resolved": resolved, "rb": rb, "sb": sb})
        db.session.commit()
    return {"d0": d0, "d1": d1, "d2": d2, "old": old}


def _trend_table(app) -> dict:
    with app.app_context():
        db.session.expire_all()
        return {(r.day, r.category, r.priority): (r.created, r.resolved, r.resolved_within_sla, r.resolved_late,
                                                  r.response_breached, r.resolution_breached)
                for r in db.session.scalars(select(TrendDaily))}


def test_trend_job_counts_each_event_on_its_day_and_is_idempotent(app, people, run_worker):
    days = _seed_trend_history(app, people.requester.id)
    with app.app_context():
        push("jobs.analytics.calculate_trends", queue="analytics")
    run_worker("analytics")
    expected = {
        (days["old"], "network", "low"): (1, 0, 0, 0, 0, 0),   # filled in because the table was empty
        (days["d2"], "hardware", "high"): (2, 0, 0, 0, 0, 0),
        (days["d1"], "hardware", "high"): (0, 1, 1, 0, 0, 1),
        (days["d0"], "hardware", "high"): (0, 1, 0, 1, 0, 0),
        (days["d1"], "network", "low"): (1, 0, 0, 0, 0, 0),
        (days["d0"], "network", "low"): (0, 0, 0, 0, 1, 0),
    }
    assert _trend_table(app) == expected

    with app.app_context():
        push("jobs.analytics.calculate_trends", queue="analytics")
    run_worker("analytics")
    assert _trend_table(app) == expected  # run twice, same numbers

    with app.app_context():  # C is recategorised, D (outside the recount window) too
        db.session.execute(text("UPDATE service_request SET category = 'software' WHERE title IN ('C', 'D')"))
        db.session.commit()
        push("jobs.analytics.calculate_trends", queue="analytics")
    run_worker("analytics")
    after = _trend_table(app)
    assert (days["d1"], "network", "low") not in after and (days["d0"], "network", "low") not in after
    assert after[(days["d1"], "software", "low")] == (1, 0, 0, 0, 0, 0)
    assert after[(days["d0"], "software", "low")] == (0, 0, 0, 0, 1, 0)
    assert after[(days["old"], "network", "low")] == (1, 0, 0, 0, 0, 0)  # only recent days are recounted


def test_trend_calculation_is_scheduled_hourly_on_analytics():
    entry = next(s for s in SCHEDULE if s.id == "calculate-trends")
    assert (entry.func, entry.queue) == ("jobs.analytics.calculate_trends", "analytics")
    assert entry.cron.split()[1:] == ["*", "*", "*", "*"] and entry.cron.split()[0].isdigit()


def test_sla_report_pdf_shows_compliance_and_volume_for_the_period(app, people, signed_in, run_worker):
    days = _seed_trend_history(app, people.requester.id)
    with app.app_context():
        push("jobs.analytics.calculate_trends", queue="analytics")
    run_worker("analytics")
    manager = signed_in(people.manager)
    start, end = (days["d0"] - timedelta(days=13)).isoformat(), days["d0"].isoformat()
    form = text_of(manager.get("/reports"))
    assert 'type="date"' in form and "Last 30 days" in form
    export_id = export_id_from(manager.post("/reports", data={"start": start, "end": end}))
    run_worker("reports")

    assert f"/exports/{export_id}" in text_of(manager.get("/exports"))  # listed with the exports
    page = text_of(manager.get(f"/exports/{export_id}"))
    assert "4 requests created in the period" in page and "Download sla-report-" in page
    pages = pdf_pages(manager.get(f"/exports/{export_id}/download").get_data())
    first = pages[0]
    assert first.startswith("SLA compliance and volume")
    assert f"({14} days, UTC)" in first and "for Mona Manager" in first
    assert re.search(r"4\s*requests created\s*2\s*resolved\s*50\.0%\s*resolved within target\s*2\s*SLA breaches",
                     first), first[:800]
    assert "Requests created and resolved per day" in first
    body = " ".join(" ".join(pages).split())
    assert re.search(r"High 2 2 1 1 50\.0% 0 1", body), body
    assert re.search(r"Low 2 0 0 0 — 1 0", body)
    assert "By category" in body and "Hardware" in body
    _page_numbers(pages)


@pytest.mark.parametrize(("start", "end", "message"), [
    ("2026-13-01", "2026-11-30", "Start must be a date like"),
    ("", "", "Start must be a date like"),
    ("yesterday", "2026-11-30", "Start must be a date like"),
    ("2026-11-30", "2026-11-01", "End must be on or after the start."),
    ("2099-01-01", "2099-01-02", "Start cannot be in the future."),
    ("2020-01-01", "2026-11-30", "A report covers at most 366 days."),
])
def test_a_bad_period_is_shown_on_the_form(app, people, signed_in, start, end, message):
    response = signed_in(people.manager).post("/reports", data={"start": start, "end": end})
    assert response.status_code == 422
    page = text_of(response)
    assert "The period is not valid" in page and message in page
    assert 'aria-invalid="true"' in page


def test_cleanup_deletes_expired_exports_and_their_files(app, people, signed_in, run_worker, export_dir):
    from portal.models import Export

    seed_requests(app, 5, people.requester.id)
    manager = signed_in(people.manager)
    old_id = export_id_from(manager.post("/exports", data={"format": "csv"}))
    new_id = export_id_from(manager.post("/exports", data={"format": "csv"}))
    run_worker("exports")
    with app.app_context():
        old, new = db.session.get(Export, old_id), db.session.get(Export, new_id)
        old_file, new_file = export_dir / old.file_path, export_dir / new.file_path
        assert old_file.is_file() and new_file.is_file()
        old.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
        push("jobs.exports.purge_expired_exports", queue="default")
    run_worker("default")
    assert not old_file.exists() and new_file.is_file()
    assert manager.get(f"/exports/{old_id}").status_code == 404
    assert manager.get(f"/exports/{new_id}/download").status_code == 200
    entry = next(s for s in SCHEDULE if s.id == "purge-expired-exports")
    assert entry.func == "jobs.exports.purge_expired_exports"
