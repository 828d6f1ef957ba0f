"""Wires the web layer: blueprints, sign-in loader, error pages, template helpers, security headers."""

from __future__ import annotations

from flask import Flask, g, jsonify, redirect, render_template, request, url_for
from flask.json.provider import DefaultJSONProvider
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException, UnsupportedMediaType

from portal.domain import workflow
from portal.extensions import login_manager
from portal.formatting import (
    format_datetime,
    format_day_month,
    format_duration,
    format_filesize,
    format_hours,
    format_remaining,
    highlight_marks,
    priority_badge,
    sla_cell,
    status_badge,
    time_ago,
    when,
)
from portal.htmx import POLL_CACHE_CONTROL, is_htmx
from portal.metrics import count_auth_failure, count_error
from portal.policy import can
from portal.services.errors import ServiceError, StaleChange, conflict_from_integrity

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"
# Browser features the portal never uses, off for it and anything it might embed.
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "autoplay", "camera", "display-capture", "geolocation", "gyroscope", "magnetometer",
    "microphone", "midi", "payment", "usb", "serial", "xr-spatial-tracking"))
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

ERROR_TITLES = {
    400: "That request could not be understood",
    401: "Please sign in",
    403: "You do not have access to this page",
    404: "Page not found",
    405: "That action is not allowed here",
    409: "That change clashes with the current state",
    413: "That upload is too large",
    415: "That kind of request body is not accepted here",
    422: "Some values are not valid",
    429: "Too many attempts",
    500: "Something went wrong on our side",
}


def wants_json() -> bool:
    """API paths always answer JSON errors; pages answer HTML."""
    return request.path.startswith("/api/")


def json_error(status: int, code: str, message: str, fields: dict | None = None, **extra):
    """The API's error body: {"error": {"code", "message", "fields", ...extra}}."""
    body = {"error": {"code": code, "message": message, **extra}}
    if fields:
        body["error"]["fields"] = fields
    if g.get("correlation_id"):  # so whoever reports the error can quote it
        body["error"]["correlation_id"] = g.correlation_id
    return jsonify(body), status


class PortalJSONProvider(DefaultJSONProvider):
    """Flask's JSON, except that a body nested too deeply for the parser is invalid JSON.

    The decoder recurses per level: `[[[[...` 100,000 deep raised RecursionError, which
    get_json() does not treat as bad JSON (a 500 before any view code ran). As a ValueError it is:
    get_json(silent=True) gives None (the API's 400 invalid_json) and get_json() a 400.
    """

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc


def _error_page(status: int, message: str | None = None):
    title = ERROR_TITLES.get(status, "Error")
    return render_template("errors/error.html", status=status, title=title, message=message), status


def request_url(request_id: int) -> str:
    """url_for('requests.show_request', request_id=...) for every row of a list, built once per request."""
    from flask import g, url_for

    if "request_url_prefix" not in g:
        g.request_url_prefix = url_for("requests.show_request", request_id=0)[:-1]
    return f"{g.request_url_prefix}{int(request_id)}"


def category_name(code: str) -> str:
    """The name people read for a category code (looked up once per request)."""
    from flask import g

    from portal.services.categories import names

    if "category_names" not in g:
        g.category_names = names()
    return g.category_names.get(code, code)


# Where a refused (rate-limited) request is a refused sign-in, and its auth_failures_total method.
SIGN_IN_ENDPOINTS = {"auth.login": "password", "auth.two_factor": "2fa", "api.create_token": "password"}
RATE_LIMITED = "Too many attempts in a short time. Wait a few minutes and try again."


def count_rate_limited() -> None:
    """A 429: when it refused a sign-in, count it in auth_failures_total (reason rate_limited)."""
    if request.endpoint in SIGN_IN_ENDPOINTS:
        count_auth_failure(SIGN_IN_ENDPOINTS[request.endpoint], "rate_limited")


