"""People: sign-in, API tokens and the admin's user management."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, select, update

from portal import policy
from portal.domain.workflow import ROLES, STAFF_ROLES
from portal.extensions import db
from portal.metrics import count_auth_failure
from portal.models import ApiToken, User
from portal.models._time import utcnow
from portal.policy import SYSTEM, SystemActor
from portal.services import audit
from portal.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from portal.services.text import clean_text, unstorable_reason
from portal.services.uow import unit_of_work

PASSWORD_MIN = 10
PASSWORD_MAX = 256
NAME_MAX = 120
USER_AUDIT_FIELDS = ("email", "name", "role", "active")


def _hasher() -> PasswordHasher:
    cfg = current_app.config
    return PasswordHasher(
        time_cost=cfg["PASSWORD_HASH_TIME_COST"], memory_cost=cfg["PASSWORD_HASH_MEMORY_KIB"]
    )


def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return _hasher().hash(password)


def normalise_email(raw: str) -> str:
    """Validate an address and return it in canonical form; raises ValidationFailed."""
    try:
        return validate_email((raw or "").strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationFailed({"email": str(exc)}) from exc


def find_by_email(email: str) -> User | None:
    """The user with this address, ignoring case."""
    if not email or unstorable_reason(email):
        return None  # no stored address contains text PostgreSQL cannot hold
    return db.session.scalar(select(User).where(func.lower(User.email) == (email or "").strip().lower()))


def validate_password(password: str) -> None:
    """Refuse passwords too short or too long to be sensible."""
    if password and unstorable_reason(password):
        raise ValidationFailed({"password": unstorable_reason(password)})
    if not password or len(password) < PASSWORD_MIN:
        raise ValidationFailed({"password": f"Use at least {PASSWORD_MIN} characters."})
    if len(password) > PASSWORD_MAX:
        raise ValidationFailed({"password": f"Use at most {PASSWORD_MAX} characters."})


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, stamped as signed in now; None otherwise."""
    if unstorable_reason(password or ""):
        count_auth_failure("password", "malformed")
        return None  # no stored hash was made from such text
    user = find_by_email(email)
    hasher = _hasher()
    if user is None:
        # Spend the same time as a real check so response time does not reveal who exists.
        try:
            hasher.verify(_dummy_hash(), password or "x")
        except (VerificationError, InvalidHashError):
            pass
        count_auth_failure("password", "unknown_user")
        return None
    try:
        hasher.verify(user.password_hash, password or "")
    except (VerificationError, InvalidHashError):
        count_auth_failure("password", "invalid_credentials")
        return None
    if not user.active:
        count_auth_failure("password", "inactive_account")
        return None
    with unit_of_work():
        if hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hasher.hash(password)
        user.last_login_at = utcnow()
    return user


_DUMMY: dict[str, str] = {}


def _dummy_hash() -> str:
    key = f"{current_app.config['PASSWORD_HASH_TIME_COST']}:{current_app.config['PASSWORD_HASH_MEMORY_KIB']}"
    if key not in _DUMMY:
        _DUMMY[key] = _hasher().hash(secrets.token_hex(8))
    return _DUMMY[key]


def load_session_user(session_id: str) -> User | None:
    """Flask-Login's loader: the user for '<id>:<version>' if still current and active."""
    try:
        user_id, version = (int(part) for part in session_id.split(":", 1))
    except ValueError:
        return None
    user = db.session.get(User, user_id)
    if user is None or user.session_version != version or not user.active:
        return None
    return user


def create_user(actor: User | SystemActor, email: str, name: str, role: str, password: str) -> User:
    """Create an account (admins, or SYSTEM from the command line)."""
    policy.require(actor, "users.manage")
    errors: dict[str, str] = {}
    try:
        email = normalise_email(email)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    name = clean_text(errors, "name", name, NAME_MAX, missing="Enter a name.")
    if role not in ROLES:
        errors["role"] = f"Choose one of: {', '.join(ROLES)}."
    try:
        validate_password(password)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    if errors:
        raise ValidationFailed(errors)
    if find_by_email(email) is not None:
        raise Conflict("A user with this email already exists.", {"email": "This email is already in use."})
    with unit_of_work():
        user = User(email=email, name=name, role=role, password_hash=hash_password(password), active=True)
        db.session.add(user)
        db.session.flush()
        audit.record(actor, "user.created", "user", user.id, None, audit.snapshot(user, USER_AUDIT_FIELDS))
    return user


