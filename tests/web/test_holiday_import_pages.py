"""The calendar page's public holiday import (/admin/calendars/<id>/holidays/import), the removal that
asks first, and the dashboard's reminder of calendars without holidays for the coming year."""

from __future__ import annotations

import re
import threading
from datetime import date, time
from html import unescape

import pytest

from tests.web.helpers import HX, text_of


def _field_errors(html: str, field_id: str) -> list[str]:
    """The error lines under one field (its .field block)."""
    start = html.index(f'id="{field_id}"')
    block_start = html.rindex('<div class="field', 0, start)
    block_end = html.find('<div class="field', start)
    block = html[block_start:block_end if block_end != -1 else None]
    return [unescape(e) for e in re.findall(r'<p class="error"[^>]*role="alert">([^<]*)</p>', block)]


def _review(html: str) -> list[tuple[str, bool, bool]]:
    """The review's dates: (date, ticked, offered) — offered False for one already on the calendar."""
    if '<ul class="holidays review">' not in html:
        return []
    block = html[html.index('<ul class="holidays review">'):]
    block = block[:block.index("</ul>")]
    out = []
    for tag in re.findall(r'<input type="checkbox"[^>]*>', block):
        value = re.search(r'value="([^"]+)"', tag)
        out.append((value.group(1) if value else "", " checked" in tag, " disabled" not in tag))
    return out


def _england(first: int, last: int) -> dict[date, str]:
    from portal.services import public_holidays

    return public_holidays.lookup("GB", "ENG", first, last).holidays


def _this_year(app) -> int:
    from portal.models._time import utcnow

    return utcnow().year


@pytest.fixture()
def office(app, make):
    """An admin, a manager, and the London office calendar with one holiday (this year's Christmas)."""
    from portal.policy import SYSTEM
    from portal.services import sla_admin

    year = _this_year(app)
    with app.app_context():
        cal = sla_admin.create_calendar(SYSTEM, {"name": "London office", "timezone": "Europe/London",
                                                 "working_days": [0, 1, 2, 3, 4], "opens": time(9),
                                                 "closes": time(18)})
        holiday, _ = sla_admin.add_holiday(SYSTEM, cal.id, date(year, 12, 25), "Xmas")
        cal_id, holiday_id = cal.id, holiday.id
    return {"id": cal_id, "holiday_id": holiday_id, "year": year, "admin": make.user("admin"),
            "manager": make.user("manager")}


@pytest.fixture()
def admin(login_client, office):
    return login_client(office["admin"])


def _saved(app, calendar_id: int) -> dict[date, str]:
    from portal.extensions import db
    from portal.models import Holiday

    with app.app_context():
        return {h.day: h.name for h in db.session.query(Holiday).filter_by(calendar_id=calendar_id)}


def _audit_count(app) -> int:
    from sqlalchemy import func, select

    from portal.extensions import db
    from portal.models import AuditLog

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuditLog)
                                 .where(AuditLog.action == "calendar.holiday_added"))


def _save(year: int, days, **extra) -> dict:
    return {"import-country": "GB", "import-subdivision": "ENG", "import-first_year": str(year),
            "import-last_year": str(year), "import-days": days, **extra}


# ---------------------------------------------------------------- the lookup form and the review


def test_calendar_page_offers_the_packages_countries(admin, app, office):
    from portal.services import public_holidays

    html = text_of(admin.get(f"/admin/calendars/{office['id']}"))
    select = re.search(r'<select[^>]*\sid="country"[^>]*>(.*?)</select>', html, re.S).group(1)
    options = re.findall(r'<option[^>]*value="([^"]*)"', select)
    assert options == [""] + [code for code, _ in public_holidays.countries()]
    assert '<option value="GB">United Kingdom</option>' in select
    assert re.search(rf'id="first_year"[^>]*value="{office["year"]}"', html)
    assert re.search(rf'id="last_year"[^>]*value="{office["year"] + 1}"', html)
    assert _review(html) == []


