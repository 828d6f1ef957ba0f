"""Sign-in pages."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import current_app, flash, g, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from portal.auth import bp
from portal.auth.forms import LoginForm, RegisterForm, ResetPasswordForm, ResetRequestForm, TwoFactorForm
from portal.extensions import db, limiter
from portal.forms import EmptyForm, place_errors
from portal.metrics import count_auth_failure
from portal.models import User
from portal.services import accounts, brute_force, sessions, users
from portal.services import two_factor as two_factor_service
from portal.services.errors import ValidationFailed
from portal.web import RATE_LIMITED, count_rate_limited


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
    retry_after = None
    if form.validate_on_submit():
        refused = brute_force.refusal(request.remote_addr, form.email.data)
        unverified = None
        try:
            user = None if refused else users.authenticate(form.email.data, form.password.data)
        except users.EmailNotVerified as exc:
            user, unverified = None, exc
        if unverified is not None:
            sent = accounts.resend_verification(unverified.user)
            form.email.errors.append("Confirm your email address first: follow the link we mailed you"
                                     + (" (we just sent a new one)." if sent else "."))
            status = 403
        elif refused:
            count_auth_failure("password", "locked")
            form.password.errors.append(refused.message)
            status, retry_after = 429, refused.seconds
        elif user is not None and user.totp_enabled_at is not None:
            # The password was right; the code comes next, in this browser, within PENDING_SECONDS.
            session.clear()
            session[PENDING] = {"uid": user.id, "remember": bool(form.remember.data), "next": next_url,
                                "at": time.time(), "tries": 0}
            return redirect(url_for("auth.two_factor"), code=303)
        elif user is not None:
            brute_force.record_success(form.email.data)
            _sign_in(user, bool(form.remember.data))
            return redirect(next_url or url_for("requests.list_requests"), code=303)
        else:
            g.login_failed = True
            brute_force.record_failure(request.remote_addr, form.email.data)
            form.password.errors.append("That email and password do not match an active account.")
            status = 401
    elif request.method == "POST":
        status = 422
    response = make_response(render_template("auth/login.html", form=form, next_url=next_url), status)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _sign_in(user, remember: bool) -> None:
    """A fresh session at sign-in: nothing from before survives (session fixation), and a new
    server-side session that sign-out (or a reset, a lockout) can end."""
    session.clear()
    user.session_key = sessions.start(user, remember=remember)
    db.session.commit()
    login_user(user, remember=remember)


PENDING = "2fa_pending"
PENDING_SECONDS = 300
PENDING_TRIES = 5


@bp.route("/login/2fa", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT"],
    methods=["POST"],
    deduct_when=lambda response: bool(g.get("login_failed")),
)
def two_factor():
    """The second step of signing in: a code from the authenticator app, or a recovery code."""
    pending = session.get(PENDING)
    if not pending or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        if pending:
            count_auth_failure("2fa", "timeout")
        session.pop(PENDING, None)
        flash("Sign in again: the code is asked for within 5 minutes of the password.", "info")
        return redirect(url_for("auth.login"))
    form = TwoFactorForm()
    status = 200
    if form.validate_on_submit():
        user = db.session.get(User, pending["uid"])
        if user is not None and user.active and two_factor_service.verify(user.id, form.code.data):
            brute_force.record_success(user.email)
            _sign_in(user, pending.get("remember", False))
            return redirect(pending.get("next") or url_for("requests.list_requests"), code=303)
        g.login_failed = True
        brute_force.record_failure(request.remote_addr, user.email if user else "")
        pending["tries"] = pending.get("tries", 0) + 1
        if pending["tries"] >= PENDING_TRIES:
            session.pop(PENDING, None)
            flash("Too many wrong codes. Sign in again.", "error")
            return redirect(url_for("auth.login"), code=303)
        session[PENDING] = pending
        form.code.errors.append("That code does not match. Type the 6 digits your app shows now, "
                                "or one of your recovery codes.")
        status = 401
    elif request.method == "POST":
        status = 422
    return render_template("auth/two_factor.html", form=form), status


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """POST signs out; GET asks first, so a link elsewhere cannot sign anyone out."""
    form = EmptyForm()
    if request.method == "POST" and form.validate_on_submit():
        # End it on the server (a copy of the cookie stops working), then clear: logout_user()
        # notes in the fresh session that the "keep me signed in" cookie must be deleted too.
        sessions.end(session.get("_user_id"))
        session.clear()
        logout_user()
        flash("You have signed out.", "info")
        return redirect(url_for("auth.login"), code=303)
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return render_template("auth/logout.html", form=form)


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["REGISTER_RATE_LIMIT"], methods=["POST"])
def register():
    """A requester makes their own account; it signs in once the mailed link confirms the address."""
    if current_user.is_authenticated:
        return redirect(url_for("requests.list_requests"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            accounts.register(form.name.data, form.email.data, form.password.data)
        except ValidationFailed as exc:
            place_errors(form, exc)
            return render_template("auth/register.html", form=form), 422
        # The same answer whether the address was free or taken (its owner gets a mail instead).
        return render_template("auth/check_inbox.html", email=form.email.data.strip(), purpose="register")
    return render_template("auth/register.html", form=form), 422 if request.method == "POST" else 200


@bp.get("/verify-email/<token>")
def verify_email(token: str):
    """Follow the confirmation link: the account can sign in from now on."""
    try:
        accounts.verify_email(token)
    except accounts.InvalidLink as exc:
        return render_template("auth/link_problem.html", message=exc.message), 400
    flash("Your email address is confirmed. Sign in to continue.", "success")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/password-reset", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RESET_RATE_LIMIT"], methods=["POST"])
def request_password_reset():
    """Ask for a reset link; the answer is the same whether or not the address has an account."""
    form = ResetRequestForm()
    if form.validate_on_submit():
        accounts.request_password_reset(form.email.data)
        return render_template("auth/check_inbox.html", email=form.email.data.strip(), purpose="reset")
    return render_template("auth/reset_request.html", form=form), 422 if request.method == "POST" else 200


@bp.route("/password-reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    """Choose a new password from a mailed link (valid an hour, once)."""
    try:
        user = accounts.user_for_reset(token)
    except accounts.InvalidLink as exc:
        return render_template("auth/link_problem.html", message=exc.message, reset=True), 400
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.reset_password(token, form.password.data)
        except accounts.InvalidLink as exc:
            return render_template("auth/link_problem.html", message=exc.message, reset=True), 400
        except ValidationFailed as exc:
            place_errors(form, exc)
        else:
            session.clear()
            logout_user()
            flash("Your password is changed and every other sign-in has ended. Sign in with the new one.",
                  "success")
            return redirect(url_for("auth.login"), code=303)
    status = 422 if request.method == "POST" else 200
    return render_template("auth/reset_password.html", form=form, email=user.email), status


@bp.errorhandler(429)
def _rate_limited(exc):
    """A sign-in, registration or reset over its limit: the same page, with the reason as a form message
    (the limiter adds Retry-After)."""
    pages = {"auth.login": ("auth/login.html", LoginForm), "auth.register": ("auth/register.html", RegisterForm),
             "auth.request_password_reset": ("auth/reset_request.html", ResetRequestForm),
             "auth.two_factor": ("auth/two_factor.html", TwoFactorForm)}
    count_rate_limited()
    if request.endpoint not in pages:
        return render_template("errors/error.html", status=429, title="Too many attempts", message=RATE_LIMITED), 429
    template, form_class = pages[request.endpoint]
    form = form_class()
    form.form_errors.append(RATE_LIMITED)
    return render_template(template, form=form, next_url=safe_next(request.args.get("next"))), 429
