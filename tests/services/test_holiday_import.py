"""Filling a business calendar's holidays from the `holidays` package: the lookup, the review, the import
(one unit of work through add_holiday's rules), two imports at once, and the dashboard's reminder."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import holidays
import pytest
from sqlalchemy import event, select, text

from portal.extensions import db
from portal.models import AuditLog, Holiday, OutboxMessage, SlaDefinition, User
from portal.policy import SYSTEM
from portal.services import public_holidays, sla_admin
from portal.services.errors import Forbidden, ValidationFailed
from tests.services.test_concurrency import race

ENGLAND_2027 = {  # the package's list for GB / England, 2027 (observed days included)
    date(2027, 1, 1): "New Year's Day", date(2027, 3, 26): "Good Friday", date(2027, 3, 29): "Easter Monday",
    date(2027, 5, 3): "May Day", date(2027, 5, 31): "Spring Bank Holiday",
    date(2027, 8, 30): "Late Summer Bank Holiday", date(2027, 12, 25): "Christmas Day",
    date(2027, 12, 26): "Boxing Day", date(2027, 12, 27): "Christmas Day (observed)",
    date(2027, 12, 28): "Boxing Day (observed)",
}


def _calendar(name: str = "London office", days: dict[date, str] | None = None) -> int:
    cal = sla_admin.create_calendar(SYSTEM, {"name": name, "timezone": "Europe/London", "working_days": [0, 1, 2, 3, 4],
                                             "opens": time(9), "closes": time(18)})
    for day, holiday_name in (days or {}).items():
        sla_admin.add_holiday(SYSTEM, cal.id, day, holiday_name)
    return cal.id


def _holidays(calendar_id: int) -> dict[date, str]:
    db.session.expire_all()
    return dict(db.session.execute(select(Holiday.day, Holiday.name).where(Holiday.calendar_id == calendar_id)
                                   .order_by(Holiday.day)).all())


def _audit(calendar_id: int) -> list[tuple[str, dict | None, dict | None]]:
    return [(a.action, a.before, a.after) for a in db.session.scalars(
        select(AuditLog).where(AuditLog.entity_type == "business_calendar", AuditLog.entity_id == calendar_id,
                               AuditLog.action.like("calendar.holiday%")).order_by(AuditLog.id))]


@pytest.fixture()
def admin(ctx, factories) -> User:
    return factories.make_user("admin")


# ---------------------------------------------------------------- the lookup


def test_countries_and_regions_come_from_the_package(ctx):
    codes = [code for code, _ in public_holidays.countries()]
    assert set(codes) == set(holidays.list_supported_countries(include_aliases=False))
    assert len(codes) == len(set(codes))
    names = dict(public_holidays.countries())
    assert names["GB"] == "United Kingdom" and names["DE"] == "Germany"
    assert names["US"] == "United States of America"  # the package's "(the)" dropped
    assert [n for _, n in public_holidays.countries()] == sorted((n for _, n in public_holidays.countries()),
                                                                 key=str.casefold)
    assert public_holidays.subdivisions("GB") == (("ENG", "England"), ("NIR", "Northern Ireland"),
                                                  ("SCT", "Scotland"), ("WLS", "Wales"))
    assert {c for c, _ in public_holidays.subdivisions("US")} == set(
        holidays.list_supported_countries(include_aliases=False)["US"])
    assert public_holidays.subdivisions("XX") == () and public_holidays.subdivisions("") == ()


def test_lookup_gives_the_packages_holidays_for_the_years_asked(ctx):
    found = public_holidays.lookup("GB", "ENG", 2027, 2027)
    assert found.holidays == ENGLAND_2027
    assert (found.place, found.years) == ("United Kingdom (England)", "2027")
    two = public_holidays.lookup("GB", "ENG", "2026", "2027")
    assert two.years == "2026–2027"
    assert {d.year for d in two.holidays} == {2026, 2027}
    assert list(two.holidays) == sorted(two.holidays)
    # Scotland has its own (2 January, St Andrew's Day); national holidays alone have neither region's.
    scotland = public_holidays.lookup("GB", "SCT", 2027, 2027).holidays
    assert date(2027, 1, 2) in scotland and date(2027, 1, 2) not in ENGLAND_2027
    national = public_holidays.lookup("GB", "", 2027, 2027)
    assert national.subdivision is None and national.place == "United Kingdom"


@pytest.mark.parametrize(("country", "subdivision"), [("gb", "England"), (" GB ", "eng"), ("GB", "ENG")])
def test_lookup_takes_codes_or_names_in_any_case(ctx, country, subdivision):
    found = public_holidays.lookup(country, subdivision, 2027, 2027)
    assert (found.country, found.subdivision, found.subdivision_name) == ("GB", "ENG", "England")


def test_lookup_names_are_english_where_the_package_has_them(ctx):
    germany = public_holidays.lookup("DE", "BY", 2027, 2027).holidays
    assert germany[date(2027, 1, 1)] == "New Year's Day"  # not "Neujahr"


@pytest.mark.parametrize(("values", "errors"), [
    (("XX", None, 2027, 2027), {"country": "Choose a country from the list; the holiday list does not know that one."}),
    (("", None, 2027, 2027), {"country": "Choose a country."}),
    ((None, None, 2027, 2027), {"country": "Choose a country."}),
    (("GB", "Bavaria", 2027, 2027),
     {"subdivision": "Choose a region of United Kingdom from the list, or the whole country for national holidays "
                     "only."}),
    (("DE", "ENG", 2027, 2027),
     {"subdivision": "Choose a region of Germany from the list, or the whole country for national holidays only."}),
    (("AQ", "South Pole", 2027, 2027),
     {"subdivision": "The holiday list has no regions for Antarctica; choose the whole country."}),
    (("GB", "ENG", 2028, 2027), {"last_year": "The last year is before the first year."}),
    (("GB", "ENG", 2026, 2031), {"last_year": "Choose at most 5 years at a time (from 2026, up to 2030)."}),
    (("GB", "ENG", "", "2027"), {"first_year": "Enter a year such as 2027."}),
    (("GB", "ENG", "twenty", "2027"), {"first_year": "Enter a year between 2000 and 2100."}),
    (("GB", "ENG", "2027", "99999999999999"), {"last_year": "Enter a year between 2000 and 2100."}),
    (("GB", "ENG", 1999, 2000), {"first_year": "Enter a year between 2000 and 2100."}),
    (("GB", "ENG", "-2027", 2027), {"first_year": "Enter a year between 2000 and 2100."}),
    ((["GB"], {"x": 1}, 2027.5, True),
     {"country": "Choose a country.", "first_year": "Enter a year between 2000 and 2100.",
      "last_year": "Enter a year between 2000 and 2100."}),
])
def test_lookup_refuses_bad_input_with_a_message_per_field(ctx, values, errors):
    with pytest.raises(ValidationFailed) as caught:
        public_holidays.lookup(*values)
    assert caught.value.fields == errors


# ---------------------------------------------------------------- the review


def test_preview_marks_the_dates_already_on_the_calendar(ctx):
    cal_id = _calendar(days={date(2027, 12, 25): "Xmas", date(2027, 6, 1): "Office move"})
    preview = sla_admin.preview_holidays(cal_id, "GB", "ENG", 2027, 2027)
    assert [(c.day, c.name, c.on_calendar) for c in preview.choices] == [
        (day, name, "Xmas" if day == date(2027, 12, 25) else None) for day, name in ENGLAND_2027.items()]
    assert date(2027, 12, 25) not in [c.day for c in preview.new]
    assert len(preview.new) == len(ENGLAND_2027) - 1
    assert _holidays(cal_id) == {date(2027, 6, 1): "Office move", date(2027, 12, 25): "Xmas"}  # a read only


def test_long_names_are_shortened_to_fit_a_calendar(admin):
    """Thailand has dates with several holidays, which the package joins into names past 80 characters."""
    cal_id = _calendar()
    listed = public_holidays.lookup("TH", None, 2026, 2026).holidays
    long_day = next(d for d, n in listed.items() if len(n) > sla_admin.NAME_MAX)
    shown = {c.day: c.name for c in sla_admin.preview_holidays(cal_id, "TH", None, 2026, 2026).choices}
    assert len(shown[long_day]) == sla_admin.NAME_MAX and shown[long_day].endswith("…")
    assert listed[long_day].startswith(shown[long_day][:-1].rstrip())
    sla_admin.import_holidays(admin, cal_id, "TH", "", 2026, 2026, [long_day.isoformat()])
    assert _holidays(cal_id) == {long_day: shown[long_day]}


# ---------------------------------------------------------------- the import


def test_import_adds_the_ticked_dates_with_their_names_and_an_audit_row_each(admin):
    cal_id = _calendar(days={date(2027, 12, 25): "Xmas"})
    ticked = [d.isoformat() for d in ENGLAND_2027 if d != date(2027, 5, 3)]  # the admin unticked May Day
    result = sla_admin.import_holidays(admin, cal_id, "GB", "ENG", "2027", "2027", ticked)
    expected = {d: n for d, n in ENGLAND_2027.items() if d not in (date(2027, 5, 3), date(2027, 12, 25))}
    assert [(h.day, h.name) for h in result.added] == list(expected.items())
    assert result.already == [date(2027, 12, 25)]  # ticked by hand-made input, but never added twice
    assert result.note is None
    assert _holidays(cal_id) == {**expected, date(2027, 12, 25): "Xmas"}
    audit_rows = _audit(cal_id)
    assert audit_rows[1:] == [("calendar.holiday_added", None, {"day": d.isoformat(), "name": n})
                              for d, n in expected.items()]  # as add_holiday writes them, one per date
    actors = db.session.scalars(select(AuditLog.actor_id).where(AuditLog.entity_id == cal_id,
                                                                AuditLog.action == "calendar.holiday_added")
                                .order_by(AuditLog.id)).all()
    assert actors == [None] + [admin.id] * len(expected)  # the first is the System's "Xmas"


def test_import_with_apply_to_open_asks_for_one_rebuild(admin):
    cal_id = _calendar()
    result = sla_admin.import_holidays(admin, cal_id, "GB", "ENG", 2027, 2027,
                                       [d.isoformat() for d in ENGLAND_2027], apply_to_open=True)
    assert len(result.added) == len(ENGLAND_2027)
    assert result.note == sla_admin.REBUILD_NOTE
    jobs = db.session.execute(select(OutboxMessage.func, OutboxMessage.args)).all()
    assert [(f, list(a)) for f, a in jobs] == [("jobs.analytics.rebuild_sla_clocks", [None, cal_id])]


@pytest.mark.parametrize(("days", "message"), [
    ([], "Tick at least one date to add."),
    (None, "Tick at least one date to add."),
    ("2027-01-01", "Tick at least one date to add."),
    (["2027-07-04"], "Some ticked dates are not public holidays of United Kingdom (England) in 2027; show the list "
                     "again and tick from it."),
    (["2027-01-01", "not-a-date"], "Some ticked dates are not public holidays of United Kingdom (England) in 2027; "
                                   "show the list again and tick from it."),
    (["2027-01-01", 20270101], "Some ticked dates are not public holidays of United Kingdom (England) in 2027; "
                               "show the list again and tick from it."),
])
def test_import_refuses_nothing_or_foreign_dates_ticked_and_saves_nothing(admin, days, message):
    cal_id = _calendar()
    with pytest.raises(ValidationFailed) as caught:
        sla_admin.import_holidays(admin, cal_id, "GB", "ENG", 2027, 2027, days)
    assert caught.value.fields == {"days": message}
    assert _holidays(cal_id) == {} and _audit(cal_id) == []


def test_import_refuses_a_bad_lookup_and_saves_nothing(admin):
    cal_id = _calendar()
    with pytest.raises(ValidationFailed) as caught:
        sla_admin.import_holidays(admin, cal_id, "GB", "Atlantis", 2027, 2020, ["2027-01-01"])
    assert set(caught.value.fields) == {"subdivision", "last_year"}
    assert _holidays(cal_id) == {}


def test_import_is_for_admins_only(ctx, factories):
    cal_id = _calendar()
    manager = factories.make_user("manager")
    with pytest.raises(Forbidden):
        sla_admin.import_holidays(manager, cal_id, "GB", "ENG", 2027, 2027, ["2027-01-01"])
    assert _holidays(cal_id) == {}


def test_import_of_dates_all_there_already_adds_nothing_and_says_so(admin):
    cal_id = _calendar(days={date(2027, 1, 1): "New Year"})
    result = sla_admin.import_holidays(admin, cal_id, "GB", "ENG", 2027, 2027, ["2027-01-01", "2027-01-01"])
    assert (result.added, result.already) == ([], [date(2027, 1, 1)])
    assert _holidays(cal_id) == {date(2027, 1, 1): "New Year"}


def test_a_single_holiday_still_refuses_a_date_the_import_added(admin):
    """The import and the one-date form share add_holiday's rules and its lock."""
    cal_id = _calendar()
    sla_admin.import_holidays(admin, cal_id, "GB", "ENG", 2027, 2027, ["2027-12-25"])
    with pytest.raises(ValidationFailed) as caught:
        sla_admin.add_holiday(admin, cal_id, date(2027, 12, 25), "Christmas")
    assert caught.value.fields == {"day": "This date is already a holiday in this calendar."}


