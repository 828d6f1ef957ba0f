"""SLA operations, split by reason to change: `clock` starts a request's clock, follows the request
and recomputes it; `exemptions` grants and revokes exemptions; `checks` runs the periodic breach
and at-risk checks; `states` tells how a clock reads to a person. The rules themselves are pure,
in portal.domain.sla_clock and portal.domain.sla_rules. Callers use this package's names."""

from portal.domain.sla_rules import TargetState
from portal.models import SlaEvent
from portal.services.sla.checks import (
    _AT_RISK_SQL,
    _BREACH_SQL,
    _DONE_COLUMN,
    _OTHER,
    CheckRun,
    check_all_breaches,
    check_at_risk,
    run_check,
)
from portal.services.sla.clock import (
    CLOCK_FIELDS,
    align_pause,
    as_float,
    calendar_snapshot,
    clock_snapshot,
    copy_targets,
    find_definition,
    get_metric,
    recompute,
    record_event,
    start_clock,
    sync,
    to_calendar,
)
from portal.services.sla.exemptions import (
    DURATION_MAX_HOURS,
    REASON_MAX,
    grant_exemption,
    list_exemptions,
    revoke_exemption,
)
from portal.services.sla.states import next_targets, target_states

__all__ = [
    "CLOCK_FIELDS", "CheckRun", "DURATION_MAX_HOURS", "REASON_MAX", "SlaEvent", "TargetState", "_AT_RISK_SQL",
    "_BREACH_SQL",
    "_DONE_COLUMN", "_OTHER", "align_pause", "as_float", "calendar_snapshot", "check_all_breaches", "check_at_risk",
    "clock_snapshot", "copy_targets", "find_definition", "get_metric", "grant_exemption", "list_exemptions",
    "next_targets", "recompute", "record_event", "revoke_exemption", "run_check", "start_clock", "sync",
    "target_states", "to_calendar",
]
