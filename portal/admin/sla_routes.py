"""Admin pages for SLA definitions and business calendars."""

from __future__ import annotations

from flask import current_app, flash, render_template, request, url_for
from flask_login import current_user

from portal.admin import bp
from portal.admin.forms import WEEKDAY_NAMES, CalendarForm, DefinitionForm, HolidayForm
from portal.formatting import format_hours
from portal.forms import EmptyForm, place_errors
from portal.htmx import form_done, form_refused, is_htmx, redirect_to
from portal.policy import permission_required
from portal.services import requests as svc
from portal.services import sla_admin
from portal.services.errors import Conflict, ServiceError, ValidationFailed

EDIT_PREFIX = "edit"  # the inline edit row sits beside the add form: its fields need their own ids


def _definition_form(definition=None, formdata=True, prefix: str = "") -> DefinitionForm:
    kwargs = {"prefix": prefix}
    if definition is not None and formdata is None:
        kwargs.update(obj=definition, calendar_id=str(definition.calendar_id or ""))
    form = DefinitionForm(formdata=None, **kwargs) if formdata is None else DefinitionForm(**kwargs)
    form.category.choices = [(c.code, c.name) for c in svc.list_categories(include_inactive=True)]
    form.calendar_id.choices = [("", "24x7 (every hour counts)")] + [
        (str(c.id), f"Business hours: {c.name}") for c in sla_admin.list_calendars()]
    return form


DEFINITIONS = "admin/_sla.html"
CALENDAR = "admin/_calendar.html"


def _definitions_context(form: DefinitionForm | None = None, edit_id: int | None = None,
                         edit_form: DefinitionForm | None = None) -> dict:
    return {
        "definitions": sla_admin.list_definitions(),
        "calendars": {c.id: c for c in sla_admin.list_calendars()},
        "form": form or _definition_form(formdata=None),
        "edit_id": edit_id, "edit_form": edit_form,
        "action_form": EmptyForm(formdata=None),
    }


def _definitions_page(form: DefinitionForm | None = None, status: int = 200, edit_id: int | None = None,
                      edit_form: DefinitionForm | None = None):
    context = _definitions_context(form, edit_id, edit_form)
    return render_template(DEFINITIONS if is_htmx() else "admin/sla.html", **context), status


def _definitions_done(message: str | None = None, exc: ServiceError | None = None):
    back = url_for("admin.sla_definitions")
    if exc is not None:
        return form_refused(exc, back, DEFINITIONS, _definitions_context())
    return form_done(message, back, DEFINITIONS, _definitions_context())


def _definition_values(form: DefinitionForm, include_pair: bool) -> dict:
    values = {
        "response_time_hours": form.response_time_hours.data,
        "resolution_time_hours": form.resolution_time_hours.data,
        "calendar_id": form.calendar_id.data or None,
        "pause_statuses": list(form.pause_statuses.data or []),
        "at_risk_percent": form.at_risk_percent.data,
        "is_active": bool(form.is_active.data),
    }
    if include_pair:
        values.update(category=form.category.data, priority=form.priority.data)
    return values


@bp.route("/sla", methods=["GET", "POST"])
@permission_required("sla.configure")
def sla_definitions():
    """List definitions and add new ones."""
    if request.method == "GET":
        return _definitions_page()
    form = _definition_form()
    if not form.validate_on_submit():
        return _definitions_page(form, status=422)
    try:
        definition = sla_admin.create_definition(current_user, _definition_values(form, include_pair=True))
    except (ValidationFailed, Conflict) as exc:
        place_errors(form, exc)
        return _definitions_page(form, status=exc.status)
    message = (f"Added {definition.category} / {definition.priority}: respond in "
               f"{format_hours(float(definition.response_time_hours))}, "
               f"resolve in {format_hours(float(definition.resolution_time_hours))}.")
    return _definitions_done(message)


@bp.route("/sla/<int:definition_id>", methods=["GET", "POST"])
@permission_required("sla.configure")
def edit_sla_definition(definition_id: int):
    """Edit one definition inline (category and priority stay)."""
    definition = sla_admin.get_definition(definition_id)
    if request.method == "GET":
        return _definitions_page(edit_id=definition.id,
                                 edit_form=_definition_form(definition, formdata=None, prefix=EDIT_PREFIX))
    form = _definition_form(prefix=EDIT_PREFIX)
    form.category.data, form.priority.data = definition.category, definition.priority
    if not form.validate_on_submit():
        return _definitions_page(edit_id=definition.id, edit_form=form, status=422)
    try:
        _, note = sla_admin.update_definition(current_user, definition.id, _definition_values(form, False),
                                              apply_to_open=bool(form.apply_to_open.data))
    except (ValidationFailed, Conflict) as exc:
        place_errors(form, exc)
        return _definitions_page(edit_id=definition.id, edit_form=form, status=exc.status)
    return _definitions_done(
        "Definition saved." + (f" {note}" if note else " Open requests keep the targets they started with."))


