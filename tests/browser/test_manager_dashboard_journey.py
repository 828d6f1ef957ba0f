"""A manager's dashboard (issue #12): the cards, the breach widget and the charts; a bar opens the
requests behind it, as many as it counts; on a phone nothing scrolls sideways."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, axe_violations, format_violations, sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
# (weeks ago, requests opened that week, of them resolved, of those past their resolution target)
HISTORY = [(9, 3, 3, 0), (7, 5, 4, 1), (6, 4, 4, 0), (5, 6, 5, 2), (4, 2, 2, 0), (3, 5, 3, 1), (2, 7, 5, 1),
           (1, 4, 2, 0), (0, 2, 0, 0)]


def _seed_history(factories) -> dict:
    """Requests raised over the last ten weeks, most resolved (some late, their breach recorded), as the
    hourly trend job and the SLA rollups count them. Returns the manager's week to click on."""
    from sqlalchemy import text

    from portal.extensions import db
    from portal.services import reports, sla_admin, sla_rollup

    admin = factories.make_user("admin", email="ada@example.com", name="Ada Admin")
    factories.make_user("manager", email="mona@example.com", name="Mona Manager")
    requester = factories.make_user("requester", name="Riley Requester")
    for category, priority in (("hardware", "medium"), ("network", "high"), ("software", "low"),
                               ("access", "critical")):
        sla_admin.create_definition(admin, {"category": category, "priority": priority, "response_time_hours": 4,
                                            "resolution_time_hours": 24})
    kinds = [("hardware", "medium"), ("network", "high"), ("software", "low"), ("access", "critical")]
    today = datetime.now(UTC).date()
    this_monday = today - timedelta(days=today.weekday())
    n = 0
    for weeks_ago, opened, resolved, late in HISTORY:
        monday = this_monday - timedelta(weeks=weeks_ago)
        for i in range(opened):
            category, priority = kinds[n % len(kinds)]
            n += 1
            created = datetime.combine(monday, time(9), UTC) + timedelta(days=i % 5, hours=i)
            if created > datetime.now(UTC) - timedelta(hours=1):
                created = datetime.now(UTC) - timedelta(hours=2 + i)
            req = factories.make_request(requester, title=f"Week -{weeks_ago} request {i + 1}", category=category,
                                         priority=priority)
            done = i < resolved
            is_late = done and i < late
            resolved_at = created + timedelta(hours=30 if is_late else 6) if done else None
            db.session.execute(text(
                "UPDATE service_request SET created_at = :created, status = :status, resolved_at = :resolved "
                "WHERE id = :id"), {"created": created, "status": "resolved" if done else "open",
                                    "resolved": resolved_at, "id": req.id})
            db.session.execute(text(
                "UPDATE sla_metric SET created_at = :created, started_at = :created, status = :status, "
                "responded_at = :responded, response_sla_met = CASE WHEN :responded IS NOT NULL THEN true END, "
                "resolved_at = :resolved, resolution_sla_met = CASE WHEN :resolved IS NULL THEN NULL "
                "ELSE NOT :late END, resolution_breached_at = CASE WHEN :late THEN :breached END, "
                "is_breached = :late WHERE request_id = :id"),
                {"created": created, "status": "resolved" if done else "open", "late": is_late,
                 "responded": created + timedelta(hours=1) if done else None, "resolved": resolved_at,
                 "breached": created + timedelta(hours=24), "id": req.id})
    db.session.commit()
    reports.calculate_trends(days=90)
    sla_rollup.fold()
    return {"monday": this_monday - timedelta(weeks=5), "opened": 6, "resolved": 5}


def _overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def _count_shown(page) -> int:
    """The list's own count line ("6 requests")."""
    line = page.locator("#request-table .count").inner_text()
    return int(re.match(r"\s*([\d,]+) requests?", line).group(1).replace(",", ""))