@pytest.mark.parametrize("headers", [{}, HX], ids=["plain", "htmx"])
def test_review_lists_every_date_ticked_and_marks_the_ones_on_the_calendar(admin, app, office, headers):
    year = office["year"]
    response = admin.get(f"/admin/calendars/{office['id']}/holidays/import?country=GB&subdivision=ENG"
                         f"&first_year={year}&last_year={year + 1}", headers=headers)
    assert response.status_code == 200
    html = text_of(response)
    assert ("<html" in html) == (headers == {})
    if headers:
        assert html.lstrip().startswith('<div id="calendar-admin"')
    listed = _england(year, year + 1)
    christmas = date(year, 12, 25).isoformat()
    assert _review(html) == [(d.isoformat(), True, d.isoformat() != christmas) for d in listed]
    assert "Xmas <span class=\"badge\">On the calendar</span>" in html  # the calendar's own name for it
    assert f"United Kingdom (England), {year}–{year + 1}" in html
    assert f"{len(listed) - 1} to add; 1 already on this calendar." in html
    # The subdivision select now lists the country's regions, England chosen.
    assert '<option selected value="ENG">England</option>' in html
    assert _saved(app, office["id"]) == {date(year, 12, 25): "Xmas"}  # a GET changes nothing


def test_review_of_a_country_without_region_is_the_national_list(admin, office):
    year = office["year"] + 1
    html = text_of(admin.get(f"/admin/calendars/{office['id']}/holidays/import?country=gb&first_year={year}"
                             f"&last_year={year}", headers=HX))
    assert f"United Kingdom, {year}</h3>" in html
    assert '<option selected value="GB">United Kingdom</option>' in html  # the code taken in any case


@pytest.mark.parametrize(("query", "field", "message"), [
    ("country=XX&first_year=2027&last_year=2027", "country",
     "Choose a country from the list; the holiday list does not know that one."),
    ("first_year=2027&last_year=2027", "country", "Choose a country."),
    ("country=GB&subdivision=Bavaria&first_year=2027&last_year=2027", "subdivision",
     "Choose a region of United Kingdom from the list, or the whole country for national holidays only."),
    ("country=GB&first_year=2028&last_year=2027", "last_year", "The last year is before the first year."),
    ("country=GB&first_year=2027&last_year=2032", "last_year",
     "Choose at most 5 years at a time (from 2027, up to 2031)."),
    ("country=GB&first_year=&last_year=2027", "first_year", "Enter a year such as 2027."),
    ("country=GB&first_year=1e3&last_year=2027", "first_year", "Enter a year between 2000 and 2100."),
    ("country=GB&first_year=2027&last_year=" + "9" * 5000, "last_year", "Enter a year between 2000 and 2100."),
    ("country=%00&first_year=2027&last_year=2027", "country",
     "Choose a country from the list; the holiday list does not know that one."),
])
@pytest.mark.parametrize("headers", [{}, HX], ids=["plain", "htmx"])
def test_review_refuses_bad_input_beside_the_field(admin, app, office, query, field, message, headers):
    response = admin.get(f"/admin/calendars/{office['id']}/holidays/import?{query}", headers=headers)
    assert response.status_code == 422
    html = text_of(response)
    assert message in _field_errors(html, field)
    assert _review(html) == []


def test_review_repeated_fields_and_unknown_calendar(admin, office):
    url = f"/admin/calendars/{office['id']}/holidays/import"
    response = admin.get(f"{url}?country=GB&country=FR&first_year=2027&last_year=2027", headers=HX)
    assert response.status_code == 200 and "United Kingdom, 2027</h3>" in text_of(response)  # the first wins
    assert admin.get("/admin/calendars/99999/holidays/import?country=GB&first_year=2027&last_year=2027"
                     ).status_code == 404


def test_review_page_ids_are_unique(admin, office):
    year = office["year"]
    html = text_of(admin.get(f"/admin/calendars/{office['id']}/holidays/import?country=GB&subdivision=ENG"
                             f"&first_year={year}&last_year={year + 1}"))
    seen, dups = set(), set()
    for element_id in re.findall(r'\sid="([^"]+)"', html):
        (dups if element_id in seen else seen).add(element_id)
    assert dups == set()


# ---------------------------------------------------------------- saving


