"""Brute-force defence with real Redis: an IP block after 5 failures, an account lock after 10 from any IPs,
the audit rows and the mails (once per block), for the page and the API token endpoint alike."""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditLog, Notification
from portal.services import brute_force


def _fail(client, email, ip="203.0.113.7"):
    return client.post("/login", data={"email": email, "password": "wrong password here"},
                       environ_base={"REMOTE_ADDR": ip})


def _rows(app, model, **where):
    with app.app_context():
        query = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return db.session.scalars(query).all()


def test_five_failures_from_one_ip_block_it_for_15_minutes_and_tell_the_admins_once(app, client, make):
    admin = make.user("admin")
    user = make.user("agent")
    codes = [_fail(client, f"someone{i}@example.com").status_code for i in range(5)]
    assert codes == [401] * 5
    # Now even the right password from that network is refused, with the reason and when to retry.
    blocked = client.post("/login", data={"email": user.email, "password": user.password},
                          environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert blocked.status_code == 429
    assert "Too many failed sign-ins from your network" in blocked.get_data(as_text=True)
    assert 14 * 60 < int(blocked.headers["Retry-After"]) <= 15 * 60
    _fail(client, "again@example.com")  # more failures do not send more mails
    # Another network signs in as usual.
    other = client.post("/login", data={"email": user.email, "password": user.password},
                        environ_base={"REMOTE_ADDR": "198.51.100.2"})
    assert other.status_code == 303

    [event] = _rows(app, AuditLog, action="security.ip_blocked")
    assert event.after["ip"] == "203.0.113.7" and event.after["failures"] == 5
    alerts = _rows(app, Notification, kind="security_alert")
    assert [a.recipient_id for a in alerts] == [admin.id]
    assert "5 failed sign-ins from 203.0.113.7" in alerts[0].payload["what"]


def test_ten_failures_for_one_account_from_many_ips_lock_it_and_tell_its_owner(app, client, make):
    user = make.user("requester")
    for i in range(10):  # two per address: no IP reaches its own threshold
        assert _fail(client, user.email.upper(), ip=f"192.0.2.{i // 2 + 1}").status_code == 401
    locked = client.post("/login", data={"email": user.email, "password": user.password},
                         environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert locked.status_code == 429
    assert "Too many failed sign-ins for this account" in locked.get_data(as_text=True)
    [mail] = _rows(app, Notification, kind="account_locked")
    assert mail.recipient_id == user.id and mail.payload["failures"] == 10
    [event] = _rows(app, AuditLog, action="security.account_locked")
    assert event.entity_id == user.id

    # An address with no account is locked the same way: the answer reveals nothing.
    for i in range(10):
        _fail(client, "nobody-here@example.com", ip=f"192.0.2.{100 + i // 2}")
    ghost = _fail(client, "nobody-here@example.com", ip="198.51.100.10")
    assert ghost.status_code == 429 and "for this account" in ghost.get_data(as_text=True)
    assert len(_rows(app, Notification, kind="account_locked")) == 1


def test_a_successful_sign_in_clears_the_accounts_count(app, client, make):
    user = make.user("agent")
    for i in range(9):
        _fail(client, user.email, ip=f"192.0.2.{i + 1}")
    assert client.post("/login", data={"email": user.email, "password": user.password},
                       environ_base={"REMOTE_ADDR": "198.51.100.3"}).status_code == 303
    client.post("/logout")
    assert _fail(client, user.email, ip="192.0.2.50").status_code == 401  # the 10th, counted afresh: no lock
    assert client.post("/login", data={"email": user.email, "password": user.password},
                       environ_base={"REMOTE_ADDR": "198.51.100.3"}).status_code == 303


def test_the_api_token_endpoint_shares_the_block(app, client, make):
    user = make.user("agent")
    for _ in range(5):
        response = client.post("/api/v1/auth/token", json={"email": user.email, "password": "nope nope nope"},
                               environ_base={"REMOTE_ADDR": "203.0.113.44"})
        assert response.status_code == 401
    refused = client.post("/api/v1/auth/token", json={"email": user.email, "password": user.password},
                          environ_base={"REMOTE_ADDR": "203.0.113.44"})
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "ip_blocked"
    assert int(refused.headers["Retry-After"]) > 0


def test_without_redis_sign_in_still_works(app, client, make):
    user = make.user("agent")
    saved = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    try:
        with app.app_context():
            assert brute_force.refusal("203.0.113.1", user.email) is None
        assert client.post("/login", data={"email": user.email, "password": user.password}).status_code == 303
    finally:
        app.config["REDIS_URL"] = saved


def test_a_rate_limited_sign_in_shows_the_form_with_the_reason_and_retry_after(app, client, make):
    user = make.user("agent")
    app.config["LOGIN_RATE_LIMIT"] = "2 per minute"
    try:
        for _ in range(2):
            _fail(client, user.email, ip="198.51.100.77")
        limited = _fail(client, user.email, ip="198.51.100.77")
    finally:
        app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"
    html = limited.get_data(as_text=True)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert 'id="email"' in html and "Too many attempts in a short time" in html  # the sign-in form, with why
    assert user.email in html  # what they typed is kept


def test_registration_over_its_limit_keeps_the_form(app, client):
    app.config["REGISTER_RATE_LIMIT"] = "1 per hour"
    try:
        data = {"name": "Ann", "email": "ann@example.com", "password": "x", "confirm": "x"}
        client.post("/register", data=data)
        limited = client.post("/register", data=data)
    finally:
        app.config["REGISTER_RATE_LIMIT"] = "3 per 60 minutes"
    assert limited.status_code == 429 and "Create an account" in limited.get_data(as_text=True)
    assert "Too many attempts" in limited.get_data(as_text=True)
