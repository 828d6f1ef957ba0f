"""Live updates in a real browser (issue #12): two people on one request, each in their own browser.
What one does shows on the other's open page without a reload; while the other has something
half-typed, a banner says who changed the request and "Refresh" applies it, the typed text kept.

The page polls every REQUEST_POLL_SECONDS (an hour in the tests, so no poll comes uninvited): the
journeys fire the poll themselves, as its timer would.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import browser_page, sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser

# Fire the page's poll and resolve once it has settled and the page has looked at what it brought
# (request_live.js checks in a task of its own; this one is queued after it).
POLL_NOW = """() => new Promise((resolve, reject) => {
  const live = document.getElementById("request-live");
  const late = setTimeout(() => reject(new Error("the poll did not settle")), 8000);
  document.addEventListener("htmx:afterSettle", function settled(evt) {
    if (!live.contains(evt.target)) return;  // fired on what the poll swapped in
    document.removeEventListener("htmx:afterSettle", settled);
    clearTimeout(late);
    setTimeout(resolve, 0);
  });
  htmx.trigger(live, "request-poll");
})"""


def poll_now(page) -> None:
    """What the poll's timer does, now; returns once any refresh it started has been applied too."""
    page.evaluate(POLL_NOW)
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


@pytest.fixture()
def desk(factories):
    """An agent, a requester and the requester's open request."""
    sam = factories.make_user("agent", email="sam@example.com", name="Sam Rivera")
    riley = factories.make_user("requester", email="riley@example.com", name="Riley Requester")
    req = factories.make_request(riley, title="Laptop will not charge", category="hardware", priority="high",
                                 description="The charging light stays off with two different chargers.")
    return {"sam": sam, "riley": riley, "request": req}


@pytest.fixture()
def other(browser, live_server):
    """A second person's browser (its own context: its own cookies and session) and its JavaScript errors."""
    with browser_page(browser, live_server, "the second browser") as page:
        yield page


def open_request(page, email: str, req) -> None:
    sign_in(page, email, TEST_PASSWORD)
    page.goto(f"/requests/{req.id}")
    page.evaluate("window.__noReload = true")  # gone if the page ever reloads


def expect_versions(page, version: int) -> None:
    """Every form on the page, the composer's send buttons included, carries `version`."""
    values = set(page.locator("input[name=version]").evaluate_all("els => els.map(e => e.value)"))
    assert values == {str(version)}, f"forms carry versions {values}, the request is at {version}"


def test_requester_sees_the_agents_reply_and_status_without_reloading(page, other, desk, factories, shoot):
    req = desk["request"]
    requester, agent = page, other
    open_request(requester, "riley@example.com", req)
    open_request(agent, "sam@example.com", req)
    expect(requester.locator("#request-header .badges")).to_contain_text("Open")

    # The agent answers and resolves in one step.
    agent.fill("#comment-form textarea[name=body]", "A new charger is on your desk; the old one had a broken pin.")
    agent.click("#composer-send button[data-status=resolved]")
    expect(agent.locator("#comment-form")).to_contain_text("the request is now resolved")

    # The requester typed nothing: the next poll brings it all, without a reload and without a banner.
    poll_now(requester)
    expect(requester.locator("#timeline")).to_contain_text("A new charger is on your desk")
    expect(requester.locator("#request-header .badges")).to_contain_text("Resolved")
    panel = requester.locator("#request-panel")
    expect(panel.locator("button[data-status=closed]")).to_be_visible()
    expect(panel).to_contain_text("Is everything working?")
    expect(panel).not_to_contain_text("Not yet")  # first response now recorded
    expect(requester.locator("#live-updates")).to_be_empty()
    expect(requester).to_have_title(f"#{req.id} Laptop will not charge · Service Portal")
    assert requester.evaluate("window.__noReload") is True
    expect_versions(requester, factories.reload(req).version)
    shoot(requester, "210-live-requester-sees-reply")

    # A poll that finds nothing new changes nothing.
    before = requester.locator("#timeline > li").count()
    poll_now(requester)
    expect(requester.locator("#timeline > li")).to_have_count(before)
    expect(requester.locator("#live-updates")).to_be_empty()

    # The requester closes it; the agent's page follows.
    panel.locator("button[data-status=closed]").click()
    expect(panel).to_contain_text("Status changed to closed.")
    poll_now(agent)
    expect(agent.locator("#request-header .badges")).to_contain_text("Closed")
    expect(agent.locator("#timeline")).to_contain_text("Riley Requester")
    # The agent's own confirmation went with the next change (the requester's).
    expect(agent.locator("#comment-form .flash")).to_have_count(0)
    assert agent.evaluate("window.__noReload") is True
    expect_versions(agent, factories.reload(req).version)
    shoot(agent, "211-live-agent-sees-close")


