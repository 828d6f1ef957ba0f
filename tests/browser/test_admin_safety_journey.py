"""Admin safety in a real browser: role changes and deactivations ask first, inline in their row; the
audit page shows who changed what, and undoes a change (asking first) unless someone changed it since."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal.policy import SYSTEM
from portal.services import sla_admin, users
from tests.browser.conftest import go_to, sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture()
def office(factories):
    """Ada (the only admin), Sam (an agent), Ben (a manager) and an SLA definition."""
    ada = factories.make_user("admin", email="ada@example.com", name="Ada Admin")
    sam = factories.make_user("agent", email="sam@example.com", name="Sam Rivera")
    factories.make_user("manager", email="ben@example.com", name="Ben Okafor")
    definition = sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "high",
                                                      "response_time_hours": 1, "resolution_time_hours": 8})
    return {"ada": ada, "sam": sam, "definition": definition}


def row_of(page, name: str):
    return page.locator("#users-admin tbody tr", has_text=name)


def test_role_change_and_deactivation_ask_first_in_the_row(page, office, factories, shoot):
    sam = office["sam"]
    sign_in(page, "ada@example.com", TEST_PASSWORD)
    go_to(page, "Users")
    page.evaluate("window.__noReload = true")

    # Choosing another role saves nothing by itself.
    page.select_option(f"#role-{sam.id}", "manager")
    page.wait_for_timeout(300)
    assert factories.reload(sam).role == "agent"

    row_of(page, "Sam Rivera").get_by_role("button", name="Change the role of Sam Rivera").click()
    confirming = page.locator(f"#user-{sam.id}.confirming")
    expect(confirming).to_contain_text("Change Sam Rivera from agent to manager?")
    expect(confirming.get_by_role("button", name="Confirm")).to_be_focused()
    assert factories.reload(sam).role == "agent"
    shoot(page, "160-admin-safety-role-confirm")

    confirming.get_by_role("link", name="Cancel").click()
    expect(page.locator("#users-admin .confirming")).to_have_count(0)
    expect(page.locator(f"#role-{sam.id}")).to_have_value("agent")

    page.select_option(f"#role-{sam.id}", "manager")
    row_of(page, "Sam Rivera").get_by_role("button", name="Change the role of Sam Rivera").click()
    page.locator(f"#user-{sam.id}.confirming").get_by_role("button", name="Confirm").click()
    expect(page.locator("#users-admin .flash-success")).to_contain_text("Sam Rivera is now manager.")
    expect(page.locator(f"#role-{sam.id}")).to_have_value("manager")

    # Deactivation asks too.
    row_of(page, "Sam Rivera").get_by_role("button", name="Deactivate").click()
    confirming = page.locator(f"#user-{sam.id}.confirming")
    expect(confirming).to_contain_text("Deactivate Sam Rivera (sam@example.com)?")
    shoot(page, "161-admin-safety-deactivate-confirm")
    confirming.get_by_role("button", name="Confirm").click()
    expect(page.locator("#users-admin .flash-success")).to_contain_text("Sam Rivera was deactivated")
    expect(row_of(page, "Sam Rivera")).to_contain_text("Inactive")
    assert factories.reload(sam).active is False

    # The last admin: the refusal shows before any Confirm.
    page.select_option(f"#role-{office['ada'].id}", "agent")
    row_of(page, "Ada Admin").get_by_role("button", name="Change the role of Ada Admin").click()
    refused = page.locator(f"#user-{office['ada'].id}.refused")
    expect(refused).to_contain_text("The last active admin must stay an admin.")
    expect(refused.get_by_role("button", name="Confirm")).to_have_count(0)
    shoot(page, "162-admin-safety-last-admin-refused")
    refused.get_by_role("link", name="Back to the list").click()
    expect(page.locator("#users-admin .refused")).to_have_count(0)
    assert page.evaluate("window.__noReload") is True


def test_sla_definition_deactivation_asks_first(page, office, factories, shoot):
    sign_in(page, "ada@example.com", TEST_PASSWORD)
    go_to(page, "SLA setup")
    page.evaluate("window.__noReload = true")
    # The edit row of an active definition has no Active box: deactivating is the list's button, which asks.
    page.locator("#sla-admin tbody tr", has_text="Hardware").get_by_role("link", name="Edit").click()
    editing = page.locator("#sla-admin tr.editing")
    expect(editing).to_contain_text("To deactivate it, use Deactivate in the list: it asks first.")
    expect(editing.locator("input[name='edit-is_active']")).to_have_count(0)
    shoot(page, "171-admin-safety-sla-edit-active")
    editing.get_by_role("link", name="Cancel").click()
    expect(page.locator("#sla-admin tr.editing")).to_have_count(0)
    page.locator("#sla-admin tbody tr", has_text="Hardware").get_by_role("button", name="Deactivate").click()
    confirming = page.locator(f"#definition-{office['definition'].id}.confirming")
    expect(confirming).to_contain_text("Deactivate Hardware / high?")
    shoot(page, "163-admin-safety-sla-deactivate-confirm")
    confirming.get_by_role("button", name="Confirm").click()
    expect(page.locator("#sla-admin .flash-success")).to_contain_text("hardware / high is now inactive.")
    expect(page.locator("#sla-admin tbody tr", has_text="Hardware")).to_contain_text("Inactive")
    assert page.evaluate("window.__noReload") is True


def test_audit_page_shows_changes_and_undoes_them(page, office, factories, shoot):
    ada, sam = office["ada"], office["sam"]
    users.change_role(ada, sam.id, "manager")
    users.set_active(ada, sam.id, False)
    sla_admin.set_definition_active(ada, office["definition"].id, False)
    sign_in(page, "ada@example.com", TEST_PASSWORD)
    go_to(page, "Audit log")
    expect(page.locator("h1")).to_have_text("Audit log")
    expect(page.locator("#audit-log tbody tr").first).to_contain_text("SLA definition deactivated")
    shoot(page, "164-admin-safety-audit-log")
    page.evaluate("window.__noReload = true")

    role_row = page.locator("#audit-log tbody tr", has_text="Role changed")
    expect(role_row).to_contain_text("Agent → Manager")
    role_row.get_by_role("button", name="Change back to agent").click()
    confirming = page.locator("#audit-log tr.confirming")
    expect(confirming).to_contain_text("Change Sam Rivera back from manager to agent?")
    shoot(page, "165-admin-safety-undo-confirm")
    confirming.get_by_role("button", name="Confirm").click()
    expect(page.locator("#audit-log .flash-success")).to_contain_text("Sam Rivera is agent again.")
    newest = page.locator("#audit-log tbody tr").first
    expect(newest).to_contain_text("Ada Admin")
    expect(newest).to_contain_text("Manager → Agent")
    shoot(page, "166-admin-safety-undo-done")
    assert factories.reload(sam).role == "agent"

    # Filter to the accounts, then reactivate Sam from the deactivation.
    page.select_option("#entity_type", "user")
    expect(page.locator("#audit-log")).not_to_contain_text("SLA definition deactivated")
    assert "entity_type=user" in page.url
    page.locator("#audit-log tbody tr", has_text="Account deactivated").get_by_role("button",
                                                                                     name="Reactivate").click()
    page.locator("#audit-log tr.confirming").get_by_role("button", name="Confirm").click()
    expect(page.locator("#audit-log .flash-success")).to_contain_text("Sam Rivera was reactivated.")
    expect(page.locator("#entity_type")).to_have_value("user")
    assert factories.reload(sam).active is True
    assert page.evaluate("window.__noReload") is True

    # The same undo again: the state no longer matches, and the row says so before any Confirm.
    page.locator("#audit-log tbody tr", has_text="Account deactivated").get_by_role("button",
                                                                                     name="Reactivate").click()
    expect(page.locator("#audit-log tr.refused")).to_contain_text("Sam Rivera is active now, not deactivated")
    shoot(page, "167-admin-safety-undo-refused")


def test_two_admins_undo_the_same_change_one_is_told_it_changed(browser, live_server, page, office, factories,
                                                                 shoot):
    ada, sam = office["ada"], office["sam"]
    factories.make_user("admin", email="ben.admin@example.com", name="Ben Admin")
    users.change_role(ada, sam.id, "manager")
    sign_in(page, "ada@example.com", TEST_PASSWORD)
    other = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860})
    ben = other.new_page()
    ben.set_default_timeout(10_000)
    sign_in(ben, "ben.admin@example.com", TEST_PASSWORD)
    for tab in (page, ben):
        tab.goto("/admin/audit?action=user.role_changed")
        tab.get_by_role("button", name="Change back to agent").click()
        expect(tab.locator("#audit-log tr.confirming")).to_contain_text("Change Sam Rivera back")
    page.locator("#audit-log tr.confirming").get_by_role("button", name="Confirm").click()
    expect(page.locator("#audit-log .flash-success")).to_contain_text("Sam Rivera is agent again.")
    ben.locator("#audit-log tr.confirming").get_by_role("button", name="Confirm").click()
    notice = ben.locator("#audit-log .flash-error")
    expect(notice).to_contain_text("Sam Rivera is agent now, not manager: Ada Admin changed it on")
    expect(notice).to_contain_text("Nothing was changed.")
    # Ben's list is current now: Ada's undo is on top.
    expect(ben.locator("#audit-log tbody tr").first).to_contain_text("Ada Admin")
    shoot(ben, "168-admin-safety-undo-race-refused")
    other.close()
    assert factories.reload(sam).role == "agent"


def test_without_javascript_the_same_questions_come_as_pages(browser, live_server, office, factories, shoot):
    sam = office["sam"]
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860},
                                  java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, "ada@example.com", TEST_PASSWORD)
    page.goto("/admin/users")
    page.select_option(f"#role-{sam.id}", "manager")
    row_of(page, "Sam Rivera").get_by_role("button", name="Change the role of Sam Rivera").click()
    expect(page.locator(f"#user-{sam.id}.confirming")).to_contain_text("Change Sam Rivera from agent to manager?")
    shoot(page, "169-admin-safety-no-js-confirm")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(re.compile(r".*/admin/users$"))
    expect(page.locator(".flash-success")).to_contain_text("Sam Rivera is now manager.")

    page.goto("/admin/audit")
    page.locator("#audit-log tbody tr", has_text="Role changed").get_by_role("button",
                                                                            name="Change back to agent").click()
    expect(page.locator("#audit-log tr.confirming")).to_contain_text("Change Sam Rivera back from manager to agent?")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(re.compile(r".*/admin/audit$"))
    expect(page.locator(".flash-success")).to_contain_text("Sam Rivera is agent again.")
    context.close()
    assert factories.reload(sam).role == "agent"


def test_audit_page_on_a_phone(browser, live_server, office, shoot):
    ada, sam = office["ada"], office["sam"]
    users.change_role(ada, sam.id, "manager")
    users.set_active(ada, sam.id, False)
    context = browser.new_context(base_url=live_server, viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    sign_in(page, "ada@example.com", TEST_PASSWORD)
    page.goto("/admin/audit")
    expect(page.locator("#audit-log tbody tr").first).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the audit log scrolls sideways on a phone ({width}px wide)"
    shoot(page, "170-admin-safety-audit-phone")
    context.close()
