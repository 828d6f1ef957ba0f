"""A request with a long history (issue #11): the page shows the first entry and the newest, the middle
collapsed behind "Show N older events", loaded a page at a time by HTMX or, without JavaScript, by a
link; every read is bounded, and requesters never see internal notes (nor count them) on any page."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import event, update

from portal.services.requests.timeline import NEWEST_SHOWN, OLDER_PAGE
from tests.web.helpers import HX, oob_ids, text_of

PAGE_BUDGET = 60 * 1024  # bytes of HTML for the request page, however long the history


def seed_history(app, request_id: int, agent_id: int, requester_id: int, entries: int = 500) -> dict:
    """`entries` more timeline entries after the request's creation: replies, internal notes, status
    changes (with silent audit rows that show nothing), SLA pauses; some at the same instant.

    Returns what each kind of reader should see, oldest first, as (marker text) lists.
    """
    from portal.extensions import db
    from portal.models import AuditLog, Comment, ServiceRequest, SlaEvent

    staff_sees, requester_sees = [], []
    with app.app_context():
        # The history lies in the past (raised `entries` + 1 minutes ago), so what happens next is newest.
        row = db.session.get(ServiceRequest, request_id)
        start = row.created_at - timedelta(minutes=entries + 1)
        row.created_at = start
        db.session.execute(update(AuditLog).where(AuditLog.entity_id == request_id,
                                                  AuditLog.action == "request.created").values(at=start))
        for i in range(entries):
            at = start + timedelta(minutes=i + 1)
            kind = i % 10
            if kind in (0, 1, 2, 3, 4):
                db.session.add(Comment(request_id=request_id, author_id=requester_id if i % 2 else agent_id,
                                       body=f"Reply number {i:03d}", internal=False, created_at=at))
                staff_sees.append(f"Reply number {i:03d}")
                requester_sees.append(f"Reply number {i:03d}")
            elif kind in (5, 6):
                db.session.add(Comment(request_id=request_id, author_id=agent_id, body=f"Secret note {i:03d}",
                                       internal=True, created_at=at))
                staff_sees.append(f"Secret note {i:03d}")
            elif kind == 7:
                db.session.add(AuditLog(actor_id=agent_id, action="request.updated", entity_type="service_request",
                                        entity_id=request_id, before={"title": f"Was {i:03d}"},
                                        after={"title": f"Renamed {i:03d}"}, at=at))
                staff_sees.append(f"Renamed {i:03d}")
                requester_sees.append(f"Renamed {i:03d}")
                # Same instant: a silent audit row (first response) that is never an entry.
                db.session.add(AuditLog(actor_id=agent_id, action="request.updated", entity_type="service_request",
                                        entity_id=request_id, before={"first_response_at": None},
                                        after={"first_response_at": at.isoformat()}, at=at))
            elif kind == 8:
                db.session.add(SlaEvent(request_id=request_id, kind="exempted", target="resolution", at=at,
                                        detail={"reason": f"Vendor delay {i:03d}", "duration_hours": 1}))
                staff_sees.append(f"Vendor delay {i:03d}")
            else:
                # A change and a reply at the same instant: the change comes first.
                db.session.add(AuditLog(actor_id=agent_id, action="request.updated", entity_type="service_request",
                                        entity_id=request_id, before={"title": f"Old {i:03d}"},
                                        after={"title": f"New {i:03d}"}, at=at))
                db.session.add(Comment(request_id=request_id, author_id=agent_id, body=f"Same instant {i:03d}",
                                       internal=False, created_at=at))
                staff_sees += [f"New {i:03d}", f"Same instant {i:03d}"]
                requester_sees += [f"New {i:03d}", f"Same instant {i:03d}"]
        db.session.commit()
    return {"staff": ["raised this request", *staff_sees], "requester": ["raised this request", *requester_sees]}


@pytest.fixture()
def long_request(app, make):
    agent = make.user("agent")
    requester = make.user("requester")
    req = make.request(requester, title="Laptop keeps rebooting")
    seen = seed_history(app, req.id, agent.id, requester.id)
    return agent, requester, req, seen


ENTRY = re.compile(r'<li (?:id="timeline-gap" )?class="(?:entry|timeline-gap)[^"]*"[^>]*>.*?</li>', re.S)
GAP_LINK = re.compile(r'<li id="timeline-gap"[^>]*>\s*<a[^>]*href="([^"]+)"[^>]*hx-get="([^"]+)"[^>]*>([^<]+)</a>')


def _markers(html: str, seen: list[str]) -> list[str]:
    """Which of the expected entries the HTML shows, in the order it shows them."""
    out = []
    for item in ENTRY.findall(html):
        if item.startswith('<li id="timeline-gap"'):
            out.append("GAP")
            continue
        text = unescape(item)
        found = [m for m in seen if m in text]
        assert len(found) == 1, (found, text[:300])
        out.append(found[0])
    return out


def _gap(html: str) -> tuple[str, str, int] | None:
    """The gap's plain link, its HTMX URL and the number it says are hidden."""
    match = GAP_LINK.search(html)
    if not match:
        return None
    count = int(re.search(r"Show ([\d,]+) older event", match.group(3)).group(1).replace(",", ""))
    return unescape(match.group(1)), unescape(match.group(2)), count


def _timeline_part(page_html: str) -> str:
    start = page_html.index('<ol id="timeline"')
    return page_html[start:page_html.index("</ol>", start) + 5]


