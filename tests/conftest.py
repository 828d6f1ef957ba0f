"""Test fixtures: a real PostgreSQL and Redis (embedded, or TEST_DATABASE_URL / TEST_REDIS_URL).

The schema is built by running the Alembic migrations on an emptied database; every test then
starts from empty tables (default categories only) and an empty Redis database.

Under pytest-xdist (`make test` runs `-n 3`) each worker has a database and a Redis database of
its own: worker gwN uses the configured database name plus `_gwN` (created beside it on the same
server) and the configured Redis database number plus N. A serial run uses the configured ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from portal import create_app, sqlalchemy_url
from portal.config import DEFAULT_INSTANCE_DIR

TEST_PASSWORD = "correct-horse-battery"
REDIS_DATABASES = 16  # a Redis server's default `databases`: numbers 0-15


def xdist_worker() -> str | None:
    """This process's pytest-xdist worker id ("gw0", "gw1", ...), or None in a serial run."""
    return os.environ.get("PYTEST_XDIST_WORKER") or None


def _worker_index(worker: str | None) -> int:
    return int(worker.removeprefix("gw")) if worker else 0


def _dsn(url: str) -> str:
    return sqlalchemy_url(url).replace("postgresql+psycopg2://", "postgresql://", 1)


def database_beside(url: str, name: str) -> str:
    """The URL of database `name` on the server of `url` (connecting as its user), created when missing."""
    conn = psycopg2.connect(_dsn(url))
    conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                try:
                    cur.execute(f'CREATE DATABASE "{name}"')
                except psycopg2.errors.DuplicateDatabase:
                    pass  # another process made it between the look and the create
    finally:
        conn.close()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def redis_base_db(redis_url: str | None = None) -> int:
    """The Redis database number a serial run uses: the db of TEST_REDIS_URL, else TEST_REDIS_DB (default 1)."""
    if redis_url is None:
        return int(os.environ.get("TEST_REDIS_DB", "1"))
    parts = urlsplit(redis_url)
    query = dict(parse_qsl(parts.query))
    if "db" in query:
        return int(query["db"])
    path = parts.path.strip("/")
    if parts.scheme in ("redis", "rediss") and path:
        return int(path)
    return 0  # redis-py's default


def with_redis_db(redis_url: str, db: int) -> str:
    """`redis_url` pointed at database `db` (a path /N for redis://, a ?db=N query for unix://)."""
    address, _, query = redis_url.partition("?")  # not urlunsplit: it turns unix:///path into unix:/path
    params = dict(parse_qsl(query))
    parts = urlsplit(address)
    if parts.scheme in ("redis", "rediss") and "db" not in params:
        return f"{parts.scheme}://{parts.netloc}/{db}" + (f"?{query}" if query else "")
    params["db"] = str(db)
    return f"{address}?{urlencode(params)}"


def _redis_db_for(worker: str | None, base: int) -> int:
    db = base + _worker_index(worker)
    if db >= REDIS_DATABASES:
        raise pytest.UsageError(
            f"test worker {worker} would use Redis database {db}, but Redis has {REDIS_DATABASES} (0-"
            f"{REDIS_DATABASES - 1}): with base database {base} run at most {REDIS_DATABASES - base} workers, "
            "or choose a lower TEST_REDIS_DB / TEST_REDIS_URL database")
    return db


def _test_service_urls() -> tuple[str, str]:
    worker = xdist_worker()
    database_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    if database_url and worker:
        database_url = database_beside(database_url, f"{make_url(database_url).database}_{worker}")
    if redis_url:
        redis_url = with_redis_db(redis_url, _redis_db_for(worker, redis_base_db(redis_url)))
    if not database_url or not redis_url:
        from portal import embedded

        instance_dir = Path(os.environ.get("INSTANCE_DIR") or DEFAULT_INSTANCE_DIR)
        if not database_url:
            # Separate names let several suites share the embedded servers (and not the portal's data).
            name = os.environ.get("TEST_DATABASE_NAME", "portal_test")
            # ensure_postgres holds a file lock under instance/: workers starting together share one server.
            database_url = embedded.ensure_postgres(instance_dir, database=f"{name}_{worker}" if worker else name)
        if not redis_url:
            # The running portal uses Redis database 0; tests default to database 1.
            redis_url = f"{embedded.ensure_redis(instance_dir)}?db={_redis_db_for(worker, redis_base_db())}"
    return database_url, redis_url


def pytest_configure(config: pytest.Config) -> None:
    """Refuse, before any test runs, more xdist workers than the Redis databases above the base one."""
    workers = getattr(config.option, "numprocesses", None) or 0
    if workers and not xdist_worker():
        base = redis_base_db(os.environ.get("TEST_REDIS_URL"))
        _redis_db_for(f"gw{workers - 1}", base)


def empty_database(database_url: str) -> None:
    """Drop every table so the migrations start from nothing."""
    conn = psycopg2.connect(_dsn(database_url))
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
        # The request page's live poll: journeys trigger it themselves, so a stale tab stays stale.
        "REQUEST_POLL_SECONDS": 3600,
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
    reset_state(request.getfixturevalue("app"))


def reset_state(app) -> None:
    """Empty tables (default categories only) and Redis, and put the rate limiter back.

    `_clean_state` calls it after every test; a test module that shares rows between its tests (a
    module-scoped setup that overrides `_clean_state`) calls it once at the end instead.
    """
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
