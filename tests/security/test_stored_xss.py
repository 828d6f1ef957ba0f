"""Stored XSS: hostile text typed into every field people fill in comes back as text everywhere.

The hostile strings go in through the real forms (requests, replies, internal notes, attachments,
admin's users, categories, calendars, holidays, SLA exemptions); then every page and HTMX partial
that shows them, the JSON API, every mail kind and the PDF and CSV exports are read back.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest

from tests.security.helpers import EVERY, HX_GET, IMG, JS_URL, SCRIPT, SHORT, TEMPLATE, TITLE, assert_inert, shown
from tests.web.helpers import HX, text_of

FILE_NAME = "x' onmouseover='alert(1)' {{7*7}} javascript:alert(1).txt"
CATEGORY = SCRIPT + '"><img src=x onerror=alert(1)>{{7*7}}'   # 62 of 80
CALENDAR = HX_GET[:60] + "{{7*7}}"                             # an unclosed hx-get tag, 67 of 80
HOLIDAY = IMG + SCRIPT                                         # 55 of 80


def _created_id(response) -> int:
    assert response.status_code == 303, (response.status_code, text_of(response)[:500])
    return int(re.search(r"/requests/(\d+)$", response.headers["Location"]).group(1))


@pytest.fixture()
def world(app, make, login_client):
    """Hostile text in every field, each entered through its form by the person who may."""
    from portal.extensions import db
    from portal.models import User
    from portal.services import notifications, sla

    admin = make.user("admin", name="Ada " + SHORT)
    agent = make.user("agent", name="Alex " + SHORT)
    manager = make.user("manager", name="Mona " + SHORT)
    requester = make.user("requester", name="Rita " + SHORT)
    ids = make.sla()
    as_admin, as_agent = login_client(admin), login_client(agent)
    as_manager, as_requester = login_client(manager), login_client(requester)

    assert as_admin.post("/admin/users", data={"name": "Hostile " + SHORT, "email": "hostile@example.com",
                                               "role": "agent", "password": "a-long-password-1"}).status_code == 303
    assert as_admin.post("/admin/categories", data={"code": "evil", "name": CATEGORY}).status_code == 303
    assert as_admin.post(f"/admin/calendars/{ids.calendar_id}/holidays",
                         data={"holiday-day": "2027-01-01", "holiday-name": HOLIDAY}).status_code == 303
    assert as_admin.post("/admin/calendars", data={"name": CALENDAR, "timezone": "Europe/London",
                                                   "working_days": ["0", "1"], "opens": "09:00",
                                                   "closes": "17:00"}).status_code == 303
    request_id = _created_id(as_requester.post("/requests/new", data={
        "title": TITLE, "category": "hardware", "priority": "medium", "description": EVERY,
        "attachments": [(io.BytesIO(b"hello"), FILE_NAME)]}, content_type="multipart/form-data"))
    other_id = _created_id(as_requester.post("/requests/new", data={
        "title": "In the hostile category " + SCRIPT, "category": "evil", "priority": "low", "description": EVERY}))
    assert as_manager.post(f"/requests/{request_id}/assign", data={"assignee": str(agent.id)}).status_code == 303
    assert as_agent.post(f"/requests/{request_id}/comments", data={"body": "Public " + EVERY}).status_code == 303
    assert as_agent.post(f"/requests/{request_id}/comments",
                         data={"body": "Internal " + EVERY, "internal": "y"}).status_code == 303
    assert as_requester.post(f"/requests/{request_id}/comments", data={"body": "Mine " + EVERY}).status_code == 303
    assert as_manager.post(f"/requests/{request_id}/sla/exemptions", data={
        "exemption_type": "response", "reason": EVERY, "duration_hours": "1"}).status_code == 303
    with app.app_context():
        from portal.models._time import utcnow

        sla.run_check(now=utcnow() + timedelta(hours=100))  # the request breaches: dashboards and alerts show it
        notifications.sla_alerts()
        hostile = db.session.query(User).filter_by(email="hostile@example.com").one()
    return SimpleNamespace(admin=admin, agent=agent, manager=manager, requester=requester, ids=ids,
                           request_id=request_id, other_id=other_id, hostile_id=hostile.id,
                           clients={"admin": as_admin, "agent": as_agent, "manager": as_manager,
                                    "requester": as_requester})


def _pages(world) -> list[tuple[str, str, dict]]:
    """(who, url, headers) of every page and partial that shows some of the hostile text."""
    rid, ids = world.request_id, world.ids
    request_pages = [f"/requests/{rid}", f"/requests/{rid}/timeline", f"/requests/{rid}/header",
                     f"/requests/{rid}/sla", "/requests", "/requests?q=script", "/requests?category=evil"]
    found = []
    for who in ("requester", "agent", "admin"):
        for url in request_pages:
            found.append((who, url, {}))
            found.append((who, url, HX))
        found.append((who, "/requests", {**HX, "HX-Target": "request-table"}))
        found.append((who, f"/requests/{world.other_id}", {}))
        found.append((who, "/account", {}))
    for url in ("/dashboard", "/dashboard/summary", "/dashboard/breaches", "/sla/breaches", "/admin/users",
                "/admin/categories", "/admin/calendars", f"/admin/calendars/{ids.calendar_id}", "/admin/sla",
                f"/admin/sla/{ids.definition_id}", "/exports", "/reports", "/admin/status", "/admin/jobs"):
        found.append(("admin", url, {}))
        found.append(("admin", url, HX))
    found.append(("manager", "/sla/breaches", {}))
    found.append(("manager", f"/requests/{rid}/sla", HX))
    return found


def test_xss_every_page_and_partial_shows_hostile_text_inert(world):
    shown_anywhere = set()
    for who, url, headers in _pages(world):
        response = world.clients[who].get(url, headers=headers)
        assert response.status_code == 200, (who, url, headers, response.status_code)
        html = text_of(response)
        assert_inert(html, f"{who} {url} {headers}")
        shown_anywhere |= {name for name, text in (("title", TITLE), ("description", EVERY), ("name", SHORT),
                                                   ("category", CATEGORY), ("calendar", CALENDAR),
                                                   ("file", FILE_NAME)) if shown(html, text)}
    assert shown_anywhere == {"title", "description", "name", "category", "calendar", "file"}


def test_xss_request_page_shows_each_field_as_typed(world):
    html = text_of(world.clients["agent"].get(f"/requests/{world.request_id}"))
    for text in (TITLE, EVERY, "Public " + EVERY, "Internal " + EVERY, "Mine " + EVERY, FILE_NAME, "Rita " + SHORT):
        assert shown(html, text), text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{{7*7}}{{7*&#39;7&#39;}}" in html  # the template syntax is text, never evaluated
    requester_html = text_of(world.clients["requester"].get(f"/requests/{world.request_id}"))
    assert not shown(requester_html, "Internal " + EVERY)


def test_xss_sla_and_admin_pages_show_names_as_typed(world):
    admin = world.clients["admin"]
    assert shown(text_of(admin.get(f"/admin/calendars/{world.ids.calendar_id}")), HOLIDAY)
    assert shown(text_of(admin.get("/admin/calendars")), CALENDAR)
    assert shown(text_of(admin.get("/admin/categories")), CATEGORY)
    assert shown(text_of(admin.get("/admin/users")), "Hostile " + SHORT)
    sla_html = text_of(world.clients["manager"].get(f"/requests/{world.request_id}/sla"))
    assert shown(sla_html, EVERY)  # the exemption's reason
    assert shown(text_of(admin.get("/dashboard/breaches", headers=HX)), TITLE)


def test_xss_htmx_answers_to_changes_echo_hostile_text_inert(world):
    """The partials a change answers with (and their out-of-band parts and <title>) carry the text too."""
    agent, admin = world.clients["agent"], world.clients["admin"]
    rid = world.request_id
    answers = [
        agent.post(f"/requests/{rid}/comments", data={"body": "Again " + EVERY}, headers=HX),
        world.clients["requester"].post(f"/requests/{rid}/text", data={"edit-title": TITLE + " 2",
                                                                      "edit-description": EVERY}, headers=HX),
        admin.post("/admin/categories", data={"code": "evil2", "name": CATEGORY[:70] + "2"}, headers=HX),
        admin.post("/admin/calendars", data={"name": CALENDAR + "2", "timezone": "Europe/London",
                                             "working_days": ["0"], "opens": "09:00", "closes": "17:00"},
                   headers=HX),
        admin.post("/admin/users", data={"name": "Second " + SHORT, "email": "second@example.com",
                                         "role": "requester", "password": "a-long-password-2"}, headers=HX),
        # Refused changes echo the input back beside the reason.
        admin.post("/admin/categories", data={"code": SCRIPT, "name": SCRIPT}, headers=HX),
        agent.post("/requests/new", data={"title": TITLE, "category": SCRIPT, "priority": IMG,
                                          "description": EVERY}, headers=HX),
        world.clients["manager"].post(f"/requests/{rid}/sla/exemptions", data={
            "exemption_type": SCRIPT, "reason": EVERY, "duration_hours": IMG}, headers=HX),
    ]
    for response in answers:
        assert response.status_code < 500, response.status_code
        assert_inert(text_of(response), response.request.path)
        assert response.headers.get("HX-Trigger", "").find("<script") == -1


def test_xss_flash_messages_after_plain_posts_are_inert(world):
    admin = world.clients["admin"]
    response = admin.post("/admin/categories", data={"code": "evil3", "name": SCRIPT + " flash"},
                          follow_redirects=True)
    html = text_of(response)
    assert_inert(html, "flash")
    assert shown(html, SCRIPT + " flash")


def test_xss_json_api_returns_hostile_text_as_data(app, world, make):
    token = make.token(world.agent)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    for url in (f"/api/v1/service-requests/{world.request_id}", "/api/v1/service-requests?q=script",
                f"/api/v1/service-requests/{world.request_id}/sla-exemptions"):
        response = client.get(url, headers=auth)
        assert response.status_code == 200
        assert response.mimetype == "application/json"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "text/html" not in response.headers["Content-Type"]
    detail = client.get(f"/api/v1/service-requests/{world.request_id}", headers=auth).get_json()
    assert detail["title"] == TITLE and detail["description"] == EVERY  # data, byte for byte
    assert {c["body"] for c in detail["comments"]} >= {"Public " + EVERY, "Internal " + EVERY}
    # An error that names the hostile value is JSON too, never an HTML page.
    bad = client.get("/api/v1/service-requests", query_string={"category": SCRIPT}, headers=auth)
    assert bad.status_code == 422 and bad.mimetype == "application/json"


def test_xss_api_created_text_is_inert_on_the_pages(app, world, make, login_client):
    token = make.token(world.requester)
    client = app.test_client()
    created = client.post("/api/v1/service-requests", headers={"Authorization": f"Bearer {token}"},
                          json={"title": TITLE, "description": EVERY, "category": "evil"})
    assert created.status_code == 201
    rid = created.get_json()["id"]
    html = text_of(world.clients["requester"].get(f"/requests/{rid}"))
    assert_inert(html, "api-made request")
    assert shown(html, TITLE)


# ---------------------------------------------------------------- mails


def test_xss_every_mail_kind_has_an_inert_html_part(app, world, smtp):
    from sqlalchemy import select

    from portal.extensions import db
    from portal.models import Notification, User
    from portal.services import notifications
    from tests.mail_server import html_of
    from tests.mail_server import text_of as mail_text

    with app.app_context():
        # Admin-only kinds whose payloads can carry text from elsewhere (a job's error, a backup's problem).
        notifications.dead_letter("job-1", "jobs.email.deliver", "email", "ValueError: " + EVERY, "cid", "now")
        notifications.backup_failed(SCRIPT, "pg_dump said " + EVERY, 1)
        notifications.security_alert("blocked", {"what": SCRIPT, "network": IMG})
        notifications.account_locked(db.session.get(User, world.requester.id), {"until": SCRIPT})
        rows = list(db.session.scalars(select(Notification).order_by(Notification.id)))
        kinds = {row.kind for row in rows}
        for row in rows:  # each kind's own template, as a mail about that one notification
            subject, text, html = notifications._compose(db.session.get(User, row.recipient_id), [row], False)
            assert_inert(html, row.kind)
            if row.payload.get("title") == TITLE:
                assert TITLE in text and TITLE in subject and shown(html, TITLE)
            if row.kind == "public_comment":
                assert shown(html, row.payload["excerpt"]) and EVERY in row.payload["excerpt"]
        people = {row.recipient_id for row in rows}
        db.session.rollback()
        for person in people:  # and as delivered: several at once make one summary mail
            notifications.deliver(person)
    assert {"request_created", "assigned", "public_comment", "sla_breached", "dead_letter", "backup_failed",
            "security_alert", "account_locked"} <= kinds, kinds
    assert smtp.messages
    seen = set()
    for message in smtp.messages:
        html, text = html_of(message), mail_text(message)
        assert_inert(html, message["Subject"])
        assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
        seen |= set(message["X-Portal-Notification"].split(","))
        if shown(html, TITLE):
            assert TITLE in text  # the plain part shows it as typed: text is text
    assert {"request_created", "assigned", "public_comment", "sla_breached", "dead_letter", "backup_failed",
            "security_alert", "account_locked"} <= seen


def test_xss_status_change_and_summary_mails_are_inert(app, world, smtp):
    from portal.extensions import db
    from portal.models import User
    from portal.services import notifications
    from portal.services import requests as svc
    from tests.mail_server import html_of

    with app.app_context():
        agent = db.session.get(User, world.agent.id)
        svc.change_status(agent, world.request_id, "in_progress")
        svc.add_comment(agent, world.request_id, "One more " + EVERY)
        notifications.deliver(world.requester.id)
    assert smtp.messages
    for message in smtp.messages:
        assert_inert(html_of(message), message["Subject"])


# ---------------------------------------------------------------- PDF and CSV


def _export(app, world, fmt: str, **filters) -> bytes:
    """Queue an export through the page as the manager, build it in-process, download it."""
    from portal.services import exports

    manager = world.clients["manager"]
    response = manager.post("/exports", data={"format": fmt, **filters})
    assert response.status_code == 303, text_of(response)[:300]
    export_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        done = exports.build_export(export_id)
        assert done.status == "done", done.error
    download = manager.get(f"/exports/{export_id}/download")
    assert download.status_code == 200
    return download.get_data()


def test_xss_pdf_export_shows_hostile_text_as_text(app, world):
    from tests.exports.helpers import pdf_pages

    body = _export(app, world, "pdf", q="alert")  # a word of the hostile title (search skips HTML tags)
    text = " ".join(" ".join(pdf_pages(body)).split())
    assert "<script>alert(1)</script>" in text  # drawn as letters, not interpreted by reportlab's markup
    assert "Rita" in text and "Search" in text
    assert b"/JavaScript" not in body and b"/JS " not in body and b"/URI" not in body


def test_xss_pdf_export_with_reportlab_markup_in_every_field_builds(app, world, make):
    """reportlab's Paragraph reads <font>, <img>, <a> tags: unescaped, they would fail the build or load files."""
    from tests.exports.helpers import pdf_pages

    markup = '<img src="/etc/passwd"/><font name="nope">x</font><a href="javascript:alert(1)">y</a><para>'
    make.request(world.requester, title=markup[:200], description=markup)
    body = _export(app, world, "pdf", q="<para>")
    text = " ".join(" ".join(pdf_pages(body)).split())
    assert "<para>" in text and "/JavaScript" not in body.decode("latin-1")


