"""Plain helpers shared by the scale-out tests."""

from __future__ import annotations

from tests.deploy.helpers import free_port  # noqa: F401 - the scale tests' ports, one definition

# The settings tests/conftest.py gives its app, copied to the extra portals these tests build.
SHARED_SETTINGS = ("APP_ENV", "TESTING", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "WTF_CSRF_ENABLED",
                   "PASSWORD_HASH_TIME_COST", "PASSWORD_HASH_MEMORY_KIB", "LOGIN_RATE_LIMIT", "UPLOAD_DIR",
                   "EXPORT_DIR", "MAIL_DIR", "BACKUP_DIR", "LOG_DIR", "LOG_STDOUT", "PORTAL_URL",
                   "SQLALCHEMY_ENGINE_OPTIONS")



def with_query(url: str, **params: str) -> str:
    """`url` with these query parameters added (values already URL-encoded)."""
    extra = "&".join(f"{key}={value}" for key, value in params.items())
    return url + ("&" if "?" in url else "?") + extra


def portal_like(app, **overrides):
    """A second portal on the test's database and Redis, with `overrides` (a replica URL, say).

    Its engines are its own: call dispose_engines(portal) when done, so no connection outlives the test.
    """
    from portal import create_app

    return create_app({**{key: app.config[key] for key in SHARED_SETTINGS}, **overrides})


def dispose_engines(portal) -> None:
    with portal.app_context():
        from portal.extensions import db

        for engine in db.engines.values():
            engine.dispose()


def signed_in(portal, email: str, password: str = "correct-horse-battery"):
    """A test client of `portal`, signed in through the real form."""
    client = portal.test_client()
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 303, response.status_code
    return client
