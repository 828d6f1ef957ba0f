"""Changing several requests at once from the list: each through the same command, policy and
version check as a change of one, each its own unit of work, so one refusal never undoes the others
and every refusal is said, request by request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from portal import policy
from portal.domain.workflow import STATUSES
from portal.models import User
from portal.paging import as_id
from portal.services.errors import ServiceError, StaleChange, ValidationFailed
from portal.services.requests.commands import _check_assignee, _check_priority, change_status, update_request

BULK_MAX = 100  # a page of the list at its largest
FIELDS = ("assignee", "status", "priority")


@dataclass
class BulkOutcome:
    """What a bulk change did: the requests changed, and each refused one with the reason."""

    changed: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)   # already so: nothing to do
    refused: list[tuple[int, str]] = field(default_factory=list)


def parse_selection(values: list[str]) -> list[tuple[int, int | None]]:
    """The list's ticked rows, each "<id>:<version the page showed>" (or a bare id), in id order."""
    picked: dict[int, int | None] = {}
    for value in values:
        raw_id, _, raw_version = str(value).partition(":")
        request_id, version = as_id(raw_id), as_id(raw_version) if raw_version else None
        if request_id is None or (raw_version and version is None):
            raise ValidationFailed({"ids": "A selected row is damaged: reload the list and select again."})
        picked[request_id] = version
    if not picked:
        raise ValidationFailed({"ids": "Select at least one request."})
    if len(picked) > BULK_MAX:
        raise ValidationFailed({"ids": f"Select at most {BULK_MAX} requests at a time."})
    return sorted(picked.items())


def _check_value(actor: User, name: str, value: Any) -> Any:
    """The change's value, checked once before any request is touched (the checks of a single change)."""
    if name == "status":
        if value not in STATUSES:
            raise ValidationFailed({"status": f"Choose one of: {', '.join(STATUSES)}."})
        return value
    if name == "priority":
        errors: dict[str, str] = {}
        _check_priority(errors, value)
        if errors:
            raise ValidationFailed(errors)
        return value
    if value == "me":
        return actor.id
    if value == "none":
        return None
    user = _check_assignee(value)
    if user is None:
        raise ValidationFailed({"assignee_id": "Choose an agent, yourself or nobody."})
    return user.id


def bulk_change(actor: User, selection: list[tuple[int, int | None]], name: str, value: Any) -> BulkOutcome:
    """Set `name` (assignee, status or priority) to `value` on each selected request."""
    policy.require(actor, "requests.triage")
    if name not in FIELDS:
        raise ValidationFailed({"action": "Choose what to change: assignee, status or priority."})
    value = _check_value(actor, name, value)
    outcome = BulkOutcome()
    for request_id, version in selection:
        try:
            if name == "status":
                req = change_status(actor, request_id, value, version)
            else:
                req = update_request(actor, request_id, {"assignee_id" if name == "assignee" else name: value},
                                     version)
        except StaleChange as exc:
            who = f" by {exc.changed_by}" if exc.changed_by else ""
            when = f" at {exc.changed_at:%H:%M} UTC" if exc.changed_at else ""
            outcome.refused.append((request_id, f"changed{who}{when} since the list was loaded"))
        except ServiceError as exc:
            outcome.refused.append((request_id, exc.message))
        else:
            # The version moves with every write: the same one means the request already was so.
            (outcome.unchanged if version is not None and req.version == version else outcome.changed).append(
                request_id)
    return outcome
