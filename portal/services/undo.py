"""Undo from the audit log: change a role back, reactivate an account or an SLA definition, restore a holiday.

An undo is the opposite change made through the service that owns it (which writes its own audit
row, so the undo is audited like any change), and only from the state the entry left: the entry's
"after" is passed as the state the thing must still be in. When someone changed it since, or two
admins undo the same entry at once, the service refuses under its row lock, so the second undo
is told what happened instead of being applied on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from portal import policy
from portal.domain.workflow import PRIORITY_LABELS, ROLE_LABELS, ROLES
from portal.extensions import db
from portal.models import AuditLog, BusinessCalendarRecord, Holiday, User
from portal.paging import Page
from portal.policy import SystemActor
from portal.services import audit, sla_admin, users
from portal.services.errors import Conflict, NotFound, ValidationFailed

ROLE_BACK = "role_back"
REACTIVATE_USER = "reactivate_user"
REACTIVATE_DEFINITION = "reactivate_definition"
RESTORE_HOLIDAY = "restore_holiday"


@dataclass(frozen=True)
class UndoOffer:
    """The undo an audit entry allows: what kind, and the button's words."""

    kind: str
    label: str


@dataclass(frozen=True)
class UndoPlan:
    """An undo that is allowed now: the question the confirmation asks, and the message once done."""

    entry: AuditLog
    offer: UndoOffer
    question: str
    done: str


def _holiday_of(entry: AuditLog) -> tuple[date, str] | None:
    before = entry.before or {}
    try:
        day = date.fromisoformat(before.get("day"))
    except (TypeError, ValueError):
        return None
    name = before.get("name")
    return (day, name) if isinstance(name, str) and name.strip() else None


def offer_for(entry: AuditLog) -> UndoOffer | None:
    """The undo this entry allows, from the entry alone (whether it still applies is asked on click)."""
    before, after = entry.before or {}, entry.after or {}
    if entry.entity_type == "user" and entry.action == "user.role_changed":
        old, new = before.get("role"), after.get("role")
        if old in ROLES and new in ROLES and old != new:
            return UndoOffer(ROLE_BACK, f"Change back to {ROLE_LABELS[old].lower()}")
    elif entry.entity_type == "user" and entry.action == "user.deactivated":
        return UndoOffer(REACTIVATE_USER, "Reactivate")
    elif entry.entity_type == "sla_definition" and before.get("is_active") is True and after.get("is_active") is False:
        return UndoOffer(REACTIVATE_DEFINITION, "Reactivate")
    elif entry.entity_type == "business_calendar" and entry.action == "calendar.holiday_removed" \
            and _holiday_of(entry) is not None:
        return UndoOffer(RESTORE_HOLIDAY, "Restore holiday")
    return None


def browse(f: audit.AuditFilters) -> Page:
    """A page of the audit log as the admin page shows it: each entry in words, with its undo if any."""
    page = audit.list_entries(f)
    rows = audit.present(page.items)
    for row in rows:
        row.undo = offer_for(row.entry)
    page.items = rows
    return page


def row(entry_id: int) -> audit.AuditRow:
    """One entry as the audit page shows it (the row a confirmation replaces); NotFound otherwise."""
    entry = audit.get_entry(entry_id)
    if entry is None:
        raise NotFound("There is no such audit entry.")
    [presented] = audit.present([entry])
    presented.undo = offer_for(entry)
    return presented


def _entry_and_offer(entry_id: int) -> tuple[AuditLog, UndoOffer]:
    entry = audit.get_entry(entry_id)
    if entry is None:
        raise NotFound("There is no such audit entry.")
    offer = offer_for(entry)
    if offer is None:
        raise Conflict("This change cannot be undone from the audit log.")
    return entry, offer


def _day_text(day: date) -> str:
    return day.strftime("%d %b %Y").lstrip("0")


CALENDAR_GONE = "That calendar no longer exists: there is nothing to restore the holiday to."


