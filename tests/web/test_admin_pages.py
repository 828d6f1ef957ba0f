"""User management pages: create, duplicate email, role change, (de)activation, and who may use them."""

from __future__ import annotations

import json

import pytest

from tests.web.helpers import HX, text_of

NEW_USER = {"name": "Grace Hopper", "email": "grace@example.com", "role": "agent", "password": "a-long-password"}


@pytest.fixture()
def admin(make):
    return make.user("admin")


def test_users_page_lists_accounts(login_client, make, admin):
    other = make.user("requester")
    response = login_client(admin).get("/admin/users")
    assert response.status_code == 200
    html = text_of(response)
    assert "<html" in html and '<div id="users-admin"' in html
    assert other.email in html and admin.email in html
    assert "(you)" in html
    assert "Add a user" in html


def test_admin_creates_user_plain(login_client, make, admin):
    client = login_client(admin)
    response = client.post("/admin/users", data=NEW_USER)
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/users"
    created = make.find_user("grace@example.com")
    assert (created.name, created.role, created.active) == ("Grace Hopper", "agent", True)
    assert "Grace Hopper (grace@example.com) can now sign in as agent." in text_of(client.get("/admin/users"))
    # The new account can sign in with the initial password.
    assert login_client(created, password="a-long-password").get("/requests").status_code == 200


def test_admin_creates_user_htmx(login_client, make, admin):
    response = login_client(admin).post("/admin/users", data=NEW_USER, headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<div id="users-admin"')
    assert "<html" not in html
    assert "can now sign in as agent." in html
    assert "grace@example.com" in html
    # The form is emptied for the next user.
    assert 'value="Grace Hopper"' not in html
    assert "users-changed" in json.loads(response.headers["HX-Trigger"])
    assert make.find_user("grace@example.com").role == "agent"


@pytest.mark.parametrize("headers", [{}, HX], ids=["plain", "htmx"])
def test_admin_create_duplicate_email_shows_error(login_client, make, admin, headers):
    make.user("requester", email="grace@example.com")
    before = make.count("User")
    response = login_client(admin).post("/admin/users", data={**NEW_USER, "email": "GRACE@example.com"},
                                        headers=headers)
    assert response.status_code == 409
    html = text_of(response)
    assert "This email is already in use." in html
    assert "HX-Trigger" not in response.headers
    assert make.count("User") == before


@pytest.mark.parametrize(("field", "value", "message"), [
    ("password", "short", "Use at least 12 characters."),
    ("email", "not-an-email", "An email address must have an @-sign."),
    ("name", "", "This field is required."),
    ("name", "Nul\x00Name", "NUL"),
    ("email", "nul\x00@example.com", "invalid characters before the @-sign"),
])
def test_admin_create_invalid_user_422(login_client, make, admin, field, value, message):
    before = make.count("User")
    response = login_client(admin).post("/admin/users", data={**NEW_USER, field: value}, headers=HX)
    assert response.status_code == 422
    assert message in text_of(response)
    assert make.count("User") == before


def test_admin_changes_role(login_client, make, admin):
    user = make.user("requester")
    client = login_client(admin)
    response = client.post(f"/admin/users/{user.id}/role", data={"role": "manager", "confirm": "yes"})
    assert response.status_code == 303
    assert make.get_user(user.id).role == "manager"
    assert f"{user.name} is now manager." in text_of(client.get("/admin/users"))

    response = client.post(f"/admin/users/{user.id}/role", data={"role": "agent", "confirm": "yes"}, headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<div id="users-admin"')
    assert f"{user.name} is now agent." in html
    assert make.get_user(user.id).role == "agent"


def test_admin_role_change_invalid_role(login_client, make, admin):
    user = make.user("requester")
    response = login_client(admin).post(f"/admin/users/{user.id}/role", data={"role": "overlord"}, headers=HX)
    assert response.status_code == 422
    assert "Choose a valid role." in text_of(response)
    assert make.get_user(user.id).role == "requester"


def test_admin_last_admin_keeps_role(login_client, make, admin):
    response = login_client(admin).post(f"/admin/users/{admin.id}/role", data={"role": "agent"}, headers=HX)
    assert response.status_code == 409
    assert "The last active admin must stay an admin." in text_of(response)
    assert make.get_user(admin.id).role == "admin"


def test_admin_role_change_unknown_user_404(login_client, admin):
    assert login_client(admin).post("/admin/users/999999/role", data={"role": "agent"}).status_code == 404


def test_admin_deactivates_and_reactivates(login_client, make, admin):
    user = make.user("agent")
    user_client = login_client(user)
    client = login_client(admin)

    response = client.post(f"/admin/users/{user.id}/active", data={"active": "false", "confirm": "yes"}, headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<div id="users-admin"')
    assert f"{user.name} was deactivated" in html
    assert make.get_user(user.id).active is False
    # Their open session ends.
    assert user_client.get("/requests").status_code == 302

    response = client.post(f"/admin/users/{user.id}/active", data={"active": "true"})
    assert response.status_code == 303
    assert make.get_user(user.id).active is True
    assert f"{user.name} was reactivated." in text_of(client.get("/admin/users"))
    assert login_client(user).get("/requests").status_code == 200


@pytest.mark.parametrize("headers", [{}, HX], ids=["plain", "htmx"])
def test_admin_cannot_deactivate_self(login_client, make, admin, headers):
    make.user("admin")  # not the last admin: the refusal is about oneself
    client = login_client(admin)
    response = client.post(f"/admin/users/{admin.id}/active", data={"active": "false"}, headers=headers)
    if headers:
        assert response.status_code == 403
        html = text_of(response)
    else:
        assert response.status_code == 303
        html = text_of(client.get("/admin/users"))
    assert "You cannot deactivate your own account." in html
    assert make.get_user(admin.id).active is True
    assert client.get("/admin/users").status_code == 200


def test_admin_page_has_no_deactivate_button_for_self(login_client, admin):
    html = text_of(login_client(admin).get("/admin/users"))
    own_row = html[html.index(admin.email):]
    own_row = own_row[:own_row.index("</tr>")]
    assert "Deactivate" not in own_row


@pytest.mark.parametrize("role", ["requester", "agent", "manager"])
def test_admin_pages_forbidden_to_non_admins(login_client, make, role):
    victim = make.user("requester", email="victim@example.com")
    client = login_client(make.user(role))
    calls = [
        ("get", "/admin/users", None),
        ("post", "/admin/users", NEW_USER),
        ("post", f"/admin/users/{victim.id}/role", {"role": "admin"}),
        ("post", f"/admin/users/{victim.id}/active", {"active": "false"}),
    ]
    for method, url, data in calls:
        for headers in ({}, HX):
            response = getattr(client, method)(url, data=data, headers=headers)
            assert response.status_code == 403, (method, url)
            assert "victim@example.com" not in text_of(response)
    assert make.find_user("grace@example.com") is None
    after = make.get_user(victim.id)
    assert (after.role, after.active) == ("requester", True)
    # No "Users" link in their navigation either.
    assert 'href="/admin/users"' not in text_of(client.get("/requests"))


def test_admin_nav_link_for_admin(login_client, admin):
    assert 'href="/admin/users"' in text_of(login_client(admin).get("/requests"))
