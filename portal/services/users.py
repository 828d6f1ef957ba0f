"""People: sign-in, API tokens and the admin's user management."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask import current_app, g, has_request_context
from sqlalchemy import func, select, update

from portal import policy
from portal.config import PROJECT_ROOT
from portal.domain.workflow import ROLE_LABELS, ROLES, STAFF_ROLES
from portal.extensions import db
from portal.metrics import count_auth_failure
from portal.models import ApiToken, User
from portal.models._time import utcnow
from portal.policy import SYSTEM, SystemActor
from portal.services import audit, sessions
from portal.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from portal.services.text import clean_text, unstorable_reason
from portal.services.uow import unit_of_work

PASSWORD_MIN = 12
COMMON_PASSWORDS_FILE = PROJECT_ROOT / "portal" / "data" / "common_passwords.txt"
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


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of the most common passwords, lower-cased."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def validate_password(password: str, email: str | None = None) -> None:
    """Refuse passwords too short or too long, the account's email (or its name part), or a common one."""
    if password and unstorable_reason(password):
        raise ValidationFailed({"password": unstorable_reason(password)})
    if not password or len(password) < PASSWORD_MIN:
        raise ValidationFailed({"password": f"Use at least {PASSWORD_MIN} characters."})
    if len(password) > PASSWORD_MAX:
        raise ValidationFailed({"password": f"Use at most {PASSWORD_MAX} characters."})
    folded = password.strip().lower()
    if email and folded in {email.strip().lower(), email.strip().lower().split("@", 1)[0]}:
        raise ValidationFailed({"password": "Do not use your email address as your password."})
    if folded in common_passwords():
        raise ValidationFailed({"password": "That is one of the most common passwords, the first an attacker "
                                            "tries. Choose another (a few unrelated words make a good one)."})


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, stamped as signed in now; None otherwise."""
    if unstorable_reason(password or ""):
        count_auth_failure("password", "malformed")
        return None  # no stored hash was made from such text
    user = find_by_email(email)
    hasher = _hasher()
    if user is None:
        spend_hash_time(password)
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
    if user.email_verified_at is None:
        count_auth_failure("password", "unverified")
        raise EmailNotVerified(user)
    with unit_of_work():
        if hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hasher.hash(password)
        user.last_login_at = utcnow()
    return user


class EmailNotVerified(Forbidden):
    """The password is right but the address was never confirmed (self-registered accounts)."""

    code = "email_not_verified"

    def __init__(self, user: User):
        super().__init__("Confirm your email address first: follow the link we mailed you. "
                         "Signing in on the page sends a new link.")
        self.user = user


def check_password(user: User, password: str) -> bool:
    """True when `password` is the person's (for changes that ask for it again)."""
    if not password or unstorable_reason(password):
        return False
    try:
        return _hasher().verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def change_password(user: User, current: str, new: str) -> int:
    """Change one's own password (the current one asked again); ends the person's other sessions."""
    if not check_password(user, current):
        raise ValidationFailed({"current": "That is not your current password."})
    validate_password(new, user.email)
    with unit_of_work():
        locked = db.session.get(User, user.id, with_for_update=True, populate_existing=True)
        locked.password_hash = hash_password(new)
        ended = sessions.end_all(locked.id, "password_changed", keep_id=sessions.current_id())
        audit.record(locked, "user.password_changed", "user", locked.id, None, {"other_sessions_ended": ended})
    return ended


def spend_hash_time(password: str | None = None) -> None:
    """Spend a real password check's time on nothing, so timing never tells whether an account exists."""
    try:
        _hasher().verify(_dummy_hash(), password or "x")
    except (VerificationError, InvalidHashError):
        pass


_DUMMY: dict[str, str] = {}


def _dummy_hash() -> str:
    key = f"{current_app.config['PASSWORD_HASH_TIME_COST']}:{current_app.config['PASSWORD_HASH_MEMORY_KIB']}"
    if key not in _DUMMY:
        _DUMMY[key] = _hasher().hash(secrets.token_hex(8))
    return _DUMMY[key]


def create_user(actor: User | SystemActor, email: str, name: str, role: str, password: str,
                verified: bool = True) -> User:
    """Create an account (admins, or SYSTEM from the command line and registration, which passes
    `verified=False`: the person confirms the address by the mailed link before signing in)."""
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
        validate_password(password, email)
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
        if not verified:  # the column's default (confirmed now) suits every other way an account is made
            user.email_verified_at = None
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


