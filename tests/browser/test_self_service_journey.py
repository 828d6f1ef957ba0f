"""A requester creates their own account, confirms it from the mail, later forgets the password and
resets it from the mail: the pages, the real SMTP mails and the links in them."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.mail_server import text_of

pytestmark = pytest.mark.browser

PASSWORD = "harbour-violet-engine-7"
NEW_PASSWORD = "quiet-meadow-copper-19"


def _link_in(message) -> str:
    url = re.search(r"https?://\S+", text_of(message)).group(0)
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _deliver(app, email):
    from portal.extensions import db
    from portal.models import User
    from portal.services import notifications

    with app.app_context():
        user = db.session.query(User).filter_by(email=email).one()
        notifications.deliver(user.id)


def test_register_confirm_forget_and_reset(app, page, smtp, shoot):
    page.goto("/login")
    page.click("text=Create an account")
    expect(page.locator("h1")).to_have_text("Create an account")
    page.fill("#name", "Grace Hopper")
    page.fill("#email", "grace@example.com")
    page.fill("#password", "1qaz2wsx3edc")
    page.fill("#confirm", "1qaz2wsx3edc")
    page.click("button[type=submit]")
    expect(page.locator(".field-error, .errors, [role=alert]").first).to_contain_text("most common passwords")
    shoot(page, "90-register-refused")

    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#check-inbox h1")).to_have_text("Check your inbox")
    shoot(page, "91-check-inbox")

    _deliver(app, "grace@example.com")
    [welcome] = smtp.to("grace@example.com")
    assert welcome["Subject"] == "Confirm your email address for Service Portal"
    page.goto(_link_in(welcome))
    expect(page.locator(".flash-success")).to_contain_text("Your email address is confirmed")
    page.fill("#email", "grace@example.com")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/requests")
    page.click("text=Sign out")
    page.wait_for_url("**/login")

    page.click("text=Forgot your password?")
    page.fill("#email", "grace@example.com")
    page.click("button[type=submit]")
    expect(page.locator("#check-inbox")).to_contain_text("we sent it a link")
    _deliver(app, "grace@example.com")
    reset = smtp.to("grace@example.com")[-1]
    assert reset["Subject"] == "Reset your Service Portal password"
    link = _link_in(reset)
    page.goto(link)
    expect(page.locator("h1")).to_have_text("Choose a new password")
    page.fill("#password", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD)
    shoot(page, "92-reset-password")
    page.click("button[type=submit]")
    expect(page.locator(".flash-success")).to_contain_text("Your password is changed")
    page.fill("#email", "grace@example.com")
    page.fill("#password", NEW_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/requests")

    page.goto(link)  # the link worked once
    expect(page.locator("#link-problem")).to_contain_text("already used")
    shoot(page, "93-reset-link-used")
