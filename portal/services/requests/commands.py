"""Service request operations: raise, list, work (status, assignment, comments) and read the timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import joinedload

from portal.domain import workflow
from portal.domain.workflow import PRIORITIES, STATUSES, TransitionError
from portal.extensions import db
from portal.models import Attachment, AuditLog, Category, Comment, ServiceRequest, SlaEvent, User
from portal.models._time import utcnow
from portal.models.service_request import COMMENT_MAX, DESCRIPTION_MAX, TITLE_MAX
from portal.services import attachments as files
from portal.services import audit, sla
from portal.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from portal.services.text import unstorable_reason

REQUEST_AUDIT_FIELDS = ("title", "description", "category", "priority", "status", "assignee_id")
SORTS = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "updated": "Recently updated",
    "priority": "Priority",
    "status": "Status",
}
STATUS_GROUPS = {"active": workflow.OPEN_STATUSES, "done": frozenset({"resolved", "closed"})}
PER_PAGE_MAX = 100
PAGE_MAX = 100_000
SEARCH_MAX = 200


# ---------------------------------------------------------------- reading

_MAX_ID = 2**31 - 1  # ids are PostgreSQL integers


def _as_id(value: Any) -> int | None:
    """A database id from an int or a string of ASCII digits; None for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdecimal():
        number = int(value)
    else:
        return None
    return number if 0 <= number <= _MAX_ID else None


def visible_requests(actor: User) -> Select:
    """Requests the actor may see: staff see all, requesters their own."""
    stmt = select(ServiceRequest)
    if not actor.is_staff:
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
    if assignee and assignee not in ("me", "none") and _as_id(assignee) is None:
        errors["assignee"] = "Use 'me', 'none' or a user id."
        assignee = ""
    f.assignee = assignee
    q = (args.get("q") or "").strip()[:SEARCH_MAX]
    f.q = "" if unstorable_reason(q) else q  # text no row can contain matches nothing; search all
    f.sort = pick("sort", SORTS) or "newest"
    for name, default, top in (("page", 1, PAGE_MAX), ("per_page", default_per_page, PER_PAGE_MAX)):
        raw = (args.get(name) or "").strip()
        if not raw:
            setattr(f, name, default)
        elif not (raw.isascii() and raw.isdecimal()) or int(raw) < 1:
            errors[name] = f"{name} must be a whole number from 1 to {top}."
            setattr(f, name, default)
        elif int(raw) > top:
            if strict:
                errors[name] = f"{name} must be a whole number from 1 to {top}."
            setattr(f, name, top)
        else:
            setattr(f, name, int(raw))
    if strict and errors:
        raise ValidationFailed(errors, "Some filters are not valid.")
    f.errors = errors
    return f


@dataclass
class Page:
    """One page of a list, with what a pager needs."""

    items: list
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


_PRIORITY_RANK = case(workflow.PRIORITY_RANK, value=ServiceRequest.priority)
_STATUS_RANK = case({s: i for i, s in enumerate(STATUSES)}, value=ServiceRequest.status)


