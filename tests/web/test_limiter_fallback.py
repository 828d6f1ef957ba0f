"""A Redis outage does not turn sign-in into 500s: the sign-in limit falls back to memory.

A second portal is built whose Redis (rate-limit storage and RQ) is a local port nothing listens
on, so every call to it is refused at once, the way a stopped Redis answers.
"""

from __future__ import annotations

import logging
import socket
import time

import pytest

from portal import create_app
from portal.extensions import db, limiter
from tests.conftest import TEST_PASSWORD

FALLBACK_WARNING = "falling back to in-memory storage"


def _closed_port() -> int:
    """A local TCP port that nothing listens on: bound by us for a moment, then released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def outage_app(app, service_urls, tmp_path):
    """A portal on the test database whose Redis is down, with a limit of 3 failed sign-ins.

    Depends on `app` so the schema is migrated and the tables are emptied after the test.
    Flask-Limiter keeps its storage (and its "storage is dead" flag) on the one `limiter` object,
    not per app, so binding it to this app re-points the session app's limiter as well: its state
    is saved first and put back afterwards, so later tests count in the test Redis again.
    """
    saved_limiter_state = dict(vars(limiter))
    database_url, _ = service_urls
    dead_redis = f"redis://127.0.0.1:{_closed_port()}/0"
    outage = create_app({
        "APP_ENV": "test",
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "DATABASE_URL": database_url,
        # The whole Redis is down, not only the counters (sign-in itself never needs RQ).
        "REDIS_URL": dead_redis,
        "RATELIMIT_STORAGE_URI": dead_redis,
        "WTF_CSRF_ENABLED": False,
        "PASSWORD_HASH_TIME_COST": 1,
        "PASSWORD_HASH_MEMORY_KIB": 64,
        "RATELIMIT_ENABLED": True,
        "LOGIN_RATE_LIMIT": "3 per minute",
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 2, "pool_pre_ping": True},
    })
    try:
        yield outage
    finally:
        vars(limiter).clear()
        vars(limiter).update(saved_limiter_state)
        with outage.app_context():
            # No pooled connection of this app may outlive the test (the clean-up TRUNCATEs).
            db.session.remove()
            db.engine.dispose()


def test_sign_in_keeps_working_and_limited_while_redis_is_down(outage_app, caplog, monkeypatch):
    # The migrations' logging.config.fileConfig() (run in this process by the `app` fixture)
    # disables every logger that existed before it, Flask-Limiter's included; the web processes
    # never run it, so switch the logger back on for this test.
    monkeypatch.setattr(logging.getLogger("flask-limiter"), "disabled", False)
    caplog.set_level(logging.WARNING, logger="flask-limiter")
    from tests.factories import make_user

    with outage_app.app_context():
        email = make_user("agent").email
    started = time.monotonic()

    client = outage_app.test_client()
    assert client.get("/login").status_code == 200
    signed_in = client.post("/login", data={"email": email, "password": TEST_PASSWORD})
    assert signed_in.status_code == 303
    assert signed_in.headers["Location"] == "/requests"

    # Failures count against the limit in memory: three are answered, the fourth is refused.
    other = outage_app.test_client()
    wrong = {"email": email, "password": "not-the-password"}
    assert [other.post("/login", data=wrong).status_code for _ in range(3)] == [401, 401, 401]
    blocked = other.post("/login", data=wrong)
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)
    # The limit is per client address, so even the right password waits now.
    assert other.post("/login", data={"email": email, "password": TEST_PASSWORD}).status_code == 429
    assert other.get("/login").status_code == 200  # the page itself still shows

    # The API token endpoint: a wrong password is a JSON 401 (not a 500), and it is limited too.
    api = outage_app.test_client()
    bad = {"email": email, "password": "not-the-password"}
    answers = [api.post("/api/v1/auth/token", json=bad) for _ in range(4)]
    assert [r.status_code for r in answers] == [401, 401, 401, 429]
    assert answers[0].get_json()["error"]["code"] == "invalid_credentials"
    assert answers[-1].get_json()["error"]["message"].startswith("Too many attempts")

    # A refused connection fails fast: the outage costs no noticeable time.
    assert time.monotonic() - started < 15

    limiter_records = [r for r in caplog.records if r.name == "flask-limiter"]
    warnings = [r for r in limiter_records if FALLBACK_WARNING in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING  # once per outage
    # The fallback handled every request; nothing had to be swallowed.
    assert not [r for r in limiter_records if r.levelno >= logging.ERROR]
