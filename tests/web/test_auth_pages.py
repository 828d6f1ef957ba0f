"""Sign-in and sign-out pages: redirects, errors, open-redirect guard, session rotation, rate limit."""

from __future__ import annotations

import pytest

from tests.web.helpers import login_next, text_of

WRONG = "That email and password do not match an active account."


def test_login_page_renders_form(client):
    response = client.get("/login")
    assert response.status_code == 200
    html = text_of(response)
    assert '<form method="post"' in html
    assert 'name="email"' in html and 'name="password"' in html


def test_login_right_password_redirects_to_requests(client, auth, make):
    user = make.user("requester")
    response = auth.login(user)
    assert response.status_code == 303
    assert response.headers["Location"] == "/requests"
    page = client.get("/requests")
    assert page.status_code == 200
    assert user.name in text_of(page)


def test_login_wrong_password_shows_form_with_error_401(client, auth, make):
    user = make.user("requester")
    response = auth.login(user, password="not-the-password")
    assert response.status_code == 401
    html = text_of(response)
    assert WRONG in html
    assert 'name="password"' in html
    # The address is kept, the password is not echoed back.
    assert f'value="{user.email}"' in html
    assert "not-the-password" not in html
    # Still signed out.
    assert client.get("/requests").status_code == 302


def test_login_unknown_email_same_error_401(auth, make):
    from types import SimpleNamespace

    response = auth.login(SimpleNamespace(email="nobody@example.com"))
    assert response.status_code == 401
    assert WRONG in text_of(response)


def test_login_inactive_user_refused(auth, make):
    user = make.user("agent", active=False)
    response = auth.login(user)
    assert response.status_code == 401
    assert WRONG in text_of(response)


def test_login_empty_form_is_422(client):
    response = client.post("/login", data={"email": "", "password": ""})
    assert response.status_code == 422
    assert "This field is required." in text_of(response)


def test_login_follows_safe_next(client, make):
    user = make.user("requester")
    response = client.post("/login", query_string={"next": "/requests/5"},
                           data={"email": user.email, "password": user.password})
    assert response.status_code == 303
    assert response.headers["Location"] == "/requests/5"


def test_login_page_keeps_safe_next_in_form_action(client):
    html = text_of(client.get("/login", query_string={"next": "/requests/5"}))
    assert 'action="/login?next=/requests/5"' in html


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/\\evil", "/\\/evil.example",
                                    "http:/evil.example", "javascript:alert(1)", "requests",
                                    "/\t/evil.example", "/\n/evil.example"])
def test_login_ignores_unsafe_next(client, make, target):
    user = make.user("requester")
    page = text_of(client.get("/login", query_string={"next": target}))
    assert "evil" not in page
    response = client.post("/login", query_string={"next": target},
                           data={"email": user.email, "password": user.password})
    assert response.status_code == 303
    assert response.headers["Location"] == "/requests"


def test_login_already_signed_in_redirects(client, auth, make):
    user = make.user("requester")
    auth.login(user)
    response = client.get("/login")
    assert response.status_code == 302
    assert response.headers["Location"] == "/requests"


def test_login_rotates_session(client, auth, make):
    user = make.user("requester")
    client.get("/login")
    with client.session_transaction() as sess:
        sess["planted"] = "attacker-chosen"
    before = client.get_cookie("session").value
    response = auth.login(user)
    assert response.status_code == 303
    after = client.get_cookie("session").value
    assert after != before
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess.get("_user_id", "").startswith(f"{user.id}:")


def test_logout_get_shows_confirm_page_and_keeps_session(client, auth, make):
    user = make.user("requester")
    auth.login(user)
    response = client.get("/logout")
    assert response.status_code == 200
    html = text_of(response)
    assert "Sign out?" in html
    assert 'method="post" action="/logout"' in html
    assert client.get("/requests").status_code == 200


def test_logout_post_signs_out(client, auth, make):
    user = make.user("requester")
    auth.login(user)
    response = auth.logout()
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert "You have signed out." in text_of(client.get("/login"))
    after = client.get("/requests")
    assert after.status_code == 302
    assert after.headers["Location"].startswith("/login")


def test_logout_get_anonymous_redirects_to_login(client):
    response = client.get("/logout")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_session_of_deactivated_user_stops_working(client, auth, make):
    user = make.user("agent")
    auth.login(user)
    assert client.get("/requests").status_code == 200
    make.deactivate(user)
    response = client.get("/requests")
    assert response.status_code == 302
    assert login_next(response.headers["Location"]) == "/requests"


def test_anonymous_htmx_request_gets_hx_redirect(client):
    response = client.get("/requests", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert login_next(response.headers["HX-Redirect"]) == "/requests"


def test_login_rate_limit_counts_only_failures(app, client, make):
    user = make.user("requester")
    other = app.test_client()
    bad = {"email": user.email, "password": "wrong-password-x"}
    old = app.config["LOGIN_RATE_LIMIT"]
    app.config["LOGIN_RATE_LIMIT"] = "3 per 15 minutes"
    try:
        assert client.post("/login", data=bad).status_code == 401
        assert client.post("/login", data=bad).status_code == 401
        # A successful sign-in (from the same address) is not counted.
        assert other.post("/login", data={"email": user.email, "password": user.password}).status_code == 303
        assert client.post("/login", data=bad).status_code == 401
        blocked = client.post("/login", data=bad)
        assert blocked.status_code == 429
        assert "Too many attempts" in text_of(blocked)
        # Blocked means blocked: even the right password waits.
        assert client.post("/login", data={"email": user.email, "password": user.password}).status_code == 429
        # Only POST is limited: the form still shows.
        assert client.get("/login").status_code == 200
    finally:
        app.config["LOGIN_RATE_LIMIT"] = old


def test_login_session_cookie_flags(client, auth, make):
    response = auth.login(make.user("requester"))
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_logout_also_ends_keep_me_signed_in(client, make):
    """Signing out must also drop the "Keep me signed in" cookie, or the next request signs back in."""
    user = make.user("requester")
    response = client.post("/login", data={"email": user.email, "password": user.password, "remember": "y"})
    assert response.status_code == 303
    assert client.get_cookie("remember_token") is not None
    assert client.post("/logout").status_code == 303
    after = client.get("/requests")
    assert after.status_code == 302, "still signed in after signing out"
    assert client.get_cookie("remember_token") is None
