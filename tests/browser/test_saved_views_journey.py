"""Saved views: an agent filters the list, saves it as a view and finds it as a tab; a manager shares a
view with the team and the agent gets that tab too; the views page renames, shares and deletes (asking
first); on a phone the tabs scroll in their own row and nothing else scrolls sideways."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser

CURRENT_TAB = "nav.tabs a[aria-current=page]"

# The elements reaching past the phone's right edge (outermost first), for a failure message.
WIDEST = """() => [...document.querySelectorAll("body *")]
    .filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
    .slice(0, 5).map(el => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${el.className}`
                           + ` (${Math.round(el.getBoundingClientRect().right)} px)`)"""


def test_agent_saves_a_view_and_a_manager_shares_one_with_the_team(browser, live_server, page, factories, shoot):
    factories.make_user("agent", email="sam@example.com", name="Sam Rivera")
    factories.make_user("manager", email="maya@example.com", name="Maya Manager")
    noor = factories.make_user("requester", name="Noor Patel")
    for title, priority, category in (("Laptop will not boot", "critical", "hardware"),
                                      ("Badge reader offline", "high", "hardware"),
                                      ("VPN drops every hour", "high", "network"),
                                      ("Projector bulb", "high", "hardware"),
                                      ("Font request", "low", "software"),
                                      ("Monitor arm broken", "medium", "hardware")):
        factories.make_request(noor, title=title, priority=priority, category=category)

    # The agent narrows the open work to high priority, oldest first (the table answers by HTMX) ...
    sign_in(page, "sam@example.com", TEST_PASSWORD)
    rows = page.locator("#request-table tbody tr")
    expect(rows).to_have_count(6)
    page.select_option("#priority", "high")
    expect(rows).to_have_count(3)
    page.select_option("#sort", "oldest")
    expect(page.locator("#request-table .count")).to_contain_text("Oldest first")
    expect(rows.first).to_contain_text("Badge reader offline")
    expect(page.locator(CURRENT_TAB)).to_have_count(0)   # no tab shows exactly this any more
    # ... and saves it under a name: the view opens as the current tab.
    page.click("details.save-view > summary")
    page.fill("#view-name", "High, oldest first")
    shoot(page, "200-save-view-form")
    page.click("#save-view-form button:has-text('Save view')")
    page.wait_for_url(re.compile(r".*/requests\?status=active&priority=high&sort=oldest$"))
    expect(page.locator(".flash-success")).to_contain_text("View “High, oldest first” saved")
    expect(page.locator(CURRENT_TAB)).to_have_text("High, oldest first")
    expect(rows).to_have_count(3)
    shoot(page, "201-saved-view-tab")

    # Another tab and back: the view brings its filters and sort with it.
    page.click("nav.tabs >> text=All")
    page.wait_for_url("**/requests?status=any")
    expect(rows).to_have_count(6)
    page.click("nav.tabs a.saved-tab:has-text('High, oldest first')")
    expect(page.locator(CURRENT_TAB)).to_have_text("High, oldest first")
    expect(page.locator("#priority")).to_have_value("high")
    expect(page.locator("#sort")).to_have_value("oldest")
    expect(rows).to_have_count(3)

    # The same name again is refused beside the field, with the way to update that view instead.
    page.select_option("#category", "network")
    expect(rows).to_have_count(1)
    page.click("details.save-view > summary")
    page.fill("#view-name", "high, OLDEST first")
    page.click("#save-view-form button:has-text('Save view')")
    expect(page.locator("#save-view-form .error")).to_have_text(
        "You already have a view called “High, oldest first”; choose another name.")
    expect(page.locator("#save-view-form button:has-text('Update “High, oldest first”')")).to_be_visible()
    shoot(page, "202-save-view-name-taken")
    page.fill("#view-name", "Network high")
    page.click("#save-view-form button:has-text('Save view')")
    page.wait_for_url(re.compile(r".*category=network.*"))
    expect(page.locator(CURRENT_TAB)).to_have_text("Network high")

    # The manager saves the critical work and shares it from the views page.
    manager_context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860})
    maya = manager_context.new_page()
    sign_in(maya, "maya@example.com", TEST_PASSWORD)
    maya.select_option("#priority", "critical")
    expect(maya.locator("#request-table tbody tr")).to_have_count(1)
    maya.click("details.save-view > summary")
    maya.fill("#view-name", "Escalations")
    maya.click("#save-view-form button:has-text('Save view')")
    expect(maya.locator(CURRENT_TAB)).to_have_text("Escalations")
    maya.click("details.save-view > summary")
    maya.click("#save-view-form a:has-text('Manage views')")
    maya.wait_for_url("**/requests/views")
    row = maya.locator(".view-list li", has_text="Escalations")
    expect(row).to_contain_text("Priority: Critical")
    row.get_by_role("button", name="Share with the team").click()
    expect(maya.locator("#saved-views .flash-success")).to_contain_text("everyone on the team has it as a tab now")
    expect(row.locator(".badge.shared")).to_have_text("Shared with the team")
    shoot(maya, "203-manager-views-page-shared")

    # The agent now has the team's tab, saying who shared it.
    page.goto("/requests")
    shared_tab = page.locator("nav.tabs a.saved-tab", has_text="Escalations")
    expect(shared_tab).to_have_attribute("title", "Shared by Maya Manager")
    expect(shared_tab).to_contain_text("Maya")
    shared_tab.click()
    expect(page.locator(CURRENT_TAB)).to_contain_text("Escalations")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Laptop will not boot")
    shoot(page, "204-agent-sees-shared-view")

    # The agent's views page: their two to rename or delete, the team's one to open.
    page.goto("/requests/views")
    expect(page.locator(".view-list").first.locator("li")).to_have_count(2)
    expect(page.locator("#saved-views")).to_contain_text("Shared by Maya Manager")
    expect(page.get_by_role("button", name="Share with the team")).to_have_count(0)
    mine = page.locator(".view-list li", has_text="Network high")
    mine.locator("input[name=name]").fill("Network, high")
    mine.get_by_role("button", name="Rename").click()
    expect(page.locator("#saved-views .flash-success")).to_have_text("View renamed to “Network, high”.")
    page.locator(".view-list li", has_text="Network, high").get_by_role("button", name="Delete").click()
    confirm = page.locator(".view-list li.confirming")
    expect(confirm).to_contain_text("Delete the view Network, high?")
    shoot(page, "205-agent-views-page-delete-asks")
    confirm.get_by_role("button", name="Delete view").click()
    expect(page.locator("#saved-views .flash-success")).to_have_text("View “Network, high” deleted.")
    expect(page.locator(".view-list").first.locator("li")).to_have_count(1)

    # A rename from a page opened before the manager's own rename elsewhere is refused, not applied.
    maya.goto("/requests/views")
    stale_row = maya.locator(".view-list li", has_text="Escalations")
    other_tab = manager_context.new_page()
    other_tab.goto("/requests/views")
    other_tab.locator(".view-list li", has_text="Escalations").locator("input[name=name]").fill("Critical now")
    other_tab.get_by_role("button", name="Rename").click()
    expect(other_tab.locator("#saved-views .flash-success")).to_contain_text("Critical now")
    stale_row.locator("input[name=name]").fill("Fires")
    stale_row.get_by_role("button", name="Rename").click()
    expect(maya.locator("#saved-views .flash-warning")).to_contain_text("You changed this in another tab or window")
    expect(maya.locator(".view-list li a.view-name")).to_have_text(["Critical now"])
    shoot(maya, "206-manager-stale-rename")
    manager_context.close()


def test_saved_view_tabs_on_a_phone(browser, live_server, factories, shoot):
    from portal.services import saved_views

    sam = factories.make_user("agent", email="sam@example.com", name="Sam Rivera")
    maya = factories.make_user("manager", name="Maya Manager")
    noor = factories.make_user("requester", name="Noor Patel")
    for title in ("Laptop will not boot", "VPN drops every hour"):
        factories.make_request(noor, title=title, priority="high")
    for name, query in (("High priority", "status=active&priority=high"), ("Network", "status=any&category=network"),
                        ("Waiting on the customer", "status=waiting_on_customer")):
        saved_views.create_saved_view(sam, name, query)
    shared = saved_views.create_saved_view(maya, "Escalations", "status=active&priority=critical")
    saved_views.set_saved_view_shared(maya, shared.id, True, shared.version)

    context = browser.new_context(base_url=live_server, viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    sign_in(page, "sam@example.com", TEST_PASSWORD)
    page.click("nav.tabs a.saved-tab:has-text('High priority')")
    expect(page.locator(CURRENT_TAB)).to_have_text("High priority")
    page.wait_for_load_state("networkidle")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the list scrolls sideways on a phone ({width}px wide): {page.evaluate(WIDEST)}"
    # The tabs scroll in their own row instead.
    assert page.evaluate("(nav => nav.scrollWidth > nav.clientWidth)(document.querySelector('nav.tabs'))")
    shoot(page, "207-phone-saved-view-tabs")
    page.click("details.save-view > summary")
    expect(page.locator("#view-name")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the Save view panel scrolls the page sideways ({width}px wide)"
    shoot(page, "208-phone-save-view-panel")
    page.keyboard.press("Escape")
    expect(page.locator("#view-name")).to_be_hidden()
    page.goto("/requests/views")
    expect(page.locator(".view-list li")).to_have_count(4)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the views page scrolls sideways on a phone ({width}px wide)"
    shoot(page, "209-phone-views-page")
    context.close()
