"""The request list at scale, in a browser: search with the matched words marked, and paging by
position (First · Previous · Next · Last) without a page load."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture()
def long_list(app, factories):
    agent = factories.make_user("agent", email="pat@example.com", name="Pat Agent")
    requester = factories.make_user("requester", email="sam@example.com", name="Sam Requester")
    titles = [f"Printer on floor {n} jams" if n % 4 == 0 else f"Laptop {n} needs a new battery" for n in range(1, 13)]
    made = [factories.make_request(requester, title=t, description="Reported at the front desk.") for t in titles]
    old = app.config["PER_PAGE"]
    app.config["PER_PAGE"] = 5
    yield {"agent": agent, "requests": made}
    app.config["PER_PAGE"] = old


def _titles(page) -> list[str]:
    return page.locator("#request-table tbody td.title a").all_inner_texts()


def test_agent_searches_and_pages_through_a_long_list(page, long_list, shoot):
    newest_first = [r.title for r in reversed(long_list["requests"])]
    sign_in(page, "pat@example.com", TEST_PASSWORD)
    page.goto("/requests?sort=newest")  # the open work, newest first (not the queue's due order)
    expect(page.locator("#request-table .count")).to_contain_text("12 requests")
    assert _titles(page) == newest_first[:5]
    pager = page.locator("nav.pager")
    expect(pager.locator("span", has_text="Previous")).to_be_visible()  # nothing before the first page

    page.evaluate("window.__noReload = true")
    pager.get_by_role("link", name="Next →").click()
    expect(page.locator("#request-table tbody tr").first).to_contain_text(newest_first[5])
    assert _titles(page) == newest_first[5:10]
    assert "after=" in page.url and page.evaluate("window.__noReload") is True

    page.locator("nav.pager").get_by_role("link", name="Last »").click()
    expect(page.locator("#request-table tbody tr").last).to_contain_text(newest_first[-1])
    assert _titles(page) == newest_first[-5:]
    expect(page.locator("nav.pager span", has_text="Next")).to_be_visible()
    shoot(page, "104-request-list-last-page")

    page.locator("nav.pager").get_by_role("link", name="← Previous").click()
    expect(page.locator("#request-table tbody tr").first).to_contain_text(newest_first[2])
    page.locator("nav.pager").get_by_role("link", name="« First").click()
    expect(page.locator("#request-table tbody tr").first).to_contain_text(newest_first[0])

    page.select_option("#sort", "")       # back to the default order: a search then ranks by best match
    page.fill("#q", "print")
    expect(page.locator("#request-table tbody tr")).to_have_count(3)
    marks = page.locator("#request-table tbody mark")
    expect(marks.first).to_have_text("Printer")
    expect(page.locator("#request-table .count")).to_contain_text("3 requests")
    expect(page.locator("#sort")).to_have_value("")  # best match while searching
    shoot(page, "105-request-search-marked")