def _account_for_change(actor: User | SystemActor, user_id: int, lock: bool = True) -> tuple[User, list[User]]:
    """The active admins (in id order), then the target account; both read current, and locked with `lock`.

    Every account change takes the admin rows first, so two admins demoting or deactivating
    each other at the same moment run one after the other: the second sees the first's change
    (and, demoted, is no longer allowed to make its own). The confirmation step reads the same
    rows without locks, to ask the same rules before anything is changed.
    """
    admins_stmt = select(User).where(User.role == "admin", User.active.is_(True)).order_by(User.id)
    user_stmt = select(User).where(User.id == user_id)
    if lock:
        admins_stmt, user_stmt = admins_stmt.with_for_update(), user_stmt.with_for_update()
    admins = list(db.session.scalars(admins_stmt.execution_options(populate_existing=True)))
    if actor is not SYSTEM and actor.id not in {a.id for a in admins}:
        raise Forbidden(policy.PERMISSIONS["users.manage"][1])
    user = db.session.scalar(user_stmt.execution_options(populate_existing=True))
    if user is None:
        raise NotFound("No such user.")
    return user, admins


def _is_last_admin(user: User, admins: list[User]) -> bool:
    return user.role == "admin" and user.active and not any(a.id != user.id for a in admins)


def _changed_since(actor: User | SystemActor, user: User, now: str, expected: str,
                   actions: tuple[str, ...]) -> Conflict:
    who = audit.who_changed("user", user.id, actions, getattr(actor, "id", None))
    return Conflict(f"{user.name} is {now} now, not {expected}: {who}. Nothing was changed.")


def _refuse_active_change(actor: User | SystemActor, user: User, admins: list[User], active: bool,
                          expected_active: bool | None) -> None:
    """Raise why `actor` may not make `user` active (or inactive) now; the one place these rules live."""
    if expected_active is not None and user.active != expected_active:
        state = {True: "active", False: "deactivated"}
        raise _changed_since(actor, user, state[user.active], state[expected_active],
                             ("user.activated", "user.deactivated"))
    if not active and user.active:
        if actor.id == user.id:
            raise Forbidden("You cannot deactivate your own account.")
        if _is_last_admin(user, admins):
            raise Conflict("The last active admin cannot be deactivated.")


def _refuse_role_change(actor: User | SystemActor, user: User, admins: list[User], role: str,
                        expected_role: str | None) -> None:
    """Raise why `actor` may not give `user` the role `role` now; the one place these rules live."""
    if expected_role is not None and user.role != expected_role:
        raise _changed_since(actor, user, ROLE_LABELS[user.role].lower(),
                             ROLE_LABELS.get(expected_role, expected_role).lower(), ("user.role_changed",))
    if role != user.role and _is_last_admin(user, admins):
        raise Conflict("The last active admin must stay an admin.")


def check_set_active(actor: User | SystemActor, user_id: int, active: bool,
                     expected_active: bool | None = None) -> User:
    """The account, when `set_active` would change it now; the same refusal otherwise (nothing is written).

    The confirmation step asks this first, so a change that would be refused says so before "Confirm".
    """
    policy.require(actor, "users.manage")
    user, admins = _account_for_change(actor, user_id, lock=False)
    _refuse_active_change(actor, user, admins, active, expected_active)
    if user.active == active:
        raise Conflict(f"{user.name} is already {'active' if active else 'deactivated'}: there is nothing to change.")
    return user


def set_active(actor: User | SystemActor, user_id: int, active: bool, expected_active: bool | None = None) -> User:
    """Deactivate (signing out every session and token) or reactivate an account.

    With `expected_active`, the account must still be in that state (the one the admin confirmed,
    or an audit entry's "after"): otherwise the change is refused, never applied on top.
    """
    policy.require(actor, "users.manage")
    with unit_of_work():
        user, admins = _account_for_change(actor, user_id)
        _refuse_active_change(actor, user, admins, active, expected_active)
        if user.active == active:
            return user
        before = audit.snapshot(user, USER_AUDIT_FIELDS)
        user.active = active
        sessions.end_all(user.id, "deactivated" if not active else "reactivated")
        if not active:
            db.session.execute(
                update(ApiToken).where(ApiToken.user_id == user.id).values(expires_at=utcnow())
            )
        audit.record(actor, "user.activated" if active else "user.deactivated", "user", user.id,
                     before, audit.snapshot(user, USER_AUDIT_FIELDS))
    return user


def _valid_role(role: str) -> None:
    if role not in ROLES:
        raise ValidationFailed({"role": f"Choose one of: {', '.join(ROLES)}."})


def check_role_change(actor: User | SystemActor, user_id: int, role: str, expected_role: str | None = None) -> User:
    """The account, when `change_role` would give it `role` now; the same refusal otherwise (nothing is written)."""
    policy.require(actor, "users.manage")
    _valid_role(role)
    user, admins = _account_for_change(actor, user_id, lock=False)
    _refuse_role_change(actor, user, admins, role, expected_role)
    if user.role == role:
        raise ValidationFailed({"role": f"{user.name} is already {ROLE_LABELS[role].lower()}: choose another role."})
    return user


