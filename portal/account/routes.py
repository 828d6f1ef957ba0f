"""/account: the person's details and their email choices (HTMX form, plain post works too)."""

from __future__ import annotations

from flask import render_template, request, url_for
from flask_login import current_user, login_required

from portal.account import bp
from portal.domain import notifications as rules
from portal.forms import EmptyForm
from portal.htmx import form_done, form_refused
from portal.services import notifications
from portal.services.errors import ServiceError, ValidationFailed

CHOICES = "account/_notifications.html"


def _context(mine: notifications.Choices | None = None, **extra) -> dict:
    kinds = rules.kinds_for(current_user.role)
    return {
        "form": EmptyForm(),
        "kinds": kinds,
        "choices": mine or notifications.choices(current_user),
        "offers_digest": any(k.sla_alert for k in kinds),
        "recent": notifications.recent_for(current_user),
        "headline": notifications.headline,
        **extra,
    }


@bp.get("/account")
@login_required
def account():
    return render_template("account/page.html", **_context())


@bp.post("/account/notifications")
@login_required
def save_notifications():
    form = EmptyForm()
    back = url_for("account.account")
    try:
        if not form.validate_on_submit():
            raise ValidationFailed({"form": "The form expired. Reload the page and try again."})
        mode = request.form.get("sla_alerts", "each")
        if mode not in ("each", "digest"):
            raise ValidationFailed({"sla_alerts": "Choose each alert or an hourly digest."})
        mine = notifications.save_choices(current_user, request.form.getlist("kinds"), mode == "digest")
    except ServiceError as exc:
        return form_refused(exc, back, CHOICES, _context())
    return form_done("Your email choices are saved.", back, CHOICES, _context(mine))