def get_user(user_id: int) -> User:
    """The user with this id; raises NotFound."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def list_users(role: str | None = None, include_inactive: bool = True) -> list[User]:
    """All users, active ones first, then by name."""
    stmt = select(User)
    if role:
        stmt = stmt.where(User.role == role)
    if not include_inactive:
        stmt = stmt.where(User.active.is_(True))
    return list(db.session.scalars(stmt.order_by(User.active.desc(), User.name)))


def list_staff() -> list[User]:
    """Active users who can be assigned requests."""
    stmt = select(User).where(User.active.is_(True), User.role.in_(STAFF_ROLES)).order_by(User.name)
    return list(db.session.scalars(stmt))


def _lock_for_account_change(actor: User | SystemActor, user_id: int) -> tuple[User, list[User]]:
    """Lock the active admins (in id order), then the target account; both read current.

    Every account change takes the admin rows first, so two admins demoting or deactivating
    each other at the same moment run one after the other: the second sees the first's change
    (and, demoted, is no longer allowed to make its own).
    """
    admins = list(db.session.scalars(
        select(User).where(User.role == "admin", User.active.is_(True)).order_by(User.id)
        .with_for_update().execution_options(populate_existing=True)))
    if actor is not SYSTEM and actor.id not in {a.id for a in admins}:
        raise Forbidden(policy.PERMISSIONS["users.manage"][1])
    user = db.session.scalar(select(User).where(User.id == user_id).with_for_update()
                             .execution_options(populate_existing=True))
    if user is None:
        raise NotFound("No such user.")
    return user, admins


def _is_last_admin(user: User, admins: list[User]) -> bool:
    return user.role == "admin" and user.active and not any(a.id != user.id for a in admins)


def set_active(actor: User | SystemActor, user_id: int, active: bool) -> User:
    """Deactivate (signing out every session and token) or reactivate an account."""
    policy.require(actor, "users.manage")
    with unit_of_work():
        user, admins = _lock_for_account_change(actor, user_id)
        if user.active == active:
            return user
        if not active:
            if actor.id == user.id:
                raise Forbidden("You cannot deactivate your own account.")
            if _is_last_admin(user, admins):
                raise Conflict("The last active admin cannot be deactivated.")
        before = audit.snapshot(user, USER_AUDIT_FIELDS)
        user.active = active
        user.session_version += 1
        if not active:
            db.session.execute(
                update(ApiToken).where(ApiToken.user_id == user.id).values(expires_at=utcnow())
            )
        audit.record(actor, "user.activated" if active else "user.deactivated", "user", user.id,
                     before, audit.snapshot(user, USER_AUDIT_FIELDS))
    return user


def change_role(actor: User | SystemActor, user_id: int, role: str) -> User:
    """Give a user another role; the last active admin keeps theirs."""
    policy.require(actor, "users.manage")
    if role not in ROLES:
        raise ValidationFailed({"role": f"Choose one of: {', '.join(ROLES)}."})
    with unit_of_work():
        user, admins = _lock_for_account_change(actor, user_id)
        if user.role == role:
            return user
        if _is_last_admin(user, admins):
            raise Conflict("The last active admin must stay an admin.")
        before = audit.snapshot(user, USER_AUDIT_FIELDS)
        user.role = role
        audit.record(actor, "user.role_changed", "user", user.id, before, audit.snapshot(user, USER_AUDIT_FIELDS))
    return user


def _token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(user: User) -> tuple[str, ApiToken]:
    """A new bearer token for `user`; the raw value is returned once and stored only hashed."""
    raw = secrets.token_urlsafe(32)
    ttl = timedelta(hours=current_app.config["API_TOKEN_TTL_HOURS"])
    with unit_of_work():
        token = ApiToken(user_id=user.id, token_hash=_token_digest(raw), expires_at=utcnow() + ttl)
        db.session.add(token)
    return raw, token


def user_for_token(raw: str) -> User | None:
    """The active user holding this unexpired token, or None."""
    if not raw or len(raw) > 200:
        count_auth_failure("token", "missing" if not raw else "malformed")
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_digest(raw)))
    if token is None or token.expires_at <= utcnow() or not token.user.active:
        count_auth_failure("token", "unknown_token" if token is None else
                           "expired" if token.expires_at <= utcnow() else "inactive_account")
        return None
    return token.user


def purge_expired_tokens() -> int:
    """Delete tokens that expired over a day ago; returns how many."""
    cutoff = utcnow() - timedelta(days=1)
    with unit_of_work():
        result = db.session.execute(ApiToken.__table__.delete().where(ApiToken.expires_at < cutoff))
    return result.rowcount or 0
