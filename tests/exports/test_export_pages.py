"""Who may export and download, the progress page, the exports list, and bad input (never a 500)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Export, OutboxMessage
from tests.exports.conftest import seed_requests
from tests.exports.helpers import export_id_from, text_of

HX = {"HX-Request": "true"}


@pytest.mark.parametrize("role", ["requester", "agent"])
def test_requesters_and_agents_cannot_export_or_open_reports(app, people, signed_in, role):
    seed_requests(app, 5, people.requester.id)
    client = signed_in(getattr(people, role))
    assert "Export CSV" not in text_of(client.get("/requests"))
    assert "/exports" not in text_of(client.get("/requests")).split("<main")[0]  # no nav link either
    for method, url in (("post", "/exports"), ("get", "/exports"), ("get", "/reports"), ("post", "/reports")):
        response = getattr(client, method)(url, data={"format": "csv"})
        assert response.status_code == 403, (method, url)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Export)) == 0


def polls(html: str, part_id: str) -> bool:
    """Whether the part `part_id` of the page polls (its opening tag has an hx-trigger); other
    parts of the page (the top bar's bell) may poll on their own."""
    import re

    tag = re.search(rf'<[a-z]+ id="{part_id}"[^>]*>', html)
    assert tag, f"no #{part_id} on the page"
    return "hx-trigger" in tag.group(0)


def test_signed_out_visitors_are_sent_to_sign_in(client):
    for url in ("/exports", "/exports/1", "/exports/1/download", "/reports"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_only_the_owner_and_admins_see_and_download_an_export(app, people, signed_in, run_worker):
    seed_requests(app, 20, people.requester.id)
    owner = signed_in(people.manager)
    export_id = export_id_from(owner.post("/exports", data={"format": "csv"}))
    run_worker("exports")

    other = signed_in(people.other_manager)
    for url in (f"/exports/{export_id}", f"/exports/{export_id}/download"):
        assert other.get(url).status_code == 404
    assert f"/exports/{export_id}" not in text_of(other.get("/exports"))

    admin = signed_in(people.admin)
    assert admin.get(f"/exports/{export_id}/download").status_code == 200
    assert "by Mona Manager" in text_of(admin.get(f"/exports/{export_id}"))
    assert owner.get(f"/exports/{export_id}/download").status_code == 200


def test_the_row_and_its_job_are_written_together_and_the_page_polls_until_done(app, people, signed_in,
                                                                                run_worker):
    seed_requests(app, 30, people.requester.id)
    manager = signed_in(people.manager)
    export_id = export_id_from(manager.post("/exports", data={"format": "csv"}))
    with app.app_context():
        job = db.session.scalar(select(OutboxMessage))
        assert (job.func, job.queue, job.args) == ("jobs.exports.build_export", "exports", [export_id])

    response = manager.get(f"/exports/{export_id}", headers=HX)
    assert "HX-Request" in response.headers["Vary"]
    waiting = text_of(response)
    assert waiting.lstrip().startswith('<section id="export-progress"')
    assert 'hx-trigger="every 1s"' in waiting and "Waiting for a worker" in waiting

    with app.app_context():  # as the job leaves it mid-way
        db.session.execute(Export.__table__.update().values(status="running", rows_done=1200, rows_total=30000))
        db.session.commit()
    running = text_of(manager.get(f"/exports/{export_id}", headers=HX))
    assert "1,200 of 30,000 rows" in running and "<progress" in running and 'value="1200"' in running
    assert 'hx-trigger="every 1s"' in running
    listing = text_of(manager.get("/exports", headers=HX))
    assert 'hx-trigger="every 2s"' in listing and "1,200 of 30,000" in listing
    with app.app_context():
        db.session.execute(Export.__table__.update().values(status="queued", rows_done=0, rows_total=None))
        db.session.commit()

    run_worker("exports")
    done = text_of(manager.get(f"/exports/{export_id}", headers=HX))
    assert not polls(done, "export-progress")  # the poll stops
    assert "30 rows" in done and f"/exports/{export_id}/download" in done
    listing = text_of(manager.get("/exports"))
    assert "Requests (CSV)" in listing and "Ready" in listing and not polls(listing, "export-rows")


def test_the_exports_page_lists_the_last_seven_days_newest_first(app, people, signed_in):
    from datetime import timedelta

    from portal.models._time import utcnow

    manager = signed_in(people.manager)
    with app.app_context():
        now = utcnow()
        for days, kind in ((1, "requests_csv"), (3, "requests_pdf"), (8, "requests_csv")):
            db.session.add(Export(owner_id=people.manager.id, kind=kind, params={"filters": {}}, status="done",
                                  rows_done=5, size_bytes=2048, gzipped=False, file_name="x", file_path="x",
                                  created_at=now - timedelta(days=days),
                                  expires_at=now - timedelta(days=days) + timedelta(days=7)))
        db.session.commit()
    page = text_of(manager.get("/exports"))
    assert page.count("<tr>") == 3  # header + two rows; the 8-day-old one is not listed
    assert page.index("Requests (CSV)") < page.index("Requests (PDF)")
    assert "2 KB" in page and "Download" in page


def test_garbage_filters_are_refused_with_a_reason(app, people, signed_in):
    manager = signed_in(people.manager)
    response = manager.post("/exports", data={"format": "csv", "priority": "urgent", "sort": "sideways",
                                              "status": "open"})
    assert response.status_code == 303
    page = text_of(manager.get(response.headers["Location"]))
    assert "Some filters are not valid, so nothing was exported" in page
    assert "Unknown priority &#39;urgent&#39;." in page and "Unknown sort" in page
    response = manager.post("/exports", data={"format": "xlsx"})
    assert "Choose CSV or PDF." in text_of(manager.get(response.headers["Location"]))
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Export)) == 0


