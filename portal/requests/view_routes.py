"""Saved views: save the request list's filters and sort under a name, and the page that manages them.

Thin, like the request pages: parse the form, call portal/services/saved_views.py, render. The
list page offers "Save view" (requests/_save_view.html); its tabs are requests/_view_tabs.html.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from flask import current_app, render_template, request, url_for
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from portal import policy
from portal.htmx import form_done, form_refused, is_htmx, redirect_to, render_page_or_partial, render_with_oob
from portal.paging import as_id
from portal.policy import permission_required
from portal.requests import bp
from portal.requests.forms import SaveViewForm
from portal.requests.routes import _list_filters, _list_url
from portal.services import saved_views as saved
from portal.services.errors import Forbidden, ServiceError

SAVE = saved.SAVE
SHARE = saved.SHARE
MANAGE = "requests/_saved_views.html"
SAVE_FORM = "requests/_save_view.html"
FORM_PREFIX = "view"  # as the list page renders the form (portal/requests/routes.py)


def _per_page() -> int:
    return current_app.config["PER_PAGE"]


def _list_view_query(raw: str | None) -> dict:
    """The list's filters and sort from a query string, read as the list reads it (staff default included)."""
    query = (raw or "").lstrip("?")[:4000]
    return _list_filters(MultiDict(parse_qsl(query))).view_query()


def _view_url(view) -> str:
    return _list_url(view.query) if view.query else url_for("requests.list_requests")


def _place(form: SaveViewForm, exc: ServiceError) -> None:
    """A refusal's messages beside the name field (each once), the rest (the query's) above the form."""
    for name, message in exc.fields.items():
        if name == "name":
            form.name.errors = [*form.name.errors, message]
        else:
            form.form_errors.append(message)
    if not exc.fields:
        form.form_errors.append(exc.message)


@bp.post("/requests/views")
@permission_required(SAVE)
def save_view():
    """Save the list's filters and sort (the form's `query`) under a name, then open it as a tab."""
    form = SaveViewForm(prefix=FORM_PREFIX)
    back = _list_url(form.query.data)
    try:
        view = saved.create_saved_view(current_user, form.name.data, _list_view_query(form.query.data), _per_page())
    except Forbidden:
        raise
    except ServiceError as exc:
        if not is_htmx():
            return form_refused(exc, back)  # no JavaScript: the reason as a message over the same list
        _place(form, exc)
        existing = saved.find_own_view(current_user, form.name.data) if exc.status == 409 else None
        return render_template(SAVE_FORM, save_form=form, view_query=saved.normalise_query(
            _list_view_query(form.query.data), _per_page()), existing=existing), exc.status
    return form_done(f"View “{view.name}” saved: it is a tab above the list now.", _view_url(view))


@bp.post("/requests/views/<int:view_id>/query")
@permission_required(SAVE)
def update_view_query(view_id: int):
    """Point one of your views at the list's current filters and sort (offered when the name is taken)."""
    form = SaveViewForm(prefix=FORM_PREFIX)
    try:
        view = saved.update_saved_view_query(current_user, view_id, _list_view_query(form.query.data),
                                             request.form.get("version"), _per_page())
    except Forbidden:
        raise
    except ServiceError as exc:
        return form_refused(exc, _list_url(form.query.data))
    return form_done(f"View “{view.name}” now shows these filters.", _view_url(view))


# ---------------------------------------------------------------- the views page

def _manage_context(confirm_id: int | None = None, row_errors: dict | None = None) -> dict:
    views = saved.list_saved_views(current_user)
    return {"own_views": [v for v in views if v.owner_id == current_user.id],
            "team_views": [v for v in views if v.owner_id != current_user.id],
            "views_max": saved.VIEWS_MAX, "name_max": saved.VIEW_NAME_MAX, "confirm_id": confirm_id,
            "row_errors": row_errors or {}, "describe": lambda query: saved.describe_query(query, _per_page()),
            "view_url": _view_url, "may_change": policy.may_change_saved_view}


def _manage_done(message: str) -> object:
    return form_done(message, url_for("requests.saved_views"), MANAGE, _manage_context())


def _manage_refused(exc: ServiceError, view_id: int | None = None, typed: str | None = None):
    """A refused change: HTMX gets the views again with the reason (beside the row's name when it is
    about the name); a plain post the reason as a message over the views page."""
    if isinstance(exc, Forbidden):
        raise exc
    row_errors = {}
    if view_id is not None and "name" in exc.fields:
        row_errors[view_id] = {"message": exc.fields["name"], "typed": typed}
        if is_htmx():
            return render_with_oob(MANAGE, {**_manage_context(row_errors=row_errors), "message": None, "ok": False,
                                            "refusal": None}, status=exc.status)
    return form_refused(exc, url_for("requests.saved_views"), MANAGE, _manage_context())


@bp.get("/requests/views")
@permission_required(SAVE)
def saved_views():
    """Your saved views (rename, share, delete) and the ones the team shares; ?delete=<id> asks first."""
    return render_page_or_partial("requests/views.html", MANAGE,
                                  **_manage_context(confirm_id=as_id(request.args.get("delete"))))


@bp.post("/requests/views/<int:view_id>/rename")
@permission_required(SAVE)
def rename_view(view_id: int):
    """Rename a view; a rename from a page older than the view's last change is refused (409)."""
    name = request.form.get("name")
    try:
        view = saved.rename_saved_view(current_user, view_id, name, request.form.get("version"))
    except ServiceError as exc:
        return _manage_refused(exc, view_id, name)
    return _manage_done(f"View renamed to “{view.name}”.")


@bp.post("/requests/views/<int:view_id>/share")
@permission_required(SHARE)
def share_view(view_id: int):
    """Share a view with the team (shared=true) or stop sharing it (shared=false)."""
    shared = {"true": True, "false": False}.get(request.form.get("shared", ""), request.form.get("shared"))
    try:
        view = saved.set_saved_view_shared(current_user, view_id, shared, request.form.get("version"))
    except ServiceError as exc:
        return _manage_refused(exc)
    if view.shared:
        return _manage_done(f"View “{view.name}” is shared: everyone on the team has it as a tab now.")
    return _manage_done(f"View “{view.name}” is no longer shared; it stays one of {view.owner.name}'s views.")


@bp.post("/requests/views/<int:view_id>/delete")
@permission_required(SAVE)
def delete_view(view_id: int):
    """Delete a view: the first post asks, the second (confirm=yes) deletes it."""
    if request.form.get("confirm") != "yes":
        view = saved.get_saved_view(current_user, view_id)
        policy.require_saved_view_change(current_user, view.owner_id)
        if not is_htmx():  # a page of its own, so a reload asks again rather than re-posting
            return redirect_to(url_for("requests.saved_views", delete=view.id, _anchor=f"view-{view.id}"))
        return render_template(MANAGE, **_manage_context(confirm_id=view.id))
    try:
        name = saved.delete_saved_view(current_user, view_id, request.form.get("version"))
    except ServiceError as exc:
        return _manage_refused(exc)
    return _manage_done(f"View “{name}” deleted.")
