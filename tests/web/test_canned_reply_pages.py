"""The canned replies library page: list, add, edit, delete; placeholders checked; stale edits refused."""

from __future__ import annotations

import re

import pytest

from tests.web.helpers import HX, csrf_from_form, text_of


def library(app) -> list[tuple[str, str]]:
    """(title, body) of every canned reply, by title."""
    from portal.extensions import db
    from portal.models import CannedReply

    with app.app_context():
        return [(r.title, r.body) for r in db.session.query(CannedReply).order_by(CannedReply.title)]


def audit_actions(app) -> list[str]:
    from portal.extensions import db
    from portal.models import AuditLog

    with app.app_context():
        return [a.action for a in db.session.query(AuditLog).filter(AuditLog.entity_type == "canned_reply")
                .order_by(AuditLog.id)]


def add(app, author, title: str, body: str) -> int:
    from portal.extensions import db
    from portal.models import User
    from portal.services import canned_replies

    with app.app_context():
        return canned_replies.create_canned_reply(db.session.get(User, author.id), title, body).id


def version_of(html: str) -> int:
    versions = set(re.findall(r'name="version" value="(\d+)"', html))
    assert len(versions) == 1, versions
    return int(versions.pop())


@pytest.fixture()
def team(make):
    return {"alex": make.user("agent", name="Alex Agent"), "sam": make.user("agent", name="Sam Rivera"),
            "admin": make.user("admin"), "riley": make.user("requester")}


def test_library_page_for_staff_with_the_menu_link(login_client, team):
    for who in ("alex", "admin"):
        html = text_of(login_client(team[who]).get("/canned-replies"))
        assert "<h1>Canned replies</h1>" in html
        assert '<a href="/canned-replies" aria-current="page">Canned replies</a>' in html
        assert "No canned replies yet." in html
        assert "<code>{requester_name}</code>" in html and "<code>{request_number}</code>" in html
    requests_page = text_of(login_client(team["alex"]).get("/requests"))
    assert '<a href="/canned-replies" >Canned replies</a>' in requests_page


def test_requesters_get_no_library_and_no_link(login_client, team):
    client = login_client(team["riley"])
    assert client.get("/canned-replies").status_code == 403
    assert "/canned-replies" not in text_of(client.get("/requests"))


def test_add_a_canned_reply_plain_post(app, login_client, team):
    client = login_client(team["alex"])
    response = client.post("/canned-replies", data={"title": "Password reset",
                                                    "body": "Hi {requester_name}, use the reset link."})
    assert response.status_code == 303 and response.headers["Location"] == "/canned-replies"
    html = text_of(client.get("/canned-replies"))
    assert "Canned reply “Password reset” added" in html
    assert "Added by Alex Agent" in html
    assert library(app) == [("Password reset", "Hi {requester_name}, use the reset link.")]
    assert audit_actions(app) == ["canned_reply.created"]


def test_add_a_canned_reply_htmx_answers_with_the_library(app, login_client, team):
    response = login_client(team["alex"]).post("/canned-replies", headers=HX,
                                               data={"title": "VPN", "body": "Reconnect, {agent_name}"})
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<div id="canned-replies"')
    assert "Canned reply “VPN” added" in html and "Reconnect, {agent_name}" in html
    assert 'value=""' in re.search(r'<input[^>]*name="title"[^>]*>', html).group(0)  # a fresh form


@pytest.mark.parametrize("headers", [{}, HX])
def test_unknown_placeholder_is_refused_beside_the_text_with_nothing_saved(app, login_client, team, headers):
    response = login_client(team["alex"]).post("/canned-replies", headers=headers,
                                               data={"title": "Typo", "body": "Hi {requestor_name}"})
    assert response.status_code == 422
    html = text_of(response)
    assert "Unknown placeholder {requestor_name}: use only {requester_name}, {request_number}, {agent_name}." in html
    assert re.search(r"<textarea[^>]*>\s*Hi \{requestor_name\}</textarea>", html)  # kept to fix
    assert library(app) == []


def test_every_problem_shows_at_once(app, login_client, team):
    response = login_client(team["alex"]).post("/canned-replies", data={"title": "", "body": "Hi {x} and {y}"})
    assert response.status_code == 422
    html = text_of(response)
    assert "Give the reply a title." in html
    assert "Unknown placeholders {x}, {y}" in html


def test_a_title_in_use_is_409_beside_the_title(app, login_client, team):
    add(app, team["sam"], "Password reset", "Hi.")
    response = login_client(team["alex"]).post("/canned-replies", data={"title": "password RESET", "body": "Hi."})
    assert response.status_code == 409
    assert "Another canned reply has this title." in text_of(response)
    assert len(library(app)) == 1


def test_hostile_text_is_escaped_on_the_library(app, login_client, team):
    add(app, team["sam"], "<script>alert(1)</script>", "<img src=x onerror=alert(2)>")
    html = text_of(login_client(team["alex"]).get("/canned-replies"))
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_edit_a_colleagues_reply(app, login_client, team):
    reply = add(app, team["sam"], "Password reset", "Hi {requester_name}.")
    client = login_client(team["alex"])
    page = text_of(client.get(f"/canned-replies/{reply}"))
    assert "Edit “Password reset”" in page and "Hi {requester_name}." in page
    response = client.post(f"/canned-replies/{reply}", data={
        "title": "Password reset", "body": "Hello {requester_name}.", "version": version_of(page)})
    assert response.status_code == 303
    assert "Canned reply “Password reset” saved." in text_of(client.get("/canned-replies"))
    assert library(app) == [("Password reset", "Hello {requester_name}.")]
    html = text_of(client.get("/canned-replies"))
    assert "Added by Sam Rivera" in html and "changed by Alex Agent" in html
    assert audit_actions(app) == ["canned_reply.created", "canned_reply.updated"]


