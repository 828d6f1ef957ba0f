"""Registration with a confirmed address and password reset by mail, against real PostgreSQL and Redis:
nothing tells whether an address has an account; links are single-use and expire; a reset ends every
session and API token."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import ApiToken, AuditLog, Notification, User
from portal.models._time import utcnow

STRONG = "lantern-orbit-tulip-42"


def _old_link(app, salt, data, seconds_ago):
    """A link signed as if made `seconds_ago` (the portal's own key and salt): for expiry."""
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    class Earlier(TimestampSigner):
        def get_timestamp(self):
            return super().get_timestamp() - seconds_ago

    return URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=salt, signer=Earlier).dumps(data)


def _notes(app, kind):
    with app.app_context():
        return db.session.scalars(select(Notification).where(Notification.kind == kind)
                                  .order_by(Notification.id)).all()


def _link(app, kind, user_id=None):
    """The secret link of the newest `kind` mail (read from the row before delivery blanks it)."""
    rows = [n for n in _notes(app, kind) if user_id is None or n.recipient_id == user_id]
    return rows[-1].payload["url"].replace("https://portal.example.com", "")


def _register(client, email, password=STRONG, name="Grace Hopper"):
    return client.post("/register", data={"name": name, "email": email, "password": password,
                                          "confirm": password})


def test_register_confirm_then_sign_in(app, client):
    page = _register(client, "grace@example.com")
    assert page.status_code == 200 and "Check your inbox" in page.get_data(as_text=True)
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "grace@example.com"))
        assert (user.role, user.email_verified_at) == ("requester", None)
    refused = client.post("/login", data={"email": "grace@example.com", "password": STRONG})
    assert refused.status_code == 403 and "Confirm your email address first" in refused.get_data(as_text=True)

    confirmed = client.get(_link(app, "verify_email"))
    assert confirmed.status_code == 303 and confirmed.headers["Location"] == "/login"
    assert client.post("/login", data={"email": "grace@example.com", "password": STRONG}).status_code == 303


def test_registering_a_taken_address_looks_the_same_and_tells_its_owner(app, client, make):
    owner = make.user("agent", email="taken@example.com")
    fresh = _register(client, "fresh@example.com").get_data(as_text=True)
    taken = _register(client, "TAKEN@example.com").get_data(as_text=True)
    strip = lambda html: re.sub(r"(fresh|TAKEN)@example\.com", "ADDRESS", html)  # noqa: E731
    assert strip(fresh) == strip(taken)
    [mail] = _notes(app, "account_exists")
    assert mail.recipient_id == owner.id
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "TAKEN@example.com")) is None


@pytest.mark.parametrize(("password", "message"), [
    ("short", "Use at least 12 characters."),
    ("1qaz2wsx3edc", "one of the most common passwords"),
    ("weak@example.com", "Do not use your email address"),
])
def test_registration_refuses_weak_passwords_on_the_form(client, password, message):
    page = _register(client, "weak@example.com", password=password)
    assert page.status_code == 422 and message in page.get_data(as_text=True)


def test_confirmation_links_are_checked(app, client):
    from portal.services import accounts

    _register(client, "ada@example.com")
    link = _link(app, "verify_email")
    tampered = client.get(link[:-3] + ("abc" if not link.endswith("abc") else "xyz"))
    assert tampered.status_code == 400 and "not valid" in tampered.get_data(as_text=True)
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "ada@example.com"))
        stale = _old_link(app, accounts.VERIFY_SALT, {"u": user.id, "e": user.email}, accounts.VERIFY_HOURS * 3600 + 5)
    expired = client.get(f"/verify-email/{stale}")
    assert expired.status_code == 400 and "expired" in expired.get_data(as_text=True)
    assert client.get(link).status_code == 303
    assert client.get(link).status_code == 303  # following it twice is harmless


def test_reset_answers_alike_and_mails_only_real_accounts(app, client, make):
    user = make.user("agent")
    real = client.post("/password-reset", data={"email": user.email})
    ghost = client.post("/password-reset", data={"email": "nobody@example.com"})
    assert real.status_code == ghost.status_code == 200
    assert re.sub(r"\S+@example\.com", "X", real.get_data(as_text=True)) == \
        re.sub(r"\S+@example\.com", "X", ghost.get_data(as_text=True))
    assert [n.recipient_id for n in _notes(app, "password_reset")] == [user.id]


def test_reset_sets_the_password_once_and_ends_sessions_and_tokens(app, client, make, login_client):
    user = make.user("agent")
    other_browser = login_client(user)
    with app.app_context():
        from portal.services import users

        token, _row = users.issue_token(db.session.get(User, user.id))
    client.post("/password-reset", data={"email": user.email})
    link = _link(app, "password_reset")
    form = client.get(link)
    assert form.status_code == 200 and user.email in form.get_data(as_text=True)
    done = client.post(link, data={"password": STRONG, "confirm": STRONG})
    assert done.status_code == 303
    assert other_browser.get("/requests").status_code == 302  # signed out everywhere
    assert client.get("/api/v1/service-requests", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.post("/login", data={"email": user.email, "password": STRONG}).status_code == 303
    again = client.post(link, data={"password": "another-long-passphrase", "confirm": "another-long-passphrase"})
    assert again.status_code == 400 and "already used" in again.get_data(as_text=True)
    with app.app_context():
        [row] = db.session.scalars(select(AuditLog).where(AuditLog.action == "user.password_reset")).all()
        assert row.after["tokens_revoked"] == 1 and row.after["sessions_ended"] >= 1
        assert db.session.scalar(select(ApiToken).where(ApiToken.user_id == user.id)).expires_at <= utcnow()


def test_reset_links_expire_after_an_hour(app, client, make):
    from portal.services import accounts

    user = make.user("agent")
    with app.app_context():
        row = db.session.get(User, user.id)
        data = {"u": row.id, "h": accounts._fingerprint(row)}
    fresh = _old_link(app, accounts.RESET_SALT, data, accounts.RESET_MINUTES * 60 - 60)
    stale = _old_link(app, accounts.RESET_SALT, data, accounts.RESET_MINUTES * 60 + 5)
    assert client.get(f"/password-reset/{fresh}").status_code == 200
    expired = client.get(f"/password-reset/{stale}")
    assert expired.status_code == 400 and "expired" in expired.get_data(as_text=True)


def test_an_inbox_gets_at_most_three_reset_mails_an_hour(app, client, make):
    user = make.user("agent")
    for _ in range(5):
        assert client.post("/password-reset", data={"email": user.email}).status_code == 200
    assert len(_notes(app, "password_reset")) == 3


def test_registration_and_reset_are_rate_limited(app, client):
    app.config.update(REGISTER_RATE_LIMIT="2 per hour", RESET_RATE_LIMIT="2 per hour")
    try:
        codes = [_register(client, f"r{i}@example.com").status_code for i in range(3)]
        resets = [client.post("/password-reset", data={"email": "x@example.com"}).status_code for _ in range(3)]
    finally:
        app.config.update(REGISTER_RATE_LIMIT="3 per 60 minutes", RESET_RATE_LIMIT="5 per 60 minutes")
    assert codes == [200, 200, 429] and resets == [200, 200, 429]


def test_the_api_refuses_a_token_until_the_address_is_confirmed(app, client):
    _register(client, "api-user@example.com")
    refused = client.post("/api/v1/auth/token", json={"email": "api-user@example.com", "password": STRONG})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "email_not_verified"
    client.get(_link(app, "verify_email"))
    again = client.post("/api/v1/auth/token", json={"email": "api-user@example.com", "password": STRONG})
    assert again.status_code == 201