def test_half_typed_reply_gets_a_banner_and_keeps_its_text(page, other, desk, factories, shoot):
    req = desk["request"]
    requester, agent = page, other
    open_request(requester, "riley@example.com", req)
    open_request(agent, "sam@example.com", req)
    draft = "It still does not charge with the new one either. I tried"
    requester.fill("#comment-form textarea[name=body]", draft)

    agent.fill("#comment-form textarea[name=body]", "Could you try another wall socket?")
    agent.click("#composer-send button[data-status=waiting_on_customer]")
    expect(agent.locator("#comment-form")).to_contain_text("the request is now waiting on customer")

    # Half-typed: nothing moves under the writer; a calm banner names who changed the request.
    poll_now(requester)
    banner = requester.locator("#live-updates .live-banner")
    expect(banner).to_be_visible()
    expect(banner).to_have_text("Updated by Sam Rivera — Refresh What you have typed stays.")
    expect(requester.locator("#live-updates")).to_have_attribute("role", "status")
    expect(requester.locator("#timeline")).not_to_contain_text("another wall socket")
    expect(requester.locator("#request-header .badges")).to_contain_text("Open")
    # Asked again, the banner stays as it is (it is not announced anew at every poll).
    banner.evaluate("el => el.dataset.seen = 'yes'")
    poll_now(requester)
    expect(requester.locator("#live-updates .live-banner[data-seen=yes]")).to_be_visible()
    shoot(requester, "212-live-banner-while-typing")

    banner.locator("button", has_text="Refresh").click()
    expect(requester.locator("#timeline")).to_contain_text("Could you try another wall socket?")
    expect(requester.locator("#request-header .badges")).to_contain_text("Waiting on customer")
    expect(requester.locator("#live-updates")).to_be_empty()
    composer = requester.locator("#comment-form textarea[name=body]")
    expect(composer).to_have_value(draft)
    expect(composer).to_be_focused()
    assert requester.evaluate("window.__noReload") is True
    expect_versions(requester, factories.reload(req).version)
    shoot(requester, "213-live-refreshed-text-kept")

    # The reply goes out as written; the agent's page (nothing typed) shows it at the next poll.
    composer.fill(draft + " the socket by the window too.")
    requester.click("#composer-send button.reply-only")
    expect(requester.locator("#timeline")).to_contain_text("the socket by the window too.")
    poll_now(agent)
    expect(agent.locator("#timeline")).to_contain_text("the socket by the window too.")
    expect(agent.locator("#request-header .badges")).to_contain_text("In progress")  # the answer gave it back
    expect(agent.locator("#live-updates")).to_be_empty()
    expect_versions(agent, factories.reload(req).version)


