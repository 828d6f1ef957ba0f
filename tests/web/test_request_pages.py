"""Request pages: the list and its filters, raising a request, attachments, and the HTMX detail forms."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.web.helpers import HX, REQUEST_PAGE_PARTS, link_with_rel, main_part, oob_ids, text_of

TABLE = {**HX, "HX-Target": "request-table"}


# ---------------------------------------------------------------- list page


@pytest.fixture()
def listing(make):
    """An agent, two requesters and requests that differ in every filterable way."""
    agent = make.user("agent")
    other_agent = make.user("agent")
    alice = make.user("requester")
    bob = make.user("requester")
    reqs = {
        "printer": make.request(alice, title="Printer jammed Alpha", category="hardware", priority="low"),
        "vpn": make.request(alice, title="VPN drops Bravo", category="network", priority="high",
                            status="in_progress", assignee=agent),
        "excel": make.request(bob, title="Excel crashes Charlie", category="software", priority="critical",
                              assignee=other_agent, description="Macro sheet Zebra fails."),
        "badge": make.request(bob, title="Badge access Delta", category="access", priority="medium",
                              status="resolved"),
    }
    return agent, alice, bob, reqs


def _titles(html: str, reqs) -> set[str]:
    shown = re.sub(r"</?mark>", "", html)  # search results mark the matched words
    return {key for key, r in reqs.items() if r.title in shown}


def test_list_search_marks_the_matched_words_and_escapes_the_rest(login_client, make):
    agent = make.user("agent")
    make.request(make.user("requester"), title="<b>Printer</b> on floor 3",
                 description="Since Monday the printer on the third floor prints blank pages.")
    html = text_of(login_client(agent).get("/requests?q=printer"))
    assert "&lt;b&gt;<mark>Printer</mark>&lt;/b&gt; on floor 3" in html
    assert 'class="snippet' in html and "the <mark>printer</mark> on the third floor" in html


def test_list_page_renders_filter_form_and_table(login_client, listing):
    agent, _, _, reqs = listing
    response = login_client(agent).get("/requests?status=any")
    assert response.status_code == 200
    html = text_of(response)
    assert "<html" in html
    assert '<form id="filters"' in html
    for name in ("q", "status", "priority", "category", "assignee", "sort", "per_page"):
        assert f'name="{name}"' in html
    assert '<section id="request-table"' in html
    assert '<table class="requests">' in html
    assert _titles(html, reqs) == set(reqs)
    assert "4 requests" in html
    # Without a status, staff land on the open work (the resolved one left out).
    landing = text_of(login_client(agent).get("/requests"))
    assert _titles(landing, reqs) == set(reqs) - {"badge"} and "3 requests" in landing


def test_list_htmx_returns_only_table_partial(login_client, listing):
    agent, _, _, reqs = listing
    response = login_client(agent).get("/requests?priority=high", headers=TABLE)
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<section id="request-table"')
    assert "<html" not in html and "<body" not in html and '<form id="filters"' not in html
    assert _titles(html, reqs) == {"vpn"}
    vary = {v.strip() for v in response.headers["Vary"].split(",")}
    assert "HX-Request" in vary


def test_list_full_page_also_varies_on_hx_request(login_client, listing):
    agent, *_ = listing
    response = login_client(agent).get("/requests")
    assert "HX-Request" in {v.strip() for v in response.headers["Vary"].split(",")}


def test_list_htmx_for_another_target_gets_full_page(login_client, listing):
    agent, *_ = listing
    html = text_of(login_client(agent).get("/requests", headers={**HX, "HX-Target": "main"}))
    assert "<html" in html and '<form id="filters"' in html


@pytest.mark.parametrize(("query", "expected"), [
    ("status=in_progress", {"vpn"}),
    ("status=active", {"printer", "vpn", "excel"}),
    ("status=done", {"badge"}),
    ("priority=critical", {"excel"}),
    ("category=network", {"vpn"}),
    ("assignee=me", {"vpn"}),
    ("assignee=none", {"printer"}),               # staff without a status: the open work
    ("status=any&assignee=none", {"printer", "badge"}),
    ("q=bravo", {"vpn"}),
    ("q=zebra", {"excel"}),
    ("status=active&priority=low&category=hardware", {"printer"}),
    ("priority=high&category=hardware", set()),
    ("q=%25", set()),
    ("q=_", set()),
    ("q=%5C", set()),
])
def test_list_plain_get_filters(login_client, listing, query, expected):
    agent, _, _, reqs = listing
    response = login_client(agent).get("/requests?" + query)
    assert response.status_code == 200
    html = text_of(response)
    assert "<html" in html
    assert _titles(html, reqs) == expected
    if not expected:
        assert "No requests match these filters." in html


def test_list_filters_same_with_and_without_htmx(login_client, listing):
    agent, _, _, reqs = listing
    client = login_client(agent)
    for query in ("status=active&assignee=none", "q=charlie", "category=access"):
        plain = _titles(text_of(client.get("/requests?" + query)), reqs)
        partial = _titles(text_of(client.get("/requests?" + query, headers=TABLE)), reqs)
        assert plain == partial


def test_list_search_by_number(login_client, listing):
    agent, _, _, reqs = listing
    html = text_of(login_client(agent).get(f"/requests?q=%23{reqs['excel'].id}"))
    assert _titles(html, reqs) == {"excel"}


def test_list_assignee_by_id(login_client, listing, make):
    agent, _, _, reqs = listing
    excel = make.get_request(reqs["excel"].id)
    html = text_of(login_client(agent).get(f"/requests?assignee={excel.assignee_id}"))
    assert _titles(html, reqs) == {"excel"}


def test_list_form_reflects_current_filters(login_client, listing):
    agent, *_ = listing
    html = text_of(login_client(agent).get("/requests?status=done&priority=high&q=abc"))
    assert '<option value="done" selected>' in html
    assert '<option value="high" selected>' in html
    assert 'value="abc"' in html


def test_list_requester_sees_only_own(login_client, listing):
    _, alice, _, reqs = listing
    html = text_of(login_client(alice).get("/requests"))
    assert _titles(html, reqs) == {"printer", "vpn"}
    assert "My requests" in html
    # Requesters get no assignee filter.
    assert 'name="assignee"' not in html


def _tabs(html: str) -> list[str]:
    """The quick-view tabs' labels, in order."""
    nav = re.search(r'<nav class="tabs" aria-label="Quick views">(.*?)</nav>', html, re.S)
    return re.findall(r">([^<]+)</a>", nav.group(1)) if nav else []


