"""How a request's SLA clock reads to a person: each target's state, from the stored clock.

The rules of which state wins live in portal.domain.sla_rules; this module reads the clock row
and the exemptions and hands their plain values over.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import load_only

from portal.domain import sla_rules
from portal.domain.sla_rules import TargetState
from portal.extensions import db
from portal.models import SlaExemption, SlaMetric
from portal.models.sla import TARGETS
from portal.services.sla.exemptions import list_exemptions

_TARGET_PARTS = ("target_hours", "due_at", "warn_at", "breached_at", "at_risk_at", "sla_met")


def _target_clock(metric: SlaMetric, target: str, done_at: datetime | None) -> sla_rules.TargetClock:
    """One target's stored facts as the plain view the state rules read."""
    return sla_rules.TargetClock(
        target=target,
        hours=float(getattr(metric, f"{target}_target_hours")),
        due_at=getattr(metric, f"{target}_due_at"),
        warn_at=getattr(metric, f"{target}_warn_at"),
        done_at=done_at,
        breached_at=getattr(metric, f"{target}_breached_at"),
        at_risk_at=getattr(metric, f"{target}_at_risk_at"),
        sla_met=getattr(metric, f"{target}_sla_met"),
    )


def target_states(metric: SlaMetric | None, now: datetime, exemptions: list[SlaExemption] | None = None,
                  show_exempt: bool = True) -> list[TargetState]:
    """Each target's state: met, missed (met late), breached, paused, exempt, at risk or running.

    Exemptions are an internal matter: with `show_exempt` False an exempt target reads as paused.
    Without `exemptions` the request's own are read.
    """
    if metric is None or metric.definition_id is None:
        return []
    if exemptions is None:
        exemptions = list_exemptions(metric.request_id)
    active = [x for x in exemptions if x.is_active(now)]
    exempt_targets = {t for t in TARGETS if any(x.covers(t) for x in active)}
    targets = [_target_clock(metric, "response", metric.responded_at),
               _target_clock(metric, "resolution", metric.resolved_at)]
    states = sla_rules.target_states(targets, metric.paused_since, exempt_targets, now, show_exempt)
    if show_exempt:
        # A recorded breach stands; staff see what an exemption granted over it did.
        spans = exemption_spans(exemptions)
        for state, clock in zip(states, targets, strict=True):
            if state.state == "breached":
                state.exemption = sla_rules.breach_exemption({clock.target: clock.breached_at}, spans, now)
    return states


def exemption_spans(exemptions: Iterable[SlaExemption]) -> list[sla_rules.ExemptionSpan]:
    """Exemption rows as the plain spans the breach note reads."""
    return [sla_rules.ExemptionSpan(x.exemption_type, x.granted_at, x.end()) for x in exemptions]


def next_targets(request_ids: Collection[int], now: datetime, show_exempt: bool = True) -> dict[int, TargetState]:
    """Each request's next target (sla_rules.next_target) for a page of a list: two queries
    (the clocks, their exemptions) whatever the page's size. Requests without an SLA are left out."""
    if not request_ids:
        return {}
    ids = sorted(request_ids)
    m = SlaMetric
    # Only what a target's state is read from (not the calendar snapshot and the rest of the clock).
    metrics = db.session.scalars(select(m).where(m.request_id.in_(ids), m.definition_id.is_not(None)).options(
        load_only(m.request_id, m.definition_id, m.paused_since, m.responded_at, m.resolved_at,
                  *(getattr(m, f"{target}_{part}") for target in TARGETS for part in _TARGET_PARTS))))
    exemptions: dict[int, list[SlaExemption]] = defaultdict(list)
    x = SlaExemption
    for exemption in db.session.scalars(select(x).where(x.request_id.in_(ids), x.revoked_at.is_(None) | (
            x.revoked_at > now)).options(load_only(x.request_id, x.exemption_type, x.granted_at, x.revoked_at,
                                                   x.expires_at))):
        exemptions[exemption.request_id].append(exemption)
    found = {}
    for metric in metrics:
        state = sla_rules.next_target(target_states(metric, now, exemptions[metric.request_id], show_exempt))
        if state is not None:
            found[metric.request_id] = state
    return found
