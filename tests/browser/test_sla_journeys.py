"""SLA journeys in a real browser: breach page, exemptions on a request, dashboard, SLA setup."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import go_to, sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


def _backdate(request_id: int, hours: float) -> None:
    """Pretend the request was raised `hours` ago, then run the periodic checks."""
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
    sla.check_at_risk()


@pytest.fixture()
def sla_desk(factories):
    """Managers, agents and an admin; 24x7 SLAs; one breached, one at-risk and one healthy request."""
    from portal.services import sla_admin

    admin = factories.make_user("admin", email="ada@example.com", name="Ada Admin")
    factories.make_user("manager", email="morgan@example.com", name="Morgan Manager")
    factories.make_user("agent", email="alex@example.com", name="Alex Agent")
    requester = factories.make_user("requester", email="riley@example.com", name="Riley Requester")
    for category, priority, response, resolution in (("network", "high", 1, 4), ("hardware", "critical", 0.5, 4),
                                                     ("software", "low", 8, 72)):
        sla_admin.create_definition(admin, {"category": category, "priority": priority,
                                            "response_time_hours": response, "resolution_time_hours": resolution})
    breached = factories.make_request(requester, title="VPN down for the whole office", category="network",
                                      priority="high")
    at_risk = factories.make_request(requester, title="Laptop screen flickers", category="hardware",
                                     priority="critical")
    healthy = factories.make_request(requester, title="Install a PDF reader", category="software", priority="low")
    _backdate(breached.id, 2.5)
    _backdate(at_risk.id, 0.4)
    return {"breached": breached.id, "at_risk": at_risk.id, "healthy": healthy.id}


def test_manager_watches_breaches_and_filters(page, sla_desk, shoot):
    sign_in(page, "morgan@example.com", TEST_PASSWORD)
    page.click("nav >> text=SLA breaches")
    rows = page.locator("#breach-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("VPN down for the whole office")
    expect(rows.first).to_contain_text("Breached")
    expect(rows.first).to_contain_text("overdue")
    expect(rows.nth(1)).to_contain_text("At risk")
    shoot(page, "10-sla-breaches")

    page.evaluate("window.__noReload = true")
    page.select_option("#state", "at_risk")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Laptop screen flickers")
    assert "state=at_risk" in page.url
    assert page.evaluate("window.__noReload") is True
    # The 30-second poll keeps the filters.
    expect(page.locator("#breach-table")).to_have_attribute("hx-get", re.compile(r"state=at_risk"))

    page.select_option("#days", "90")
    expect(page.locator("#compliance h2")).to_have_text("Compliance, last 90 days")
    assert "days=90" in page.url and "state=at_risk" in page.url
    assert page.evaluate("window.__noReload") is True


def test_the_breach_poll_that_finds_nothing_new_keeps_the_table_and_says_it_was_checked(page, sla_desk):
    """The poll revalidates the browser's copy: the server answers 304 from its stamp without reading
    the list, the browser swaps its kept copy in, "updated" moves to now and the overdue time ticks."""
    from sqlalchemy import event

    from portal.extensions import db

    sign_in(page, "morgan@example.com", TEST_PASSWORD)
    page.click("nav >> text=SLA breaches")
    expect(page.locator("#breach-table tbody tr")).to_have_count(2)

    def poll() -> None:
        page.evaluate("""() => new Promise(done => {
            document.body.addEventListener('htmx:afterSettle', () => done(), {once: true});
            const table = document.getElementById('breach-table');
            htmx.ajax('GET', table.getAttribute('hx-get'), {source: table, target: table, swap: 'outerHTML'});
        })""")

    poll()   # the first poll's answer carries the ETag the browser keeps
    page.evaluate("document.querySelector('#breach-table time[data-checked]')"
                  ".setAttribute('datetime', '2020-01-01T00:00:00+00:00')")
    page.evaluate("document.querySelector('#breach-table .countdown').textContent = 'stale'")
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        poll()   # nothing changed
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    # The browser revalidated its copy (If-None-Match) and the server answered from the stamp alone.
    assert any("hashint8extended" in s for s in sent)
    assert not any("FROM service_request" in s for s in sent), sent
    expect(page.locator("#breach-table tbody tr")).to_have_count(2)
    expect(page.locator("#breach-table tbody tr").first).to_contain_text("VPN down for the whole office")
    assert not page.locator("#breach-table time[data-checked]").get_attribute("datetime").startswith("2020")
    expect(page.locator("#breach-table .countdown").first).to_contain_text("overdue")


def test_manager_types_an_end_date_before_the_start_and_is_told_so(page, sla_desk, shoot):
    """A reversed range applies nothing of the submission (not even the priority chosen with it), says
    so on the end date, keeps what was typed, and clears once the end is put right."""
    from portal.models._time import utcnow

    today = utcnow().date()
    yesterday, two_days_ago = (today - timedelta(days=1)).isoformat(), (today - timedelta(days=2)).isoformat()
    sign_in(page, "morgan@example.com", TEST_PASSWORD)
    page.click("nav >> text=SLA breaches")
    rows = page.locator("#breach-table tbody tr")
    expect(rows).to_have_count(2)
    page.evaluate("window.__noReload = true")
    page.select_option("#priority", "high")
    expect(rows).to_have_count(1)

    page.fill("#from", yesterday)
    page.fill("#to", two_days_ago)
    message = page.locator("#to-error")
    expect(message).to_have_text("The end date is before the start date.")
    expect(message).to_be_visible()
    end = page.locator("#to")
    expect(end).to_have_attribute("aria-invalid", "true")
    expect(end).to_have_attribute("aria-describedby", "to-error")
    expect(page.locator("#breach-table .flash-error")).to_contain_text("The filters were not applied.")
    expect(rows).to_have_count(2)  # nothing of that submission applied, the priority neither
    expect(page.locator("#from")).to_have_value(yesterday)
    expect(end).to_have_value(two_days_ago)
    expect(page.locator("#priority")).to_have_value("high")
    assert page.evaluate("window.__noReload") is True
    shoot(page, "110-breach-dates-refused")

    page.reload()  # the address bar kept the submission: the same refusal, from the server alone
    expect(page.locator("#to-error")).to_have_text("The end date is before the start date.")
    expect(page.locator("#to")).to_have_value(two_days_ago)

    page.fill("#to", today.isoformat())
    expect(rows).to_have_count(1)
    expect(page.locator("#to-error")).to_be_hidden()
    expect(page.locator("#to")).to_have_attribute("aria-invalid", "false")
    expect(page.locator("#breach-table .flash-error")).to_have_count(0)


def test_manager_grants_and_revokes_an_exemption(page, sla_desk, shoot):
    sign_in(page, "morgan@example.com", TEST_PASSWORD)
    page.goto(f"/requests/{sla_desk['at_risk']}")
    panel = page.locator("#sla-panel")
    expect(panel.locator(".sla-target-response")).to_contain_text("At risk")
    expect(panel.locator(".sla-target-resolution")).to_contain_text("On track")
    expect(page.locator("#timeline")).to_contain_text("SLA at risk: response target")

    page.click("text=Grant an exemption")
    page.select_option("#exemption_type", "response")
    page.click("#sla-panel button:has-text('Grant exemption')")
    expect(panel).to_contain_text("Say why the exemption is needed.")

    page.fill("#reason", "Waiting for the customer's access credentials")
    page.fill("#duration_hours", "24")
    page.click("#sla-panel button:has-text('Grant exemption')")
    expect(panel).to_contain_text("Exemption granted.")
    expect(panel.locator(".sla-target-response")).to_contain_text("Exempt")
    expect(panel.locator(".exemptions")).to_contain_text("Waiting for the customer's access credentials")
    shoot(page, "11-request-sla-exempt")

    page.click("#sla-panel button:has-text('Revoke')")
    expect(panel).to_contain_text("Exemption revoked; the clock counts again.")
    expect(panel.locator(".exemptions")).to_contain_text("revoked by Morgan Manager")
    expect(page.locator("#timeline")).to_contain_text("Morgan Manager revoked the response exemption")


def test_requester_sees_sla_without_exemption_controls(page, sla_desk):
    sign_in(page, "riley@example.com", TEST_PASSWORD)
    page.goto(f"/requests/{sla_desk['healthy']}")
    expect(page.locator("#sla-panel .sla-target-response")).to_contain_text("On track")
    expect(page.locator("#sla-panel")).not_to_contain_text("Grant an exemption")


def test_admin_dashboard_cards_and_widget(page, sla_desk, shoot):
    sign_in(page, "ada@example.com", TEST_PASSWORD)
    page.click("nav >> text=Dashboard")
    expect(page.locator("#summary-cards")).to_contain_text("Breached now")
    expect(page.locator("#summary-cards .stat.alert .stat-value")).to_have_text("1")
    expect(page.locator("#breach-widget")).to_contain_text("VPN down for the whole office")
    shoot(page, "12-dashboard")


def test_admin_sets_up_sla_definitions_and_a_calendar(page, sla_desk, shoot):
    sign_in(page, "ada@example.com", TEST_PASSWORD)
    go_to(page, "SLA setup")
    page.select_option("#category", "access")
    page.select_option("#priority", "medium")
    page.fill("#response_time_hours", "8")
    page.fill("#resolution_time_hours", "4")
    page.click("button:has-text('Add definition')")
    expect(page.locator("#sla-admin")).to_contain_text("The resolution time cannot be shorter than the response time.")
    page.fill("#resolution_time_hours", "24")
    page.click("button:has-text('Add definition')")
    expect(page.locator("#sla-admin .flash-success")).to_contain_text("Added access / medium")
    expect(page.locator("#sla-admin table")).to_contain_text("Access")
    shoot(page, "13-admin-sla-definitions")

    page.click("text=Business calendars")
    page.fill("#name", "London office")
    page.fill("#timezone", "Europe/London")
    page.click("button:has-text('Add calendar')")
    expect(page.locator("#calendars-admin")).to_contain_text("Calendar London office added.")
    page.click("#calendars-admin a:has-text('London office')")
    page.fill("#holiday-day", "2026-12-25")
    page.fill("#holiday-name", "Christmas Day")
    page.click("button:has-text('Add holiday')")
    expect(page.locator("#calendar-admin")).to_contain_text("Christmas Day (2026-12-25) added.")
    shoot(page, "14-admin-calendar")
