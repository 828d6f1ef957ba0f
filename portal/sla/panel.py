"""The SLA panel's context, shared by the request page and the panel's own HTMX routes."""

from __future__ import annotations

from flask_login import current_user

from portal.auth.forms import EmptyForm
from portal.models._time import utcnow
from portal.policy import has_role
from portal.services import sla
from portal.sla.forms import ExemptionForm


def panel_context(req, form: ExemptionForm | None = None, message: str | None = None, ok: bool = True) -> dict:
    """What the SLA panel needs for the current user."""
    now = utcnow()
    metric = sla.get_metric(req.id)
    exemptions = sla.list_exemptions(req.id)
    staff = current_user.is_staff
    return {
        "req": req, "metric": metric, "now": now,
        # Requesters see a stopped clock, not that (or why) an exemption was granted.
        "states": sla.target_states(metric, now, exemptions, show_exempt=staff),
        "exemptions": exemptions if staff else [],
        "exemption_form": form or ExemptionForm(formdata=None),
        "action_form": EmptyForm(formdata=None),
        "can_exempt": has_role(current_user, "manager") and metric is not None and metric.definition_id is not None,
        "sla_message": message, "sla_ok": ok,
    }
