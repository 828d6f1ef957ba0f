"""In-app notifications: the bell in the top bar and the /notifications list.

There is no second table: the bell reads the `notification` rows the mail side writes (one per
event and person, in the change's own unit of work), of the kinds marked `in_app` in
portal/domain/notifications.py, whatever became of the mail (a person who turned a kind's mail off
still sees it here). `read_at` records when the person saw it.

Cheap at any size: the unread count reads at most UNREAD_SHOWN_MAX + 1 rows of a partial index
(recipient, id) over unread in-app rows; the list pages by id (keyset), newest first.

Marking read never reaches past what the person was shown: "Mark all read" carries the newest id
its page showed and marks only unread rows up to it, so a notification that arrives meanwhile (or
one another tab has not shown yet) stays unread. Two tabs marking at once both succeed; a row
already read keeps its first read_at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from portal.domain import notifications as rules
from portal.extensions import db
from portal.models import Notification, User
from portal.models._time import utcnow
from portal.services.errors import NotFound
from portal.services.uow import unit_of_work

PAGE_SIZE = 25


def kinds_for(role: str) -> tuple[str, ...]:
    """The in-app kinds a person with `role` is shown (a colleague moved to requester no longer
    sees the internal notes they were once mentioned in)."""
    return tuple(k for k in rules.IN_APP_KINDS if role in rules.KINDS[k].roles)


def _mine(user: User):
    """The person's in-app rows: within the partial index's predicate, so the index serves them."""
    return (Notification.recipient_id == user.id, Notification.kind.in_(kinds_for(user.role)))


def unread_count(user: User) -> int:
    """How many in-app notifications `user` has not seen, counted up to UNREAD_SHOWN_MAX + 1."""
    capped = (select(Notification.id).where(*_mine(user), Notification.read_at.is_(None))
              .limit(rules.UNREAD_SHOWN_MAX + 1).subquery())
    return db.session.scalar(select(func.count()).select_from(capped)) or 0


def count_label(count: int) -> str:
    """The bell's figure: "3", or "99+" past the cap."""
    return f"{rules.UNREAD_SHOWN_MAX}+" if count > rules.UNREAD_SHOWN_MAX else str(count)


@dataclass(frozen=True)
class Page:
    """One page of a person's notifications, newest first; `before` fetches the next (older) page."""

    items: list[Notification]
    before: int | None


def list_notifications(user: User, before: int | None = None, limit: int = PAGE_SIZE) -> Page:
    """A page of `user`'s in-app notifications, newest first, older than id `before` when given."""
    stmt = select(Notification).where(*_mine(user))
    if before is not None:
        stmt = stmt.where(Notification.id < before)
    rows = list(db.session.scalars(stmt.order_by(Notification.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1].id if more and rows else None)


def newest_id(user: User) -> int | None:
    """The id of `user`'s newest in-app notification (what "Mark all read" on this page reaches to)."""
    return db.session.scalar(select(func.max(Notification.id)).where(*_mine(user)))


def open_notification(user: User, notification_id: int) -> Notification:
    """Mark one of `user`'s notifications read, with any older unread ones about the same request
    (the request page shows them all); returns it. NotFound for anyone else's."""
    with unit_of_work():
        row = db.session.scalar(select(Notification).where(Notification.id == notification_id, *_mine(user)))
        if row is None:
            raise NotFound("That notification was not found.")
        same_request = (Notification.request_id == row.request_id) if row.request_id is not None \
            else (Notification.id == row.id)
        db.session.execute(
            update(Notification)
            .where(*_mine(user), Notification.read_at.is_(None), Notification.id <= row.id, same_request)
            .values(read_at=utcnow()).execution_options(synchronize_session=False))
    return row


def request_seen(user: User, request_id: int, shown_at: datetime) -> int:
    """The person opened the request's page: its notifications written before the page was read
    (`shown_at`) are seen; returns how many were marked. One UPDATE over the person's unread rows
    (the partial index), which changes nothing and writes nothing when there are none."""
    with unit_of_work():
        result = db.session.execute(
            update(Notification)
            .where(*_mine(user), Notification.read_at.is_(None), Notification.request_id == request_id,
                   Notification.created_at <= shown_at)
            .values(read_at=utcnow()).execution_options(synchronize_session=False))
    return result.rowcount or 0


def mark_all_read(user: User, up_to: int) -> int:
    """Mark `user`'s unread in-app notifications read, up to id `up_to` (the newest they were shown);
    returns how many. Anything newer stays unread."""
    with unit_of_work():
        result = db.session.execute(
            update(Notification)
            .where(*_mine(user), Notification.read_at.is_(None), Notification.id <= up_to)
            .values(read_at=utcnow()).execution_options(synchronize_session=False))
    return result.rowcount or 0
