"""SLA pages: the breach page and its filters, the request SLA panel, exemptions and the admin dashboard."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from portal.policy import SYSTEM
from tests.web.helpers import HX, csrf_from_body, csrf_from_form, main_part, oob_ids, text_of

BREACH_TABLE = {**HX, "HX-Target": "breach-table"}


# ---------------------------------------------------------------- set-up helpers (each in its own app context)


def _backdate(app, request_id: int, hours: float) -> None:
    """Pretend the request was raised `hours` ago, then run the periodic checks."""
    from portal.extensions import db
    from portal.models import ServiceRequest, SlaEvent
    from portal.models._time import utcnow
    from portal.services import sla

    with app.app_context():
        req = db.session.get(ServiceRequest, request_id)
        req.created_at -= timedelta(hours=hours)
        metric = sla.get_metric(request_id)
        metric.started_at -= timedelta(hours=hours)
        for event in db.session.query(SlaEvent).filter_by(request_id=request_id):
            event.at -= timedelta(hours=hours)
        sla.recompute(metric, utcnow())
        db.session.commit()
        sla.check_all_breaches()
        sla.check_at_risk()


def _move(app, actor, request_id: int, *statuses: str) -> None:
    """Move a request through statuses the way an agent would (the clock follows)."""
    from portal.extensions import db
    from portal.models import User
    from portal.services import requests as svc

    with app.app_context():
        user = db.session.get(User, actor.id)
        for status in statuses:
            svc.change_status(user, request_id, status)


def _definitions(app, *rows) -> None:
    from portal.services import sla_admin

    with app.app_context():
        for category, priority, response, resolution in rows:
            sla_admin.create_definition(SYSTEM, {"category": category, "priority": priority,
                                               "response_time_hours": response, "resolution_time_hours": resolution})


def _exemptions(app, request_id: int) -> list:
    from portal.services import sla

    with app.app_context():
        return [(x.id, x.exemption_type, x.reason, x.revoked_at is not None) for x in sla.list_exemptions(request_id)]


def _today(app):
    from portal.models._time import utcnow

    return utcnow().date()


# ---------------------------------------------------------------- HTML helpers


def _breach_rows(html: str) -> list[tuple[int, str]]:
    """(request id, state) of each breach-table row, in page order."""
    return [(int(i), s) for s, i in re.findall(
        r'<tr class="(breached|at_risk)">\s*<td class="num">(\d+)</td>', html)]


def _states(html: str) -> dict[str, str]:
    """Target -> badge label in an SLA panel."""
    return dict(re.findall(
        r'<div class="sla-target sla-target-(response|resolution)">.*?<span class="badge sla-\w+">([^<]+)</span>',
        html, re.S))


def _hx_get(html: str, element_id: str) -> tuple[str, dict[str, list[str]]]:
    tag = re.search(rf'<\w+ id="{element_id}"[^>]*>', html).group(0)
    url = unescape(re.search(r'hx-get="([^"]*)"', tag).group(1))
    parts = urlsplit(url)
    return parts.path, parse_qs(parts.query)


def _root_attr(html: str, attr: str) -> str:
    tag = re.match(r"\s*(<[^>]+>)", html).group(1)
    return unescape(re.search(rf'{attr}="([^"]*)"', tag).group(1))


def _flashes(html: str) -> list[str]:
    return [unescape(m) for m in re.findall(r'<div class="flash flash-\w+" role="\w+">([^<]*)</div>', html)]


def _card(html: str, title: str) -> dict[str, tuple[str, int, int]]:
    """A compliance card's rows: label -> (rate text, met, total)."""
    body = re.search(rf"<h3>{title}</h3>(.*?)</div>", html, re.S).group(1)
    rows = re.findall(r'<tr><th scope="row">([^<]*)</th>\s*<td class="num-right">([^<]*)%</td>.*?'
                      r'<td class="muted num-right">(\d+)/(\d+)</td></tr>', body, re.S)
    return {unescape(label).strip(): (rate, int(met), int(total)) for label, rate, met, total in rows}


# ---------------------------------------------------------------- the desk: a mix of SLA situations


@pytest.fixture()
def desk(app, make):
    """24x7 SLAs and requests that are long overdue, overdue, at risk, healthy, paused, met and closed.

    Expected breach order (most overdue first): old (239 h), late (4 h), recent (1.5 h), then risky.
    """
    admin = make.user("admin")
    manager = make.user("manager")
    agent = make.user("agent")
    other_agent = make.user("agent")
    requester = make.user("requester")
    _definitions(app, ("network", "high", 1, 4), ("hardware", "critical", 0.5, 4), ("software", "low", 8, 72))
    r = {
        "recent": make.request(requester, title="VPN slow Alpha", category="network", priority="high"),
        "late": make.request(requester, title="Switch down Bravo", category="network", priority="high",
                             assignee=agent),
        "old": make.request(requester, title="Old outage Golf", category="network", priority="high"),
        "risky": make.request(requester, title="Laptop flickers Charlie", category="hardware", priority="critical"),
        "healthy": make.request(requester, title="PDF reader Delta", category="software", priority="low"),
        "done": make.request(requester, title="Font install Echo", category="software", priority="low"),
        "closed": make.request(requester, title="Printer Foxtrot", category="network", priority="high"),
    }
    _backdate(app, r["old"].id, 240)
    _backdate(app, r["late"].id, 5)
    _backdate(app, r["recent"].id, 2.5)
    _backdate(app, r["closed"].id, 3)
    _move(app, agent, r["closed"].id, "resolved", "closed")
    _move(app, agent, r["done"].id, "resolved")
    _move(app, agent, r["healthy"].id, "waiting_on_customer")
    _backdate(app, r["risky"].id, 0.4)
    ids = {k: v.id for k, v in r.items()}
    return {"admin": admin, "manager": manager, "agent": agent, "other_agent": other_agent,
            "requester": requester, "ids": ids}


