"""The audit trail: written inside the caller's transaction, read back for the admins' audit page."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import DateTime, Integer, literal, select, tuple_
from sqlalchemy.orm import joinedload

from portal.domain.workflow import PRIORITY_LABELS, ROLE_LABELS, STATUS_LABELS
from portal.extensions import db
from portal.formatting import format_datetime, format_hours
from portal.models import AuditLog, BusinessCalendarRecord, Category, ServiceRequest, SlaDefinition, User
from portal.observability import current_request_context
from portal.paging import Page, as_id

# ---------------------------------------------------------------- writing


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def snapshot(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """The named attributes of `obj` as a JSON-ready dict."""
    return {f: _jsonable(getattr(obj, f)) for f in fields}


def record(
    actor: User | None,
    action: str,
    entity_type: str,
    entity_id: int,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditLog:
    """Add one audit row to the session; the caller's commit writes it with the change."""
    ctx = current_request_context()
    entry = AuditLog(
        actor_id=actor.id if actor else None,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        before=before,
        after=after,
        ip=ctx.ip,
        correlation_id=ctx.correlation_id,
    )
    db.session.add(entry)
    return entry


def record_changes(actor: User | None, action: str | Callable[[set[str]], str], entity_type: str, entity_id: int,
                   before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """One audit row with only the fields that changed (before and after); nothing when none did.

    `action` may be a function of the changed field names (e.g. "assigned" when only the
    assignee changed). Returns the names of the changed fields.
    """
    changed = {k for k in after if after[k] != before.get(k)}
    if changed:
        name = action(changed) if callable(action) else action
        record(actor, name, entity_type, entity_id, {k: before.get(k) for k in changed},
               {k: after[k] for k in changed})
    return changed


def who_changed(entity_type: str, entity_id: int, actions: tuple[str, ...], viewer_id: int | None = None,
                field: str | None = None) -> str:
    """'Ben Admin changed it on 05 Dec 2026 14:02 UTC' from the entity's latest audit row of `actions`
    (that changed `field`, when given).

    For the message of a change refused because the thing changed since it was shown: one read
    of the entity's own index (ix_audit_log_entity).
    """
    stmt = (select(AuditLog.actor_id, User.name, AuditLog.at).outerjoin(User, User.id == AuditLog.actor_id)
            .where(AuditLog.entity_type == entity_type, AuditLog.entity_id == entity_id, AuditLog.action.in_(actions)))
    if field is not None:
        stmt = stmt.where(AuditLog.after.has_key(field))
    row = db.session.execute(stmt.order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(1)).first()
    if row is None:
        return "someone changed it since"
    who = "you changed it" if viewer_id is not None and row.actor_id == viewer_id else \
        f"{row.name or 'the system'} changed it"
    return f"{who} on {format_datetime(row.at)}"


# ---------------------------------------------------------------- what the rows mean

# Every entity type and action the portal records, with the words the audit page shows. A new
# action belongs here (tests/services/test_audit_log.py checks the source for ones missing).
ENTITY_TYPES: dict[str, str] = {
    "user": "Account",
    "service_request": "Request",
    "sla_definition": "SLA definition",
    "business_calendar": "Business calendar",
    "category": "Category",
    "backup": "Backup",
    "security": "Sign-in security",
    "canned_reply": "Canned reply",
    "saved_view": "Saved view",
}
ACTIONS: dict[str, dict[str, str]] = {
    "user": {
        "user.created": "Account created",
        "user.role_changed": "Role changed",
        "user.deactivated": "Account deactivated",
        "user.activated": "Account reactivated",
        "user.password_changed": "Password changed",
        "user.password_reset": "Password reset",
        "user.email_verified": "Email address confirmed",
        "user.2fa_enabled": "Two-factor sign-in turned on",
        "user.2fa_disabled": "Two-factor sign-in turned off",
        "token.revoked": "API token revoked",
        "token.revoked_all": "All API tokens revoked",
        "security.account_locked": "Locked after failed sign-ins",
    },
    "service_request": {
        "request.created": "Request raised",
        "request.updated": "Request edited",
        "request.status_changed": "Status changed",
        "request.assigned": "Assigned",
        "request.followed_up": "Follow-up opened",
        "comment.added": "Reply or note added",
        "attachment.added": "File attached",
        "sla.exemption_granted": "SLA exemption granted",
        "sla.exemption_revoked": "SLA exemption revoked",
        "sla.recalculated": "SLA targets recalculated",
    },
    "sla_definition": {
        "sla_definition.created": "SLA definition added",
        "sla_definition.updated": "SLA definition edited",
        "sla_definition.deactivated": "SLA definition deactivated",
        "sla_definition.activated": "SLA definition activated",
    },
    "business_calendar": {
        "calendar.created": "Calendar added",
        "calendar.updated": "Calendar edited",
        "calendar.holiday_added": "Holiday added",
        "calendar.holiday_removed": "Holiday removed",
    },
    "category": {
        "category.created": "Category added",
        "category.retired": "Category retired",
        "category.activated": "Category restored",
    },
    "backup": {"backup.downloaded": "Backup downloaded"},
    "security": {"security.ip_blocked": "Address blocked after failed sign-ins"},
    "canned_reply": {
        "canned_reply.created": "Canned reply added",
        "canned_reply.updated": "Canned reply edited",
        "canned_reply.deleted": "Canned reply deleted",
    },
    "saved_view": {
        "saved_view.created": "View saved",
        "saved_view.updated": "View changed",
        "saved_view.shared": "View shared with the team",
        "saved_view.unshared": "View no longer shared",
        "saved_view.deleted": "View deleted",
    },
}
ACTION_LABELS: dict[str, str] = {action: label for group in ACTIONS.values() for action, label in group.items()}

FIELD_LABELS = {
    "email": "Email", "name": "Name", "role": "Role", "active": "Active", "is_active": "Active",
    "title": "Title", "description": "Description", "status": "Status", "priority": "Priority",
    "category": "Category", "assignee_id": "Assignee", "follow_up_of_id": "Follow-up to",
    "follow_up_id": "Follow-up", "response_time_hours": "Respond within", "resolution_time_hours": "Resolve within",
    "calendar_id": "Counts", "pause_statuses": "Clock pauses while", "at_risk_percent": "At risk after",
    "timezone": "Time zone", "working_days": "Working days", "opens": "Opens", "closes": "Closes", "day": "Date",
    "code": "Code", "live_tokens": "Live tokens", "token_id": "Token", "other_sessions_ended": "Other sessions ended",
    "exemption_id": "Exemption", "type": "Targets", "duration_hours": "For", "reason": "Reason",
    "response_hours": "Respond within", "resolution_hours": "Resolve within", "definition_id": "SLA definition",
    "failures": "Failed sign-ins", "minutes": "Minutes", "last_ip": "Last address", "ip": "Address",
    "file": "File", "size": "Size", "body": "Text", "query": "Filters", "shared": "Shared with the team",
}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_USER_ID_FIELDS = frozenset({"assignee_id"})
_TEXT_MAX = 140


@dataclass(frozen=True)
class FieldChange:
    """One field of an audit row as text: `before` None for a new value, `after` None for a removed one."""

    label: str
    before: str | None
    after: str | None


@dataclass
class AuditRow:
    """An audit entry with the words the page shows; `undo` is set by portal.services.undo."""

    entry: AuditLog
    actor: str
    action: str
    entity_kind: str
    entity_name: str | None
    changes: list[FieldChange]
    undo: Any = None


def _short(text: str) -> str:
    return text if len(text) <= _TEXT_MAX else text[:_TEXT_MAX - 1].rstrip() + "…"


def value_text(key: str, value: Any, names: Mapping[tuple[str, Any], str] | None = None) -> str:
    """One before/after value as a person reads it ('Manager', '4 h', 'Mon, Tue', 'yes')."""
    names = names or {}
    if value is None or value == []:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "role" and value in ROLE_LABELS:
        return ROLE_LABELS[value]
    if key == "status" and value in STATUS_LABELS:
        return STATUS_LABELS[value]
    if key == "priority" and value in PRIORITY_LABELS:
        return PRIORITY_LABELS[value]
    if key == "category" and ("category", value) in names:
        return names[("category", value)]
    if key in _USER_ID_FIELDS:
        return names.get(("user", value), f"account {value}")
    if key == "calendar_id":
        return f"business hours: {names.get(('business_calendar', value), f'calendar {value}')}"
    if key == "pause_statuses" and isinstance(value, list):
        return ", ".join(STATUS_LABELS.get(s, str(s)) for s in value)
    if key == "working_days" and isinstance(value, list):
        return ", ".join(WEEKDAYS[d] if isinstance(d, int) and 0 <= d < 7 else str(d) for d in value)
    if key.endswith("_hours") and isinstance(value, int | float):
        return format_hours(float(value))
    if key == "at_risk_percent" and isinstance(value, int | float):
        return f"{value:g}% of the window"
    if key == "day" and isinstance(value, str):
        try:
            return date.fromisoformat(value).strftime("%d %b %Y").lstrip("0")
        except ValueError:
            return _short(value)
    if key.endswith("_at") and isinstance(value, str):
        try:
            return format_datetime(datetime.fromisoformat(value))
        except ValueError:
            return _short(value)
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, list):
        return _short(", ".join(str(v) for v in value))
    if isinstance(value, dict):
        return _short(json.dumps(value, separators=(", ", ": "), default=str))
    return _short(str(value))


