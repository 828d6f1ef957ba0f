"""SLA exemptions: grant one (for some hours or until revoked), revoke it, list a request's.

An exemption stops the clock of the targets it covers while it is active; each grant or revoke
locks the request and its clock, records the change in the clock's history and the audit log,
and recomputes the clock, in one unit of work.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal import policy
from portal.extensions import db
from portal.models import SlaExemption, SlaMetric, User
from portal.models._time import utcnow
from portal.models.sla import EXEMPTION_TYPES, TARGETS
from portal.services import audit
from portal.services.errors import Conflict, NotFound, ValidationFailed
from portal.services.numbers import finite_decimal
from portal.services.sla.clock import as_float, get_metric, recompute, record_event
from portal.services.text import clean_text
from portal.services.uow import unit_of_work

REASON_MAX = 2000
DURATION_MAX_HOURS = 24 * 365


def _parse_duration(duration_hours: Any) -> Decimal | None:
    """An exemption's length in hours (two decimals), or None for "until revoked"."""
    if duration_hours is None or (isinstance(duration_hours, str) and not duration_hours.strip()):
        return None
    value = finite_decimal(duration_hours)
    if value is None:
        raise ValidationFailed({"duration_hours": "Enter a number of hours, or leave empty for indefinite."})
    if value < Decimal("0.01") or value > DURATION_MAX_HOURS:
        raise ValidationFailed({"duration_hours": f"Use from 0.01 to {DURATION_MAX_HOURS} hours."})
    if value != value.quantize(Decimal("0.01")):
        raise ValidationFailed({"duration_hours": "Use at most two decimal places."})
    return value.quantize(Decimal("0.01"))


def _lock_clock(actor: User, request_id: int) -> SlaMetric:
    """Lock the request row, then its clock (always in this order), for an exemption change."""
    from portal.services.requests.commands import lock_request  # requests import this package

    lock_request(actor, request_id)
    metric = get_metric(request_id, for_update=True)
    if metric is None or metric.definition_id is None:
        raise Conflict("This request has no SLA, so there is nothing to exempt.")
    return metric


def _check_exemption(reason: Any, exemption_type: Any, duration_hours: Any) -> tuple[str, Decimal | None]:
    """The cleaned reason and duration of an exemption; ValidationFailed naming every bad field."""
    errors: dict[str, str] = {}
    reason = clean_text(errors, "reason", reason, REASON_MAX, missing="Say why the exemption is needed.")
    if exemption_type not in EXEMPTION_TYPES:
        errors["exemption_type"] = f"Choose one of: {', '.join(EXEMPTION_TYPES)}."
    try:
        duration = _parse_duration(duration_hours)
    except ValidationFailed as exc:
        errors.update(exc.fields)
        duration = None
    if errors:
        raise ValidationFailed(errors)
    return reason, duration


def grant_exemption(actor: User, request_id: int, reason: str, exemption_type: str, duration_hours: Any,
                    now: datetime | None = None) -> SlaExemption:
    """Exempt a target (or both) of a request from breaching, for some hours or until revoked."""
    policy.require(actor, "sla.exempt")
    reason, duration = _check_exemption(reason, exemption_type, duration_hours)
    with unit_of_work():
        metric = _lock_clock(actor, request_id)
        now = now or utcnow()  # after the lock: the moment the change really happens
        exemption = SlaExemption(
            request_id=request_id, exemption_type=exemption_type, reason=reason, duration_hours=duration,
            granted_by_id=actor.id, granted_at=now,
            expires_at=now + timedelta(hours=float(duration)) if duration is not None else None,
        )
        db.session.add(exemption)
        db.session.flush()
        for target in _targets_of(exemption_type):
            record_event(request_id, "exempted", now, target, actor, {
                "exemption_id": exemption.id, "reason": reason, "duration_hours": as_float(duration)})
        audit.record(actor, "sla.exemption_granted", "service_request", request_id, None, {
            "exemption_id": exemption.id, "type": exemption_type, "duration_hours": as_float(duration),
            "reason": reason})
        recompute(metric, now)
    return exemption


def revoke_exemption(actor: User, request_id: int, exemption_id: int, now: datetime | None = None) -> SlaExemption:
    """End an exemption of this request now; the clock counts again from this moment.

    The exemption is read after the request is locked, so of two revokes at once the second
    sees the first one's end and is refused.
    """
    policy.require(actor, "sla.exempt")
    with unit_of_work():
        metric = _lock_clock(actor, request_id)
        # Read the time after the lock: a revoke that waited for another must see that one as past.
        now = now or utcnow()
        exemption = db.session.scalar(
            select(SlaExemption).where(SlaExemption.id == exemption_id, SlaExemption.request_id == request_id)
            .execution_options(populate_existing=True))
        if exemption is None:
            raise NotFound("No such exemption on this request.")
        if not exemption.is_active(now):
            raise Conflict("This exemption has already ended.")
        exemption.revoked_at = now
        exemption.revoked_by_id = actor.id
        for target in _targets_of(exemption.exemption_type):
            record_event(request_id, "exemption_revoked", now, target, actor, {"exemption_id": exemption.id})
        audit.record(actor, "sla.exemption_revoked", "service_request", request_id, None,
                     {"exemption_id": exemption.id})
        recompute(metric, now)
    return exemption


def _targets_of(exemption_type: str) -> tuple[str, ...]:
    """The targets an exemption of this type covers."""
    return TARGETS if exemption_type == "both" else (exemption_type,)


def list_exemptions(request_id: int) -> list[SlaExemption]:
    """All exemptions of a request, newest first, with who granted and revoked them."""
    return list(db.session.scalars(
        select(SlaExemption).where(SlaExemption.request_id == request_id)
        .options(joinedload(SlaExemption.granted_by), joinedload(SlaExemption.revoked_by))
        .order_by(SlaExemption.granted_at.desc(), SlaExemption.id.desc())))