def init_web(app: Flask) -> None:
    """Register blueprints, handlers and template helpers on `app`."""
    app.json = PortalJSONProvider(app)
    from portal.account import bp as account_bp
    from portal.admin import bp as admin_bp
    from portal.api import bp as api_bp
    from portal.api.dashboard import bp as dashboard_api_bp
    from portal.auth import bp as auth_bp
    from portal.dashboard import bp as dashboard_bp
    from portal.exports import bp as exports_bp
    from portal.notifications import bp as notifications_bp
    from portal.requests import bp as requests_bp
    from portal.services import sessions
    from portal.sla import bp as sla_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(requests_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(sla_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(dashboard_api_bp)
    from portal.admin.rq_dashboard import init_rq_dashboard

    init_rq_dashboard(app)  # RQ's dashboard at /admin/rq, admins only
    from portal.health import init_health

    init_health(app)  # /health, /health/live, /health/ready: public, never cached
    app.register_blueprint(exports_bp)

    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.user_loader(sessions.load)

    @login_manager.unauthorized_handler
    def _unauthorized():
        if wants_json():
            return json_error(401, "unauthorized", "Sign in or send a bearer token.")
        target = url_for("auth.login", next=request.full_path.rstrip("?"))
        if is_htmx():
            # Come back to the page the fragment belongs to, not to the fragment.
            from urllib.parse import urlsplit

            current = urlsplit(request.headers.get("HX-Current-URL", ""))
            if current.path.startswith("/"):
                page = current.path + (f"?{current.query}" if current.query else "")
                target = url_for("auth.login", next=page)
            response = app.response_class(status=401)
            response.headers["HX-Redirect"] = target
            return response
        return redirect(target)

    @app.before_request
    def _pages_take_forms_not_json():
        # Flask-WTF reads a JSON body as form data: pages would parse (and choke on) any JSON a
        # client sends. Pages take forms; JSON belongs to /api/.
        if request.method in BODY_METHODS and request.is_json and not wants_json():
            raise UnsupportedMediaType("Pages take form posts; send JSON to the API under /api/v1.")

    @app.get("/")
    def index():
        if current_user.is_authenticated:
            return redirect(url_for("requests.list_requests"))
        return redirect(url_for("auth.login"))

    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError):
        if wants_json():
            if isinstance(exc, StaleChange):
                body, status = json_error(exc.status, exc.code, exc.message, exc.fields,
                                          current_version=exc.version, changed_by=exc.changed_by,
                                          changed_at=exc.changed_at.isoformat() if exc.changed_at else None)
                body.set_etag(str(exc.version))
                return body, status
            return json_error(exc.status, exc.code, exc.message, exc.fields)
        return _error_page(exc.status, exc.message)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        if wants_json():
            return json_error(400, "csrf_failed", exc.description)
        return _error_page(400, "The form expired or was sent from elsewhere. Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        if status == 429:
            count_rate_limited()
        if wants_json():
            code = (exc.name or "error").lower().replace(" ", "_")
            if status == 429:
                response = json_error(429, code, RATE_LIMITED)
                # The exception's headers start with its own HTML Content-Type: keep only the others
                # (Retry-After, when set); the limiter adds its X-RateLimit-* and Retry-After after.
                response[0].headers.extend((name, value) for name, value in exc.get_headers()
                                           if name.lower() != "content-type")
                return response
            return json_error(status, code, exc.description or exc.name)
        if status == 413:
            mb = app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
            return _error_page(413, f"Uploads are limited to {mb} MB in total per submission.")
        if status == 429:
            return _error_page(429, RATE_LIMITED)
        return _error_page(status, None)

    @app.errorhandler(IntegrityError)
    def _integrity_error(exc: IntegrityError):
        # Only a unique violation is "two people saved the same thing at the same moment"; a CHECK
        # or foreign key failure means a check of ours is missing: log it and answer 500.
        from portal.extensions import db

        db.session.rollback()
        conflict = conflict_from_integrity(exc)
        if conflict is None:
            app.logger.error("integrity error (a missing check?): %s", getattr(exc, "orig", exc), exc_info=exc)
            count_error(exc)
            if wants_json():
                return json_error(500, "internal_error", "Something went wrong on our side; it has been logged.")
            return _error_page(500, None)
        if wants_json():
            return json_error(409, conflict.code, conflict.message)
        return _error_page(409, conflict.message)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error", exc_info=exc)
        count_error(exc)
        from portal.extensions import db

        db.session.rollback()
        if wants_json():
            return json_error(500, "internal_error", "Something went wrong on our side; it has been logged.")
        return _error_page(500, None)

    @app.after_request
    def _security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        # request.is_secure follows X-Forwarded-Proto from TRUSTED_PROXIES (portal/proxy.py);
        # production is served over TLS whatever the last hop was.
        if request.is_secure or app.config.get("APP_ENV") == "production":
            headers.setdefault("Strict-Transport-Security", HSTS)
        if not request.path.startswith(app.static_url_path + "/") and \
                headers.get("Cache-Control") != POLL_CACHE_CONTROL:
            # Everything but the static files: pages carry CSRF tokens, personal data or tokens,
            # the sign-in page included. Downloads that chose "no-cache" get no-store added.
            # Polled partials (htmx.revalidated_poll) are kept privately and revalidated instead.
            response.cache_control.no_store = True
        return response

    app.jinja_env.globals.update(
        can=can,
        status_badge=status_badge,
        priority_badge=priority_badge,
        when=when,
        sla_cell=sla_cell,
        category_name=category_name,
        request_url=request_url,
        action_label=workflow.action_label,
        STATUS_LABELS=workflow.STATUS_LABELS,
        PRIORITY_LABELS=workflow.PRIORITY_LABELS,
        ROLE_LABELS=workflow.ROLE_LABELS,
        STATUSES=workflow.STATUSES,
        PRIORITIES=workflow.PRIORITIES,
        ROLES=workflow.ROLES,
    )
    app.jinja_env.filters["dt"] = format_datetime
    app.jinja_env.filters["ago"] = time_ago
    app.jinja_env.filters["filesize"] = format_filesize
    app.jinja_env.filters["remaining"] = format_remaining
    app.jinja_env.filters["duration"] = format_duration
    app.jinja_env.filters["hours"] = format_hours
    app.jinja_env.filters["day_month"] = format_day_month
    app.jinja_env.filters["highlight"] = highlight_marks
