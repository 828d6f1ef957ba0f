"""The account page: a person sees who they are and chooses which emails they get."""

from __future__ import annotations

from sqlalchemy import select

from tests.web.helpers import HX, text_of


def _choices(app, user_id):
    from portal.extensions import db
    from portal.models import NotificationSetting

    with app.app_context():
        row = db.session.scalar(select(NotificationSetting).where(NotificationSetting.user_id == user_id))
        return (sorted(row.muted_kinds), row.sla_digest) if row else None


def test_a_requester_sees_only_the_mails_a_requester_can_get(make, login_client):
    requester = make.user("requester")
    page = text_of(login_client(requester).get("/account"))
    assert requester.email in page and "Email notifications" in page
    assert "A request I raised was received" in page and "Someone replies on a request I raised" in page
    assert "A request is assigned to me" not in page and "SLA alerts" not in page


def test_an_agent_turns_a_kind_off_and_chooses_the_hourly_digest(app, make, login_client):
    agent = make.user("agent")
    client = login_client(agent)
    page = text_of(client.get("/account"))
    assert "A request is assigned to me" in page and "One digest email per hour" in page

    response = client.post("/account/notifications", headers=HX, data={
        "kinds": ["assigned", "sla_breached", "request_created", "public_comment", "status_changed", "mention"],
        "sla_alerts": "digest"})
    assert response.status_code == 200
    body = text_of(response)
    assert "Your email choices are saved." in body
    assert 'value="assigned" checked' in body and 'value="sla_at_risk" checked' not in body
    assert _choices(app, agent.id) == (["sla_at_risk"], True)

    # The page shows the choice on the next visit.
    page = text_of(client.get("/account"))
    assert 'value="digest" checked' in page and 'value="sla_at_risk" checked' not in page


def test_a_plain_post_saves_and_redirects_back(app, make, login_client):
    requester = make.user("requester")
    client = login_client(requester)
    response = client.post("/account/notifications", data={"kinds": ["public_comment"], "sla_alerts": "each"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/account")
    assert _choices(app, requester.id) == (["request_created", "status_changed"], False)
    assert "Your email choices are saved." in text_of(client.get("/account"))


def test_choices_a_role_cannot_have_are_refused_with_a_message_and_nothing_saved(app, make, login_client):
    requester = make.user("requester")
    client = login_client(requester)
    response = client.post("/account/notifications", headers=HX,
                           data={"kinds": ["sla_breached"], "sla_alerts": "each"})
    assert response.status_code == 422
    assert "Choose only from the notifications listed." in text_of(response)
    response = client.post("/account/notifications", headers=HX, data={"sla_alerts": "weekly"})
    assert response.status_code == 422 and "hourly digest" in text_of(response)
    assert _choices(app, requester.id) is None


def test_the_account_lists_recent_mails_and_what_became_of_them(app, make, login_client, smtp):
    from portal.services import notifications

    requester = make.user("requester")
    req = make.request(requester, title="Monitor flickers")
    with app.app_context():
        notifications.deliver(requester.id)
    page = text_of(login_client(requester).get("/account"))
    assert f"We received your request #{req.id} Monitor flickers" in page
    assert "<td>Sent</td>" in page


def test_the_header_links_to_the_account(make, login_client):
    agent = make.user("agent")
    page = text_of(login_client(agent).get("/requests"))
    assert 'href="/account"' in page
