"""Live updates on the request page (issue #12): the page polls /requests/<id>/last-change, which answers
304 while nothing changed that its reader may know of, and /requests/<id>/parts brings every part of
the page (never the composer's text) up to date when something did."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import event, text

from tests.web.helpers import HX, REQUEST_PAGE_PARTS, login_next, main_part, oob_ids, text_of

POLL = {**HX, "HX-Target": "request-live"}


@pytest.fixture()
def desk(make):
    """Two agents, a requester and their open request."""
    sam = make.user("agent", name="Sam Rivera")
    alex = make.user("agent", name="Alex Agent")
    riley = make.user("requester", name="Riley Requester")
    req = make.request(riley, title="Laptop will not charge", description="The light stays off.")
    return {"sam": sam, "alex": alex, "riley": riley, "request": req}


def _poll(client, req, etag: str | None = None):
    return client.get(f"/requests/{req.id}/last-change", headers={**POLL, **({"If-None-Match": etag} if etag else {})})


def _marker(html: str) -> dict[str, str | None]:
    """The .last-change element's stamp, who made the change and whether it was the reader."""
    tag = re.search(r'<span class="last-change"[^>]*>', html).group(0)
    by = re.search(r'data-by="([^"]*)"', tag)
    return {"stamp": re.search(r'data-stamp="([^"]*)"', tag).group(1), "by": unescape(by.group(1)) if by else None,
            "by_me": "data-by-me" in tag}


def _shown(html: str) -> str:
    """The change the page (or a refreshed #request-live) says it shows."""
    return re.search(r'<div id="request-live"[^>]*data-shown="([^"]*)"', html).group(1)


def test_the_page_shows_its_change_and_polls_for_a_newer_one(app, login_client, desk):
    req = desk["request"]
    client = login_client(desk["sam"])
    page = text_of(client.get(f"/requests/{req.id}"))
    live = re.search(r'<div id="request-live"[^>]*>', page).group(0)
    every = app.config["REQUEST_POLL_SECONDS"]
    assert f'hx-trigger="every {every}s, request-poll"' in live
    assert f'hx-get="/requests/{req.id}/last-change"' in live and f'data-parts="/requests/{req.id}/parts"' in live
    assert 'id="live-updates"' in page and 'role="status"' in re.search(r'<div id="live-updates"[^>]*>', page).group(0)
    assert "js/request_live.js" in page
    polled = _marker(text_of(_poll(client, req)))
    assert _shown(page) == polled["stamp"] == _marker(page)["stamp"]
    assert polled["by"] == "Riley Requester" and not polled["by_me"]  # raising it was the last change


def test_no_poll_when_live_updates_are_off(app, login_client, desk):
    req = desk["request"]
    app.config["REQUEST_POLL_SECONDS"] = 0
    try:
        page = text_of(login_client(desk["sam"]).get(f"/requests/{req.id}"))
    finally:
        app.config["REQUEST_POLL_SECONDS"] = 3600
    live = re.search(r'<div id="request-live"[^>]*>', page).group(0)
    assert "hx-get" not in live and "hx-trigger" not in live and "data-parts" not in live


def test_unchanged_request_answers_304_without_a_body(login_client, desk):
    req = desk["request"]
    client = login_client(desk["sam"])
    first = _poll(client, req)
    assert first.status_code == 200 and first.headers["ETag"].startswith('W/"')
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert text_of(first).lstrip().startswith('<span class="last-change"')
    assert "csrf" not in text_of(first).lower()
    again = _poll(client, req, first.headers["ETag"])
    assert again.status_code == 304 and again.data == b""
    # Nothing moves with the clock in it: asked again later, still the same.
    assert _poll(client, req, first.headers["ETag"]).status_code == 304