def _current_tab(html: str) -> str | None:
    nav = re.search(r'<nav class="tabs" aria-label="Quick views">(.*?)</nav>', html, re.S)
    found = re.search(r'aria-current="page">([^<]+)</a>', nav.group(1)) if nav else None
    return found.group(1) if found else None


def test_list_requester_tabs_are_open_and_closed(login_client, listing):
    _, alice, bob, reqs = listing
    client = login_client(alice)
    html = text_of(client.get("/requests"))
    assert _tabs(html) == ["All", "Open", "Closed"]
    assert "Open work" not in html and "Assigned to me" not in html
    assert _current_tab(html) == "All"
    closed = text_of(client.get("/requests?status=done"))
    assert _current_tab(closed) == "Closed"
    assert _titles(text_of(login_client(bob).get("/requests?status=done")), reqs) == {"badge"}
    opened = text_of(login_client(bob).get("/requests?status=active"))
    assert _current_tab(opened) == "Open"
    assert _titles(opened, reqs) == {"excel"}


def test_list_staff_keep_their_work_tabs(login_client, listing):
    agent, *_ = listing
    html = text_of(login_client(agent).get("/requests"))
    assert _tabs(html) == ["Open work", "Assigned to me", "Unassigned", "All"]
    assert "Open work (not resolved)" in html


def test_list_new_requester_is_invited_to_raise_a_first_request(login_client, listing, make):
    newcomer = make.user("requester")
    client = login_client(newcomer)
    for query in ("", "?status=done&q=printer"):
        html = text_of(client.get("/requests" + query))
        assert "Raise your first request" in html
        assert re.search(r'<a class="button primary" href="/requests/new">Raise your first request</a>', html)
        assert "No requests match" not in html
        # Nothing to filter yet, and one button, not two.
        assert _tabs(html) == [] and '<form id="filters"' not in html
        assert html.count('class="button primary"') == 1
        # None of the other requesters' requests leak into it.
        assert _titles(html, listing[3]) == set()
    partial = text_of(client.get("/requests?priority=high", headers=TABLE))
    assert partial.lstrip().startswith('<section id="request-table"') and "Raise your first request" in partial


def test_list_filters_matching_nothing_say_so_with_a_way_to_clear_them(login_client, listing):
    _, alice, _, _ = listing
    for headers in ({}, TABLE):
        html = text_of(login_client(alice).get("/requests?status=done&q=printer", headers=headers))
        assert "No requests match these filters." in html
        assert '<a class="button" href="/requests">Clear the filters</a>' in html
        assert "Raise your first request" not in html


def test_list_empty_for_staff_when_nobody_raised_anything(login_client, make):
    html = text_of(login_client(make.user("agent")).get("/requests"))
    assert "No requests yet" in html and "No requests match" not in html
    assert "Raise your first request" not in html


@pytest.mark.parametrize("query", [
    "status=bogus", "priority=urgent", "category=nope", "assignee=someone", "sort=sideways", "page=abc",
    "page=0", "per_page=-3", "status=%3Cscript%3E", "assignee=%D9%A1", "page=%C2%B2",
])
def test_list_unknown_filter_values_show_notice(login_client, listing, query):
    agent, _, _, reqs = listing
    client = login_client(agent)
    for headers in ({}, TABLE):
        response = client.get("/requests?" + ("" if query.startswith("status=") else "status=any&") + query,
                              headers=headers)
        assert response.status_code == 200
        html = text_of(response)
        assert "Some filters were ignored" in html
        assert "<script>" not in html
        # The bad value is dropped, the rest of the list still shows.
        assert _titles(html, reqs) == set(reqs)


@pytest.mark.parametrize("query", ["page=99999999999", "page=100001", "per_page=100000", "assignee=99999999999",
                                   "q=%2399999999999", "q=%00", "q=a%00b", "page=%D9%A1"])
