"""User management for admins."""

from __future__ import annotations

from flask import render_template, request, url_for
from flask_login import current_user

from portal.admin import bp
from portal.admin.forms import CategoryForm, NewUserForm, RoleForm
from portal.forms import EmptyForm
from portal.htmx import form_done, form_refused, is_htmx, render_page_or_partial, trigger
from portal.policy import permission_required
from portal.services import categories, users
from portal.services.errors import Conflict, Forbidden, NotFound, ServiceError, ValidationFailed

USERS = "admin/_users.html"
CATEGORIES = "admin/_categories.html"
EXPIRED = "The form expired; reload and try again."


def _users_context(form: NewUserForm | None = None) -> dict:
    return {
        "users": users.list_users(),
        "tokens": users.token_summary(),
        "form": form or NewUserForm(formdata=None),
        "role_form": RoleForm(formdata=None),
        "action_form": EmptyForm(formdata=None),
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


@bp.post("/users/<int:user_id>/active")
@permission_required("users.manage")
def set_user_active(user_id: int):
    """Deactivate or reactivate an account."""
    form = EmptyForm()
    if not form.validate_on_submit():
        return _after_user_change(exc=ServiceError(EXPIRED))
    active = request.form.get("active") == "true"
    try:
        user = users.set_active(current_user, user_id, active)
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
    """Change an account's role."""
    form = RoleForm()
    if not form.validate_on_submit():
        return _after_user_change(exc=ValidationFailed({}, "Choose a valid role."))
    try:
        user = users.change_role(current_user, user_id, form.role.data)
    except (Conflict, Forbidden, ValidationFailed) as exc:
        return _after_user_change(exc=exc)
    return _after_user_change(message=f"{user.name} is now {user.role_label.lower()}.")


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
