"""Correlation ids and the per-request context that the audit trail records."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass

CORRELATION_HEADER = "X-Correlation-ID"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class RequestContext:
    """Where the current change comes from: set by the web layer, read by the audit service."""

    ip: str | None = None
    correlation_id: str | None = None


_EMPTY = RequestContext()
_current: ContextVar[RequestContext | None] = ContextVar("request_context", default=None)


def set_request_context(ctx: RequestContext) -> None:
    """Bind the context for the rest of this request (or job)."""
    _current.set(ctx)


def current_request_context() -> RequestContext:
    """The context bound by set_request_context, or an empty one (CLI, jobs)."""
    return _current.get() or _EMPTY


def correlation_id_from(header_value: str | None) -> str:
    """Accept a caller's correlation id if it is safe to log, else make a new one."""
    if header_value and _SAFE_ID.match(header_value):
        return header_value
    return str(uuid.uuid4())


def init_app(app) -> None:
    """Give every request a correlation id, echo it in the response."""
    from flask import g, request

    def _bind_context():
        g.correlation_id = correlation_id_from(request.headers.get(CORRELATION_HEADER))
        set_request_context(RequestContext(ip=request.remote_addr, correlation_id=g.correlation_id))

    # Before every other hook: a request that an earlier hook refuses (CSRF, sign-in) still gets its own
    # id in its response, its log lines and its error page, never the previous request's.
    app.before_request_funcs.setdefault(None, []).insert(0, _bind_context)

    @app.after_request
    def _echo_correlation_id(response):
        cid = g.get("correlation_id")
        if cid:
            response.headers[CORRELATION_HEADER] = cid
        return response