def test_save_htmx_adds_the_ticked_dates_and_shows_the_calendar(admin, app, office):
    year = office["year"] + 1
    listed = _england(year, year)
    ticked = [d.isoformat() for d in listed][1:]  # New Year's Day unticked
    before = _audit_count(app)
    response = admin.post(f"/admin/calendars/{office['id']}/holidays/import", data=_save(year, ticked), headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<div id="calendar-admin"')
    assert f"Added {len(ticked)} holidays of United Kingdom (England), {year}." in html
    assert _review(html) == []  # the review is done
    saved = _saved(app, office["id"])
    assert saved == {date(year - 1, 12, 25): "Xmas", **{d: n for d, n in listed.items() if d != min(listed)}}
    assert _audit_count(app) == before + len(ticked)
    for day in ticked:
        assert date.fromisoformat(day).strftime("%a %d %b %Y") + "</strong> " in html


def test_save_plain_redirects_so_a_reload_never_adds_twice(admin, app, office):
    year = office["year"] + 1
    listed = _england(year, year)
    response = admin.post(f"/admin/calendars/{office['id']}/holidays/import",
                          data=_save(year, [d.isoformat() for d in listed]))
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/admin/calendars/{office['id']}")
    page = text_of(admin.get(response.headers["Location"]))
    assert f"Added {len(listed)} holidays of United Kingdom (England), {year}." in page
    assert len(_saved(app, office["id"])) == len(listed) + 1


def test_save_with_apply_to_open_queues_one_rebuild(admin, app, office):
    from portal.queueing import get_queue

    year = office["year"] + 1
    response = admin.post(f"/admin/calendars/{office['id']}/holidays/import", headers=HX,
                          data=_save(year, [min(_england(year, year)).isoformat()], **{"import-apply_to_open": "y"}))
    assert response.status_code == 200
    assert ("Added 1 holiday of United Kingdom (England), " + str(year) + ". Open requests are being "
            "recalculated in the background.") in text_of(response)
    with app.app_context():
        assert [(j.func_name, j.args) for j in get_queue("analytics").jobs] == [
            ("jobs.analytics.rebuild_sla_clocks", (None, office["id"]))]


def test_save_with_nothing_ticked_is_refused_beside_the_list(admin, app, office):
    year = office["year"] + 1
    before = _audit_count(app)
    for data in (_save(year, []), {k: v for k, v in _save(year, []).items() if k != "import-days"}):
        response = admin.post(f"/admin/calendars/{office['id']}/holidays/import", data=data, headers=HX)
        assert response.status_code == 422
        html = text_of(response)
        assert '<p class="error" id="import-days-error" role="alert">Tick at least one date to add.</p>' in html
        assert 'aria-describedby="import-days-error"' in html  # the ticks' fieldset is described by it
        review = _review(html)
        assert len(review) == len(_england(year, year)) and not any(ticked for _, ticked, _ in review)
    assert _saved(app, office["id"]) == {date(year - 1, 12, 25): "Xmas"}
    assert _audit_count(app) == before


def test_save_keeps_the_admins_ticks_when_refused(admin, office):
    year = office["year"] + 1
    listed = [d.isoformat() for d in _england(year, year)]
    response = admin.post(f"/admin/calendars/{office['id']}/holidays/import", headers=HX,
                          data=_save(year, [listed[0], "1999-01-01"]))
    assert response.status_code == 422
    html = text_of(response)
    assert ("Some ticked dates are not public holidays of United Kingdom (England) in " + str(year)) in unescape(html)
    assert [d for d, ticked, _ in _review(html) if ticked] == [listed[0]]


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"import-country": "Narnia"}, "country",
     "Choose a country from the list; the holiday list does not know that one."),
    ({"import-subdivision": "Atlantis"}, "subdivision",
     "Choose a region of United Kingdom from the list, or the whole country for national holidays only."),
    ({"import-first_year": "2031", "import-last_year": "2025"}, "last_year", "The last year is before the first year."),
])
def test_save_of_a_hand_made_lookup_is_refused_and_saves_nothing(admin, app, office, changes, field, message):
    year = office["year"] + 1
    response = admin.post(f"/admin/calendars/{office['id']}/holidays/import", headers=HX,
                          data={**_save(year, [f"{year}-12-27"]), **changes})
    assert response.status_code == 422
    html = text_of(response)
    assert message in _field_errors(html, field)
    assert _review(html) == []
    assert _saved(app, office["id"]) == {date(year - 1, 12, 25): "Xmas"}


