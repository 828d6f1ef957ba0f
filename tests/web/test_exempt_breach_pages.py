"""An exemption granted over a recorded breach: staff see what it did (the SLA panel, the breach page
and the dashboard widget), the breach stands, and the requester never sees it."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest

from portal.policy import SYSTEM
from tests.web.helpers import HX, text_of

BREACH_TABLE = {**HX, "HX-Target": "breach-table"}


def _breach(app, request_id: int, hours: float) -> None:
    """Pretend the request was raised `hours` ago, then run the breach checks."""
    from portal.extensions import db
    from portal.models import ServiceRequest
    from portal.models._time import utcnow
    from portal.services import sla

    with app.app_context():
        req = db.session.get(ServiceRequest, request_id)
        req.created_at -= timedelta(hours=hours)
        metric = sla.get_metric(request_id)
        metric.started_at -= timedelta(hours=hours)
        sla.recompute(metric, utcnow())
        db.session.commit()
        sla.check_all_breaches()


def _age_exemptions(app, request_id: int, hours: float) -> None:
    """Move a request's exemptions, and its response breach, `hours` into the past (an expired
    exemption then ended before now, after the breach)."""
    from portal.extensions import db
    from portal.models import SlaExemption
    from portal.services import sla

    with app.app_context():
        sla.get_metric(request_id).response_breached_at -= timedelta(hours=hours + 0.5)
        for x in db.session.query(SlaExemption).filter_by(request_id=request_id):
            x.granted_at -= timedelta(hours=hours)
            if x.expires_at is not None:
                x.expires_at -= timedelta(hours=hours)
        db.session.commit()


@pytest.fixture()
def office(app, make):
    """Two breached network requests (response target 1 h); one gets an exemption later."""
    from portal.services import sla_admin

    with app.app_context():
        sla_admin.create_definition(SYSTEM, {"category": "network", "priority": "high", "response_time_hours": 1,
                                             "resolution_time_hours": 48})
    requester = make.user("requester")
    people = {"manager": make.user("manager"), "admin": make.user("admin"), "agent": make.user("agent"),
              "requester": requester}
    exempted = make.request(requester, title="Core switch Kilo", category="network", priority="high")
    plain = make.request(requester, title="Wi-Fi drops Lima", category="network", priority="high")
    for req in (exempted, plain):
        _breach(app, req.id, 3)
    return {**people, "exempted": exempted.id, "plain": plain.id}


def _row(html: str, request_id: int) -> str:
    found = re.search(rf'<td class="num">{request_id}</td>.*?</tr>', html, re.S)
    return found.group(0) if found else ""


def _note(html: str) -> str | None:
    found = re.search(r'<span class="exempt-note[^"]*"[^>]*>([^<]*)</span>', html)
    return unescape(found.group(1)).strip() if found else None


def test_breach_page_notes_an_exempt_breach(login_client, make, office):
    make.exemption(office["manager"], office["exempted"], "both", 24)

    html = text_of(login_client(office["manager"]).get("/sla/breaches"))

    row = _row(html, office["exempted"])
    assert 'class="badge sla-breached">Breached<' in row
    assert re.fullmatch(r"· exempt until \d{1,2} \w{3} \d\d:\d\d UTC", _note(row))
    assert _note(_row(html, office["plain"])) is None
    assert '<select id="exempt" name="exempt">' in html


def test_breach_page_hide_drops_exempt_breaches_and_keeps_the_filter(login_client, make, office):
    make.exemption(office["manager"], office["exempted"], "response", None)
    client = login_client(office["manager"])

    html = text_of(client.get("/sla/breaches?exempt=hide"))

    assert _row(html, office["exempted"]) == "" and _row(html, office["plain"])
    assert "1 request ·" in html
    assert '<option value="hide" selected>' in html
    # The poll keeps asking for the same list.
    table = text_of(client.get("/sla/breaches?exempt=hide", headers=BREACH_TABLE))
    assert "exempt=hide" in unescape(re.search(r'hx-get="([^"]*)"', table).group(1))


def test_breach_page_bad_exempt_value_is_reported_not_500(login_client, office):
    client = login_client(office["manager"])

    for headers in ({}, BREACH_TABLE):
        response = client.get("/sla/breaches?exempt=%00maybe", headers=headers)
        assert response.status_code == 200
        html = text_of(response)
        assert "Some filters were ignored: Use &#39;show&#39; or &#39;hide&#39; for exempt breaches." in html
        assert _row(html, office["exempted"]) and _row(html, office["plain"])


def test_dashboard_widget_notes_an_exempt_breach(login_client, make, office):
    make.exemption(office["manager"], office["exempted"], "both", None)

    html = text_of(login_client(office["admin"]).get("/dashboard/breaches"))

    assert _note(_row(html, office["exempted"])) == "· exempt, no end"
    assert _note(_row(html, office["plain"])) is None


def test_sla_panel_shows_the_note_to_staff_and_never_to_the_requester(login_client, make, office):
    make.exemption(office["manager"], office["exempted"], "response", None)
    path = f"/requests/{office['exempted']}/sla"

    for role in ("manager", "agent"):
        staff = text_of(login_client(office[role]).get(path))
        assert 'class="badge sla-breached">Breached<' in staff
        # A line of its own under the badge in the narrow panel: no "·" separator.
        assert _note(staff) == "exempt, no end"
    for html in (text_of(login_client(office["requester"]).get(path)),
                 text_of(login_client(office["requester"]).get(f"/requests/{office['exempted']}"))):
        assert 'class="badge sla-breached">Breached<' in html
        assert "exempt" not in html.lower()


def test_sla_panel_shows_an_ended_exemption_as_was_exempt(app, login_client, make, office):
    make.exemption(office["manager"], office["exempted"], "both", 1)
    _age_exemptions(app, office["exempted"], 2)

    html = text_of(login_client(office["manager"]).get(f"/requests/{office['exempted']}/sla"))

    assert re.fullmatch(r"was exempt \d{1,2}( \w{3})?(–\d{1,2})? \w{3}", _note(html))
    assert "The recorded breach stands." in html


def test_breach_page_hiding_every_breach_says_why_the_list_is_empty(login_client, make, office):
    for request_id in (office["exempted"], office["plain"]):
        make.exemption(office["manager"], request_id, "both", None)

    html = text_of(login_client(office["manager"]).get("/sla/breaches?exempt=hide"))

    assert "0 requests ·" in html and "exempt breaches hidden" in html
    assert "leaving out the breaches an active exemption covers" in html
    assert "Every open request with an SLA is on track" not in html
