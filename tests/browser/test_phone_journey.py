"""A phone, 390 px wide: no page scrolls sideways, and on a request the status, assignment and SLA
come before the thread."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture()
def phone(browser, live_server, csrf_enabled):
    context = browser.new_context(base_url=live_server, viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def _overflow(page) -> int:
    """How far the page reaches past the screen's right edge, in CSS pixels."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def test_no_page_scrolls_sideways_on_a_phone(phone, factories, shoot):
    from portal.policy import SYSTEM
    from portal.services import sla_admin

    sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "medium",
                                         "response_time_hours": 4, "resolution_time_hours": 24})
    factories.make_user("admin", email="ada@example.com", name="Ada Admin")
    factories.make_user("agent", name="Sam Rivera with a rather long name")
    requester = factories.make_user("requester", name="Noor Patel")
    req = factories.make_request(requester, title="The second-floor printer prints blank pages since Monday")

    sign_in(phone, "ada@example.com", TEST_PASSWORD)
    wide = {}
    for path in ("/requests", "/requests?status=any", f"/requests/{req.id}", "/requests/new", "/sla/breaches",
                 "/dashboard", "/admin/users", "/admin/sla", "/admin/calendars", "/admin/categories",
                 "/admin/jobs", "/admin/status", "/admin/backups", "/admin/audit", "/exports", "/account",
                 "/account/security", "/canned-replies", "/notifications"):
        phone.goto(path)
        if _overflow(phone) > 1:
            wide[path] = _overflow(phone)
    assert not wide, f"pages wider than a 390 px phone (px past the edge): {wide}"

    phone.goto(f"/requests/{req.id}")
    panel = phone.locator(".detail-side, aside").first
    thread = phone.locator("#timeline, .timeline").first
    assert panel.bounding_box()["y"] < thread.bounding_box()["y"], "status and SLA come before the thread"
    expect(phone.locator("body")).to_contain_text("Sam Rivera with a rather long name")
    shoot(phone, "187-phone-request")
    phone.goto("/admin/users")
    shoot(phone, "188-phone-users")
