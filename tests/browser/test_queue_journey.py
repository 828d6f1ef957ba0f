"""An agent's queue: they land on the open work, soonest due first, with each row's SLA badge;
"All" and the page size are one click away; the menu takes them to their breaches, read only."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


def test_agent_works_the_queue_by_what_falls_due_first(page, factories, shoot):
    from portal.extensions import db
    from portal.models import SlaMetric
    from portal.models._time import utcnow
    from portal.policy import SYSTEM
    from portal.services import requests as svc
    from portal.services import sla_admin

    for priority, respond, resolve in (("critical", 1, 4), ("high", 2, 8), ("medium", 4, 24)):
        sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": priority,
                                             "response_time_hours": respond, "resolution_time_hours": resolve})
    agent = factories.make_user("agent", email="sam@example.com", name="Sam Rivera")
    other = factories.make_user("agent", name="Ana Ortiz")
    requester = factories.make_user("requester", name="Noor Patel")
    made = {
        "Docking station flickers": factories.make_request(requester, title="Docking station flickers"),
        "Laptop will not boot": factories.make_request(requester, title="Laptop will not boot", priority="critical"),
        "Badge reader offline": factories.make_request(requester, title="Badge reader offline", priority="high"),
        "Monitor arm broken": factories.make_request(requester, title="Monitor arm broken"),
        "Font request": factories.make_request(requester, title="Font request", category="software", priority="low"),
        "Old keyboard swap": factories.make_request(requester, title="Old keyboard swap"),
        "Projector bulb": factories.make_request(requester, title="Projector bulb", priority="high"),
    }
    svc.assign(agent, made["Badge reader offline"].id, agent.id)
    svc.assign(other, made["Projector bulb"].id, other.id)
    svc.change_status(agent, made["Old keyboard swap"].id, "resolved")
    for title, hours in (("Monitor arm broken", 3), ("Projector bulb", 1)):
        metric = db.session.query(SlaMetric).filter_by(request_id=made[title].id).one()
        metric.response_due_at = metric.response_breached_at = utcnow() - timedelta(hours=hours, minutes=5)
        metric.is_breached = True
    db.session.commit()

    sign_in(page, "sam@example.com", TEST_PASSWORD)
    expect(page.locator("nav.tabs a[aria-current=page]")).to_have_text("Open work")
    rows = page.locator("#request-table tbody tr")
    expect(rows).to_have_count(6)
    expect(rows.nth(0)).to_contain_text("Monitor arm broken")      # most overdue first
    expect(rows.nth(0).locator(".badge.sla-breached")).to_contain_text("Breached 3 h")
    expect(rows.nth(2)).to_contain_text("Laptop will not boot")    # respond within the hour
    expect(rows.nth(5)).to_contain_text("Font request")            # no SLA: last
    expect(page.locator("#request-table .count")).to_contain_text("Due soonest")
    shoot(page, "180-queue-open-work")

    page.click("nav.tabs >> text=All")
    page.wait_for_url("**/requests?status=any")
    expect(rows).to_have_count(7)
    expect(page.locator("#request-table")).to_contain_text("Old keyboard swap")
    page.select_option("#per_page", "50")
    expect(page).to_have_url(re.compile(r".*/requests\?.*status=any.*&per_page=50"))
    expect(rows).to_have_count(7)
    shoot(page, "181-queue-all")

    page.click(".mainnav a:text-is('SLA breaches')")
    page.wait_for_url("**/sla/breaches")
    table = page.locator("#breach-table")
    expect(table).to_contain_text("Monitor arm broken")           # unassigned
    expect(table).not_to_contain_text("Projector bulb")           # Ana's
    expect(page.locator("#compliance")).to_have_count(0)
    shoot(page, "182-agent-breaches")