def test_list_extreme_values_are_not_an_error(login_client, listing, query):
    agent, *_ = listing
    client = login_client(agent)
    for headers in ({}, TABLE):
        response = client.get("/requests?" + query, headers=headers)
        assert response.status_code == 200
        assert '<section id="request-table"' in text_of(response)


def test_list_pagination_links_keep_filters(app, login_client, make):
    """The pager goes by position (after/before the rows shown) and keeps the filters and sort."""
    agent = make.user("agent")
    alice = make.user("requester")
    high = [make.request(alice, title=f"High number {i}", priority="high") for i in range(5)]
    make.request(alice, title="Low one", priority="low")
    old = app.config["PER_PAGE"]
    app.config["PER_PAGE"] = 2
    try:
        client = login_client(agent)
        html = text_of(client.get("/requests?priority=high&q=number&sort=oldest"))
        assert "5 requests" in html
        assert link_with_rel(html, "prev") is None and link_with_rel(html, "first") is None
        nxt = link_with_rel(html, "next")
        query = parse_qs(urlsplit(nxt).query)
        assert query.pop("after")
        assert query == {"status": ["active"], "priority": ["high"], "q": ["number"], "sort": ["oldest"]}
        # The pager is htmx-enabled with the same URL.
        assert f'hx-get="{nxt.replace("&", "&amp;")}"' in html

        page2 = text_of(client.get(nxt, headers=TABLE))
        assert page2.lstrip().startswith('<section id="request-table"')
        page2 = re.sub(r"</?mark>", "", page2)
        assert [r.title for r in high if r.title in page2] == [high[2].title, high[3].title]
        assert "Low one" not in page2
        prev = link_with_rel(page2, "prev")
        prev_query = parse_qs(urlsplit(prev).query)
        assert prev_query.pop("before")
        assert prev_query == {"status": ["active"], "priority": ["high"], "q": ["number"], "sort": ["oldest"]}
        back = re.sub(r"</?mark>", "", text_of(client.get(prev)))
        assert [r.title for r in high if r.title in back] == [high[0].title, high[1].title]
        assert link_with_rel(back, "prev") is None

        last = re.sub(r"</?mark>", "", text_of(client.get(link_with_rel(page2, "next"))))
        assert [r.title for r in high if r.title in last] == [high[4].title]
        assert link_with_rel(last, "next") is None and link_with_rel(last, "last") is None
        # "Last" from the first page: the final rows in the same order.
        jumped = re.sub(r"</?mark>", "", text_of(client.get(link_with_rel(html, "last"))))
        assert [r.title for r in high if r.title in jumped] == [high[3].title, high[4].title]
        assert link_with_rel(jumped, "prev") is not None
    finally:
        app.config["PER_PAGE"] = old


def test_list_damaged_page_link_shows_the_first_page(login_client, make):
    agent = make.user("agent")
    make.request(make.user("requester"), title="Only one")
    client = login_client(agent)
    for token in ("not-a-cursor", "WyJuZXdlc3QiXQ", "x" * 500, "%00"):
        html = text_of(client.get(f"/requests?after={token}"))
        assert "Only one" in html
        assert "page link" in html


def test_list_pagination_links_keep_per_page(login_client, make):
    """?per_page= is read by the list, so the pager must keep it or rows are skipped."""
    agent = make.user("agent")
    alice = make.user("requester")
    for i in range(5):
        make.request(alice, title=f"Row {i}")
    client = login_client(agent)
    html = text_of(client.get("/requests?per_page=2&sort=oldest"))
    assert "5 requests" in html
    nxt = link_with_rel(html, "next")
    assert parse_qs(urlsplit(nxt).query).get("per_page") == ["2"], nxt
    assert "Row 2" in text_of(client.get(nxt))


# ---------------------------------------------------------------- new request


def test_new_request_form_renders(login_client, make):
    html = text_of(login_client(make.user("requester")).get("/requests/new"))
    assert 'enctype="multipart/form-data"' in html
    for name in ("title", "category", "priority", "description", "attachments"):
        assert f'name="{name}"' in html


def test_new_request_form_starts_without_a_category(login_client, make):
    html = text_of(login_client(make.user("requester")).get("/requests/new"))
    select = re.search(r'<select[^>]*name="category"[^>]*>(.*?)</select>', html, re.S).group(1)
    assert select.lstrip().startswith('<option value="">Choose a category</option>')
    assert "selected" not in select


def test_new_request_without_category_says_choose_one(login_client, make):
    client = login_client(make.user("requester"))
    response = client.post("/requests/new", data={
        "title": "Monitor flickers", "category": "", "priority": "medium", "description": "Every minute.",
    })
    assert response.status_code == 422
    html = text_of(response)
    assert re.search(r'<select[^>]*aria-invalid="true"[^>]*name="category"|<select[^>]*name="category"[^>]*'
                     r'aria-invalid="true"', html)
    # the message has an id, and the select is described by it (aria-describedby)
    assert '<p class="error" id="category-error-1" role="alert">Choose a category.</p>' in html
    assert re.search(r'<select[^>]*aria-describedby="category-error-1"', html)
    assert "Monitor flickers" in html and "Every minute." in html
    assert make.count("ServiceRequest") == 0


def test_new_request_shows_the_category_message_beside_the_forms_own(login_client, make):
    client = login_client(make.user("requester"))
    html = text_of(client.post("/requests/new", data={"title": "", "priority": "medium", "description": "x"}))
    assert "This field is required." in html and "Choose a category." in html
    assert html.count('<p class="error"') == 2
    assert make.count("ServiceRequest") == 0


