"""A request with 500 timeline entries in a real browser (issue #11): the first and the newest shown,
the middle behind "Show N older events" that HTMX loads a page at a time, and the same link working
without JavaScript; a requester's view never counts or shows internal notes."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal.services.requests.timeline import NEWEST_SHOWN, OLDER_PAGE
from tests.browser.conftest import SCREENSHOTS, sign_in
from tests.conftest import TEST_PASSWORD
from tests.web.test_long_timeline import seed_history

pytestmark = pytest.mark.browser


@pytest.fixture()
def long_request(app, factories):
    agent = factories.make_user("agent", email="alex@example.com", name="Alex Agent")
    requester = factories.make_user("requester", email="riley@example.com", name="Riley Requester")
    req = factories.make_request(requester, title="Laptop reboots during video calls", category="hardware")
    seen = seed_history(app, req.id, agent.id, requester.id)
    return req.id, seen


def _entries(page):
    return page.locator("#timeline > li.entry")


def test_agent_opens_older_events_a_page_at_a_time(page, long_request, shoot):
    request_id, seen = long_request
    staff = seen["staff"]
    sign_in(page, "alex@example.com", TEST_PASSWORD)
    page.goto(f"/requests/{request_id}")
    gap = page.locator("#timeline-gap a")
    hidden = len(staff) - 1 - NEWEST_SHOWN
    expect(gap).to_have_text(f"Show {hidden} older events")
    expect(_entries(page)).to_have_count(1 + NEWEST_SHOWN)
    expect(_entries(page).first).to_contain_text("raised this request")
    expect(_entries(page).last).to_contain_text(staff[-1])
    shoot(page, "100-long-timeline-collapsed")

    page.evaluate("window.__noReload = true")
    gap.click()
    expect(_entries(page)).to_have_count(1 + NEWEST_SHOWN + OLDER_PAGE)
    expect(gap).to_have_text(f"Show {hidden - OLDER_PAGE} older events")
    expect(page.locator("#timeline")).to_contain_text(staff[-NEWEST_SHOWN - OLDER_PAGE])
    assert page.evaluate("window.__noReload") is True  # HTMX swapped the gap; no navigation
    assert "before=" not in page.url
    # Where the reader is: the smaller gap above the page it just loaded.
    page.locator("#timeline-gap").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "101-long-timeline-older-loaded.png"))

    # The rest, page by page, until the gap is gone and every entry is there once.
    while page.locator("#timeline-gap").count():
        before = _entries(page).count()
        gap.click()
        expect(_entries(page)).not_to_have_count(before)
    expect(_entries(page)).to_have_count(len(staff))
    texts = _entries(page).all_inner_texts()
    assert all(marker in text for marker, text in zip(staff, texts, strict=True))


def test_requester_sees_no_internal_notes_in_any_page(browser, live_server, long_request, shoot):
    request_id, seen = long_request
    theirs = seen["requester"]
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    try:
        sign_in(page, "riley@example.com", TEST_PASSWORD)
        page.goto(f"/requests/{request_id}")
        gap = page.locator("#timeline-gap a")
        expect(gap).to_have_text(f"Show {len(theirs) - 1 - NEWEST_SHOWN} older events")
        shoot(page, "102-long-timeline-requester")
        while page.locator("#timeline-gap").count():
            before = _entries(page).count()
            gap.click()
            expect(_entries(page)).not_to_have_count(before)
        expect(_entries(page)).to_have_count(len(theirs))
        text = page.locator("#timeline").inner_text()
        assert "Secret note" not in text and "Internal note" not in text and "Vendor delay" not in text
    finally:
        context.close()


def test_without_javascript_the_link_shows_a_page_more(browser, live_server, long_request, shoot):
    request_id, seen = long_request
    staff = seen["staff"]
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860},
                                  java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, "alex@example.com", TEST_PASSWORD)
        page.goto(f"/requests/{request_id}")
        hidden = len(staff) - 1 - NEWEST_SHOWN
        page.click("#timeline-gap a")
        page.wait_for_url(re.compile(r"\?before=(event|comment|sla)-\d+#timeline-gap$"))
        expect(_entries(page)).to_have_count(1 + NEWEST_SHOWN + OLDER_PAGE)
        expect(page.locator("#timeline-gap a")).to_have_text(f"Show {hidden - OLDER_PAGE} older events")
        page.screenshot(path=str(SCREENSHOTS / "103-long-timeline-no-js.png"))  # at #timeline-gap
    finally:
        context.close()
