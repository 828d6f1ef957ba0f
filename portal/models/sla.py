"""SLA definitions, business calendars, per-request clocks (metrics), events and exemptions."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.domain.workflow import OPEN_STATUSES, STATUSES
from portal.extensions import db
from portal.models._time import sql_in, utcnow
from portal.models.user import User

# The breach list's rows: open clocks breached or at risk. A partial index holds exactly these, so
# the list, its count and the dashboard cards read the few open problems, not every clock ever kept;
# sla_reports states the same condition so PostgreSQL can prove the index applies.
BREACH_LIST_SQL = (
    f"status IN ({sql_in(tuple(sorted(OPEN_STATUSES, key=STATUSES.index)))}) AND (is_breached "
    "OR (response_at_risk_at IS NOT NULL AND responded_at IS NULL) "
    "OR (resolution_at_risk_at IS NOT NULL AND resolved_at IS NULL))")

TARGETS = ("response", "resolution")
EXEMPTION_TYPES = ("response", "resolution", "both")
EVENT_KINDS = ("started", "paused", "resumed", "responded", "resolved", "at_risk", "breached", "exempted",
               "exemption_revoked", "recalculated")



class BusinessCalendarRecord(db.Model):
    """Working days and opening hours in a time zone, with holidays."""

    __tablename__ = "business_calendar"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), nullable=False, unique=True)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, default="UTC")
    working_days: Mapped[list[int]] = mapped_column(ARRAY(SmallInteger), nullable=False)
    opens: Mapped[time] = mapped_column(Time, nullable=False)
    closes: Mapped[time] = mapped_column(Time, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)

    holidays: Mapped[list[Holiday]] = relationship(
        back_populates="calendar", order_by="Holiday.day", cascade="all, delete-orphan"
    )


class Holiday(db.Model):
    """A local date on which a calendar has no working hours."""

    __tablename__ = "holiday"
    __table_args__ = (UniqueConstraint("calendar_id", "day", name="uq_holiday_calendar_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("business_calendar.id", ondelete="CASCADE"), nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    name: Mapped[str] = mapped_column(String(80), nullable=False)

    calendar: Mapped[BusinessCalendarRecord] = relationship(back_populates="holidays")


class SlaDefinition(db.Model):
    """Response and resolution targets for one (category, priority); at most one active per pair."""

    __tablename__ = "sla_definition"
    __table_args__ = (
        CheckConstraint("response_time_hours > 0", name="response_positive"),
        CheckConstraint("resolution_time_hours >= response_time_hours", name="resolution_after_response"),
        CheckConstraint("at_risk_percent BETWEEN 1 AND 99", name="at_risk_percent"),
        Index("uq_sla_definition_active_pair", "category", "priority", unique=True,
              postgresql_where=text("is_active")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(ForeignKey("category.code"), nullable=False)
    priority: Mapped[str] = mapped_column(String(20), nullable=False)
    response_time_hours: Mapped[Decimal] = mapped_column(Numeric(8, 2), nullable=False)
    resolution_time_hours: Mapped[Decimal] = mapped_column(Numeric(8, 2), nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("business_calendar.id"))
    pause_statuses: Mapped[list[str]] = mapped_column(
        ARRAY(String(30)), nullable=False, default=lambda: ["waiting_on_customer"]
    )
    at_risk_percent: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=75)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)

    calendar: Mapped[BusinessCalendarRecord | None] = relationship()


class SlaMetric(db.Model):
    """One request's SLA clock: the targets copied at start and everything derived from events.

    Due and warn times are precomputed so the periodic checks are indexed range queries.
    A due time is NULL while the clock is stopped (paused, or exempt without an end).
    """

    __tablename__ = "sla_metric"
    __table_args__ = (
        CheckConstraint(f"breach_type IS NULL OR breach_type IN ({sql_in(('response', 'resolution', 'both'))})",
                        name="breach_type"),
        Index("idx_sla_metric_breached_created", "is_breached", "created_at"),
        # Each index over the listed clocks carries change_seq: the breach polls' stamp reads them alone.
        Index("ix_sla_metric_breach_list", "request_id", postgresql_where=text(BREACH_LIST_SQL),
              postgresql_include=["change_seq"]),
        # The agents' breach view (theirs or unassigned), the assignee filter and the dashboard's
        # breached / at-risk counts (index-only), over the listed clocks.
        Index("ix_sla_metric_breach_assignee", "assignee_id", "is_breached", postgresql_where=text(BREACH_LIST_SQL),
              postgresql_include=["change_seq"]),
        # The list's order (breached first, most overdue first) and its polls' stamp read from the index alone.
        Index("ix_sla_metric_breach_order", "is_breached", "request_id", postgresql_where=text(BREACH_LIST_SQL),
              postgresql_include=["response_due_at", "resolution_due_at", "response_breached_at",
                                  "resolution_breached_at", "responded_at", "resolved_at", "assignee_id",
                                  "priority", "category", "change_seq"]),
        Index("ix_sla_metric_created_at", "created_at"),
        # The breach and at-risk checks: only clocks still running and not yet flagged are indexed.
        Index("ix_sla_metric_response_due_open", "response_due_at",
              postgresql_where=text("responded_at IS NULL AND response_breached_at IS NULL")),
        Index("ix_sla_metric_resolution_due_open", "resolution_due_at",
              postgresql_where=text("resolved_at IS NULL AND resolution_breached_at IS NULL")),
        Index("ix_sla_metric_response_warn_open", "response_warn_at",
              postgresql_where=text("responded_at IS NULL AND response_at_risk_at IS NULL "
                                    "AND response_breached_at IS NULL")),
        Index("ix_sla_metric_resolution_warn_open", "resolution_warn_at",
              postgresql_where=text("resolved_at IS NULL AND resolution_at_risk_at IS NULL "
                                    "AND resolution_breached_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("service_request.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    definition_id: Mapped[int | None] = mapped_column(ForeignKey("sla_definition.id"))
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("business_calendar.id"))
    # The calendar as it was when copied (zone, days, hours, holidays): later edits to the calendar
    # reach this clock only through "apply to open requests" (a rebuild).
    calendar: Mapped[dict | None] = mapped_column(JSONB)
    response_target_hours: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    resolution_target_hours: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    at_risk_percent: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=75)
    pause_statuses: Mapped[list[str]] = mapped_column(ARRAY(String(30)), nullable=False, default=list)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    response_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    response_warn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution_warn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paused_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    paused_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    response_sla_met: Mapped[bool | None] = mapped_column(Boolean)
    resolution_sla_met: Mapped[bool | None] = mapped_column(Boolean)
    response_at_risk_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution_at_risk_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    response_breached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution_breached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_breached: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    breach_type: Mapped[str | None] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    # The request's priority, category and assignee, copied by the database (migration 0023's
    # triggers, in the same transaction as the request's change) so the breach list filters its
    # few listed clocks without joining every matching request. Read them in SQL only: the
    # database writes them, so a loaded clock's copy can be older than its request.
    priority: Mapped[str] = mapped_column(String(20), nullable=False, server_default=FetchedValue(),
                                          server_onupdate=FetchedValue())
    category: Mapped[str] = mapped_column(String(40), nullable=False, server_default=FetchedValue(),
                                          server_onupdate=FetchedValue())
    assignee_id: Mapped[int | None] = mapped_column(Integer, server_default=FetchedValue(),
                                                    server_onupdate=FetchedValue())
    # A new number from a sequence at every write to the clock, its exemptions or its request's
    # title (migration 0026's triggers): the breach polls' stamp (sla_reports.breach_list_stamp).
    change_seq: Mapped[int | None] = mapped_column(BigInteger, server_default=FetchedValue(),
                                                   server_onupdate=FetchedValue())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)

    definition: Mapped[SlaDefinition | None] = relationship()


class SlaEvent(db.Model):
    """Append-only history of a request's SLA clock; every number on a page traces back to these."""

    __tablename__ = "sla_event"
    __table_args__ = (
        CheckConstraint(f"kind IN ({sql_in(EVENT_KINDS)})", name="kind"),
        CheckConstraint(f"target IS NULL OR target IN ({sql_in(TARGETS)})", name="target"),
        Index("ix_sla_event_request_at", "request_id", "at"),
        Index("ix_sla_event_kind_at", "kind", "at"),
        # One breach and one at-risk event per (request, target), whatever runs twice.
        Index("uq_sla_event_once", "request_id", "kind", "target", unique=True,
              postgresql_where=text("kind IN ('breached', 'at_risk')")),
        # The alerts still to mail: a tiny partial index, however long the history.
        Index("ix_sla_event_to_notify", "id",
              postgresql_where=text("kind IN ('breached', 'at_risk') AND notified_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_request.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    target: Mapped[str | None] = mapped_column(String(12))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    detail: Mapped[dict | None] = mapped_column(JSONB)
    # When the alert mails for a breached / at-risk event were written (the one field ever set later).
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    actor: Mapped[User | None] = relationship()


class SlaExemption(db.Model):
    """A granted exemption: the target(s) cannot breach while it lasts, and its window is not counted."""

    __tablename__ = "sla_exemption"
    __table_args__ = (
        CheckConstraint(f"exemption_type IN ({sql_in(EXEMPTION_TYPES)})", name="exemption_type"),
        CheckConstraint("duration_hours IS NULL OR duration_hours > 0", name="duration_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("service_request.id", ondelete="CASCADE"), nullable=False, index=True
    )
    exemption_type: Mapped[str] = mapped_column(String(12), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    duration_hours: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    granted_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"), nullable=False)
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    granted_by: Mapped[User] = relationship(foreign_keys=[granted_by_id])
    revoked_by: Mapped[User | None] = relationship(foreign_keys=[revoked_by_id])

    def covers(self, target: str) -> bool:
        return self.exemption_type in (target, "both")

    def end(self) -> datetime | None:
        """When the exemption stops (revocation or expiry), None while indefinite."""
        ends = [t for t in (self.revoked_at, self.expires_at) if t is not None]
        return min(ends) if ends else None

    def is_active(self, now: datetime) -> bool:
        end = self.end()
        return self.granted_at <= now and (end is None or end > now)


class SlaRollupTarget(db.Model):
    """Targets decided and met, per UTC day a clock started, category and priority.

    A sum of rows: a database trigger on sla_metric inserts each change's difference (migration
    0024) and portal.services.sla_rollup.fold() folds them into one row per day and key.
    """

    __tablename__ = "sla_rollup_target"
    __table_args__ = (Index("ix_sla_rollup_target_day", "day"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    category: Mapped[str] = mapped_column(String(40), nullable=False)
    priority: Mapped[str] = mapped_column(String(20), nullable=False)
    response_met: Mapped[int] = mapped_column(Integer, nullable=False)
    response_decided: Mapped[int] = mapped_column(Integer, nullable=False)
    resolution_met: Mapped[int] = mapped_column(Integer, nullable=False)
    resolution_decided: Mapped[int] = mapped_column(Integer, nullable=False)


class SlaRollupAgent(db.Model):
    """Targets decided and met, per UTC day a clock started and assignee (see SlaRollupTarget)."""

    __tablename__ = "sla_rollup_agent"
    __table_args__ = (Index("ix_sla_rollup_agent_day", "day"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    response_met: Mapped[int] = mapped_column(Integer, nullable=False)
    response_decided: Mapped[int] = mapped_column(Integer, nullable=False)
    resolution_met: Mapped[int] = mapped_column(Integer, nullable=False)
    resolution_decided: Mapped[int] = mapped_column(Integer, nullable=False)


class SlaRollupBreach(db.Model):
    """Breaches recorded per UTC day, category and priority (see SlaRollupTarget)."""

    __tablename__ = "sla_rollup_breach"
    __table_args__ = (Index("ix_sla_rollup_breach_day", "day"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    category: Mapped[str] = mapped_column(String(40), nullable=False)
    priority: Mapped[str] = mapped_column(String(20), nullable=False)
    response_breaches: Mapped[int] = mapped_column(Integer, nullable=False)
    resolution_breaches: Mapped[int] = mapped_column(Integer, nullable=False)