def test_save_needs_the_csrf_token(admin, app, office, csrf_on):
    year = office["year"] + 1
    response = admin.post(f"/admin/calendars/{office['id']}/holidays/import", data=_save(year, [f"{year}-12-27"]))
    assert response.status_code == 400
    assert len(_saved(app, office["id"])) == 1


def test_save_is_for_admins_only(login_client, app, office):
    manager = login_client(office["manager"])
    year = office["year"] + 1
    for method, kwargs in (("GET", {"query_string": {"country": "GB", "first_year": year, "last_year": year}}),
                           ("POST", {"data": _save(year, [f"{year}-12-27"])})):
        assert manager.open(f"/admin/calendars/{office['id']}/holidays/import", method=method,
                            **kwargs).status_code == 403
    assert len(_saved(app, office["id"])) == 1


def _post_together(clients, url: str, data: dict) -> list:
    """Each client posts `data` to `url` in its own thread, all released at once; their responses."""
    barrier = threading.Barrier(len(clients))
    responses: list = [None] * len(clients)

    def post(i: int) -> None:
        barrier.wait()
        responses[i] = clients[i].post(url, data=data, headers=HX)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a post never finished (deadlock?)"
    return responses


def test_two_admins_saving_at_once_get_no_error_and_no_duplicate(app, login_client, make, office):
    """Two browsers post the same review at the same moment, over real PostgreSQL: both answered
    (one adds, the other finds the dates there), never a 500, each date once."""
    from portal.policy import SYSTEM
    from portal.services import sla_admin

    year = office["year"] + 1
    listed = [d.isoformat() for d in _england(year, year)]
    clients = [login_client(office["admin"]), login_client(make.user("admin"))]
    for round_ in range(4):
        with app.app_context():
            calendar_id = sla_admin.create_calendar(SYSTEM, {
                "name": f"Office {round_}", "timezone": "Europe/London", "working_days": [0, 1, 2, 3, 4],
                "opens": time(9), "closes": time(18)}).id
        responses = _post_together(clients, f"/admin/calendars/{calendar_id}/holidays/import", _save(year, listed))
        assert [r.status_code for r in responses] == [200, 200]
        messages = sorted(re.search(r'role="status">([^<]*)<', text_of(r)).group(1) for r in responses)
        assert messages == sorted([
            f"Added {len(listed)} holidays of United Kingdom (England), {year}.",
            f"No holidays added. {len(listed)} ticked dates were already on the calendar (added meanwhile) and left "
            "as they are."])
        assert sorted(d.isoformat() for d in _saved(app, calendar_id)) == sorted(listed)


# ---------------------------------------------------------------- removing asks first


def test_remove_first_asks_then_removes_on_confirm_htmx(admin, app, office):
    url = f"/admin/holidays/{office['holiday_id']}/delete"
    asked = admin.post(url, headers=HX)
    assert asked.status_code == 200
    html = text_of(asked)
    assert html.lstrip().startswith('<div id="calendar-admin"')
    assert f'<li id="holiday-{office["holiday_id"]}" class="confirming">' in html
    assert f"Remove <strong>Xmas</strong> ({date(office['year'], 12, 25):%a %d %b %Y})?" in html
    assert re.search(r'name="confirm" value="yes">.*Confirm removal</button>', html, re.S)
    assert len(_saved(app, office["id"])) == 1  # nothing removed yet
    for not_yes in ({"confirm": "no"}, {"confirm": ""}, {"confirm": "YES "}):
        assert admin.post(url, data=not_yes, headers=HX).status_code == 200
        assert len(_saved(app, office["id"])) == 1
    done = admin.post(url, data={"confirm": "yes"}, headers=HX)
    assert done.status_code == 200
    assert f"Xmas ({office['year']}-12-25) removed." in text_of(done)
    assert _saved(app, office["id"]) == {}
    assert admin.post(url, data={"confirm": "yes"}, headers=HX).status_code == 404


