"""An exemption granted over a recorded breach, in a real browser: the manager grants it and sees
what it did on the request, the breach page (and hides it there) and the dashboard; the requester
never sees it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


def _breach(request_id: int, hours: float) -> None:
    """Pretend the request was raised `hours` ago, then run the breach check."""
    from portal.extensions import db
    from portal.models import ServiceRequest
    from portal.models._time import utcnow
    from portal.services import sla

    req = db.session.get(ServiceRequest, request_id)
    req.created_at -= timedelta(hours=hours)
    metric = sla.get_metric(request_id)
    metric.started_at -= timedelta(hours=hours)
    for event in db.session.query(sla.SlaEvent).filter_by(request_id=request_id):
        event.at -= timedelta(hours=hours)
    sla.recompute(metric, utcnow())
    db.session.commit()
    sla.check_all_breaches()


@pytest.fixture()
def breached_desk(factories):
    """A manager, an admin, a requester; two network requests whose 1-hour response target breached."""
    from portal.services import sla_admin

    admin = factories.make_user("admin", email="ada@example.com", name="Ada Admin")
    factories.make_user("manager", email="morgan@example.com", name="Morgan Manager")
    requester = factories.make_user("requester", email="riley@example.com", name="Riley Requester")
    sla_admin.create_definition(admin, {"category": "network", "priority": "high", "response_time_hours": 1,
                                        "resolution_time_hours": 8})
    waiting = factories.make_request(requester, title="Branch router replacement", category="network",
                                     priority="high")
    other = factories.make_request(requester, title="VPN down for the whole office", category="network",
                                   priority="high")
    _breach(waiting.id, 3)
    _breach(other.id, 2.5)
    return {"waiting": waiting.id, "other": other.id}


def test_exemption_over_a_breach_is_visible_to_staff_only(browser, live_server, page, breached_desk, shoot):
    sign_in(page, "morgan@example.com", TEST_PASSWORD)
    page.goto(f"/requests/{breached_desk['waiting']}")
    response = page.locator("#sla-panel .sla-target-response")
    expect(response).to_contain_text("Breached")

    page.click("text=Grant an exemption")
    page.select_option("#exemption_type", "both")
    page.fill("#reason", "Replacement router ships from the vendor on Friday")
    page.fill("#duration_hours", "48")
    page.click("#sla-panel button:has-text('Grant exemption')")
    expect(page.locator("#sla-panel")).to_contain_text("Exemption granted.")
    # The recorded breach stands; the note says what the exemption did.
    expect(response.locator(".badge")).to_have_text("Breached")
    expect(response.locator(".exempt-note")).to_have_text(re.compile(r"^exempt until \d{1,2} \w{3} \d\d:\d\d UTC"))
    shoot(page, "190-exempt-breach-panel")

    page.click("nav >> text=SLA breaches")
    rows = page.locator("#breach-table tbody tr")
    expect(rows).to_have_count(2)
    waiting_row = rows.filter(has_text="Branch router replacement")
    expect(waiting_row.locator(".exempt-note")).to_contain_text("exempt until")
    expect(rows.filter(has_text="VPN down for the whole office").locator(".exempt-note")).to_have_count(0)
    shoot(page, "191-exempt-breach-list")

    page.select_option("#exempt", "hide")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("VPN down for the whole office")
    assert "exempt=hide" in page.url
    expect(page.locator("#breach-table")).to_have_attribute("hx-get", re.compile(r"exempt=hide"))
    shoot(page, "192-exempt-breach-hidden")

    admin = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860}).new_page()
    try:
        sign_in(admin, "ada@example.com", TEST_PASSWORD)
        admin.click("nav >> text=Dashboard")
        widget_row = admin.locator("#breach-widget tr", has_text="Branch router replacement")
        expect(widget_row.locator(".exempt-note")).to_contain_text("exempt until")
        shoot(admin, "193-exempt-breach-dashboard")
    finally:
        admin.context.close()

    requester = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860}).new_page()
    try:
        sign_in(requester, "riley@example.com", TEST_PASSWORD)
        requester.goto(f"/requests/{breached_desk['waiting']}")
        panel = requester.locator("#sla-panel")
        expect(panel.locator(".sla-target-response .badge")).to_have_text("Breached")
        expect(panel.locator(".exempt-note")).to_have_count(0)
        expect(panel).not_to_contain_text(re.compile("exempt", re.I))
        shoot(requester, "194-exempt-breach-requester")
    finally:
        requester.context.close()
