"""Accessibility (issue #12): axe-core finds no serious or critical violation on any page, as the role
that sees it, nor in the states that matter (field errors shown, after an HTMX change, a dialog open);
and the points axe cannot judge are asserted one by one (focus kept after a swap, aria-busy while
loading, no double submit, focus ring contrast, badge text size, polling tables not live).

The rows are made once for the module (`desk`) and shared; each role signs in once and every test
opens a fresh page in a browser context carrying that sign-in. Pages are listed in PAGES by endpoint;
`test_every_page_is_checked` reads the app's GET routes, checks the pages nobody listed that need no
argument (a new page is covered the day it lands) and names those with arguments that need a row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import axe_violations, format_violations, sign_in
from tests.conftest import TEST_PASSWORD, reset_state

pytestmark = pytest.mark.browser

EMAILS = {"requester": "rita@example.com", "agent": "alex@example.com", "manager": "mona@example.com",
          "admin": "ada@example.com", "two_factor": "tess@example.com"}


@pytest.fixture(autouse=True)
def _clean_state():
    """The module shares its rows (`desk`): emptied once at the end, not after every test."""
    yield


@pytest.fixture(scope="module")
def desk(app, tmp_path_factory):
    """A desk with something on every page: users of each role, requests with a timeline, SLA
    definitions and a breach, a calendar with a holiday, a canned reply, exports, a backup, a failed job."""
    from datetime import timedelta

    import pyotp

    from portal.extensions import db
    from portal.models import SlaMetric
    from portal.models._time import utcnow
    from portal.policy import SYSTEM
    from portal.services import accounts, canned_replies, exports, saved_views, sla_admin, two_factor
    from portal.services import requests as svc
    from portal.services.sla import exemptions
    from tests import factories

    backup_dir = tmp_path_factory.mktemp("a11y-backups")
    saved = {key: app.config.get(key) for key in ("BACKUP_DIR", "BACKUP_PASSPHRASE", "BACKUP_PASSPHRASE_FILE")}
    app.config.update(BACKUP_DIR=str(backup_dir), BACKUP_PASSPHRASE="correct horse battery staple",
                      BACKUP_PASSPHRASE_FILE=None)
    with app.app_context():
        admin = factories.make_user("admin", email=EMAILS["admin"], name="Ada Admin")
        manager = factories.make_user("manager", email=EMAILS["manager"], name="Mona Manager")
        agent = factories.make_user("agent", email=EMAILS["agent"], name="Alex Agent")
        factories.make_user("agent", name="Sam Rivera")
        requester = factories.make_user("requester", email=EMAILS["requester"], name="Rita Requester")
        tess = factories.make_user("agent", email=EMAILS["two_factor"], name="Tess Twofactor")
        secret = two_factor.pending_secret(tess)
        recovery_codes = two_factor.enable(tess, pyotp.TOTP(secret).now(), TEST_PASSWORD)

        for category, priority in (("hardware", "medium"), ("hardware", "high"), ("network", "critical")):
            sla_admin.create_definition(SYSTEM, {"category": category, "priority": priority,
                                                 "response_time_hours": 4, "resolution_time_hours": 24})
        calendar = sla_admin.create_calendar(SYSTEM, {"name": "London office", "timezone": "Europe/London",
                                                      "working_days": [0, 1, 2, 3, 4], "opens": "09:00",
                                                      "closes": "17:30"})
        sla_admin.add_holiday(SYSTEM, calendar.id, date(date.today().year + 1, 12, 25), "Christmas Day")

        req = factories.make_request(requester, title="The second-floor printer prints blank pages",
                                     description="Since Monday every job comes out blank.\nToner is new.")
        svc.add_comment(agent, req.id, "Which printer exactly? The one by the kitchen?")
        svc.add_comment(agent, req.id, "Probably the fuser; ordering a part.", internal=True)
        svc.add_comment(requester, req.id, "Yes, the one by the kitchen.")
        svc.change_status(agent, req.id, "in_progress")
        exemptions.grant_exemption(manager, req.id, "Waiting for the vendor's part", "resolution", 48)
        breached = factories.make_request(requester, title="VPN drops every few minutes", category="network",
                                          priority="critical")
        metric = db.session.query(SlaMetric).filter_by(request_id=breached.id).one()
        metric.response_due_at = metric.response_breached_at = utcnow() - timedelta(hours=3)
        metric.is_breached = True
        db.session.commit()
        resolved = factories.make_request(requester, title="New mouse, please", priority="low")
        svc.change_status(agent, resolved.id, "resolved")
        for n in range(4):
            factories.make_request(requester, title=f"Keyboard key {n} sticks")

        saved_views.create_saved_view(agent, "My high priority", {"status": "active", "priority": "high"})
        team_view = saved_views.create_saved_view(manager, "Network, oldest first",
                                                  {"category": "network", "sort": "oldest"})
        saved_views.set_saved_view_shared(manager, team_view.id, True)
        svc.add_comment(agent, req.id, "@Mona Manager the vendor wants a purchase order", internal=True)
        canned = canned_replies.create_canned_reply(agent, "Printer: try a restart",
                                                    "Hello {requester_name}, please turn it off and on.")
        queued = exports.request_export(manager, "csv", {"status": "any"})
        failed = exports.request_export(manager, "csv", {"priority": "critical"})
        exports.fail(failed.id, "The export directory is full.")
        factories.make_verified_backup("portal-20250101T020000Z.dump.enc")
        _failed_job(app)
        reset_token = accounts._signer(accounts.RESET_SALT).dumps(
            {"u": requester.id, "h": accounts._fingerprint(requester)})
        ids = {"request": req.id, "breached": breached.id, "resolved": resolved.id, "definition": 1,
               "calendar": calendar.id, "canned": canned.id, "export": queued.id, "failed_export": failed.id,
               "reset_token": reset_token, "admin": admin.id, "recovery_codes": recovery_codes}
        from portal.models import SlaDefinition

        ids["definition"] = db.session.query(SlaDefinition.id).order_by(SlaDefinition.id).first()[0]
        db.session.remove()
    yield ids
    app.config.update(saved)
    reset_state(app)


def _failed_job(app) -> None:
    """One job in the failed registry (our dead letters), failed by a real worker in this process."""
    import signal

    from rq import SimpleWorker

    from portal.queueing import get_queue, push, redis_connection

    job = push("tests.jobs.sample_jobs.fail", "SMTP server refused the connection", queue="email")
    job.retries_left = 0
    job.save()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        SimpleWorker([get_queue("email")], connection=redis_connection()).work(burst=True)
    finally:  # the worker takes over Ctrl-C and SIGTERM; pytest gets them back
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


@pytest.fixture(scope="module")
def signed_in(browser, live_server, desk, app):
    """A browser context per role, signed in once through the real form (and one signed out)."""
    contexts: dict[str, Any] = {}
    previous = app.config.get("WTF_CSRF_ENABLED", True)
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        for role in ("requester", "agent", "manager", "admin", "two_factor"):
            context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860})
            page = context.new_page()
            if role == "two_factor":  # the password, then a recovery code (a TOTP code is good once a step)
                page.goto("/login")
                page.fill("#email", EMAILS[role])
                page.fill("#password", TEST_PASSWORD)
                page.click("button[type=submit]")
                page.fill("#code", desk["recovery_codes"][0])
                page.click("button[type=submit]")
                page.wait_for_url("**/requests")
            else:
                sign_in(page, EMAILS[role], TEST_PASSWORD)
            page.close()
            contexts[role] = context
        contexts["anonymous"] = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860})
    finally:
        app.config["WTF_CSRF_ENABLED"] = previous
    yield contexts
    for context in contexts.values():
        context.close()


@pytest.fixture()
def open_as(signed_in):
    """open_as(role) -> a fresh page in that role's context; JavaScript errors on it fail the test."""
    pages, errors = [], []

    def _open(role: str):
        page = signed_in[role].new_page()
        page.set_default_timeout(10_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        pages.append(page)
        return page

    yield _open
    for page in pages:
        page.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def assert_no_serious_violations(page, where: str) -> None:
    violations = axe_violations(page)
    assert not violations, format_violations(violations, where)


# What axe leaves alone, asked of every page: each table has header cells saying what they head
# (<th scope>); a part that polls is not a live region, nor inside one, nor holds a table inside one
# (a screen reader would read the whole table every few seconds); badges and all other text 12 px at least.
PAGE_PROBLEMS = """() => {
    const problems = [];
    const classes = (el) => typeof el.className === "string" ? el.className.trim().split(/\\s+/).filter(Boolean) : [];
    const where = (el) => el.id ? "#" + el.id : [el.tagName.toLowerCase(), ...classes(el)].join(".");
    for (const table of document.querySelectorAll("table:not([role=presentation]):not([role=none])")) {
        if (!table.querySelector("th")) problems.push(`table ${where(table)} has no header cells`);
        for (const th of table.querySelectorAll("th:not([scope])"))
            problems.push(`<th> "${th.textContent.trim()}" in ${where(table)} has no scope`);
    }
    const live = "[aria-live]:not([aria-live=off]), [role=status], [role=log], [role=alert]";
    for (const part of document.querySelectorAll("[hx-trigger*=every]")) {
        if (part.closest(live)) problems.push(`${where(part)} polls and is (inside) a live region`);
        for (const region of part.querySelectorAll(live))
            if (region.querySelector("table"))
                problems.push(`${where(part)} polls a table inside the live region ${where(region)}`);
    }
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const small = new Set();
    while (walker.nextNode()) {
        const text = walker.currentNode, el = text.parentElement;
        if (!text.textContent.trim() || !el || !el.getClientRects().length) continue;
        if (el.closest(".visually-hidden, [hidden], script, style, template")) continue;
        const size = parseFloat(getComputedStyle(el).fontSize);
        if (size < 12) small.add(`${where(el)} "${text.textContent.trim().slice(0, 30)}" is ${size.toFixed(1)} px`);
    }
    problems.push(...small);
    return problems;
}"""


def assert_sound_page(page, where: str) -> None:
    """axe finds nothing serious, and the checks of PAGE_PROBLEMS hold."""
    assert_no_serious_violations(page, where)
    problems = page.evaluate(PAGE_PROBLEMS)
    assert not problems, f"on {where}:\n" + "\n".join(problems)


# ---------------------------------------------------------------- every page, as the role that sees it

@dataclass(frozen=True)
class Page:
    """A page to check: the endpoint it is, who looks, and its address (filled from the desk's ids)."""
    endpoint: str
    role: str
    path: str
    name: str = ""
    expect_text: str = ""
    ready: str = ""  # a selector to wait for (parts that load after the page)
    statuses: tuple[int, ...] = field(default=(200,))

    @property
    def id(self) -> str:
        return self.name or f"{self.role}:{self.path.split('?')[0]}"


PAGES = (
    # signed out
    Page("auth.login", "anonymous", "/login", expect_text="Sign in"),
    Page("auth.register", "anonymous", "/register"),
    Page("auth.request_password_reset", "anonymous", "/password-reset"),
    Page("auth.reset_password", "anonymous", "/password-reset/{reset_token}"),
    Page("auth.verify_email", "anonymous", "/verify-email/not-a-token", statuses=(400,)),
    # a requester
    Page("requests.list_requests", "requester", "/requests", expect_text="printer"),
    Page("requests.new_request", "requester", "/requests/new"),
    Page("requests.show_request", "requester", "/requests/{request}", expect_text="kitchen"),
    Page("requests.show_request", "requester", "/requests/{resolved}", name="requester:/requests/resolved"),
    Page("account.account", "requester", "/account"),
    Page("account.security", "requester", "/account/security"),
    Page("account.setup_two_factor", "requester", "/account/security/two-factor"),
    Page("auth.logout", "requester", "/logout"),
    Page("account.security", "two_factor", "/account/security", name="two_factor:/account/security",
         expect_text="Turn two-factor sign-in off"),
    # an agent
    Page("requests.list_requests", "agent", "/requests", expect_text="VPN"),
    Page("requests.list_requests", "agent", "/requests?status=any&sort=newest", name="agent:/requests?all"),
    Page("requests.show_request", "agent", "/requests/{request}", expect_text="fuser"),
    Page("sla.breaches", "agent", "/sla/breaches"),
    Page("requests.canned_replies", "agent", "/canned-replies", expect_text="Printer: try a restart"),
    Page("requests.edit_canned_reply", "agent", "/canned-replies/{canned}"),
    Page("requests.saved_views", "agent", "/requests/views", expect_text="Network, oldest first"),
    Page("notifications.list_notifications", "requester", "/notifications"),
    # a manager
    Page("requests.show_request", "manager", "/requests/{breached}", expect_text="VPN"),
    Page("sla.breaches", "manager", "/sla/breaches", expect_text="VPN"),
    Page("exports.list_exports", "manager", "/exports"),
    Page("exports.show_export", "manager", "/exports/{export}"),
    Page("exports.show_export", "manager", "/exports/{failed_export}", name="manager:/exports/failed"),
    Page("exports.reports_page", "manager", "/reports"),
    Page("dashboard.dashboard", "manager", "/dashboard", name="manager:/dashboard"),
    Page("notifications.list_notifications", "manager", "/notifications", name="manager:/notifications",
         expect_text="mentioned you"),
    # an admin
    Page("dashboard.dashboard", "admin", "/dashboard"),
    Page("admin.manage_users", "admin", "/admin/users", expect_text="Rita Requester"),
    Page("admin.sla_definitions", "admin", "/admin/sla"),
    Page("admin.edit_sla_definition", "admin", "/admin/sla/{definition}"),
    Page("admin.calendars", "admin", "/admin/calendars"),
    Page("admin.edit_calendar", "admin", "/admin/calendars/{calendar}", expect_text="Christmas Day"),
    Page("admin.preview_holidays", "admin",
         "/admin/calendars/{calendar}/holidays/import?country=GB&subdivision=ENG&first_year=2026&last_year=2026"),
    Page("admin.manage_categories", "admin", "/admin/categories"),
    Page("admin.audit_log", "admin", "/admin/audit"),
    Page("admin.failed_jobs", "admin", "/admin/jobs", expect_text="SMTP server refused"),
    Page("admin.system_status", "admin", "/admin/status"),
    Page("admin.list_backups", "admin", "/admin/backups"),
    Page("requests.list_requests", "admin", "/requests?status=any", name="admin:/requests?all"),
)

# GET endpoints that are not pages: HTMX partials (checked inside their pages), files, the API.
NOT_PAGES = {
    "requests.request_timeline": "partial of the request page",
    "requests.request_header": "partial of the request page",
    "requests.canned_reply_text": "partial of the composer",
    "sla.request_sla": "partial of the request page",
    "requests.request_last_change": "the request page's poll (live updates)",
    "requests.request_parts": "partials of the request page (live updates)",
    "dashboard.summary_cards": "partial of the dashboard",
    "dashboard.breach_widget": "partial of the dashboard",
    "dashboard.charts": "partial of the dashboard",
    "notifications.bell": "partial of every page's top bar",
    "requests.download_attachment": "a file",
    "exports.download_export": "a file",
    "admin.download_backup": "a file",
    "admin.download_backup_hmac": "a file",
    "auth.two_factor": "checked in test_two_factor_code_page (needs a pending sign-in)",
    "notifications.open_notification": "redirects to the request (or the list) it is about",
    "static": "files",
}
NOT_PAGE_PREFIXES = ("api.", "health.", "rq_dashboard.", "metrics")


def _url(page: Page, desk: dict) -> str:
    return page.path.format(**desk)


def _check_page(open_as, desk, spec: Page):
    page = open_as(spec.role)
    response = page.goto(_url(spec, desk))
    assert response.status in spec.statuses, f"{spec.id}: HTTP {response.status}"
    if spec.expect_text:
        expect(page.locator("main")).to_contain_text(spec.expect_text)
    page.wait_for_load_state("networkidle")
    assert_sound_page(page, spec.id)
    return page


# pages this work changed, kept as screenshots to look at
SHOTS = {"admin:/dashboard": "243-a11y-dashboard-breaches-with-headers",
         "manager:/sla/breaches": "244-a11y-compliance-row-headers",
         "two_factor:/account/security": "245-a11y-security-two-factor-on",
         "admin:/admin/audit": "246-a11y-audit-targets"}


@pytest.mark.parametrize("spec", PAGES, ids=[p.id for p in PAGES])
def test_page_has_no_serious_violations(open_as, desk, spec, shoot):
    page = _check_page(open_as, desk, spec)
    if spec.id in SHOTS:
        shoot(page, SHOTS[spec.id])


def test_every_page_is_checked(app, open_as, desk):
    """Every GET page of the app is in PAGES; the ones nobody listed that need no argument are checked
    here as an admin (a requester when an admin is turned away), so a new page is covered at once."""
    listed = {p.endpoint for p in PAGES}
    unlisted_simple, unlisted_with_args = [], []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in listed or rule.endpoint in NOT_PAGES:
            continue
        if rule.endpoint.startswith(NOT_PAGE_PREFIXES):
            continue
        (unlisted_with_args if rule.arguments else unlisted_simple).append(rule)
    assert not unlisted_with_args, (
        "pages that take an argument and are not in PAGES (add a row, or to NOT_PAGES with why): "
        + ", ".join(f"{r.endpoint} {r.rule}" for r in unlisted_with_args))
    found = []
    for rule in unlisted_simple:
        for role in ("admin", "requester", "anonymous"):
            page = open_as(role)
            response = page.goto(rule.rule)
            html = "text/html" in (response.headers.get("content-type") or "")
            # a partial (an HTMX endpoint, no doctype) is checked inside the page that includes it
            if response.status < 400 and html and response.text().lstrip()[:15].lower() == "<!doctype html>":
                page.wait_for_load_state("networkidle")
                assert_sound_page(page, f"{role}:{rule.rule} (not in PAGES)")
                found.append(f"{role}:{rule.rule}")
                break
    print("checked beside PAGES:", ", ".join(found) or "none")


def test_two_factor_code_page(browser, live_server, desk):
    """The second step of signing in, reached through the real first step; then with a wrong code."""
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    try:
        page.goto("/login")
        page.fill("#email", EMAILS["two_factor"])
        page.fill("#password", TEST_PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Enter your code")
        assert_sound_page(page, "anonymous:/login/2fa")
        page.fill("#code", "000000")
        page.click("button[type=submit]")
        expect(page.locator("#code")).to_have_attribute("aria-invalid", "true")
        assert_sound_page(page, "anonymous:/login/2fa with a wrong code")
        assert_errors_described(page)
    finally:
        context.close()


def test_error_page(open_as):
    page = open_as("requester")
    response = page.goto("/requests/999999")
    assert response.status == 404
    assert_no_serious_violations(page, "requester:404")


# ---------------------------------------------------------------- states: errors shown, after a change, a dialog

ERRORS_DESCRIBED = """() => {
    const problems = [];
    const invalid = [...document.querySelectorAll("[aria-invalid=true]")];
    for (const control of invalid) {
        const ids = (control.getAttribute("aria-describedby") || "").split(/\\s+/).filter(Boolean);
        const said = ids.map(id => document.getElementById(id)).filter(Boolean)
                        .filter(el => el.matches(".error") && el.textContent.trim());
        if (!said.length) problems.push(`#${control.id} is invalid, but no error message describes it`);
    }
    return {invalid: invalid.length, problems};
}"""


def assert_errors_described(page, at_least: int = 1) -> None:
    """Every control marked invalid is described (aria-describedby) by the message that says why."""
    found = page.evaluate(ERRORS_DESCRIBED)
    assert found["invalid"] >= at_least, f"expected {at_least}+ invalid controls, found {found['invalid']}"
    assert not found["problems"], "\n".join(found["problems"])


def test_new_request_with_field_errors(open_as, shoot):
    page = open_as("requester")
    page.goto("/requests/new")
    page.click("button:has-text('Create request')")
    expect(page.locator("#title")).to_have_attribute("aria-invalid", "true")
    assert_sound_page(page, "requester:/requests/new with field errors")
    assert_errors_described(page, at_least=3)  # title, category, description
    # the priority's help stays described beside any error
    assert "priority-help" in (page.get_attribute("#priority", "aria-describedby") or "")
    shoot(page, "240-a11y-new-request-errors")


def test_reports_page_with_a_bad_period(open_as):
    page = open_as("manager")
    page.goto("/reports")
    page.fill("#start", "2020-01-01")
    page.click("button:has-text('Make the PDF report')")
    expect(page.locator(".flash-error")).to_contain_text("at most 366 days")
    assert_sound_page(page, "manager:/reports with a bad period")
    assert_errors_described(page)


def test_security_page_with_a_wrong_password(open_as):
    page = open_as("requester")
    page.goto("/account/security")
    page.fill("#current", "not my password at all")
    page.fill("#password", "a brand new passphrase")
    page.fill("#confirm", "a different passphrase")
    page.click("button:has-text('Change password')")
    expect(page.locator("[aria-invalid=true]").first).to_be_visible()
    assert_sound_page(page, "requester:/account/security with errors")
    assert_errors_described(page)


def test_composer_with_an_empty_reply(open_as, desk):
    page = open_as("agent")
    page.goto(f"/requests/{desk['request']}")
    page.click("#comment-form button.primary.reply-only")
    expect(page.locator("#composer-body-error")).to_be_visible()
    assert_sound_page(page, "agent:/requests/<id> after an empty reply")
    assert_errors_described(page)


def test_exemption_form_open_with_errors(open_as, desk):
    page = open_as("manager")
    page.goto(f"/requests/{desk['breached']}")
    page.click("summary:has-text('Grant an exemption')")
    page.click("button:has-text('Grant exemption')")
    expect(page.locator("#sla-panel [aria-invalid=true]").first).to_be_visible()
    assert_sound_page(page, "manager:/requests/<id> exemption refused")
    assert_errors_described(page)


def test_admin_menu_open(open_as):
    page = open_as("admin")
    page.goto("/admin/users")
    page.click("details.admin-menu > summary")
    expect(page.locator("details.admin-menu nav")).to_be_visible()
    assert_sound_page(page, "admin: the Admin menu open")


def test_queue_shortcuts_dialog_open(open_as):
    page = open_as("agent")
    page.goto("/requests")
    page.locator("body").press("?")
    dialog = page.locator("dialog#shortcuts")
    expect(dialog).to_be_visible()
    assert_sound_page(page, "agent:/requests with the shortcuts dialog open")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_request_page_after_an_htmx_change_keeps_the_focus(open_as, desk, shoot):
    """Assigning with the panel's button: the panel is swapped, the focus stays on its Assign button
    (re-rendered), not on <body>; "Assign to me" goes away once used, and the focus goes to the outcome."""
    page = open_as("agent")
    page.goto(f"/requests/{desk['breached']}")
    page.evaluate("window.__noReload = true")
    page.select_option("#assignee-select", label="Sam Rivera")
    page.focus("#request-panel button:text-is('Assign')")
    page.keyboard.press("Enter")
    expect(page.locator("#request-panel .flash-success")).to_have_text("Assigned to Sam Rivera.")
    focused = page.evaluate("""() => { const el = document.activeElement;
        return {tag: el.tagName, text: el.textContent.trim(), inPanel: !!el.closest('#request-panel')}; }""")
    assert focused == {"tag": "BUTTON", "text": "Assign", "inPanel": True}, focused
    assert_sound_page(page, "agent:/requests/<id> after assigning")
    shoot(page, "241-a11y-focus-kept-after-assigning")

    page.focus("#request-panel button:text-is('Assign to me')")
    page.keyboard.press("Enter")
    expect(page.locator("#request-panel .flash-success")).to_have_text("You took this request.")
    focused = page.evaluate("""() => { const el = document.activeElement;
        return {tag: el.tagName, text: el.textContent.trim(), inPanel: !!el.closest('#request-panel')}; }""")
    assert focused == {"tag": "DIV", "text": "You took this request.", "inPanel": True}, focused
    assert page.evaluate("window.__noReload") is True
    assert_sound_page(page, "agent:/requests/<id> after taking it")


# ---------------------------------------------------------------- the points axe does not judge

def _luminance(rgb: tuple[float, float, float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """The WCAG contrast ratio of two sRGB colours."""
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _rgb(css: str) -> tuple[float, float, float]:
    values = [float(v) for v in re.findall(r"[\d.]+", css)[:3]]
    return values[0], values[1], values[2]


FOCUS_RING = """() => {
    const el = document.activeElement, style = getComputedStyle(el);
    // what the ring is drawn against: outside the element (offset >= 0), the nearest painted background
    let behind = parseFloat(style.outlineOffset) >= 0 ? el.parentElement : el;
    while (behind && ["rgba(0, 0, 0, 0)", "transparent"].includes(getComputedStyle(behind).backgroundColor))
        behind = behind.parentElement;
    return {what: el.outerHTML.slice(0, 80), outline: style.outlineColor, width: parseFloat(style.outlineWidth),
            ringStyle: style.outlineStyle,
            behind: behind ? getComputedStyle(behind).backgroundColor : "rgb(255, 255, 255)"};
}"""


def test_focus_ring_contrast_is_at_least_3_to_1(open_as, desk, shoot):
    """WCAG 2.4.11 / 1.4.11: the focus ring, on the controls a keyboard reaches, 3:1 against what is
    behind it; and the stylesheet's ring colour 3:1 against every surface colour it declares."""
    from pathlib import Path

    css = (Path(__file__).parents[2] / "static" / "css" / "portal.css").read_text(encoding="utf-8")
    ring = re.search(r"--focus:\s*(#[0-9a-fA-F]{6})", css)
    assert ring, "portal.css declares the focus ring colour as --focus"
    hex_rgb = lambda h: tuple(int(h[i:i + 2], 16) for i in (1, 3, 5))  # noqa: E731
    for name in ("bg", "surface", "accent-soft", "danger-soft", "ok-soft", "warn-soft"):
        surface = re.search(rf"--{name}:\s*(#[0-9a-fA-F]{{6}})", css).group(1)
        assert contrast(hex_rgb(ring.group(1)), hex_rgb(surface)) >= 3, f"focus ring on --{name}"

    page = open_as("agent")
    page.goto(f"/requests/{desk['request']}")
    seen = []
    for _ in range(25):  # the skip link, the bar, the page's links, buttons and fields, by keyboard
        page.keyboard.press("Tab")
        ring = page.evaluate(FOCUS_RING)
        if ring["what"].startswith("<body"):
            continue
        seen.append(ring)
        assert ring["ringStyle"] != "none" and ring["width"] >= 2, f"no visible focus ring: {ring}"
        ratio = contrast(_rgb(ring["outline"]), _rgb(ring["behind"]))
        assert ratio >= 3, f"focus ring contrast {ratio:.2f}:1 on {ring}"
    assert len(seen) >= 20
    page.focus("#request-panel button.primary")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")  # by keyboard, so :focus-visible draws the ring
    page.locator("#request-panel").screenshot(path=str(shoot(page, "242-a11y-focus-ring")))


def test_badge_text_is_at_least_12px(open_as, desk):
    page = open_as("agent")
    page.goto("/requests?status=any")
    sizes = page.evaluate("[...document.querySelectorAll('.badge')].map(b => parseFloat(getComputedStyle(b).fontSize))")
    assert sizes and min(sizes) >= 12, sizes


def test_loading_part_is_aria_busy(open_as):
    """While the list loads after a search, its part says aria-busy="true"; after, no longer."""
    page = open_as("agent")
    page.goto("/requests?status=any")
    table = page.locator("#request-table")
    expect(table).not_to_have_attribute("aria-busy", "true")
    held = []
    page.route(re.compile(r".*/requests\?.*q=printer.*"), lambda route: held.append(route))
    page.fill("#q", "printer")
    expect(table).to_have_attribute("aria-busy", "true")
    assert held, "the search went out"
    held[0].continue_()
    expect(page.locator("#request-table tbody tr")).to_have_count(1)
    expect(page.locator("#request-table")).not_to_have_attribute("aria-busy", "true")


def test_new_request_form_is_sent_once(open_as, app):
    """A double click (or Enter again) while the form is on its way sends it once, and the buttons say so."""
    from portal.extensions import db
    from portal.models import ServiceRequest

    page = open_as("requester")
    page.goto("/requests/new")
    page.fill("#title", "Sent once, however often pressed")
    page.select_option("#category", "hardware")
    page.fill("#description", "A double click should not make two requests.")
    posts, held = [], []

    def hold(route):
        posts.append(route.request.url)
        held.append(route)

    page.route("**/requests/new", lambda route: hold(route) if route.request.method == "POST" else route.continue_())
    # One script, run before the page goes: locators and later scripts wait for the navigation to end.
    state = page.evaluate("""async () => {
        const form = document.querySelector('form[data-submit-once]'), button = form.querySelector('button.primary');
        button.click();                                   // the first press: the form is on its way
        await new Promise(resolve => setTimeout(resolve, 50));
        const state = {disabled: button.disabled, busy: form.getAttribute('aria-busy')};
        form.requestSubmit();                             // a second press, or Enter in a field
        return state;
    }""")
    assert state == {"disabled": True, "busy": "true"}, state
    page.wait_for_timeout(300)
    assert len(posts) == 1, posts
    held[0].continue_()
    page.wait_for_url(re.compile(r".*/requests/\d+$"))
    expect(page.locator("h1")).to_contain_text("Sent once, however often pressed")
    with app.app_context():
        assert db.session.query(ServiceRequest).filter_by(title="Sent once, however often pressed").count() == 1
        db.session.remove()


def test_request_page_with_the_live_update_banner(open_as, desk, app):
    """A colleague changed the request while this agent was typing: the banner, not a swap."""
    from portal.extensions import db
    from portal.models import User
    from portal.services import requests as svc
    from tests.browser.test_live_updates_journey import POLL_NOW

    page = open_as("agent")
    page.goto(f"/requests/{desk['request']}")
    page.fill("textarea[name=body]", "Half a reply")
    with app.app_context():
        manager = db.session.scalar(db.select(User).where(User.email == EMAILS["manager"]))
        svc.update_request(manager, desk["request"], {"priority": "high"})
        db.session.remove()
    page.evaluate(POLL_NOW)
    expect(page.locator("#live-updates .live-banner")).to_contain_text("Updated by Mona Manager")
    assert_sound_page(page, "agent:/requests/<id> with the live-update banner")
