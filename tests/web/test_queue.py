"""The agents' queue: staff land on the open work, sorted by when the next SLA target falls due,
with each row's SLA badge; "All" is one tab away."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from tests.web.helpers import HX, text_of

TABLE = {**HX, "HX-Target": "request-table"}


@pytest.fixture()
def queue(app, make):
    """Requests with every kind of next target: due in 1 h, due in 4 h, breached, paused, no SLA, resolved."""
    from portal.extensions import db
    from portal.models import SlaMetric, User
    from portal.models._time import utcnow
    from portal.policy import SYSTEM
    from portal.services import requests as svc
    from portal.services import sla_admin

    make.sla()  # hardware/medium: respond in 4 h, resolve in 24 h, around the clock
    with app.app_context():
        sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "high",
                                             "response_time_hours": 1, "resolution_time_hours": 8})
    agent, requester = make.user("agent"), make.user("requester")
    reqs = {
        "four_hours": make.request(requester, title="Dock flickers Alpha"),
        "one_hour": make.request(requester, title="Laptop dead Bravo", priority="high"),
        "no_sla": make.request(requester, title="Font request Charlie", category="software", priority="low"),
        "breached": make.request(requester, title="Monitor broken Delta"),
        "paused": make.request(requester, title="Mouse lag Echo"),
        "resolved": make.request(requester, title="Keyboard fixed Foxtrot"),
    }
    with app.app_context():
        actor = db.session.get(User, agent.id)
        svc.change_status(actor, reqs["paused"].id, "waiting_on_customer")
        svc.change_status(actor, reqs["resolved"].id, "resolved")
        metric = db.session.query(SlaMetric).filter_by(request_id=reqs["breached"].id).one()
        three_hours_ago = utcnow() - timedelta(hours=3, minutes=1)
        metric.response_due_at = metric.response_breached_at = three_hours_ago
        metric.is_breached = True
        db.session.commit()
    return agent, requester, reqs


def _order(html: str, reqs) -> list[str]:
    found = sorted((html.find(r.title), key) for key, r in reqs.items() if r.title in html)
    return [key for _pos, key in found]


def _row(html: str, title: str) -> str:
    return next(row for row in re.findall(r"<tr>.*?</tr>", html, re.S) if title in row)


def test_staff_land_on_the_open_work_sorted_by_the_next_due_target(login_client, queue):
    agent, _requester, reqs = queue
    html = text_of(login_client(agent).get("/requests"))
    assert re.search(r'<a href="/requests\?status=active" aria-current="page">Open work</a>', html)
    # Breached first (most overdue), then due in 1 h, in 4 h; paused and no SLA have no running target.
    assert _order(html, reqs)[:3] == ["breached", "one_hour", "four_hours"]
    assert set(_order(html, reqs)[3:]) == {"paused", "no_sla"} and "Keyboard fixed Foxtrot" not in html
    assert "6 requests" not in html and "5 requests · Due soonest" in html


def test_each_row_shows_its_next_sla_target(login_client, queue):
    agent, _requester, reqs = queue
    html = text_of(login_client(agent).get("/requests?status=any"))
    assert re.search(r'class="badge sla-breached"[^>]*>Breached 3 h', _row(html, reqs["breached"].title))
    assert re.search(r'class="badge sla-(running|at_risk)"[^>]*>(Respond in (59 min|1 h)|At risk)',
                     _row(html, reqs["one_hour"].title))
    assert re.search(r'class="badge sla-running"[^>]*>Respond in 3 h 5\d min', _row(html, reqs["four_hours"].title))
    assert ">Paused<" in _row(html, reqs["paused"].title)
    assert 'title="No SLA applies"' in _row(html, reqs["no_sla"].title)
    assert ">Met<" in _row(html, reqs["resolved"].title) or ">Missed<" in _row(html, reqs["resolved"].title)


def test_all_is_one_tab_away_and_keeps_its_place_across_pages(login_client, queue):
    agent, _requester, reqs = queue
    client = login_client(agent)
    html = text_of(client.get("/requests?status=any&per_page=2"))
    assert re.search(r'<a href="/requests\?status=any" aria-current="page">All</a>', html)
    assert "6 requests" in html
    next_link = re.search(r'href="([^"]+)"[^>]*rel="next"', html).group(1).replace("&amp;", "&")
    assert "status=any" in next_link
    second = text_of(client.get(next_link, headers=TABLE))
    assert len(_order(second, reqs)) == 2


def test_due_soonest_is_a_sort_of_its_own_for_any_view_and_the_api(login_client, queue, app):
    agent, _requester, reqs = queue
    html = text_of(login_client(agent).get("/requests?status=any&sort=due"))
    assert _order(html, reqs)[:3] == ["breached", "one_hour", "four_hours"]
    newest = text_of(login_client(agent).get("/requests?status=active&sort=newest"))
    assert _order(newest, reqs)[0] == "paused"  # the newest open one: the sort asked for wins


def test_requesters_keep_their_own_list_without_the_sla_column(login_client, queue):
    _agent, requester, reqs = queue
    html = text_of(login_client(requester).get("/requests"))
    assert "Keyboard fixed Foxtrot" in html        # all their requests, resolved included
    assert '<th scope="col">SLA</th>' not in html and "badge sla-" not in html


def test_agents_read_the_breaches_of_their_own_and_the_unassigned_requests(login_client, queue, make, app):
    from portal.extensions import db
    from portal.models import ServiceRequest, SlaMetric
    from portal.models._time import utcnow

    agent, requester, reqs = queue
    other = make.user("agent")
    theirs = make.request(requester, title="Projector dead Golf", assignee=other)
    mine = make.request(requester, title="Scanner jams Hotel", assignee=agent)
    with app.app_context():
        for request_id in (theirs.id, mine.id):
            metric = db.session.query(SlaMetric).filter_by(request_id=request_id).one()
            metric.response_due_at = metric.response_breached_at = utcnow() - timedelta(hours=1)
            metric.is_breached = True
        db.session.commit()
        assert db.session.get(ServiceRequest, theirs.id).assignee_id == other.id
    client = login_client(agent)
    assert 'href="/sla/breaches"' in text_of(client.get("/requests"))   # in the menu
    html = text_of(client.get("/sla/breaches"))
    assert reqs["breached"].title in html and "Scanner jams Hotel" in html   # unassigned, and mine
    assert "Projector dead Golf" not in html                                  # another agent's
    assert "Open requests assigned to you or to nobody" in html and 'id="compliance"' not in html
    # The filters cannot reach past the scope: asking for the other agent's requests finds none.
    assert "Projector dead Golf" not in text_of(client.get(f"/sla/breaches?assignee={other.id}"))
    manager_html = text_of(login_client(make.user("manager")).get("/sla/breaches"))
    assert "Projector dead Golf" in manager_html and 'id="compliance"' in manager_html


def test_the_page_size_is_chosen_in_the_filters_and_kept_by_the_page_links(login_client, make):
    agent, requester = make.user("agent"), make.user("requester")
    for i in range(27):
        make.request(requester, title=f"Toner low {i:02d}")
    client = login_client(agent)
    html = text_of(client.get("/requests"))
    assert re.search(r'<option value="25" selected>25</option>', html) and '<option value="100" >100' in html
    assert html.count("Toner low") == 25
    html = text_of(client.get("/requests?status=active&per_page=50"))
    assert re.search(r'<option value="50" selected>50</option>', html) and html.count("Toner low") == 27
    html = text_of(client.get("/requests?status=active&per_page=2"))
    next_link = re.search(r'href="([^"]+)"[^>]*rel="next"', html).group(1)
    assert "per_page=2" in next_link


def _ticks(html: str) -> dict[int, str]:
    return {int(i): f"{i}:{v}" for i, v in re.findall(r'name="ids" value="(\d+):(\d+)"', html)}


def test_ticked_rows_change_together_and_a_stale_one_is_listed(login_client, make, app):
    from portal.extensions import db
    from portal.models import ServiceRequest, User
    from portal.services import requests as svc

    agent, other = make.user("agent"), make.user("agent", name="Ana Ortiz")
    requester = make.user("requester")
    made = [make.request(requester, title=f"Bulk item {i}") for i in range(3)]
    client = login_client(agent)
    html = text_of(client.get("/requests?status=active&sort=oldest"))
    ticks = _ticks(html)
    assert 'id="bulk-form"' in html and set(ticks) == {r.id for r in made}
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    with app.app_context():   # Ana takes one after the list was loaded
        svc.assign(db.session.get(User, other.id), made[1].id, other.id)
    response = client.post("/requests/bulk", data={"csrf_token": csrf, "ids": list(ticks.values()),
                                                   "change": "assignee:me", "back": "status=active&sort=oldest"})
    assert response.status_code == 303 and response.headers["Location"] == "/requests?status=active&sort=oldest"
    page = text_of(client.get(response.headers["Location"]))
    assert "Changed 2 requests." in page and f"#{made[1].id} changed by Ana Ortiz" in page
    with app.app_context():
        owners = {r.id: db.session.get(ServiceRequest, r.id).assignee_id for r in made}
    assert owners == {made[0].id: agent.id, made[1].id: other.id, made[2].id: agent.id}


def test_a_bulk_change_without_ticks_or_by_a_requester_is_refused(login_client, make):
    agent, requester = make.user("agent"), make.user("requester")
    mine = make.request(requester)
    client = login_client(agent)
    html = text_of(client.get("/requests"))
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    response = client.post("/requests/bulk", data={"csrf_token": csrf, "change": "priority:high",
                                                   "back": "https://evil.example/x"})
    went = urlsplit(response.headers["Location"])
    assert (went.scheme, went.netloc, went.path) == ("", "", "/requests")   # never off the list
    assert "Select at least one request." in text_of(client.get("/requests"))
    own = login_client(requester)
    html = text_of(own.get("/requests"))
    assert 'id="bulk-form"' not in html and 'name="ids"' not in html
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    response = own.post("/requests/bulk", data={"csrf_token": csrf, "ids": [f"{mine.id}:1"],
                                                "change": "priority:high"})
    assert response.status_code == 403


def test_a_request_opened_from_the_list_leads_back_to_it_and_on_to_the_next(login_client, queue, app):
    from portal.extensions import db
    from portal.models import User
    from portal.services import requests as svc

    agent, _requester, reqs = queue
    client = login_client(agent)
    html = text_of(client.get("/requests?status=active&per_page=2"))
    first = re.search(r'<td class="title"><a href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert first.startswith(f"/requests/{reqs['breached'].id}?list=")
    page = text_of(client.get(first))
    back = re.search(r'<a href="([^"]+)">← All requests</a>', page).group(1).replace("&amp;", "&")
    assert back == "/requests?status=active&per_page=2"
    nxt = re.search(r'<a class="next-request" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert nxt.startswith(f"/requests/{reqs['one_hour'].id}?list=")   # the list's order, past its first page
    # The request is worked (resolved): it leaves the open work, and "Next" still goes on from its place.
    with app.app_context():
        svc.change_status(db.session.get(User, agent.id), reqs["one_hour"].id, "resolved")
    page = text_of(client.get(nxt))
    assert re.search(rf'class="next-request" href="/requests/{reqs["four_hours"].id}\?list=', page)
    last = text_of(client.get(f"/requests/{reqs['no_sla'].id}?list=status%3Dactive"))
    assert "next-request" not in last or "Next request" in last
    plain = text_of(client.get(f"/requests/{reqs['no_sla'].id}"))
    assert '<a href="/requests">← All requests</a>' in plain and "Next request" not in plain
