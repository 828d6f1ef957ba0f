"""An admin fills a business calendar's holidays from the public holiday list, in a real browser:
the dashboard's reminder, the review with a box per date, refusals, the save, and a removal that asks
first; then the same without JavaScript."""

from __future__ import annotations

import re
from datetime import date, time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, sign_in
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture()
def office(factories):
    """Ada the admin and the London office calendar, which an active SLA counts by, with this year's
    Christmas only: nothing for the coming year, so the dashboard reminds her."""
    from portal.models._time import utcnow
    from portal.services import sla_admin

    this_year = utcnow().year
    admin = factories.make_user("admin", email="ada@example.com", name="Ada Admin")
    cal = sla_admin.create_calendar(admin, {"name": "London office", "timezone": "Europe/London",
                                            "working_days": [0, 1, 2, 3, 4], "opens": time(9), "closes": time(18)})
    sla_admin.add_holiday(admin, cal.id, date(this_year, 12, 25), "Christmas Day")
    sla_admin.create_definition(admin, {"category": "software", "priority": "medium", "response_time_hours": 4,
                                        "resolution_time_hours": 24, "calendar_id": cal.id})
    return {"id": cal.id, "year": this_year}


def _england(first: int, last: int) -> dict[date, str]:
    from portal.services import public_holidays

    return public_holidays.lookup("GB", "ENG", first, last).holidays


def _saved(calendar_id: int) -> dict[date, str]:
    from portal.extensions import db
    from portal.models import Holiday

    db.session.expire_all()
    return {h.day: h.name for h in db.session.query(Holiday).filter_by(calendar_id=calendar_id)}


def test_admin_fills_holidays_from_the_public_list_and_removes_one(page, office, shoot):
    this_year, next_year = office["year"], office["year"] + 1
    listed = _england(this_year, next_year)
    sign_in(page, "ada@example.com", TEST_PASSWORD)
    page.click("nav >> text=Dashboard")
    reminder = page.locator("#holiday-reminder")
    expect(reminder).to_contain_text(f"No holidays for {next_year} yet in London office.")
    shoot(page, "140-holiday-reminder")

    reminder.locator("a", has_text="London office").click()
    page.wait_for_url(re.compile(rf"/admin/calendars/{office['id']}#holiday-import$"))
    page.evaluate("window.__noReload = true")
    page.select_option("#country", "GB")  # the regions of the country come in; the national list shows
    expect(page.locator("#subdivision option")).to_contain_text(["England", "Northern Ireland", "Scotland", "Wales"])
    expect(page.locator(".holiday-review h3")).to_have_text(f"United Kingdom, {this_year}–{next_year}")
    page.select_option("#subdivision", "ENG")
    review = page.locator(".holiday-review")
    expect(review.locator("h3")).to_have_text(f"United Kingdom (England), {this_year}–{next_year}")
    boxes = review.locator("ul.review input[type=checkbox]")
    expect(boxes).to_have_count(len(listed))
    expect(review.locator("ul.review input[type=checkbox]:checked")).to_have_count(len(listed))  # all ticked
    christmas = review.locator("li.on-calendar")
    expect(christmas).to_have_count(1)
    expect(christmas).to_contain_text("Christmas Day")
    expect(christmas).to_contain_text("On the calendar")
    expect(christmas.locator("input")).to_be_disabled()
    assert page.evaluate("window.__noReload") is True
    shoot(page, "141-holiday-review")

    # Years the wrong way round: said on the field, no list.
    page.fill("#first_year", str(next_year))
    page.fill("#last_year", str(this_year))
    page.click("button:has-text('Show holidays')")
    expect(page.locator("#last_year-help ~ .error, #last_year ~ .error")).to_have_text(
        "The last year is before the first year.")
    expect(page.locator(".holiday-review")).to_have_count(0)
    page.fill("#first_year", str(next_year))
    page.fill("#last_year", str(next_year))
    page.click("button:has-text('Show holidays')")
    only_next = _england(next_year, next_year)
    expect(review.locator("ul.review input[type=checkbox]:checked")).to_have_count(len(only_next))

    # Nothing ticked: refused beside the list, nothing saved.
    offered = review.locator("ul.review input[name='import-days']")
    for box in offered.all():
        box.uncheck()
    page.click("button:has-text('Add ticked holidays')")
    expect(review.locator(".error")).to_have_text("Tick at least one date to add.")
    assert set(_saved(office["id"])) == {date(this_year, 12, 25)}
    shoot(page, "142-holiday-nothing-ticked")

    for box in offered.all():
        box.check()
    skipped = min(only_next)  # New Year's Day: the office works on it, say
    review.locator(f"input[value='{skipped.isoformat()}']").uncheck()
    page.click("button:has-text('Add ticked holidays')")
    expect(page.locator("#calendar-admin .flash-success")).to_have_text(
        f"Added {len(only_next) - 1} holidays of United Kingdom (England), {next_year}.")
    expect(page.locator(".holiday-review")).to_have_count(0)
    assert set(_saved(office["id"])) == {date(this_year, 12, 25)} | (set(only_next) - {skipped})
    expect(page.locator("ul.holidays:not(.review) > li")).to_have_count(len(only_next))
    assert page.evaluate("window.__noReload") is True
    shoot(page, "143-holidays-added")

    # Removing asks first; Keep leaves it; Confirm removal removes it.
    last = max(only_next)
    row = page.locator("ul.holidays > li", has_text=last.strftime("%a %d %b %Y"))
    row.locator("button:has-text('Remove')").click()
    question = page.locator("li.confirming")
    expect(question).to_contain_text(f"Remove {only_next[last]} ({last:%a %d %b %Y})?")
    expect(question.locator("button:has-text('Confirm removal')")).to_be_focused()
    shoot(page, "144-holiday-confirm-removal")
    question.locator("a:has-text('Keep it')").click()
    expect(page.locator("li.confirming")).to_have_count(0)
    assert last in _saved(office["id"])
    row.locator("button:has-text('Remove')").click()
    page.click("button:has-text('Confirm removal')")
    expect(page.locator("#calendar-admin .flash-success")).to_have_text(
        f"{only_next[last]} ({last.isoformat()}) removed.")
    assert last not in _saved(office["id"])
    assert page.evaluate("window.__noReload") is True

    page.click("nav >> text=Dashboard")
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("#holiday-reminder")).to_have_count(0)