def describe(entry: AuditLog, names: Mapping[tuple[str, Any], str] | None = None) -> list[FieldChange]:
    """The fields of an entry as text: only those that changed when it has a before and an after."""
    before, after = entry.before or {}, entry.after or {}
    keys = list(dict.fromkeys([*before, *after]))
    if entry.before and entry.after:
        keys = [k for k in keys if before.get(k) != after.get(k)]
    changes = []
    for key in keys:
        label = FIELD_LABELS.get(key, key.replace("_", " ").capitalize())
        changes.append(FieldChange(label, value_text(key, before[key], names) if key in before else None,
                                   value_text(key, after[key], names) if key in after else None))
    return changes


def _names(entries: list[AuditLog]) -> dict[tuple[str, Any], str]:
    """The names the page shows for the entries' entities and the accounts they mention: one query per kind."""
    ids: dict[str, set[int]] = {"user": set(), "service_request": set(), "sla_definition": set(),
                                "business_calendar": set()}
    for e in entries:
        if e.entity_type in ids:
            ids[e.entity_type].add(e.entity_id)
        for values in (e.before or {}, e.after or {}):
            for key, value in values.items():
                if key in _USER_ID_FIELDS and as_id(value) is not None:
                    ids["user"].add(value)
                elif key == "calendar_id" and as_id(value) is not None:
                    ids["business_calendar"].add(value)
    names: dict[tuple[str, Any], str] = {("category", code): name
                                         for code, name in db.session.execute(select(Category.code, Category.name))}
    if ids["user"]:
        names.update((("user", i), n) for i, n in db.session.execute(
            select(User.id, User.name).where(User.id.in_(ids["user"]))))
    if ids["service_request"]:
        names.update((("service_request", i), f"#{i} {t}") for i, t in db.session.execute(
            select(ServiceRequest.id, ServiceRequest.title).where(ServiceRequest.id.in_(ids["service_request"]))))
    if ids["sla_definition"]:
        for i, category, priority in db.session.execute(select(
                SlaDefinition.id, SlaDefinition.category, SlaDefinition.priority)
                .where(SlaDefinition.id.in_(ids["sla_definition"]))):
            names[("sla_definition", i)] = f"{names.get(('category', category), category)} / " \
                                           f"{PRIORITY_LABELS.get(priority, priority)}"
    if ids["business_calendar"]:
        names.update((("business_calendar", i), n) for i, n in db.session.execute(
            select(BusinessCalendarRecord.id, BusinessCalendarRecord.name)
            .where(BusinessCalendarRecord.id.in_(ids["business_calendar"]))))
    return names


