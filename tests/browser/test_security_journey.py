"""An agent turns on two-factor sign-in from their security page (QR code, a real TOTP code), keeps the
recovery codes, signs out, and signs back in with a code."""

from __future__ import annotations

import time

import pyotp
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


def test_turn_on_two_factor_then_sign_in_with_a_code(app, page, factories, shoot):
    factories.make_user("agent", email="alex@example.com", name="Alex Agent")
    sign_in(page, "alex@example.com", TEST_PASSWORD)
    page.click("header >> text=Alex Agent")
    page.click("text=Password, two-factor sign-in, sessions and API tokens")
    expect(page.locator("h1")).to_have_text("Security")
    expect(page.locator("#sessions")).to_contain_text("This browser")
    shoot(page, "94-security")

    page.click("text=Turn on two-factor sign-in")
    expect(page.locator(".qr svg")).to_be_visible()
    secret = page.locator("code.secret").inner_text()
    shoot(page, "95-two-factor-setup")
    page.fill("#code", pyotp.TOTP(secret).at(time.time() - 30))  # the previous step's code: accepted once
    page.fill("#password", TEST_PASSWORD)
    page.click("button:has-text('Turn it on')")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    shoot(page, "96-recovery-codes")
    page.click("text=I have kept them")
    expect(page.locator("#two-factor")).to_contain_text("On")
    expect(page.locator("#two-factor")).to_contain_text("10 recovery codes left")

    page.click("text=Sign out")
    page.wait_for_url("**/login")
    page.fill("#email", "alex@example.com")
    page.fill("#password", TEST_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Enter your code")
    shoot(page, "97-two-factor-code")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("button[type=submit]")
    page.wait_for_url("**/requests")