def _holiday_changed_since(cal: BusinessCalendarRecord | None, day: date) -> Conflict:
    if cal is None:
        return Conflict(CALENDAR_GONE)
    now = db.session.scalar(select(Holiday.name).where(Holiday.calendar_id == cal.id, Holiday.day == day))
    return Conflict(f"{_day_text(day)} is a holiday of {cal.name} again already ({now}): someone changed it since. "
                    "Nothing was restored.")


def check(actor: User | SystemActor, entry_id: int) -> UndoPlan:
    """Whether the entry's undo is allowed now, asked of the service that would make it; nothing is written.

    The refusal (someone changed it since; the last admin; a second active definition) is the one
    the undo itself would meet, so it shows before "Confirm".
    """
    entry, offer = _entry_and_offer(entry_id)
    before, after = entry.before or {}, entry.after or {}
    if offer.kind == ROLE_BACK:
        user = users.check_role_change(actor, entry.entity_id, before["role"], expected_role=after["role"])
        old, new = ROLE_LABELS[before["role"]].lower(), ROLE_LABELS[after["role"]].lower()
        return UndoPlan(entry, offer, f"Change {user.name} back from {new} to {old}? They are signed out and "
                                      "sign in again with that role.", f"{user.name} is {old} again.")
    if offer.kind == REACTIVATE_USER:
        user = users.check_set_active(actor, entry.entity_id, True, expected_active=False)
        return UndoPlan(entry, offer, f"Reactivate {user.name}? They can sign in again; the sessions and API "
                                      "tokens the deactivation ended stay ended.", f"{user.name} was reactivated.")
    if offer.kind == REACTIVATE_DEFINITION:
        definition = sla_admin.check_definition_active(actor, entry.entity_id, True, expected_active=False)
        pair = _definition_name(definition)
        return UndoPlan(entry, offer, f"Reactivate the SLA definition {pair}? New requests of that category and "
                                      "priority get its targets again; open requests keep theirs.",
                        f"The SLA definition {pair} is active again.")
    policy.require(actor, "sla.configure")
    day, name = _holiday_of(entry)
    cal = db.session.get(BusinessCalendarRecord, entry.entity_id)
    if cal is None:
        raise Conflict(CALENDAR_GONE)
    if db.session.scalar(select(Holiday.id).where(Holiday.calendar_id == cal.id, Holiday.day == day)) is not None:
        raise _holiday_changed_since(cal, day)
    return UndoPlan(entry, offer, f"Restore {name} ({_day_text(day)}) to the calendar {cal.name}? Open requests "
                                  "keep their due times until you apply the calendar to them.",
                    f"{name} ({_day_text(day)}) is a holiday of {cal.name} again.")


def _definition_name(definition) -> str:
    return f"{definition.category} / {PRIORITY_LABELS.get(definition.priority, definition.priority).lower()}"


def undo(actor: User | SystemActor, entry_id: int) -> UndoPlan:
    """Make the entry's undo through the owning service, only from the state the entry left.

    Returns the plan (its `done` is the message to show); raises the refusal, with nothing written,
    when the thing changed since (including another admin's undo a moment before).
    """
    plan = check(actor, entry_id)
    entry, kind = plan.entry, plan.offer.kind
    before, after = entry.before or {}, entry.after or {}
    if kind == ROLE_BACK:
        users.change_role(actor, entry.entity_id, before["role"], expected_role=after["role"])
    elif kind == REACTIVATE_USER:
        users.set_active(actor, entry.entity_id, True, expected_active=False)
    elif kind == REACTIVATE_DEFINITION:
        sla_admin.set_definition_active(actor, entry.entity_id, True, expected_active=False)
    else:
        day, name = _holiday_of(entry)
        try:
            sla_admin.add_holiday(actor, entry.entity_id, day, name)
        except NotFound as exc:
            raise Conflict(CALENDAR_GONE) from exc
        except (ValidationFailed, Conflict) as exc:
            # Added meanwhile (seen under the calendar's lock, or by the unique index at commit).
            if isinstance(exc, Conflict) or "day" in exc.fields:
                raise _holiday_changed_since(db.session.get(BusinessCalendarRecord, entry.entity_id), day) from exc
            raise
    return plan
