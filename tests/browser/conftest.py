"""Browser harness: a live portal on 127.0.0.1 and Debian's Chromium driven by Playwright.

Without Chromium the browser tests skip with a reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"


def _chromium_missing() -> str | None:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    return None


@pytest.fixture(scope="session")
def live_server(app):
    """The test app served by a real HTTP server in a background thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    reason = _chromium_missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run under CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def csrf_enabled(app):
    """Every browser journey runs with CSRF checking on, as in production.

    The session `app` (tests/conftest.py) turns it off for the test clients; the live server
    serves that same app object, so the journeys switch it on for their duration. Forms then
    need their hidden csrf_token and HTMX requests the X-CSRFToken header from `<body hx-headers>`.
    Autouse, so journeys that open their own browser context (not `page`) are covered too.
    """
    previous = app.config.get("WTF_CSRF_ENABLED", True)
    app.config["WTF_CSRF_ENABLED"] = True
    yield
    app.config["WTF_CSRF_ENABLED"] = previous


@pytest.fixture()
def page(browser, live_server, csrf_enabled):
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture()
def shoot():
    """Save a full-page screenshot under tests/browser/screenshots/ (git-ignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)

    def _shoot(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return _shoot


def sign_in(page, email: str, password: str) -> None:
    """Sign in through the real form."""
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/requests")


ADMIN_PAGES = ("SLA setup", "Users", "Audit log", "Failed jobs", "System status", "Backups")


def go_to(page, name: str) -> None:
    """Follow a link of the top bar; the admin pages are under its "Admin" menu (opened first)."""
    if name in ADMIN_PAGES:
        page.click("details.admin-menu > summary")
        page.click(f"details.admin-menu nav a:text-is('{name}')")
    else:
        page.click(f".mainnav a:text-is('{name}')")