LISTED = ("old", "late", "recent", "risky")


def _keys(desk, html: str) -> list[str]:
    by_id = {v: k for k, v in desk["ids"].items()}
    return [by_id[i] for i, _ in _breach_rows(html)]


# ---------------------------------------------------------------- breach page


@pytest.mark.parametrize(("role", "status"), [("manager", 200), ("admin", 200), ("agent", 200), ("requester", 403)])
def test_breach_page_access(login_client, make, role, status):
    assert login_client(make.user(role)).get("/sla/breaches").status_code == status


def test_breach_page_anonymous_goes_to_sign_in(client):
    response = client.get("/sla/breaches")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"


def test_breach_page_lists_breached_and_at_risk_most_overdue_first(login_client, desk):
    response = login_client(desk["manager"]).get("/sla/breaches")
    assert response.status_code == 200
    html = text_of(response)
    assert "<html" in html and '<form id="breach-filters"' in html
    assert _breach_rows(html) == [(desk["ids"]["old"], "breached"), (desk["ids"]["late"], "breached"),
                                  (desk["ids"]["recent"], "breached"), (desk["ids"]["risky"], "at_risk")]
    for title in ("PDF reader Delta", "Font install Echo", "Printer Foxtrot"):
        assert title not in html
    assert "4 requests" in html
    assert "overdue" in html
    table = html[html.index('<section id="breach-table"'):]
    assert 'class="badge sla-breached">Breached<' in table and 'class="badge sla-at_risk">At risk<' in table


def test_breach_page_shows_assignee_and_breach_type(login_client, desk):
    html = text_of(login_client(desk["manager"]).get("/sla/breaches"))
    late_row = re.search(rf'<tr class="breached">\s*<td class="num">{desk["ids"]["late"]}</td>.*?</tr>', html, re.S)
    assert desk["agent"].name in late_row.group(0)
    assert '<span class="muted small">both</span>' in late_row.group(0)
    recent_row = re.search(rf'<tr class="breached">\s*<td class="num">{desk["ids"]["recent"]}</td>.*?</tr>',
                           html, re.S)
    assert '<span class="muted small">response</span>' in recent_row.group(0)
    assert "Unassigned" in recent_row.group(0)


def _filter_cases(desk, app):
    today = _today(app)
    long_ago = (today - timedelta(days=5)).isoformat()
    return [
        ("priority=critical", ["risky"]),
        ("priority=high", ["old", "late", "recent"]),
        ("priority=low", []),
        ("category=hardware", ["risky"]),
        ("category=network", ["old", "late", "recent"]),
        ("assignee=none", ["old", "recent", "risky"]),
        (f"assignee={desk['agent'].id}", ["late"]),
        (f"assignee={desk['other_agent'].id}", []),
        ("state=breached", ["old", "late", "recent"]),
        ("state=at_risk", ["risky"]),
        (f"from={long_ago}", ["late", "recent", "risky"]),
        (f"to={long_ago}", ["old"]),
        (f"from={(today - timedelta(days=12)).isoformat()}&to={long_ago}", ["old"]),
        ("state=breached&assignee=none&category=network", ["old", "recent"]),
        ("state=at_risk&priority=high", []),
    ]


def test_breach_filters_plain_and_htmx(login_client, desk, app):
    client = login_client(desk["manager"])
    for query, expected in _filter_cases(desk, app):
        plain = client.get("/sla/breaches?" + query)
        assert plain.status_code == 200, query
        plain_html = text_of(plain)
        assert "<html" in plain_html, query
        assert _keys(desk, plain_html) == expected, query
        partial = client.get("/sla/breaches?" + query, headers=BREACH_TABLE)
        assert partial.status_code == 200, query
        partial_html = text_of(partial)
        assert partial_html.lstrip().startswith('<section id="breach-table"'), query
        assert _keys(desk, partial_html) == expected, query
        if not expected:
            assert "Nothing breached or at risk." in plain_html and "Nothing breached or at risk." in partial_html
        assert "Some filters were ignored" not in plain_html, query


def test_breach_htmx_partial_is_only_the_table(login_client, desk):
    response = login_client(desk["manager"]).get("/sla/breaches?state=breached", headers=BREACH_TABLE)
    html = text_of(response)
    assert html.lstrip().startswith('<section id="breach-table"')
    assert main_part(html).rstrip().endswith("</section>")
    # Beside it only the date fields' (empty) messages, out of band.
    assert oob_ids(html) == {"from-error", "to-error"}
    for absent in ("<html", "<body", '<form id="breach-filters"', "Compliance", 'class="compliance"'):
        assert absent not in html
    assert "HX-Request" in {v.strip() for v in response.headers["Vary"].split(",")}
    assert _root_attr(html, "hx-trigger") == "every 30s"


def test_breach_htmx_for_another_target_gets_the_full_page(login_client, desk):
    html = text_of(login_client(desk["manager"]).get("/sla/breaches", headers={**HX, "HX-Target": "main"}))
    assert "<html" in html and '<form id="breach-filters"' in html and "Compliance" in html


def test_breach_poll_url_keeps_the_filters(login_client, desk, app):
    client = login_client(desk["manager"])
    since = (_today(app) - timedelta(days=20)).isoformat()
    until = _today(app).isoformat()
    query = f"priority=high&category=network&assignee=none&state=breached&from={since}&to={until}"
    expected = {"priority": ["high"], "category": ["network"], "assignee": ["none"], "state": ["breached"],
                "from": [since], "to": [until]}
    for headers in ({}, BREACH_TABLE):
        html = text_of(client.get("/sla/breaches?" + query, headers=headers))
        path, args = _hx_get(html, "breach-table")
        assert path == "/sla/breaches"
        assert args == expected
        # Polling that URL gives the same rows.
        polled = text_of(client.get(path + "?" + query, headers=BREACH_TABLE))
        assert _keys(desk, polled) == ["old", "recent"]


