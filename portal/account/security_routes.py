"""/account/security: password, two-factor sign-in, the person's sessions and API tokens.

Plain forms that post and redirect (each change is rare and deliberate); the password is asked again
for the changes that matter (the password itself and two-factor).
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portal.account import bp
from portal.auth.forms import ChangePasswordForm, DisableTwoFactorForm, EnableTwoFactorForm
from portal.forms import EmptyForm, place_errors
from portal.htmx import form_done, form_refused
from portal.services import sessions, two_factor, users
from portal.services.errors import ServiceError, ValidationFailed

# Where a person whose role must use two-factor may go before they have turned it on.
OPEN_WHILE_ENROLLING = {"account.security", "account.setup_two_factor", "auth.logout", "auth.login", "static",
                        "health.health", "health.live", "health.ready"}


def _back():
    return url_for("account.security")


def _context(**extra) -> dict:
    return {
        "form": EmptyForm(),
        "password_form": extra.pop("password_form", None) or ChangePasswordForm(),
        "disable_form": extra.pop("disable_form", None) or DisableTwoFactorForm(),
        "live_sessions": sessions.live_for(current_user),
        "tokens": users.live_tokens(current_user),
        "codes_left": two_factor.recovery_codes_left(current_user) if current_user.totp_enabled_at else 0,
        "must_enrol": two_factor.required_for(current_user),
        **extra,
    }


@bp.before_app_request
def _two_factor_required():
    """Roles in REQUIRE_2FA_FOR go to the security page until they have turned two-factor on."""
    if not current_user.is_authenticated or request.endpoint in OPEN_WHILE_ENROLLING:
        return None
    if request.endpoint and request.endpoint.startswith(("api.", "dashboard_api.", "health.")):
        return None  # bearer tokens: the token endpoint refuses such accounts until they enrol
    if two_factor.required_for(current_user):
        flash("Your role signs in with two-factor: turn it on to continue.", "info")
        return redirect(url_for("account.setup_two_factor"))
    return None


@bp.get("/account/security")
@login_required
def security():
    return render_template("account/security.html", **_context())


@bp.post("/account/security/password")
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            ended = users.change_password(current_user, form.current.data, form.password.data)
        except ValidationFailed as exc:
            place_errors(form, exc)
        else:
            others = f" {ended} other sign-in{'s' if ended != 1 else ''} ended." if ended else ""
            flash(f"Your password is changed.{others}", "success")
            return redirect(_back(), code=303)
    return render_template("account/security.html", **_context(password_form=form)), 422


@bp.route("/account/security/two-factor", methods=["GET", "POST"])
@login_required
def setup_two_factor():
    """Show a new secret as a QR code; turn two-factor on once a code from it and the password match."""
    if current_user.totp_enabled_at is not None:
        return redirect(_back())
    secret = two_factor.pending_secret(current_user)
    form = EnableTwoFactorForm()
    status = 200
    if form.validate_on_submit():
        try:
            codes = two_factor.enable(current_user, form.code.data, form.password.data)
        except ValidationFailed as exc:
            place_errors(form, exc)
            status = 422
        except ServiceError as exc:
            return form_refused(exc, _back())
        else:
            # Shown once, now; only their hashes are kept.
            return render_template("account/recovery_codes.html", codes=codes)
    elif request.method == "POST":
        status = 422
    uri = two_factor.provisioning_uri(current_user, secret)
    return render_template("account/two_factor_setup.html", form=form, secret=secret, qr=two_factor.qr_svg(uri),
                           must_enrol=two_factor.required_for(current_user)), status


@bp.post("/account/security/two-factor/off")
@login_required
def disable_two_factor():
    form = DisableTwoFactorForm()
    if form.validate_on_submit():
        try:
            two_factor.disable(current_user, form.password.data, form.code.data)
        except ValidationFailed as exc:
            place_errors(form, exc)
        except ServiceError as exc:
            return form_refused(exc, _back())
        else:
            return form_done("Two-factor sign-in is off. Your other sign-ins were ended.", _back())
    return render_template("account/security.html", **_context(disable_form=form)), 422


@bp.post("/account/security/sessions/end-others")
@login_required
def end_other_sessions():
    if not EmptyForm().validate_on_submit():
        return form_refused(ValidationFailed({"form": "The form expired. Reload the page and try again."}), _back())
    from portal.extensions import db

    ended = sessions.end_all(current_user.id, "ended_by_owner", keep_id=sessions.current_id())
    db.session.commit()
    return form_done(f"Signed out everywhere else ({ended} sign-in{'s' if ended != 1 else ''}).", _back())


@bp.post("/account/security/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    try:
        if not EmptyForm().validate_on_submit():
            raise ValidationFailed({"form": "The form expired. Reload the page and try again."})
        users.revoke_token(current_user, token_id)
    except ServiceError as exc:
        return form_refused(exc, _back())
    return form_done("The token is revoked: it no longer works.", _back())
