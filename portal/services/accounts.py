"""Self-service accounts: registration with a confirmed address, and password reset by mailed link.

Neither tells whether an address has an account: registering a taken address answers as a new one
does (its owner gets a mail instead), and a reset request answers the same for any address.

Links are signed with SECRET_KEY (itsdangerous) and carry no state on the server:
- confirm-address links name the account and its address, valid VERIFY_HOURS;
- reset links name the account and a fingerprint of its current password hash, valid RESET_MINUTES:
  once the password changes (this reset, or any other) every earlier link is void, so each is single-use.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import ApiToken, Notification, User
from portal.models._time import utcnow
from portal.policy import SYSTEM
from portal.services import audit, notifications, sessions, users
from portal.services.errors import Conflict, ServiceError
from portal.services.uow import unit_of_work

VERIFY_HOURS = 48
RESET_MINUTES = 60
RESETS_PER_HOUR = 3          # reset mails one account receives an hour, whoever asks
VERIFY_SALT = "portal-verify-email"
RESET_SALT = "portal-password-reset"


class InvalidLink(ServiceError):
    """A confirmation or reset link that is forged, expired, or already used."""

    status = 400
    code = "invalid_link"


def _signer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _read_link(salt: str, token: str, seconds: int, expired: str, forged: str) -> dict:
    """What a link's token says, or InvalidLink with `expired` or `forged` in words."""
    try:
        data = _signer(salt).loads(token, max_age=seconds)
    except SignatureExpired as exc:
        raise InvalidLink(expired) from exc
    except BadSignature as exc:
        raise InvalidLink(forged) from exc
    return data if isinstance(data, dict) else {}


def _mails_since(user: User, kind: str, since) -> int:
    return db.session.scalar(select(func.count()).select_from(Notification).where(
        Notification.recipient_id == user.id, Notification.kind == kind, Notification.created_at > since))


# ---------------------------------------------------------------- registration

def register(name: str, email: str, password: str) -> None:
    """Create a requester account waiting for its address to be confirmed, and mail the link.

    A taken address raises nothing: its owner is told by mail, and the caller shows the same
    "check your inbox" as for a new account. Invalid input raises ValidationFailed as usual.
    """
    try:
        user = users.create_user(SYSTEM, email, name, "requester", password, verified=False)
    except Conflict:
        users.spend_hash_time(password)  # a new account's password hash takes this long: no timing tell
        existing = users.find_by_email(email)
        if existing is not None and existing.active:
            notifications.account_exists(existing, secrets.token_hex(8))
        return
    except IntegrityError:  # the same address registered at the same moment: the other one won
        db.session.rollback()
        return
    send_verification(user)


def send_verification(user: User) -> None:
    token = _signer(VERIFY_SALT).dumps({"u": user.id, "e": user.email.lower()})
    notifications.verify_email(user, notifications.link("auth.verify_email", token=token), secrets.token_hex(8),
                               VERIFY_HOURS)


def resend_verification(user: User) -> bool:
    """Mail a new confirmation link, at most one per 10 minutes; True when one was sent."""
    if _mails_since(user, "verify_email", utcnow() - timedelta(minutes=10)):
        return False
    send_verification(user)
    return True


def verify_email(token: str) -> User:
    """Confirm the address a link names; raises InvalidLink for a bad, expired or outdated link."""
    data = _read_link(VERIFY_SALT, token, VERIFY_HOURS * 3600,
                      "This confirmation link has expired. Sign in to get a new one.",
                      "This confirmation link is not valid. Copy the whole link from the email.")
    with unit_of_work():
        user = db.session.get(User, data.get("u"), with_for_update=True)
        if user is None or user.email.lower() != data.get("e") or not user.active:
            raise InvalidLink("This confirmation link is not valid any more.")
        if user.email_verified_at is None:
            user.email_verified_at = utcnow()
            audit.record(user, "user.email_verified", "user", user.id, None, {"email": user.email})
    return user


# ---------------------------------------------------------------- password reset

def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def request_password_reset(email: str) -> None:
    """Mail a reset link when the address has an active account; says nothing either way."""
    user = users.find_by_email(email)
    if user is None or not user.active:
        return
    if _mails_since(user, "password_reset", utcnow() - timedelta(hours=1)) >= RESETS_PER_HOUR:
        return  # an inbox is not to be flooded; the last links still work
    token = _signer(RESET_SALT).dumps({"u": user.id, "h": _fingerprint(user)})
    notifications.password_reset(user, notifications.link("auth.reset_password", token=token),
                                 secrets.token_hex(8), RESET_MINUTES)


def user_for_reset(token: str) -> User:
    """The account a reset link is for, while the link is valid and unused; raises InvalidLink."""
    data = _read_link(RESET_SALT, token, RESET_MINUTES * 60,
                      "This reset link has expired (links last an hour). Ask for a new one.",
                      "This reset link is not valid. Copy the whole link from the email, or ask for a new one.")
    user = db.session.get(User, data.get("u"))
    if user is None or not user.active or data.get("h") != _fingerprint(user):
        raise InvalidLink("This reset link was already used, or the password changed since. Ask for a new one.")
    return user


def reset_password(token: str, password: str) -> User:
    """Set a new password from a reset link; ends every session and revokes every API token of the account.

    The account row is locked and the link checked again under the lock, so two tabs submitting one
    link at once cannot both succeed.
    """
    user = user_for_reset(token)
    users.validate_password(password, user.email)
    with unit_of_work():
        locked = db.session.get(User, user.id, with_for_update=True, populate_existing=True)
        user_for_reset(token)  # the fingerprint again, now that nobody else can change it
        locked.password_hash = users.hash_password(password)
        locked.email_verified_at = locked.email_verified_at or utcnow()  # the link proved the address
        ended = sessions.end_all(locked.id, "password_reset")
        revoked = db.session.execute(update(ApiToken).where(ApiToken.user_id == locked.id)
                                     .values(expires_at=utcnow())).rowcount or 0
        audit.record(locked, "user.password_reset", "user", locked.id, None,
                     {"sessions_ended": ended, "tokens_revoked": revoked})
    return locked

