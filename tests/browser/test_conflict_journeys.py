"""Conflict journeys in a real browser: a change made from a stale tab is refused, never applied on top.

Every form on the request page posts the version it was rendered from. A stale change answers 409
with the current state of the whole page (out-of-band parts) and a calm message in the part that
was acted on, so the next click from that tab works.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser

# The same agent in two tabs: the notice says so instead of naming them to themselves.
CONFLICT_PARTS = ("You changed this in another tab or window", "here is the current state",
                  "Your change was not saved")


@pytest.fixture()
def desk(factories):
    """An agent, a requester and one open request."""
    agent = factories.make_user("agent", email="alex@example.com", name="Alex Agent")
    requester = factories.make_user("requester", email="riley@example.com", name="Riley Requester")
    req = factories.make_request(requester, title="Shared drive is read-only", category="access", priority="high",
                                 description="Since this morning I cannot save to S:\\Finance.")
    return {"agent": agent, "requester": requester, "request": req}


def two_tabs(page, req):
    """The agent signed in with the request open in `page` and in a second tab of the same session.

    Returns the second tab and the JavaScript errors it records (the `page` fixture checks its own).
    """
    sign_in(page, "alex@example.com", TEST_PASSWORD)
    page.goto(f"/requests/{req.id}")
    tab = page.context.new_page()
    tab.set_default_timeout(10_000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(f"/requests/{req.id}")
    return tab, errors


def expect_conflict_notice(part) -> None:
    """The calm "changed in another tab — here is the current state" notice at the top of `part`."""
    notice = part.locator(".flash").first
    for text in CONFLICT_PARTS:
        expect(notice).to_contain_text(text)
    expect(notice).to_have_class(re.compile(r"flash-warning"))


def current(factories, req):
    """The request as it is now in the database."""
    return factories.reload(req)


def expect_versions(page, version: int) -> None:
    """Every form on the page carries `version` (the page is current after one response)."""
    inputs = page.locator("input[name=version]")
    expect(inputs.first).to_be_attached()
    values = set(inputs.evaluate_all("els => els.map(e => e.value)"))
    assert values == {str(version)}, f"forms carry versions {values}, the request is at {version}"


def test_stale_tab_status_change_is_refused_and_shows_current_state(page, desk, factories, shoot):
    req = desk["request"]
    tab1 = page
    tab2, tab2_errors = two_tabs(page, req)
    expect(tab1.locator("#request-header")).to_contain_text("Open")
    tab1.evaluate("window.__noReload = true")

    # Tab 2 resolves the request.
    tab2.click("#request-panel button[data-status=resolved]")
    expect(tab2.locator("#request-panel")).to_contain_text("Status changed to resolved.")
    expect(tab2.locator("#request-header")).to_contain_text("Resolved")
    assert current(factories, req).status == "resolved"

    # Tab 1 still shows the open request and its "Start work" button.
    expect(tab1.locator("#request-header")).to_contain_text("Open")
    tab1.click("#request-panel button[data-status=in_progress]")

    panel = tab1.locator("#request-panel")
    expect_conflict_notice(panel)
    # The rest of the page came along out of band: tab 1 now shows the current state.
    expect(tab1.locator("#request-header .badges")).to_contain_text("Resolved")
    expect(tab1.locator("#request-header .badges")).not_to_contain_text("Open")
    expect(tab1.locator("#timeline")).to_contain_text("changed status")
    expect(panel.locator("button[data-status=in_progress]")).to_have_text("Reopen and work on it")
    expect(panel.locator("button[data-status=closed]")).to_be_visible()
    assert tab1.evaluate("window.__noReload") is True
    # Nothing was applied on top of the resolution.
    now = current(factories, req)
    assert now.status == "resolved"
    expect_versions(tab1, now.version)
    shoot(tab1, "30-stale-tab-conflict")

    # From the now-current panel the next click works.
    panel.locator("button[data-status=closed]").click()
    expect(panel).to_contain_text("Status changed to closed.")
    expect(panel).not_to_contain_text("here is the current state")
    expect(tab1.locator("#request-header .badges")).to_contain_text("Closed")
    expect(panel.locator("button[data-status=open]")).to_have_text("Reopen")
    assert tab1.evaluate("window.__noReload") is True
    now = current(factories, req)
    assert now.status == "closed"
    expect_versions(tab1, now.version)
    shoot(tab1, "31-stale-tab-retried")
    assert not tab2_errors, f"JavaScript errors in the second tab: {tab2_errors}"


def test_requester_edits_title_and_description(page, desk, factories, shoot):
    req = desk["request"]
    sign_in(page, "riley@example.com", TEST_PASSWORD)
    page.goto(f"/requests/{req.id}")
    page.evaluate("window.__noReload = true")
    description = page.locator("#request-description")

    editor = description.locator("details.edit-text")
    expect(page.locator("#edit-title")).to_be_hidden()
    editor.locator("summary").click()
    expect(page.locator("#edit-title")).to_have_value("Shared drive is read-only")
    page.fill("#edit-title", "Finance share on S: is read-only")
    page.fill("#edit-description", "Since 9:00 nobody in Finance can save to S:\\Finance; reading works.")
    shoot(page, "32-edit-text-open")
    description.locator("button:has-text('Save changes')").click()

    expect(description.locator(".flash-success")).to_contain_text("Title and description saved.")
    expect(page.locator("#request-header h1")).to_contain_text("Finance share on S: is read-only")
    expect(description.locator(".prose")).to_have_text(
        "Since 9:00 nobody in Finance can save to S:\\Finance; reading works.")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("renamed it")
    expect(timeline).to_contain_text("Finance share on S: is read-only")
    expect(timeline).to_contain_text("edited the description")
    assert page.evaluate("window.__noReload") is True
    now = current(factories, req)
    assert (now.title, now.description) == (
        "Finance share on S: is read-only", "Since 9:00 nobody in Finance can save to S:\\Finance; reading works.")
    expect_versions(page, now.version)
    shoot(page, "33-edit-text-saved")


def test_stale_edit_keeps_the_unsaved_text_and_shows_the_current_one(page, desk, factories, shoot):
    req = desk["request"]
    tab1 = page
    tab2, tab2_errors = two_tabs(page, req)
    for tab in (tab1, tab2):
        tab.click("#request-description details.edit-text summary")
        expect(tab.locator("#edit-title")).to_be_visible()
    tab1.evaluate("window.__noReload = true")

    # Tab 2 saves first.
    tab2.fill("#edit-title", "Finance share read-only after the storage migration")
    tab2.click("#request-description button:has-text('Save changes')")
    expect(tab2.locator("#request-description")).to_contain_text("Title and description saved.")
    expect(tab2.locator("#request-header h1")).to_contain_text("after the storage migration")

    # Tab 1 saves its own text, written against the old version.
    mine_title = "S: drive cannot be written to"
    mine_description = "Finance cannot save to S:\\Finance since 9:00. Other shares are fine."
    tab1.fill("#edit-title", mine_title)
    tab1.fill("#edit-description", mine_description)
    tab1.click("#request-description button:has-text('Save changes')")

    description = tab1.locator("#request-description")
    expect_conflict_notice(description)
    # The editor stays open with the unsaved text; the current text is shown above it.
    expect(description.locator("details.edit-text")).to_have_attribute("open", "")
    expect(description).to_contain_text("Your unsaved version is below; the text above is the current one.")
    expect(tab1.locator("#edit-title")).to_have_value(mine_title)
    expect(tab1.locator("#edit-description")).to_have_value(mine_description)
    expect(description.locator(".prose")).to_have_text("Since this morning I cannot save to S:\\Finance.")
    expect(tab1.locator("#request-header h1")).to_contain_text("Finance share read-only after the storage migration")
    expect(tab1.locator("#timeline")).to_contain_text("renamed it")
    assert tab1.evaluate("window.__noReload") is True
    now = current(factories, req)
    assert now.title == "Finance share read-only after the storage migration"
    expect_versions(tab1, now.version)
    shoot(tab1, "34-stale-edit-conflict")

    # Having checked, the agent saves again from the now-current editor: it is saved.
    tab1.click("#request-description button:has-text('Save changes')")
    expect(description.locator(".flash-success")).to_contain_text("Title and description saved.")
    expect(tab1.locator("#request-header h1")).to_contain_text(mine_title)
    expect(description.locator(".prose")).to_have_text(mine_description)
    now = current(factories, req)
    assert (now.title, now.description) == (mine_title, mine_description)
    shoot(tab1, "35-stale-edit-retried")
    assert not tab2_errors, f"JavaScript errors in the second tab: {tab2_errors}"


def test_stale_panel_change_leaves_the_text_editor_closed(page, desk):
    req = desk["request"]
    tab2, _ = two_tabs(page, req)
    tab2.click("#request-panel button[data-status=resolved]")
    expect(tab2.locator("#request-header")).to_contain_text("Resolved")

    page.click("#request-panel button[data-status=in_progress]")
    expect(page.locator("#request-panel")).to_contain_text("here is the current state")
    description = page.locator("#request-description")
    expect(description).not_to_contain_text("Your unsaved version is below", timeout=2_000)
    expect(description.locator("details.edit-text")).not_to_have_attribute("open", "", timeout=2_000)