def test_new_request_valid_post_creates_and_redirects(login_client, make):
    user = make.user("requester")
    client = login_client(user)
    response = client.post("/requests/new", data={
        "title": "Monitor flickers", "category": "hardware", "priority": "high",
        "description": "Second screen flickers every minute.",
    })
    assert response.status_code == 303
    match = re.fullmatch(r"/requests/(\d+)", response.headers["Location"])
    assert match
    req = make.get_request(int(match.group(1)))
    assert (req.title, req.category, req.priority, req.status, req.requester_id) == (
        "Monitor flickers", "hardware", "high", "open", user.id)
    detail = text_of(client.get(response.headers["Location"]))
    assert f"Request #{req.id} was created." in detail
    assert "Monitor flickers" in detail


def test_new_request_htmx_post_redirects_with_hx_redirect(login_client, make):
    client = login_client(make.user("requester"))
    response = client.post("/requests/new", headers=HX, data={
        "title": "Laptop slow", "category": "hardware", "priority": "medium", "description": "Very slow.",
    })
    assert response.status_code == 204
    assert re.fullmatch(r"/requests/\d+", response.headers["HX-Redirect"])


def test_new_request_invalid_post_shows_errors_422(login_client, make):
    client = login_client(make.user("requester"))
    response = client.post("/requests/new", data={
        "title": "", "category": "teleportation", "priority": "medium", "description": "Kept text",
    })
    assert response.status_code == 422
    html = text_of(response)
    assert "This field is required." in html
    assert "Choose one of: " in html  # a category not offered (the service's one check)
    assert 'aria-invalid="true"' in html
    assert "Kept text" in html
    assert make.count("ServiceRequest") == 0


def test_new_request_blank_title_after_strip_is_422(login_client, make):
    client = login_client(make.user("requester"))
    response = client.post("/requests/new", data={
        "title": "   ", "category": "hardware", "priority": "medium", "description": "x",
    })
    assert response.status_code == 422
    assert make.count("ServiceRequest") == 0


def test_new_request_with_attachment_shows_and_downloads(login_client, make):
    client = login_client(make.user("requester"))
    response = client.post("/requests/new", content_type="multipart/form-data", data={
        "title": "Error log", "category": "software", "priority": "medium", "description": "See the log.",
        "attachments": (io.BytesIO(b"line one\nline two\n"), "file.txt"),
    })
    assert response.status_code == 303
    detail_url = response.headers["Location"]
    html = text_of(client.get(detail_url))
    assert "file.txt" in html
    href = re.search(r'<a href="(/attachments/\d+)" download>file.txt</a>', html).group(1)

    download = client.get(href)
    assert download.status_code == 200
    assert download.data == b"line one\nline two\n"
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert "file.txt" in disposition
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.mimetype == "text/plain"


@pytest.mark.parametrize(("filename", "content"), [
    ("page.html", b"<script>alert(1)</script>"),
    ("logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"),
    ("PAGE.HTML", b"<b>x</b>"),
])
def test_new_request_refuses_dangerous_upload(login_client, make, filename, content):
    client = login_client(make.user("requester"))
    response = client.post("/requests/new", content_type="multipart/form-data", data={
        "title": "With a file", "category": "software", "priority": "medium", "description": "x",
        "attachments": (io.BytesIO(content), filename),
    })
    assert response.status_code == 422
    html = text_of(response)
    assert "is not an allowed file type" in html
    assert make.count("ServiceRequest") == 0
    assert make.count("Attachment") == 0


def test_attachment_of_another_requesters_request_is_404(login_client, make):
    alice = make.user("requester")
    bob = make.user("requester")
    req = make.request(alice, uploads=[("alice.txt", b"alice's secret")])
    response = login_client(bob).get(f"/attachments/{req.attachment_ids[0]}")
    assert response.status_code == 404
    assert b"alice's secret" not in response.data


def test_attachment_on_internal_note_hidden_from_requester(login_client, make):
    alice = make.user("requester")
    agent = make.user("agent")
    req = make.request(alice)
    note = make.comment(agent, req.id, "Internal: reset token", internal=True, uploads=[("notes.txt", b"staff only")])
    public = make.comment(agent, req.id, "Public reply", uploads=[("reply.txt", b"for you")])
    alice_client = login_client(alice)
    response = alice_client.get(f"/attachments/{note.attachment_ids[0]}")
    assert response.status_code == 404
    assert b"staff only" not in response.data
    assert alice_client.get(f"/attachments/{public.attachment_ids[0]}").data == b"for you"
    # Staff can download it.
    assert login_client(agent).get(f"/attachments/{note.attachment_ids[0]}").data == b"staff only"


def test_attachment_unknown_id_is_404(login_client, make):
    assert login_client(make.user("agent")).get("/attachments/999999").status_code == 404


# ---------------------------------------------------------------- detail page and its HTMX forms


@pytest.fixture()
def ticket(make):
    agent = make.user("agent")
    alice = make.user("requester")
    req = make.request(alice, title="Cannot print Echo")
    return agent, alice, req


