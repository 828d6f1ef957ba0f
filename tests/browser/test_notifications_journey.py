"""@mentions and the bell in a real browser (issue #12): Alex writes an internal note naming Bea
(completing her name from "@be"); Bea sees the bell's count, opens her notifications, follows the
link to the note, and the count drops. Then the phone: the bar still fits 390 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import axe_violations, format_violations, sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture()
def desk(factories):
    alex = factories.make_user("agent", email="alex@example.com", name="Alex Agent")
    bea = factories.make_user("agent", email="bea.stone@example.com", name="Bea Stone")
    factories.make_user("manager", email="ben@example.com", name="Ben Bauer")
    riley = factories.make_user("requester", email="riley@example.com", name="Riley Requester")
    req = factories.make_request(riley, title="VPN drops every few minutes", category="network", priority="high",
                                 description="Since Monday the VPN disconnects every five minutes or so.")
    return {"alex": alex, "bea": bea, "req": req}


def test_a_mention_reaches_the_bell_and_reading_it_clears_the_count(browser, live_server, desk, shoot):
    req = desk["req"]
    alex = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860}).new_page()
    alex.set_default_timeout(10_000)
    sign_in(alex, "alex@example.com", TEST_PASSWORD)
    alex.goto(f"/requests/{req.id}")
    composer = alex.locator("#comment-form")
    composer.locator("label[for=composer-mode-note]").click()
    body = composer.locator("textarea[name=body]")
    body.click()
    body.press_sequentially("Could @be")
    suggestions = alex.locator("#composer-mentions")
    expect(suggestions).to_be_visible()
    expect(suggestions.locator("[role=option]")).to_have_count(2)  # Bea Stone, and Ben Bauer's "be"
    expect(suggestions.locator("[aria-selected=true]")).to_contain_text("Bea Stone")
    expect(body).to_have_attribute("aria-controls", "composer-mentions")   # the open list, said to screen readers
    expect(body).to_have_attribute("aria-activedescendant", "composer-mention-0")
    assert not axe_violations(alex), format_violations(axe_violations(alex), "the composer offering names")
    shoot(alex, "220-mention-completion")
    body.press("Enter")
    expect(suggestions).to_be_hidden()
    assert body.get_attribute("aria-controls") is None
    expect(body).to_have_value("Could @Bea Stone ")
    body.press_sequentially("check the tunnel logs from Monday?")
    composer.get_by_role("button", name="Add internal note").click()
    note = alex.locator(".timeline .entry.comment.internal").last
    expect(note.locator("strong.mention")).to_have_text("@Bea Stone")
    shoot(alex, "221-note-with-mention")
    alex.context.close()

    bea = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860}).new_page()
    bea.set_default_timeout(10_000)
    sign_in(bea, "bea.stone@example.com", TEST_PASSWORD)
    bell = bea.locator("header.topbar a.bell")
    expect(bell).to_have_attribute("aria-label", "Notifications, 1 unread")
    expect(bell.locator(".bell-count")).to_have_text("1")
    shoot(bea, "222-bell-with-count")
    bell.click()
    bea.wait_for_url("**/notifications")
    item = bea.locator(".notification.unread")
    expect(item).to_have_count(1)
    expect(item).to_contain_text(f"Alex Agent mentioned you on #{req.id} VPN drops every few minutes")
    expect(item).to_contain_text("check the tunnel logs")
    shoot(bea, "223-notifications-list")
    item.locator("a").click()
    bea.wait_for_url(f"**/requests/{req.id}#comment-*")
    expect(bea.locator(".timeline .entry.comment.internal strong.mention")).to_have_text("@Bea Stone")
    expect(bell).to_have_attribute("aria-label", "Notifications, none unread")
    expect(bell.locator(".bell-count")).to_have_count(0)
    shoot(bea, "224-request-after-reading")
    bea.goto("/notifications")
    expect(bea.locator(".notification.unread")).to_have_count(0)
    expect(bea.locator(".notification")).to_have_count(1)
    bea.context.close()


def test_mark_all_read_with_htmx_updates_the_bell(browser, live_server, desk, factories, shoot):
    from portal.services import requests as svc

    req, alex = desk["req"], desk["alex"]
    for n in range(3):
        svc.add_comment(alex, req.id, f"@bea.stone update {n + 1}", internal=True)
    phone = browser.new_context(base_url=live_server, viewport={"width": 390, "height": 844}, is_mobile=True,
                                has_touch=True).new_page()
    phone.set_default_timeout(10_000)
    sign_in(phone, "bea.stone@example.com", TEST_PASSWORD)
    phone.goto("/notifications")
    bell = phone.locator("header.topbar a.bell")
    expect(bell).to_have_attribute("aria-label", "Notifications, 3 unread")
    width = phone.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert width <= 1, f"the bar reaches {width} px past a 390 px phone"
    shoot(phone, "225-phone-notifications")
    phone.get_by_role("button", name="Mark all read").click()
    expect(phone.locator(".flash")).to_contain_text("Marked 3 notifications read.")
    expect(bell).to_have_attribute("aria-label", "Notifications, none unread")
    expect(phone.locator(".notification.unread")).to_have_count(0)
    expect(phone.get_by_role("button", name="Mark all read")).to_have_count(0)  # nothing left to mark
    expect(bell).to_have_attribute("aria-current", "page")  # the bell swapped in still says where you are
    shoot(phone, "226-phone-all-read")
    phone.context.close()