def test_without_javascript_the_review_the_import_and_the_removal_work(browser, live_server, office):
    next_year = office["year"] + 1
    only_next = _england(next_year, next_year)
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860},
                                  java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, "ada@example.com", TEST_PASSWORD)
        page.goto(f"/admin/calendars/{office['id']}")
        page.select_option("#country", "GB")
        page.fill("#first_year", str(next_year))
        page.fill("#last_year", str(next_year))
        page.click("button:has-text('Show holidays')")  # a plain GET: the national list, and the regions
        page.wait_for_url(re.compile(r"/holidays/import\?"))
        page.select_option("#subdivision", "ENG")
        page.click("button:has-text('Show holidays')")
        expect(page.locator(".holiday-review h3")).to_have_text(f"United Kingdom (England), {next_year}")
        expect(page.locator(".holiday-review ul.review input[type=checkbox]:checked")).to_have_count(len(only_next))
        page.screenshot(path=str(SCREENSHOTS / "145-holiday-review-no-js.png"), full_page=True)
        page.click("button:has-text('Add ticked holidays')")
        page.wait_for_url(re.compile(rf"/admin/calendars/{office['id']}$"))  # redirected: a reload never re-posts
        expect(page.locator(".flash-success")).to_have_text(
            f"Added {len(only_next)} holidays of United Kingdom (England), {next_year}.")

        first = min(only_next)
        page.locator("ul.holidays > li", has_text=first.strftime("%a %d %b %Y")).locator(
            "button:has-text('Remove')").click()
        page.wait_for_url(re.compile(r"\?remove=\d+#holiday-\d+$"))  # the question, on a page of its own
        page.reload()  # asks again; removes nothing
        expect(page.locator("li.confirming")).to_contain_text(f"Remove {only_next[first]}")
        assert first in _saved(office["id"])
        page.click("button:has-text('Confirm removal')")
        expect(page.locator(".flash-success")).to_have_text(f"{only_next[first]} ({first.isoformat()}) removed.")
        assert first not in _saved(office["id"])
    finally:
        context.close()