# ---------------------------------------------------------------- two admins at once, on real PostgreSQL

ROUNDS = 8


def _import_as(user_id: int, calendar_id: int, subdivision: str, days: list[str]) -> tuple[list[date], list[date]]:
    """Import as that admin (loaded in the calling thread's session); the dates added and found there already."""
    result = sla_admin.import_holidays(db.session.get(User, user_id), calendar_id, "GB", subdivision, 2027, "2027",
                                       days)
    return [h.day for h in result.added], result.already


def test_race_two_imports_into_one_calendar_add_each_date_once_without_errors(app, ctx, factories):
    first, second = factories.make_user("admin").id, factories.make_user("admin").id
    everything = [d.isoformat() for d in ENGLAND_2027]
    overlapping = everything[3:]
    for n in range(ROUNDS):
        cal_id = _calendar(f"Office {n}")
        results = race(app, lambda c=cal_id: _import_as(first, c, "ENG", everything),
                       lambda c=cal_id: _import_as(second, c, "England", overlapping))
        assert all(isinstance(r, tuple) for r in results), results  # no Conflict, no error
        added = [d for r in results for d in r[0]]
        assert sorted(added) == sorted(ENGLAND_2027)  # each date added by exactly one of them
        # Whoever went second found the other's dates there and left them.
        assert sorted(added + [d for r in results for d in r[1]]) == sorted(
            date.fromisoformat(d) for d in everything + overlapping)
        assert _holidays(cal_id) == ENGLAND_2027
        assert len(_audit(cal_id)) == len(ENGLAND_2027)


