"""Saved views: a person's named filters and sort for the request list, shown as tabs above it.

A view stores the list's own query string, read through the list's filter parser
(`parse_filters`) and written back by it, so it never holds a page, a cursor or a value the list
would drop; the list marks a view's tab current when its own filters write the same string.
Staff save views; managers and admins may share one with the team, whose members then see it as a
tab too. Only the person who saved a view, or an admin, renames, re-filters, shares or deletes it
(portal/policy.py). Every change is checked against the version the person saw (a stale one is a
409 naming who changed it) and recorded in the audit trail, as canned replies are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import Select, func, select
from sqlalchemy.orm import joinedload

from portal import policy
from portal.domain.workflow import PRIORITY_LABELS, STATUS_LABELS
from portal.extensions import db
from portal.models import AuditLog, SavedView, User
from portal.models._time import utcnow
from portal.models.saved_view import VIEW_NAME_MAX, VIEW_QUERY_MAX
from portal.paging import as_id
from portal.services import audit, categories
from portal.services.errors import Conflict, NotFound, StaleChange, ValidationFailed
from portal.services.requests.queries import SORTS, STATUS_ANY, RequestFilters, parse_filters
from portal.services.text import clean_text
from portal.services.uow import unit_of_work

SAVE = "saved_views.save"
SHARE = "saved_views.share"
VIEWS_MAX = 30         # a person's own views: tabs past this many stop being a quick way anywhere
SHARED_SHOWN_MAX = 50  # the team's shared views offered as tabs (the partial index reads them in name order)
AUDIT_FIELDS = ("name", "query", "shared")

# Every message about a view's name, in this one place (the forms carry no rules of their own).
NAME_MISSING = "Give the view a name."
NAME_TAKEN = "You already have a view called “{name}”; choose another name."
TOO_MANY = (f"You have {VIEWS_MAX} saved views, the most one person may keep: delete one you no longer use "
            "(Manage views), then save this one.")
QUERY_TOO_LONG = "These filters are too long to save as a view; shorten the search."
VERSION_BAD = "Send the view's version as a whole number."
GONE = "That view no longer exists: it may have been deleted."


# ---------------------------------------------------------------- the query a view stores

def _as_args(query: Mapping[str, Any] | str | None) -> Mapping[str, Any]:
    if query is None:
        return {}
    if isinstance(query, str):
        return dict(parse_qsl(query.lstrip("?"), keep_blank_values=False))
    if not isinstance(query, Mapping):
        raise ValidationFailed({"query": "Save the list's filters (a query string)."})
    return query


def query_string(filters: RequestFilters) -> str:
    """The filters and sort of `filters` as the query string a view stores (no page, no cursor)."""
    return urlencode(filters.view_query())


def normalise_query(query: Mapping[str, Any] | str | None, default_per_page: int = 25) -> str:
    """`query` (a query string or mapping) read by the list's filter parser and written back: what
    the list would show, without a page, a cursor or anything it would drop as not valid."""
    return query_string(parse_filters(_as_args(query), default_per_page))


def describe_query(query: str, default_per_page: int = 25) -> list[tuple[str, str]]:
    """(label, value) of each filter a view sets, in words, for the views page."""
    f = parse_filters(_as_args(query), default_per_page)
    said: list[tuple[str, str]] = []
    if f.status:
        groups = {"active": "Open (not resolved)", "done": "Resolved or closed", STATUS_ANY: "Any status"}
        said.append(("Status", groups.get(f.status) or STATUS_LABELS.get(f.status, f.status)))
    if f.priority:
        said.append(("Priority", PRIORITY_LABELS.get(f.priority, f.priority)))
    if f.category:
        names = {c.code: c.name for c in categories.list_all()}
        said.append(("Category", names.get(f.category, f.category)))
    if f.assignee:
        if f.assignee in ("me", "none"):
            said.append(("Assignee", "Whoever opens it" if f.assignee == "me" else "Unassigned"))
        else:
            who = db.session.get(User, int(f.assignee))
            said.append(("Assignee", who.name if who else f"Account {f.assignee}"))
    for _name, label, when in f.date_labels():
        said.append((label, when))
    if f.q:
        said.append(("Search", f"“{f.q}”"))
    if f.sort != f.default_sort:
        said.append(("Sort", SORTS.get(f.sort, f.sort)))
    if f.per_page != f.default_per_page:
        said.append(("Per page", str(f.per_page)))
    return said


# ---------------------------------------------------------------- checks

def check_name(name: Any) -> tuple[str, dict[str, str]]:
    """The name cleaned, and what is wrong with it by field name (empty when nothing is)."""
    errors: dict[str, str] = {}
    name = clean_text(errors, "name", name, VIEW_NAME_MAX, missing=NAME_MISSING)
    return name, errors


def _checked_query(query: Any, default_per_page: int) -> str:
    stored = normalise_query(query, default_per_page)
    if len(stored) > VIEW_QUERY_MAX:
        raise ValidationFailed({"query": QUERY_TOO_LONG})
    return stored


def _version(expected_version: Any) -> int | None:
    if expected_version in (None, ""):
        return None
    number = as_id(expected_version)
    if number is None or number < 1:
        raise ValidationFailed({"version": VERSION_BAD})
    return number


def _name_taken(owner_id: int, name: str, except_id: int | None = None) -> None:
    """Conflict when the owner already has a view of this name, whatever its case (their unique index)."""
    stmt = select(SavedView.name).where(SavedView.owner_id == owner_id, func.lower(SavedView.name) == name.lower())
    if except_id is not None:
        stmt = stmt.where(SavedView.id != except_id)
    taken = db.session.scalar(stmt.limit(1))
    if taken is not None:
        message = NAME_TAKEN.format(name=taken)  # as they wrote it then, whatever the case typed now
        raise Conflict(message, {"name": message})


# ---------------------------------------------------------------- reading

def own_views_query(owner_id: int) -> Select:
    """A person's own views in name order: the unique index (owner_id, lower(name)) reads them."""
    return (select(SavedView).where(SavedView.owner_id == owner_id)
            .order_by(SavedView.owner_id, func.lower(SavedView.name)))


