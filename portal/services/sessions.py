"""Sign-in sessions kept on the server: started at sign-in, checked on every request, ended at will.

The browser's session cookie (and the "keep me signed in" cookie) hold `<user id>:<token>`; only the
token's SHA-256 is stored. A session counts while its row is not revoked, is younger than
SESSION_LIFETIME_HOURS (absolute) and was seen within SESSION_IDLE_MINUTES. Sign-out revokes the row,
so a copy of the cookie taken before stops working; a password reset, deactivation, a role change or
turning two-factor on or off revoke all of a person's sessions (but the one making the change, where
it is theirs).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, g, has_request_context, request
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import User, UserSession
from portal.models._time import utcnow

TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often per session
USER_AGENT_MAX = 200


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def idle_timeout() -> timedelta:
    return timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])


def lifetime() -> timedelta:
    return timedelta(hours=current_app.config["SESSION_LIFETIME_HOURS"])


def start(user: User, remember: bool) -> str:
    """Record a new sign-in in the current transaction; returns the id Flask-Login keeps in the cookie."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    ip = agent = None
    if has_request_context():
        ip = request.remote_addr
        agent = (request.user_agent.string or "")[:USER_AGENT_MAX] or None
    db.session.add(UserSession(user_id=user.id, token_hash=_hash(token), remember=remember, created_at=now,
                               last_seen_at=now, expires_at=now + lifetime(), ip=ip, user_agent=agent))
    return f"{user.id}:{token}"


def _split(session_id: str | None) -> tuple[int, str] | None:
    try:
        user_id, token = str(session_id or "").split(":", 1)
        return int(user_id), token
    except ValueError:
        return None


def load(session_id: str) -> User | None:
    """Flask-Login's user loader: the person of a live session, or None (signed out, expired, revoked)."""
    parts = _split(session_id)
    if parts is None or not parts[1]:
        return None
    user_id, token = parts
    found = db.session.execute(select(UserSession, User).join(User, User.id == UserSession.user_id)
                               .where(UserSession.token_hash == _hash(token))).first()
    if found is None:
        return None
    row, user = found
    now = utcnow()
    if (row.user_id != user_id or row.revoked_at is not None or now >= row.expires_at
            or now - row.last_seen_at > idle_timeout() or not user.active):
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        # Its own short transaction: the loader may run in the middle of a request's unit of work.
        with db.engine.begin() as conn:
            conn.execute(update(UserSession).where(UserSession.id == row.id).values(last_seen_at=now))
    if has_request_context():
        g.user_session_id = row.id
    return user


def end(session_id: str | None, reason: str = "signed_out") -> None:
    """Revoke one session (sign-out); the cookie's copies stop working at once."""
    parts = _split(session_id)
    if parts is None:
        return
    db.session.execute(update(UserSession).where(UserSession.token_hash == _hash(parts[1]),
                                                 UserSession.revoked_at.is_(None))
                       .values(revoked_at=utcnow(), revoked_reason=reason))
    db.session.commit()


def end_all(user_id: int, reason: str, keep_id: int | None = None) -> int:
    """Revoke a person's live sessions (but `keep_id`), in the caller's transaction; returns how many."""
    query = update(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
    if keep_id is not None:
        query = query.where(UserSession.id != keep_id)
    return db.session.execute(query.values(revoked_at=utcnow(), revoked_reason=reason)).rowcount or 0


def current_id() -> int | None:
    """The id of the session this request is signed in with (after the loader ran)."""
    return g.get("user_session_id") if has_request_context() else None


@dataclass(frozen=True)
class LiveSession:
    id: int
    created_at: datetime
    last_seen_at: datetime
    ip: str | None
    user_agent: str | None
    remember: bool
    current: bool


def live_for(user: User) -> list[LiveSession]:
    """A person's sessions that still count, newest first (for their security page)."""
    now = utcnow()
    rows = db.session.scalars(select(UserSession).where(
        UserSession.user_id == user.id, UserSession.revoked_at.is_(None), UserSession.expires_at > now,
        UserSession.last_seen_at > now - idle_timeout()).order_by(UserSession.last_seen_at.desc()))
    current = current_id()
    return [LiveSession(r.id, r.created_at, r.last_seen_at, r.ip, r.user_agent, r.remember, r.id == current)
            for r in rows]


def purge(older_than: timedelta = timedelta(days=30)) -> int:
    """Delete sessions that ended (revoked or expired) over `older_than` ago; the maintenance job calls it."""
    cutoff = utcnow() - older_than
    result = db.session.execute(UserSession.__table__.delete().where(
        (UserSession.expires_at < cutoff) | (UserSession.revoked_at < cutoff)
        | (UserSession.last_seen_at < cutoff)))
    return result.rowcount or 0
