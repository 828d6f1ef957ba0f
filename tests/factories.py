"""Factories: make_* functions that create real rows through the services."""

from __future__ import annotations

import itertools

from portal.extensions import db
from portal.models import User
from portal.policy import SYSTEM
from portal.services import requests as svc
from portal.services import users
from tests.conftest import TEST_PASSWORD

_seq = itertools.count(1)


def make_user(role: str = "agent", email: str | None = None, name: str | None = None,
              password: str = TEST_PASSWORD, active: bool = True) -> User:
    """A user of `role`, created the way an admin would."""
    n = next(_seq)
    user = users.create_user(SYSTEM, email or f"{role}{n}@example.com", name or f"{role.title()} {n}", role, password)
    if not active:
        users.set_active(SYSTEM, user.id, False)
    return user


def make_request(requester: User | None = None, **overrides):
    """A service request raised by `requester` (a new requester by default)."""
    requester = requester or make_user("requester")
    values = {"title": "Printer is jammed", "description": "Paper stuck in tray 2.", "category": "hardware",
              "priority": "medium"}
    values.update(overrides)
    return svc.create_request(requester, **values)


def reload(obj):
    """The row as it is now in the database."""
    db.session.expire_all()
    return db.session.get(type(obj), obj.id)


def make_verified_backup(name: str, verified_at=None, size: int = 1024):
    """A catalog row for a backup that verified (for checks that judge its age, not the file)."""
    from portal.models import Backup
    from portal.models._time import utcnow

    when = verified_at or utcnow()
    row = Backup(name=name, status="verified", trigger="scheduled", created_at=when, started_at=when,
                 finished_at=when, verified_at=when, size_bytes=size, table_counts={})
    db.session.add(row)
    db.session.commit()
    return row
