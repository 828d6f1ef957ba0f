"""User management for admins."""

from __future__ import annotations

from flask import render_template, request, url_for
from flask_login import current_user

from portal.admin import bp
from portal.admin.forms import ActiveForm, CategoryForm, ConfirmForm, NewUserForm, RoleForm
from portal.forms import EmptyForm
from portal.htmx import form_done, form_refused, is_htmx, render_page_or_partial, trigger
from portal.policy import permission_required
from portal.services import audit, categories, undo, users
from portal.services.errors import Conflict, Forbidden, NotFound, ServiceError, ValidationFailed

USERS = "admin/_users.html"
USER_ROW = "admin/_user_row.html"
CATEGORIES = "admin/_categories.html"
AUDIT = "admin/_audit.html"
AUDIT_ROW = "admin/_audit_row.html"
EXPIRED = "The form expired; reload and try again."


def _users_context(form: NewUserForm | None = None, pending: dict | None = None) -> dict:
    return {
        "users": users.list_users(),
        "tokens": users.token_summary(),
        "form": form or NewUserForm(formdata=None),
        "role_form": RoleForm(formdata=None),
        "action_form": EmptyForm(formdata=None),
        "pending": pending,
    }


@bp.route("/users", methods=["GET", "POST"])
@permission_required("users.manage")
def manage_users():
    """List accounts and create new ones."""
    form = NewUserForm()
    status = 200
    message = None
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                user = users.create_user(current_user, form.email.data, form.name.data, form.role.data,
                                         form.password.data)
            except (ValidationFailed, Conflict) as exc:
                for name, text in exc.fields.items():
                    getattr(form, name).errors.append(text)
                status = exc.status
            else:
                message = f"{user.name} ({user.email}) can now sign in as {user.role_label.lower()}."
                return trigger(form_done(message, url_for("admin.manage_users"), USERS, _users_context()),
                               "users-changed")
        else:
            status = 422
    context = _users_context(form)
    return render_template(USERS if is_htmx() else "admin/users.html", **context), status


def _after_user_change(message: str | None = None, exc: ServiceError | None = None):
    back = url_for("admin.manage_users")
    if exc is not None:
        return form_refused(exc, back, USERS, _users_context())
    return form_done(message, back, USERS, _users_context())


def _refusal_text(exc: ServiceError) -> str:
    return " ".join(dict.fromkeys(exc.fields.values())) if exc.fields and exc.status != 409 else exc.message


def _form_problem(form, invalid: str) -> ServiceError:
    """Why a confirm form did not validate: an expired token, or a value no page offers."""
    return ServiceError(EXPIRED) if "csrf_token" in form.errors else ValidationFailed({}, invalid)


def _ask_about_user(user, pending: dict, status: int = 200):
    """The confirmation (or the refusal) in the account's row: the row for HTMX, the whole page without it."""
    pending = {**pending, "user_id": user.id}
    if is_htmx():
        return render_template(USER_ROW, u=user, tokens=users.token_summary(), pending=pending), status
    return render_template("admin/users.html", **_users_context(pending=pending)), status


def _user_refused(user_id: int, exc: ServiceError):
    """A change refused before it was confirmed: the reason in that row (HTMX), or flashed on the page."""
    if not is_htmx() or isinstance(exc, NotFound):
        return _after_user_change(exc=exc)
    return _ask_about_user(users.get_user(user_id), {"kind": "refused", "message": _refusal_text(exc)}, exc.status)


@bp.post("/users/<int:user_id>/active")
@permission_required("users.manage")
def set_user_active(user_id: int):
    """Deactivate an account (the first post asks, confirm=yes deactivates) or reactivate it."""
    form = ActiveForm()
    if not form.validate_on_submit():
        return _after_user_change(exc=_form_problem(form, "Choose to activate or deactivate."))
    active = form.active.data == "true"
    if not active and not form.confirmed:
        try:
            user = users.check_set_active(current_user, user_id, False)
        except (Conflict, Forbidden, ValidationFailed, NotFound) as exc:
            return _user_refused(user_id, exc)
        return _ask_about_user(user, {"kind": "deactivate"})
    try:
        # Deactivation was confirmed for an active account: if it is no longer active, say so.
        user = users.set_active(current_user, user_id, active, expected_active=None if active else True)
    except (Conflict, Forbidden, ValidationFailed) as exc:
        return _after_user_change(exc=exc)
    verb = "reactivated" if active else "deactivated; their sessions and API tokens no longer work"
    return _after_user_change(message=f"{user.name} was {verb}.")


@bp.post("/users/<int:user_id>/tokens/revoke")
@permission_required("users.manage")
def revoke_user_tokens(user_id: int):
    """Revoke every API token of an account at once."""
    if not EmptyForm().validate_on_submit():
        return _after_user_change(exc=ServiceError(EXPIRED))
    try:
        revoked = users.revoke_all_tokens(current_user, user_id)
    except (NotFound, Forbidden) as exc:
        return _after_user_change(exc=exc)
    return _after_user_change(message=f"{revoked} API token{'s' if revoked != 1 else ''} revoked: "
                                      "they no longer work.")


