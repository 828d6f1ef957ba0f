"""CSRF protection with checking turned on: forms need the token, htmx sends it as a header."""

from __future__ import annotations

from tests.web.helpers import HX, csrf_from_body, csrf_from_form, text_of
from tests.web.test_access import backup_file, world  # noqa: F401 - fixtures


def _sign_in(client, user):
    """Sign in through the form, with its CSRF token (checking is on)."""
    token = csrf_from_form(text_of(client.get("/login")))
    response = client.post("/login", data={"email": user.email, "password": user.password, "csrf_token": token})
    assert response.status_code == 303


def test_csrf_login_without_token_is_refused(client, make, csrf_on):
    user = make.user("requester")
    response = client.post("/login", data={"email": user.email, "password": user.password})
    assert response.status_code == 400
    assert "The form expired or was sent from elsewhere" in text_of(response)
    assert client.get("/requests").status_code == 302


def test_csrf_form_post_without_token_400_and_nothing_created(client, make, csrf_on):
    user = make.user("requester")
    _sign_in(client, user)
    assert client.get("/requests/new").status_code == 200
    before = make.count("ServiceRequest")
    response = client.post("/requests/new", data={
        "title": "Forged request", "category": "hardware", "priority": "medium", "description": "From elsewhere.",
    })
    assert response.status_code == 400
    assert "The form expired or was sent from elsewhere" in text_of(response)
    assert make.count("ServiceRequest") == before


def test_csrf_form_post_with_wrong_token_400(client, make, csrf_on):
    agent = make.user("agent")
    req = make.request(make.user("requester"))
    _sign_in(client, agent)
    response = client.post(f"/requests/{req.id}/status", data={"status": "in_progress", "csrf_token": "forged"})
    assert response.status_code == 400
    assert make.get_request(req.id).status == "open"


def test_csrf_htmx_post_with_header_from_body_succeeds(client, make, csrf_on):
    agent = make.user("agent")
    req = make.request(make.user("requester"))
    _sign_in(client, agent)
    page = text_of(client.get(f"/requests/{req.id}"))
    token = csrf_from_body(page)
    response = client.post(f"/requests/{req.id}/comments", data={"body": "Looking into it."},
                           headers={**HX, "X-CSRFToken": token})
    assert response.status_code == 200
    assert "Looking into it." in text_of(response)  # the timeline, out of band
    assert [c.body for c in make.comments(req.id)] == ["Looking into it."]

    status = client.post(f"/requests/{req.id}/status", data={"status": "in_progress"},
                         headers={**HX, "X-CSRFToken": token})
    assert status.status_code == 200
    assert make.get_request(req.id).status == "in_progress"


def test_csrf_htmx_post_without_header_400(client, make, csrf_on):
    agent = make.user("agent")
    req = make.request(make.user("requester"))
    _sign_in(client, agent)
    client.get(f"/requests/{req.id}")
    response = client.post(f"/requests/{req.id}/comments", data={"body": "No token."}, headers=HX)
    assert response.status_code == 400
    assert make.comments(req.id) == []


def test_csrf_logout_without_token_keeps_session(client, make, csrf_on):
    user = make.user("requester")
    _sign_in(client, user)
    response = client.post("/logout")
    assert response.status_code == 400
    assert client.get("/requests").status_code == 200


def test_every_state_changing_page_route_refuses_a_post_without_the_token(app, login_client, make, world):  # noqa: F811 - the fixture imported above
    """Each POST of the access table (pages, not the bearer-token API), by someone allowed to make it,
    without a CSRF token: 400, and no audit row or outbox job was written."""
    from sqlalchemy import func, select

    from portal.extensions import db
    from portal.models import AuditLog, OutboxMessage
    from tests.web.test_access import ROUTES, _url

    def writes():
        with app.app_context():
            return (db.session.scalar(select(func.count()).select_from(AuditLog)),
                    db.session.scalar(select(func.count()).select_from(OutboxMessage)))

    checked = []
    for route in ROUTES:
        if route.method == "GET" or route.api or route.rule.startswith("/admin/rq"):
            continue  # the API takes bearer tokens; rq-dashboard's changes require X-Requested-With (tested)
        actor = next(a for a in ("admin", "requester", "anonymous") if a in route.who)
        client = login_client(world.people[actor]) if actor != "anonymous" else app.test_client()
        before = writes()
        app.config["WTF_CSRF_ENABLED"] = True
        try:
            data = dict(route.form or {})
            if route.credentials:
                who = world.people["requester"]
                data.update(email=who.email, password=who.password)
            response = client.open(_url(route, world), method=route.method, data=data, headers=route.headers)
        finally:
            app.config["WTF_CSRF_ENABLED"] = False
        assert response.status_code == 400, f"{route}: {response.status_code}"
        assert writes() == before, f"{route} wrote something without a CSRF token"
        checked.append(str(route))
    assert len(checked) > 40
