"""Reading requests: who sees what, the list's filters, sorts and pages, and who changed one last."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import joinedload

from portal import policy
from portal.domain import workflow
from portal.domain.workflow import PRIORITIES, STATUSES
from portal.extensions import db
from portal.models import AuditLog, Category, ServiceRequest, User
from portal.paging import Page, as_id, clamp_page, page_args
from portal.services.errors import NotFound, ValidationFailed
from portal.services.text import unstorable_reason

SORTS = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "updated": "Recently updated",
    "priority": "Priority",
    "status": "Status",
}
STATUS_GROUPS = {"active": workflow.OPEN_STATUSES, "done": frozenset({"resolved", "closed"})}
SEARCH_MAX = 200


def visible_requests(actor: User) -> Select:
    """Requests the actor may see: staff see all, requesters their own."""
    stmt = select(ServiceRequest)
    if not policy.sees_all_requests(actor):
        stmt = stmt.where(ServiceRequest.requester_id == actor.id)
    return stmt


def get_request(actor: User, request_id: int) -> ServiceRequest:
    """The request if the actor may see it; NotFound otherwise (never reveals that it exists)."""
    stmt = visible_requests(actor).where(ServiceRequest.id == request_id).options(
        joinedload(ServiceRequest.requester), joinedload(ServiceRequest.assignee)
    )
    found = db.session.scalar(stmt)
    if found is None:
        raise NotFound(f"Request #{request_id} was not found.")
    return found


def last_change(request_id: int) -> tuple[str | None, datetime | None, int | None]:
    """Who changed the request last (name, id) and when, from its audit trail (indexed by entity and time)."""
    row = db.session.execute(
        select(func.coalesce(User.name, "the system"), AuditLog.at, AuditLog.actor_id)
        .select_from(AuditLog).outerjoin(User, User.id == AuditLog.actor_id)
        .where(AuditLog.entity_type == "service_request", AuditLog.entity_id == request_id)
        .order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(1)).first()
    return (row[0], row[1], row[2]) if row else (None, None, None)


@dataclass
class RequestFilters:
    """The list's filters, as parsed from a query string or API call."""

    status: str = ""        # a status, a group ("active", "done") or "" for all
    priority: str = ""
    category: str = ""
    assignee: str = ""      # "", "me", "none" or a user id
    q: str = ""
    sort: str = "newest"
    page: int = 1
    per_page: int = 25
    default_per_page: int = 25
    errors: dict[str, str] = field(default_factory=dict)

    def as_query(self, **overrides: Any) -> dict[str, Any]:
        """Non-default values as query parameters (for links that keep the current view)."""
        values = {
            "status": self.status, "priority": self.priority, "category": self.category,
            "assignee": self.assignee, "q": self.q,
            "sort": "" if self.sort == "newest" else self.sort,
            "page": "" if self.page == 1 else self.page,
            "per_page": "" if self.per_page == self.default_per_page else self.per_page,
        }
        values.update(overrides)
        return {k: v for k, v in values.items() if v not in ("", None)}


def parse_filters(args: Any, default_per_page: int = 25, strict: bool = False) -> RequestFilters:
    """Read filters from a mapping of strings. Unknown values are dropped, or reported when strict."""
    f = RequestFilters(per_page=default_per_page, default_per_page=default_per_page)
    errors: dict[str, str] = {}

    def pick(name: str, allowed) -> str:
        value = (args.get(name) or "").strip()
        if value and value not in allowed:
            errors[name] = f"Unknown {name} '{value[:40]}'."
            return ""
        return value

    f.status = pick("status", (*STATUSES, *STATUS_GROUPS))
    f.priority = pick("priority", PRIORITIES)
    f.category = pick("category", set(db.session.scalars(select(Category.code))))
    assignee = (args.get("assignee") or "").strip()
    if assignee and assignee not in ("me", "none") and as_id(assignee) is None:
        errors["assignee"] = "Use 'me', 'none' or a user id."
        assignee = ""
    f.assignee = assignee
    q = (args.get("q") or "").strip()[:SEARCH_MAX]
    f.q = "" if unstorable_reason(q) else q  # text no row can contain matches nothing; search all
    f.sort = pick("sort", SORTS) or "newest"
    f.page, f.per_page = page_args(args, default_per_page, strict=strict, errors=errors)
    if strict and errors:
        raise ValidationFailed(errors, "Some filters are not valid.")
    f.errors = errors
    return f


_PRIORITY_RANK = case(workflow.PRIORITY_RANK, value=ServiceRequest.priority)
_STATUS_RANK = case({s: i for i, s in enumerate(STATUSES)}, value=ServiceRequest.status)


def filtered_requests(actor: User, f: RequestFilters) -> Select:
    """The actor's visible requests matching the filters (unordered): the list's and the exports' one query."""
    stmt = visible_requests(actor)
    if f.status in STATUS_GROUPS:
        stmt = stmt.where(ServiceRequest.status.in_(STATUS_GROUPS[f.status]))
    elif f.status:
        stmt = stmt.where(ServiceRequest.status == f.status)
    if f.priority:
        stmt = stmt.where(ServiceRequest.priority == f.priority)
    if f.category:
        stmt = stmt.where(ServiceRequest.category == f.category)
    if f.assignee == "me":
        stmt = stmt.where(ServiceRequest.assignee_id == actor.id)
    elif f.assignee == "none":
        stmt = stmt.where(ServiceRequest.assignee_id.is_(None))
    elif f.assignee:
        stmt = stmt.where(ServiceRequest.assignee_id == as_id(f.assignee))
    if f.q:
        pattern = "%" + f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions = [ServiceRequest.title.ilike(pattern), ServiceRequest.description.ilike(pattern)]
        number = as_id(f.q.lstrip("#"))
        if number is not None:
            conditions.append(ServiceRequest.id == number)
        stmt = stmt.where(or_(*conditions))
    return stmt


def sort_order(sort: str) -> list:
    """The ORDER BY of a list sort (one of SORTS), ending in the id so the order is total."""
    order = {
        "newest": [ServiceRequest.created_at.desc()],
        "oldest": [ServiceRequest.created_at.asc()],
        "updated": [ServiceRequest.updated_at.desc()],
        "priority": [_PRIORITY_RANK.asc(), ServiceRequest.created_at.asc()],
        "status": [_STATUS_RANK.asc(), ServiceRequest.created_at.desc()],
    }[sort]
    return [*order, ServiceRequest.id.desc()]


def list_requests(actor: User, f: RequestFilters) -> Page:
    """The actor's visible requests matching the filters, one page of them."""
    stmt = filtered_requests(actor, f)
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    f.page = clamp_page(f.page, total, f.per_page)
    stmt = (
        stmt.options(joinedload(ServiceRequest.requester), joinedload(ServiceRequest.assignee))
        .order_by(*sort_order(f.sort))
        .limit(f.per_page)
        .offset((f.page - 1) * f.per_page)
    )
    return Page(list(db.session.scalars(stmt)), total, f.page, f.per_page)


def list_categories(include_inactive: bool = False) -> list[Category]:
    """Categories in display order."""
    stmt = select(Category).order_by(Category.sort_order, Category.name)
    if not include_inactive:
        stmt = stmt.where(Category.active.is_(True))
    return list(db.session.scalars(stmt))
