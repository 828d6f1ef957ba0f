"""Browser harness: a live portal on 127.0.0.1 and Debian's Chromium driven by Playwright.

Without Chromium the browser tests skip with a reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
AXE_SCRIPT = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"


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


@contextmanager
def browser_page(browser, live_server, who: str = "the page"):
    """A page in a context of its own (its own cookies, so its own signed-in person); on leaving,
    the context closes and any JavaScript error the page raised fails the test."""
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on {who}: {errors}"


@pytest.fixture()
def page(browser, live_server, csrf_enabled):
    with browser_page(browser, live_server) as page:
        yield page


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


def axe_violations(page, impacts=("serious", "critical"), selector: str | None = None) -> list[dict]:
    """axe-core's violations of WCAG 2.x A/AA (and best-practice rules) on the page as it is now,
    keeping those of the given impacts.

    The script is the vendored copy (tests/browser/vendor/axe-core); it is evaluated through the
    DevTools protocol, which the portal's CSP (script-src 'self', no inline scripts) does not
    govern, so the page is checked under its real CSP. `selector` limits the check to one part.
    """
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8") + "\n;undefined")
    results = page.evaluate(
        """async (context) => {
            const options = {resultTypes: ["violations"],
                             runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                                            "wcag22aa", "best-practice"]}};
            const result = await window.axe.run(context || document, options);
            return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({target: n.target, impact: n.impact,
                                          summary: n.failureSummary, html: n.html.slice(0, 200)}))}));
        }""",
        selector,
    )
    return [v for v in results if v["impact"] in impacts]


def format_violations(violations: list[dict], where: str = "") -> str:
    """axe violations as lines a reader can act on: rule, impact, what it asks, and where."""
    lines = [f"{len(violations)} accessibility violation(s){' on ' + where if where else ''}:"]
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"][:8]:
            target = " ".join(" >> ".join(t) if isinstance(t, list) else t for t in node["target"])
            summary = (node["summary"] or "").replace("\n", " ").strip()
            lines.append(f"    at {target}: {summary[:300]}")
        if len(v["nodes"]) > 8:
            lines.append(f"    ... and {len(v['nodes']) - 8} more")
    return "\n".join(lines)
