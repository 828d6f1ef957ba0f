"""Writes the audit trail inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from portal.extensions import db
from portal.models import AuditLog, User
from portal.observability import current_request_context


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def snapshot(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """The named attributes of `obj` as a JSON-ready dict."""
    return {f: _jsonable(getattr(obj, f)) for f in fields}


def record(
    actor: User | None,
    action: str,
    entity_type: str,
    entity_id: int,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditLog:
    """Add one audit row to the session; the caller's commit writes it with the change."""
    ctx = current_request_context()
    entry = AuditLog(
        actor_id=actor.id if actor else None,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        before=before,
        after=after,
        ip=ctx.ip,
        correlation_id=ctx.correlation_id,
    )
    db.session.add(entry)
    return entry


def record_changes(actor: User | None, action: str | Callable[[set[str]], str], entity_type: str, entity_id: int,
                   before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """One audit row with only the fields that changed (before and after); nothing when none did.

    `action` may be a function of the changed field names (e.g. "assigned" when only the
    assignee changed). Returns the names of the changed fields.
    """
    changed = {k for k in after if after[k] != before.get(k)}
    if changed:
        name = action(changed) if callable(action) else action
        record(actor, name, entity_type, entity_id, {k: before.get(k) for k in changed},
               {k: after[k] for k in changed})
    return changed
