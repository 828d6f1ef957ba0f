"""Admin operations on SLA definitions and business calendars, and rebuilding open clocks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import available_timezones

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal import policy
from portal.domain.workflow import OPEN_STATUSES, PRIORITIES, PRIORITY_RANK, STATUSES
from portal.extensions import db
from portal.models import BusinessCalendarRecord, Category, Holiday, ServiceRequest, SlaDefinition, SlaMetric, User
from portal.models._time import utcnow
from portal.paging import as_id, whole_number
from portal.policy import SystemActor
from portal.queueing import enqueue
from portal.services import audit, public_holidays, sla
from portal.services.errors import Conflict, NotFound, ValidationFailed
from portal.services.numbers import finite_decimal
from portal.services.text import clean_text
from portal.services.uow import unit_of_work

HOURS_MAX = Decimal(24 * 365)
DEFINITION_FIELDS = ("category", "priority", "response_time_hours", "resolution_time_hours", "is_active",
                     "calendar_id", "pause_statuses", "at_risk_percent")
CALENDAR_FIELDS = ("name", "timezone", "working_days", "opens", "closes")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
REBUILD_BATCH = 500
NAME_MAX = 80  # calendar and holiday names


def _hours(errors: dict[str, str], name: str, value: Any) -> Decimal | None:
    number = finite_decimal(value)
    if number is None:
        errors[name] = "Enter a number of hours."
        return None
    if number <= 0:
        errors[name] = "Must be more than 0 hours."
    elif number > HOURS_MAX:
        errors[name] = f"Must be at most {HOURS_MAX} hours."
    elif number != number.quantize(Decimal("0.01")):
        errors[name] = "Use at most two decimal places."
    else:
        return number
    return None


def _snapshot(d: SlaDefinition) -> dict[str, Any]:
    out = audit.snapshot(d, DEFINITION_FIELDS)
    for key in ("response_time_hours", "resolution_time_hours"):
        out[key] = float(out[key]) if out[key] is not None else None
    out["pause_statuses"] = list(out["pause_statuses"] or [])
    return out


def list_definitions() -> list[SlaDefinition]:
    """Every definition: active first, then by category and priority rank."""
    rows = list(db.session.scalars(select(SlaDefinition)))
    return sorted(rows, key=lambda d: (not d.is_active, d.category, PRIORITY_RANK[d.priority], d.id))


def get_definition(definition_id: int, for_update: bool = False) -> SlaDefinition:
    """The definition (locked until the unit of work ends with `for_update`); NotFound otherwise."""
    definition = db.session.get(SlaDefinition, definition_id, with_for_update=for_update,
                                populate_existing=for_update)
    if definition is None:
        raise NotFound(f"SLA definition {definition_id} was not found.")
    return definition


def _validate_definition(values: dict[str, Any], current: SlaDefinition | None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    if current is None:
        codes = set(db.session.scalars(select(Category.code)))
        if values.get("category") not in codes:
            errors["category"] = f"Choose one of: {', '.join(sorted(codes))}."
        if values.get("priority") not in PRIORITIES:
            errors["priority"] = f"Choose one of: {', '.join(PRIORITIES)}."
        clean["category"], clean["priority"] = values.get("category"), values.get("priority")
    else:
        for name in ("category", "priority"):
            if name in values and values[name] != getattr(current, name):
                errors[name] = "Category and priority cannot change; create a new definition instead."
    for name in ("response_time_hours", "resolution_time_hours"):
        if name in values or current is None:
            number = _hours(errors, name, values.get(name))
            if number is not None:
                clean[name] = number
    response = clean.get("response_time_hours", current.response_time_hours if current else None)
    resolution = clean.get("resolution_time_hours", current.resolution_time_hours if current else None)
    if response is not None and resolution is not None and resolution < response and not (
            {"response_time_hours", "resolution_time_hours"} & errors.keys()):
        errors["resolution_time_hours"] = "The resolution time cannot be shorter than the response time."
    if "calendar_id" in values:
        cal = values["calendar_id"]
        if cal in (None, ""):
            clean["calendar_id"] = None
        elif as_id(cal) is None or db.session.get(BusinessCalendarRecord, as_id(cal)) is None:
            errors["calendar_id"] = "Choose a business calendar, or none for 24x7."
        else:
            clean["calendar_id"] = as_id(cal)
    if "pause_statuses" in values:
        statuses = values["pause_statuses"]
        if not isinstance(statuses, list | tuple) or any(
                not isinstance(s, str) or s not in OPEN_STATUSES for s in statuses):
            errors["pause_statuses"] = "Choose among: " + ", ".join(s for s in STATUSES if s in OPEN_STATUSES) + "."
        else:
            clean["pause_statuses"] = [s for s in STATUSES if s in statuses]
    if "at_risk_percent" in values:
        pct = values["at_risk_percent"]
        if whole_number(pct, 1, 99) is None:
            errors["at_risk_percent"] = "Use a whole percentage between 1 and 99."
        else:
            clean["at_risk_percent"] = whole_number(pct, 1, 99)
    if "is_active" in values:
        if not isinstance(values["is_active"], bool):
            errors["is_active"] = "Must be true or false."
        else:
            clean["is_active"] = values["is_active"]
    if errors:
        raise ValidationFailed(errors)
    return clean


def _check_single_active(category: str, priority: str, exclude_id: int | None) -> None:
    stmt = select(SlaDefinition.id).where(SlaDefinition.category == category, SlaDefinition.priority == priority,
                                          SlaDefinition.is_active.is_(True))
    if exclude_id is not None:
        stmt = stmt.where(SlaDefinition.id != exclude_id)
    if db.session.scalar(stmt) is not None:
        raise Conflict(f"There is already an active definition for {category} / {priority}; deactivate it first.",
                       {"priority": "An active definition exists for this category and priority."})


def create_definition(actor: User | SystemActor, values: dict[str, Any]) -> SlaDefinition:
    """Add a definition; new requests of that (category, priority) use it from now on."""
    policy.require(actor, "sla.configure")
    clean = _validate_definition(values, None)
    clean.setdefault("is_active", True)
    if clean["is_active"]:
        _check_single_active(clean["category"], clean["priority"], None)
    with unit_of_work():
        definition = SlaDefinition(**clean)
        db.session.add(definition)
        db.session.flush()
        audit.record(actor, "sla_definition.created", "sla_definition", definition.id, None, _snapshot(definition))
    return definition


def update_definition(actor: User | SystemActor, definition_id: int, values: dict[str, Any],
                      apply_to_open: bool = False) -> tuple[SlaDefinition, str | None]:
    """Change a definition. Open clocks keep their copied targets unless `apply_to_open`,
    which rebuilds them in the background; returns the definition and a note for the user."""
    policy.require(actor, "sla.configure")
    with unit_of_work():
        definition = get_definition(definition_id, for_update=True)
        clean = _validate_definition(values, definition)
        if "is_active" in clean:
            _refuse_activity_change(definition, clean["is_active"], None)
        before = _snapshot(definition)
        for key, value in clean.items():
            setattr(definition, key, value)
        if audit.record_changes(actor, "sla_definition.updated", "sla_definition", definition.id, before,
                                _snapshot(definition)):
            definition.updated_at = utcnow()
        note = schedule_rebuild(definition_id=definition.id) if apply_to_open else None
    return definition, note


def _pair(definition: SlaDefinition) -> str:
    return f"{definition.category} / {definition.priority}"


def _refuse_activity_change(definition: SlaDefinition, active: bool, expected_active: bool | None,
                            actor: User | SystemActor | None = None) -> None:
    """Raise why `definition` may not become active (or inactive) now; the one place these rules live.

    With `expected_active`, it must still be in that state (the one the admin confirmed, or an audit
    entry's "after"); a second active definition of the same category and priority is refused.
    """
    if expected_active is not None and definition.is_active != expected_active:
        state = {True: "active", False: "inactive"}
        who = audit.who_changed("sla_definition", definition.id,
                                ("sla_definition.activated", "sla_definition.deactivated", "sla_definition.updated"),
                                getattr(actor, "id", None), field="is_active")
        raise Conflict(f"{_pair(definition)} is {state[definition.is_active]} now, not {state[expected_active]}: "
                       f"{who}. Nothing was changed.")
    if active and not definition.is_active:
        _check_single_active(definition.category, definition.priority, definition.id)


def check_definition_active(actor: User | SystemActor, definition_id: int, active: bool,
                            expected_active: bool | None = None) -> SlaDefinition:
    """The definition, when `set_definition_active` would change it now; the same refusal otherwise.

    Nothing is written: the confirmation step asks this first, so a refusal shows before "Confirm".
    """
    policy.require(actor, "sla.configure")
    definition = get_definition(definition_id)
    _refuse_activity_change(definition, active, expected_active, actor)
    if definition.is_active == active:
        raise Conflict(f"{_pair(definition)} is already {'active' if active else 'inactive'}: "
                       "there is nothing to change.")
    return definition


def set_definition_active(actor: User | SystemActor, definition_id: int, active: bool,
                          expected_active: bool | None = None) -> SlaDefinition:
    """Activate or deactivate a definition (new requests of its pair get, or no longer get, its SLA).

    Open clocks keep their targets either way. The row is locked, so of two changes at once made
    from the same state (two admins undoing the same deactivation) the second is refused.
    """
    policy.require(actor, "sla.configure")
    with unit_of_work():
        definition = get_definition(definition_id, for_update=True)
        _refuse_activity_change(definition, active, expected_active, actor)
        if definition.is_active != active:
            before = _snapshot(definition)
            definition.is_active = active
            definition.updated_at = utcnow()
            audit.record_changes(actor, "sla_definition.activated" if active else "sla_definition.deactivated",
                                 "sla_definition", definition.id, before, _snapshot(definition))
    return definition


REBUILD_NOTE = "Open requests are being recalculated in the background."


def schedule_rebuild(definition_id: int | None = None, calendar_id: int | None = None) -> str:
    """Ask for the open clocks to be rebuilt, in the caller's unit of work (an outbox row).

    The job goes out when the change commits, or, if Redis is down, as soon as it is back:
    never lost, and never a rebuild of 100,000 clocks inside a web request.
    """
    enqueue("jobs.analytics.rebuild_sla_clocks", definition_id, calendar_id)
    return REBUILD_NOTE


def rebuild_open_clocks(definition_id: int | None = None, calendar_id: int | None = None,
                        batch_size: int = REBUILD_BATCH, now: datetime | None = None, progress=None) -> int:
    """Recompute every open clock under the current rules of a definition or calendar, in batches.

    Each rebuilt clock takes the definition's current targets and gets a 'recalculated' event.
    Each batch is one unit of work that locks its requests, then their clocks (the order every
    change to a request uses), and re-checks under the lock that each clock still qualifies, so
    a request closed or reclassified meanwhile is left as its own change made it.
    """
    now = now or utcnow()

    def qualifying(stmt):
        stmt = stmt.where(SlaMetric.status.in_(OPEN_STATUSES))
        if definition_id is not None:
            stmt = stmt.where(SlaMetric.definition_id == definition_id)
        if calendar_id is not None:
            stmt = stmt.where(SlaMetric.calendar_id == calendar_id)
        return stmt

    request_ids = list(db.session.scalars(qualifying(select(SlaMetric.request_id)).order_by(SlaMetric.request_id)))
    done = 0
    for start in range(0, len(request_ids), batch_size):
        batch = request_ids[start:start + batch_size]
        with unit_of_work():
            db.session.execute(select(ServiceRequest.id).where(ServiceRequest.id.in_(batch))
                               .order_by(ServiceRequest.id).with_for_update())
            definition = db.session.get(SlaDefinition, definition_id) if definition_id is not None else None
            calendar = db.session.get(BusinessCalendarRecord, calendar_id) if calendar_id is not None else None
            metrics = db.session.scalars(
                qualifying(select(SlaMetric)).where(SlaMetric.request_id.in_(batch)).order_by(SlaMetric.request_id)
                .with_for_update().execution_options(populate_existing=True))
            for metric in metrics:
                _rebuild_one(metric, definition, calendar, definition_id, calendar_id, now)
                done += 1
        if progress:
            progress(done, len(request_ids))
    return done


def _rebuild_one(metric: SlaMetric, definition: SlaDefinition | None, calendar: BusinessCalendarRecord | None,
                 definition_id: int | None, calendar_id: int | None, now: datetime) -> None:
    old = {"response_hours": sla.as_float(metric.response_target_hours),
           "resolution_hours": sla.as_float(metric.resolution_target_hours),
           "calendar": metric.calendar}
    if definition_id is not None:
        # A definition change: the clock takes the definition's current targets and calendar.
        old_pause = list(metric.pause_statuses)
        sla.copy_targets(metric, definition)
        sla.align_pause(metric, old_pause, now)
    else:
        # A calendar change: only the calendar's rules are refreshed; targets stay as copied.
        metric.calendar = sla.calendar_snapshot(calendar)
    sla.record_event(metric.request_id, "recalculated", now, detail={
        "reason": "rules_changed", "definition_id": definition_id, "calendar_id": calendar_id, "from": old,
        "to": {"response_hours": sla.as_float(metric.response_target_hours),
               "resolution_hours": sla.as_float(metric.resolution_target_hours),
               "calendar": metric.calendar}})
    sla.recompute(metric, now)


# ---------------------------------------------------------------- calendars

def list_calendars() -> list[BusinessCalendarRecord]:
    """Every calendar by name, with its holidays."""
    return list(db.session.scalars(select(BusinessCalendarRecord).options(selectinload(BusinessCalendarRecord.holidays))
                                   .order_by(BusinessCalendarRecord.name)))


def get_calendar(calendar_id: int, for_update: bool = False) -> BusinessCalendarRecord:
    """The calendar (locked until the unit of work ends with `for_update`); NotFound otherwise."""
    cal = db.session.get(BusinessCalendarRecord, calendar_id, with_for_update=for_update,
                         populate_existing=for_update)
    if cal is None:
        raise NotFound(f"Calendar {calendar_id} was not found.")
    return cal


def _parse_time(errors: dict[str, str], name: str, value: Any) -> time | None:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        errors[name] = "Use HH:MM, e.g. 09:00."
        return None


def _validate_calendar(values: dict[str, Any], current: BusinessCalendarRecord | None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    if "name" in values or current is None:
        name = clean_text(errors, "name", values.get("name"), NAME_MAX, missing="Enter a name.")
        if "name" not in errors:
            existing = db.session.scalar(select(BusinessCalendarRecord).where(BusinessCalendarRecord.name == name))
            if existing is not None and existing is not current:
                errors["name"] = "Another calendar has this name."
            clean["name"] = name
    if "timezone" in values or current is None:
        if values.get("timezone") not in available_timezones():
            errors["timezone"] = "Choose a time zone such as Europe/London or America/New_York."
        else:
            clean["timezone"] = values["timezone"]
    if "working_days" in values or current is None:
        days = values.get("working_days")
        try:
            parsed = sorted({int(d) for d in days}) if isinstance(days, list | tuple) else []
        except (TypeError, ValueError):
            parsed = []
        if not parsed or any(d < 0 or d > 6 for d in parsed):
            errors["working_days"] = "Choose at least one working day."
        else:
            clean["working_days"] = parsed
    for name in ("opens", "closes"):
        if name in values or current is None:
            parsed_time = _parse_time(errors, name, values.get(name))
            if parsed_time is not None:
                clean[name] = parsed_time
    opens = clean.get("opens", current.opens if current else None)
    closes = clean.get("closes", current.closes if current else None)
    if opens and closes and closes <= opens and "closes" not in errors:
        errors["closes"] = "Closing time must be after opening time."
    if errors:
        raise ValidationFailed(errors)
    return clean


def create_calendar(actor: User | SystemActor, values: dict[str, Any]) -> BusinessCalendarRecord:
    """Add a business calendar."""
    policy.require(actor, "sla.configure")
    with unit_of_work():
        cal = BusinessCalendarRecord(**_validate_calendar(values, None))
        db.session.add(cal)
        db.session.flush()
        audit.record(actor, "calendar.created", "business_calendar", cal.id, None, _calendar_snapshot(cal))
    return cal


def _calendar_snapshot(cal: BusinessCalendarRecord) -> dict[str, Any]:
    return {"name": cal.name, "timezone": cal.timezone, "working_days": list(cal.working_days),
            "opens": cal.opens.isoformat(timespec="minutes"), "closes": cal.closes.isoformat(timespec="minutes")}


def update_calendar(actor: User | SystemActor, calendar_id: int, values: dict[str, Any],
                    apply_to_open: bool = False) -> tuple[BusinessCalendarRecord, str | None]:
    """Change a calendar's hours, days or zone; optionally rebuild the open clocks that use it."""
    policy.require(actor, "sla.configure")
    with unit_of_work():
        cal = get_calendar(calendar_id, for_update=True)
        clean = _validate_calendar(values, cal)
        before = _calendar_snapshot(cal)
        for key, value in clean.items():
            setattr(cal, key, value)
        after = _calendar_snapshot(cal)
        if after != before:
            cal.updated_at = utcnow()
            audit.record(actor, "calendar.updated", "business_calendar", cal.id, before, after)
        note = schedule_rebuild(calendar_id=cal.id) if apply_to_open else None
    return cal, note


HOLIDAY_TAKEN = "This date is already a holiday in this calendar."


def _holiday_day(errors: dict[str, str], day: Any) -> date | None:
    if isinstance(day, date):
        return day
    try:
        return date.fromisoformat(str(day))
    except ValueError:
        errors["day"] = "Use a date like 2026-12-25."
        return None


def _holiday_name(errors: dict[str, str], name: Any) -> str:
    return clean_text(errors, "name", name, NAME_MAX, missing="Name the holiday.")


def _fitting(name: str) -> str:
    """A public holiday's name as a calendar keeps it: the package joins holidays that share a date
    with "; ", and a few such names are longer than a holiday's name may be."""
    return name if len(name) <= NAME_MAX else name[:NAME_MAX - 1].rstrip() + "…"


def _holiday_days(calendar_id: int) -> set[date]:
    """The calendar's holiday dates as committed now: read under the calendar's lock, so they include
    what a change that held the lock just before added (a loaded `cal.holidays` may predate it)."""
    return set(db.session.scalars(select(Holiday.day).where(Holiday.calendar_id == calendar_id)))


def _insert_holiday(actor: User | SystemActor, cal: BusinessCalendarRecord, day: date, name: str) -> Holiday:
    holiday = Holiday(calendar_id=cal.id, day=day, name=name)
    db.session.add(holiday)
    db.session.flush()
    audit.record(actor, "calendar.holiday_added", "business_calendar", cal.id, None,
                 {"day": day.isoformat(), "name": name})
    return holiday


def add_holiday(actor: User | SystemActor, calendar_id: int, day: Any, name: str,
                apply_to_open: bool = False) -> tuple[Holiday, str | None]:
    """Mark a local date as closed."""
    policy.require(actor, "sla.configure")
    errors: dict[str, str] = {}
    parsed = _holiday_day(errors, day)
    name = _holiday_name(errors, name)
    with unit_of_work():
        cal = get_calendar(calendar_id, for_update=True)
        if parsed and parsed in _holiday_days(cal.id):
            errors["day"] = HOLIDAY_TAKEN
        if errors:
            raise ValidationFailed(errors)
        holiday = _insert_holiday(actor, cal, parsed, name)
        note = schedule_rebuild(calendar_id=cal.id) if apply_to_open else None
    return holiday, note


@dataclass(frozen=True)
class HolidayChoice:
    """One date of a public holiday list, as the review shows it: on the calendar already, or to add."""

    day: date
    name: str
    on_calendar: str | None  # the calendar's own name for the date when it is already a holiday there


@dataclass(frozen=True)
class HolidayPreview:
    """A public holiday list beside a calendar, for the admin to review before adding."""

    source: public_holidays.HolidayList
    choices: list[HolidayChoice]

    @property
    def new(self) -> list[HolidayChoice]:
        """The dates not yet on the calendar (offered, ticked)."""
        return [c for c in self.choices if c.on_calendar is None]


@dataclass(frozen=True)
class HolidayImport:
    """What an import did: the holidays it added and the ticked dates that were already there."""

    source: public_holidays.HolidayList
    added: list[Holiday]
    already: list[date]
    note: str | None


def preview_holidays(calendar_id: int, country: Any, subdivision: Any, first_year: Any,
                     last_year: Any) -> HolidayPreview:
    """The public holidays of a country (and subdivision) over a range of years, each marked when it
    is already a holiday of the calendar. Reads only; ValidationFailed for a bad country or years."""
    source = public_holidays.lookup(country, subdivision, first_year, last_year)
    present = {h.day: h.name for h in get_calendar(calendar_id).holidays}
    return HolidayPreview(source, [HolidayChoice(day, _fitting(name), present.get(day))
                                   for day, name in source.holidays.items()])


def _ticked(source: public_holidays.HolidayList, days: Any) -> list[date]:
    if not isinstance(days, list | tuple) or not days:
        raise ValidationFailed({"days": "Tick at least one date to add."})
    ticked: set[date] = set()
    for raw in days:
        try:
            day = date.fromisoformat(raw) if isinstance(raw, str) else raw
        except ValueError:
            day = None
        if not isinstance(day, date) or day not in source.holidays:
            raise ValidationFailed({"days": f"Some ticked dates are not public holidays of {source.place} in "
                                            f"{source.years}; show the list again and tick from it."})
        ticked.add(day)
    return sorted(ticked)


def import_holidays(actor: User | SystemActor, calendar_id: int, country: Any, subdivision: Any, first_year: Any,
                    last_year: Any, days: Any, apply_to_open: bool = False) -> HolidayImport:
    """Add the ticked dates of a public holiday list to a calendar, in one unit of work.

    Each date goes in as `add_holiday` puts one (its name from the list, the same audit row). The
    calendar is locked first, as for a single holiday, so two imports at once take turns: the
    second finds the first's dates and leaves them (reported as already there), never a duplicate.
    """
    policy.require(actor, "sla.configure")
    source = public_holidays.lookup(country, subdivision, first_year, last_year)
    ticked = _ticked(source, days)
    added: list[Holiday] = []
    already: list[date] = []
    with unit_of_work():
        cal = get_calendar(calendar_id, for_update=True)
        present = _holiday_days(cal.id)
        for day in ticked:
            if day in present:
                already.append(day)
                continue
            errors: dict[str, str] = {}
            name = _holiday_name(errors, _fitting(source.holidays[day]))
            if errors:
                raise ValidationFailed({"days": f"{day:%d %b %Y}: {errors['name']}"})
            added.append(_insert_holiday(actor, cal, day, name))
            present.add(day)
        note = schedule_rebuild(calendar_id=cal.id) if apply_to_open and added else None
    return HolidayImport(source, added, already, note)


def calendars_without_holidays(year: int) -> list[BusinessCalendarRecord]:
    """The calendars an active definition counts by that have no holiday in `year`, by name.

    Cheap at any size: active definitions come from their partial index (a few dozen rows at
    most, one per category and priority), each calendar once by its key, and the holiday check
    is one probe of the (calendar_id, day) unique index; service requests are never read.
    """
    in_use = (select(SlaDefinition.id)  # `is_active` exactly as the partial index states it, so it applies
              .where(SlaDefinition.is_active, SlaDefinition.calendar_id == BusinessCalendarRecord.id)
              .exists())
    has_holiday = (select(Holiday.day)
                   .where(Holiday.calendar_id == BusinessCalendarRecord.id,
                          Holiday.day.between(date(year, 1, 1), date(year, 12, 31)))
                   .exists())
    return list(db.session.scalars(select(BusinessCalendarRecord).where(in_use, ~has_holiday)
                                   .order_by(BusinessCalendarRecord.name)))


def holiday_reminder(now: datetime | None = None) -> tuple[int, list[BusinessCalendarRecord]]:
    """The coming calendar year and the calendars in use with no holidays for it yet (the dashboard's notice)."""
    year = (now or utcnow()).year + 1
    return year, calendars_without_holidays(year)


def get_holiday(holiday_id: int) -> Holiday:
    """The holiday; NotFound otherwise."""
    holiday = db.session.get(Holiday, holiday_id)
    if holiday is None:
        raise NotFound("No such holiday.")
    return holiday


def remove_holiday(actor: User | SystemActor, holiday_id: int) -> BusinessCalendarRecord:
    """Remove a holiday from its calendar."""
    policy.require(actor, "sla.configure")
    with unit_of_work():
        holiday = db.session.get(Holiday, holiday_id, with_for_update=True)
        if holiday is None:
            raise NotFound("No such holiday.")
        cal = holiday.calendar
        audit.record(actor, "calendar.holiday_removed", "business_calendar", cal.id,
                     {"day": holiday.day.isoformat(), "name": holiday.name}, None)
        db.session.delete(holiday)
    return cal