@pytest.mark.parametrize("who", ["staff", "requester"])
def test_long_timeline_page_is_small_and_shows_first_and_newest(login_client, long_request, who):
    agent, requester, req, seen = long_request
    expected = seen[who]
    response = login_client(agent if who == "staff" else requester).get(f"/requests/{req.id}")
    assert response.status_code == 200
    html = text_of(response)
    assert len(response.data) < PAGE_BUDGET, len(response.data)
    shown = _markers(_timeline_part(html), expected)
    assert shown == [expected[0], "GAP", *expected[-NEWEST_SHOWN:]]
    _, _, hidden = _gap(html)
    assert hidden == len(expected) - 1 - NEWEST_SHOWN
    if who == "requester":
        assert "Secret note" not in html and "Internal note" not in html and "Vendor delay" not in html


@pytest.mark.parametrize("who", ["staff", "requester"])
def test_show_older_pages_through_the_rest_once_each(login_client, long_request, who):
    agent, requester, req, seen = long_request
    expected = seen[who]
    client = login_client(agent if who == "staff" else requester)
    page = text_of(client.get(f"/requests/{req.id}"))
    newest = _markers(_timeline_part(page), expected)[2:]
    _, url, hidden = _gap(page)
    loaded: list[str] = []
    pages = 0
    while url:
        response = client.get(url, headers=HX)
        assert response.status_code == 200
        fragment = text_of(response)
        assert "<html" not in fragment and 'id="timeline"' not in fragment
        if who == "requester":
            assert "Secret note" not in fragment and "Internal note" not in fragment and "Vendor delay" not in fragment
        shown = _markers(fragment, expected)
        gap = _gap(fragment)
        entries = [m for m in shown if m != "GAP"]
        assert 0 < len(entries) <= OLDER_PAGE
        if gap:
            assert shown[0] == "GAP"  # the smaller gap stays above the page it loaded
            assert gap[2] == hidden - len(entries)
            url, hidden = gap[1], gap[2]
        else:
            assert len(entries) == hidden
            url = None
        loaded = entries + loaded
        pages += 1
    assert [expected[0], *loaded, *newest] == expected  # every entry once, in order
    assert pages == -(-(len(expected) - 1 - NEWEST_SHOWN) // OLDER_PAGE)


def test_without_javascript_the_gap_link_shows_one_page_more(login_client, long_request):
    agent, _, req, seen = long_request
    expected = seen["staff"]
    client = login_client(agent)
    link, _, hidden = _gap(text_of(client.get(f"/requests/{req.id}")))
    assert link.startswith(f"/requests/{req.id}?before=") and link.endswith("#timeline-gap")
    response = client.get(link.split("#")[0])
    assert response.status_code == 200
    html = text_of(response)
    shown = _markers(_timeline_part(html), expected)
    tail = NEWEST_SHOWN + OLDER_PAGE
    assert shown == [expected[0], "GAP", *expected[-tail:]]
    assert _gap(html)[2] == hidden - OLDER_PAGE


def test_timeline_queries_are_bounded(app, login_client, make, long_request):
    """The page and a "show older" page run the same statements for 30 entries as for 500."""
    agent, requester, req, _ = long_request
    short = make.request(requester, title="Short one")
    seed_history(app, short.id, agent.id, requester.id, entries=30)
    client = login_client(agent)

    def statements(url: str) -> list[str]:
        seen: list[str] = []

        def record(conn, cursor, statement, parameters, context, executemany):
            seen.append(statement)

        from portal.extensions import db
        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            assert client.get(url, headers=HX).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return [s for s in seen if "comment" in s or "audit_log" in s or "sla_event" in s]

    long_reads = statements(f"/requests/{req.id}/timeline")
    assert len(long_reads) == len(statements(f"/requests/{short.id}/timeline"))
    for sql in long_reads:
        if "FROM comment" in sql or "FROM audit_log" in sql or "FROM sla_event" in sql:
            assert "LIMIT" in sql or "count(" in sql or "attachment" in sql or "WHERE comment.id" in sql, sql


def test_a_requester_cannot_page_from_an_internal_note(app, login_client, make, long_request):
    agent, requester, req, _ = long_request
    internal = [c for c in make.comments(req.id) if c.internal][-1]
    client = login_client(requester)
    for before in (f"comment-{internal.id}", "sla-1", "nonsense", "comment-", "comment-99999999999999999999"):
        assert client.get(f"/requests/{req.id}/timeline?before={before}", headers=HX).status_code == 404
    assert login_client(agent).get(f"/requests/{req.id}/timeline?before=comment-{internal.id}",
                                   headers=HX).status_code == 200


def test_a_short_timeline_shows_everything(login_client, make, app):
    agent = make.user("agent")
    requester = make.user("requester")
    req = make.request(requester)
    seen = seed_history(app, req.id, agent.id, requester.id, entries=20)
    html = text_of(login_client(agent).get(f"/requests/{req.id}"))
    assert _gap(html) is None
    assert _markers(_timeline_part(html), seen["staff"]) == seen["staff"]


def test_a_change_answers_with_the_collapsed_timeline_out_of_band(login_client, make, long_request):
    agent, _, req, seen = long_request
    response = login_client(agent).post(f"/requests/{req.id}/comments", data={"body": "Newest of all"}, headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert "timeline" in oob_ids(html)
    part = _timeline_part(html)
    assert "Newest of all" in part and _gap(part) is not None
    assert len(ENTRY.findall(part)) == 1 + 1 + NEWEST_SHOWN
