"""Test fixtures: a real PostgreSQL and Redis (embedded, or TEST_DATABASE_URL / TEST_REDIS_URL).

The schema is built by running the Alembic migrations on an emptied database; every test then
starts from empty tables (default categories only) and an empty Redis database.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import text

from portal import create_app, sqlalchemy_url
from portal.config import DEFAULT_INSTANCE_DIR

TEST_PASSWORD = "correct-horse-battery"


def _test_service_urls() -> tuple[str, str]:
    database_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not database_url or not redis_url:
        from portal import embedded

        instance_dir = Path(os.environ.get("INSTANCE_DIR") or DEFAULT_INSTANCE_DIR)
        # Separate names let several suites share the embedded servers (and not the portal's data).
        database_url = database_url or embedded.ensure_postgres(
            instance_dir, database=os.environ.get("TEST_DATABASE_NAME", "portal_test"))
        if not redis_url:
            # The running portal uses Redis database 0; tests default to database 1.
            redis_url = embedded.ensure_redis(instance_dir) + "?db=" + os.environ.get("TEST_REDIS_DB", "1")
    return database_url, redis_url


def empty_database(database_url: str) -> None:
    """Drop every table so the migrations start from nothing."""
    dsn = sqlalchemy_url(database_url).replace("postgresql+psycopg2://", "postgresql://")
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    conn.close()


@pytest.fixture(scope="session")
def service_urls() -> tuple[str, str]:
    return _test_service_urls()


@pytest.fixture(scope="session")
def app(service_urls, tmp_path_factory):
    """One app for the session, on a freshly migrated database."""
    database_url, redis_url = service_urls
    empty_database(database_url)
    app = create_app({
        "APP_ENV": "test",
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "WTF_CSRF_ENABLED": False,
        "PASSWORD_HASH_TIME_COST": 1,
        "PASSWORD_HASH_MEMORY_KIB": 64,
        "LOGIN_RATE_LIMIT": "1000 per minute",
        "UPLOAD_DIR": str(tmp_path_factory.mktemp("uploads")),
        "EXPORT_DIR": str(tmp_path_factory.mktemp("exports")),
        "MAIL_DIR": str(tmp_path_factory.mktemp("mail")),
        "BACKUP_DIR": str(tmp_path_factory.mktemp("backups")),
        "LOG_DIR": str(tmp_path_factory.mktemp("logs")),
        "LOG_STDOUT": False,  # pytest captures per test; the files keep every line
        "PORTAL_URL": "https://portal.example.com",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 5, "pool_pre_ping": True},
    })
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    from portal.extensions import limiter

    # Flask-Limiter keeps its storage on the one `limiter` object, not per app: a test that builds a
    # second portal re-points it. `_clean_state` puts this back after every test.
    app.extensions["session_limiter_state"] = dict(vars(limiter))
    return app


@pytest.fixture(autouse=True)
def _clean_state(request):
    """Empty tables and Redis after each test that used the app."""
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    from portal.extensions import limiter

    vars(limiter).clear()
    vars(limiter).update(app.extensions["session_limiter_state"])
    with app.app_context():
        from portal.extensions import db
        from portal.queueing import redis_connection
        from portal.services.categories import ensure_default_categories

        db.session.remove()
        tables = [t.name for t in db.metadata.sorted_tables]
        db.session.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        ensure_default_categories()
        db.session.commit()
        redis_connection().flushdb()


@pytest.fixture()
def ctx(app):
    """An app context for service-level tests."""
    with app.app_context():
        yield app


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def runner(app):
    return app.test_cli_runner()


@pytest.fixture()
def csrf_on(app):
    """Turn CSRF checking back on for one test."""
    app.config["WTF_CSRF_ENABLED"] = True
    yield
    app.config["WTF_CSRF_ENABLED"] = False


@pytest.fixture()
def smtp(app):
    """A real SMTP server on 127.0.0.1; the app sends its mail there for this test."""
    from tests.mail_server import MailServer

    server = MailServer()
    server.start()
    saved = {k: app.config[k] for k in ("MAIL_SERVER", "MAIL_PORT", "MAIL_USE_TLS")}
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port, MAIL_USE_TLS=False)
    yield server
    app.config.update(saved)
    server.stop()


class AuthActions:
    """Sign a test client in and out through the real sign-in form."""

    def __init__(self, client):
        self._client = client

    def login(self, user, password: str = TEST_PASSWORD):
        return self._client.post("/login", data={"email": user.email, "password": password})

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture()
def auth(client):
    return AuthActions(client)


@pytest.fixture()
def factories(ctx):
    """The factory functions of tests/factories.py, bound to an app context.

    The context stays pushed for the whole test, so test-client requests made meanwhile share its
    `g` (Flask-Login's cached user) and session. Web tests that sign in several clients use the
    `make` fixture of tests/web/conftest.py instead, which opens a short context per call.
    """
    from tests import factories

    return factories