def test_manager_reads_the_charts_and_opens_the_requests_behind_a_bar(page, browser, live_server, factories,
                                                                      shoot):
    week = _seed_history(factories)
    sign_in(page, "mona@example.com", TEST_PASSWORD)
    page.click(".mainnav a:text-is('Dashboard')")
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("#summary-cards")).to_contain_text("Open requests")
    expect(page.locator("#holiday-reminder")).to_have_count(0)
    for chart in ("#chart-compliance", "#chart-volume", "#chart-breach-priority", "#chart-breach-category"):
        expect(page.locator(f"{chart} svg")).to_be_visible()
    violations = axe_violations(page, selector="#dashboard-charts")
    assert not violations, format_violations(violations, "the dashboard's charts")
    shoot(page, "230-manager-dashboard")
    page.locator("#dashboard-charts").screenshot(path=str(SCREENSHOTS / "231-manager-dashboard-charts.png"))

    # The opened bar of the week five weeks ago: 6 requests; its link lists those 6.
    label = f"Week of {week['monday'].day} {week['monday']:%b}: {week['opened']} opened. Show them."
    bar = page.locator(f'#chart-volume a[aria-label="{label}"]')
    expect(bar).to_have_count(1)
    bar.hover()
    expect(bar.locator("text.value")).to_have_css("opacity", "1")
    shoot(page, "232-manager-dashboard-hover")
    bar.click()
    page.wait_for_url(re.compile(r"/requests\?.*created="))
    assert _count_shown(page) == week["opened"]
    expect(page.locator("#request-table tbody tr")).to_have_count(week["opened"])
    expect(page.locator(".date-filter")).to_contain_text("Created")
    shoot(page, "233-requests-behind-a-bar")

    # A breach bar: the requests with a target breached in the last 30 days, as many as it counts.
    page.go_back()
    row = page.locator("#chart-breach-priority a").first
    counted = int(re.search(r" (\d+) breach", row.get_attribute("aria-label")).group(1))
    row.click()
    page.wait_for_url(re.compile(r"/requests\?.*breached="))
    assert _count_shown(page) == counted
    shoot(page, "234-requests-behind-a-breach-bar")

    # The numbers as a table, for whoever would rather read them.
    page.go_back()
    page.click("#chart-volume summary")
    expect(page.locator("#chart-volume table")).to_be_visible()
    page.locator("#chart-volume").screenshot(path=str(SCREENSHOTS / "235-chart-numbers.png"))

    # A phone, 390 px: the dashboard and the list behind a bar fit the screen.
    phone_context = browser.new_context(base_url=live_server, viewport=PHONE, is_mobile=True, has_touch=True)
    phone = phone_context.new_page()
    try:
        sign_in(phone, "mona@example.com", TEST_PASSWORD)
        phone.goto("/dashboard")
        expect(phone.locator("#chart-volume svg")).to_be_visible()
        assert _overflow(phone) <= 1, f"the dashboard is {_overflow(phone)} px wider than a phone"
        sizes = phone.eval_on_selector_all(
            "#dashboard-charts svg text", "els => els.filter(e => e.getBBox().width > 0)"
            ".map(e => parseFloat(getComputedStyle(e).fontSize))")
        assert sizes and min(sizes) >= 12, sizes
        shoot(phone, "236-phone-dashboard")
        phone.locator(f'#chart-volume a[aria-label="{label}"]').click()
        phone.wait_for_url(re.compile(r"/requests\?.*created="))
        assert _overflow(phone) <= 1, f"the list is {_overflow(phone)} px wider than a phone"
        shoot(phone, "237-phone-requests-behind-a-bar")
    finally:
        phone_context.close()


def test_an_empty_dashboard_says_so_calmly(page, factories, shoot):
    factories.make_user("manager", email="mona@example.com", name="Mona Manager")
    sign_in(page, "mona@example.com", TEST_PASSWORD)
    page.goto("/dashboard")
    expect(page.locator("#chart-volume")).to_contain_text("No requests in this period.")
    expect(page.locator("#chart-compliance")).to_contain_text("No SLA targets were decided in this period.")
    expect(page.locator("#dashboard-charts svg")).to_have_count(0)
    shoot(page, "238-empty-dashboard")