@bp.post("/sla/<int:definition_id>/active")
@permission_required("sla.configure")
def toggle_sla_definition(definition_id: int):
    """Activate or deactivate a definition."""
    active = request.form.get("active") == "true"
    try:
        if not EmptyForm().validate_on_submit():
            raise ServiceError("The form expired; reload the page and try again.")
        definition, _ = sla_admin.update_definition(current_user, definition_id, {"is_active": active})
    except ServiceError as exc:
        return _definitions_done(exc=exc)
    return _definitions_done(
        f"{definition.category} / {definition.priority} is now {'active' if active else 'inactive'}.")


# ---------------------------------------------------------------- calendars

HOLIDAY_PREFIX = "holiday"  # beside the calendar form, which has its own name and apply_to_open


def _calendar_values(form: CalendarForm) -> dict:
    return {"name": form.name.data, "timezone": (form.timezone.data or "").strip(),
            "working_days": [int(d) for d in form.working_days.data or []],
            "opens": form.opens.data, "closes": form.closes.data}


def _calendars_page(form: CalendarForm | None = None, message: str | None = None, status: int = 200):
    context = {"calendars": sla_admin.list_calendars(), "form": form or CalendarForm(formdata=None),
               "message": message, "weekdays": WEEKDAY_NAMES}
    template = "admin/_calendars.html" if is_htmx() else "admin/calendars.html"
    return render_template(template, **context), status


@bp.route("/calendars", methods=["GET", "POST"])
@permission_required("sla.configure")
def calendars():
    """List business calendars and add new ones."""
    if request.method == "GET":
        return _calendars_page()
    form = CalendarForm()
    if not form.validate_on_submit():
        return _calendars_page(form, status=422)
    try:
        cal = sla_admin.create_calendar(current_user, _calendar_values(form))
    except ValidationFailed as exc:
        place_errors(form, exc)
        return _calendars_page(form, status=exc.status)
    if not is_htmx():
        flash(f"Calendar {cal.name} added.", "success")  # plain posts go on to the new calendar
        return redirect_to(url_for("admin.edit_calendar", calendar_id=cal.id))
    return _calendars_page(message=f"Calendar {cal.name} added.")


def _calendar_context(cal, form=None, holiday_form=None) -> dict:
    return {"cal": cal, "form": form or CalendarForm(formdata=None, obj=cal,
                                                       working_days=[str(d) for d in cal.working_days]),
            "holiday_form": holiday_form or HolidayForm(formdata=None, prefix=HOLIDAY_PREFIX),
            "weekdays": WEEKDAY_NAMES, "action_form": EmptyForm(formdata=None)}


def _calendar_page(cal, form=None, holiday_form=None, status=200):
    context = _calendar_context(cal, form, holiday_form)
    return current_app.make_response((render_template(CALENDAR if is_htmx() else "admin/calendar.html", **context),
                                      status))


def _calendar_saved(cal, message: str):
    """After a calendar change: a plain post redirects (a reload never re-posts); HTMX gets the panel."""
    return form_done(message, url_for("admin.edit_calendar", calendar_id=cal.id), CALENDAR, _calendar_context(cal))


@bp.route("/calendars/<int:calendar_id>", methods=["GET", "POST"])
@permission_required("sla.configure")
def edit_calendar(calendar_id: int):
    """Edit a calendar's zone, days and hours; manage its holidays."""
    cal = sla_admin.get_calendar(calendar_id)
    if request.method == "GET":
        return _calendar_page(cal)
    form = CalendarForm()
    if not form.validate_on_submit():
        return _calendar_page(cal, form=form, status=422)
    try:
        _, note = sla_admin.update_calendar(current_user, cal.id, _calendar_values(form),
                                            apply_to_open=bool(form.apply_to_open.data))
    except ValidationFailed as exc:
        place_errors(form, exc)
        return _calendar_page(cal, form=form, status=exc.status)
    return _calendar_saved(cal, "Calendar saved." + (f" {note}" if note else ""))


@bp.post("/calendars/<int:calendar_id>/holidays")
@permission_required("sla.configure")
def add_holiday(calendar_id: int):
    """Add a holiday."""
    cal = sla_admin.get_calendar(calendar_id)
    form = HolidayForm(prefix=HOLIDAY_PREFIX)
    if not form.validate_on_submit():
        return _calendar_page(cal, holiday_form=form, status=422)
    try:
        holiday, note = sla_admin.add_holiday(current_user, cal.id, form.day.data, form.name.data,
                                              apply_to_open=bool(form.apply_to_open.data))
    except ValidationFailed as exc:
        place_errors(form, exc)
        return _calendar_page(cal, holiday_form=form, status=exc.status)
    return _calendar_saved(cal, f"{holiday.name} ({holiday.day.isoformat()}) added." + (f" {note}" if note else ""))


@bp.post("/holidays/<int:holiday_id>/delete")
@permission_required("sla.configure")
def remove_holiday(holiday_id: int):
    """Remove a holiday."""
    if not EmptyForm().validate_on_submit():
        return render_template("errors/error.html", status=400, title="The form expired", message=None), 400
    cal = sla_admin.remove_holiday(current_user, holiday_id)
    return _calendar_saved(cal, "Holiday removed.")
