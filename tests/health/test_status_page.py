"""The admin's System status page: the doctor's checks, readable, refreshed by HTMX every 30 s."""

from __future__ import annotations

from tests.health.conftest import cover_every_sla_pair, signed_in


def test_status_page_shows_every_check_with_what_to_do(app, backup_dir):
    client = signed_in(app, "admin")
    response = client.get("/admin/status")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>System status</h1>" in html
    for title in ("Database", "Migrations", "Redis", "Workers", "Scheduler", "Periodic jobs", "Last SLA check",
                  "Queue depths", "Dead letters", "SLA definitions", "Backup directory", "pg_dump", "Disk space",
                  "Last verified backup"):
        assert f"<strong>{title}</strong>" in html, title
    # no worker, no scheduler here: failing, and the page says what to do
    assert 'id="check-workers"' in html and "check check-fail" in html
    assert "What to do:</span> Start one: flask --app wsgi jobs worker" in html
    assert "No verified backup yet." in html
    assert "failing" in html  # the summary line
    # the nav links the page, marked current
    assert 'href="/admin/status" aria-current="page">System status</a>' in html
    assert response.headers["Cache-Control"] == "no-store"


def test_status_page_polls_every_30_seconds_with_its_partial(app, backup_dir):
    client = signed_in(app, "admin")
    page = client.get("/admin/status").get_data(as_text=True)
    assert 'hx-get="/admin/status" hx-trigger="every 30s" hx-swap="outerHTML"' in page

    partial = client.get("/admin/status", headers={"HX-Request": "true"})
    html = partial.get_data(as_text=True)
    assert partial.status_code == 200
    assert "<html" not in html and "<nav" not in html
    assert html.lstrip().startswith('<div id="system-status"')
    assert 'hx-trigger="every 30s"' in html  # the poll continues
    assert "<strong>Database</strong>" in html
    assert "HX-Request" in partial.headers["Vary"]


def test_status_page_follows_a_fix(app, backup_dir, processes):
    client = signed_in(app, "admin")
    before = client.get("/admin/status", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="check-sla_definitions"' in before
    assert "20 of 20 category/priority pairs have no active SLA definition." in before

    cover_every_sla_pair(app)
    processes.worker()
    after = client.get("/admin/status", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Every active category and priority has an active definition (20 pairs)." in after
    assert "1 live worker(s); every queue is served." in after


def test_status_page_still_answers_with_redis_down(app, backup_dir, own_redis):
    client = signed_in(app, "admin")
    own_redis.stop()
    response = client.get("/admin/status")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Redis does not work:" in html
    assert "Unknown: Redis cannot be reached." in html


def test_status_page_is_for_admins_only(app):
    for role in ("requester", "agent", "manager"):
        assert signed_in(app, role).get("/admin/status").status_code == 403
        assert "System status" not in signed_in(app, role).get("/requests").get_data(as_text=True)
    anonymous = app.test_client().get("/admin/status")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
