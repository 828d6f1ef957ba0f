"""Changing requests: raise one, work it (status, assignment, properties, text) and reply.

Every change is one unit of work: the request row is locked (`SELECT ... FOR UPDATE`), the
version the user saw is compared with the current one (a stale change is refused, never applied
on top), the rules are checked against the locked row, and the change, its audit rows and the
SLA clock commit together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from portal import policy
from portal.domain import workflow
from portal.domain.workflow import PRIORITIES, STATUSES, TransitionError
from portal.extensions import db
from portal.models import Attachment, Comment, ServiceRequest, User
from portal.models._time import utcnow
from portal.models.service_request import COMMENT_MAX, DESCRIPTION_MAX, TITLE_MAX
from portal.paging import as_id
from portal.services import attachments as files
from portal.services import audit, notifications, sla
from portal.services.errors import Conflict, NotFound, RequestClosed, StaleChange, ValidationFailed
from portal.services.requests.queries import get_request, last_change, list_categories, visible_requests
from portal.services.text import clean_text
from portal.services.uow import unit_of_work

REQUEST_AUDIT_FIELDS = ("title", "description", "category", "priority", "status", "assignee_id")
# The statuses a reply may set in the same step ("Send and resolve"): the ones a reply usually ends with.
REPLY_STATUSES = ("waiting_on_customer", "resolved")
TRIAGE_FIELDS = frozenset({"category", "priority", "assignee_id"})
TEXT_FIELDS = frozenset({"title", "description"})


# ---------------------------------------------------------------- the lock and the version

def parse_version(value: Any) -> int | None:
    """The version a form or API call says it was made from; None when it sends none."""
    if value in (None, ""):
        return None
    number = as_id(value)
    if number is None or number < 1:
        raise ValidationFailed({"version": "Send the request's version as a whole number."})
    return number


def lock_request(actor: User, request_id: int, expected_version: int | None = None) -> ServiceRequest:
    """The request, locked until the unit of work ends, and current (not the copy read earlier).

    NotFound if the actor may not see it; StaleChange if it changed since `expected_version`.
    """
    stmt = (visible_requests(actor).where(ServiceRequest.id == request_id)
            .with_for_update(of=ServiceRequest).execution_options(populate_existing=True))
    req = db.session.scalar(stmt)
    if req is None:
        raise NotFound(f"Request #{request_id} was not found.")
    if expected_version is not None and req.version != expected_version:
        changed_by, changed_at, changed_by_id = last_change(req.id)
        raise StaleChange(f"Request #{req.id}", req.version, changed_by, changed_at, changed_by_id)
    return req


# ---------------------------------------------------------------- validation

def _check_category(errors: dict[str, str], code: Any) -> str:
    """A category is required and must be an active one (the one check for the page, the API and edits)."""
    active = {c.code for c in list_categories()}
    if code in (None, ""):
        errors["category"] = "Choose a category."
    elif code not in active:
        errors["category"] = f"Choose one of: {', '.join(sorted(active))}."
    return code


def _check_priority(errors: dict[str, str], value: Any) -> str:
    if value not in PRIORITIES:
        errors["priority"] = f"Choose one of: {', '.join(PRIORITIES)}."
    return value


def _check_assignee(assignee_id: Any) -> User | None:
    if assignee_id in (None, ""):
        return None
    user_id = as_id(assignee_id)
    if user_id is None:
        raise ValidationFailed({"assignee_id": "Choose an agent."})
    user = db.session.get(User, user_id)
    if user is None or not user.active or not user.is_staff:
        raise ValidationFailed({"assignee_id": "Choose an active agent, manager or admin."})
    return user


# ---------------------------------------------------------------- raising

def check_new_request(title: Any, description: Any, category: Any,
                      priority: Any = "medium") -> tuple[str, str, dict[str, str]]:
    """A new request's title and description cleaned, and what is wrong with its fields by name
    (empty when nothing is). A form that finds faults of its own asks this too, so every message
    shows at once."""
    errors: dict[str, str] = {}
    title = clean_text(errors, "title", title, TITLE_MAX)
    description = clean_text(errors, "description", description, DESCRIPTION_MAX)
    _check_category(errors, category)
    _check_priority(errors, priority)
    return title, description, errors


def create_request(
    actor: User,
    title: str,
    description: str,
    category: str,
    priority: str = "medium",
    uploads: list[files.Upload] | None = None,
) -> ServiceRequest:
    """Raise a new request as `actor`, with any attachments, in one transaction."""
    title, description, errors = check_new_request(title, description, category, priority)
    if errors:
        raise ValidationFailed(errors)
    stored = files.store_uploads(uploads or [])
    with unit_of_work() as work:
        work.on_rollback(lambda: files.discard(stored))
        req = _insert_request(actor, stored, title=title, description=description, category=category,
                              priority=priority)
    return req


def _insert_request(actor: User, stored, **values: Any) -> ServiceRequest:
    """A new open request of `actor` with its files, audit row, SLA clock and receipt (in the caller's unit of work)."""
    now = utcnow()
    req = ServiceRequest(**values, status="open", requester_id=actor.id, created_at=now, updated_at=now)
    db.session.add(req)
    db.session.flush()
    _add_attachments(actor, req, None, stored)
    fields = REQUEST_AUDIT_FIELDS + (("follow_up_of_id",) if req.follow_up_of_id else ())
    audit.record(actor, "request.created", "service_request", req.id, None, audit.snapshot(req, fields))
    sla.start_clock(req, now, actor)
    notifications.request_created(req)
    return req


def follow_up_title(original: ServiceRequest) -> str:
    """"Follow-up to #N: <its title>", shortened to fit a title."""
    title = f"Follow-up to #{original.id}: {original.title}"
    return title if len(title) <= TITLE_MAX else title[:TITLE_MAX - 1].rstrip() + "…"


def open_follow_up(actor: User, request_id: int, description: str) -> ServiceRequest:
    """Raise a request that continues a closed one: its category and priority, linked to it.

    What the requester tried to reply becomes the description. The category is the closed
    request's even if it was retired since (staff can re-categorise). The closed request is locked,
    so a reopen at the same moment either lands first (the follow-up is refused: reply there) or
    after (the follow-up stands).
    """
    original = get_request(actor, request_id)
    policy.require_follow_up(actor, original.requester_id)
    errors: dict[str, str] = {}
    description = clean_text(errors, "description", description, DESCRIPTION_MAX)
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work():
        original = lock_request(actor, request_id)
        if original.status != "closed":
            message = f"Request #{original.id} is {original.status_label.lower()} now, not closed: reply on it instead."
            raise Conflict(message)
        req = _insert_request(actor, [], title=follow_up_title(original), description=description,
                              category=original.category, priority=original.priority, follow_up_of_id=original.id)
        audit.record(actor, "request.followed_up", "service_request", original.id, None, {"follow_up_id": req.id})
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


# ---------------------------------------------------------------- working

def _really_changed(req: ServiceRequest, changes: dict[str, Any]) -> dict[str, Any]:
    """Only the fields whose value differs from the request's own.

    A form or PATCH that resends a value unchanged (say, a category retired since) is not a
    change to check; the page and the API agree because both come through here.
    """
    out = {}
    for name, value in changes.items():
        current = getattr(req, name)
        if name in TEXT_FIELDS and isinstance(value, str):
            same = value.strip() == current
        elif name == "assignee_id":
            same = (value in (None, "") and current is None) or (
                as_id(value) is not None and not isinstance(value, bool) and as_id(value) == current)
        else:
            same = value == current
        if not same:
            out[name] = value
    return out


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


def _apply_changes(actor: User, req: ServiceRequest, changes: dict[str, Any]) -> None:
    """Check and apply changes to a locked request, with one audit row and the SLA clock."""
    if TRIAGE_FIELDS & changes.keys():
        policy.require(actor, "requests.triage")
    if TEXT_FIELDS & changes.keys():
        policy.require_text_edit(actor, req.requester_id, req.status)
    if "status" in changes and changes["status"] not in STATUSES:
        raise ValidationFailed({"status": f"Choose one of: {', '.join(STATUSES)}."})
    changes = _really_changed(req, changes)
    errors: dict[str, str] = {}
    new: dict[str, Any] = {}
    if "title" in changes:
        new["title"] = clean_text(errors, "title", changes["title"], TITLE_MAX)
    if "description" in changes:
        new["description"] = clean_text(errors, "description", changes["description"], DESCRIPTION_MAX)
    if "category" in changes:
        new["category"] = _check_category(errors, changes["category"])
    if "priority" in changes:
        new["priority"] = _check_priority(errors, changes["priority"])
    if errors:
        raise ValidationFailed(errors)
    if "assignee_id" in changes:
        assignee = _check_assignee(changes["assignee_id"])
        new["assignee_id"] = assignee.id if assignee else None

    before = audit.snapshot(req, REQUEST_AUDIT_FIELDS)
    clock_before = sla.clock_snapshot(req)
    now = utcnow()
    for name, value in new.items():
        setattr(req, name, value)
    if "status" in changes:
        _apply_status(actor, req, changes["status"], now)
    if audit.record_changes(actor, _change_action, "service_request", req.id, before,
                            audit.snapshot(req, REQUEST_AUDIT_FIELDS)):
        req.updated_at = now
        sla.sync(req, clock_before, actor, now)
        if req.assignee_id != before["assignee_id"]:
            notifications.assigned(req, actor)
        if req.status != before["status"]:
            notifications.status_changed(req, actor, before["status"])


def _change_action(changed: set[str]) -> str:
    """The audit action of a change: the timeline reads status moves and assignments on their own."""
    if changed == {"status"}:
        return "request.status_changed"
    return "request.assigned" if changed == {"assignee_id"} else "request.updated"


def update_request(actor: User, request_id: int, changes: dict[str, Any],
                   expected_version: int | None = None) -> ServiceRequest:
    """Change any of title, description, category, priority, status, assignee_id at once.

    Every change is checked before anything is written; the whole update is one transaction
    with one audit row. Fields sent with their current value are not changes.
    """
    with unit_of_work():
        req = lock_request(actor, request_id, expected_version)
        _apply_changes(actor, req, changes)
    return req


def _set_status(actor: User, req: ServiceRequest, status: str) -> None:
    """Move a locked request to `status` (the one status change of change_status and of a reply that sets one)."""
    if req.status == status:
        message = f"The request is already {req.status_label.lower()}."
        raise Conflict(message, {"status": message})
    _apply_changes(actor, req, {"status": status})


def change_status(actor: User, request_id: int, status: str, expected_version: int | None = None) -> ServiceRequest:
    """Move a request along the workflow; Conflict if the move is not allowed."""
    if status not in STATUSES:
        raise ValidationFailed({"status": f"Choose one of: {', '.join(STATUSES)}."})
    with unit_of_work():
        req = lock_request(actor, request_id, expected_version)
        _set_status(actor, req, status)
    return req


def reply_statuses(actor: User, req: ServiceRequest) -> list[str]:
    """The statuses a reply of `actor` may also set on `req` as it is now (the composer's "Send and ...")."""
    allowed = workflow.allowed_transitions(req.status, actor.role)
    return [s for s in REPLY_STATUSES if s in allowed]


def assign(actor: User, request_id: int, assignee_id: int | None,
           expected_version: int | None = None) -> ServiceRequest:
    """Assign a request to an agent (or unassign with None)."""
    policy.require(actor, "requests.triage")
    return update_request(actor, request_id, {"assignee_id": assignee_id}, expected_version)


def add_comment(
    actor: User,
    request_id: int,
    body: str,
    internal: bool = False,
    uploads: list[files.Upload] | None = None,
    status: str | None = None,
    expected_version: int | None = None,
) -> Comment:
    """Reply on a request. Staff may write internal notes; a staff reply may be the first response.

    A requester's reply moves a request waiting on them back to work and reopens a resolved one
    (its resolution cleared, its SLA resolution clock resumed); to a closed one it is refused with
    RequestClosed and nothing is saved (they open a follow-up instead). A reply adds to the request
    and overwrites nothing, so it carries no version check; it still locks the request and decides
    on the locked status, so an agent closing it at the same moment comes wholly before or after.

    `status` (one of REPLY_STATUSES) also moves the request, as change_status would, in the same
    unit of work: the reply, the move and their audit, SLA and mail rows commit together or not at
    all. A reply that moves the request changes what the sender saw, so the composer sends
    `expected_version` (the version their page showed) with a status; a stale one saves nothing
    (StaleChange), like any other change made from an old view.
    """
    req = get_request(actor, request_id)  # NotFound before any file is written
    if internal:
        policy.require(actor, "requests.internal_notes")
    errors: dict[str, str] = {}
    body = clean_text(errors, "body", body, COMMENT_MAX)
    status = status or None
    if status is not None and status not in REPLY_STATUSES:
        labels = " or ".join(workflow.STATUS_LABELS[s].lower() for s in REPLY_STATUSES)
        errors["status"] = f"A reply can set the request to {labels}; send it alone for anything else."
    if errors:
        raise ValidationFailed(errors)
    if not workflow.reply_outcome(req.status, actor.role).accepted:
        raise RequestClosed(req.id)  # before any file is written; decided again under the lock
    stored = files.store_uploads(uploads or [])
    with unit_of_work() as work:
        work.on_rollback(lambda: files.discard(stored))
        req = lock_request(actor, request_id, expected_version)
        outcome = workflow.reply_outcome(req.status, actor.role)
        if not outcome.accepted:
            raise RequestClosed(req.id)
        now = utcnow()
        comment = Comment(request_id=req.id, author_id=actor.id, body=body, internal=bool(internal), created_at=now)
        db.session.add(comment)
        db.session.flush()
        _add_attachments(actor, req, comment, stored)
        before = audit.snapshot(req, ("status", "first_response_at"))
        clock_before = sla.clock_snapshot(req)
        if workflow.is_first_response(actor.role, comment.internal, req.first_response_at):
            req.first_response_at = now
        if outcome.reopens:
            _apply_status(actor, req, outcome.status, now)  # the workflow's reopen: resolution cleared
        else:
            req.status = outcome.status  # e.g. the customer answered: the ball is back with the agents
        req.updated_at = now
        audit.record(actor, "comment.added", "service_request", req.id, None,
                     {"comment_id": comment.id, "internal": comment.internal})
        if audit.record_changes(actor, "request.updated", "service_request", req.id, before,
                                audit.snapshot(req, ("status", "first_response_at"))):
            sla.sync(req, clock_before, actor, now)
        if status is not None:
            _set_status(actor, req, status)  # the workflow's check, audit row, SLA clock and mail
        notifications.public_comment(req, comment, actor)
        notifications.mentioned(req, comment, actor)  # an internal note's @colleagues
    return comment