def test_xss_sla_report_pdf_with_hostile_names_builds(app, world):
    from portal.services import exports
    from tests.exports.helpers import pdf_pages

    manager = world.clients["manager"]
    response = manager.post("/reports", data={"start": "2026-01-01", "end": "2026-01-31"})
    assert response.status_code == 303, text_of(response)[:300]
    export_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        assert exports.build_report(export_id).status == "done"
    body = manager.get(f"/exports/{export_id}/download").get_data()
    assert "Mona <script>alert(1)</script>" in " ".join(" ".join(pdf_pages(body)).split())


def test_xss_csv_export_neutralises_formulas_in_every_text_cell(app, world, make):
    from tests.exports.helpers import FORMULA_STARTS, csv_rows

    formulas = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1"]
    with app.app_context():
        from portal.policy import SYSTEM
        from portal.services import categories

        categories.create_category(SYSTEM, "formula", "=cmd|' /C calc'!A0")
    person = make.user("requester", name="=HYPERLINK(\"http://evil.example\")")
    for formula in formulas:
        make.request(person, title=formula + " title", description=EVERY, category="formula")
    rows = csv_rows(_export(app, world, "csv", category="formula"))
    header, body = rows[0], rows[1:]
    assert len(body) == len(formulas)
    text_columns = [header.index(c) for c in ("title", "category", "requester", "requester_email", "assignee")]
    for row in body:
        for i in text_columns:
            assert not row[i].startswith(FORMULA_STARTS), (header[i], row[i])
    # Titles are stored trimmed (a leading tab or CR goes), so each starts with its formula character.
    assert sorted(row[header.index("title")] for row in body) == sorted("'" + f.strip() + " title" for f in formulas)
    assert {row[header.index("category")] for row in body} == {"'=cmd|' /C calc'!A0"}
    assert {row[header.index("requester")] for row in body} == {"'=HYPERLINK(\"http://evil.example\")"}


def test_xss_csv_export_keeps_html_as_plain_text(app, world):
    from tests.exports.helpers import csv_rows

    rows = csv_rows(_export(app, world, "csv", q="alert"))
    titles = {row[1] for row in rows[1:]}
    assert TITLE in titles  # CSV is data: exactly what was typed, no HTML entities
    assert JS_URL not in "".join(rows[0]) and TEMPLATE in TITLE


@pytest.mark.parametrize("live", [
    "<p><script>alert(1)</script></p>", '<img src=x onerror="alert(1)">', '<div hx-get="/admin/users?pwn=1">x</div>',
    '<b hx-on:click="alert(1)">y</b>', '<a href="javascript:alert(1)">z</a>', "<p>7777777</p>",
    '<a href=" JavaScript:alert(1)">z</a>',
])
def test_xss_checker_catches_live_markup(live):
    """The check above is not vacuous: each of these, had it reached a page, fails it."""
    with pytest.raises(AssertionError):
        assert_inert(live)