def test_race_an_import_and_a_single_holiday_on_the_same_date(app, ctx, factories):
    first, second = factories.make_user("admin").id, factories.make_user("admin").id
    for n in range(ROUNDS):
        cal_id = _calendar(f"Office {n}")
        imported, single = race(
            app,
            lambda c=cal_id: _import_as(first, c, "ENG", [d.isoformat() for d in ENGLAND_2027]),
            lambda c=cal_id: sla_admin.add_holiday(db.session.get(User, second), c, date(2027, 12, 25),
                                                   "Christmas")[0].day,
        )
        assert isinstance(imported, tuple), imported
        holidays_now = _holidays(cal_id)
        assert set(holidays_now) == set(ENGLAND_2027)
        if single == date(2027, 12, 25):  # the single one went first; the import left its date alone
            assert imported[1] == [date(2027, 12, 25)] and holidays_now[date(2027, 12, 25)] == "Christmas"
        else:  # the import went first; the single one was refused with add_holiday's own message
            assert isinstance(single, ValidationFailed), single
            assert single.fields == {"day": "This date is already a holiday in this calendar."}
            assert imported[1] == [] and holidays_now[date(2027, 12, 25)] == "Christmas Day"
        assert len(_audit(cal_id)) == len(ENGLAND_2027)


