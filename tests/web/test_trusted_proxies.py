"""X-Forwarded-For counts only from TRUSTED_PROXIES: a forged header cannot dodge the sign-in block."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal import create_app
from portal.extensions import db
from portal.models import AuditLog


@pytest.fixture()
def behind_proxy(app):
    """The session's settings, with 10.0.0.0/8 as the trusted proxies."""
    proxied = create_app({**{k: app.config[k] for k in (
        "APP_ENV", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "LOG_DIR", "MAIL_DIR", "UPLOAD_DIR", "EXPORT_DIR",
        "PASSWORD_HASH_TIME_COST", "PASSWORD_HASH_MEMORY_KIB", "LOGIN_RATE_LIMIT", "WTF_CSRF_ENABLED")},
        "TESTING": True, "TRUSTED_PROXIES": "10.0.0.0/8", "LOG_STDOUT": False})
    yield proxied
    with proxied.app_context():
        db.session.remove()
        db.engine.dispose()


def _fail(client, xff, peer):
    headers = {"X-Forwarded-For": xff} if xff else {}
    return client.post("/login", data={"email": "x@example.com", "password": "wrong password here"},
                       headers=headers, environ_base={"REMOTE_ADDR": peer})


def test_a_trusted_proxy_gives_the_client_address(behind_proxy):
    client = behind_proxy.test_client()
    for _ in range(5):  # five clients' worth of addresses, one real client: it is the one blocked
        _fail(client, "198.51.100.20, 10.0.0.7", "10.0.0.1")
    with behind_proxy.app_context():
        [event] = db.session.scalars(select(AuditLog).where(AuditLog.action == "security.ip_blocked")).all()
        assert event.after["ip"] == "198.51.100.20"
    assert _fail(client, "198.51.100.21", "10.0.0.1").status_code == 401  # another client is not blocked


def test_a_forged_header_from_the_internet_is_ignored(behind_proxy, app):
    client = behind_proxy.test_client()
    for i in range(5):  # an attacker rotating X-Forwarded-For still counts as one address
        _fail(client, f"192.0.2.{i}", "203.0.113.9")
    assert _fail(client, "192.0.2.99", "203.0.113.9").status_code == 429
    # and without TRUSTED_PROXIES (the session app) the header is ignored entirely
    plain = app.test_client()
    for i in range(5):
        _fail(plain, f"192.0.2.{i}", "203.0.113.10")
    assert _fail(plain, "192.0.2.99", "203.0.113.10").status_code == 429


def test_the_scheme_and_address_come_from_trusted_hops_only():
    from werkzeug.test import EnvironBuilder

    from portal.proxy import TrustedProxies, parse_networks

    seen = {}

    def inner(environ, start_response):
        seen.update(addr=environ["REMOTE_ADDR"], scheme=environ["wsgi.url_scheme"])
        start_response("200 OK", [])
        return [b""]

    app = TrustedProxies(inner, parse_networks("10.0.0.0/8, 127.0.0.1"))

    def call(peer, **headers):
        environ = EnvironBuilder(headers=headers, environ_base={"REMOTE_ADDR": peer}).get_environ()
        app(environ, lambda *a: None)
        return dict(seen)

    assert call("10.1.2.3", **{"X-Forwarded-For": "198.51.100.5", "X-Forwarded-Proto": "https"}) == \
        {"addr": "198.51.100.5", "scheme": "https"}
    # Hops are read from the right past trusted proxies; what the client wrote on the left is not believed.
    assert call("127.0.0.1", **{"X-Forwarded-For": "6.6.6.6, 198.51.100.5, 10.0.0.9"})["addr"] == "198.51.100.5"
    assert call("10.1.2.3", **{"X-Forwarded-For": "not-an-ip, 198.51.100.5"})["addr"] == "198.51.100.5"
    assert call("203.0.113.1", **{"X-Forwarded-For": "198.51.100.5", "X-Forwarded-Proto": "https"}) == \
        {"addr": "203.0.113.1", "scheme": "http"}
