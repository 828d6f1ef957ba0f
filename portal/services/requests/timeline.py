"""A request's activity: comments, audited changes and SLA history, as the actor may see them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal import policy
from portal.extensions import db
from portal.models import Attachment, AuditLog, Category, Comment, ServiceRequest, SlaEvent, User
from portal.services.attachments import request_attachments

# The audit actions that show in the timeline as changes to the request.
CHANGE_ACTIONS = ("request.created", "request.status_changed", "request.assigned", "request.updated")
# SLA history shown to staff in a request's timeline (start, response and resolution show already).
TIMELINE_SLA_KINDS = ("paused", "resumed", "at_risk", "breached", "exempted", "exemption_revoked", "recalculated")
# Not shown as a change in the timeline: the comment that set it already says enough.
_SILENT_FIELDS = {"first_response_at"}


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


def visible_comments(actor: User, req: ServiceRequest) -> list[Comment]:
    """The request's comments the actor may read, oldest first (requesters never see internal notes)."""
    stmt = (select(Comment).options(joinedload(Comment.author)).where(Comment.request_id == req.id)
            .order_by(Comment.created_at, Comment.id))
    if not policy.can(actor, "requests.internal_notes"):
        stmt = stmt.where(Comment.internal.is_(False))
    return list(db.session.scalars(stmt))


def timeline(actor: User, req: ServiceRequest) -> list[TimelineEntry]:
    """Comments and audit events, oldest first, filtered to what the actor may see."""
    by_comment: dict[int, list[Attachment]] = {}
    for att in request_attachments(actor, req):
        if att.comment_id:
            by_comment.setdefault(att.comment_id, []).append(att)
    entries = [
        TimelineEntry("comment", c.created_at, c.author, comment=c, attachments=by_comment.get(c.id, []))
        for c in visible_comments(actor, req)
    ]
    events = list(db.session.scalars(
        select(AuditLog).options(joinedload(AuditLog.actor))
        .where(AuditLog.entity_type == "service_request", AuditLog.entity_id == req.id,
               AuditLog.action.in_(CHANGE_ACTIONS))
    ))
    entries.extend(_event_entries(events))
    if policy.can(actor, "sla.read"):
        entries.extend(TimelineEntry("sla", e.at, e.actor, sla_event=e) for e in db.session.scalars(
            select(SlaEvent).options(joinedload(SlaEvent.actor))
            .where(SlaEvent.request_id == req.id, SlaEvent.kind.in_(TIMELINE_SLA_KINDS))))
    order = {"event": 0, "sla": 1, "comment": 2}
    entries.sort(key=lambda e: (e.at, order[e.kind], (e.event or e.sla_event or e.comment).id))
    return entries


def _event_entries(events: list[AuditLog]) -> list[TimelineEntry]:
    """Audit rows as timeline entries with readable changes (assignee ids and category codes become names)."""
    ids = {v for e in events for side in (e.before or {}, e.after or {}) for k, v in side.items()
           if k == "assignee_id" and v}
    names = {u.id: u.name for u in db.session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    has_category = any("category" in (e.after or {}) for e in events)
    categories = dict(db.session.execute(select(Category.code, Category.name)).all()) if has_category else {}
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
            elif key == "category":
                old, new = categories.get(old, old), categories.get(new, new)
            changes.append((key, old, new))
        if changes:
            out.append(TimelineEntry("event", e.at, e.actor, event=e, changes=changes))
    return out
