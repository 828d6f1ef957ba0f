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
