"""A requester replies to finished requests: a resolved one opens again; a closed one refuses the reply
and offers a follow-up request, linked to it, that starts from what they typed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal.services import requests as svc
from tests.browser.conftest import sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture()
def finished(factories):
    """Riley's two requests, worked by Alex: one resolved, one resolved and closed."""
    agent = factories.make_user("agent", email="alex@example.com", name="Alex Agent")
    requester = factories.make_user("requester", email="riley@example.com", name="Riley Requester")
    resolved = factories.make_request(requester, title="Second monitor flickers", category="hardware",
                                      priority="medium", description="The left screen flickers every few seconds.")
    closed = factories.make_request(requester, title="Outlook asks for my password", category="software",
                                    priority="high", description="Outlook prompts for the password every hour.")
    svc.add_comment(agent, resolved.id, "I swapped the display cable; it should be steady now.")
    svc.change_status(agent, resolved.id, "resolved")
    svc.add_comment(agent, closed.id, "Your mailbox profile was rebuilt.")
    svc.change_status(agent, closed.id, "resolved")
    svc.change_status(agent, closed.id, "closed")
    return {"resolved": resolved, "closed": closed}


def test_requester_reply_reopens_a_resolved_request_and_follows_up_a_closed_one(page, factories, finished, shoot):
    resolved, closed = finished["resolved"], finished["closed"]
    sign_in(page, "riley@example.com", TEST_PASSWORD)

    # A resolved request: the composer says a reply reopens it, and it does.
    page.goto(f"/requests/{resolved.id}")
    page.evaluate("window.__noReload = true")
    composer = page.locator("#comment-form")
    expect(page.locator("#request-header .badges")).to_contain_text("Resolved")
    expect(composer).to_contain_text("Replying reopens this request.")
    composer.locator("textarea[name=body]").fill("It started flickering again this morning.")
    composer.locator("button:has-text('Send reply')").click()
    expect(composer.locator(".flash-success")).to_have_text("Your reply was added and the request is open again.")
    expect(page.locator("#request-header .badges")).to_contain_text("Open")
    expect(page.locator("#request-header .badges")).not_to_contain_text("Resolved")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("It started flickering again this morning.")
    expect(timeline.locator(".entry.event").last).to_contain_text("changed status")
    expect(composer).not_to_contain_text("Replying reopens this request.")
    assert page.evaluate("window.__noReload") is True
    assert factories.reload(resolved).status == "open"
    shoot(page, "114-reply-reopens")

    # A closed request: the reply is refused, kept, and offered as a follow-up.
    page.goto(f"/requests/{closed.id}")
    page.evaluate("window.__noReload = true")
    composer = page.locator("#comment-form")
    reply = "Since yesterday Outlook asks for my password again, every few minutes."
    composer.locator("textarea[name=body]").fill(reply)
    composer.locator("button:has-text('Send reply')").click()
    refusal = composer.locator(".flash-warning")
    expect(refusal).to_contain_text(f"Request #{closed.id} is closed, so it takes no more replies.")
    expect(refusal).to_contain_text("Your reply was not saved")
    expect(composer.locator("textarea[name=body]")).to_have_value(reply)
    expect(composer).to_contain_text(f"a new request linked to #{closed.id}, with the same category and priority")
    offer = composer.locator("button:has-text('Open a follow-up request')")
    expect(offer).to_be_visible()
    expect(page.locator("#timeline")).not_to_contain_text(reply)
    assert page.evaluate("window.__noReload") is True
    assert svc.follow_ups_of(factories.reload(closed).requester, closed) == []
    shoot(page, "115-closed-reply-refused")

    offer.click()
    page.wait_for_url(re.compile(rf".*/requests/(?!{closed.id}$)\d+$"))  # the new request's page
    follow_id = int(page.url.rsplit("/", 1)[1])
    assert follow_id != closed.id
    expect(page.locator(".flash-success")).to_contain_text(
        f"Follow-up request #{follow_id} was opened, linked to #{closed.id}.")
    header = page.locator("#request-header")
    expect(header.locator("h1")).to_contain_text(f"Follow-up to #{closed.id}: Outlook asks for my password")
    expect(header.locator(".badges")).to_contain_text("Open")
    expect(header.locator(".badges")).to_contain_text("High")
    expect(header.locator(".follow-up-links")).to_have_text(f"Follow-up to #{closed.id}")
    expect(page.locator("#request-description .prose")).to_have_text(reply)
    expect(page.locator("#timeline")).to_contain_text(f"raised this request as a follow-up to #{closed.id}")
    shoot(page, "116-follow-up-created")

    # The closed request names its follow-up.
    header.locator(".follow-up-links a").click()
    page.wait_for_url(re.compile(rf".*/requests/{closed.id}$"))
    expect(page.locator("#request-header .follow-up-links")).to_have_text(f"Follow-ups: #{follow_id}")
    expect(page.locator("#request-header .badges")).to_contain_text("Closed")
