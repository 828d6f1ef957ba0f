"""Logs: every line JSON, on stdout and in files under LOG_DIR, never carrying a secret.

Files (rotated by size, LOG_MAX_MB × LOG_BACKUPS):
- app.log    everything the portal logs (web requests, jobs, warnings, errors)
- api.log    the `http_request` lines of /api requests
- jobs.log   the job lines (start, end, dead letters), RQ's own lines and whatever runs inside a job
- errors.log level ERROR and above, from web and jobs

Each line has `timestamp`, `level`, `type` (`http_request`, `job`, `app`...), `message`,
`logger`, `correlation_id`, `user_id` and `job_id` where known, plus the fields a line brings (`method`,
`path`, `status`, `duration_ms`; `task_name`, `queue`, `duration_s`, `outcome`...).
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from portal.observability import current_request_context

# The attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
REDACTED = "[redacted]"
# Keys whose values are secrets wherever they appear (extra fields, dicts in messages).
SECRET_KEYS = re.compile(r"pass(word)?|secret|token|authorization|cookie|session|csrf|totp|otp|api[_-]?key|dsn",
                         re.IGNORECASE)
# Secrets inside free text: "Bearer abc", "password=abc", "token: abc", session cookies, URL passwords.
_TEXT_PATTERNS = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|totp|otp|code|csrf_token|session)"
                r"(\s*[=:]\s*|\"\s*:\s*\"|'\s*:\s*')([^\s&,;\"']+)"), r"\1\2" + REDACTED),
    (re.compile(r"(?i)\b(session|remember_token)=[^;\s]+"), r"\1=" + REDACTED),
    (re.compile(r"(://[^:/@\s]+:)[^@/\s]+@"), r"\1" + REDACTED + "@"),
)
FILES = ("app.log", "api.log", "jobs.log", "errors.log")
OWN_LOGGERS = ("portal", "jobs", "rq", "flask.app")
_CONFIGURED = "_portal_logging"
JOB_LOGGERS = ("portal.jobs", "rq")  # our job lines and RQ's own (rq.worker, rq.job, rq.queue...)
_running_job: ContextVar[str | None] = ContextVar("running_job", default=None)


def scrub_text(text: str) -> str:
    """`text` with anything that looks like a password, token, cookie or URL password replaced."""
    for pattern, replacement in _TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@contextmanager
def job_running(job_id: str) -> Iterator[None]:
    """Lines logged meanwhile, RQ's own included, carry this job's id (the worker binds it per job)."""
    token = _running_job.set(job_id)
    try:
        yield
    finally:
        _running_job.reset(token)


def line_type(record: logging.LogRecord) -> str:
    """The `type` of a line that names none: `job` for the job loggers and RQ's, else `app`."""
    name = record.name
    return "job" if any(name == n or name.startswith(n + ".") for n in JOB_LOGGERS) else "app"


