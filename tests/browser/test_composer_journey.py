"""The composer in a real browser: reply or internal note, a canned reply inserted at the cursor,
"Send and <status>" in one step, a colleague's change refused without losing the text, and the same
page without JavaScript; then the canned replies library."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal.services import canned_replies
from portal.services import requests as svc
from tests.browser.conftest import sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser

NOTE_GROUND = "rgb(255, 250, 240)"  # the pale yellow of internal notes, in the timeline and the composer
GREETING = ("Hello {requester_name},\n\nplease restart the router and tell me if {request_number} is fixed.\n\n"
            "{agent_name}")


@pytest.fixture()
def desk(factories):
    """Alex and Sam (agents), Riley's request about the VPN, and a canned reply Sam wrote."""
    alex = factories.make_user("agent", email="alex@example.com", name="Alex Agent")
    sam = factories.make_user("agent", email="sam@example.com", name="Sam Rivera")
    riley = factories.make_user("requester", email="riley@example.com", name="Riley Requester")
    req = factories.make_request(riley, title="VPN drops every few minutes", category="network", priority="high",
                                 description="Since Monday the VPN disconnects every five minutes or so.")
    canned_replies.create_canned_reply(sam, "Router restart", GREETING)
    canned_replies.create_canned_reply(sam, "Password reset", "Use the reset link on the sign-in page.")
    return {"alex": alex, "sam": sam, "riley": riley, "req": req}


def test_agent_writes_a_note_inserts_a_canned_reply_and_sends_it_with_a_status(page, factories, desk, shoot):
    req, sam = desk["req"], desk["sam"]
    sign_in(page, "alex@example.com", TEST_PASSWORD)
    page.goto(f"/requests/{req.id}")
    page.evaluate("window.__noReload = true")
    composer = page.locator("#comment-form")
    body = composer.locator("textarea[name=body]")
    send = composer.locator("#composer-send")

    # Reply mode first: the requester is named, the buttons say what they do.
    expect(composer.locator("#composer-mode-reply")).to_be_checked()
    expect(composer.locator(".composer-hint:visible")).to_have_text("Riley Requester will see this reply.")
    expect(send.locator("button:visible")).to_have_text(["Send reply", "Send and wait on customer", "Send and resolve"])
    lefts = send.locator("button:visible").evaluate_all("bs => bs.map(b => b.getBoundingClientRect().left)")
    assert lefts[0] == max(lefts)  # first in the form (Enter's button), shown last as the primary
    assert composer.locator(".composer-body").evaluate("e => getComputedStyle(e).backgroundColor") != NOTE_GROUND
    shoot(page, "150-composer-reply-mode")

    # Enter on a mode tab sends nothing (a half-written reply stays a draft).
    body.fill("Half a thought")
    composer.locator("#composer-mode-reply").focus()
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    expect(composer.locator(".flash")).to_have_count(0)
    expect(composer.locator("#composer-canned-status")).to_have_text("")  # nor pressed "Insert"
    expect(body).to_have_value("Half a thought")

    # Internal note: another ground, a hint, one button.
    composer.locator("label[for=composer-mode-note]").click()
    expect(composer.locator("#composer-mode-note")).to_be_checked()
    expect(composer.locator(".composer-hint:visible")).to_contain_text("Only staff see this.")
    expect(send.locator("button:visible")).to_have_text(["Add internal note"])
    assert composer.locator(".composer-body").evaluate("e => getComputedStyle(e).backgroundColor") == NOTE_GROUND
    body.fill("Riley is on the old VPN client; the new one is in the software centre.")
    shoot(page, "151-composer-note-mode")
    send.locator("button:has-text('Add internal note')").click()
    expect(composer.locator(".flash-success")).to_have_text("Internal note added.")
    note = page.locator("#timeline .entry.comment.internal")
    expect(note).to_contain_text("Riley is on the old VPN client")
    expect(note.locator(".internal-badge")).to_have_text("Internal note")
    expect(composer.locator("#composer-mode-reply")).to_be_checked()  # a fresh composer starts on a reply
    expect(body).to_have_value("")

    # A canned reply goes in at the cursor, filled in for this request and this agent.
    body.fill("Thanks for the details.\n\nAlex")
    body.evaluate("e => e.setSelectionRange(e.value.indexOf('Alex'), e.value.indexOf('Alex'))")  # before "Alex"
    composer.locator("#composer-canned").select_option(label="Router restart")
    composer.locator("button:has-text('Insert')").click()
    filled = (f"Hello Riley Requester,\n\nplease restart the router and tell me if #{req.id} is fixed.\n\n"
              "Alex Agent")
    expect(body).to_have_value(f"Thanks for the details.\n\n{filled}\n\nAlex")
    expect(composer.locator("#composer-canned")).to_have_value("")
    shoot(page, "152-composer-canned-inserted")

    # Send and wait on customer: the reply and the move in one step.
    send.locator("button:has-text('Send and wait on customer')").click()
    expect(composer.locator(".flash-success")).to_have_text(
        "Your reply was added and the request is now waiting on customer.")
    expect(page.locator("#request-header .badges")).to_contain_text("Waiting on customer")
    expect(page.locator("#timeline")).to_contain_text("please restart the router")
    expect(send.locator("button:visible")).to_have_text(["Send reply", "Send and resolve"])
    assert factories.reload(req).status == "waiting_on_customer"

    # Sam resolves it meanwhile; Alex's "Send and resolve" from the older page is refused, the text kept.
    svc.change_status(sam, req.id, "resolved")
    body.fill("All fixed on our side, closing this.")
    send.locator("button:has-text('Send and resolve')").click()
    warning = composer.locator(".flash-warning")
    expect(warning).to_contain_text("Changed by Sam Rivera")
    expect(warning).to_contain_text("Your change was not saved.")
    expect(body).to_have_value("All fixed on our side, closing this.")
    expect(page.locator("#request-header .badges")).to_contain_text("Resolved")
    expect(send.locator("button:visible")).to_have_text(["Send reply"])  # nothing more a reply may set
    expect(page.locator("#timeline")).not_to_contain_text("closing this")
    assert page.evaluate("window.__noReload") is True
    shoot(page, "153-composer-stale-send-refused")

    # On a phone the tabs, the library and the buttons wrap rather than overflow.
    page.set_viewport_size({"width": 390, "height": 844})
    composer.locator("label[for=composer-mode-note]").click()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    composer.scroll_into_view_if_needed()
    shoot(page, "158-composer-note-mode-narrow")