def test_a_colleagues_comment_changes_the_answer_and_the_parts_show_it(make, login_client, desk):
    req = desk["request"]
    client = login_client(desk["sam"])
    first = _poll(client, req)
    make.comment(desk["alex"], req.id, "Try the other charger, please.")

    changed = _poll(client, req, first.headers["ETag"])
    assert changed.status_code == 200 and changed.headers["ETag"] != first.headers["ETag"]
    latest = _marker(text_of(changed))
    assert latest["by"] == "Alex Agent" and not latest["by_me"]
    assert latest["stamp"] != _marker(text_of(first))["stamp"]

    parts = client.get(f"/requests/{req.id}/parts", headers={**HX, "HX-Target": "request-live"})
    assert parts.status_code == 200
    html = text_of(parts)
    # The change marker is the target; every other part comes out of band; never the composer itself.
    assert main_part(html).lstrip().startswith('<div id="request-live"')
    assert _shown(html) == latest["stamp"]
    assert oob_ids(html) == REQUEST_PAGE_PARTS - {"request-live"}
    assert 'id="comment-form"' not in html and "<textarea" not in html.split('id="request-description"')[0]
    assert "Try the other charger, please." in html
    assert "<title>#" in html  # the tab's title too
    assert "no-store" in parts.headers["Cache-Control"] and "ETag" not in parts.headers  # it carries CSRF tokens
    # The answer settles: polled with the new ETag, a 304 again.
    assert _poll(client, req, changed.headers["ETag"]).status_code == 304


def test_a_status_change_shows_in_header_panel_and_send_buttons(login_client, desk):
    req = desk["request"]
    sam = login_client(desk["sam"])
    before = _marker(text_of(_poll(sam, req)))
    assert login_client(desk["alex"]).post(f"/requests/{req.id}/status",
                                           data={"status": "in_progress"}).status_code == 303
    latest = _marker(text_of(_poll(sam, req)))
    assert latest["stamp"] != before["stamp"] and latest["by"] == "Alex Agent"
    html = text_of(sam.get(f"/requests/{req.id}/parts", headers=HX))
    header = re.search(r'<div id="request-header".*?</div>\s*</div>', html, re.S).group(0)
    assert "In progress" in header
    panel = html[html.index('id="request-panel"'):]
    assert 'data-status="resolved"' in panel  # the moves allowed from "in progress"
    versions = set(re.findall(r'name="version" value="(\d+)"', html))
    assert len(versions) == 1  # every form and the composer's send buttons carry the new version


def test_my_own_change_is_marked_as_mine(login_client, desk):
    req = desk["request"]
    sam = login_client(desk["sam"])
    response = sam.post(f"/requests/{req.id}/comments", data={"body": "On my way."}, headers=HX)
    assert response.status_code == 200
    # The answer to my change already brings the page up to date: it shows the newest change.
    latest = _marker(text_of(_poll(sam, req)))
    assert latest["by_me"] and latest["by"] == "Sam Rivera"
    assert _shown(text_of(response)) == latest["stamp"]


def test_a_requester_never_learns_of_internal_notes(make, login_client, desk):
    req = desk["request"]
    riley = login_client(desk["riley"])
    first = _poll(riley, req)
    make.comment(desk["sam"], req.id, "Battery recall list: check serial ZX-41.", internal=True,
                 uploads=[("recall.txt", b"recall list")])
    # Nothing the requester may see changed: their poll still answers 304, and names nobody.
    assert _poll(riley, req, first.headers["ETag"]).status_code == 304
    html = text_of(riley.get(f"/requests/{req.id}/parts", headers=HX))
    assert "Battery recall list" not in html and "recall.txt" not in html and "Sam Rivera" not in html
    # The agents' poll moves, naming the note's author.
    assert _marker(text_of(_poll(login_client(desk["alex"]), req)))["by"] == "Sam Rivera"

    # A reply is theirs to see: the poll moves and the parts show it, still without the note.
    make.comment(desk["sam"], req.id, "A new charger is on its way.")
    changed = _poll(riley, req, first.headers["ETag"])
    assert changed.status_code == 200 and _marker(text_of(changed))["by"] == "Sam Rivera"
    html = text_of(riley.get(f"/requests/{req.id}/parts", headers=HX))
    assert "A new charger is on its way." in html and "Battery recall list" not in html


