"""User journeys in a real browser: sign in, filter, open, comment, change status, admin users."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import go_to, sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture()
def helpdesk(factories):
    """An agent, a requester and a handful of requests."""
    agent = factories.make_user("agent", email="alex@example.com", name="Alex Agent")
    requester = factories.make_user("requester", email="riley@example.com", name="Riley Requester")
    reqs = [
        factories.make_request(requester, title="VPN disconnects every few minutes", category="network",
                               priority="high"),
        factories.make_request(requester, title="Laptop will not power on", category="hardware", priority="critical"),
        factories.make_request(requester, title="Install Visual Studio Code", category="software", priority="low"),
    ]
    return {"agent": agent, "requester": requester, "requests": reqs}


def test_agent_filters_list_without_page_load(page, helpdesk, shoot):
    sign_in(page, "alex@example.com", TEST_PASSWORD)
    expect(page.locator("#request-table tbody tr")).to_have_count(3)
    shoot(page, "01-request-list")

    # Mark the document: a full page load would lose this marker, an HTMX swap keeps it.
    page.evaluate("window.__noReload = true")
    page.select_option("#priority", "critical")
    expect(page.locator("#request-table tbody tr")).to_have_count(1)
    expect(page.locator("#request-table")).to_contain_text("Laptop will not power on")
    assert page.evaluate("window.__noReload") is True
    assert "priority=critical" in page.url

    page.fill("#q", "vpn")
    page.select_option("#priority", "")
    expect(page.locator("#request-table tbody tr")).to_have_count(1)
    expect(page.locator("#request-table")).to_contain_text("VPN disconnects")
    assert page.evaluate("window.__noReload") is True
    shoot(page, "02-request-list-filtered")

    # The pushed URL is shareable: a reload shows the same view.
    page.reload()
    expect(page.locator("#q")).to_have_value("vpn")
    expect(page.locator("#request-table tbody tr")).to_have_count(1)


def test_agent_works_a_request(page, helpdesk, shoot):
    target = helpdesk["requests"][0]
    sign_in(page, "alex@example.com", TEST_PASSWORD)
    page.click(f"text={target.title}")
    page.wait_for_url(re.compile(rf".*/requests/{target.id}\?list=.*"))  # opened from the list: it keeps the view
    expect(page.locator("#request-header")).to_contain_text("Open")
    page.evaluate("window.__noReload = true")

    page.click("text=Assign to me")
    expect(page.locator("#request-panel")).to_contain_text("You took this request.")
    expect(page.locator("#request-panel .facts")).to_contain_text("Alex Agent")

    page.fill("#body", "Thanks, I am looking at the VPN logs now.")
    page.click("#comment-form button:has-text('Send reply')")
    expect(page.locator("#comment-form")).to_contain_text("Your reply was added.")
    expect(page.locator("#timeline")).to_contain_text("I am looking at the VPN logs now.")
    expect(page.locator("#body")).to_have_value("")

    page.click("#request-panel button[data-status=in_progress]")
    expect(page.locator("#request-panel")).to_contain_text("Status changed to in progress.")
    expect(page.locator("#request-header")).to_contain_text("In progress")
    expect(page.locator("#timeline")).to_contain_text("changed status")
    expect(page.locator("#timeline")).to_contain_text("assigned it to Alex Agent")
    assert page.evaluate("window.__noReload") is True
    shoot(page, "03-request-detail-agent")


def test_requester_raises_a_request_and_cannot_close_it_unresolved(page, helpdesk, shoot, tmp_path):
    sign_in(page, "riley@example.com", TEST_PASSWORD)
    page.click("text=New request")
    page.click("button:has-text('Create request')")
    expect(page.locator(".field.has-error").first).to_be_visible()
    shoot(page, "04-new-request-errors")

    page.fill("#title", "Printer on 3rd floor jams")
    page.select_option("#category", "hardware")
    page.fill("#description", "Jams on every double-sided job.")
    log = tmp_path / "printer.log"
    log.write_text("E-42 paper jam tray 2\n")
    page.set_input_files("#attachments", str(log))
    page.click("button:has-text('Create request')")
    page.wait_for_url(re.compile(r".*/requests/\d+$"))
    expect(page.locator(".flash-success")).to_contain_text("was created")
    expect(page.locator(".description")).to_contain_text("printer.log")
    # A requester has no status control while the request is open.
    expect(page.locator("#request-panel button[name=status]")).to_have_count(0)
    shoot(page, "05-request-detail-requester")


def test_admin_creates_a_user(page, factories, shoot):
    factories.make_user("admin", email="ada@example.com", name="Ada Admin")
    sign_in(page, "ada@example.com", TEST_PASSWORD)
    go_to(page, "Users")
    page.fill("#name", "Sam Rivera")
    page.fill("#email", "sam@example.com")
    page.select_option("#role", "agent")
    page.fill("#password", "a-long-enough-password")
    page.click("button:has-text('Create user')")
    expect(page.locator("#users-admin")).to_contain_text("Sam Rivera (sam@example.com) can now sign in as agent.")
    expect(page.locator("#users-admin table")).to_contain_text("sam@example.com")
    shoot(page, "06-admin-users")


def test_phone_layout_is_readable(browser, live_server, helpdesk, shoot):
    context = browser.new_context(base_url=live_server, viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    sign_in(page, "alex@example.com", TEST_PASSWORD)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the list scrolls sideways on a phone ({width}px wide)"
    shoot(page, "07-request-list-phone")
    context.close()


def test_admin_adds_a_category(page, factories, shoot):
    factories.make_user("admin", email="ada@example.com", name="Ada Admin")
    sign_in(page, "ada@example.com", TEST_PASSWORD)
    go_to(page, "SLA setup")
    page.click("a:has-text('Categories')")
    page.fill("#name", "Facilities")
    page.fill("#code", "facilities")
    page.click("button:has-text('Add category')")
    expect(page.locator("#categories-admin .flash-success")).to_contain_text("Category Facilities added")
    expect(page.locator("#categories-admin table")).to_contain_text("facilities")
    shoot(page, "08-admin-categories")
    page.click("text=New request")
    expect(page.locator("#category option[value=facilities]")).to_have_count(1)


def test_journeys_run_with_csrf_checking_on(page, helpdesk):
    """The harness turns CSRF on: a post without the token is refused, so the journeys exercise the real one."""
    target = helpdesk["requests"][0]
    sign_in(page, "alex@example.com", TEST_PASSWORD)
    response = page.request.post(f"/requests/{target.id}/status", form={"status": "in_progress"})
    assert response.status == 400
    assert "The form expired" in response.text()
    page.goto(f"/requests/{target.id}")
    expect(page.locator("#request-header")).to_contain_text("Open")
