"""A brand-new requester's first visit: an inviting empty list, a form that makes them choose a
category, and then the requester's own tabs (Open, Closed) over their first request."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


def test_new_requester_raises_a_first_request(page, factories, shoot):
    factories.make_user("requester", email="noor@example.com", name="Noor Newcomer")
    factories.make_request(title="Someone else's printer")  # another requester's: not on Noor's list

    sign_in(page, "noor@example.com", TEST_PASSWORD)
    table = page.locator("#request-table")
    expect(table).to_contain_text("You have no requests yet")
    expect(table).not_to_contain_text("No requests match")
    expect(table).not_to_contain_text("Someone else's printer")
    expect(page.locator("nav.tabs")).to_have_count(0)
    shoot(page, "111-first-request-empty")

    page.click("#request-table a.button.primary:has-text('Raise your first request')")
    page.wait_for_url("**/requests/new")
    expect(page.locator("#category")).to_have_value("")
    expect(page.locator("#category option:checked")).to_have_text("Choose a category")

    page.fill("#title", "Cannot print to the 2nd floor printer")
    page.fill("#description", "Jobs stay queued, then vanish.")
    page.click("button:has-text('Create request')")
    category = page.locator(".field.has-error:has(#category)")
    expect(category).to_contain_text("Choose a category.")
    expect(page.locator(".field.has-error")).to_have_count(1)
    expect(page.locator("#title")).to_have_value("Cannot print to the 2nd floor printer")
    shoot(page, "112-new-request-no-category")

    page.select_option("#category", "hardware")
    page.click("button:has-text('Create request')")
    page.wait_for_url(re.compile(r".*/requests/\d+$"))
    expect(page.locator(".flash-success")).to_contain_text("was created")

    page.click(".mainnav a:text-is('Requests')")
    page.wait_for_url("**/requests")
    tabs = page.locator("nav.tabs a")
    expect(tabs).to_have_text(["All", "Open", "Closed"])
    page.click("nav.tabs >> text=Open")
    page.wait_for_url("**/requests?status=active")
    expect(page.locator("nav.tabs a[aria-current=page]")).to_have_text("Open")
    expect(page.locator("#request-table tbody tr")).to_have_count(1)
    expect(table).to_contain_text("Cannot print to the 2nd floor printer")
    shoot(page, "113-requester-tabs")

    page.click("nav.tabs >> text=Closed")
    expect(table).to_contain_text("No requests match these filters.")
    page.click("#request-table >> text=Clear the filters")
    expect(page.locator("#request-table tbody tr")).to_have_count(1)
