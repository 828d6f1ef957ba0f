"""Canned replies: the staff's shared library of reply templates, and filling one in for a request.

A body may name the placeholders in PLACEHOLDERS (`{requester_name}`, `{request_number}`,
`{agent_name}`); anything else in braces is refused when the reply is saved, so a typo never reaches
a requester as "{requestor_name}". Filling in is a plain substitution (never str.format, which would
read attributes), done for one request and the agent who sends it.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from portal import policy
from portal.extensions import db
from portal.models import CannedReply, User
from portal.models._time import utcnow
from portal.models.canned_reply import CANNED_BODY_MAX, CANNED_TITLE_MAX
from portal.paging import as_id
from portal.services import audit
from portal.services.errors import Conflict, NotFound, StaleChange, ValidationFailed
from portal.services.requests.queries import get_request
from portal.services.text import clean_text
from portal.services.uow import unit_of_work

# name -> what it becomes (the library page explains them with these words)
PLACEHOLDERS: dict[str, str] = {
    "requester_name": "the requester's name",
    "request_number": "the request's number, e.g. #1042",
    "agent_name": "the name of the person sending the reply",
}
# A placeholder is anything in single braces on one line; a lone brace is just text.
PLACEHOLDER = re.compile(r"\{([^{}\n]*)\}")
AUDIT_FIELDS = ("title", "body")
PERMISSION = "canned_replies.manage"


def unknown_placeholders(body: str) -> list[str]:
    """The placeholders in `body` that are not in PLACEHOLDERS, each once, in order of appearance."""
    return list(dict.fromkeys(f"{{{name}}}" for name in PLACEHOLDER.findall(body) if name not in PLACEHOLDERS))


def fill(body: str, values: dict[str, str]) -> str:
    """`body` with each known placeholder replaced by its value (unknown ones are left as written)."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), body)


def check_canned_reply(title: Any, body: Any) -> tuple[str, str, dict[str, str]]:
    """The title and body cleaned, and what is wrong with them by field name (empty when nothing is)."""
    errors: dict[str, str] = {}
    title = clean_text(errors, "title", title, CANNED_TITLE_MAX, missing="Give the reply a title.")
    body = clean_text(errors, "body", body, CANNED_BODY_MAX, missing="Write the reply's text.")
    if "body" not in errors:
        unknown = unknown_placeholders(body)
        if unknown:
            known = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
            which = "Unknown placeholder" if len(unknown) == 1 else "Unknown placeholders"
            errors["body"] = f"{which} {', '.join(unknown)}: use only {known}."
    return title, body, errors


def list_canned_replies(actor: User) -> list[CannedReply]:
    """The whole library, by title (it is small: a team's handful of replies)."""
    policy.require(actor, PERMISSION)
    return list(db.session.scalars(select(CannedReply).order_by(func.lower(CannedReply.title), CannedReply.id)))


def get_canned_reply(actor: User, canned_reply_id: Any) -> CannedReply:
    """One canned reply; NotFound for an id that is not one (or not a number)."""
    policy.require(actor, PERMISSION)
    number = as_id(canned_reply_id)
    reply = db.session.get(CannedReply, number) if number is not None else None
    if reply is None:
        raise NotFound("That canned reply no longer exists.")
    return reply


def _title_taken(title: str, except_id: int | None = None) -> None:
    stmt = select(CannedReply.id).where(func.lower(CannedReply.title) == title.lower())
    if except_id is not None:
        stmt = stmt.where(CannedReply.id != except_id)
    if db.session.scalar(stmt.limit(1)) is not None:
        message = f"A canned reply called “{title}” already exists; choose another title."
        raise Conflict(message, {"title": "Another canned reply has this title."})


def create_canned_reply(actor: User, title: Any, body: Any) -> CannedReply:
    """Add a reply to the shared library, recorded as written by `actor`."""
    policy.require(actor, PERMISSION)
    title, body, errors = check_canned_reply(title, body)
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work():
        _title_taken(title)  # two saving the same title at once: the unique index makes the second a 409
        now = utcnow()
        reply = CannedReply(title=title, body=body, created_by_id=actor.id, updated_by_id=actor.id,
                            created_at=now, updated_at=now)
        db.session.add(reply)
        db.session.flush()
        audit.record(actor, "canned_reply.created", "canned_reply", reply.id, None, audit.snapshot(reply, AUDIT_FIELDS))
    return reply


def _lock(actor: User, canned_reply_id: Any, expected_version: int | None) -> CannedReply:
    """The reply locked for this unit of work and current; StaleChange if it changed since `expected_version`."""
    number = as_id(canned_reply_id)
    reply = db.session.get(CannedReply, number, with_for_update=True, populate_existing=True) \
        if number is not None else None
    if reply is None:
        raise NotFound("That canned reply no longer exists: someone deleted it.")
    if expected_version is not None and reply.version != expected_version:
        raise StaleChange(f"The canned reply “{reply.title}”", reply.version, reply.updated_by.name,
                          reply.updated_at, reply.updated_by_id)
    return reply


def update_canned_reply(actor: User, canned_reply_id: Any, title: Any, body: Any,
                        expected_version: int | None = None) -> CannedReply:
    """Change a reply's title and body (anyone on the staff may); a stale edit is refused, never applied on top."""
    policy.require(actor, PERMISSION)
    title, body, errors = check_canned_reply(title, body)
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work():
        reply = _lock(actor, canned_reply_id, expected_version)
        _title_taken(title, except_id=reply.id)
        before = audit.snapshot(reply, AUDIT_FIELDS)
        reply.title, reply.body = title, body
        if audit.record_changes(actor, "canned_reply.updated", "canned_reply", reply.id, before,
                                audit.snapshot(reply, AUDIT_FIELDS)):
            reply.updated_by_id = actor.id
            reply.updated_at = utcnow()
    return reply


def delete_canned_reply(actor: User, canned_reply_id: Any, expected_version: int | None = None) -> str:
    """Remove a reply from the library (what it said stays in the audit row); returns its title."""
    policy.require(actor, PERMISSION)
    with unit_of_work():
        reply = _lock(actor, canned_reply_id, expected_version)
        title = reply.title
        audit.record(actor, "canned_reply.deleted", "canned_reply", reply.id, audit.snapshot(reply, AUDIT_FIELDS), None)
        db.session.delete(reply)
    return title


def placeholder_values(actor: User, request_id: int) -> dict[str, str]:
    """What each placeholder becomes on request `request_id`, sent by `actor` (NotFound if they cannot see it)."""
    req = get_request(actor, request_id)
    return {"requester_name": req.requester.name, "request_number": f"#{req.id}", "agent_name": actor.name}


def filled_for_request(actor: User, canned_reply_id: Any, request_id: int) -> str:
    """The canned reply's body filled in for request `request_id` and `actor`, ready for the composer."""
    reply = get_canned_reply(actor, canned_reply_id)
    return fill(reply.body, placeholder_values(actor, request_id))
