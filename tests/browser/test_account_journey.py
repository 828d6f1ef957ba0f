"""A person chooses their emails on their account page, and the mail they get follows the choice."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


def test_an_agent_asks_for_an_hourly_sla_digest_and_sees_their_recent_mails(app, page, factories, smtp, shoot):
    from portal.services import notifications
    from portal.services import requests as svc

    agent = factories.make_user("agent", email="alex@example.com", name="Alex Agent")
    manager = factories.make_user("manager", email="mona@example.com", name="Mona Manager")
    req = factories.make_request(title="Laptop will not charge")
    svc.assign(manager, req.id, agent.id)
    notifications.deliver(agent.id)
    assert [m["Subject"] for m in smtp.to("alex@example.com")] == [
        f"#{req.id} Laptop will not charge was assigned to you"]

    sign_in(page, "alex@example.com", TEST_PASSWORD)
    page.click("header >> text=Alex Agent")
    expect(page.locator("h1")).to_have_text("Your account")
    expect(page.locator(".recent-mails")).to_contain_text(f"#{req.id} Laptop will not charge was assigned to you")
    expect(page.locator(".recent-mails")).to_contain_text("Sent")
    shoot(page, "60-account")

    page.evaluate("window.__noReload = true")
    page.uncheck("input[value='sla_at_risk']")
    page.check("input[value='digest']")
    page.click("text=Save email choices")
    expect(page.locator("#account-notifications .flash-success")).to_have_text("Your email choices are saved.")
    assert page.evaluate("window.__noReload") is True  # saved in place
    expect(page.locator("input[value='digest']")).to_be_checked()
    expect(page.locator("input[value='sla_at_risk']")).not_to_be_checked()
    shoot(page, "61-account-saved")

    page.reload()
    expect(page.locator("input[value='digest']")).to_be_checked()
    assert notifications.choices(agent).sla_digest is True
