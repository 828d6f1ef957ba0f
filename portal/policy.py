"""Who may use which page: the one place role checks live."""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required

from portal.domain.workflow import ROLES

# Roles that include the powers of others: an admin is also a manager and an agent.
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}


def has_role(user, minimum: str) -> bool:
    """True when the user's role is `minimum` or above (requester < agent < manager < admin)."""
    return bool(user and user.is_authenticated and ROLE_RANK[user.role] >= ROLE_RANK[minimum])


def role_required(minimum: str):
    """Page decorator: sign-in required, then 403 unless the role is `minimum` or above."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not has_role(current_user, minimum):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_role = minimum
        return wrapped

    return decorator
