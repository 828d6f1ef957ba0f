"""Sign-in pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from portal.auth import bp
from portal.auth.forms import LoginForm
from portal.extensions import limiter
from portal.forms import EmptyForm
from portal.services import users


def safe_next(target: str | None) -> str | None:
    """Only our own absolute paths are followed after sign-in (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None  # a CR/LF would split the Location header
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT"],
    methods=["POST"],
    deduct_when=lambda response: bool(g.get("login_failed")),
)
def login():
    """Show the sign-in form; sign in and go to ?next= (our own paths only) or the request list."""
    next_url = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("requests.list_requests"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user = users.authenticate(form.email.data, form.password.data)
        if user is not None:
            # A fresh session at sign-in: nothing from before survives (session fixation).
            session.clear()
            login_user(user, remember=form.remember.data)
            return redirect(next_url or url_for("requests.list_requests"), code=303)
        g.login_failed = True
        form.password.errors.append("That email and password do not match an active account.")
        status = 401
    elif request.method == "POST":
        status = 422
    return render_template("auth/login.html", form=form, next_url=next_url), status


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """POST signs out; GET asks first, so a link elsewhere cannot sign anyone out."""
    form = EmptyForm()
    if request.method == "POST" and form.validate_on_submit():
        # Clear first: logout_user() then notes in the fresh session that the
        # "keep me signed in" cookie must be deleted too.
        session.clear()
        logout_user()
        flash("You have signed out.", "info")
        return redirect(url_for("auth.login"), code=303)
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return render_template("auth/logout.html", form=form)
