"""Two-factor sign-in on real PostgreSQL and Redis: enrolment with a real TOTP code, the sign-in step,
recovery codes used once, no replay, turning it off, REQUIRE_2FA_FOR, and the API token endpoint."""

from __future__ import annotations

import re
import time

import pyotp
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditLog, User, UserSession


def _secret_on_page(html: str) -> str:
    return re.search(r'<code class="secret">([A-Z2-7]+)</code>', html).group(1)


def _enrol(client, user):
    page = client.get("/account/security/two-factor")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<svg" in html and "QR code for your authenticator app" in html
    secret = _secret_on_page(html)
    # The previous step's code (accepted: one step either side), so the current one is still unused.
    done = client.post("/account/security/two-factor", data={"code": _previous_code(secret),
                                                                "password": user.password})
    assert done.status_code == 200, done.get_data(as_text=True)[-500:]
    codes = re.findall(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>", done.get_data(as_text=True))
    assert len(codes) == 10
    return secret, codes


def _password_step(client, user):
    response = client.post("/login", data={"email": user.email, "password": user.password})
    assert response.status_code == 303 and response.headers["Location"] == "/login/2fa"


def _previous_code(secret: str) -> str:
    return pyotp.TOTP(secret).at(time.time() - 30)


def test_enrol_then_sign_in_needs_the_code(app, make, login_client):
    user = make.user("agent")
    browser = login_client(user)
    other_browser = login_client(user)
    secret, codes = _enrol(browser, user)
    assert other_browser.get("/requests").status_code == 302  # turning it on ends the other sign-ins
    assert browser.get("/requests").status_code == 200         # but not this one

    fresh = app.test_client()
    _password_step(fresh, user)
    assert fresh.get("/requests").status_code == 302  # the password alone does not sign in
    wrong = fresh.post("/login/2fa", data={"code": "000000"})
    assert wrong.status_code == 401 and "That code does not match" in wrong.get_data(as_text=True)
    ok = fresh.post("/login/2fa", data={"code": pyotp.TOTP(secret).now()})
    assert ok.status_code == 303 and fresh.get("/requests").status_code == 200
    with app.app_context():
        assert db.session.scalar(select(AuditLog).where(AuditLog.action == "user.2fa_enabled")) is not None


def test_a_code_is_accepted_once_and_a_recovery_code_once(app, make, login_client):
    user = make.user("agent")
    secret, codes = _enrol(login_client(user), user)
    # A code that signed in once cannot sign in again (replay), even within its 30 seconds.
    replay = app.test_client()
    _password_step(replay, user)
    used = pyotp.TOTP(secret).now()
    assert replay.post("/login/2fa", data={"code": used}).status_code == 303
    again = app.test_client()
    _password_step(again, user)
    assert again.post("/login/2fa", data={"code": used}).status_code == 401
    assert again.post("/login/2fa", data={"code": _previous_code(secret)}).status_code == 401  # older step

    first = app.test_client()
    _password_step(first, user)
    assert first.post("/login/2fa", data={"code": codes[0].upper()}).status_code == 303
    second = app.test_client()
    _password_step(second, user)
    assert second.post("/login/2fa", data={"code": codes[0]}).status_code == 401  # used up


def test_five_wrong_codes_send_the_person_back_to_the_password(app, make, login_client):
    user = make.user("agent")
    _enrol(login_client(user), user)
    browser = app.test_client()
    _password_step(browser, user)
    statuses = [browser.post("/login/2fa", data={"code": "123456"}).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 303]
    assert browser.get("/login/2fa").headers["Location"].startswith("/login")


def test_turning_it_off_needs_the_password_and_a_code(app, make, login_client):
    user = make.user("agent")
    browser = login_client(user)
    secret, codes = _enrol(browser, user)
    refused = browser.post("/account/security/two-factor/off", data={"password": "not it at all", "code": "x"})
    assert refused.status_code == 422 and "That is not your password." in refused.get_data(as_text=True)
    assert browser.post("/account/security/two-factor/off",
                        data={"password": user.password, "code": codes[3]}).status_code == 303
    with app.app_context():
        row = db.session.get(User, user.id)
        assert row.totp_enabled_at is None and row.totp_secret is None
    plain = app.test_client()
    assert plain.post("/login", data={"email": user.email, "password": user.password}).status_code == 303


def test_required_roles_go_to_enrolment_first(app, make, login_client):
    app.config["REQUIRE_2FA_FOR"] = "admin,manager"
    try:
        admin = make.user("admin")
        browser = login_client(admin)
        page = browser.get("/requests")
        assert page.status_code == 302 and page.headers["Location"] == "/account/security/two-factor"
        assert browser.get("/account/security/two-factor").status_code == 200
        refused = app.test_client().post("/api/v1/auth/token", json={"email": admin.email, "password": admin.password})
        assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "two_factor_setup_required"
        _enrol(browser, admin)
        assert browser.get("/requests").status_code == 200
        agent = login_client(make.user("agent"))
        assert agent.get("/requests").status_code == 200  # roles not listed are not asked
    finally:
        app.config["REQUIRE_2FA_FOR"] = ""


def test_the_api_token_endpoint_asks_for_the_code(app, make, login_client):
    user = make.user("agent")
    secret, codes = _enrol(login_client(user), user)
    api = app.test_client()
    missing = api.post("/api/v1/auth/token", json={"email": user.email, "password": user.password})
    assert missing.status_code == 401 and missing.get_json()["error"]["code"] == "two_factor_required"
    wrong = api.post("/api/v1/auth/token", json={"email": user.email, "password": user.password, "code": "111111"})
    assert wrong.status_code == 401 and wrong.get_json()["error"]["code"] == "invalid_code"
    ok = api.post("/api/v1/auth/token", json={"email": user.email, "password": user.password, "code": codes[1]})
    assert ok.status_code == 201


def test_security_page_lists_sessions_ends_others_and_changes_the_password(app, make, login_client):
    user = make.user("agent")
    here, elsewhere = login_client(user), login_client(user)
    page = here.get("/account/security").get_data(as_text=True)
    assert page.count("<tr") >= 3 and "This browser" in page
    assert here.post("/account/security/sessions/end-others").status_code == 303
    assert elsewhere.get("/requests").status_code == 302 and here.get("/requests").status_code == 200

    wrong = here.post("/account/security/password", data={"current": "nope", "password": "x", "confirm": "x"})
    assert wrong.status_code == 422 and "That is not your current password." in wrong.get_data(as_text=True)
    new = "silver-kettle-morning-8"
    assert here.post("/account/security/password", data={"current": user.password, "password": new,
                                                          "confirm": new}).status_code == 303
    assert app.test_client().post("/login", data={"email": user.email, "password": new}).status_code == 303
    with app.app_context():
        live = db.session.scalars(select(UserSession).where(UserSession.user_id == user.id,
                                                            UserSession.revoked_at.is_(None))).all()
        assert len(live) == 2  # this browser and the sign-in just made


def test_security_page_revokes_a_token(app, make, login_client):
    user = make.user("agent")
    browser = login_client(user)
    token = app.test_client().post("/api/v1/auth/token", json={"email": user.email, "password": user.password})
    raw = token.get_json()["token"]
    page = browser.get("/account/security").get_data(as_text=True)
    token_id = re.search(r"/account/security/tokens/(\d+)/revoke", page).group(1)
    assert browser.post(f"/account/security/tokens/{token_id}/revoke").status_code == 303
    assert app.test_client().get("/api/v1/service-requests",
                                 headers={"Authorization": f"Bearer {raw}"}).status_code == 401


def test_refused_sign_ins_are_counted_by_reason(app, make, login_client):
    """auth_failures_total: a wrong code, a code step left too long, a rate-limited sign-in."""
    from portal.metrics import AUTH_FAILURES

    def count(method, reason):
        return AUTH_FAILURES.labels(method, reason)._value.get()

    user = make.user("agent")
    _enrol(login_client(user), user)
    before = {key: count(*key) for key in (("2fa", "invalid_code"), ("2fa", "timeout"), ("password", "rate_limited"))}
    browser = app.test_client()
    _password_step(browser, user)
    browser.post("/login/2fa", data={"code": "000000"})
    with browser.session_transaction() as state:
        state["2fa_pending"]["at"] -= 600  # the person went for coffee
        state.modified = True
    assert browser.get("/login/2fa").status_code == 302
    app.config["LOGIN_RATE_LIMIT"] = "1 per minute"
    try:
        for _ in range(3):
            app.test_client().post("/login", data={"email": user.email, "password": "wrong wrong wrong"})
    finally:
        app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"
    assert count("2fa", "invalid_code") == before[("2fa", "invalid_code")] + 1
    assert count("2fa", "timeout") == before[("2fa", "timeout")] + 1
    assert count("password", "rate_limited") >= before[("password", "rate_limited")] + 1


def test_an_admin_sees_and_revokes_a_persons_tokens(app, make, login_client):
    admin, agent = make.user("admin"), make.user("agent")
    raw = app.test_client().post("/api/v1/auth/token",
                                 json={"email": agent.email, "password": agent.password}).get_json()["token"]
    browser = login_client(admin)
    page = browser.get("/admin/users").get_data(as_text=True)
    assert f"/admin/users/{agent.id}/tokens/revoke" in page and "1 live" in page
    done = browser.post(f"/admin/users/{agent.id}/tokens/revoke")
    assert done.status_code == 303
    assert "1 API token revoked" in browser.get("/admin/users").get_data(as_text=True)
    assert app.test_client().get("/api/v1/service-requests",
                                 headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    with app.app_context():
        assert db.session.scalar(select(AuditLog).where(AuditLog.action == "token.revoked_all")).entity_id == agent.id