def scrub(value: Any, key: str | None = None) -> Any:
    """A JSON-ready copy of `value` with secret-named keys and secret-looking text redacted."""
    if key is not None and SECRET_KEYS.search(key) and key not in ("correlation_id",):
        return REDACTED
    if isinstance(value, dict):
        return {k: scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


class PortalJsonFormatter(JsonFormatter):
    """One JSON object per line, in the fields the README lists, secrets redacted."""

    def __init__(self) -> None:
        super().__init__(reserved_attrs=[], timestamp=False)

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        elif record.exc_text:
            message = f"{message}\n{record.exc_text}"
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        context = current_request_context()
        log_record.clear()
        log_record.update({
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "level": record.levelname,
            "type": extra.pop("type", None) or line_type(record),
            "logger": record.name,
            "message": scrub_text(message),
            "correlation_id": extra.pop("correlation_id", None) or context.correlation_id,
            "job_id": extra.pop("job_id", None) or _running_job.get(),
            "user_id": extra.pop("user_id", None) or user_id(),
        })
        log_record.update(scrub(extra))

    def process_log_record(self, log_record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in log_record.items() if v is not None}


def user_id() -> int | None:
    """The signed-in person's id during a web request (never their name or email)."""
    try:
        from flask import g, has_request_context, session

        if not has_request_context():
            return None
        # Whoever the request already identified (an API token, a loaded session user), else the id
        # the signed session cookie names (Flask-Login's "<id>:<version>"); never a database read here.
        for user in (g.get("api_user"), g.get("_login_user")):
            if user is not None and getattr(user, "is_authenticated", False):
                return getattr(user, "id", None)
        claimed = str(session.get("_user_id") or "").split(":", 1)[0]
        return int(claimed) if claimed.isdigit() else None
    except Exception:  # noqa: BLE001 - a log line never fails for want of a user id
        return None


class _Only(logging.Filter):
    def __init__(self, test) -> None:
        super().__init__()
        self.test = test

    def filter(self, record: logging.LogRecord) -> bool:
        return bool(self.test(record))


def _is_api(record: logging.LogRecord) -> bool:
    return getattr(record, "type", None) == "http_request" and str(getattr(record, "path", "")).startswith("/api/")


def _is_job(record: logging.LogRecord) -> bool:
    return line_type(record) == "job" or getattr(record, "type", None) == "job" or _in_job()


def _in_job() -> bool:
    if _running_job.get() is not None:
        return True
    try:
        from rq import get_current_job

        return get_current_job() is not None
    except Exception:  # noqa: BLE001
        return False


def configure(config: dict) -> None:
    """Send the root logger's lines, as JSON, to stdout and the LOG_DIR files (once per process)."""
    root = logging.getLogger()
    if hasattr(root, _CONFIGURED) and getattr(root, _CONFIGURED) == config.get("LOG_DIR"):
        return  # (LOG_DIR may be None: stdout only; an unconfigured root has no mark at all)
    for handler in [h for h in root.handlers if getattr(h, _CONFIGURED, False)]:
        root.removeHandler(handler)
        handler.close()
    formatter = PortalJsonFormatter()
    level = getattr(logging, str(config.get("LOG_LEVEL", "INFO")).upper(), logging.INFO)
    handlers: list[logging.Handler] = []
    if config.get("LOG_STDOUT", True):
        handlers.append(logging.StreamHandler(sys.stdout))
    log_dir = config.get("LOG_DIR")
    if log_dir:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        size, keep = config.get("LOG_MAX_BYTES", 10 * 1024 * 1024), config.get("LOG_BACKUPS", 5)
        tests = {"app.log": None, "api.log": _is_api, "jobs.log": _is_job, "errors.log": None}
        for name in FILES:
            handler = logging.handlers.RotatingFileHandler(Path(log_dir) / name, maxBytes=size, backupCount=keep,
                                                           encoding="utf-8", delay=True)
            if name == "errors.log":
                handler.setLevel(logging.ERROR)
            if tests[name] is not None:
                handler.addFilter(_Only(tests[name]))
            handlers.append(handler)
    for handler in handlers:
        handler.setFormatter(formatter)
        setattr(handler, _CONFIGURED, True)
        root.addHandler(handler)
    # Our lines and RQ's at LOG_LEVEL; other libraries only say something when it matters.
    root.setLevel(logging.WARNING)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
    setattr(root, _CONFIGURED, log_dir)
    # Our http_request line replaces the development server's access line (which shows query strings).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def is_configured() -> bool:
    """True once configure() has run in this process: migrations/env.py then leaves logging alone."""
    return hasattr(logging.getLogger(), _CONFIGURED)


def init_app(app) -> None:
    """Configure logging and write one `http_request` line per request."""
    from flask import g, request

    configure(app.config)
    app.logger.handlers.clear()  # Flask's own stderr handler: the root's JSON handlers carry its lines
    app.logger.propagate = True
    access = logging.getLogger("portal.http")

    def _start_clock():
        g.request_started = time.perf_counter()

    # First of all before-request hooks, so a request refused by an earlier hook (CSRF) is timed too.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_clock)

    @app.after_request
    def _log_request(response):
        if request.path.startswith("/static/"):
            return response
        started = g.get("request_started")
        access.info("%s %s %s", request.method, request.path, response.status_code, extra={
            "type": "http_request", "method": request.method, "path": request.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started is not None else None,
            "user_id": user_id(),
        })
        return response
