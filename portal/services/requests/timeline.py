"""A request's activity: comments, audited changes and SLA history, as the actor may see them.

A long history is shown the way helpdesks show a long conversation: the first entry and the
newest few, with the middle collapsed behind "Show N older events", which loads it a page at a
time (newest of the hidden first). Every read is a LIMIT along one of the three sources'
(request, time) indexes, and the pages are keyset pages over the timeline's one order,
(time, kind, id), so a request with 10,000 events costs what one with 30 does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlalchemy.orm import joinedload

from portal import policy
from portal.extensions import db
from portal.models import Attachment, AuditLog, Category, Comment, ServiceRequest, SlaEvent, User
from portal.services.errors import NotFound

# The audit actions that show in the timeline as changes to the request.
CHANGE_ACTIONS = ("request.created", "request.status_changed", "request.assigned", "request.updated")
# SLA history shown to staff in a request's timeline (start, response and resolution show already).
TIMELINE_SLA_KINDS = ("paused", "resumed", "at_risk", "breached", "exempted", "exemption_revoked", "recalculated")
# Not shown as a change in the timeline: the comment that set it already says enough.
_SILENT_FIELDS = {"first_response_at"}
# Entries at the same instant: the change first, then SLA history, then the comment.
KIND_RANK = {"event": 0, "sla": 1, "comment": 2}
_KIND_OF_RANK = {rank: kind for kind, rank in KIND_RANK.items()}

NEWEST_SHOWN = 20   # the newest entries a request page shows under the collapsed middle
OLDER_PAGE = 50     # entries per "Show older events" page
COLLAPSE_MIN = 5    # never hide fewer than this: showing them costs less than a click
MAX_SHOWN = 1000    # the furthest a page without JavaScript expands (?before=...), to bound its size


@dataclass(frozen=True, order=True)
class Position:
    """Where an entry sits in the timeline's order: (time, kind rank, id)."""

    at: datetime
    rank: int
    id: int

    @property
    def token(self) -> str:
        """The entry in a URL: "comment-812", "event-77", "sla-9"."""
        return f"{_KIND_OF_RANK[self.rank]}-{self.id}"


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

    @property
    def position(self) -> Position:
        row = self.comment or self.event or self.sla_event
        return Position(self.at, KIND_RANK[self.kind], row.id)


class Timeline(list):
    """Entries oldest first; when `hidden` > 0, that many more sit before entries[gap_at].

    A list, so a template that only loops over `entries` keeps working; the gap's link loads the
    page older than `older_than` (an entry token).
    """

    def __init__(self, entries: Iterable[TimelineEntry] = (), hidden: int = 0, gap_at: int = 0,
                 older_than: str | None = None):
        super().__init__(entries)
        self.hidden = hidden
        self.gap_at = gap_at
        self.older_than = older_than if hidden else None


# ---------------------------------------------------------------- the three sources

@dataclass(frozen=True)
class _Source:
    """One kind of entry: its table, time and id columns and the actor's visibility filter."""

    kind: str
    model: Any
    at: Any
    id: Any
    where: tuple
    options: tuple = ()

    @property
    def rank(self) -> int:
        return KIND_RANK[self.kind]

    def before(self, pos: Position):
        """Rows ordered before `pos` (written so the (request, time) index bounds the scan)."""
        if self.rank < pos.rank:
            return self.at <= pos.at
        if self.rank > pos.rank:
            return self.at < pos.at
        return and_(self.at <= pos.at, or_(self.at < pos.at, self.id < pos.id))

    def from_(self, pos: Position):
        """Rows at `pos` or ordered after it."""
        if self.rank < pos.rank:
            return self.at > pos.at
        if self.rank > pos.rank:
            return self.at >= pos.at
        return and_(self.at >= pos.at, or_(self.at > pos.at, self.id >= pos.id))

    def after(self, pos: Position):
        """Rows ordered after `pos`."""
        if self.rank < pos.rank:
            return self.at > pos.at
        if self.rank > pos.rank:
            return self.at >= pos.at
        return and_(self.at >= pos.at, or_(self.at > pos.at, self.id > pos.id))


Range = Callable[[_Source], Any]  # a condition per source, e.g. lambda s: s.before(pos)


def _sources(actor: User, req: ServiceRequest) -> list[_Source]:
    """What the actor may see of the request's history, source by source."""
    comment_where = [Comment.request_id == req.id]
    if not policy.can(actor, "requests.internal_notes"):
        comment_where.append(Comment.internal.is_(False))
    # An audited change shows only if it changed something besides the silent fields; said in SQL,
    # so a LIMIT counts only rows that become entries.
    shows_a_change = AuditLog.after.op("-", return_type=JSONB)(array(sorted(_SILENT_FIELDS), type_=Text)) \
        != literal_column("'{}'::jsonb")
    sources = [
        _Source("event", AuditLog, AuditLog.at, AuditLog.id,
                (AuditLog.entity_type == "service_request", AuditLog.entity_id == req.id,
                 AuditLog.action.in_(CHANGE_ACTIONS),
                 or_(AuditLog.action == "request.created", shows_a_change)),
                (joinedload(AuditLog.actor),)),
        _Source("comment", Comment, Comment.created_at, Comment.id, tuple(comment_where),
                (joinedload(Comment.author),)),
    ]
    if policy.can(actor, "sla.read"):
        sources.append(_Source("sla", SlaEvent, SlaEvent.at, SlaEvent.id,
                               (SlaEvent.request_id == req.id, SlaEvent.kind.in_(TIMELINE_SLA_KINDS)),
                               (joinedload(SlaEvent.actor),)))
    return sources