def test_a_requester_never_learns_of_exemptions(make, login_client, desk):
    make.sla()
    req = make.request(desk["riley"], title="Monitor flickers")  # raised under the SLA
    riley = login_client(desk["riley"])
    first = _poll(riley, req)
    manager = make.user("manager", name="Morgan Manager")
    make.exemption(manager, req.id)
    assert _poll(riley, req, first.headers["ETag"]).status_code == 304
    assert _marker(text_of(_poll(login_client(desk["sam"]), req)))["by"] == "Morgan Manager"


def test_the_etag_differs_per_user(login_client, desk):
    """Two agents see the same marker, yet each gets their own ETag; nobody earns a 304 with another's."""
    req = desk["request"]
    sam, alex, riley = (login_client(desk[name]) for name in ("sam", "alex", "riley"))
    sams = _poll(sam, req)
    alexs = _poll(alex, req, sams.headers["ETag"])
    assert alexs.status_code == 200 and alexs.data == sams.data
    assert alexs.headers["ETag"] != sams.headers["ETag"]
    rileys = _poll(riley, req, sams.headers["ETag"])
    assert rileys.status_code == 200 and rileys.headers["ETag"] not in (sams.headers["ETag"], alexs.headers["ETag"])


def test_signed_out_or_not_theirs_gets_no_copy(app, login_client, make, desk):
    req = desk["request"]
    sam = login_client(desk["sam"])
    etag = _poll(sam, req).headers["ETag"]
    sam.post("/logout")
    for path in ("last-change", "parts"):
        gone = sam.get(f"/requests/{req.id}/{path}", headers={**POLL, "If-None-Match": etag,
                                                              "HX-Current-URL": f"http://localhost/requests/{req.id}"})
        assert gone.status_code == 401 and gone.data == b""
        assert login_next(gone.headers["HX-Redirect"]) == f"/requests/{req.id}"
    stranger = login_client(make.user("requester"))
    for path in ("last-change", "parts"):
        refused = stranger.get(f"/requests/{req.id}/{path}", headers=POLL)
        assert refused.status_code == 404
        assert "Laptop will not charge" not in text_of(refused) and "ETag" not in refused.headers
    # A deactivated agent is signed out: the poll says so instead of answering from a copy.
    alex = login_client(desk["alex"])
    etag = _poll(alex, req).headers["ETag"]
    make.deactivate(desk["alex"])
    assert _poll(alex, req, etag).status_code == 401


def test_parts_without_htmx_go_to_the_page(login_client, desk):
    req = desk["request"]
    response = login_client(desk["sam"]).get(f"/requests/{req.id}/parts")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/requests/{req.id}")


def test_the_latest_change_is_one_walk_of_the_audit_trails_index(app, make, desk):
    """However long a request's history, the poll reads one row along (entity, time), never the table."""
    from portal.extensions import db
    from portal.models import User
    from portal.services import requests as svc

    req = desk["request"]
    with app.app_context():
        db.session.execute(text("""
            INSERT INTO audit_log (action, entity_type, entity_id, at, after)
            SELECT 'comment.added', 'service_request', g % 500, now() - g * interval '1 minute',
                   jsonb_build_object('internal', g % 3 = 0)
              FROM generate_series(1, 5000) AS g"""))
        db.session.execute(text("ANALYZE audit_log"))
        db.session.commit()
        statements: list[str] = []

        def capture(conn, cursor, statement, parameters, context, executemany):
            if "audit_log" in statement:
                statements.append(cursor.mogrify(statement, parameters).decode())

        for who in ("riley", "sam"):
            actor = db.session.get(User, desk[who].id)
            row = svc.get_request(actor, req.id)
            event.listen(db.engine, "before_cursor_execute", capture)
            try:
                svc.latest_change(actor, row)
            finally:
                event.remove(db.engine, "before_cursor_execute", capture)
        assert len(statements) == 2
        for setting in ("enable_seqscan", "enable_bitmapscan"):
            db.session.execute(text(f"SET LOCAL {setting} = off"))
        for statement in statements:
            plan = "\n".join(db.session.execute(text("EXPLAIN " + statement)).scalars())
            assert "ix_audit_log_entity" in plan and "Limit" in plan, plan
        db.session.rollback()