def list_requests(actor: User, f: RequestFilters) -> Page:
    """The actor's visible requests matching the filters, one page of them."""
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
        stmt = stmt.where(ServiceRequest.assignee_id == _as_id(f.assignee))
    if f.q:
        pattern = "%" + f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions = [ServiceRequest.title.ilike(pattern), ServiceRequest.description.ilike(pattern)]
        number = _as_id(f.q.lstrip("#"))
        if number is not None:
            conditions.append(ServiceRequest.id == number)
        stmt = stmt.where(or_(*conditions))
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    last_page = max(1, -(-total // f.per_page))
    if f.page > last_page:
        f.page = last_page  # past the end (an old link, a typed number): show the last page
    order = {
        "newest": [ServiceRequest.created_at.desc()],
        "oldest": [ServiceRequest.created_at.asc()],
        "updated": [ServiceRequest.updated_at.desc()],
        "priority": [_PRIORITY_RANK.asc(), ServiceRequest.created_at.asc()],
        "status": [_STATUS_RANK.asc(), ServiceRequest.created_at.desc()],
    }[f.sort]
    stmt = (
        stmt.options(joinedload(ServiceRequest.requester), joinedload(ServiceRequest.assignee))
        .order_by(*order, ServiceRequest.id.desc())
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


# ---------------------------------------------------------------- validation

def _check_text(errors: dict[str, str], name: str, value: Any, maximum: int, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[name] = "Must be text."
        return ""
    value = value.strip()
    problem = unstorable_reason(value)
    if problem:
        errors[name] = problem
    elif required and not value:
        errors[name] = "This field is required."
    elif len(value) > maximum:
        errors[name] = f"Use at most {maximum} characters (got {len(value)})."
    return value


def _check_category(errors: dict[str, str], code: Any) -> str:
    active = {c.code for c in list_categories()}
    if code not in active:
        errors["category"] = f"Choose one of: {', '.join(sorted(active))}."
    return code


def _check_priority(errors: dict[str, str], value: Any) -> str:
    if value not in PRIORITIES:
        errors["priority"] = f"Choose one of: {', '.join(PRIORITIES)}."
    return value


# ---------------------------------------------------------------- changing

def _touch(req: ServiceRequest, now: datetime) -> None:
    req.updated_at = now


def create_request(
    actor: User,
    title: str,
    description: str,
    category: str,
    priority: str = "medium",
    uploads: list[files.Upload] | None = None,
) -> ServiceRequest:
    """Raise a new request as `actor`, with any attachments, in one transaction."""
    errors: dict[str, str] = {}
    title = _check_text(errors, "title", title, TITLE_MAX, required=True)
    description = _check_text(errors, "description", description, DESCRIPTION_MAX, required=True)
    _check_category(errors, category)
    _check_priority(errors, priority)
    if errors:
        raise ValidationFailed(errors)
    stored = files.store_uploads(uploads or [])
    try:
        now = utcnow()
        req = ServiceRequest(
            title=title, description=description, category=category, priority=priority,
            status="open", requester_id=actor.id, created_at=now, updated_at=now,
        )
        db.session.add(req)
        db.session.flush()
        _add_attachments(actor, req, None, stored)
        audit.record(actor, "request.created", "service_request", req.id, None,
                     audit.snapshot(req, REQUEST_AUDIT_FIELDS))
        sla.start_clock(req, now, actor)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        files.discard(stored)
        raise
    return req


def _add_attachments(actor: User, req: ServiceRequest, comment: Comment | None, stored) -> None:
    for item in stored:
        db.session.add(Attachment(
            request_id=req.id, comment_id=comment.id if comment else None, uploaded_by_id=actor.id,
            filename=item.filename, size=item.size, content_type=item.content_type,
            storage_name=item.storage_name,
        ))
        audit.record(actor, "attachment.added", "service_request", req.id, None,
                     {"filename": item.filename, "size": item.size, "internal": bool(comment and comment.internal)})


def _require_staff(actor: User, what: str) -> None:
    if not actor.is_staff:
        raise Forbidden(f"Only agents can {what}.")


def _apply_status(actor: User, req: ServiceRequest, target: str, now: datetime) -> None:
    try:
        workflow.check_transition(req.status, target, actor.role)
    except TransitionError as exc:
        raise Conflict(exc.reason, {"status": exc.reason}) from exc
    stamps = workflow.apply_transition(
        req.status, target,
        workflow.Timestamps(req.first_response_at, req.resolved_at, req.closed_at), now,
    )
    req.status = target
    req.first_response_at, req.resolved_at, req.closed_at = (
        stamps.first_response_at, stamps.resolved_at, stamps.closed_at
    )


def _check_assignee(assignee_id: Any) -> User | None:
    if assignee_id in (None, ""):
        return None
    user_id = None if isinstance(assignee_id, bool) else _as_id(assignee_id)
    if user_id is None:
        raise ValidationFailed({"assignee_id": "Choose an agent."})
    user = db.session.get(User, user_id)
    if user is None or not user.active or not user.is_staff:
        raise ValidationFailed({"assignee_id": "Choose an active agent, manager or admin."})
    return user


def update_request(actor: User, request_id: int, changes: dict[str, Any]) -> ServiceRequest:
    """Change any of title, description, category, priority, status, assignee_id at once.

    Every change is checked before anything is written; the whole update is one transaction
    with one audit row.
    """
    req = get_request(actor, request_id)
    errors: dict[str, str] = {}
    staff_only = {"category", "priority", "assignee_id"} & changes.keys()
    if staff_only and not actor.is_staff:
        raise Forbidden(f"Only agents can change {', '.join(sorted(staff_only))}.")
    if ({"title", "description"} & changes.keys()) and not actor.is_staff and req.status not in workflow.OPEN_STATUSES:
        raise Conflict("A resolved or closed request can no longer be edited; reopen it first.")
    new: dict[str, Any] = {}
    if "title" in changes:
        new["title"] = _check_text(errors, "title", changes["title"], TITLE_MAX, required=True)
    if "description" in changes:
        new["description"] = _check_text(errors, "description", changes["description"], DESCRIPTION_MAX, required=True)
    if "category" in changes:
        new["category"] = _check_category(errors, changes["category"])
    if "priority" in changes:
        new["priority"] = _check_priority(errors, changes["priority"])
    if "status" in changes and changes["status"] not in STATUSES:
        errors["status"] = f"Choose one of: {', '.join(STATUSES)}."
    if errors:
        raise ValidationFailed(errors)
    assignee = _check_assignee(changes["assignee_id"]) if "assignee_id" in changes else None

    before = audit.snapshot(req, REQUEST_AUDIT_FIELDS)
    clock_before = sla.clock_snapshot(req)
    now = utcnow()
    try:
        for name, value in new.items():
            setattr(req, name, value)
        if "assignee_id" in changes:
            req.assignee_id = assignee.id if assignee else None
        if "status" in changes and changes["status"] != req.status:
            _apply_status(actor, req, changes["status"], now)
        after = audit.snapshot(req, REQUEST_AUDIT_FIELDS)
        if after != before:
            _touch(req, now)
            changed = {k for k in after if after[k] != before[k]}
            action = "request.status_changed" if changed == {"status"} else (
                "request.assigned" if changed == {"assignee_id"} else "request.updated")
            audit.record(actor, action, "service_request", req.id,
                         {k: before[k] for k in changed}, {k: after[k] for k in changed})
            sla.sync(req, clock_before, actor, now)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return req


def change_status(actor: User, request_id: int, status: str) -> ServiceRequest:
    """Move a request along the workflow; Conflict if the move is not allowed."""
    if status not in STATUSES:
        raise ValidationFailed({"status": f"Choose one of: {', '.join(STATUSES)}."})
    req = get_request(actor, request_id)
    if req.status == status:
        message = f"The request is already {req.status_label.lower()}."
        raise Conflict(message, {"status": message})
    return update_request(actor, request_id, {"status": status})


def assign(actor: User, request_id: int, assignee_id: int | None) -> ServiceRequest:
    """Assign a request to an agent (or unassign with None)."""
    _require_staff(actor, "assign requests")
    return update_request(actor, request_id, {"assignee_id": assignee_id})


def add_comment(
    actor: User,
    request_id: int,
    body: str,
    internal: bool = False,
    uploads: list[files.Upload] | None = None,
) -> Comment:
    """Reply on a request. Staff may write internal notes; a staff reply may be the first response."""
    req = get_request(actor, request_id)
    if internal and not actor.is_staff:
        raise Forbidden("Only agents can write internal notes.")
    errors: dict[str, str] = {}
    body = _check_text(errors, "body", body, COMMENT_MAX, required=True)
    if errors:
        raise ValidationFailed(errors)
    stored = files.store_uploads(uploads or [])
    try:
        now = utcnow()
        comment = Comment(request_id=req.id, author_id=actor.id, body=body, internal=bool(internal), created_at=now)
        db.session.add(comment)
        db.session.flush()
        _add_attachments(actor, req, comment, stored)
        before = audit.snapshot(req, ("status", "first_response_at"))
        clock_before = sla.clock_snapshot(req)
        if workflow.is_first_response(actor.role, comment.internal, req.first_response_at):
            req.first_response_at = now
        if not actor.is_staff and req.status == "waiting_on_customer":
            # The customer answered: the ball is back with the agents.
            req.status = "in_progress"
        after = audit.snapshot(req, ("status", "first_response_at"))
        _touch(req, now)
        audit.record(actor, "comment.added", "service_request", req.id, None,
                     {"comment_id": comment.id, "internal": comment.internal})
        if after != before:
            changed = {k for k in after if after[k] != before[k]}
            audit.record(actor, "request.updated", "service_request", req.id,
                         {k: before[k] for k in changed}, {k: after[k] for k in changed})
            sla.sync(req, clock_before, actor, now)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        files.discard(stored)
        raise
    return comment


# ---------------------------------------------------------------- timeline

@dataclass
class TimelineEntry:
    """One thing that happened on a request, for the detail page and the API."""

    kind: str          # "comment", "event" (audit) or "sla"
    at: datetime
    actor: User | None
    comment: Comment | None = None
    attachments: list[Attachment] = field(default_factory=list)
    event: AuditLog | None = None
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)  # (field, before, after) for events
    sla_event: SlaEvent | None = None


# SLA history shown to staff in a request's timeline (start, response and resolution show already).
TIMELINE_SLA_KINDS = ("paused", "resumed", "at_risk", "breached", "exempted", "exemption_revoked", "recalculated")


def request_attachments(actor: User, req: ServiceRequest) -> list[Attachment]:
    """Files on the request the actor may see (requesters never see internal-note files)."""
    stmt = (
        select(Attachment).outerjoin(Comment, Attachment.comment_id == Comment.id)
        .where(Attachment.request_id == req.id).order_by(Attachment.created_at, Attachment.id)
    )
    if not actor.is_staff:
        stmt = stmt.where(or_(Attachment.comment_id.is_(None), Comment.internal.is_(False)))
    return list(db.session.scalars(stmt))


def timeline(actor: User, req: ServiceRequest) -> list[TimelineEntry]:
    """Comments and audit events, oldest first, filtered to what the actor may see."""
    comments_stmt = select(Comment).options(joinedload(Comment.author)).where(Comment.request_id == req.id)
    if not actor.is_staff:
        comments_stmt = comments_stmt.where(Comment.internal.is_(False))
    comments = list(db.session.scalars(comments_stmt))
    by_comment: dict[int, list[Attachment]] = {}
    for att in request_attachments(actor, req):
        if att.comment_id:
            by_comment.setdefault(att.comment_id, []).append(att)
    entries = [
        TimelineEntry("comment", c.created_at, c.author, comment=c, attachments=by_comment.get(c.id, []))
        for c in comments
    ]
    events = list(db.session.scalars(
        select(AuditLog).options(joinedload(AuditLog.actor))
        .where(AuditLog.entity_type == "service_request", AuditLog.entity_id == req.id,
               AuditLog.action.in_(("request.created", "request.status_changed", "request.assigned",
                                    "request.updated")))
    ))
    entries.extend(_event_entries(events))
    if actor.is_staff:
        entries.extend(TimelineEntry("sla", e.at, e.actor, sla_event=e) for e in db.session.scalars(
            select(SlaEvent).options(joinedload(SlaEvent.actor))
            .where(SlaEvent.request_id == req.id, SlaEvent.kind.in_(TIMELINE_SLA_KINDS))))
    order = {"event": 0, "sla": 1, "comment": 2}
    entries.sort(key=lambda e: (e.at, order[e.kind], (e.event or e.sla_event or e.comment).id))
    return entries


# Not shown as a change in the timeline: the comment that set it already says enough.
_SILENT_FIELDS = {"first_response_at"}


def _event_entries(events: list[AuditLog]) -> list[TimelineEntry]:
    """Audit rows as timeline entries with readable changes (assignee ids become names)."""
    ids = {v for e in events for side in (e.before or {}, e.after or {}) for k, v in side.items()
           if k == "assignee_id" and v}
    names = {u.id: u.name for u in db.session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    out = []
    for e in events:
        if e.action == "request.created":
            out.append(TimelineEntry("event", e.at, e.actor, event=e))
            continue
        before, after = e.before or {}, e.after or {}
        changes = []
        for key in after:
            if key in _SILENT_FIELDS:
                continue
            old, new = before.get(key), after.get(key)
            if key == "assignee_id":
                key, old, new = "assignee", names.get(old), names.get(new)
            changes.append((key, old, new))
        if changes:
            out.append(TimelineEntry("event", e.at, e.actor, event=e, changes=changes))
    return out


def get_attachment(actor: User, attachment_id: int) -> Attachment:
    """An attachment the actor may download; NotFound otherwise."""
    att = db.session.get(Attachment, attachment_id)
    if att is None:
        raise NotFound("No such attachment.")
    get_request(actor, att.request_id)  # raises NotFound when the request is not visible
    if att.comment is not None and att.comment.internal and not actor.is_staff:
        raise NotFound("No such attachment.")
    return att