def _entity_name(entry: AuditLog, names: Mapping[tuple[str, Any], str]) -> str | None:
    values = {**(entry.before or {}), **(entry.after or {})}
    if entry.entity_type == "category" and values.get("code"):
        return names.get(("category", values["code"]), str(values["code"]))
    if entry.entity_type == "backup" and values.get("name"):
        return str(values["name"])
    if entry.entity_type == "security" and values.get("ip"):
        return str(values["ip"])
    if entry.entity_type == "saved_view" and values.get("name"):
        return str(values["name"])
    return names.get((entry.entity_type, entry.entity_id))


def present(entries: list[AuditLog]) -> list[AuditRow]:
    """The entries with who, what, which and the change in words (a few queries for the whole page)."""
    names = _names(entries)
    return [AuditRow(entry=e, actor=e.actor.name if e.actor else "System",
                     action=ACTION_LABELS.get(e.action, e.action),
                     entity_kind=ENTITY_TYPES.get(e.entity_type, e.entity_type),
                     entity_name=_entity_name(e, names), changes=describe(e, names))
            for e in entries]


# ---------------------------------------------------------------- browsing

PER_PAGE = 50
_CURSOR_MAX = 200


@dataclass
class AuditFilters:
    """What the audit page shows: an entity type, one entity, an action; a position for paging."""

    entity_type: str = ""
    entity_id: int | None = None
    action: str = ""
    after: str = ""
    before: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    def view_query(self) -> dict[str, Any]:
        """The filters as query arguments (no position): for links to the first page and paging."""
        view: dict[str, Any] = {"entity_type": self.entity_type, "entity_id": self.entity_id, "action": self.action}
        return {k: v for k, v in view.items() if v not in ("", None)}

    def position_query(self) -> dict[str, Any]:
        """The filters and the page's position: a link back to this very page."""
        position = {"after": self.after} if self.after else {"before": self.before} if self.before else {}
        return {**self.view_query(), **position}

    @property
    def any(self) -> bool:
        return bool(self.entity_type or self.action or self.entity_id is not None)