def test_agents_see_each_others_changes_and_requesters_never_see_notes(page, other, desk, factories, shoot, browser,
                                                                        live_server):
    req = desk["request"]
    factories.make_user("agent", email="alex@example.com", name="Alex Agent")
    requester, sam = page, other
    open_request(requester, "riley@example.com", req)
    open_request(sam, "sam@example.com", req)
    third = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860})
    alex_page = third.new_page()
    alex_page.set_default_timeout(10_000)
    try:
        open_request(alex_page, "alex@example.com", req)

        # Sam writes an internal note and takes the request.
        sam.click("label[for=composer-mode-note]")
        sam.fill("#comment-form textarea[name=body]", "Known fault: battery recall batch ZX-41.")
        sam.click("#composer-send button.note-only")
        expect(sam.locator("#comment-form")).to_contain_text("Internal note added.")

        # The requester's poll finds nothing they may know of: no note, no banner, no name.
        timeline = requester.locator("#timeline")
        entries = timeline.locator("> li").count()
        poll_now(requester)
        expect(timeline.locator("> li")).to_have_count(entries)
        expect(timeline).not_to_contain_text("battery recall")
        expect(requester.locator("#live-updates")).to_be_empty()

        # Alex, half-way through a reply of his own, is told; Refresh shows the note, his text kept.
        alex_page.fill("#comment-form textarea[name=body]", "Riley, could you read me the serial number")
        poll_now(alex_page)
        expect(alex_page.locator("#live-updates .live-banner")).to_contain_text("Updated by Sam Rivera")
        alex_page.locator("#live-updates button", has_text="Refresh").click()
        expect(alex_page.locator("#timeline")).to_contain_text("battery recall batch ZX-41")
        expect(alex_page.locator("#comment-form textarea[name=body]")).to_have_value(
            "Riley, could you read me the serial number")

        # Sam's own change: his page is current already, so even with text typed no banner comes.
        sam.click("label[for=composer-mode-reply]")
        sam.fill("#comment-form textarea[name=body]", "Riley, I am ordering")
        sam.locator("#request-panel button", has_text="Assign to me").click()
        expect(sam.locator("#request-panel")).to_contain_text("You took this request.")
        poll_now(sam)
        expect(sam.locator("#live-updates")).to_be_empty()
        expect(sam.locator("#comment-form textarea[name=body]")).to_have_value("Riley, I am ordering")

        # The assignment is the requester's to see: their page (nothing typed) follows.
        poll_now(requester)
        expect(requester.locator("#request-panel .facts")).to_contain_text("Sam Rivera")
        expect(timeline).not_to_contain_text("battery recall")
        shoot(requester, "214-live-requester-no-note")
        # Alex still has his reply half-typed: told again, and Refresh brings the assignment.
        poll_now(alex_page)
        expect(alex_page.locator("#live-updates .live-banner")).to_contain_text("Updated by Sam Rivera")
        expect(alex_page.locator("#request-panel .facts")).to_contain_text("Unassigned")
        shoot(alex_page, "215-live-colleague-assigned")
        alex_page.locator("#live-updates button", has_text="Refresh").click()
        expect(alex_page.locator("#request-panel .facts")).to_contain_text("Sam Rivera")
        expect(alex_page.locator("#live-updates")).to_be_empty()
        assert alex_page.evaluate("window.__noReload") is True
    finally:
        third.close()


TYPED = "The charging light stays off; the fan is very loud too."


def test_an_edit_form_being_changed_is_kept_through_a_refresh(page, other, desk, factories, shoot):
    req = desk["request"]
    requester, agent = page, other
    open_request(requester, "riley@example.com", req)
    open_request(agent, "sam@example.com", req)
    requester.locator("#request-description details.edit-text summary").click()
    requester.fill("#edit-description", TYPED)

    agent.locator("#request-description details.edit-text summary").click()
    agent.fill("#edit-title", "Laptop will not charge (battery recall?)")
    agent.locator("#request-description button", has_text="Save changes").click()
    expect(agent.locator("#request-header h1")).to_contain_text("battery recall?")

    poll_now(requester)
    expect(requester.locator("#live-updates .live-banner")).to_contain_text("Updated by Sam Rivera")
    requester.locator("#live-updates button", has_text="Refresh").click()
    expect(requester.locator("#live-updates")).to_be_empty()
    expect(requester.locator("#request-header h1")).to_contain_text("battery recall?")
    # The editor kept what was typed (and the version it was opened from)...
    expect(requester.locator("#edit-description")).to_have_value(TYPED)
    expect(requester.locator("#request-description .live-behind")).to_contain_text("changed while you were editing")
    shoot(requester, "216-live-edit-form-kept")
    # ...so saving it is checked against that version: refused, the current text shown beside it.
    requester.locator("#request-description button", has_text="Save changes").click()
    description = requester.locator("#request-description")
    expect(description.locator(".flash-warning")).to_contain_text("Changed by Sam Rivera")
    expect(requester.locator("#edit-description")).to_have_value(TYPED)
    expect(requester.locator("#request-header h1")).to_contain_text("battery recall?")
    assert factories.reload(req).description == "The charging light stays off with two different chargers."
    shoot(requester, "217-live-edit-then-stale-save")
