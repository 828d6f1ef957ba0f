"""Saved views: a person's named filters and sort for the request list, optionally shared with the team."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models._time import utcnow
from portal.models.user import User

VIEW_NAME_MAX = 60
VIEW_QUERY_MAX = 1000


class SavedView(db.Model):
    """A name for a request-list query string (filters, sort, page size), owned by one person.

    `query` is the list's own query string, normalised by the list's filter parser (never a page
    number or cursor). A shared view is offered to every member of staff as a tab; only its owner
    (or an admin) renames, changes or deletes it. `version` guards an edit against one made meanwhile.
    """

    __tablename__ = "saved_view"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(VIEW_NAME_MAX), nullable=False)
    query: Mapped[str] = mapped_column(String(VIEW_QUERY_MAX), nullable=False, default="")
    shared: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}

    owner: Mapped[User] = relationship()


# One name per owner regardless of case; also the owner's tabs in name order.
Index("uq_saved_view_owner_name", SavedView.owner_id, func.lower(SavedView.name), unique=True)
# The team's shared views, in name order, whatever the number of private ones.
Index("ix_saved_view_shared", func.lower(SavedView.name), postgresql_where=text("shared"))
