"""Who may do what: the one place role and ownership rules live.

Services ask `require(actor, "permission")` (or the object rules below) before they change
anything; routes use `permission_required` so a page refuses early with the same rule; templates
ask `can(current_user, "permission")` to decide what to show. A new rule is a new row in
PERMISSIONS, never an inline role comparison.
"""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import abort
from flask_login import current_user, login_required

from portal.domain.workflow import OPEN_STATUSES, ROLES
from portal.services.errors import Conflict, Forbidden

# Roles include the powers of those before them: requester < agent < manager < admin.
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}

# permission -> (the least role that has it, the refusal a user reads)
PERMISSIONS: dict[str, tuple[str, str]] = {
    "requests.see_all": ("agent", "Only agents can see every request."),
    "requests.triage": ("agent", "Only agents can change the priority, category or assignee."),
    "requests.internal_notes": ("agent", "Only agents can write internal notes."),
    "canned_replies.manage": ("agent", "Only agents, managers and admins can use and manage canned replies."),
    "people.see_email": ("agent", "Only staff see other people's email addresses."),
    "sla.read": ("agent", "Only agents, managers and admins can read SLA definitions and exemptions."),
    "sla.exempt": ("manager", "Only managers and admins can grant or revoke SLA exemptions."),
    "sla.reports": ("manager", "Only managers and admins can read SLA breaches and reports."),
    "sla.configure": ("admin", "Only admins can change SLA definitions and calendars."),
    "users.manage": ("admin", "Only admins can manage accounts."),
    "audit.read": ("admin", "Only admins can read the audit log."),
    "categories.manage": ("admin", "Only admins can add, retire or restore categories."),
    "jobs.manage": ("admin", "Only admins can see and retry failed background jobs."),
    "system.status": ("admin", "Only admins can see the system status."),
    "system.backups": ("admin", "Only admins can see, make, verify and download database backups."),
    "reports.export": ("manager", "Only managers and admins can export requests and run reports."),
    "exports.see_all": ("admin", "Only admins can open other people's exports."),
    "dashboard.read": ("manager", "Only managers and admins can read the dashboard."),
    "dashboard.admin": ("admin", "Only admins see the dashboard's admin notices and use its admin API."),
    "saved_views.save": ("agent", "Only agents, managers and admins can save views of the request list."),
    "saved_views.share": ("manager", "Only managers and admins can share a view with the team."),
    "saved_views.manage_any": ("admin", "Only the person who saved this view, or an admin, can change or delete it."),
}


class SystemActor:
    """The operator at the command line, the demo-data builder and background jobs.

    Passed explicitly where a service needs an actor and no person acts; audit rows record it
    as "System" (no user id). `None` is never an actor: a service given None refuses.
    """

    id = None
    role = "system"
    name = "System"
    is_authenticated = False
    is_staff = True
    active = True

    def __repr__(self) -> str:
        return "<SystemActor>"


SYSTEM = SystemActor()


def _rank(actor: Any) -> int:
    if actor is SYSTEM:
        return len(ROLES)
    if actor is None or not getattr(actor, "is_authenticated", False) or not getattr(actor, "active", False):
        return -1
    return ROLE_RANK.get(actor.role, -1)


def has_role(actor: Any, minimum: str) -> bool:
    """True when the actor's role is `minimum` or above (the system actor has every role)."""
    return _rank(actor) >= ROLE_RANK[minimum]


def can(actor: Any, permission: str) -> bool:
    """True when the actor holds `permission` (a key of PERMISSIONS)."""
    return has_role(actor, PERMISSIONS[permission][0])


def require(actor: Any, permission: str) -> None:
    """Raise Forbidden, with the permission's own message, unless the actor holds it."""
    if not can(actor, permission):
        raise Forbidden(PERMISSIONS[permission][1])


# ---------------------------------------------------------------- rules about one request

def sees_all_requests(actor: Any) -> bool:
    """Staff see every request; requesters only their own."""
    return can(actor, "requests.see_all")


def require_text_edit(actor: Any, requester_id: int, status: str) -> None:
    """Title and description: staff always; the requester of an open request."""
    if can(actor, "requests.see_all"):
        return
    if getattr(actor, "id", None) != requester_id:
        raise Forbidden("Only the requester and agents can edit this request.")
    if status not in OPEN_STATUSES:
        raise Conflict("A resolved or closed request can no longer be edited; reopen it first.")


def may_edit_text(actor: Any, requester_id: int, status: str) -> bool:
    """Whether the page should offer the title/description editor."""
    try:
        require_text_edit(actor, requester_id, status)
    except (Forbidden, Conflict):
        return False
    return True


def require_follow_up(actor: Any, requester_id: int) -> None:
    """A follow-up continues the requester's own conversation: only they open one (staff reopen instead)."""
    if getattr(actor, "id", None) != requester_id:
        raise Forbidden("Only the requester can open a follow-up to this request; agents can reopen it instead.")


# ---------------------------------------------------------------- rules about one saved view

def require_saved_view_change(actor: Any, owner_id: int) -> None:
    """A saved view is changed (renamed, shared, deleted) by the person who saved it, or by an admin."""
    if getattr(actor, "id", None) == owner_id and can(actor, "saved_views.save"):
        return
    require(actor, "saved_views.manage_any")


def may_change_saved_view(actor: Any, owner_id: int) -> bool:
    """Whether the views page should offer rename and delete for a view of `owner_id`."""
    try:
        require_saved_view_change(actor, owner_id)
    except Forbidden:
        return False
    return True


# ---------------------------------------------------------------- pages

def permission_required(permission: str):
    """Page decorator: sign-in required, then 403 unless the user holds `permission`."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not can(current_user, permission):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_permission = permission
        return wrapped

    return decorator
