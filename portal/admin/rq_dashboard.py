"""RQ's own dashboard (rq-dashboard) at /admin/rq, for admins only.

rq-dashboard is one module-level blueprint object shared by every app in the process, so nothing
here is added to it: its guard, connection and CSP live on *this* app. Its own before_request hook
(it opens a new Redis client on every request from its own setting) is taken out of this app's
copy of the hooks; ours checks the user first and hands it the portal's Redis (REDIS_URL, unix
socket URLs too).
"""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Flask, abort, current_app, jsonify, request
from flask_login import current_user
from redis import Redis
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from werkzeug.exceptions import Conflict, NotFound

from portal.policy import can

URL_PREFIX = "/admin/rq"
BLUEPRINT = "rq_dashboard"
PERMISSION = "jobs.manage"
# Its endpoints that change something. Its jQuery sends them with X-Requested-With; a form or a
# link on another site cannot (and CSRF tokens are not something its pages know how to send).
CHANGING_ENDPOINTS = frozenset(f"{BLUEPRINT}.{name}" for name in (
    "delete_job_view", "requeue_job_view", "requeue_all", "empty_queue", "compact_queue"))

_INLINE_SCRIPT = re.compile(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", re.S | re.I)


def init_rq_dashboard(app: Flask) -> None:
    """Mount rq-dashboard at /admin/rq on `app`: admins only, CSRF-exempt, its own CSP exception."""
    from rq_dashboard.web import blueprint, push_rq_connection

    from portal.extensions import csrf

    app.register_blueprint(blueprint, url_prefix=URL_PREFIX)
    hooks = app.before_request_funcs.get(BLUEPRINT, [])
    app.before_request_funcs[BLUEPRINT] = [hook for hook in hooks if hook is not push_rq_connection]
    _connect(app)
    csrf.exempt(blueprint)  # by name: only requests to its own endpoints
    app.before_request(_admins_only)
    app.after_request(_dashboard_csp)
    app.register_error_handler(NoSuchJobError, _job_gone)
    app.register_error_handler(InvalidJobOperation, _job_gone)


def _job_gone(exc: Exception):
    """A job the dashboard names is gone (404), or not in a state for that action (409), not a 500."""
    if request.blueprint != BLUEPRINT:
        raise exc
    status = NotFound() if isinstance(exc, NoSuchJobError) else Conflict()
    return current_app.handle_http_exception(status)


def _connect(app: Flask) -> None:
    """Point its views at the portal's REDIS_URL (read each time: one client per URL, reused)."""
    url = app.config["REDIS_URL"]
    clients = app.extensions.setdefault("rq_dashboard_redis", {})
    if url not in clients:
        clients[url] = Redis.from_url(url)
    app.redis_conn = clients[url]  # what its views read
    app.config["RQ_DASHBOARD_REDIS_URL"] = [url]  # its navbar shows it (a password masked)


def _admins_only():
    """Anonymous: the sign-in page; signed in without jobs.manage: 403; changes only from its own scripts."""
    if not (request.path + "/").startswith(URL_PREFIX + "/"):
        return None  # by path, so its redirects (/admin/rq/0/view -> /admin/rq/) and 404s are guarded too
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    if not can(current_user, PERMISSION):
        abort(403)
    if (request.view_args or {}).get("instance_number", 0) != 0:
        abort(404)  # one Redis: the portal's
    if request.endpoint in CHANGING_ENDPOINTS and request.headers.get("X-Requested-With") != "XMLHttpRequest":
        abort(400, "Use the dashboard's own buttons for this.")
    _connect(current_app._get_current_object())
    if request.endpoint == f"{BLUEPRINT}.compact_queue" and not current_app.redis_conn.exists(
            f"rq:queue:{request.view_args['queue_name']}"):
        return jsonify(status="OK")  # RQ's compact() fails on an empty queue (no key to rename): nothing to do
    return None


def dashboard_csp(script_hashes: list[str]) -> str:
    """The portal's CSP, widened only as far as rq-dashboard's pages need.

    Its one inline script is allowed by hash (not 'unsafe-inline'); 'unsafe-eval' because its
    underscore.js templates compile with `new Function`; inline style attributes (it hides its
    requeue button with style="display: none") but no inline <style> elements.
    """
    from portal.web import CSP

    scripts = " ".join(["script-src 'self'", *(f"'sha256-{h}'" for h in script_hashes), "'unsafe-eval'"])
    return (CSP.replace("script-src 'self'", scripts)
            .replace("style-src 'self'", "style-src 'self'; style-src-attr 'unsafe-inline'"))


def _inline_script_hashes(html: str) -> list[str]:
    """sha256 (base64) of each inline script the browser would run (not its text/template blocks)."""
    found = []
    for match in _INLINE_SCRIPT.finditer(html):
        attrs = match.group("attrs")
        if re.search(r"\bsrc\s*=", attrs):
            continue
        kind = re.search(r"\btype\s*=\s*[\"']?([^\"'\s>]+)", attrs)
        if kind and kind.group(1).lower() not in ("text/javascript", "application/javascript", "module"):
            continue
        digest = hashlib.sha256(match.group("body").encode()).digest()
        found.append(base64.b64encode(digest).decode())
    return found


def _dashboard_csp(response):
    """Give the dashboard's own HTML pages (and nothing else) the CSP they need."""
    if request.blueprint != BLUEPRINT or response.status_code != 200 or response.mimetype != "text/html":
        return response
    hashes = _inline_script_hashes(response.get_data(as_text=True))
    response.headers["Content-Security-Policy"] = dashboard_csp(hashes)
    return response