def test_breach_poll_url_without_filters_is_bare(login_client, desk):
    html = text_of(login_client(desk["manager"]).get("/sla/breaches", headers=BREACH_TABLE))
    assert _hx_get(html, "breach-table") == ("/sla/breaches", {})


def test_breach_filter_form_reflects_current_filters(login_client, desk, app):
    since = (_today(app) - timedelta(days=3)).isoformat()
    html = text_of(login_client(desk["manager"]).get(
        f"/sla/breaches?state=at_risk&priority=critical&category=hardware&assignee={desk['agent'].id}&from={since}"))
    assert '<option value="at_risk" selected>' in html
    assert '<option value="critical" selected>' in html
    assert '<option value="hardware" selected>' in html
    assert f'<option value="{desk["agent"].id}" selected>' in html
    assert f'name="from" value="{since}"' in html


@pytest.mark.parametrize(("query", "notice"), [
    ("priority=urgent", "Unknown priority 'urgent'."),
    ("category=plumbing", "Unknown category 'plumbing'."),
    ("category=%00", "Unknown category"),
    ("assignee=bob", "Use 'none' or a user id."),
    ("assignee=99999999999999", "Use 'none' or a user id."),
    ("state=late", "Use 'breached' or 'at_risk'."),
    ("from=2026-02-30", "Use a date like 2026-11-01."),
    ("to=yesterday", "Use a date like 2026-11-01."),
    ("days=0", "Use a whole number of days from 1 to 365."),
    ("days=abc", "Use a whole number of days from 1 to 365."),
])
def test_breach_bad_filter_shows_notice_not_500(login_client, desk, query, notice):
    client = login_client(desk["manager"])
    for headers in ({}, BREACH_TABLE):
        response = client.get("/sla/breaches?" + query, headers=headers)
        assert response.status_code == 200, (query, headers)
        html = unescape(text_of(response))
        assert "Some filters were ignored:" in html
        assert notice in html
        # The bad value is ignored: every listed request is still there.
        assert _keys(desk, html) == list(LISTED)


def test_breach_bad_page_number_is_page_one(login_client, desk):
    client = login_client(desk["manager"])
    for page in ("abc", "0", "-1", "999999"):
        response = client.get(f"/sla/breaches?page={page}", headers=BREACH_TABLE)
        assert response.status_code == 200


def test_breach_far_dates_are_not_a_500(login_client, desk):
    client = login_client(desk["manager"])
    for query, expected in (("to=9999-12-31", list(LISTED)), ("from=0001-01-01", list(LISTED)),
                            ("from=9999-12-31", [])):
        for headers in ({}, BREACH_TABLE):
            response = client.get("/sla/breaches?" + query, headers=headers)
            assert response.status_code == 200, (query, headers)
            assert _keys(desk, text_of(response)) == expected, query


@pytest.fixture()
def two_per_page(app):
    old = app.config["PER_PAGE"]
    app.config["PER_PAGE"] = 2
    yield
    app.config["PER_PAGE"] = old


def test_breach_pages_and_the_poll_stays_on_the_page(login_client, desk, two_per_page):
    client = login_client(desk["manager"])
    first = text_of(client.get("/sla/breaches?state=breached", headers=BREACH_TABLE))
    assert _keys(desk, first) == ["old", "late"]
    assert "Page 1 of 2" in first
    nxt = re.search(r'<a href="([^"]*)" hx-get="([^"]*)">Next', first)
    assert parse_qs(urlsplit(unescape(nxt.group(2))).query) == {"page": ["2"], "state": ["breached"]}
    second = text_of(client.get(unescape(nxt.group(2)), headers=BREACH_TABLE))
    assert _keys(desk, second) == ["recent"]
    assert "Page 2 of 2" in second
    # The pager pushed ?page=2 into the address bar; the 30-second poll must refresh that page, not page 1.
    path, args = _hx_get(second, "breach-table")
    assert args == {"page": ["2"], "state": ["breached"]}


def _reversed_range(app) -> tuple[str, str]:
    """A start and an end two and three days ago: the end is before the start."""
    today = _today(app)
    return (today - timedelta(days=2)).isoformat(), (today - timedelta(days=3)).isoformat()


def _field_message(html: str, element_id: str) -> str | None:
    """The text of the field message <p id="...">, or None when there is none."""
    found = re.search(rf'<p [^>]*id="{element_id}"[^>]*>([^<]*)</p>', html)
    return unescape(found.group(1)).strip() if found else None