def test_remove_without_javascript_asks_on_a_page_of_its_own(admin, app, office):
    url = f"/admin/holidays/{office['holiday_id']}/delete"
    asked = admin.post(url)
    assert asked.status_code == 303
    location = asked.headers["Location"]
    assert location.endswith(f"/admin/calendars/{office['id']}?remove={office['holiday_id']}"
                             f"#holiday-{office['holiday_id']}")
    page = text_of(admin.get(location))
    assert "<html" in page and "Confirm removal" in page and 'class="confirming"' in page
    assert len(_saved(app, office["id"])) == 1
    done = admin.post(url, data={"confirm": "yes"})
    assert done.status_code == 303 and "?remove" not in done.headers["Location"]
    assert f"Xmas ({office['year']}-12-25) removed." in unescape(text_of(admin.get(done.headers["Location"])))
    assert _saved(app, office["id"]) == {}


@pytest.mark.parametrize("remove", ["abc", "-1", "99999", "1" * 40, ""])
def test_calendar_page_ignores_a_remove_that_is_not_its_holiday(admin, office, remove):
    response = admin.get(f"/admin/calendars/{office['id']}?remove={remove}")
    assert response.status_code == 200
    assert "Confirm removal" not in text_of(response)


def test_calendar_page_does_not_ask_about_another_calendars_holiday(admin, app, office):
    from portal.policy import SYSTEM
    from portal.services import sla_admin

    with app.app_context():
        other = sla_admin.create_calendar(SYSTEM, {"name": "Other", "timezone": "UTC", "working_days": [0],
                                                   "opens": time(9), "closes": time(17)})
        other_id = other.id
    response = admin.get(f"/admin/calendars/{other_id}?remove={office['holiday_id']}")
    assert response.status_code == 200 and "Confirm removal" not in text_of(response)


# ---------------------------------------------------------------- the dashboard's reminder


def _use(app, calendar_id: int | None, category: str = "software", active: bool = True) -> None:
    from portal.extensions import db
    from portal.models import SlaDefinition

    with app.app_context():
        db.session.add(SlaDefinition(category=category, priority="medium", response_time_hours=4,
                                     resolution_time_hours=24, calendar_id=calendar_id, is_active=active))
        db.session.commit()


def test_dashboard_reminds_of_calendars_in_use_without_next_years_holidays(admin, app, office):
    from portal.policy import SYSTEM
    from portal.services import sla_admin

    next_year = office["year"] + 1
    assert 'id="holiday-reminder"' not in text_of(admin.get("/dashboard"))  # not in use: no reminder
    _use(app, office["id"])
    html = text_of(admin.get("/dashboard"))
    notice = html[html.index('id="holiday-reminder"'):]
    notice = unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", notice[notice.index(">") + 1:
                                                                       notice.index("</div>")]))).strip()
    assert notice == (f"No holidays for {next_year} yet in London office. SLAs on this calendar would count "
                      f"{next_year}'s public holidays as working days; add them from the public holiday list on "
                      "the calendar's page.")
    assert f'<a href="/admin/calendars/{office["id"]}#holiday-import">London office</a>' in html

    with app.app_context():
        second = sla_admin.create_calendar(SYSTEM, {"name": "Berlin office", "timezone": "Europe/Berlin",
                                                    "working_days": [0, 1, 2, 3, 4], "opens": time(9),
                                                    "closes": time(17)}).id
        retired = sla_admin.create_calendar(SYSTEM, {"name": "Retired office", "timezone": "UTC",
                                                     "working_days": [0], "opens": time(9), "closes": time(17)}).id
    _use(app, second, "network")
    _use(app, retired, "access", active=False)
    html = text_of(admin.get("/dashboard"))
    assert re.search(r">Berlin office</a> and <a [^>]*>London office</a>\.\s+SLAs on these calendars", html)
    assert "Retired office" not in html

    with app.app_context():
        sla_admin.add_holiday(SYSTEM, office["id"], date(next_year, 1, 1), "New Year's Day")
        sla_admin.add_holiday(SYSTEM, second, date(next_year, 12, 31), "Silvester")
    assert 'id="holiday-reminder"' not in text_of(admin.get("/dashboard"))
