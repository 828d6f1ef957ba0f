"""Two-factor sign-in with TOTP (RFC 6238, pyotp) and single-use recovery codes.

- Enrolment: a new secret is shown as a QR code (SVG made here, no outside service) and as text; it
  is saved only once the person types a code it produced, with their password. Ten recovery codes
  are then shown once; only their SHA-256 is kept.
- A code is accepted one step either side of now (30 s steps) and never twice: the step of the last
  code accepted is kept, and a code of that step or an earlier one is refused.
- Turning two-factor on or off asks for the password and a code, and ends the person's other sessions.
- REQUIRE_2FA_FOR names roles that must use it: their pages lead to the security page until they do.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import pyotp
import segno
from flask import current_app
from sqlalchemy import delete, select

from portal.extensions import db
from portal.metrics import count_auth_failure
from portal.models import RecoveryCode, User
from portal.models._time import utcnow
from portal.services import audit, sessions, users
from portal.services.errors import Conflict, ValidationFailed
from portal.services.uow import unit_of_work

ISSUER = "Service Portal"
STEP = 30
WINDOW = 1                 # steps accepted either side of now
RECOVERY_CODES = 10
CODE_RE_DIGITS = 6


def pending_secret(user: User) -> str:
    """The secret being set up for `user`: kept on the account (never in the browser's cookie) while
    two-factor is still off, made on first need; the same one until it is confirmed."""
    if user.totp_enabled_at is None and user.totp_secret:
        return user.totp_secret
    with unit_of_work():
        locked = db.session.get(User, user.id, with_for_update=True, populate_existing=True)
        if locked.totp_enabled_at is not None:
            raise Conflict("Two-factor sign-in is already on for this account.")
        if not locked.totp_secret:
            locked.totp_secret = pyotp.random_base32()
        return locked.totp_secret


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The otpauth:// URI as an inline SVG QR code (drawn here: the secret never leaves the server)."""
    return segno.make(uri, error="m").svg_inline(scale=5, border=2, dark="#1f2a30", light="#ffffff",
                                                 title="QR code for your authenticator app")


def required_for(user: User) -> bool:
    """True when the person's role must use two-factor and they have not turned it on."""
    roles = {r.strip() for r in (current_app.config.get("REQUIRE_2FA_FOR") or "").split(",") if r.strip()}
    return user.role in roles and user.totp_enabled_at is None


def _normalise(code: str | None) -> str:
    return "".join((code or "").split()).replace("-", "").lower()


def _matching_step(secret: str, code: str, last_step: int | None, now: float | None = None) -> int | None:
    """The time step whose code is `code`, within the window and after `last_step`; None otherwise."""
    if not (code.isdigit() and len(code) == CODE_RE_DIGITS):
        return None
    totp = pyotp.TOTP(secret)
    current = int((now if now is not None else time.time()) // STEP)
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(totp.at(step * STEP), code) and (last_step is None or step > last_step):
            return step
    return None


def _code_hash(code: str) -> str:
    return hashlib.sha256(_normalise(code).encode()).hexdigest()


def _new_recovery_codes(user: User) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = secrets.token_hex(5)  # 10 hex digits, shown as xxxxx-xxxxx
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_code_hash(raw)))
    return codes


def _require_password(user: User, password: str) -> None:
    if not users.check_password(user, password):
        raise ValidationFailed({"password": "That is not your password."})


def enable(user: User, code: str, password: str) -> list[str]:
    """Turn two-factor on with the secret shown at enrolment; returns the recovery codes (shown once)."""
    _require_password(user, password)
    with unit_of_work():
        locked = db.session.get(User, user.id, with_for_update=True, populate_existing=True)
        if locked.totp_enabled_at is not None:
            raise Conflict("Two-factor sign-in is already on for this account.")
        step = _matching_step(locked.totp_secret, _normalise(code), None) if locked.totp_secret else None
        if step is None:
            count_auth_failure("2fa", "invalid_code")
            raise ValidationFailed({"code": "That code does not match. Type the 6 digits your app shows now."})
        locked.totp_enabled_at, locked.totp_last_step = utcnow(), step
        codes = _new_recovery_codes(locked)
        ended = sessions.end_all(locked.id, "2fa_enabled", keep_id=sessions.current_id())
        audit.record(locked, "user.2fa_enabled", "user", locked.id, None, {"other_sessions_ended": ended})
    return codes


def disable(user: User, password: str, code: str) -> None:
    """Turn two-factor off: the password and a code (or a recovery code) of the person."""
    _require_password(user, password)
    with unit_of_work():
        locked = db.session.get(User, user.id, with_for_update=True, populate_existing=True)
        if locked.totp_enabled_at is None:
            raise Conflict("Two-factor sign-in is not on for this account.")
        if not _accept(locked, code):
            raise ValidationFailed({"code": "That code does not match (a code from your app, or a recovery code)."})
        locked.totp_secret = locked.totp_enabled_at = locked.totp_last_step = None
        db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == locked.id))
        ended = sessions.end_all(locked.id, "2fa_disabled", keep_id=sessions.current_id())
        audit.record(locked, "user.2fa_disabled", "user", locked.id, None, {"other_sessions_ended": ended})


def _accept(locked: User, code: str) -> bool:
    """Check a TOTP or recovery code for a row locked by the caller, and use it up."""
    normalised = _normalise(code)
    step = _matching_step(locked.totp_secret, normalised, locked.totp_last_step)
    if step is not None:
        locked.totp_last_step = step
        return True
    row = db.session.scalar(select(RecoveryCode).where(
        RecoveryCode.user_id == locked.id, RecoveryCode.code_hash == _code_hash(normalised),
        RecoveryCode.used_at.is_(None)).with_for_update())
    if row is not None:
        row.used_at = utcnow()
        return True
    count_auth_failure("2fa", "invalid_code")
    return False


def verify(user_id: int, code: str) -> bool:
    """The second step of a sign-in: True (and the code used up) when the code is good."""
    with unit_of_work():
        locked = db.session.get(User, user_id, with_for_update=True, populate_existing=True)
        if locked is None or locked.totp_enabled_at is None:
            return False
        return _accept(locked, code)


def recovery_codes_left(user: User) -> int:
    from sqlalchemy import func

    return db.session.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) or 0
