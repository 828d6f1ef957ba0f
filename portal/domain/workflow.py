"""The service request status workflow: which moves are allowed and what each move means."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

STATUSES = ("open", "in_progress", "waiting_on_customer", "resolved", "closed")
PRIORITIES = ("low", "medium", "high", "critical")
ROLES = ("requester", "agent", "manager", "admin")
STAFF_ROLES = ("agent", "manager", "admin")

# Most urgent first: critical 0, high 1, medium 2, low 3.
PRIORITY_RANK = {p: i for i, p in enumerate(reversed(PRIORITIES))}

STATUS_LABELS = {
    "open": "Open",
    "in_progress": "In progress",
    "waiting_on_customer": "Waiting on customer",
    "resolved": "Resolved",
    "closed": "Closed",
}
PRIORITY_LABELS = {"low": "Low", "medium": "Medium", "high": "High", "critical": "Critical"}
ROLE_LABELS = {"requester": "Requester", "agent": "Agent", "manager": "Manager", "admin": "Admin"}

# Staff moves. closed -> open is a reopen; open -> closed (closing without resolving) is refused.
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"in_progress", "waiting_on_customer", "resolved"}),
    "in_progress": frozenset({"open", "waiting_on_customer", "resolved"}),
    "waiting_on_customer": frozenset({"open", "in_progress", "resolved"}),
    "resolved": frozenset({"open", "in_progress", "closed"}),
    "closed": frozenset({"open"}),
}

# A requester may only confirm a resolution (close it) or reopen their own request.
REQUESTER_TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset(),
    "in_progress": frozenset(),
    "waiting_on_customer": frozenset(),
    "resolved": frozenset({"closed", "open"}),
    "closed": frozenset(),  # final for its requester: more to say starts a follow-up request (reply_outcome)
}

OPEN_STATUSES = frozenset({"open", "in_progress", "waiting_on_customer"})

# The usual next step from each status: offered first, as the primary button.
SUGGESTED_NEXT = {
    "open": "in_progress",
    "in_progress": "resolved",
    "waiting_on_customer": "in_progress",
    "resolved": "closed",
    "closed": "open",
}


class TransitionError(ValueError):
    """A status change the workflow does not allow."""

    def __init__(self, current: str, target: str, reason: str):
        super().__init__(reason)
        self.current = current
        self.target = target
        self.reason = reason


def is_staff(role: str) -> bool:
    """Agents, managers and admins work requests; requesters only raise them."""
    return role in STAFF_ROLES


def allowed_transitions(current: str, role: str) -> list[str]:
    """Statuses the given role may move a request to from `current`, the usual next step first."""
    table = TRANSITIONS if is_staff(role) else REQUESTER_TRANSITIONS
    targets = table.get(current, frozenset())
    ordered = [s for s in STATUSES if s in targets]
    suggested = SUGGESTED_NEXT.get(current)
    if suggested in ordered:
        ordered.remove(suggested)
        ordered.insert(0, suggested)
    return ordered


def check_transition(current: str, target: str, role: str) -> None:
    """Raise TransitionError unless `role` may move a request from `current` to `target`."""
    if target not in STATUSES:
        raise TransitionError(current, target, f"'{target}' is not a status")
    if current == target:
        raise TransitionError(current, target, f"The request is already {STATUS_LABELS[current].lower()}.")
    if target in allowed_transitions(current, role):
        return
    if current == "open" and target == "closed":
        reason = "An open request cannot be closed without being resolved first."
    elif not is_staff(role) and current == "closed":
        reason = "A closed request stays closed: open a follow-up request linked to it instead."
    elif not is_staff(role):
        reason = "Requesters can only close a resolved request or reopen their own request."
    else:
        reason = (
            f"A request cannot move from {STATUS_LABELS[current].lower()} "
            f"to {STATUS_LABELS[target].lower()}."
        )
    raise TransitionError(current, target, reason)


@dataclass(frozen=True)
class Timestamps:
    """The lifecycle timestamps a status change may set or clear."""

    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None


def apply_transition(current: str, target: str, stamps: Timestamps, now: datetime) -> Timestamps:
    """Lifecycle timestamps after moving from `current` to `target` at `now`."""
    first_response_at = stamps.first_response_at
    resolved_at = stamps.resolved_at
    closed_at = stamps.closed_at
    if target == "in_progress" and first_response_at is None:
        first_response_at = now
    if target == "resolved":
        resolved_at = now
        closed_at = None
    elif target == "closed":
        resolved_at = resolved_at or now
        closed_at = now
    elif target in OPEN_STATUSES:
        # A reopen clears the resolution so the request reads as live again.
        resolved_at = None
        closed_at = None
    return Timestamps(first_response_at, resolved_at, closed_at)


@dataclass(frozen=True)
class ReplyOutcome:
    """What a public reply does to a request: whether it is taken, and the status it leaves."""

    accepted: bool
    status: str
    reopens: bool = False  # a resolved request back at work: its resolution is cleared, its SLA clock resumes


def reply_outcome(current: str, author_role: str) -> ReplyOutcome:
    """What a reply by `author_role` does to a request in `current`.

    A requester answering a request that waits on them gives it back to the agents; answering a
    resolved one says the fix did not hold, so it reopens. A closed request takes no more replies
    from its requester: what they add starts a follow-up request linked to it. Staff replies move
    nothing (staff change the status with its own buttons) and are taken in any status.
    """
    if is_staff(author_role):
        return ReplyOutcome(True, current)
    if current == "closed":
        return ReplyOutcome(False, current)
    if current == "resolved":
        return ReplyOutcome(True, "open", reopens=True)
    if current == "waiting_on_customer":
        return ReplyOutcome(True, "in_progress")
    return ReplyOutcome(True, current)


def is_first_response(author_role: str, internal: bool, first_response_at: datetime | None) -> bool:
    """The first public comment from staff counts as the first response."""
    return first_response_at is None and is_staff(author_role) and not internal


def action_label(current: str, target: str) -> str:
    """The verb on the button that moves a request from `current` to `target`."""
    if target in OPEN_STATUSES and current in ("resolved", "closed"):
        return "Reopen" if target == "open" else "Reopen and work on it"
    return {
        "open": "Back to open",
        "in_progress": "Start work",
        "waiting_on_customer": "Wait on customer",
        "resolved": "Resolve",
        "closed": "Close (confirm resolution)",
    }[target]
