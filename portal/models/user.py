"""People who use the portal, and the API tokens they hold."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.domain.workflow import ROLE_LABELS, ROLES, is_staff
from portal.extensions import db
from portal.models._time import utcnow


class User(UserMixin, db.Model):
    """A requester, agent, manager or admin. Email is unique regardless of case."""

    __tablename__ = "user"
    __table_args__ = (
        CheckConstraint(f"role IN ({', '.join(repr(r) for r in ROLES)})", name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False, default="requester")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # None until a self-registered person follows the link mailed to them; admins' accounts start confirmed.
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Two-factor sign-in (portal/services/two_factor.py): the TOTP secret, when it was turned on, and
    # the last time step accepted, so a code is never accepted twice.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)

    def get_id(self) -> str:
        """Flask-Login's session id: `<id>:<token>` of the server-side session `sessions.start` made at
        sign-in (kept as `session_key`); without one nothing can sign in (the loader refuses "<id>:")."""
        return self.__dict__.get("session_key") or f"{self.id}:"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    @property
    def is_staff(self) -> bool:
        return is_staff(self.role)

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


Index("uq_user_email_lower", func.lower(User.email), unique=True)


class ApiToken(db.Model):
    """A bearer token for the JSON API; only its SHA-256 digest is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()


class RecoveryCode(db.Model):
    """One of the ten single-use codes that sign in when the authenticator is lost; only a hash is kept."""

    __tablename__ = "recovery_code"
    __table_args__ = (UniqueConstraint("user_id", "code_hash", name="uq_recovery_code_user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), nullable=False)
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