@pytest.mark.parametrize("url", ["/exports/999999", "/exports/999999/download", "/exports/abc",
                                 "/exports/99999999999999999999", "/exports/-1/download"])
def test_unknown_exports_are_404(app, people, signed_in, url):
    response = signed_in(people.manager).get(url)
    assert response.status_code == 404
    assert "Page not found" in text_of(response)


def test_a_file_that_is_not_ready_is_404_not_500(app, people, signed_in):
    manager = signed_in(people.manager)
    export_id = export_id_from(manager.post("/exports", data={"format": "pdf"}))
    response = manager.get(f"/exports/{export_id}/download")
    assert response.status_code == 404 and "no file yet" in text_of(response)


def test_exports_need_the_forms_csrf_token(app, people, signed_in):
    manager = signed_in(people.manager)
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        assert manager.post("/exports", data={"format": "csv"}).status_code == 400
        assert manager.post("/reports", data={"start": "2026-11-01", "end": "2026-11-30"}).status_code == 400
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Export)) == 0


def test_an_owner_who_lost_the_right_to_export_gets_a_clear_failure(app, people, signed_in, run_worker):
    from portal.policy import SYSTEM
    from portal.services import users

    seed_requests(app, 5, people.requester.id)
    manager = signed_in(people.manager)
    export_id = export_id_from(manager.post("/exports", data={"format": "csv"}))
    with app.app_context():
        users.change_role(SYSTEM, people.manager.id, "agent")
    run_worker("exports")
    page = text_of(signed_in(people.admin).get(f"/exports/{export_id}"))
    assert "Failed" in page and "You can no longer export (your role changed)" in page
    assert not polls(page, "export-progress")


def test_an_attempt_that_fails_says_it_will_be_retried(app, people, signed_in, run_worker, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the export directory should be")
    manager = signed_in(people.manager)
    export_id = export_id_from(manager.post("/exports", data={"format": "csv"}))
    run_worker("exports", EXPORT_DIR=str(blocked))
    page = text_of(manager.get(f"/exports/{export_id}"))
    assert "The first attempt failed; it will be tried again in about 5 minutes." in page
    assert "Internal" not in page and manager.get(f"/exports/{export_id}").status_code == 200
