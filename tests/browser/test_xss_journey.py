"""A real Chromium opens a request full of hostile text: no dialog fires, no element comes from it."""

from __future__ import annotations

import pytest

from tests.browser.conftest import sign_in
from tests.security.helpers import EVERY, HX_ON, SCRIPT, TITLE
from tests.web.conftest import make  # noqa: F401 - fixture

pytestmark = pytest.mark.browser
# Here, not in tests/security: one Playwright per test session (a second sync_playwright cannot start
# while the browser journeys' one runs), and the web fixtures come from tests/web via tests/browser.


@pytest.fixture()
def page(app, browser, live_server):
    """A page on the live portal with CSRF on, as in production; JavaScript errors fail the test."""
    app.config["WTF_CSRF_ENABLED"] = True
    context = browser.new_context(base_url=live_server)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    app.config["WTF_CSRF_ENABLED"] = False
    assert not errors, errors


def test_browser_hostile_request_fires_no_dialog_and_adds_no_element(app, make, page):  # noqa: F811 - the fixture imported above
    agent = make.user("agent", name="Alex " + SCRIPT)
    requester = make.user("requester", name="Rita " + HX_ON[:60])
    req = make.request(requester, title=TITLE, description=EVERY)
    make.comment(agent, req.id, "Public " + EVERY)
    make.comment(agent, req.id, "Internal " + EVERY, internal=True)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "pwn" in r.url or "/x" == r.url[-2:] else None)

    sign_in(page, agent.email, agent.password)
    page.goto(f"/requests/{req.id}")
    page.wait_for_load_state("networkidle")
    page.goto("/requests")
    page.wait_for_load_state("networkidle")
    page.goto(f"/requests/{req.id}")
    page.wait_for_load_state("networkidle")
    for selector in ("#request-header", "#request-description", "#timeline"):
        page.locator(selector).first.click(position={"x": 5, "y": 5})
    page.wait_for_timeout(300)

    assert dialogs == []
    assert fetched == []  # no hx-get from user text was processed, no <img src=x> loaded
    assert page.locator('[hx-get*="pwn"], [hx-on\\:click], img[src="x"]').count() == 0
    assert page.evaluate("() => [...document.scripts].every(s => s.src.includes('/static/'))")
    body = page.locator("body").inner_text()
    assert SCRIPT in body and "{{7*7}}" in body  # shown to the person as the text that was typed
    assert EVERY in page.locator("#request-description").inner_text()