def change_role(actor: User | SystemActor, user_id: int, role: str, expected_role: str | None = None) -> User:
    """Give a user another role; the last active admin keeps theirs.

    With `expected_role`, the account must still have that role (the one the admin confirmed a
    change from, or an audit entry's "after"): otherwise the change is refused.
    """
    policy.require(actor, "users.manage")
    _valid_role(role)
    with unit_of_work():
        user, admins = _account_for_change(actor, user_id)
        _refuse_role_change(actor, user, admins, role, expected_role)
        if user.role == role:
            return user
        before = audit.snapshot(user, USER_AUDIT_FIELDS)
        user.role = role
        # New privileges start with a new sign-in: no session keeps the old role's standing.
        sessions.end_all(user.id, "role_changed")
        audit.record(actor, "user.role_changed", "user", user.id, before, audit.snapshot(user, USER_AUDIT_FIELDS))
    return user


def _token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


TOKEN_LIVE_MAX = 20                       # live tokens one account may hold
TOKEN_TOUCH_EVERY = timedelta(seconds=60)  # last_used_at is written at most this often per token


def issue_token(user: User) -> tuple[str, ApiToken]:
    """A new bearer token for `user`; the raw value is returned once and stored only hashed.

    At most TOKEN_LIVE_MAX live tokens per account (counted under a lock on the account, so two
    mints at once cannot both take the last place): a script minting a token per run is told to
    reuse or revoke, rather than piling up credentials.
    """
    raw = secrets.token_urlsafe(32)
    ttl = timedelta(hours=current_app.config["API_TOKEN_TTL_HOURS"])
    with unit_of_work():
        db.session.execute(select(User.id).where(User.id == user.id).with_for_update())
        live = db.session.scalar(select(func.count()).select_from(ApiToken).where(
            ApiToken.user_id == user.id, ApiToken.expires_at > utcnow()))
        if live >= TOKEN_LIVE_MAX:
            raise Conflict(f"This account already has {live} live API tokens, the most it may hold. Revoke one "
                           "you no longer use (GET /api/v1/auth/tokens, then DELETE /api/v1/auth/tokens/<id>).")
        token = ApiToken(user_id=user.id, token_hash=_token_digest(raw), expires_at=utcnow() + ttl)
        db.session.add(token)
    return raw, token


def live_tokens(actor: User, user_id: int | None = None) -> list[ApiToken]:
    """Unexpired tokens of the actor (or, for admins, of `user_id`), newest first."""
    owner = actor.id if user_id is None else user_id
    if owner != actor.id:
        policy.require(actor, "users.manage")
    return list(db.session.scalars(select(ApiToken).where(ApiToken.user_id == owner, ApiToken.expires_at > utcnow())
                                   .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def token_summary() -> dict[int, tuple[int, datetime | None]]:
    """Per person with live tokens: how many, and when one was last used (one GROUP BY)."""
    rows = db.session.execute(select(ApiToken.user_id, func.count(), func.max(ApiToken.last_used_at))
                              .where(ApiToken.expires_at > utcnow()).group_by(ApiToken.user_id))
    return {user_id: (count, last) for user_id, count, last in rows}


def revoke_all_tokens(actor: User, user_id: int) -> int:
    """An admin revokes every token of a person (a lost laptop, a leaked script); audited."""
    policy.require(actor, "users.manage")
    with unit_of_work():
        user = get_user(user_id)
        revoked = db.session.execute(update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.expires_at > utcnow())
                                     .values(expires_at=utcnow())).rowcount or 0
        if revoked:
            audit.record(actor, "token.revoked_all", "user", user.id, {"live_tokens": revoked}, None)
    return revoked


def revoke_token(actor: User, token_id: int) -> None:
    """Delete a token at once: the actor's own, or anyone's for an admin; recorded in the audit log."""
    with unit_of_work():
        token = db.session.get(ApiToken, token_id, with_for_update=True)
        if token is None or (token.user_id != actor.id and not policy.can(actor, "users.manage")):
            raise NotFound("There is no such token.")
        audit.record(actor, "token.revoked", "user", token.user_id,
                     {"token_id": token.id, "created_at": token.created_at.isoformat()}, None)
        db.session.delete(token)


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
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_EVERY:
        # Its own short transaction: the request's unit of work has not begun and must not carry it.
        with db.engine.begin() as conn:
            conn.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
    if has_request_context():
        g.api_token_id = token.id
    return token.user


def purge_expired_tokens() -> int:
    """Delete tokens that expired over a day ago, and sign-in sessions that ended a month ago; returns how many."""
    cutoff = utcnow() - timedelta(days=1)
    with unit_of_work():
        result = db.session.execute(ApiToken.__table__.delete().where(ApiToken.expires_at < cutoff))
        ended = sessions.purge()
    return (result.rowcount or 0) + ended
