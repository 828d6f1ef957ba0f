"""HTMX helpers: detect HTMX requests, render a page or its partial, redirect the HTMX way."""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Response, redirect, render_template, request


def is_htmx() -> bool:
    """True for requests htmx made (HX-Request: true)."""
    return request.headers.get("HX-Request") == "true"


def render_page_or_partial(page_template: str, partial_template: str, target: str | None = None,
                           page_only: Callable[[], dict] | None = None, **context) -> Response:
    """Full page for a normal request; the partial when htmx asks (for `target` if given).

    `page_only` supplies context that only the full page needs, so a partial refresh skips it.
    """
    want_partial = is_htmx() and (target is None or request.headers.get("HX-Target") == target)
    if not want_partial and page_only is not None:
        context.update(page_only())
    body = render_template(partial_template if want_partial else page_template, **context)
    response = Response(body)
    response.headers["Vary"] = "HX-Request, HX-Target"
    return response


def redirect_to(url: str) -> Response:
    """A redirect that htmx follows as a full navigation (HX-Redirect), plain 303 otherwise."""
    if is_htmx():
        response = Response(status=204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code=303)


def trigger(response: Response, *events: str, **events_with_detail) -> Response:
    """Add HX-Trigger events (kebab-case names) to a response."""
    payload = {name: True for name in events}
    payload.update(events_with_detail)
    existing = response.headers.get("HX-Trigger")
    if existing:
        payload = {**json.loads(existing), **payload}
    response.headers["HX-Trigger"] = json.dumps(payload)
    return response