def test_edit_with_an_unknown_placeholder_is_422_and_keeps_the_saved_one(app, login_client, team):
    reply = add(app, team["sam"], "Password reset", "Hi.")
    client = login_client(team["alex"])
    response = client.post(f"/canned-replies/{reply}", data={"title": "Password reset", "body": "Hi {name}"})
    assert response.status_code == 422
    assert "Unknown placeholder {name}" in text_of(response)
    assert library(app) == [("Password reset", "Hi.")]


def test_stale_edit_shows_the_saved_text_beside_the_unsaved_one(app, login_client, team):
    reply = add(app, team["sam"], "Password reset", "First.")
    alex, sam = login_client(team["alex"]), login_client(team["sam"])
    seen = version_of(text_of(alex.get(f"/canned-replies/{reply}")))
    assert sam.post(f"/canned-replies/{reply}", data={"title": "Password reset", "body": "Sam's.",
                                                      "version": seen}).status_code == 303

    response = alex.post(f"/canned-replies/{reply}", data={"title": "Password reset", "body": "Alex's.",
                                                           "version": seen})
    assert response.status_code == 409
    html = text_of(response)
    assert "Changed by <strong>Sam Rivera</strong>" in html and "Your change was not saved." in html
    assert "Saved now:" in html and "Sam&#39;s." in html
    assert re.search(r"<textarea[^>]*>\s*Alex&#39;s.</textarea>", html)
    assert version_of(html) == seen + 1
    assert library(app) == [("Password reset", "Sam's.")]
    # Having seen Sam's, Alex saves deliberately over it.
    assert alex.post(f"/canned-replies/{reply}", data={"title": "Password reset", "body": "Alex's.",
                                                       "version": seen + 1}).status_code == 303
    assert library(app) == [("Password reset", "Alex's.")]


def test_delete_a_reply(app, login_client, team):
    reply = add(app, team["sam"], "Password reset", "Hi.")
    client = login_client(team["alex"])
    seen = version_of(text_of(client.get(f"/canned-replies/{reply}")))
    response = client.post(f"/canned-replies/{reply}/delete", data={"version": seen})
    assert response.status_code == 303
    assert "Canned reply “Password reset” deleted." in text_of(client.get("/canned-replies"))
    assert library(app) == []
    assert audit_actions(app) == ["canned_reply.created", "canned_reply.deleted"]
    assert client.get(f"/canned-replies/{reply}").status_code == 404
    assert client.post(f"/canned-replies/{reply}/delete", data={"version": seen}).status_code == 404


def test_stale_delete_is_refused_and_shows_what_it_says_now(app, login_client, team):
    reply = add(app, team["sam"], "Password reset", "First.")
    alex = login_client(team["alex"])
    seen = version_of(text_of(alex.get(f"/canned-replies/{reply}")))
    login_client(team["sam"]).post(f"/canned-replies/{reply}", data={"title": "Password reset", "body": "Better.",
                                                                      "version": seen})
    response = alex.post(f"/canned-replies/{reply}/delete", data={"version": seen})
    assert response.status_code == 409
    assert "Better." in text_of(response)
    assert library(app) == [("Password reset", "Better.")]


def test_edit_of_a_reply_deleted_meanwhile_goes_back_to_the_library(app, login_client, team):
    reply = add(app, team["sam"], "Password reset", "First.")
    alex = login_client(team["alex"])
    seen = version_of(text_of(alex.get(f"/canned-replies/{reply}")))
    login_client(team["sam"]).post(f"/canned-replies/{reply}/delete", data={"version": seen})
    response = alex.post(f"/canned-replies/{reply}", data={"title": "Password reset", "body": "Mine.", "version": seen})
    assert response.status_code == 404


@pytest.mark.parametrize("version", ["abc", "-1", "1.5"])
def test_a_version_that_is_not_a_number_is_422(app, login_client, team, version):
    reply = add(app, team["sam"], "Password reset", "First.")
    response = login_client(team["alex"]).post(f"/canned-replies/{reply}", data={
        "title": "Password reset", "body": "Mine.", "version": version})
    assert response.status_code == 422
    assert library(app) == [("Password reset", "First.")]


def test_adding_with_csrf_on_needs_the_pages_token(app, client, team, csrf_on):
    token = csrf_from_form(text_of(client.get("/login")))
    assert client.post("/login", data={"email": team["alex"].email, "password": team["alex"].password,
                                       "csrf_token": token}).status_code == 303
    refused = client.post("/canned-replies", data={"title": "No token", "body": "Hi."})
    assert refused.status_code == 400
    token = re.search(r'name="csrf_token" value="([^"]+)"', text_of(client.get("/canned-replies"))).group(1)
    response = client.post("/canned-replies", data={"title": "With token", "body": "Hi.", "csrf_token": token})
    assert response.status_code == 303
    assert library(app) == [("With token", "Hi.")]