def shared_views_query(viewer_id: int | None) -> Select:
    """The team's shared views but the viewer's own, in name order: the partial index on shared ones reads them."""
    # `WHERE shared` as the partial index says it (PostgreSQL does not match `shared IS TRUE` to it).
    stmt = select(SavedView).where(SavedView.shared).order_by(func.lower(SavedView.name))
    if viewer_id is not None:
        stmt = stmt.where(SavedView.owner_id != viewer_id)
    return stmt.limit(SHARED_SHOWN_MAX)


def list_saved_views(actor: User) -> list[SavedView]:
    """The actor's own views, then the ones others shared with the team (each in name order)."""
    policy.require(actor, SAVE)
    own = list(db.session.scalars(own_views_query(actor.id)))
    shared = list(db.session.scalars(shared_views_query(actor.id).options(joinedload(SavedView.owner))))
    return own + shared


def current_view(views: list[SavedView], filters: RequestFilters) -> SavedView | None:
    """The first of `views` that shows exactly what `filters` show, if any (its tab is the current one)."""
    here = query_string(filters)
    return next((v for v in views if v.query == here), None)


def _visible(actor: User, view: SavedView | None) -> SavedView:
    """The view if the actor may know of it: their own, a shared one, or any for an admin."""
    if view is None or not (view.owner_id == actor.id or view.shared or policy.can(actor, "saved_views.manage_any")):
        raise NotFound(GONE)
    return view


def get_saved_view(actor: User, view_id: Any) -> SavedView:
    """One view the actor may see; NotFound for another's private view or an id that is not one."""
    policy.require(actor, SAVE)
    number = as_id(view_id)
    return _visible(actor, db.session.get(SavedView, number) if number is not None else None)


def find_own_view(actor: User, name: Any) -> SavedView | None:
    """The actor's own view of this name, whatever its case (to offer "replace its filters" instead)."""
    if not isinstance(name, str) or not name.strip():
        return None
    return db.session.scalar(select(SavedView).where(
        SavedView.owner_id == actor.id, func.lower(SavedView.name) == name.strip().lower()[:VIEW_NAME_MAX]))


def count_own_views(owner_id: int) -> int:
    """How many views a person has saved (the unique index's leading column counts them)."""
    return db.session.scalar(select(func.count()).select_from(SavedView).where(SavedView.owner_id == owner_id))


# ---------------------------------------------------------------- changing

def _last_changed_by(view_id: int) -> tuple[str | None, int | None]:
    """Who made the view's latest recorded change (its audit rows, by the entity index)."""
    row = db.session.execute(
        select(User.name, AuditLog.actor_id).select_from(AuditLog).outerjoin(User, User.id == AuditLog.actor_id)
        .where(AuditLog.entity_type == "saved_view", AuditLog.entity_id == view_id)
        .order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(1)).first()
    return (row[0], row[1]) if row else (None, None)