def test_composer_works_without_javascript(browser, live_server, factories, desk, shoot):
    req = desk["req"]
    context = browser.new_context(base_url=live_server, java_script_enabled=False,
                                  viewport={"width": 1280, "height": 860})
    page = context.new_page()
    try:
        sign_in(page, "alex@example.com", TEST_PASSWORD)
        page.goto(f"/requests/{req.id}")
        composer = page.locator("#comment-form")
        composer.locator("label[for=composer-mode-note]").click()  # a label ticks its radio without JavaScript
        assert composer.locator(".composer-body").evaluate("e => getComputedStyle(e).backgroundColor") == NOTE_GROUND
        composer.locator("textarea[name=body]").fill("Asked the network team.")
        composer.locator("#composer-canned").select_option(label="Router restart")
        composer.locator("button:has-text('Insert')").click()
        page.wait_for_load_state()
        composer = page.locator("#comment-form")
        value = composer.locator("textarea[name=body]").input_value()
        assert value.startswith("Asked the network team.\n\nHello Riley Requester,") and "Alex Agent" in value
        expect(composer.locator("#composer-mode-note")).to_be_checked()  # still a note
        shoot(page, "154-composer-no-js-canned-inserted")
        composer.locator("button:has-text('Add internal note')").click()
        page.wait_for_url(re.compile(rf".*/requests/{req.id}$"))
        expect(page.locator(".flash-success")).to_have_text("Internal note added.")
        expect(page.locator("#timeline .entry.comment.internal")).to_contain_text("Asked the network team.")

        page.locator("#comment-form textarea[name=body]").fill("Please try again now.")
        page.locator("#composer-send button:has-text('Send and resolve')").click()
        page.wait_for_url(re.compile(rf".*/requests/{req.id}$"))
        expect(page.locator(".flash-success").first).to_have_text(
            "Your reply was added and the request is now resolved.")
        expect(page.locator("#request-header .badges")).to_contain_text("Resolved")
        assert factories.reload(req).status == "resolved"
    finally:
        context.close()


def test_requester_sees_a_plain_composer(page, desk, shoot):
    sign_in(page, "riley@example.com", TEST_PASSWORD)
    page.goto(f"/requests/{desk['req'].id}")
    composer = page.locator("#comment-form")
    expect(composer.locator("input[name=internal]")).to_have_count(0)
    expect(composer.locator("#composer-canned")).to_have_count(0)
    expect(composer.locator("button:visible")).to_have_text(["Send reply"])
    shoot(page, "155-composer-requester")


def test_agent_keeps_the_canned_replies_library(page, desk, shoot):
    sign_in(page, "alex@example.com", TEST_PASSWORD)
    page.locator(".mainnav a:has-text('Canned replies')").click()
    page.wait_for_url("**/canned-replies")
    expect(page.locator(".canned-list li")).to_have_count(2)
    page.evaluate("window.__noReload = true")

    page.fill("#title", "Printer driver")
    page.fill("#body", "Hi {requestor_name}, the driver is in the software centre.")
    page.click("button:has-text('Add canned reply')")
    error = page.locator("#canned-replies .field.has-error .error")
    expect(error).to_have_text("Unknown placeholder {requestor_name}: use only {requester_name}, {request_number}, "
                               "{agent_name}.")
    expect(page.locator("#body")).to_have_value("Hi {requestor_name}, the driver is in the software centre.")
    shoot(page, "156-canned-reply-unknown-placeholder")

    page.fill("#body", "Hi {requester_name}, the driver is in the software centre.\n\n{agent_name}")
    page.click("button:has-text('Add canned reply')")
    expect(page.locator("#canned-replies .flash-success")).to_contain_text("Canned reply “Printer driver” added")
    expect(page.locator(".canned-list li")).to_have_count(3)
    expect(page.locator(".canned-list li").nth(1)).to_contain_text("Printer driver")
    assert page.evaluate("window.__noReload") is True
    shoot(page, "157-canned-replies-library")

    page.locator("#canned-reply-" + str(_id_of(page, "Printer driver")) + " a:has-text('Edit')").click()
    page.wait_for_url(re.compile(r".*/canned-replies/\d+$"))
    page.fill("#body", "Hello {requester_name}, the driver is in the software centre.")
    page.click("button:has-text('Save changes')")
    page.wait_for_url("**/canned-replies")
    expect(page.locator(".flash-success")).to_have_text("Canned reply “Printer driver” saved.")
    expect(page.locator(".canned-list")).to_contain_text("changed by Alex Agent")


def _id_of(page, title: str) -> int:
    item = page.locator(".canned-list li", has_text=title)
    return int(item.get_attribute("id").rsplit("-", 1)[1])