def _count(sources: list[_Source], *ranges: Range) -> int:
    """How many entries lie in the ranges: one statement, a count per source."""
    counts = [select(func.count()).select_from(s.model).where(*s.where, *(r(s) for r in ranges)).scalar_subquery()
              for s in sources]
    total = counts[0]
    for c in counts[1:]:
        total = total + c
    return db.session.scalar(select(total)) or 0


def _read(sources: list[_Source], *ranges: Range, newest: bool, limit: int) -> list[TimelineEntry]:
    """The `limit` oldest (or newest) entries in the ranges, oldest first: a LIMIT per source, merged."""
    if limit <= 0:
        return []
    rows: dict[str, list] = {}
    for s in sources:
        order = (s.at.desc(), s.id.desc()) if newest else (s.at, s.id)
        rows[s.kind] = list(db.session.scalars(
            select(s.model).options(*s.options).where(*s.where, *(r(s) for r in ranges)).order_by(*order)
            .limit(limit)))
    entries = _entries(rows.get("comment", []), rows.get("event", []), rows.get("sla", []))
    entries.sort(key=lambda e: e.position)
    return entries[-limit:] if newest else entries[:limit]


def _position(sources: list[_Source], token: str | None) -> Position:
    """The position of the entry a URL names, if the actor may see it; NotFound otherwise."""
    kind, _, raw_id = (token or "").partition("-")
    source = next((s for s in sources if s.kind == kind), None)
    if source is None or not raw_id.isdigit() or len(raw_id) > 18:
        raise NotFound("That part of the timeline was not found.")
    at = db.session.scalar(select(source.at).where(*source.where, source.id == int(raw_id)))
    if at is None:
        raise NotFound("That part of the timeline was not found.")
    return Position(at, source.rank, int(raw_id))


# ---------------------------------------------------------------- what callers use

def visible_comments(actor: User, req: ServiceRequest) -> list[Comment]:
    """The request's comments the actor may read, oldest first (requesters never see internal notes)."""
    stmt = (select(Comment).options(joinedload(Comment.author)).where(Comment.request_id == req.id)
            .order_by(Comment.created_at, Comment.id))
    if not policy.can(actor, "requests.internal_notes"):
        stmt = stmt.where(Comment.internal.is_(False))
    return list(db.session.scalars(stmt))


def timeline(actor: User, req: ServiceRequest, newest: int = NEWEST_SHOWN,
             expand_before: str | None = None) -> Timeline:
    """The request's history as the actor may see it, oldest first: all of it when short, else the
    first entry, the `newest` ones and a gap between.

    `expand_before` (an entry token, from a "Show older events" link followed without JavaScript)
    shows everything from that entry on plus one page older, up to MAX_SHOWN entries.
    """
    sources = _sources(actor, req)
    if expand_before is not None:
        pos = _position(sources, expand_before)
        newest = min(_count(sources, lambda s: s.from_(pos)) + OLDER_PAGE, MAX_SHOWN)
    total = _count(sources)
    if total <= newest + 1 + COLLAPSE_MIN:
        return Timeline(_read(sources, newest=False, limit=total))
    first = _read(sources, newest=False, limit=1)
    tail = _read(sources, lambda s: s.after(first[0].position), newest=True, limit=newest)
    if not tail:
        return Timeline(first)
    hidden = total - 1 - len(tail)
    return Timeline([*first, *tail], hidden=hidden, gap_at=1, older_than=tail[0].position.token)


def older_entries(actor: User, req: ServiceRequest, before: str, limit: int = OLDER_PAGE) -> Timeline:
    """The page of entries just older than the entry `before` names, oldest first, with how many are
    still hidden above it (the first entry is always on the page, so never in here)."""
    sources = _sources(actor, req)
    pos = _position(sources, before)
    first = _read(sources, newest=False, limit=1)[0].position
    page = _read(sources, lambda s: s.after(first), lambda s: s.before(pos), newest=True, limit=limit)
    if not page:
        return Timeline()
    oldest = page[0].position
    hidden = _count(sources, lambda s: s.after(first), lambda s: s.before(oldest))
    return Timeline(page, hidden=hidden, gap_at=0, older_than=oldest.token)


# ---------------------------------------------------------------- rows into entries

def _entries(comments: list[Comment], events: list[AuditLog], sla_events: list[SlaEvent]) -> list[TimelineEntry]:
    """Rows of the three sources as timeline entries (comments with their files)."""
    by_comment: dict[int, list[Attachment]] = {}
    if comments:
        # Only the comments on this page: their files are as visible as they are.
        for att in db.session.scalars(select(Attachment).where(Attachment.comment_id.in_([c.id for c in comments]))
                                      .order_by(Attachment.created_at, Attachment.id)):
            by_comment.setdefault(att.comment_id, []).append(att)
    entries = [TimelineEntry("comment", c.created_at, c.author, comment=c, attachments=by_comment.get(c.id, []))
               for c in comments]
    entries.extend(_event_entries(events))
    entries.extend(TimelineEntry("sla", e.at, e.actor, sla_event=e) for e in sla_events)
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
