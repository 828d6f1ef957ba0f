"""A service request with its comments and attachments, and the category table admins extend."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.domain.workflow import (
    OPEN_STATUSES,
    PRIORITIES,
    PRIORITY_LABELS,
    PRIORITY_RANK,
    STATUS_LABELS,
    STATUSES,
)
from portal.extensions import db
from portal.models._time import sql_in, utcnow
from portal.models.user import User

TITLE_MAX = 200
DESCRIPTION_MAX = 20_000
COMMENT_MAX = 20_000

# Full-text search: one text search configuration for the stored vectors and the typed queries.
SEARCH_CONFIG = "english"
# The list's sorts by priority and status, as stored (generated) columns so each sort has an index.
PRIORITY_RANK_SQL = "CASE priority " + " ".join(f"WHEN '{p}' THEN {r}" for p, r in PRIORITY_RANK.items()) + " END"
STATUS_RANK_SQL = "CASE status " + " ".join(f"WHEN '{s}' THEN {r}" for r, s in enumerate(STATUSES)) + " END"
NONE_DUE = datetime(9999, 12, 31, tzinfo=UTC)  # due_sort of a request with no running SLA target: last
OPEN_SQL = f"status IN ({sql_in(tuple(sorted(OPEN_STATUSES, key=STATUSES.index)))})"


def _seek_indexes() -> tuple[Index, ...]:
    """An index per sort and per filter in its list order, ending in the id (keyset paging resumes from a row).

    The open statuses (the agents' working set) and the unassigned requests (nearly all new, which
    PostgreSQL cannot know) get partial indexes of their own.
    """
    open_only = {"postgresql_where": text(OPEN_SQL)}
    unassigned = {"postgresql_where": text("assignee_id IS NULL")}
    status_order = ("status_rank", text("created_at DESC"), text("id DESC"))
    return (
        Index("ix_service_request_created_id", "created_at", "id"),
        Index("ix_service_request_updated_id", "updated_at", "id"),
        Index("ix_service_request_priority_rank", "priority_rank", "created_at", "id"),
        Index("ix_service_request_status_rank", *status_order),
        *(Index(f"ix_service_request_{name}_seek", column, "created_at", "id") for name, column in (
            ("status", "status"), ("priority", "priority"), ("category", "category"),
            ("assignee", "assignee_id"), ("requester", "requester_id"))),
        Index("ix_service_request_open_created", "created_at", "id", **open_only),
        Index("ix_service_request_open_updated", "updated_at", "id", **open_only),
        Index("ix_service_request_open_priority", "priority_rank", "created_at", "id", **open_only),
        Index("ix_service_request_open_status", *status_order, **open_only),
        Index("ix_service_request_open_counts", "status", "priority", "category", **open_only),
        # The open work filtered by priority, category or assignee, oldest or newest first: open
        # requests are the newest, and a whole-table filter index walks years of done ones first.
        *(Index(f"ix_service_request_open_{name}_created", column, "created_at", "id", **open_only)
          for name, column in (("priority", "priority"), ("category", "category"), ("assignee", "assignee_id"))),
        Index("ix_service_request_unassigned_created", "created_at", "id", **unassigned),
        Index("ix_service_request_unassigned_updated", "updated_at", "id", **unassigned),
        Index("ix_service_request_unassigned_priority", "priority_rank", "created_at", "id", **unassigned),
        Index("ix_service_request_unassigned_status", *status_order, **unassigned),
        Index("ix_service_request_search", "search_vector", postgresql_using="gin"),
        Index("ix_service_request_due", "due_sort", "id"),
        Index("ix_service_request_open_due", "due_sort", "id", **open_only),
    )


class Category(db.Model):
    """A request category; `code` is what requests and SLA definitions refer to."""

    __tablename__ = "category"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, nullable=False, default=100)


class ServiceRequest(db.Model):
    """An IT service request raised by a requester and worked by agents."""

    __tablename__ = "service_request"
    __table_args__ = (
        CheckConstraint(f"priority IN ({sql_in(PRIORITIES)})", name="priority"),
        CheckConstraint(f"status IN ({sql_in(STATUSES)})", name="status"),
        *_seek_indexes(),
        # A request's follow-ups; few requests are one, so only the linked rows are indexed.
        Index("ix_service_request_follow_up_of_id", "follow_up_of_id",
              postgresql_where=text("follow_up_of_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    category: Mapped[str] = mapped_column(ForeignKey("category.code"), nullable=False)
    priority: Mapped[str] = mapped_column(String(20), nullable=False, default="medium")
    status: Mapped[str] = mapped_column(String(30), nullable=False, default="open")
    requester_id: Mapped[int] = mapped_column(ForeignKey("user.id"), nullable=False)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    first_response_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Optimistic locking: every UPDATE of the row adds one; forms and API writes send the version
    # they were made from, and a stale one is refused (see services/requests/commands.py).
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    # The closed request this one continues (a requester's reply to a closed request opens one).
    follow_up_of_id: Mapped[int | None] = mapped_column(ForeignKey("service_request.id", ondelete="SET NULL"))
    # When the next running SLA target falls due (NONE_DUE when none runs): the "Due soonest" sort.
    # Kept by a trigger on sla_metric (migration 0020); never written from here.
    due_sort: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                               server_default=text(f"'{NONE_DUE.isoformat()}'::timestamptz"))
    priority_rank: Mapped[int] = mapped_column(SmallInteger, Computed(PRIORITY_RANK_SQL, persisted=True))
    status_rank: Mapped[int] = mapped_column(SmallInteger, Computed(STATUS_RANK_SQL, persisted=True))
    # Title (weight A) and description (B), kept current by PostgreSQL; never loaded with the row.
    search_vector: Mapped[str] = mapped_column(TSVECTOR, Computed(
        f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, coalesce(title, '')), 'A') || "
        f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, coalesce(description, '')), 'B')",
        persisted=True), deferred=True)

    __mapper_args__ = {"version_id_col": version}

    requester: Mapped[User] = relationship(foreign_keys=[requester_id])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    category_ref: Mapped[Category] = relationship()

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def priority_label(self) -> str:
        return PRIORITY_LABELS[self.priority]


class Comment(db.Model):
    """A reply on a request; internal notes are visible to staff only."""

    __tablename__ = "comment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("service_request.id", ondelete="CASCADE"), nullable=False
    )
    author_id: Mapped[int] = mapped_column(ForeignKey("user.id"), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    internal: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    search_vector: Mapped[str] = mapped_column(TSVECTOR, Computed(
        f"to_tsvector('{SEARCH_CONFIG}'::regconfig, coalesce(body, ''))", persisted=True), deferred=True)

    __table_args__ = (
        Index("ix_comment_request_timeline", "request_id", "created_at", "id"),  # the paged timeline
        Index("ix_comment_search", "search_vector", postgresql_using="gin"),
    )

    author: Mapped[User] = relationship()


class Attachment(db.Model):
    """A file on a request (or one of its comments), stored on disk under a random name."""

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("service_request.id", ondelete="CASCADE"), nullable=False, index=True
    )
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comment.id", ondelete="CASCADE"), index=True)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"), nullable=False)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    content_type: Mapped[str] = mapped_column(String(120), nullable=False)
    storage_name: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)

    uploaded_by: Mapped[User] = relationship()
    comment: Mapped[Comment | None] = relationship()


class RequestTally(db.Model):
    """How many requests have each (status, priority, category, assignee): the list's totals and the
    open-work cards read sums of it instead of counting requests.

    Written by a trigger on service_request only (migration 0019): +1 for a request's new
    combination, -1 for its old one, in the change's own transaction, so a sum is exact at every
    moment; `services/request_tally.fold()` (a job, every minute) sums each combination's rows into one.
    """

    __tablename__ = "request_tally"
    __table_args__ = (Index("ix_request_tally_key", "status", "priority", "category", "assignee_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    priority: Mapped[str] = mapped_column(String(20), nullable=False)
    category: Mapped[str] = mapped_column(String(40), nullable=False)
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer, nullable=False)
