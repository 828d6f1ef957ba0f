"""Errors services raise; pages turn them into form messages, the API into JSON error bodies."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: an HTTP status, a machine code and a human message."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class ValidationFailed(ServiceError):
    """One or more submitted values are not acceptable; `fields` says which and why."""

    status = 422
    code = "validation_error"

    def __init__(self, fields: dict[str, str], message: str = "Some values are not valid."):
        super().__init__(message, fields)


class NotFound(ServiceError):
    """The thing does not exist, or the actor may not know that it does."""

    status = 404
    code = "not_found"


class Forbidden(ServiceError):
    """The actor may see the thing but not do this to it."""

    status = 403
    code = "forbidden"


class Conflict(ServiceError):
    """The change clashes with the current state (a workflow rule, a unique value)."""

    status = 409
    code = "conflict"


class StaleChange(Conflict):
    """The thing changed since the user saw it: their change is refused, never applied on top.

    `changed_by` and `changed_at` say who changed it last and when, so the page can say
    "Changed by Alex Agent at 14:02 — here is the current state"; `version` is the current one.
    """

    code = "stale_version"

    def __init__(self, what: str, version: int, changed_by: str | None, changed_at=None,
                 changed_by_id: int | None = None):
        self.version = version
        self.changed_by = changed_by
        self.changed_by_id = changed_by_id
        self.changed_at = changed_at
        self.what = what
        who = f" by {changed_by}" if changed_by else ""
        when = f" at {changed_at:%H:%M} UTC" if changed_at else ""
        super().__init__(f"{what} was changed{who}{when} since you opened it — here is the current state. "
                         "Your change was not saved; check it and try again.")


class RequestClosed(Conflict):
    """A reply to a closed request: refused, nothing saved; the caller offers a follow-up request instead."""

    code = "request_closed"

    def __init__(self, request_id: int):
        self.request_id = request_id
        super().__init__(f"Request #{request_id} is closed, so it takes no more replies. Your reply was not saved: "
                         "open a follow-up request linked to it instead.")


UNIQUE_VIOLATION = "23505"
SAME_MOMENT = "Someone else saved a conflicting change at the same moment. Reload and try again."


def conflict_from_integrity(exc: Exception) -> Conflict | None:
    """A unique violation (two saves raced past the same check) as a 409; None for anything else.

    Other integrity errors (a CHECK, a foreign key) mean our own checks missed something: they
    stay errors, to be logged with their detail and fixed.
    """
    if getattr(getattr(exc, "orig", None), "pgcode", None) == UNIQUE_VIOLATION:
        return Conflict(SAME_MOMENT)
    return None
