"""Helpers for the SLA service tests: a controllable clock, definitions, and readers for metrics and events."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditLog, BusinessCalendarRecord, Holiday, SlaDefinition, SlaEvent, SlaExemption, SlaMetric
from portal.services import sla

LONDON = ZoneInfo("Europe/London")
H = timedelta(hours=1)


class Clock:
    """A frozen 'now' that tests move by hand; callable, so it can stand in for utcnow()."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, value: datetime) -> datetime:
        assert value.tzinfo is not None
        self.now = value.astimezone(UTC)
        return self.now

    def advance(self, hours: float = 0, minutes: float = 0) -> datetime:
        self.now = self.now + timedelta(hours=hours, minutes=minutes)
        return self.now


def london(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A London wall time as an aware UTC instant."""
    return datetime(y, mo, d, h, mi, tzinfo=LONDON).astimezone(UTC)


def make_calendar(name: str = "UK office", holidays: tuple[date, ...] = ()) -> BusinessCalendarRecord:
    cal = BusinessCalendarRecord(name=name, timezone="Europe/London", working_days=[0, 1, 2, 3, 4],
                                 opens=time(9, 0), closes=time(18, 0))
    cal.holidays = [Holiday(day=d, name=f"Holiday {d.isoformat()}") for d in holidays]
    db.session.add(cal)
    db.session.commit()
    return cal


def make_definition(category: str, priority: str, response: float, resolution: float,
                    calendar: BusinessCalendarRecord | None = None, **extra) -> SlaDefinition:
    definition = SlaDefinition(category=category, priority=priority, response_time_hours=response,
                               resolution_time_hours=resolution, calendar_id=calendar.id if calendar else None,
                               **extra)
    db.session.add(definition)
    db.session.commit()
    return definition


def metric_of(req_or_id) -> SlaMetric:
    request_id = req_or_id if isinstance(req_or_id, int) else req_or_id.id
    db.session.expire_all()
    metric = sla.get_metric(request_id)
    assert metric is not None
    return metric


def events_of(req_or_id) -> list[SlaEvent]:
    request_id = req_or_id if isinstance(req_or_id, int) else req_or_id.id
    db.session.expire_all()
    return list(db.session.scalars(
        select(SlaEvent).where(SlaEvent.request_id == request_id).order_by(SlaEvent.at, SlaEvent.id)))


def kinds_of(req_or_id) -> list[tuple[str, str | None]]:
    return [(e.kind, e.target) for e in events_of(req_or_id)]


def audit_rows(request_id: int, action: str) -> list[AuditLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditLog).where(
        AuditLog.entity_type == "service_request", AuditLog.entity_id == request_id, AuditLog.action == action)
        .order_by(AuditLog.id)))


def count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


METRIC_STATE = ("response_due_at", "resolution_due_at", "response_warn_at", "resolution_warn_at",
                "response_breached_at", "resolution_breached_at", "response_at_risk_at", "resolution_at_risk_at",
                "response_sla_met", "resolution_sla_met", "is_breached", "breach_type", "updated_at")


def state_of_all() -> tuple:
    """Every metric's derived state, every event and exemption: to show that a call changed nothing."""
    db.session.expire_all()
    metrics = [tuple(getattr(m, f) for f in METRIC_STATE)
               for m in db.session.scalars(select(SlaMetric).order_by(SlaMetric.id))]
    events = [(e.id, e.request_id, e.kind, e.target, e.at, e.detail)
              for e in db.session.scalars(select(SlaEvent).order_by(SlaEvent.id))]
    return metrics, events, count(SlaExemption)
