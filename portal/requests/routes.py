"""Request pages. Thin: parse the form, call one service, render the page or its partial."""

from __future__ import annotations

from flask import abort, current_app, flash, render_template, request, send_file, url_for
from flask_login import current_user, login_required

from portal.auth.forms import EmptyForm
from portal.domain import workflow
from portal.htmx import is_htmx, redirect_to, render_page_or_partial, trigger
from portal.requests import bp
from portal.requests.forms import AssignForm, CommentForm, NewRequestForm, PropertiesForm, StatusForm
from portal.services import attachments as files
from portal.services import requests as svc
from portal.services import users
from portal.services.errors import Conflict, Forbidden, ValidationFailed
from portal.sla.panel import panel_context


def _uploads(field) -> list[files.Upload]:
    return [files.Upload(f.filename, f.stream) for f in (field.data or []) if getattr(f, "filename", "")]


def _apply_errors(form, exc: ValidationFailed | Conflict | Forbidden) -> None:
    """Show a service's field errors beside the matching form fields."""
    placed = False
    for name, message in exc.fields.items():
        field = getattr(form, "assignee" if name == "assignee_id" else name, None)
        if field is not None:
            field.errors = [*field.errors, message] if isinstance(field.errors, list) else [message]
            placed = True
    if not placed:
        form.form_errors.append(exc.message)


@bp.get("/requests")
@login_required
def list_requests():
    """The request list; HTMX filter changes get just the table."""
    filters = svc.parse_filters(request.args, current_app.config["PER_PAGE"])
    page = svc.list_requests(current_user, filters)
    context = {
        "page": page,
        "filters": filters,
        "categories": svc.list_categories(include_inactive=True),
        "staff": users.list_staff() if current_user.is_staff else [],
        "sorts": svc.SORTS,
    }
    return render_page_or_partial("requests/list.html", "requests/_table.html", target="request-table", **context)


@bp.route("/requests/new", methods=["GET", "POST"])
@login_required
def new_request():
    """Raise a request, with attachments."""
    form = NewRequestForm()
    form.category.choices = [(c.code, c.name) for c in svc.list_categories()]
    status = 200
    if form.validate_on_submit():
        try:
            req = svc.create_request(
                current_user, form.title.data, form.description.data, form.category.data,
                form.priority.data, _uploads(form.attachments),
            )
        except ValidationFailed as exc:
            _apply_errors(form, exc)
        else:
            flash(f"Request #{req.id} was created.", "success")
            return redirect_to(url_for("requests.show_request", request_id=req.id))
    if request.method == "POST":
        status = 422
    return render_template("requests/new.html", form=form), status


def _detail_context(req, comment_form: CommentForm | None = None) -> dict:
    """Everything the detail page and its partials need, for the current user."""
    allowed = workflow.allowed_transitions(req.status, current_user.role)
    assign_form = AssignForm(formdata=None, assignee=str(req.assignee_id or ""))
    props_form = PropertiesForm(formdata=None, priority=req.priority, category=req.category)
    if current_user.is_staff:
        assign_form.assignee.choices = [("", "Unassigned")] + [(str(u.id), u.name) for u in users.list_staff()]
        props_form.category.choices = [(c.code, c.name) for c in svc.list_categories(include_inactive=True)]
    return {
        **panel_context(req),
        "req": req,
        "comment_form": comment_form or CommentForm(formdata=None),
        "status_form": StatusForm(formdata=None),
        "allowed_statuses": allowed,
        "assign_form": assign_form,
        "props_form": props_form,
        "action_form": EmptyForm(formdata=None),
        "entries": svc.timeline(current_user, req),
        "attachments": svc.request_attachments(current_user, req),
    }


@bp.get("/requests/<int:request_id>")
@login_required
def show_request(request_id: int):
    """The request with its timeline and the forms to work it."""
    req = svc.get_request(current_user, request_id)
    return render_template("requests/detail.html", **_detail_context(req))


@bp.get("/requests/<int:request_id>/timeline")
@login_required
def request_timeline(request_id: int):
    """Just the timeline, for HTMX refreshes after a change."""
    req = svc.get_request(current_user, request_id)
    return render_template("requests/_timeline.html", req=req, entries=svc.timeline(current_user, req))


def _panel_response(req, status: int = 200, message: str | None = None):
    """The side panel after a change, plus an event so the timeline and header refresh."""
    context = _detail_context(req)
    context["panel_message"] = message
    context["panel_ok"] = status < 400
    response = current_app.make_response((render_template("requests/_panel.html", **context), status))
    if status < 400:
        trigger(response, "request-changed")
    return response


