"""User management for admins."""

from __future__ import annotations

from flask import current_app, flash, render_template, request, url_for
from flask_login import current_user

from portal.admin import bp
from portal.admin.forms import CategoryForm, NewUserForm, RoleForm
from portal.forms import EmptyForm
from portal.htmx import is_htmx, redirect_to, render_page_or_partial, trigger
from portal.policy import permission_required
from portal.services import categories, users
from portal.services.errors import Conflict, Forbidden, ValidationFailed


def _users_context(form: NewUserForm | None = None, message: str | None = None, error: str | None = None) -> dict:
    return {
        "users": users.list_users(),
        "form": form or NewUserForm(formdata=None),
        "role_form": RoleForm(formdata=None),
        "action_form": EmptyForm(formdata=None),
        "message": message,
        "error": error,
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
                if not is_htmx():
                    flash(message, "success")
                    return redirect_to(url_for("admin.manage_users"))
                form = NewUserForm(formdata=None)
        else:
            status = 422
    context = _users_context(form, message)
    if is_htmx():
        response = current_app.make_response((render_template("admin/_users.html", **context), status))
        return trigger(response, "users-changed") if status == 200 else response
    return render_template("admin/users.html", **context), status


def _after_user_change(message: str | None = None, error: str | None = None, status: int = 200):
    if is_htmx():
        return render_template("admin/_users.html", **_users_context(message=message, error=error)), status
    flash(error or message, "error" if error else "success")
    return redirect_to(url_for("admin.manage_users"))


@bp.post("/users/<int:user_id>/active")
@permission_required("users.manage")
def set_user_active(user_id: int):
    """Deactivate or reactivate an account."""
    form = EmptyForm()
    if not form.validate_on_submit():
        return _after_user_change(error="The form expired; reload and try again.", status=400)
    active = request.form.get("active") == "true"
    try:
        user = users.set_active(current_user, user_id, active)
    except (Conflict, Forbidden, ValidationFailed) as exc:
        return _after_user_change(error=exc.message, status=exc.status)
    verb = "reactivated" if active else "deactivated; their sessions and API tokens no longer work"
    return _after_user_change(message=f"{user.name} was {verb}.")


@bp.post("/users/<int:user_id>/role")
@permission_required("users.manage")
def set_user_role(user_id: int):
    """Change an account's role."""
    form = RoleForm()
    if not form.validate_on_submit():
        return _after_user_change(error="Choose a valid role.", status=422)
    try:
        user = users.change_role(current_user, user_id, form.role.data)
    except (Conflict, Forbidden, ValidationFailed) as exc:
        return _after_user_change(error=exc.message, status=exc.status)
    return _after_user_change(message=f"{user.name} is now {user.role_label.lower()}.")


def _categories_page(form: CategoryForm | None = None, message: str | None = None, status: int = 200):
    context = {"categories": categories.list_all(), "form": form or CategoryForm(formdata=None),
               "message": message, "action_form": EmptyForm(formdata=None)}
    return render_page_or_partial("admin/categories.html", "admin/_categories.html", **context), status


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
    if not is_htmx():
        flash(message, "success")
        return redirect_to(url_for("admin.manage_categories"))
    return _categories_page(message=message)


@bp.post("/categories/<code>/active")
@permission_required("categories.manage")
def set_category_active(code: str):
    """Retire or restore a category."""
    if not EmptyForm().validate_on_submit():
        return _categories_page(status=400)
    category = categories.set_active(current_user, code, request.form.get("active") == "true")
    state = "available again" if category.active else "retired: new requests cannot choose it"
    message = f"{category.name} is {state}."
    if not is_htmx():
        flash(message, "success")
        return redirect_to(url_for("admin.manage_categories"))
    return _categories_page(message=message)
