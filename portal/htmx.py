"""HTMX helpers: detect HTMX requests, render a page or its partial, redirect the HTMX way, and
let an unchanged poll answer 304."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from functools import wraps

from flask import Response, current_app, flash, make_response, redirect, render_template, request
from flask_login import current_user
from markupsafe import escape

from portal.services.errors import NotFound


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


# ---------------------------------------------------------------- answering a form

def render_with_oob(partial: str, context: dict, oob: tuple[str, ...] = (), status: int = 200,
                    title: str | None = None) -> Response:
    """`partial` for the request's target, plus each template of `oob` swapped in by id (out of band).

    One response brings every part of the page a change touched up to date, instead of a chain of
    follow-up GETs. Out-of-band partials render with `oob=True` (they add hx-swap-oob to their
    root) and without the target's message.
    """
    body = render_template(partial, **context)
    quiet = {**context, "message": None, "refusal": None, "oob": True}
    for template in oob:
        body += render_template(template, **quiet)
    if title:
        body += f"\n<title>{escape(title)} · Service Portal</title>"  # htmx takes it for the tab's title
    response = Response(body, status=status)
    response.headers["Vary"] = "HX-Request"
    return response


def form_done(message: str, redirect_url: str, partial: str | None = None, context: dict | None = None,
              oob: tuple[str, ...] = (), title: str | None = None) -> Response:
    """A change succeeded. A plain post flashes and redirects (303), so a reload never re-posts.
    HTMX gets `partial` with the message in it (or a redirect when there is no partial)."""
    if not is_htmx() or partial is None:
        flash(message, "success")
        return redirect_to(redirect_url)
    return render_with_oob(partial, {**(context or {}), "message": message, "ok": True, "refusal": None}, oob,
                           title=title)


def form_refused(exc, redirect_url: str, partial: str | None = None, context: dict | None = None,
                 oob: tuple[str, ...] = (), title: str | None = None) -> Response:
    """A change was refused (403/404/409/422): the reason, never a whole error page in a panel.

    A plain post flashes the reason and goes back to the page; HTMX gets `partial` re-rendered
    with the reason in it, with the refusal's status (the page's htmx config swaps 409 and 422).
    """
    if isinstance(exc, NotFound) and not is_htmx():
        raise exc  # a plain post to something that is not there (or not yours) is a 404 page
    # The field reasons say what to do ("Choose an active agent..."); the summary alone does not.
    message = " ".join(dict.fromkeys(exc.fields.values())) if exc.fields and exc.status != 409 else exc.message
    if not is_htmx() or partial is None:
        flash(message, "error")
        return redirect_to(redirect_url)
    return render_with_oob(partial, {**(context or {}), "message": message, "ok": False, "refusal": exc}, oob,
                           status=exc.status, title=title)


# ---------------------------------------------------------------- polls that find nothing new

# Every other response is no-store (portal/web.py). A polled partial is instead kept by the browser
# and revalidated on every poll, which is what lets an unchanged one come back as a bodiless 304.
# Safe because: `private` keeps it out of shared caches (it is one signed-in user's view);
# `no-cache` means the browser must ask us before every use, so the copy is never shown without a
# check (a signed-out or demoted user gets the 401/403, never the copy); the ETag covers the user
# and every byte of the body, so a 304 is only ever "exactly what you already have"; and
# `Vary: HX-Request, Cookie` keeps it apart from the full page at the same URL and from another
# session's copy. Full pages and anything carrying a CSRF token are never kept (`_keepable`).
POLL_CACHE_CONTROL = "private, no-cache"


def _keepable(body: bytes) -> bool:
    """Whether a browser may keep this body (revalidated): a partial without a CSRF token in it."""
    return not body[:64].lstrip().lower().startswith(b"<!doctype") and b"csrf_token" not in body \
        and b"X-CSRFToken" not in body


def poll_etag(response: Response) -> str:
    """A weak ETag for a partial as this user sees it: a hash of the user and the body.

    A hash of what was rendered, not a stamp of what changed: exact for free, including the
    time-dependent text ("3 h overdue", "in 25 min") that moves with the clock and not the data.
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{getattr(current_user, 'id', None) or '-'}\n".encode())
    digest.update(response.get_data())
    return digest.hexdigest()


# A stamped poll's ETag also names the five minutes it was made in: what moves with time alone (the
# order of a late-answered request against running ones, an exemption's end, a renamed person) is
# at most that old. The countdowns in the kept body tick in the browser (static/js/portal.js).
STAMP_PERIOD_SECONDS = 300


def stamp_etag(stamp: str) -> str:
    """A weak ETag for a stamped poll: the user, the URL and target it answers, the stamp, the period."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (getattr(current_user, "id", None) or "-", request.full_path, request.headers.get("HX-Target", ""),
                 stamp, int(time.time() // STAMP_PERIOD_SECONDS)):
        digest.update(f"{part}\n".encode())
    return digest.hexdigest()


def _kept(response: Response, etag: str) -> Response:
    response.set_etag(etag, weak=True)
    response.headers["Cache-Control"] = POLL_CACHE_CONTROL
    response.vary.update(("HX-Request", "Cookie"))
    return response


def revalidated_poll(view: Callable | None = None, *, stamp: Callable[..., str | None] | None = None):
    """Decorate a route that HTMX polls: its partial gets an ETag and a matching If-None-Match a 304.

    Only partials answered 200 to htmx GETs are touched: a full page at the same URL (a plain visit,
    or htmx asking for it, e.g. for another target or a history restore) and anything with a CSRF
    token in it stay no-store. The browser's own cache sends If-None-Match and turns the 304 back
    into the body it kept, so htmx sees the usual 200 and the poll code needs nothing.

    With `stamp` (called with the view's arguments; a string that changes whenever what the partial
    shows changes, or None where it cannot tell) the stamp is read before the view and a matching
    If-None-Match is answered 304 without running it: an unchanged poll costs the stamp's one read.
    Read first, a change committed between it and the view's reads only makes the next poll redo
    the work. Without a stamp the ETag is a hash of the rendered body (exact, but the work is done).
    """
    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            etag = None
            if stamp is not None and request.method == "GET" and is_htmx():
                found = stamp(*args, **kwargs)
                if found is not None:
                    etag = stamp_etag(found)
                    if request.if_none_match.contains_weak(etag):
                        return _kept(current_app.response_class(status=304), etag)
            response = make_response(view(*args, **kwargs))
            if request.method != "GET" or not is_htmx() or response.status_code != 200 or response.is_streamed \
                    or not _keepable(response.get_data()):
                return response
            return _kept(response, etag or poll_etag(response)).make_conditional(request)

        return wrapper

    return decorate(view) if view is not None else decorate
