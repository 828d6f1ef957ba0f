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


def test_agent_ticks_rows_uses_the_keyboard_and_works_three_requests_in_four_clicks_each(page, factories, shoot):
    from portal.policy import SYSTEM
    from portal.services import sla_admin

    sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "medium",
                                         "response_time_hours": 4, "resolution_time_hours": 24})
    factories.make_user("agent", email="sam@example.com", name="Sam Rivera")
    requester = factories.make_user("requester", name="Noor Patel")
    titles = ["VPN asks twice", "Printer offline", "Laptop fan loud", "Headset crackles"]
    for title in titles:
        factories.make_request(requester, title=title)

    sign_in(page, "sam@example.com", TEST_PASSWORD)
    rows = page.locator("#request-table tbody tr")
    expect(rows).to_have_count(4)

    # The keyboard: j moves down, ? shows every shortcut; nothing fires while typing in the search.
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(re.compile(r"\bcurrent\b"))
    page.keyboard.press("?")
    dialog = page.locator("dialog#shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Assign to me")
    shoot(page, "183-queue-shortcuts")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.fill("#q", "jk")
    expect(rows.nth(1)).to_have_class(re.compile(r"\bcurrent\b"))   # typing moved nothing
    with page.expect_response(lambda r: "/requests?q=&" in r.url):  # the list reloads once the search is cleared
        page.fill("#q", "")
    expect(rows).to_have_count(4)

    # Tick the first, shift-click the third: three ticked; set their priority in one go.
    rows.nth(0).locator("input[name=ids]").click()
    rows.nth(2).locator("input[name=ids]").click(modifiers=["Shift"])
    expect(page.locator("[data-bulk-count]")).to_have_text("3 ticked")
    page.select_option("#bulk-change", "priority:high")
    shoot(page, "184-queue-bulk-ticked")
    page.click("#bulk-form button:has-text('Apply to ticked')")
    expect(page.locator(".flash-success")).to_contain_text("Changed 3 requests.")
    expect(page.locator("#request-table .badge.priority-high")).to_have_count(3)
    shoot(page, "185-queue-bulk-done")

    # Work three requests from the queue: open (or Next request), assign to me, reply and resolve.
    clicks_per_request = []
    for n in range(3):
        clicks = 0
        if n == 0:
            rows.nth(0).locator("td.title a").click()
        else:
            page.click("a.next-request")
        clicks += 1
        page.wait_for_url(re.compile(r".*/requests/\d+\?list="))
        page.click("button:has-text('Assign to me')")
        clicks += 1
        # Wait for the answer itself (the panel names Sam in its agent list before it): the send
        # buttons carry the version the assignment made, swapped in with it.
        expect(page.locator("#request-panel")).to_contain_text("You took this request.")
        page.fill("textarea[name=body]", "Fixed it remotely; it should work now.")
        page.click("#composer-send button:has-text('Send and resolve')")
        clicks += 1
        expect(page.locator("#request-header")).to_contain_text("Resolved")
        if n == 0:
            shoot(page, "186-queue-worked-one")
        clicks_per_request.append(clicks)
    assert max(clicks_per_request) <= 4, clicks_per_request
    page.click("nav.crumbs >> text=← All requests")
    expect(rows).to_have_count(1)     # the open work left: the one not worked