def _lock(actor: User, view_id: Any, expected_version: Any) -> SavedView:
    """The view locked for this unit of work, current, and the actor's to change; StaleChange if it
    changed since `expected_version`."""
    seen = _version(expected_version)
    number = as_id(view_id)
    view = db.session.get(SavedView, number, with_for_update=True, populate_existing=True) \
        if number is not None else None
    view = _visible(actor, view)
    policy.require_saved_view_change(actor, view.owner_id)
    if seen is not None and view.version != seen:
        who, who_id = _last_changed_by(view.id)
        raise StaleChange(f"The view “{view.name}”", view.version, who, view.updated_at, who_id)
    return view


def create_saved_view(actor: User, name: Any, query: Any, default_per_page: int = 25) -> SavedView:
    """Save the list's filters and sort (`query`, a query string or mapping) under `name`, for the actor."""
    policy.require(actor, SAVE)
    name, errors = check_name(name)
    if errors:
        raise ValidationFailed(errors)
    stored = _checked_query(query, default_per_page)
    with unit_of_work():
        # One save at a time per person (FOR NO KEY UPDATE: the new row's key share on the user still
        # passes), so two tabs saving the 30th view together cannot make 31.
        db.session.execute(select(User.id).where(User.id == actor.id).with_for_update(key_share=True))
        if count_own_views(actor.id) >= VIEWS_MAX:
            raise ValidationFailed({"name": TOO_MANY}, TOO_MANY)
        _name_taken(actor.id, name)
        now = utcnow()
        view = SavedView(owner_id=actor.id, name=name, query=stored, shared=False, created_at=now, updated_at=now)
        db.session.add(view)
        db.session.flush()
        audit.record(actor, "saved_view.created", "saved_view", view.id, None, audit.snapshot(view, AUDIT_FIELDS))
    return view


def _changed(actor: User, view: SavedView, before: dict[str, Any]) -> None:
    if audit.record_changes(actor, "saved_view.updated", "saved_view", view.id, before,
                            audit.snapshot(view, AUDIT_FIELDS)):
        view.updated_at = utcnow()


def rename_saved_view(actor: User, view_id: Any, name: Any, expected_version: Any = None) -> SavedView:
    """Give a view a new name (unique among its owner's views); a stale rename is refused, never applied."""
    policy.require(actor, SAVE)
    name, errors = check_name(name)
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work():
        view = _lock(actor, view_id, expected_version)
        _name_taken(view.owner_id, name, except_id=view.id)
        before = audit.snapshot(view, AUDIT_FIELDS)
        view.name = name
        _changed(actor, view, before)
    return view


def update_saved_view_query(actor: User, view_id: Any, query: Any, expected_version: Any = None,
                            default_per_page: int = 25) -> SavedView:
    """Point a view at other filters and sort (the list's current ones)."""
    policy.require(actor, SAVE)
    stored = _checked_query(query, default_per_page)
    with unit_of_work():
        view = _lock(actor, view_id, expected_version)
        before = audit.snapshot(view, AUDIT_FIELDS)
        view.query = stored
        _changed(actor, view, before)
    return view


def set_saved_view_shared(actor: User, view_id: Any, shared: bool, expected_version: Any = None) -> SavedView:
    """Share a view with the team, or stop sharing it (managers and admins; the owner, or an admin)."""
    policy.require(actor, SHARE)
    if not isinstance(shared, bool):
        raise ValidationFailed({"shared": "Say whether to share the view: true or false."})
    with unit_of_work():
        view = _lock(actor, view_id, expected_version)
        if view.shared != shared:
            before = audit.snapshot(view, ("shared",))
            view.shared = shared
            view.updated_at = utcnow()
            audit.record(actor, "saved_view.shared" if shared else "saved_view.unshared", "saved_view", view.id,
                         before, audit.snapshot(view, ("shared",)))
    return view


def delete_saved_view(actor: User, view_id: Any, expected_version: Any = None) -> str:
    """Delete a view (what it showed stays in the audit row); returns its name."""
    policy.require(actor, SAVE)
    with unit_of_work():
        view = _lock(actor, view_id, expected_version)
        name = view.name
        audit.record(actor, "saved_view.deleted", "saved_view", view.id, audit.snapshot(view, AUDIT_FIELDS), None)
        db.session.delete(view)
    return name
