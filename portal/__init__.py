"""Service Portal: a server-rendered helpdesk for IT service requests."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from portal.config import PROJECT_ROOT, load_config, require_service_urls

__version__ = "1.0.0"


def resolve_service_urls(config: dict) -> None:
    """Fill DATABASE_URL / REDIS_URL from the embedded servers when they are unset.

    Never in production: overrides given to create_app() may have changed APP_ENV or the URLs
    after load_config() checked them, so the same rule is applied to the final settings.
    """
    require_service_urls(config)
    instance_dir = Path(config["INSTANCE_DIR"])
    if not config.get("DATABASE_URL"):
        from portal import embedded

        config["DATABASE_URL"] = embedded.ensure_postgres(instance_dir)
        config["EMBEDDED_POSTGRES"] = True
    if not config.get("REDIS_URL"):
        from portal import embedded

        config["REDIS_URL"] = embedded.ensure_redis(instance_dir)
        config["EMBEDDED_REDIS"] = True


def create_app(config: dict | None = None) -> Flask:
    """Build the portal. `config` overrides values read from the environment (tests use it)."""
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
        instance_path=str(PROJECT_ROOT / "instance"),
    )
    settings = load_config()
    settings.update(config or {})
    resolve_service_urls(settings)
    settings["SQLALCHEMY_DATABASE_URI"] = sqlalchemy_url(settings["DATABASE_URL"])
    if settings.get("DATABASE_REPLICA_URL"):
        from portal.replica import REPLICA_BIND, replica_bind

        settings["SQLALCHEMY_BINDS"] = {REPLICA_BIND: replica_bind(settings["DATABASE_REPLICA_URL"],
                                                                   settings["SQLALCHEMY_ENGINE_OPTIONS"])}
    if not settings.get("RATELIMIT_STORAGE_URI"):
        settings["RATELIMIT_STORAGE_URI"] = _limiter_storage(settings["REDIS_URL"])
    app.config.update(settings)

    from portal import logs, metrics, observability, sentry
    from portal.extensions import csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    observability.init_app(app)
    metrics.init_app(app)
    logs.init_app(app)
    sentry.init(app.config)

    from portal import models  # noqa: F401  (register the tables)
    from portal.web import init_web

    init_web(app)

    from portal.cli import register_cli

    register_cli(app)
    from portal.proxy import TrustedProxies, parse_networks

    if networks := parse_networks(app.config.get("TRUSTED_PROXIES") or ""):
        app.wsgi_app = TrustedProxies(app.wsgi_app, networks)  # outermost: every layer sees the client
    return app


def sqlalchemy_url(url: str) -> str:
    """Pin the psycopg2 driver: SQLAlchemy 2.1 reads plain postgresql:// as psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def _limiter_storage(redis_url: str) -> str:
    """flask-limiter spells a unix-socket Redis URL differently from redis-py."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://"):]
    return redis_url