# ---------------------------------------------------------------- the dashboard's reminder


def _definition(category: str, calendar_id: int | None, active: bool = True) -> None:
    db.session.add(SlaDefinition(category=category, priority="medium", response_time_hours=4,
                                 resolution_time_hours=24, calendar_id=calendar_id, is_active=active))
    db.session.commit()


def test_reminder_names_calendars_in_use_without_holidays_for_the_coming_year(ctx):
    bare = _calendar("Bare office", {date(2026, 12, 25): "Christmas Day"})  # this year's only
    covered = _calendar("Covered office", {date(2027, 1, 1): "New Year's Day"})
    edge = _calendar("Edge office", {date(2027, 12, 31): "Hogmanay", date(2028, 1, 1): "Next"})
    unused = _calendar("Unused office")
    retired = _calendar("Retired office")
    also_bare = _calendar("Another office")
    _definition("hardware", bare)
    _definition("software", bare)  # used twice, listed once
    _definition("network", covered)
    _definition("access", edge)
    _definition("other", retired, active=False)
    _definition("other", also_bare)
    _definition("hardware", None, active=False)  # 24x7
    december = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    year, calendars = sla_admin.holiday_reminder(december)
    assert year == 2027
    assert [c.name for c in calendars] == ["Another office", "Bare office"]
    assert unused not in [c.id for c in calendars]
    # January: the coming year is the next one, and nobody has holidays for it yet.
    year, calendars = sla_admin.holiday_reminder(datetime(2027, 1, 5, tzinfo=UTC))
    assert year == 2028
    assert [c.name for c in calendars] == ["Another office", "Bare office", "Covered office"]
    assert [c.name for c in sla_admin.calendars_without_holidays(2026)] == [
        "Another office", "Covered office", "Edge office"]


def test_reminder_query_reads_indexes_only(ctx):
    """Cheap however much else the portal holds: the holiday check probes (calendar_id, day); the
    definitions come from the partial index of active ones; nothing reads service requests."""
    cal_id = _calendar("Office")
    _definition("hardware", cal_id)
    captured: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        captured.append(cursor.mogrify(statement, parameters).decode())

    engine = db.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        sla_admin.calendars_without_holidays(2027)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(captured) == 1 and "service_request" not in captured[0] and "sla_metric" not in captured[0]
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(db.session.execute(text("EXPLAIN " + captured[0])).scalars())
    db.session.rollback()
    assert "uq_holiday_calendar_day" in plan, plan
    assert "uq_sla_definition_active_pair" in plan, plan
    assert "Seq Scan" not in plan, plan
