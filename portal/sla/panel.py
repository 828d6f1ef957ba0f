"""The SLA panel's context, shared by the request page and the panel's own HTMX routes."""

from __future__ import annotations

from flask_login import current_user

from portal.forms import EmptyForm
from portal.models._time import utcnow
from portal.policy import can
from portal.services import sla
from portal.sla.forms import ExemptionForm


def panel_context(req, form: ExemptionForm | None = None) -> dict:
    """What the SLA panel needs for the current user."""
    now = utcnow()
    metric = sla.get_metric(req.id)
    exemptions = sla.list_exemptions(req.id)
    staff = can(current_user, "sla.read")
    return {
        "req": req, "metric": metric, "now": now,
        # Requesters see a stopped clock, not that (or why) an exemption was granted.
        "states": sla.target_states(metric, now, exemptions, show_exempt=staff),
        "exemptions": exemptions if staff else [],
        "exemption_form": form or ExemptionForm(formdata=None),
        "action_form": EmptyForm(formdata=None),
        "can_exempt": can(current_user, "sla.exempt") and metric is not None and metric.definition_id is not None,
    }
