"""Polls that find nothing new cost almost nothing (issue #11): every polled partial carries an ETag, a
matching If-None-Match gets a bodiless 304, any change a 200 with a new ETag, and one user's ETag never
earns another user a 304. The breach polls answer from a stamp read before any other work; the
others hash what they rendered (time moving "3 h overdue" along changes those)."""

from __future__ import annotations

import pytest

from portal.htmx import POLL_CACHE_CONTROL
from tests.web.helpers import HX, text_of
from tests.web.test_sla_pages import _backdate

# The polled partials, the role that polls them and the headers htmx sends with the poll.
POLLS = [
    ("/dashboard/summary", "admin", HX),
    ("/dashboard/breaches", "admin", HX),
    ("/dashboard/charts", "manager", HX),
    ("/sla/breaches", "manager", {**HX, "HX-Target": "breach-table"}),
    ("/requests/{id}/sla", "agent", {**HX, "HX-Target": "sla-targets"}),
    ("/exports", "manager", HX),
]


@pytest.fixture()
def breached(app, make):
    """A request past its 4 h response target (so every widget has something to show)."""
    make.sla()
    requester = make.user("requester")
    req = make.request(requester, title="Server room too hot")
    _backdate(app, req.id, 5)
    return req


def _poll(client, url: str, headers: dict, etag: str | None = None):
    return client.get(url, headers={**headers, **({"If-None-Match": etag} if etag else {})})


def _repoll(client, url: str, headers: dict, first):
    """Poll again with `first`'s ETag. Countdowns move once a minute: if that minute turned between
    the two polls the 200 is right (and its body differs), and the poll after it must be a 304."""
    again = _poll(client, url, headers, first.headers["ETag"])
    if again.status_code == 200:
        assert again.data != first.data
        again = _poll(client, url, headers, again.headers["ETag"])
    return again


@pytest.mark.parametrize(("path", "role", "headers"), POLLS)
def test_unchanged_poll_answers_304_without_a_body(login_client, make, breached, path, role, headers):
    client = login_client(make.user(role))
    url = path.format(id=breached.id)
    first = _poll(client, url, headers)
    assert first.status_code == 200 and first.data
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    # Kept privately and revalidated on every poll (not no-store), apart from the page and other sessions.
    assert first.headers["Cache-Control"] == POLL_CACHE_CONTROL
    vary = {v.strip() for v in first.headers["Vary"].split(",")}
    assert {"HX-Request", "Cookie"} <= vary

    again = _repoll(client, url, headers, first)
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"].startswith('W/"')
    assert again.headers["Cache-Control"] == POLL_CACHE_CONTROL
    # A stale ETag (or none) gets the body.
    assert _poll(client, url, headers, 'W/"something-else"').status_code == 200


@pytest.mark.parametrize(("path", "role"), [("/sla/breaches", "manager"), ("/exports", "manager"),
                                            ("/requests/{id}/sla", "agent"), ("/dashboard/summary", "admin")])
def test_the_page_itself_stays_no_store(login_client, make, breached, path, role):
    response = login_client(make.user(role)).get(path.format(id=breached.id))
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    assert "ETag" not in response.headers


def test_a_full_page_asked_for_by_htmx_stays_no_store(login_client, make, breached):
    """The breach page's period select asks htmx for the whole page (it picks #compliance from it)."""
    response = login_client(make.user("manager")).get("/sla/breaches?days=90",
                                                      headers={**HX, "HX-Target": "compliance"})
    assert response.status_code == 200 and text_of(response).lstrip().lower().startswith("<!doctype")
    assert "no-store" in response.headers["Cache-Control"] and "ETag" not in response.headers


def test_the_targets_poll_gets_just_the_targets(login_client, make, breached):
    client = login_client(make.user("agent"))
    html = text_of(_poll(client, f"/requests/{breached.id}/sla", {**HX, "HX-Target": "sla-targets"}))
    assert html.lstrip().startswith('<div id="sla-targets"')
    assert "csrf_token" not in html and 'id="sla-panel"' not in html
    # Asked for without that target, it is still the whole panel: for a manager with the exemption
    # forms' CSRF tokens, so never kept.
    panel = login_client(make.user("manager")).get(f"/requests/{breached.id}/sla", headers=HX)
    assert text_of(panel).lstrip().startswith('<section id="sla-panel"') and "csrf_token" in text_of(panel)
    assert "no-store" in panel.headers["Cache-Control"] and "ETag" not in panel.headers