def test_detail_page_renders(login_client, ticket):
    agent, alice, req = ticket
    html = text_of(login_client(agent).get(f"/requests/{req.id}"))
    assert "Cannot print Echo" in html
    for part in ('id="request-header"', 'id="timeline"', 'id="comment-form"', 'id="request-panel"'):
        assert part in html
    assert "raised this request" in html
    assert alice.name in html


def test_detail_unknown_request_is_404(login_client, make):
    response = login_client(make.user("agent")).get("/requests/999999")
    assert response.status_code == 404
    assert "Request #999999 was not found." in text_of(response)


def test_status_change_htmx_returns_panel_and_trigger(login_client, make, ticket):
    agent, _, req = ticket
    response = login_client(agent).post(f"/requests/{req.id}/status", data={"status": "in_progress"}, headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<section id="request-panel"')
    assert "<html" not in html
    assert "Status changed to in progress." in main_part(html)
    # The rest of the page comes in the same response: no follow-up GETs.
    assert oob_ids(html) == REQUEST_PAGE_PARTS - {"request-panel"}
    assert "In progress" in re.search(r'<div id="request-header".*?</div>', html, re.S).group(0)
    assert make.get_request(req.id).status == "in_progress"


def test_status_change_plain_post_redirects_with_flash(login_client, make, ticket):
    agent, _, req = ticket
    client = login_client(agent)
    response = client.post(f"/requests/{req.id}/status", data={"status": "resolved"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/requests/{req.id}"
    assert "Status changed to resolved." in text_of(client.get(f"/requests/{req.id}"))
    assert make.get_request(req.id).status == "resolved"


def test_status_invalid_transition_htmx_409_changes_nothing(login_client, make, ticket):
    agent, _, req = ticket
    response = login_client(agent).post(f"/requests/{req.id}/status", data={"status": "closed"}, headers=HX)
    assert response.status_code == 409
    html = text_of(response)
    assert html.lstrip().startswith('<section id="request-panel"')
    assert "An open request cannot be closed without being resolved first." in html
    assert "flash-error" in html
    assert oob_ids(html) == (set() if 'id="comment-form"' in html else REQUEST_PAGE_PARTS - {"request-panel"})
    assert make.get_request(req.id).status == "open"


def test_status_unknown_value_htmx_422(login_client, make, ticket):
    agent, _, req = ticket
    response = login_client(agent).post(f"/requests/{req.id}/status", data={"status": "exploded"}, headers=HX)
    assert response.status_code == 422
    assert '<section id="request-panel"' in text_of(response)
    assert make.get_request(req.id).status == "open"


def test_status_requester_cannot_move_open_request(login_client, make, ticket):
    _, alice, req = ticket
    response = login_client(alice).post(f"/requests/{req.id}/status", data={"status": "resolved"}, headers=HX)
    assert response.status_code == 409
    assert "Requesters can only close a resolved request" in text_of(response)
    assert make.get_request(req.id).status == "open"


def test_status_requester_closes_resolved_request(login_client, make):
    alice = make.user("requester")
    req = make.request(alice, status="resolved")
    client = login_client(alice)
    page = text_of(client.get(f"/requests/{req.id}"))
    assert 'name="status" value="closed"' in page
    assert "Close (confirm resolution)" in page
    response = client.post(f"/requests/{req.id}/status", data={"status": "closed"}, headers=HX)
    assert response.status_code == 200
    assert make.get_request(req.id).status == "closed"


def test_assign_to_me_and_unassign(login_client, make, ticket):
    agent, _, req = ticket
    client = login_client(agent)
    assert "Assign to me" in text_of(client.get(f"/requests/{req.id}"))

    response = client.post(f"/requests/{req.id}/assign", data={"assignee": "me"}, headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<section id="request-panel"')
    assert "You took this request." in html
    assert "Assign to me" not in html
    assert oob_ids(html) == REQUEST_PAGE_PARTS - {"request-panel"}
    assert make.get_request(req.id).assignee_id == agent.id

    response = client.post(f"/requests/{req.id}/assign", data={"assignee": ""}, headers=HX)
    assert response.status_code == 200
    assert "Assigned to nobody." in text_of(response)
    assert make.get_request(req.id).assignee_id is None


def test_assign_to_other_agent_plain_post(login_client, make, ticket):
    agent, _, req = ticket
    other = make.user("manager")
    response = login_client(agent).post(f"/requests/{req.id}/assign", data={"assignee": str(other.id)})
    assert response.status_code == 303
    assert make.get_request(req.id).assignee_id == other.id


def test_assign_to_requester_is_refused_with_reason(login_client, make, ticket):
    """The service says why (a requester cannot be assigned); the panel should show that reason."""
    agent, alice, req = ticket
    response = login_client(agent).post(f"/requests/{req.id}/assign", data={"assignee": str(alice.id)}, headers=HX)
    assert response.status_code == 422
    assert "Choose an active agent, manager or admin." in text_of(response)
    assert make.get_request(req.id).assignee_id is None


def test_assign_by_requester_is_403(login_client, make, ticket):
    _, alice, req = ticket
    response = login_client(alice).post(f"/requests/{req.id}/assign", data={"assignee": "me"}, headers=HX)
    assert response.status_code == 403
    assert make.get_request(req.id).assignee_id is None


def test_properties_change(login_client, make, ticket):
    agent, _, req = ticket
    response = login_client(agent).post(f"/requests/{req.id}/properties",
                                        data={"priority": "critical", "category": "network"}, headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<section id="request-panel"')
    assert "Details saved." in html
    assert '<option selected value="critical">' in html
    assert "Network" in re.search(r'<div id="request-header".*?</div>', html, re.S).group(0)
    after = make.get_request(req.id)
    assert (after.priority, after.category) == ("critical", "network")


def test_properties_invalid_values_change_nothing(login_client, make, ticket):
    agent, _, req = ticket
    client = login_client(agent)
    bad_priority = client.post(f"/requests/{req.id}/properties",
                               data={"priority": "urgent", "category": "network"}, headers=HX)
    assert bad_priority.status_code == 422
    bad_category = client.post(f"/requests/{req.id}/properties",
                               data={"priority": "low", "category": "nope"}, headers=HX)
    assert bad_category.status_code == 422
    assert '<section id="request-panel"' in text_of(bad_category)
    after = make.get_request(req.id)
    assert (after.priority, after.category) == ("medium", "hardware")


def test_properties_by_requester_is_403(login_client, make, ticket):
    _, alice, req = ticket
    response = login_client(alice).post(f"/requests/{req.id}/properties",
                                        data={"priority": "critical", "category": "network"})
    assert response.status_code == 403
    assert make.get_request(req.id).priority == "medium"


def test_comment_htmx_returns_fresh_form_and_trigger(login_client, make, ticket):
    _, alice, req = ticket
    response = login_client(alice).post(f"/requests/{req.id}/comments",
                                        data={"body": "It still jams on tray 2."}, headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<section id="comment-form"')
    assert "<html" not in html
    assert "Your reply was added." in html
    # A fresh, empty form; the new reply shows in the timeline that comes with it.
    form = main_part(html)
    assert re.search(r"<textarea[^>]*>\s*</textarea>", form)
    assert "It still jams on tray 2." not in form
    assert "It still jams on tray 2." in html
    assert oob_ids(html) == REQUEST_PAGE_PARTS - {"composer-send"}  # inside the composer
    assert [c.body for c in make.comments(req.id)] == ["It still jams on tray 2."]


def test_comment_plain_post_redirects(login_client, make, ticket):
    agent, _, req = ticket
    client = login_client(agent)
    response = client.post(f"/requests/{req.id}/comments", data={"body": "On my way."})
    assert response.status_code == 303
    html = text_of(client.get(f"/requests/{req.id}"))
    assert "Your reply was added." in html and "On my way." in html


def test_comment_empty_htmx_422_with_error(login_client, make, ticket):
    _, alice, req = ticket
    response = login_client(alice).post(f"/requests/{req.id}/comments", data={"body": ""}, headers=HX)
    assert response.status_code == 422
    html = text_of(response)
    assert html.lstrip().startswith('<section id="comment-form"')
    assert "This field is required." in html
    assert oob_ids(html) == (set() if 'id="comment-form"' in html else REQUEST_PAGE_PARTS - {"request-panel"})
    assert make.comments(req.id) == []


def test_comment_whitespace_only_is_422(login_client, make, ticket):
    _, alice, req = ticket
    response = login_client(alice).post(f"/requests/{req.id}/comments", data={"body": "   \n  "}, headers=HX)
    assert response.status_code == 422
    assert make.comments(req.id) == []


def test_comment_empty_plain_post_rerenders_detail_422(login_client, make, ticket):
    _, alice, req = ticket
    response = login_client(alice).post(f"/requests/{req.id}/comments", data={"body": ""})
    assert response.status_code == 422
    html = text_of(response)
    assert "<html" in html and "This field is required." in html


def test_comment_with_attachment_and_bad_attachment(login_client, make, ticket):
    _, alice, req = ticket
    client = login_client(alice)
    ok = client.post(f"/requests/{req.id}/comments", headers=HX, content_type="multipart/form-data",
                     data={"body": "Photo attached", "attachments": (io.BytesIO(b"\x89PNG..."), "jam.png")})
    assert ok.status_code == 200
    assert "jam.png" in text_of(client.get(f"/requests/{req.id}/timeline"))
    bad = client.post(f"/requests/{req.id}/comments", headers=HX, content_type="multipart/form-data",
                      data={"body": "Page", "attachments": (io.BytesIO(b"<html>"), "x.html")})
    assert bad.status_code == 422
    assert "is not an allowed file type" in text_of(bad)
    assert [c.body for c in make.comments(req.id)] == ["Photo attached"]


def test_timeline_partial_shows_new_comments(login_client, make, ticket):
    agent, _, req = ticket
    client = login_client(agent)
    before = text_of(client.get(f"/requests/{req.id}/timeline"))
    assert before.lstrip().startswith('<ol id="timeline"')
    assert "<html" not in before
    assert "Have you tried turning it off" not in before
    client.post(f"/requests/{req.id}/comments", data={"body": "Have you tried turning it off"}, headers=HX)
    client.post(f"/requests/{req.id}/status", data={"status": "in_progress"}, headers=HX)
    client.post(f"/requests/{req.id}/assign", data={"assignee": "me"}, headers=HX)
    client.post(f"/requests/{req.id}/properties", data={"priority": "critical", "category": "hardware"}, headers=HX)
    after = text_of(client.get(f"/requests/{req.id}/timeline"))
    assert "Have you tried turning it off" in after
    assert "changed status" in after
    assert f"assigned it to {agent.name}" in after
    assert "changed priority from Medium to Critical" in after


def test_header_partial_reflects_changes(login_client, ticket):
    agent, _, req = ticket
    client = login_client(agent)
    client.post(f"/requests/{req.id}/status", data={"status": "in_progress"}, headers=HX)
    html = text_of(client.get(f"/requests/{req.id}/header"))
    assert html.lstrip().startswith('<div id="request-header"')
    assert "Cannot print Echo" in html and "In progress" in html


def test_requester_never_sees_internal_notes(login_client, make, ticket):
    agent, alice, req = ticket
    make.comment(agent, req.id, "Public: a technician is coming.")
    staff_client = login_client(agent)
    staff_client.post(f"/requests/{req.id}/comments", data={"body": "INTERNAL: user broke it", "internal": "y"},
                      headers=HX)
    assert [c.internal for c in make.comments(req.id)] == [False, True]
    assert "INTERNAL: user broke it" in text_of(staff_client.get(f"/requests/{req.id}"))

    client = login_client(alice)
    for url in (f"/requests/{req.id}", f"/requests/{req.id}/timeline"):
        html = text_of(client.get(url))
        assert "Public: a technician is coming." in html
        assert "INTERNAL: user broke it" not in html
        assert "Internal note" not in html
    # Requesters get no "internal note" box nor staff controls, and cannot write a note by sending the field.
    page = text_of(client.get(f"/requests/{req.id}"))
    assert 'name="internal"' not in page
    assert 'name="assignee"' not in page and 'name="priority"' not in page
    staff_page = text_of(staff_client.get(f"/requests/{req.id}"))
    assert 'name="internal"' in staff_page and 'name="assignee"' in staff_page
    client.post(f"/requests/{req.id}/comments", data={"body": "Is it internal?", "internal": "y"}, headers=HX)
    assert make.comments(req.id)[-1].internal is False


def test_user_text_is_escaped_everywhere(login_client, make):
    alice = make.user("requester")
    agent = make.user("agent")
    req = make.request(alice, title='<script>alert("t")</script>', description="<img src=x onerror=alert(1)>",
                       uploads=[("<b>bold</b>.txt", b"x")])
    make.comment(agent, req.id, "<iframe src=//evil.example>")
    client = login_client(agent)
    for url in ("/requests", f"/requests/{req.id}", f"/requests/{req.id}/timeline", f"/requests/{req.id}/header"):
        html = text_of(client.get(url))
        for raw in ("<script>alert", "<img src=x", "<iframe", "<b>bold"):
            assert raw not in html, (url, raw)
    assert "&lt;script&gt;" in text_of(client.get(f"/requests/{req.id}/header"))


def test_download_keeps_unicode_filename(login_client, make):
    alice = make.user("requester")
    req = make.request(alice, uploads=[("résumé notes.txt", b"cv")])
    response = login_client(alice).get(f"/attachments/{req.attachment_ids[0]}")
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20notes.txt" in disposition


# ---------------------------------------------------------------- replies to finished requests, follow-ups


def _follow_ups(app, request_id: int) -> list[SimpleNamespace]:
    """The requests that follow up `request_id`, oldest first."""
    from sqlalchemy import select

    from portal.extensions import db
    from portal.models import ServiceRequest

    with app.app_context():
        rows = db.session.scalars(select(ServiceRequest).where(ServiceRequest.follow_up_of_id == request_id)
                                  .order_by(ServiceRequest.id))
        return [SimpleNamespace(id=r.id, title=r.title, description=r.description, category=r.category,
                                priority=r.priority, status=r.status, requester_id=r.requester_id) for r in rows]


@pytest.fixture()
def finished(make):
    """finished(status): an agent, a requester and their request in `status` (resolved or closed)."""

    def build(status: str):
        agent = make.user("agent")
        alice = make.user("requester")
        req = make.request(alice, title="Monitor flickers", category="hardware", priority="high", status=status)
        return agent, alice, req

    return build


def test_comment_form_on_resolved_request_tells_the_requester_a_reply_reopens_it(login_client, finished):
    agent, alice, req = finished("resolved")
    assert "Replying reopens this request." in text_of(login_client(alice).get(f"/requests/{req.id}"))
    assert "Replying reopens this request." not in text_of(login_client(agent).get(f"/requests/{req.id}"))


def test_comment_requester_reply_on_resolved_reopens_it(login_client, make, finished):
    _, alice, req = finished("resolved")
    response = login_client(alice).post(f"/requests/{req.id}/comments", data={"body": "It flickers again."},
                                        headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert "Your reply was added and the request is open again." in main_part(html)
    assert oob_ids(html) == REQUEST_PAGE_PARTS - {"composer-send"}  # inside the composer
    header = html[html.index('<div id="request-header"'):]
    assert 'class="badge status-open"' in header[:header.index("</div>")]
    assert "changed status" in html and "It flickers again." in html
    assert make.get_request(req.id).status == "open"
    assert [c.body for c in make.comments(req.id)] == ["It flickers again."]


def test_comment_staff_reply_on_resolved_keeps_it_resolved(login_client, make, finished):
    agent, _, req = finished("resolved")
    response = login_client(agent).post(f"/requests/{req.id}/comments", data={"body": "Good to hear."}, headers=HX)
    assert response.status_code == 200 and "Your reply was added." in text_of(response)
    assert make.get_request(req.id).status == "resolved"


def test_comment_requester_reply_on_closed_htmx_409_offers_a_follow_up(login_client, make, finished):
    _, alice, req = finished("closed")
    response = login_client(alice).post(f"/requests/{req.id}/comments", data={"body": "It flickers again."},
                                        headers=HX)
    assert response.status_code == 409
    html = text_of(response)
    form = main_part(html)
    assert form.lstrip().startswith('<section id="comment-form"')
    assert f"Request #{req.id} is closed, so it takes no more replies. Your reply was not saved" in form
    assert f'action="/requests/{req.id}/follow-up"' in form and "Open a follow-up request" in form
    assert re.search(r"<textarea[^>]*>\s*It flickers again.</textarea>", form)  # what they typed is kept
    assert "attach" not in form.split("</div>")[0]  # no files were sent, none lost
    assert oob_ids(html) == REQUEST_PAGE_PARTS - {"composer-send"}  # inside the composer
    assert make.comments(req.id) == [] and make.get_request(req.id).status == "closed"
    assert _follow_ups(make.app, req.id) == []


def test_comment_requester_reply_on_closed_plain_post_shows_the_offer_on_the_page(login_client, make, finished):
    _, alice, req = finished("closed")
    response = login_client(alice).post(
        f"/requests/{req.id}/comments", content_type="multipart/form-data",
        data={"body": "Photo of the flicker", "attachments": (io.BytesIO(b"\x89PNG..."), "flicker.png")})
    assert response.status_code == 409
    html = text_of(response)
    assert "<html" in html and "Open a follow-up request" in html and "Photo of the flicker" in html
    assert "The files you attached were not kept either" in html
    assert make.comments(req.id) == [] and make.count("Attachment") == 0


def test_follow_up_htmx_opens_a_linked_request_and_goes_to_it(login_client, make, finished):
    agent, alice, req = finished("closed")
    client = login_client(alice)
    response = client.post(f"/requests/{req.id}/follow-up", data={"body": "It flickers again."}, headers=HX)
    assert response.status_code == 204
    [follow] = _follow_ups(make.app, req.id)
    assert response.headers["HX-Redirect"] == f"/requests/{follow.id}"
    assert (follow.title, follow.description, follow.category, follow.priority, follow.status,
            follow.requester_id) == (f"Follow-up to #{req.id}: Monitor flickers", "It flickers again.", "hardware",
                                     "high", "open", alice.id)
    page = text_of(client.get(f"/requests/{follow.id}"))
    assert f"Follow-up request #{follow.id} was opened, linked to #{req.id}." in page
    assert f'Follow-up to <a href="/requests/{req.id}">#{req.id}</a>' in page
    assert f'raised this request as a follow-up to <a href="/requests/{req.id}">#{req.id}</a>' in page
    for viewer in (client, login_client(agent)):
        original = text_of(viewer.get(f"/requests/{req.id}/header"))
        assert f'Follow-ups: <a href="/requests/{follow.id}">#{follow.id}</a>' in original
    assert make.get_request(req.id).status == "closed" and make.comments(req.id) == []


def test_follow_up_plain_post_redirects_to_the_new_request(login_client, make, finished):
    _, alice, req = finished("closed")
    response = login_client(alice).post(f"/requests/{req.id}/follow-up", data={"body": "Again."})
    assert response.status_code == 303
    [follow] = _follow_ups(make.app, req.id)
    assert response.headers["Location"].endswith(f"/requests/{follow.id}")


def test_follow_up_empty_message_keeps_the_offer_with_the_reason(login_client, make, finished):
    _, alice, req = finished("closed")
    response = login_client(alice).post(f"/requests/{req.id}/follow-up", data={"body": "  "}, headers=HX)
    assert response.status_code == 422
    form = main_part(text_of(response))
    assert "Write what the follow-up is about." in form and "Open a follow-up request" in form
    assert _follow_ups(make.app, req.id) == []


def test_follow_up_of_a_request_reopened_meanwhile_is_refused_and_keeps_the_text(login_client, make, finished):
    _, alice, req = finished("resolved")  # reopened (or never closed) since the offer was shown
    response = login_client(alice).post(f"/requests/{req.id}/follow-up", data={"body": "It flickers again."},
                                        headers=HX)
    assert response.status_code == 409
    form = main_part(text_of(response))
    assert f"Request #{req.id} is resolved now, not closed: reply on it instead." in form
    assert f'action="/requests/{req.id}/comments"' in form
    assert re.search(r"<textarea[^>]*>\s*It flickers again.</textarea>", form)
    assert _follow_ups(make.app, req.id) == []


def test_follow_up_by_staff_is_refused(login_client, make, finished):
    agent, _, req = finished("closed")
    response = login_client(agent).post(f"/requests/{req.id}/follow-up", data={"body": "Again."}, headers=HX)
    assert response.status_code == 403
    assert "Only the requester can open a follow-up" in text_of(response)
    assert _follow_ups(make.app, req.id) == []
