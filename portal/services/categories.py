"""Request categories: the defaults every portal starts with, and the ones admins add."""

from __future__ import annotations

import re

from flask import g, has_request_context
from sqlalchemy import func, select

from portal import policy
from portal.extensions import db
from portal.models import Category, User
from portal.policy import SystemActor
from portal.services import audit
from portal.services.errors import Conflict, NotFound, ValidationFailed
from portal.services.text import clean_text
from portal.services.uow import unit_of_work

NAME_MAX = 80
_CACHE = "_categories"  # flask.g: this web request's categories

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


CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{1,39}$")


def list_all() -> list[Category]:
    """Every category, active and retired, in display order: read once per web request (the list's
    filter, its rows and the validation of a filter all ask), again after a change of them."""
    if has_request_context() and _CACHE in g:
        return g.get(_CACHE)
    rows = list(db.session.scalars(select(Category).order_by(Category.sort_order, Category.name)))
    if has_request_context():
        setattr(g, _CACHE, rows)
    return rows


def names() -> dict[str, str]:
    """Category code -> the name people read."""
    return {c.code: c.name for c in list_all()}


def _changed() -> None:
    """Categories changed in this request: read them afresh."""
    if has_request_context():
        g.pop(_CACHE, None)


def create_category(actor: User | SystemActor, code: str, name: str, sort_order: int | None = None) -> Category:
    """Add a category; requests and SLA definitions can use it at once."""
    policy.require(actor, "categories.manage")
    code = (code or "").strip().lower() if isinstance(code, str) else ""
    errors: dict[str, str] = {}
    if not CODE_PATTERN.match(code):
        errors["code"] = "Use 2-40 lowercase letters, digits, - or _, starting with a letter (e.g. facilities)."
    name = clean_text(errors, "name", name, NAME_MAX, missing="Enter a name.")
    if errors:
        raise ValidationFailed(errors)
    if db.session.get(Category, code) is not None:
        raise Conflict(f"A category with the code '{code}' already exists.", {"code": "This code is in use."})
    if sort_order is None:
        sort_order = (db.session.scalar(select(func.max(Category.sort_order))) or 0) + 10
    with unit_of_work():
        category = Category(code=code, name=name, sort_order=sort_order, active=True)
        db.session.add(category)
        # Categories are keyed by their code (in the before/after), not by a number.
        audit.record(actor, "category.created", "category", 0, None, {"code": code, "name": name})
    _changed()
    return category


def set_active(actor: User | SystemActor, code: str, active: bool) -> Category:
    """Retire a category (existing requests keep it; new requests cannot choose it) or bring it back."""
    policy.require(actor, "categories.manage")
    with unit_of_work():
        category = db.session.get(Category, code, with_for_update=True, populate_existing=True)
        if category is None:
            raise NotFound(f"No category '{code}'.")
        if category.active != active:
            category.active = active
            audit.record(actor, "category.activated" if active else "category.retired", "category", 0,
                         {"code": code, "active": not active}, {"code": code, "active": active})
    _changed()
    return category