def parse_filters(args: Mapping[str, Any]) -> AuditFilters:
    """Filters from query arguments (or a form); values that are not valid are dropped with a reason."""
    f = AuditFilters()

    def text(name: str) -> str:
        raw = args.get(name)
        return raw.strip() if isinstance(raw, str) else ""

    entity_type, action, entity_id = text("entity_type"), text("action"), text("entity_id")
    if entity_type:
        if entity_type in ENTITY_TYPES:
            f.entity_type = entity_type
        else:
            f.errors["entity_type"] = "That kind of thing is not one the log records; showing every kind."
    if action:
        if action in ACTION_LABELS:
            f.action = action
        else:
            f.errors["action"] = "That change is not one the log records; showing every change."
    if entity_id:
        if as_id(entity_id) is None:
            f.errors["entity_id"] = "That is not the number of anything; showing all of them."
        elif not f.entity_type:
            f.errors["entity_id"] = "A number needs the kind of thing it is; showing all of them."
        else:
            f.entity_id = as_id(entity_id)
    for name in ("after", "before"):
        token = text(name)
        if len(token) <= _CURSOR_MAX:
            setattr(f, name, token)
    if f.after and f.before:
        f.before = ""
    return f


def _cursor(entry: AuditLog) -> str:
    raw = json.dumps([entry.at.isoformat(), entry.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def filters_showing(entry: AuditLog) -> AuditFilters:
    """The whole log from `entry` on (it comes first): for showing one entry when the list asked for lost it."""
    raw = json.dumps([entry.at.isoformat(), entry.id + 1], separators=(",", ":")).encode()
    return AuditFilters(after=base64.urlsafe_b64encode(raw).decode().rstrip("="))


def _read_cursor(token: str) -> tuple[datetime, int] | None:
    """The (at, id) in a token made by _cursor; None when it is damaged."""
    try:
        at, entry_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        when = datetime.fromisoformat(at)
    except (ValueError, TypeError):
        return None
    if when.tzinfo is None or as_id(entry_id) is None:
        return None
    return when, entry_id


def list_entries(f: AuditFilters, per_page: int = PER_PAGE) -> Page:
    """One page of the log, newest first, by position ("seek"): the same cost at any depth.

    Each filter has an index in the page's order ((at, id), (entity_type, at, id), (action, at, id),
    (entity_type, entity_id, at)); nothing counts the rows, and nothing is skipped with OFFSET.
    """
    stmt = select(AuditLog).options(joinedload(AuditLog.actor))
    if f.entity_type:
        stmt = stmt.where(AuditLog.entity_type == f.entity_type)
    if f.entity_id is not None:
        stmt = stmt.where(AuditLog.entity_id == f.entity_id)
    if f.action:
        stmt = stmt.where(AuditLog.action == f.action)
    newest = (AuditLog.at.desc(), AuditLog.id.desc())
    token = f.after or f.before
    position = _read_cursor(token) if token else None
    if token and position is None:
        f.errors["after" if f.after else "before"] = "That page link is out of date; showing the newest changes."
        f.after = f.before = ""
    if position is not None:
        key = tuple_(AuditLog.at, AuditLog.id)
        mark = tuple_(literal(position[0], DateTime(timezone=True)), literal(position[1], Integer))
        if f.after:
            rows = list(db.session.scalars(stmt.where(key < mark).order_by(*newest).limit(per_page + 1)))
            at_start, at_end = False, len(rows) <= per_page
            rows = rows[:per_page]
        else:
            rows = list(db.session.scalars(stmt.where(key > mark).order_by(AuditLog.at.asc(), AuditLog.id.asc())
                                           .limit(per_page + 1)))
            at_start, at_end = len(rows) <= per_page, False
            rows = rows[:per_page][::-1]
        if rows:
            return _page(rows, per_page, at_start, at_end)
        f.after = f.before = ""  # everything past the position went away: start over
    rows = list(db.session.scalars(stmt.order_by(*newest).limit(per_page + 1)))
    return _page(rows[:per_page], per_page, True, len(rows) <= per_page)


def _page(rows: list[AuditLog], per_page: int, at_start: bool, at_end: bool) -> Page:
    return Page(rows, len(rows), 1, per_page, total_exact=False,
                prev_cursor="" if at_start or not rows else _cursor(rows[0]),
                next_cursor="" if at_end or not rows else _cursor(rows[-1]))


def get_entry(entry_id: int) -> AuditLog | None:
    """One audit row, or None."""
    return db.session.get(AuditLog, entry_id) if as_id(entry_id) is not None else None


def action_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The actions a filter offers, grouped by the kind of thing they change."""
    return [(ENTITY_TYPES[kind], sorted(group.items(), key=lambda item: item[1])) for kind, group in ACTIONS.items()]
