"""Request categories: the defaults every portal starts with."""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.models import Category

DEFAULT_CATEGORIES = (
    ("hardware", "Hardware", 10),
    ("software", "Software", 20),
    ("network", "Network", 30),
    ("access", "Access", 40),
    ("other", "Other", 90),
)


def ensure_default_categories() -> None:
    """Insert the default categories that are missing (the migration seeds them too)."""
    existing = set(db.session.scalars(select(Category.code)))
    for code, name, order in DEFAULT_CATEGORIES:
        if code not in existing:
            db.session.add(Category(code=code, name=name, sort_order=order, active=True))
    db.session.flush()