@pytest.mark.parametrize(("path", "headers"), [("/dashboard/summary", HX), ("/dashboard/breaches", HX),
                                               ("/dashboard/charts", HX),
                                               ("/sla/breaches", {**HX, "HX-Target": "breach-table"})])
def test_a_new_breach_changes_the_etag(app, login_client, make, breached, path, headers):
    client = login_client(make.user("admin"))
    first = _poll(client, path, headers)
    settled = _repoll(client, path, headers, first)
    assert settled.status_code == 304
    etag = settled.headers["ETag"]
    late = make.request(make.user("requester"), title="Badge reader dead")
    _backdate(app, late.id, 6)
    changed = _poll(client, path, headers, etag)
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert "Badge reader dead" in text_of(changed) or path in ("/dashboard/summary", "/dashboard/charts")
    assert _repoll(client, path, headers, changed).status_code == 304


@pytest.mark.parametrize(("path", "headers"), [("/dashboard/breaches", HX),
                                               ("/sla/breaches", {**HX, "HX-Target": "breach-table"})])
def test_an_unchanged_breach_poll_answers_from_its_stamp_without_reading_the_list(app, login_client, make, breached,
                                                                                   path, headers):
    """The breach polls read one stamp (migration 0026) before anything else: a match is a 304
    without the list's queries or its rendering. Their overdue times tick in the page instead."""
    from sqlalchemy import event

    from portal.extensions import db

    client = login_client(make.user("admin"))
    first = _poll(client, path, headers)
    assert 'class="countdown overdue" data-due="' in text_of(first)   # ticks in the browser
    with app.app_context():
        engine = db.engine
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        again = _repoll(client, path, headers, first)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert again.status_code == 304
    stamp_reads = [s for s in sent if "hashint8extended" in s]
    assert stamp_reads and not any("FROM service_request" in s or "sla_exemption" in s for s in sent
                                   if s not in stamp_reads), sent


def test_time_moving_on_changes_the_etag(app, login_client, make, breached):
    """Nothing was written, but the breach is an hour older: "overdue" says so, so no 304."""
    client = login_client(make.user("admin"))
    first = _poll(client, "/dashboard/breaches", HX)
    assert "overdue" in text_of(first)
    _backdate(app, breached.id, 1)  # the same as the clock moving on an hour
    later = _poll(client, "/dashboard/breaches", HX, first.headers["ETag"])
    assert later.status_code == 200 and later.headers["ETag"] != first.headers["ETag"]


def test_another_users_etag_never_earns_a_304(login_client, make, breached):
    """Same URL: the requester's targets differ from the agent's; even two admins who see the same
    cards each get their own ETag (it covers the user), so a shared browser never mixes them up."""
    targets = f"/requests/{breached.id}/sla"
    headers = {**HX, "HX-Target": "sla-targets"}
    agent = _poll(login_client(make.user("agent")), targets, headers)
    requester_client = login_client(make.user("requester"))  # not the owner: a 404, never the agent's copy
    assert _poll(requester_client, targets, headers, agent.headers["ETag"]).status_code == 404

    owner = make.get_user(breached.requester_id)
    mine = _poll(login_client(owner), targets, headers, agent.headers["ETag"])
    assert mine.status_code == 200 and mine.headers["ETag"] != agent.headers["ETag"]

    one, two = login_client(make.user("admin")), login_client(make.user("admin"))
    cards = _poll(one, "/dashboard/summary", HX)
    theirs = _poll(two, "/dashboard/summary", HX, cards.headers["ETag"])
    assert theirs.status_code == 200 and theirs.data == cards.data
    assert theirs.headers["ETag"] != cards.headers["ETag"]
    # A signed-out browser sending the ETag is sent to sign in, never given a 304.
    one.post("/logout")
    assert _poll(one, "/dashboard/summary", HX, cards.headers["ETag"]).status_code == 401


def test_posts_and_errors_get_no_etag(login_client, make, breached):
    client = login_client(make.user("agent"))
    assert "ETag" not in client.get("/dashboard/summary", headers=HX).headers  # 403 for an agent