def _after_change(req, message: str):
    if is_htmx():
        return _panel_response(req, message=message)
    flash(message, "success")
    return redirect_to(url_for("requests.show_request", request_id=req.id))


def _change_failed(request_id: int, exc):
    req = svc.get_request(current_user, request_id)
    # The field reasons say what to do ("Choose an active agent..."); the summary alone does not.
    message = " ".join(dict.fromkeys(exc.fields.values())) or exc.message
    if is_htmx():
        return _panel_response(req, status=exc.status, message=message)
    flash(message, "error")
    return redirect_to(url_for("requests.show_request", request_id=request_id))


@bp.post("/requests/<int:request_id>/status")
@login_required
def change_status(request_id: int):
    """Move the request along the workflow."""
    form = StatusForm()
    if not form.validate_on_submit():
        return _change_failed(request_id, ValidationFailed({"status": "Choose a status."}))
    try:
        req = svc.change_status(current_user, request_id, form.status.data)
    except (ValidationFailed, Conflict, Forbidden) as exc:
        return _change_failed(request_id, exc)
    return _after_change(req, f"Status changed to {req.status_label.lower()}.")


@bp.post("/requests/<int:request_id>/assign")
@login_required
def assign_request(request_id: int):
    """Assign to me, to an agent, or unassign."""
    if not current_user.is_staff:
        abort(403)
    value = request.form.get("assignee", "")
    assignee_id = current_user.id if value == "me" else (value or None)
    try:
        req = svc.assign(current_user, request_id, assignee_id)
    except (ValidationFailed, Conflict, Forbidden) as exc:
        return _change_failed(request_id, exc)
    who = req.assignee.name if req.assignee else "nobody"
    return _after_change(req, "You took this request." if req.assignee_id == current_user.id else f"Assigned to {who}.")


@bp.post("/requests/<int:request_id>/properties")
@login_required
def change_properties(request_id: int):
    """Change priority and category."""
    if not current_user.is_staff:
        abort(403)
    form = PropertiesForm()
    form.category.choices = [(c.code, c.name) for c in svc.list_categories(include_inactive=True)]
    if not form.validate_on_submit():
        return _change_failed(request_id, ValidationFailed({"priority": "Choose a priority."}))
    current = svc.get_request(current_user, request_id)
    # Only what changed: an unchanged category may be one that has since been retired.
    changes = {name: value for name, value in (("priority", form.priority.data), ("category", form.category.data))
               if value != getattr(current, name)}
    try:
        req = svc.update_request(current_user, request_id, changes)
    except (ValidationFailed, Conflict, Forbidden) as exc:
        return _change_failed(request_id, exc)
    return _after_change(req, "Details saved.")


@bp.post("/requests/<int:request_id>/comments")
@login_required
def add_comment(request_id: int):
    """Post a reply or internal note; HTMX gets a fresh comment form and a timeline refresh."""
    req = svc.get_request(current_user, request_id)
    form = CommentForm()
    status = 200
    if form.validate_on_submit():
        try:
            svc.add_comment(current_user, request_id, form.body.data,
                            bool(form.internal.data) and current_user.is_staff, _uploads(form.attachments))
        except (ValidationFailed, Forbidden) as exc:
            _apply_errors(form, exc)
            status = exc.status
        else:
            if not is_htmx():
                flash("Your reply was added.", "success")
                return redirect_to(url_for("requests.show_request", request_id=request_id))
            response = current_app.make_response(
                render_template("requests/_comment_form.html", req=req, comment_form=CommentForm(formdata=None),
                                comment_saved=True))
            return trigger(response, "request-changed")
    else:
        status = 422
    if is_htmx():
        return render_template("requests/_comment_form.html", req=req, comment_form=form), status
    return render_template("requests/detail.html", **_detail_context(req, comment_form=form)), status


@bp.get("/requests/<int:request_id>/header")
@login_required
def request_header(request_id: int):
    """The title block (status and priority badges), refreshed after changes."""
    req = svc.get_request(current_user, request_id)
    return render_template("requests/_header.html", req=req)


@bp.get("/attachments/<int:attachment_id>")
@login_required
def download_attachment(attachment_id: int):
    """Always a download, never rendered inline; only for those who can see the request."""
    att = svc.get_attachment(current_user, attachment_id)
    path = files.path_of(att.storage_name)
    if not path.exists():
        abort(404)
    response = send_file(path, mimetype=att.content_type, as_attachment=True, download_name=att.filename,
                         max_age=0, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "no-store"  # private files: no copies in shared caches
    return response