@bp.post("/users/<int:user_id>/role")
@permission_required("users.manage")
def set_user_role(user_id: int):
    """Change an account's role: the first post asks "Change X from agent to manager?", confirm=yes changes it."""
    form = RoleForm()
    if not form.validate_on_submit():
        return _after_user_change(exc=_form_problem(form, "Choose a valid role."))
    if not form.confirmed:
        try:
            user = users.check_role_change(current_user, user_id, form.role.data)
        except (Conflict, Forbidden, ValidationFailed, NotFound) as exc:
            return _user_refused(user_id, exc)
        return _ask_about_user(user, {"kind": "role", "role": form.role.data, "from_role": user.role})
    try:
        user = users.change_role(current_user, user_id, form.role.data, expected_role=form.from_role.data or None)
    except (Conflict, Forbidden, ValidationFailed) as exc:
        return _after_user_change(exc=exc)
    return _after_user_change(message=f"{user.name} is now {user.role_label.lower()}.")


# ---------------------------------------------------------------- audit log

def _audit_context(filters: audit.AuditFilters, pending: dict | None = None) -> dict:
    return {"page": undo.browse(filters), "filters": filters, "action_choices": audit.action_choices(),
            "entity_types": audit.ENTITY_TYPES, "pending": pending}


@bp.get("/audit")
@permission_required("audit.read")
def audit_log():
    """Every recorded change, newest first, filtered by kind of thing and action; undo where it makes sense."""
    filters = audit.parse_filters(request.args)
    return render_page_or_partial("admin/audit.html", AUDIT, target="audit-log", **_audit_context(filters))


def _audit_back(filters: audit.AuditFilters) -> str:
    return url_for("admin.audit_log", **filters.position_query())


@bp.post("/audit/<int:entry_id>/undo")
@permission_required("audit.read")
def undo_change(entry_id: int):
    """Undo one audited change: the first post asks (or says why not), confirm=yes makes the undo."""
    form = ConfirmForm()
    filters = audit.parse_filters(request.form)  # the list the admin came from, shown again after
    back = _audit_back(filters)
    if not form.validate_on_submit():
        return form_refused(ServiceError(EXPIRED), back, AUDIT, _audit_context(filters))
    if form.confirmed:
        try:
            plan = undo.undo(current_user, entry_id)
        except ServiceError as exc:
            return form_refused(exc, back, AUDIT, _audit_context(filters))
        return form_done(plan.done, back, AUDIT, _audit_context(filters))
    try:
        plan = undo.check(current_user, entry_id)
    except NotFound as exc:
        return form_refused(exc, back, AUDIT, _audit_context(filters))
    except ServiceError as exc:
        pending, status = {"entry_id": entry_id, "kind": "refused", "message": _refusal_text(exc)}, exc.status
    else:
        pending, status = {"entry_id": entry_id, "kind": "undo", "question": plan.question}, 200
    row = undo.row(entry_id)
    if is_htmx():
        return render_template(AUDIT_ROW, row=row, filters=filters, pending=pending), status
    context = _audit_context(filters, pending)
    if all(r.entry.id != entry_id for r in context["page"].items):  # e.g. pushed off the first page since
        context = _audit_context(audit.filters_showing(row.entry), pending)
    return render_template("admin/audit.html", **context), status


def _categories_context(form: CategoryForm | None = None) -> dict:
    return {"categories": categories.list_all(), "form": form or CategoryForm(formdata=None),
            "action_form": EmptyForm(formdata=None)}


def _categories_page(form: CategoryForm | None = None, status: int = 200):
    return render_page_or_partial("admin/categories.html", CATEGORIES, **_categories_context(form)), status


@bp.route("/categories", methods=["GET", "POST"])
@permission_required("categories.manage")
def manage_categories():
    """List categories, add new ones, retire old ones."""
    if request.method == "GET":
        return _categories_page()
    form = CategoryForm()
    if not form.validate_on_submit():
        return _categories_page(form, status=422)
    try:
        category = categories.create_category(current_user, form.code.data, form.name.data)
    except (ValidationFailed, Conflict) as exc:
        for name, text in exc.fields.items():
            getattr(form, name).errors.append(text)
        return _categories_page(form, status=exc.status)
    message = f"Category {category.name} added; requests and SLA definitions can use it now."
    return form_done(message, url_for("admin.manage_categories"), CATEGORIES, _categories_context())


@bp.post("/categories/<code>/active")
@permission_required("categories.manage")
def set_category_active(code: str):
    """Retire or restore a category."""
    if not EmptyForm().validate_on_submit():
        return _categories_page(status=400)
    category = categories.set_active(current_user, code, request.form.get("active") == "true")
    state = "available again" if category.active else "retired: new requests cannot choose it"
    return form_done(f"{category.name} is {state}.", url_for("admin.manage_categories"), CATEGORIES,
                     _categories_context())
