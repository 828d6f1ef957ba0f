"""Admin pages for SLA definitions and business calendars."""

from __future__ import annotations

from flask import current_app, flash, render_template, request, url_for
from flask_login import current_user

from portal.admin import bp
from portal.admin.forms import (
    WEEKDAY_NAMES,
    ActiveForm,
    CalendarForm,
    ConfirmForm,
    DefinitionForm,
    HolidayForm,
    HolidayImportForm,
    HolidayImportSaveForm,
)
from portal.formatting import format_hours
from portal.forms import EmptyForm, place_errors
from portal.htmx import form_done, form_refused, is_htmx, redirect_to
from portal.models._time import utcnow
from portal.paging import as_id
from portal.policy import permission_required
from portal.services import public_holidays, sla_admin
from portal.services import requests as svc
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
                         edit_form: DefinitionForm | None = None, pending: dict | None = None) -> dict:
    return {
        "definitions": sla_admin.list_definitions(),
        "calendars": {c.id: c for c in sla_admin.list_calendars()},
        "form": form or _definition_form(formdata=None),
        "edit_id": edit_id, "edit_form": edit_form,
        "action_form": EmptyForm(formdata=None),
        "pending": pending,
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


def _definition_values(form: DefinitionForm, include_pair: bool, include_active: bool = True) -> dict:
    """The form's values for the service. The edit row of an active definition has no Active box:
    deactivating is the list's Deactivate, which asks first; so an edit never deactivates silently."""
    values = {
        "response_time_hours": form.response_time_hours.data,
        "resolution_time_hours": form.resolution_time_hours.data,
        "calendar_id": form.calendar_id.data or None,
        "pause_statuses": list(form.pause_statuses.data or []),
        "at_risk_percent": form.at_risk_percent.data,
    }
    if include_active:
        values["is_active"] = bool(form.is_active.data)
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
        values = _definition_values(form, False, include_active=not definition.is_active)
        _, note = sla_admin.update_definition(current_user, definition.id, values,
                                              apply_to_open=bool(form.apply_to_open.data))
    except (ValidationFailed, Conflict) as exc:
        place_errors(form, exc)
        return _definitions_page(edit_id=definition.id, edit_form=form, status=exc.status)
    return _definitions_done(
        "Definition saved." + (f" {note}" if note else " Open requests keep the targets they started with."))


DEFINITION_ROW = "admin/_definition_row.html"


def _ask_about_definition(definition, pending: dict, status: int = 200):
    """The deactivation's question (or its refusal) in the definition's row: the row for HTMX, else the page."""
    pending = {**pending, "definition_id": definition.id}
    if is_htmx():
        calendars = {c.id: c for c in sla_admin.list_calendars()}
        return render_template(DEFINITION_ROW, d=definition, calendars=calendars, pending=pending), status
    return render_template("admin/sla.html", **_definitions_context(pending=pending)), status


@bp.post("/sla/<int:definition_id>/active")
@permission_required("sla.configure")
def toggle_sla_definition(definition_id: int):
    """Activate a definition, or deactivate it: the first post asks, the second (confirm=yes) deactivates."""
    form = ActiveForm()
    try:
        if not form.validate_on_submit():
            raise (ServiceError("The form expired; reload the page and try again.") if "csrf_token" in form.errors
                   else ValidationFailed({}, "Choose to activate or deactivate."))
        active = form.active.data == "true"
        if not active and not form.confirmed:
            try:
                definition = sla_admin.check_definition_active(current_user, definition_id, False)
            except (Conflict, ValidationFailed) as exc:
                if not is_htmx():
                    raise
                refused = sla_admin.get_definition(definition_id)
                return _ask_about_definition(refused, {"kind": "refused", "message": exc.message}, exc.status)
            return _ask_about_definition(definition, {"kind": "deactivate"})
        # A confirmed deactivation was asked of an active definition: if it is no longer active, say so.
        definition = sla_admin.set_definition_active(current_user, definition_id, active,
                                                     expected_active=None if active else True)
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


IMPORT_PREFIX = "import"  # the review's hidden copy of the lookup, beside the lookup form's own fields
IMPORT_FIELDS = ("country", "subdivision", "first_year", "last_year")


def _import_form(formdata=None, values: dict | None = None) -> HolidayImportForm:
    """The public-holiday lookup form; its choices come from the holidays package."""
    if formdata is None and values is None:
        year = utcnow().year
        values = {"first_year": str(year), "last_year": str(year + 1)}
    form = HolidayImportForm(formdata=formdata, data=values or {})
    country = form.country.data = (form.country.data or "").strip().upper()
    form.country.choices = [("", "Choose a country")] + list(public_holidays.countries())
    form.subdivision.choices = [("", "Whole country (national holidays only)")] + list(
        public_holidays.subdivisions(country))
    return form


def _import_values(form) -> tuple:
    return tuple(getattr(form, name).data for name in IMPORT_FIELDS)


def _calendar_context(cal, form=None, holiday_form=None, import_form=None, preview=None, save_form=None,
                      confirm_id: int | None = None) -> dict:
    if preview is not None and save_form is None:
        save_form = HolidayImportSaveForm(formdata=None, prefix=IMPORT_PREFIX, data={
            "country": preview.source.country, "subdivision": preview.source.subdivision or "",
            "first_year": str(preview.source.first_year), "last_year": str(preview.source.last_year)})
    if preview is None:
        ticked = set()
    elif save_form.is_submitted():  # shown again after a refusal: as the admin left the boxes
        ticked = set(save_form.days.data or ())
    else:  # a fresh review: every date not yet on the calendar, ticked
        ticked = {c.day.isoformat() for c in preview.new}
    return {"cal": cal, "form": form or CalendarForm(formdata=None, obj=cal,
                                                       working_days=[str(d) for d in cal.working_days]),
            "holiday_form": holiday_form or HolidayForm(formdata=None, prefix=HOLIDAY_PREFIX),
            "import_form": import_form or _import_form(), "preview": preview, "save_form": save_form,
            "ticked": ticked, "confirm_id": confirm_id,
            "weekdays": WEEKDAY_NAMES, "action_form": EmptyForm(formdata=None)}


def _calendar_page(cal, form=None, holiday_form=None, status=200, **context):
    context = _calendar_context(cal, form, holiday_form, **context)
    return current_app.make_response((render_template(CALENDAR if is_htmx() else "admin/calendar.html", **context),
                                      status))


def _calendar_saved(cal, message: str):
    """After a calendar change: a plain post redirects (a reload never re-posts); HTMX gets the panel."""
    return form_done(message, url_for("admin.edit_calendar", calendar_id=cal.id), CALENDAR, _calendar_context(cal))


def _holiday_to_confirm(cal, raw) -> int | None:
    """The id in ?remove= when it names one of this calendar's holidays (the removal asks first)."""
    holiday_id = as_id(raw)
    return holiday_id if any(h.id == holiday_id for h in cal.holidays) else None


@bp.route("/calendars/<int:calendar_id>", methods=["GET", "POST"])
@permission_required("sla.configure")
def edit_calendar(calendar_id: int):
    """Edit a calendar's zone, days and hours; manage its holidays."""
    cal = sla_admin.get_calendar(calendar_id)
    if request.method == "GET":
        return _calendar_page(cal, confirm_id=_holiday_to_confirm(cal, request.args.get("remove")))
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


@bp.get("/calendars/<int:calendar_id>/holidays/import")
@permission_required("sla.configure")
def preview_holidays(calendar_id: int):
    """Show a country's public holidays for some years, to review before adding (nothing changes)."""
    cal = sla_admin.get_calendar(calendar_id)
    import_form = _import_form(request.args)
    try:
        preview = sla_admin.preview_holidays(cal.id, *_import_values(import_form))
    except ValidationFailed as exc:
        place_errors(import_form, exc)
        return _calendar_page(cal, import_form=import_form, status=exc.status)
    return _calendar_page(cal, import_form=import_form, preview=preview)


def _review_refused(cal, save_form: HolidayImportSaveForm, values: tuple, exc: ValidationFailed | None):
    """The review again after a refused import: what was wrong beside the field it concerns, nothing saved."""
    import_form = _import_form(values=dict(zip(IMPORT_FIELDS, values, strict=True)))
    if exc is not None and "days" in exc.fields:
        save_form.days.errors = [exc.fields["days"]]
    try:
        preview = sla_admin.preview_holidays(cal.id, *values)
    except ValidationFailed as source_exc:  # the lookup itself (only a hand-made post gets here)
        place_errors(import_form, source_exc)
        preview = None
    return _calendar_page(cal, import_form=import_form, preview=preview, save_form=save_form, status=422)


@bp.post("/calendars/<int:calendar_id>/holidays/import")
@permission_required("sla.configure")
def import_holidays(calendar_id: int):
    """Add the ticked dates of a reviewed public holiday list, all in one change."""
    cal = sla_admin.get_calendar(calendar_id)
    form = HolidayImportSaveForm(prefix=IMPORT_PREFIX)
    values = _import_values(form)
    if not form.validate_on_submit():  # only the CSRF token can fail here; the service checks the rest
        return _review_refused(cal, form, values, None)
    try:
        result = sla_admin.import_holidays(current_user, cal.id, *values, days=list(form.days.data or []),
                                           apply_to_open=bool(form.apply_to_open.data))
    except ValidationFailed as exc:
        return _review_refused(cal, form, values, exc)
    return _calendar_saved(cal, _import_message(result))


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _import_message(result: sla_admin.HolidayImport) -> str:
    source = result.source
    if result.added:
        message = f"Added {_plural(len(result.added), 'holiday', 'holidays')} of {source.place}, {source.years}."
    else:
        message = "No holidays added."
    if result.already:
        message += (f" {_plural(len(result.already), 'ticked date was', 'ticked dates were')} already on the "
                    "calendar (added meanwhile) and left as they are.")
    return message + (f" {result.note}" if result.note else "")


@bp.post("/holidays/<int:holiday_id>/delete")
@permission_required("sla.configure")
def remove_holiday(holiday_id: int):
    """Remove a holiday: the first post asks "Confirm removal", the second (confirm=yes) removes it."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template("errors/error.html", status=400, title="The form expired", message=None), 400
    holiday = sla_admin.get_holiday(holiday_id)
    cal, what = holiday.calendar, f"{holiday.name} ({holiday.day.isoformat()})"
    if not form.confirmed:
        if not is_htmx():  # a page of its own, so a reload asks again rather than re-posting
            return redirect_to(url_for("admin.edit_calendar", calendar_id=cal.id, remove=holiday.id,
                                       _anchor=f"holiday-{holiday.id}"))
        return _calendar_page(cal, confirm_id=holiday.id)
    cal = sla_admin.remove_holiday(current_user, holiday_id)
    return _calendar_saved(cal, f"{what} removed.")