def _text(html: str) -> str:
    """The words of some markup, tags dropped and spaces squeezed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _input_tag(html: str, element_id: str) -> str:
    return re.search(rf'<input [^>]*id="{element_id}"[^>]*>', html).group(0)


def test_breach_end_before_start_is_refused_and_nothing_applied(login_client, desk, app):
    """Neither date, nor the priority sent with them, narrows the list: the whole submission is refused."""
    since, until = _reversed_range(app)
    client = login_client(desk["manager"])
    for headers in ({}, BREACH_TABLE):
        response = client.get(f"/sla/breaches?priority=critical&from={since}&to={until}", headers=headers)
        assert response.status_code == 200, headers
        html = unescape(text_of(response))
        assert _keys(desk, html) == list(LISTED), headers
        assert "The filters were not applied. The end date is before the start date." in _text(html), headers
        assert "Some filters were ignored" not in html, headers


def test_breach_end_before_start_marks_the_end_date_and_keeps_what_was_typed(login_client, desk, app):
    since, until = _reversed_range(app)
    html = text_of(login_client(desk["manager"]).get(f"/sla/breaches?priority=critical&from={since}&to={until}"))
    end = _input_tag(html, "to")
    assert f'value="{until}"' in end and 'aria-invalid="true"' in end and 'aria-describedby="to-error"' in end
    assert _field_message(html, "to-error") == "The end date is before the start date."
    start = _input_tag(html, "from")
    assert f'value="{since}"' in start and 'aria-invalid="false"' in start
    assert not _field_message(html, "from-error")
    assert '<option value="critical" selected>' in html
    assert "has-error" in re.search(r'<div class="field[^"]*">\s*<label for="to">', html).group(0)


def test_breach_end_before_start_htmx_brings_the_field_message_out_of_band(login_client, desk, app):
    """The form is not swapped (the user is typing in it): the message comes out of band, and stays
    through the 30-second poll, which asks for what was typed."""
    since, until = _reversed_range(app)
    client = login_client(desk["manager"])
    html = text_of(client.get(f"/sla/breaches?priority=critical&from={since}&to={until}", headers=BREACH_TABLE))
    assert html.lstrip().startswith('<section id="breach-table"')
    assert {"from-error", "to-error"} <= oob_ids(html)
    assert _field_message(html, "to-error") == "The end date is before the start date."
    assert 'data-error-for="to"' in html
    assert '<form id="breach-filters"' not in html and 'id="to" name="to"' not in html
    path, args = _hx_get(html, "breach-table")
    assert args == {"priority": ["critical"], "from": [since], "to": [until]}
    polled = unescape(text_of(client.get(path + "?" + urlencode(args, doseq=True), headers=BREACH_TABLE)))
    assert _field_message(polled, "to-error") == "The end date is before the start date."

    # Putting the end right clears the message and applies the filters.
    fixed = text_of(client.get(f"/sla/breaches?priority=critical&from={until}&to={since}", headers=BREACH_TABLE))
    assert {"from-error", "to-error"} <= oob_ids(fixed)
    assert not _field_message(fixed, "to-error")
    assert "not applied" not in fixed and _keys(desk, fixed) == []


def test_breach_same_day_range_is_fine(login_client, desk, app):
    day = (_today(app) - timedelta(days=10)).isoformat()  # "old" was raised exactly 240 hours ago
    html = text_of(login_client(desk["manager"]).get(f"/sla/breaches?from={day}&to={day}"))
    assert _keys(desk, html) == ["old"]
    assert not _field_message(html, "to-error") and 'aria-invalid="false"' in _input_tag(html, "to")


def test_breach_resolved_and_closed_never_listed(login_client, desk, app):
    client = login_client(desk["manager"])
    _move(app, desk["agent"], desk["ids"]["recent"], "resolved")
    for query in ("", "state=breached", "category=network", "assignee=none", "priority=high"):
        html = text_of(client.get("/sla/breaches?" + query))
        keys = _keys(desk, html)
        assert "recent" not in keys and "closed" not in keys and "done" not in keys, query
    assert _keys(desk, text_of(client.get("/sla/breaches"))) == ["old", "late", "risky"]
    # Reopened, it is back (still breached).
    _move(app, desk["agent"], desk["ids"]["recent"], "open")
    assert _keys(desk, text_of(client.get("/sla/breaches"))) == ["old", "late", "recent", "risky"]


def test_breach_paused_request_is_not_at_risk(login_client, app, desk):
    client = login_client(desk["manager"])
    assert "PDF reader Delta" not in text_of(client.get("/sla/breaches"))
    # The at-risk request waits on the customer: its clock stops, so it is no longer at risk.
    _move(app, desk["agent"], desk["ids"]["risky"], "waiting_on_customer")
    assert _keys(desk, text_of(client.get("/sla/breaches"))) == ["old", "late", "recent"]
    panel = text_of(client.get(f"/requests/{desk['ids']['risky']}/sla"))
    assert _states(panel) == {"response": "Paused", "resolution": "Paused"}


def test_breach_exempted_request_is_not_at_risk(login_client, make, desk):
    client = login_client(desk["manager"])
    make.exemption(desk["manager"], desk["ids"]["risky"], "both")
    assert _keys(desk, text_of(client.get("/sla/breaches"))) == ["old", "late", "recent"]
    # A breach stays a breach, exemption or not.
    make.exemption(desk["manager"], desk["ids"]["recent"], "both")
    assert _keys(desk, text_of(client.get("/sla/breaches?state=breached"))) == ["old", "late", "recent"]


def _duplicate_ids(html: str) -> set[str]:
    seen, dups = set(), set()
    for element_id in re.findall(r'\sid="([^"]+)"', html):
        (dups if element_id in seen else seen).add(element_id)
    return dups


def test_breach_page_and_request_page_ids_are_unique(login_client, make, desk):
    client = login_client(desk["admin"])
    make.exemption(desk["manager"], desk["ids"]["recent"], "resolution")
    for url in ("/sla/breaches", f"/requests/{desk['ids']['recent']}", "/dashboard"):
        assert _duplicate_ids(text_of(client.get(url))) == set(), url


def test_breach_page_compliance_section(login_client, desk):
    html = unescape(text_of(login_client(desk["manager"]).get("/sla/breaches")))
    section = html[html.index('class="compliance"'):]
    assert "Compliance, last 30 days" in section
    # Breach events: old 2, late 2, recent 1 (response), closed 1 (response).
    assert re.search(r"6 breaches recorded\s*\(4 response, 2 resolution\)", section)
    # Decided targets: old F/F, late F/F, recent F/-, closed F/T, done T/T.
    assert _card(section, "By category") == {"Network": ("14.3", 1, 7), "Software": ("100.0", 2, 2)}
    assert _card(section, "By priority") == {"High": ("14.3", 1, 7), "Low": ("100.0", 2, 2)}
    assert _card(section, "By agent") == {desk["agent"].name: ("0.0", 0, 2), "Unassigned": ("42.9", 3, 7)}
    weekly = _card(section, "By week")
    assert len(weekly) == 1
    (label, value), = weekly.items()
    assert label.startswith("Week of ") and value == ("33.3", 3, 9)


def test_breach_page_compliance_empty(login_client, make):
    html = text_of(login_client(make.user("manager")).get("/sla/breaches"))
    assert "Nothing breached or at risk." in html
    assert html.count("No decided targets yet.") == 4
    assert "0 breaches recorded" in html


# ---------------------------------------------------------------- the SLA panel


@pytest.fixture()
def people(make):
    return {"requester": make.user("requester"), "agent": make.user("agent"), "manager": make.user("manager"),
            "admin": make.user("admin")}


def _panel(login_client, user, request_id: int) -> tuple[str, str]:
    """The panel as it appears on the request page and from its own route."""
    client = login_client(user)
    page = client.get(f"/requests/{request_id}")
    assert page.status_code == 200
    partial = client.get(f"/requests/{request_id}/sla", headers=HX)
    assert partial.status_code == 200
    page_html = text_of(page)
    start = page_html.index('<section id="sla-panel"')
    return page_html[start:page_html.index("</section>", start) + 10], text_of(partial)


def test_panel_no_sla_applies(login_client, make, people):
    make.sla()
    req = make.request(people["requester"], category="access", priority="low")
    for who in ("requester", "manager"):
        for html in _panel(login_client, people[who], req.id):
            assert "No SLA applies to Access / low requests." in html
            assert _states(html) == {}
            assert "Grant an exemption" not in html


def test_panel_partial_is_just_the_panel(login_client, make, people):
    make.sla()
    req = make.request(people["requester"])
    html = text_of(login_client(people["manager"]).get(f"/requests/{req.id}/sla", headers=HX))
    assert html.lstrip().startswith('<section id="sla-panel"')
    assert "<html" not in html and 'id="timeline"' not in html
    targets = re.search(r'<div id="sla-targets"[^>]*>', html).group(0)
    assert f'hx-get="/requests/{req.id}/sla"' in targets
    assert "every 30s" in targets


def _scenario(name, app, make, people):
    """Create a hardware/medium (4 h / 24 h) request in the given SLA situation."""
    make.sla()
    req = make.request(people["requester"])
    if name == "at_risk":
        _backdate(app, req.id, 3.5)
    elif name == "breached":
        _backdate(app, req.id, 5)
    elif name == "paused":
        _move(app, people["agent"], req.id, "waiting_on_customer")
    elif name == "exempt":
        make.exemption(people["manager"], req.id, "resolution", 24)
    elif name == "exempt_both":
        make.exemption(people["manager"], req.id, "both")
    elif name == "responded":
        _move(app, people["agent"], req.id, "in_progress")
    elif name == "met":
        _move(app, people["agent"], req.id, "in_progress", "resolved")
    elif name == "missed":
        _backdate(app, req.id, 5)
        _move(app, people["agent"], req.id, "resolved")
    elif name == "missed_closed":
        _backdate(app, req.id, 30)
        _move(app, people["agent"], req.id, "resolved", "closed")
    return req


@pytest.mark.parametrize(("name", "expected"), [
    ("running", {"response": "On track", "resolution": "On track"}),
    ("at_risk", {"response": "At risk", "resolution": "On track"}),
    ("breached", {"response": "Breached", "resolution": "On track"}),
    ("paused", {"response": "Paused", "resolution": "Paused"}),
    ("exempt", {"response": "On track", "resolution": "Exempt"}),
    ("exempt_both", {"response": "Exempt", "resolution": "Exempt"}),
    ("responded", {"response": "Met", "resolution": "On track"}),
    ("met", {"response": "Met", "resolution": "Met"}),
    ("missed", {"response": "Missed", "resolution": "Met"}),
    ("missed_closed", {"response": "Missed", "resolution": "Missed"}),
])
def test_panel_target_states(login_client, app, make, people, name, expected):
    req = _scenario(name, app, make, people)
    for who in ("requester", "agent", "manager"):
        page_panel, partial = _panel(login_client, people[who], req.id)
        # Exemptions are internal: a requester sees an exempt target as a stopped (paused) clock.
        seen = {t: ("Paused" if who == "requester" and s == "Exempt" else s) for t, s in expected.items()}
        assert _states(page_panel) == seen, (who, "page")
        assert _states(partial) == seen, (who, "partial")
    if name == "paused":
        assert "Clock paused since" in partial and "(waiting on customer)" in partial
    if name in ("met", "missed", "missed_closed"):
        assert "Resolved <time" in partial
    if name == "breached":
        assert "overdue" in partial


def test_panel_shows_target_lengths(login_client, make, people):
    make.sla()
    req = make.request(people["requester"])
    _, html = _panel(login_client, people["requester"], req.id)
    assert re.search(r"Response <span class=\"muted\">· 4 h</span>", html)
    assert re.search(r"Resolution <span class=\"muted\">· 24 h</span>", html)


def test_panel_requester_sees_targets_but_no_exemptions(login_client, make, people):
    make.sla()
    req = make.request(people["requester"])
    make.exemption(people["manager"], req.id, "resolution", 24)
    for html in _panel(login_client, people["requester"], req.id):
        assert _states(html) == {"response": "On track", "resolution": "Paused"}  # not "Exempt"
        assert "<h3>Exemptions</h3>" not in html
        assert "Waiting for the vendor" not in html
        assert "Grant an exemption" not in html
        assert "/sla/exemptions" not in html
        assert "Revoke" not in html


def test_panel_agent_sees_exemptions_but_no_controls(login_client, make, people):
    make.sla()
    req = make.request(people["requester"])
    make.exemption(people["manager"], req.id, "resolution", 24)
    for html in _panel(login_client, people["agent"], req.id):
        assert "<h3>Exemptions</h3>" in html
        assert "Waiting for the vendor" in html
        assert people["manager"].name in html
        assert "Grant an exemption" not in html
        assert "/sla/exemptions" not in html
        assert "Revoke" not in html


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_panel_manager_sees_grant_form_and_revoke(login_client, make, people, role):
    make.sla()
    req = make.request(people["requester"])
    exemption_id = make.exemption(people["manager"], req.id, "resolution", 24)
    for html in _panel(login_client, people[role], req.id):
        assert "Grant an exemption" in html
        assert f'hx-post="/requests/{req.id}/sla/exemptions"' in html
        for name in ("exemption_type", "duration_hours", "reason"):
            assert f'name="{name}"' in html
        assert f'hx-post="/requests/{req.id}/sla/exemptions/{exemption_id}/revoke"' in html
        assert "Waiting for the vendor" in html


def test_panel_manager_without_sla_gets_no_grant_form(login_client, make, people):
    req = make.request(people["requester"], category="access", priority="low")
    for html in _panel(login_client, people["manager"], req.id):
        assert "Grant an exemption" not in html


def test_panel_other_requester_gets_404(login_client, make, people):
    make.sla()
    req = make.request(people["requester"])
    assert login_client(make.user("requester")).get(f"/requests/{req.id}/sla").status_code == 404


# ---------------------------------------------------------------- granting exemptions


@pytest.fixture()
def sla_request(make, people):
    make.sla()
    return make.request(people["requester"])


GRANT = {"exemption_type": "resolution", "duration_hours": "24", "reason": "Vendor part on order"}


def test_grant_htmx_returns_panel_and_triggers_refresh(login_client, make, people, sla_request):
    client = login_client(people["manager"])
    response = client.post(f"/requests/{sla_request.id}/sla/exemptions", data=GRANT, headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<section id="sla-panel"')
    assert "Exemption granted." in html
    assert "flash-success" in html
    assert _states(html) == {"response": "On track", "resolution": "Exempt"}
    assert "Vendor part on order" in html
    assert oob_ids(html) == {"timeline"}
    assert [(t, r, revoked) for _, t, r, revoked in _exemptions(make.app, sla_request.id)] == [
        ("resolution", "Vendor part on order", False)]
    timeline = client.get(f"/requests/{sla_request.id}/timeline", headers=HX)
    assert timeline.status_code == 200
    timeline_html = text_of(timeline)
    assert timeline_html.lstrip().startswith('<ol id="timeline"')
    assert (f"<strong>{people['manager'].name}</strong> exempted the resolution target for 24 h: "
            f"“Vendor part on order”") in timeline_html


def test_grant_both_indefinite_shows_two_timeline_lines(login_client, people, sla_request):
    client = login_client(people["admin"])
    response = client.post(f"/requests/{sla_request.id}/sla/exemptions", headers=HX,
                           data={"exemption_type": "both", "duration_hours": "", "reason": "Site closed"})
    assert response.status_code == 200
    html = text_of(response)
    assert _states(html) == {"response": "Exempt", "resolution": "Exempt"}
    assert "until revoked" in html
    timeline = text_of(client.get(f"/requests/{sla_request.id}/timeline"))
    assert "exempted the response target until revoked: “Site closed”" in timeline
    assert "exempted the resolution target until revoked: “Site closed”" in timeline


def test_grant_timeline_not_shown_to_requester(login_client, people, sla_request):
    login_client(people["manager"]).post(f"/requests/{sla_request.id}/sla/exemptions", data=GRANT, headers=HX)
    html = text_of(login_client(people["requester"]).get(f"/requests/{sla_request.id}/timeline"))
    assert "exempted" not in html and "Vendor part on order" not in html


def test_grant_plain_redirects_with_flash(login_client, make, people, sla_request):
    client = login_client(people["manager"])
    response = client.post(f"/requests/{sla_request.id}/sla/exemptions", data=GRANT)
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == f"/requests/{sla_request.id}"
    page = text_of(client.get(response.headers["Location"]))
    assert "Exemption granted." in _flashes(page)
    assert len(_exemptions(make.app, sla_request.id)) == 1
    assert "exempted the resolution target for 24 h" in page


@pytest.mark.parametrize("reason", ["", "   "])
def test_grant_missing_reason_htmx_422(login_client, make, people, sla_request, reason):
    response = login_client(people["manager"]).post(
        f"/requests/{sla_request.id}/sla/exemptions", data={**GRANT, "reason": reason}, headers=HX)
    assert response.status_code == 422
    html = text_of(response)
    assert html.lstrip().startswith('<section id="sla-panel"')
    assert "Say why the exemption is needed." in html
    assert '<details class="exemption-form" open>' in html
    assert "HX-Trigger" not in response.headers
    assert _exemptions(make.app, sla_request.id) == []
    assert make.count("SlaExemption") == 0


def test_grant_missing_reason_plain_flashes_and_creates_nothing(login_client, make, people, sla_request):
    client = login_client(people["manager"])
    response = client.post(f"/requests/{sla_request.id}/sla/exemptions", data={**GRANT, "reason": ""})
    assert response.status_code == 303
    page = text_of(client.get(response.headers["Location"]))
    assert "Say why the exemption is needed." in _flashes(page)
    assert make.count("SlaExemption") == 0


@pytest.mark.parametrize(("duration", "message"), [
    ("abc", "Not a valid decimal value."),
    ("-5", "Number must be between 0.01 and 8760."),
    ("0", "Number must be between 0.01 and 8760."),
    ("9000", "Number must be between 0.01 and 8760."),
    ("1.234", "Use at most two decimal places."),
])
def test_grant_bad_duration_422(login_client, make, people, sla_request, duration, message):
    response = login_client(people["manager"]).post(
        f"/requests/{sla_request.id}/sla/exemptions", data={**GRANT, "duration_hours": duration}, headers=HX)
    assert response.status_code == 422
    assert message in text_of(response)
    assert make.count("SlaExemption") == 0


def test_grant_bad_type_422(login_client, make, people, sla_request):
    response = login_client(people["manager"]).post(
        f"/requests/{sla_request.id}/sla/exemptions", data={**GRANT, "exemption_type": "everything"}, headers=HX)
    assert response.status_code == 422
    assert "Not a valid choice" in text_of(response)
    assert make.count("SlaExemption") == 0


@pytest.mark.parametrize("role", ["agent", "requester"])
def test_grant_by_agent_or_requester_403(login_client, make, people, sla_request, role):
    for headers in ({}, HX):
        response = login_client(people[role]).post(f"/requests/{sla_request.id}/sla/exemptions", data=GRANT,
                                                   headers=headers)
        assert response.status_code == 403
    assert make.count("SlaExemption") == 0


def test_grant_without_sla_htmx_409(login_client, make, people):
    req = make.request(people["requester"], category="access", priority="low")
    response = login_client(people["manager"]).post(f"/requests/{req.id}/sla/exemptions", data=GRANT, headers=HX)
    assert response.status_code == 409
    html = text_of(response)
    assert "This request has no SLA, so there is nothing to exempt." in html
    assert "flash-error" in html
    assert "HX-Trigger" not in response.headers
    assert make.count("SlaExemption") == 0


def test_grant_without_sla_plain_flashes(login_client, make, people):
    req = make.request(people["requester"], category="access", priority="low")
    client = login_client(people["manager"])
    response = client.post(f"/requests/{req.id}/sla/exemptions", data=GRANT)
    assert response.status_code == 303
    page = text_of(client.get(response.headers["Location"]))
    assert "This request has no SLA, so there is nothing to exempt." in _flashes(page)
    assert make.count("SlaExemption") == 0


def test_grant_on_missing_request_404(login_client, people):
    assert login_client(people["manager"]).post("/requests/99999/sla/exemptions", data=GRANT,
                                                headers=HX).status_code == 404


def test_grant_with_csrf_on_needs_token(client, make, people, sla_request, csrf_on):
    token = csrf_from_form(text_of(client.get("/login")))
    manager = people["manager"]
    assert client.post("/login", data={"email": manager.email, "password": manager.password,
                                       "csrf_token": token}).status_code == 303
    response = client.post(f"/requests/{sla_request.id}/sla/exemptions", data=GRANT, headers=HX)
    assert response.status_code == 400
    assert make.count("SlaExemption") == 0
    token = csrf_from_body(text_of(client.get(f"/requests/{sla_request.id}")))
    response = client.post(f"/requests/{sla_request.id}/sla/exemptions", data=GRANT,
                           headers={**HX, "X-CSRFToken": token})
    assert response.status_code == 200
    assert make.count("SlaExemption") == 1


# ---------------------------------------------------------------- revoking exemptions


def _revoke_url(request_id: int, exemption_id: int) -> str:
    return f"/requests/{request_id}/sla/exemptions/{exemption_id}/revoke"


def test_revoke_htmx_once_then_already_ended(login_client, make, people, sla_request):
    exemption_id = make.exemption(people["manager"], sla_request.id, "resolution")
    client = login_client(people["manager"])
    response = client.post(_revoke_url(sla_request.id, exemption_id), headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert "Exemption revoked; the clock counts again." in html
    assert f"revoked by {people['manager'].name}" in html
    assert _states(html) == {"response": "On track", "resolution": "On track"}
    assert "Revoke</button>" not in html
    assert oob_ids(html) == {"timeline"}
    assert _exemptions(make.app, sla_request.id)[0][3] is True
    timeline = text_of(client.get(f"/requests/{sla_request.id}/timeline"))
    assert f"<strong>{people['manager'].name}</strong> revoked the resolution exemption" in timeline

    again = client.post(_revoke_url(sla_request.id, exemption_id), headers=HX)
    assert again.status_code == 409
    assert "This exemption has already ended." in text_of(again)
    assert oob_ids(text_of(again)) == {"timeline"}


def test_revoke_plain_once_then_already_ended(login_client, make, people, sla_request):
    exemption_id = make.exemption(people["manager"], sla_request.id, "both")
    client = login_client(people["admin"])
    response = client.post(_revoke_url(sla_request.id, exemption_id))
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == f"/requests/{sla_request.id}"
    page = text_of(client.get(response.headers["Location"]))
    assert "Exemption revoked; the clock counts again." in _flashes(page)
    again = client.post(_revoke_url(sla_request.id, exemption_id))
    assert again.status_code == 303
    assert "This exemption has already ended." in _flashes(text_of(client.get(again.headers["Location"])))


def test_revoke_expired_exemption_says_already_ended(login_client, app, make, people, sla_request):
    from portal.extensions import db
    from portal.models import SlaExemption

    exemption_id = make.exemption(people["manager"], sla_request.id, "resolution", 2)
    with app.app_context():
        x = db.session.get(SlaExemption, exemption_id)
        x.granted_at -= timedelta(hours=3)
        x.expires_at -= timedelta(hours=3)
        db.session.commit()
    client = login_client(people["manager"])
    panel = text_of(client.get(f"/requests/{sla_request.id}/sla"))
    assert '<span class="badge">Ended</span>' in panel
    assert "Revoke</button>" not in panel
    response = client.post(_revoke_url(sla_request.id, exemption_id), headers=HX)
    assert response.status_code == 409
    assert "This exemption has already ended." in text_of(response)


def test_revoke_exemption_of_another_request_404(login_client, make, people, sla_request):
    other = make.request(people["requester"], title="Other one")
    exemption_id = make.exemption(people["manager"], other.id, "resolution")
    client = login_client(people["manager"])
    for headers in ({}, HX):
        assert client.post(_revoke_url(sla_request.id, exemption_id), headers=headers).status_code == 404
    assert client.post(_revoke_url(sla_request.id, 99999), headers=HX).status_code == 404
    assert _exemptions(make.app, other.id)[0][3] is False


def test_revoke_by_agent_403(login_client, make, people, sla_request):
    exemption_id = make.exemption(people["manager"], sla_request.id, "resolution")
    assert login_client(people["agent"]).post(_revoke_url(sla_request.id, exemption_id),
                                              headers=HX).status_code == 403
    assert _exemptions(make.app, sla_request.id)[0][3] is False


# ---------------------------------------------------------------- dashboard


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/summary", "/dashboard/breaches"])
@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("manager", 200), ("agent", 403), ("requester", 403)])
def test_dashboard_access(login_client, make, path, role, status):
    assert login_client(make.user(role)).get(path).status_code == status


def _stat(html: str, label: str) -> str:
    card = re.search(rf'<div class="stat-label">{label}</div>(.*?)</div>\s*(?:<div class="muted|<ul|</div>)',
                     html, re.S).group(1)
    return unescape(re.sub(r"<[^>]+>", "", card)).strip()


def _breakdown(html: str, label: str) -> dict[str, int]:
    card = html[html.index(f'<div class="stat-label">{label}</div>'):]
    card = card[:card.index("</ul>")]
    return {unescape(name): int(n) for name, n in re.findall(r">([^<>]+)</(?:a|span)>(?:</a>)? <span>(\d+)</span>",
                                                              card)}


def _check_summary(html: str) -> None:
    assert _stat(html, "Open requests") == "5"
    assert _breakdown(html, "Open requests") == {"Open": 4, "In progress": 0, "Waiting on customer": 1}
    assert _breakdown(html, "Open by priority") == {"Critical": 1, "High": 3, "Medium": 0, "Low": 1}
    assert _stat(html, "Breached now") == "3"
    assert _stat(html, "At risk") == "1"
    assert _stat(html, "Met rate, 30 days") == "33.3%"
    assert "of 9 decided targets" in html
    assert 'href="/sla/breaches?state=breached"' in html and 'href="/sla/breaches?state=at_risk"' in html


def test_dashboard_page_counts(login_client, desk):
    response = login_client(desk["admin"]).get("/dashboard")
    assert response.status_code == 200
    html = text_of(response)
    assert "<html" in html
    _check_summary(html)
    widget = html[html.index('<section id="breach-widget"'):]
    assert "4 open requests breached or at risk" in widget
    ids = [int(i) for i in re.findall(r'<td class="num">(\d+)</td>', widget)]
    assert ids == [desk["ids"][k] for k in LISTED]


def test_dashboard_summary_partial(login_client, desk):
    html = text_of(login_client(desk["admin"]).get("/dashboard/summary", headers=HX))
    assert html.lstrip().startswith('<section id="summary-cards"')
    assert "<html" not in html
    assert "every 30s" in _root_attr(html, "hx-trigger")
    assert _root_attr(html, "hx-get") == "/dashboard/summary"
    _check_summary(html)


def test_dashboard_breach_partial(login_client, desk):
    html = text_of(login_client(desk["admin"]).get("/dashboard/breaches", headers=HX))
    assert html.lstrip().startswith('<section id="breach-widget"')
    assert "<html" not in html
    assert "every 30s" in _root_attr(html, "hx-trigger")
    assert _root_attr(html, "hx-get") == "/dashboard/breaches"
    assert "4 open requests breached or at risk" in html
    ids = [int(i) for i in re.findall(r'<td class="num">(\d+)</td>', html)]
    assert ids == [desk["ids"][k] for k in LISTED]
    for title in ("PDF reader Delta", "Font install Echo", "Printer Foxtrot"):
        assert title not in html


def test_dashboard_empty(login_client, make):
    client = login_client(make.user("admin"))
    summary = text_of(client.get("/dashboard/summary"))
    assert _stat(summary, "Open requests") == "0"
    assert _stat(summary, "Breached now") == "0"
    assert _stat(summary, "Met rate, 30 days") == "–"
    assert "of 0 decided targets" in summary
    widget = text_of(client.get("/dashboard/breaches"))
    assert "All clear." in widget and "0 open requests breached or at risk" in widget


def test_dashboard_widget_shows_the_ten_most_overdue(login_client, app, make):
    admin = make.user("admin")
    requester = make.user("requester")
    _definitions(app, ("network", "high", 1, 4))
    ids = []
    for n in range(12):
        req = make.request(requester, title=f"Outage {n}", category="network", priority="high")
        _backdate(app, req.id, 2 + n)
        ids.append(req.id)
    html = text_of(login_client(admin).get("/dashboard/breaches"))
    assert "12 open requests breached or at risk · showing the 10 most overdue" in html
    shown = [int(i) for i in re.findall(r'<td class="num">(\d+)</td>', html)]
    assert shown == list(reversed(ids))[:10]
