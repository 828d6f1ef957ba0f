"""Mail notifications end to end on real parts: PostgreSQL, the outbox, and a real SMTP server.

Delivery here calls the email job's service directly (tests/jobs/test_mail_jobs.py runs real
workers); every mail is read back from the SMTP server as a person's mail program would.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.domain import notifications as rules
from portal.extensions import db
from portal.models import Notification, OutboxMessage, SlaEvent
from portal.models._time import utcnow
from portal.policy import SYSTEM
from portal.services import notifications, sla, sla_admin
from portal.services import requests as svc
from portal.services.errors import ValidationFailed
from tests.mail_server import html_of, text_of


def deliver_all() -> int:
    """Run the email job's service for everyone with pending notifications, as the worker would."""
    people = db.session.scalars(select(Notification.recipient_id).where(Notification.status == "pending").distinct())
    return sum(notifications.deliver(person) for person in list(people))


def subjects(smtp, person) -> list[str]:
    return [m["Subject"] for m in smtp.to(person.email)]


@pytest.fixture()
def people(factories):
    requester = factories.make_user("requester", email="rita@example.com", name="Rita Requester")
    agent = factories.make_user("agent", email="alex@example.com", name="Alex Agent")
    manager = factories.make_user("manager", email="mona@example.com", name="Mona Manager")
    return requester, agent, manager


def test_a_new_request_mails_its_requester_a_text_and_html_confirmation(smtp, people, factories):
    requester, _, _ = people
    req = factories.make_request(requester, title="VPN drops every hour", category="network", priority="high")

    assert deliver_all() == 1
    [mail] = smtp.to("rita@example.com")
    assert mail["Subject"] == f"We received your request #{req.id} VPN drops every hour"
    assert mail["From"] == "Service Portal <noreply@service-portal.local>"
    assert mail["Auto-Submitted"] == "auto-generated"
    text = text_of(mail)
    assert "Hello Rita Requester" in text and "Network, high priority" in text
    assert f"https://portal.example.com/requests/{req.id}" in text
    assert f'href="https://portal.example.com/requests/{req.id}"' in html_of(mail)
    assert "https://portal.example.com/account" in text  # where to change what one gets


def test_html_mail_escapes_what_people_typed(smtp, people, factories):
    requester, _, _ = people
    factories.make_request(requester, title="<script>alert(1)</script> & more")
    deliver_all()
    html = html_of(smtp.to("rita@example.com")[0])
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html


def test_assignment_status_and_public_reply_reach_the_right_people(smtp, people, factories):
    requester, agent, manager = people
    req = factories.make_request(requester)
    deliver_all()
    smtp.messages.clear()

    svc.assign(manager, req.id, agent.id)
    deliver_all()
    assert subjects(smtp, agent) == [f"#{req.id} Printer is jammed was assigned to you"]
    assert "Mona Manager assigned" in text_of(smtp.to(agent.email)[0])

    svc.add_comment(agent, req.id, "Could you try tray 1?\nThanks!")
    deliver_all()
    [reply] = smtp.to(requester.email)
    assert reply["Subject"] == f"Alex Agent replied on #{req.id} Printer is jammed"
    assert "> Could you try tray 1?\n> Thanks!" in text_of(reply)

    svc.change_status(agent, req.id, "resolved")
    deliver_all()
    assert subjects(smtp, requester)[-1] == f"#{req.id} Printer is jammed is now Resolved"
    assert "(it was Open)" in text_of(smtp.to(requester.email)[-1])


def test_nobody_is_mailed_about_what_they_did_themselves_or_an_internal_note(smtp, people, factories):
    requester, agent, _ = people
    req = factories.make_request(requester)
    deliver_all()
    smtp.messages.clear()

    svc.add_comment(requester, req.id, "Any news?")                 # the requester's own reply, nobody assigned
    svc.assign(agent, req.id, agent.id)                             # assigned to oneself
    svc.add_comment(agent, req.id, "Checked the logs.", internal=True)
    deliver_all()
    assert smtp.messages == []


def test_the_assignee_hears_of_a_reply_on_their_request_the_requester_of_one_to_them(smtp, people, factories):
    """A reply on a request tells both sides: the requester when staff answer, the assigned agent when the
    requester (or a colleague) writes; each in their own words, each once, never the author."""
    requester, agent, manager = people
    req = factories.make_request(requester)
    svc.assign(manager, req.id, agent.id)
    deliver_all()
    smtp.messages.clear()

    svc.add_comment(requester, req.id, "It jammed again this morning.")
    deliver_all()
    [mail] = smtp.messages
    assert mail["To"] == agent.email
    text = text_of(mail)
    assert f'replied on request #{req.id} "Printer is jammed", assigned to you' in text
    assert "> It jammed again this morning." in text
    assert "a request assigned to you" in html_of(mail)

    smtp.messages.clear()
    svc.add_comment(manager, req.id, "Ordering a new roller.")     # a colleague: requester and assignee
    deliver_all()
    assert sorted(m["To"] for m in smtp.messages) == sorted([requester.email, agent.email])
    assert f"replied on your request #{req.id}" in text_of(smtp.to(requester.email)[0])


def test_several_notifications_for_one_person_at_once_are_one_summary(smtp, people, factories):
    requester, agent, manager = people
    req = factories.make_request(requester)
    deliver_all()
    smtp.messages.clear()
    # One change that both assigns and moves the request: the requester hears of the move once,
    # and three quick changes before delivery runs are one mail, not three.
    svc.add_comment(agent, req.id, "On it.")
    svc.change_status(agent, req.id, "waiting_on_customer")
    deliver_all()
    [mail] = smtp.to(requester.email)
    assert mail["Subject"] == "2 updates on Service Portal"
    text = text_of(mail)
    assert f"- Alex Agent replied on #{req.id} Printer is jammed" in text
    assert f"- #{req.id} Printer is jammed is now Waiting on customer" in text


def test_delivering_again_sends_nothing_twice(smtp, people, factories):
    requester, _, _ = people
    factories.make_request(requester)
    assert deliver_all() == 1
    # The job runs again (a retry after the mail went out, a duplicate job): nothing is pending.
    assert notifications.deliver(requester.id) == 0
    assert len(smtp.to(requester.email)) == 1


def test_a_mail_server_that_is_down_fails_the_job_and_the_retry_sends_once(smtp, people, factories):
    requester, _, _ = people
    factories.make_request(requester)
    smtp.stop()
    with pytest.raises(OSError):
        notifications.deliver(requester.id)
    pending = db.session.scalar(select(func.count()).select_from(Notification).where(Notification.status == "pending"))
    assert pending == 1  # nothing marked sent, nothing lost

    smtp.start()
    assert notifications.deliver(requester.id) == 1
    assert notifications.deliver(requester.id) == 0
    assert len(smtp.to(requester.email)) == 1


def test_without_a_mail_server_mails_are_written_as_eml_files(app, people, factories, tmp_path):
    requester, _, _ = people
    app.config.update(MAIL_SERVER=None, MAIL_DIR=str(tmp_path / "mail"))
    req = factories.make_request(requester)
    deliver_all()
    [eml] = list((tmp_path / "mail").glob("*.eml"))
    content = eml.read_text()
    assert "To: rita@example.com" in content and f"#{req.id}" in content


def test_a_turned_off_kind_is_not_sent_and_the_account_says_so(smtp, people, factories):
    requester, _, _ = people
    notifications.save_choices(requester, ["public_comment", "status_changed"], sla_digest=False)
    factories.make_request(requester)
    assert deliver_all() == 0
    assert smtp.messages == []
    [row] = notifications.recent_for(requester)
    assert (row.status, row.reason) == ("skipped", rules.SKIPPED_TURNED_OFF)


def test_choices_offer_only_what_a_role_can_get(people):
    requester, agent, _ = people
    assert {k.code for k in rules.kinds_for("requester")} == {"request_created", "public_comment", "status_changed"}
    assert {"assigned", "sla_at_risk", "sla_breached"} <= {k.code for k in rules.kinds_for("agent")}
    with pytest.raises(ValidationFailed):
        notifications.save_choices(requester, ["sla_breached"], sla_digest=False)
    with pytest.raises(ValidationFailed):
        notifications.save_choices(agent, ["no-such-kind"], sla_digest=False)


# ---------------------------------------------------------------- SLA alerts


@pytest.fixture()
def sla_setup(people, factories):
    sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "high",
                                         "response_time_hours": 1, "resolution_time_hours": 4})
    return people


def _breach_everything() -> None:
    sla.run_check(now=utcnow() + timedelta(hours=100))


def test_a_breach_mails_the_assignee_and_every_manager_once(smtp, sla_setup, factories):
    requester, agent, manager = sla_setup
    req = factories.make_request(requester, priority="high")
    svc.assign(manager, req.id, agent.id)
    deliver_all()
    smtp.messages.clear()

    _breach_everything()
    deliver_all()
    for person in (agent, manager):
        [mail] = smtp.to(person.email)
        # Both targets breached in one check: one mail with both.
        assert mail["Subject"] == "2 updates on Service Portal"
        text = text_of(mail)
        assert f"Breached: First response target of #{req.id} Printer is jammed" in text
        assert f"Breached: Resolution target of #{req.id} Printer is jammed" in text
    assert smtp.to(requester.email) == []

    # The next check finds nothing new and writes nothing new.
    _breach_everything()
    assert notifications.sla_alerts() == 0
    assert deliver_all() == 0
    events = db.session.scalars(select(SlaEvent).where(SlaEvent.kind == "breached")).all()
    assert len(events) == 2 and all(e.notified_at is not None for e in events)


def test_one_at_risk_alert_is_a_single_mail_with_its_target(smtp, sla_setup, factories):
    requester, agent, manager = sla_setup
    req = factories.make_request(requester, priority="high")
    svc.assign(manager, req.id, agent.id)
    svc.add_comment(agent, req.id, "Looking.")  # response met, so only the resolution can be at risk
    deliver_all()
    smtp.messages.clear()

    sla.run_check(now=utcnow() + timedelta(hours=3.5))  # past 75% of 4 h, not due
    deliver_all()
    [mail] = smtp.to(agent.email)
    assert mail["Subject"] == f"At risk: Resolution target of #{req.id} Printer is jammed"
    assert "at risk of breaching" in text_of(mail)


def test_a_check_that_breaches_many_requests_sends_each_person_one_summary(smtp, sla_setup, factories):
    requester, agent, manager = sla_setup
    for _ in range(60):
        req = factories.make_request(requester, priority="high")
        svc.assign(manager, req.id, agent.id)
    deliver_all()
    smtp.messages.clear()

    _breach_everything()
    deliver_all()
    [agent_mail] = smtp.to(agent.email)
    [manager_mail] = smtp.to(manager.email)
    assert agent_mail["Subject"] == manager_mail["Subject"] == "120 updates on Service Portal"
    assert f"and {120 - rules.SUMMARY_LIST_MAX} more" in text_of(agent_mail)
    # One delivery job per person for the whole check, not one per breach.
    jobs = db.session.scalars(select(OutboxMessage.args).where(OutboxMessage.func == notifications.DELIVER_JOB)
                              .order_by(OutboxMessage.id.desc()).limit(3)).all()
    assert sorted(a[0] for a in jobs[:2]) == sorted([agent.id, manager.id])


def test_sla_alerts_in_an_hourly_digest_when_asked(smtp, sla_setup, factories):
    requester, agent, manager = sla_setup
    notifications.save_choices(agent, [k.code for k in rules.kinds_for("agent")], sla_digest=True)
    req = factories.make_request(requester, priority="high")
    svc.assign(manager, req.id, agent.id)
    deliver_all()
    assert len(smtp.to(agent.email)) == 1  # the assignment itself is not an SLA alert
    _breach_everything()
    deliver_all()
    assert len(smtp.to(agent.email)) == 1  # held for the digest
    assert len(smtp.to(manager.email)) == 1  # the manager asked for each alert

    assert notifications.send_digests() == 1
    digest = smtp.to(agent.email)[-1]
    assert digest["Subject"] == "Your Service Portal digest: 2 updates"
    assert "Here is what happened since your last email" in text_of(digest)
    assert notifications.send_digests() == 0


def test_past_the_flood_limit_mails_wait_for_the_digest(smtp, people, factories):
    requester, agent, manager = people
    for _ in range(rules.FLOOD_LIMIT + 3):
        req = factories.make_request(requester)
        svc.assign(manager, req.id, agent.id)
        deliver_all()
    assert len(smtp.to(agent.email)) == rules.FLOOD_LIMIT
    held = db.session.scalars(select(Notification).where(Notification.recipient_id == agent.id,
                                                         Notification.status == "held")).all()
    assert len(held) == 3 and {n.reason for n in held} == {rules.HELD_FOR_FLOOD}
    notifications.send_digests()
    assert smtp.to(agent.email)[-1]["Subject"] == "Your Service Portal digest: 3 updates"


def test_a_password_reset_is_always_sent_and_its_link_not_kept(smtp, people):
    requester, _, _ = people
    notifications.save_choices(requester, [], sla_digest=False)  # everything optional turned off
    notifications.password_reset(requester, "https://portal.example.com/reset/abc123", "tok-1", 30)
    deliver_all()
    [mail] = smtp.to(requester.email)
    assert "https://portal.example.com/reset/abc123" in text_of(mail) and "within 30 minutes" in text_of(mail)
    row = db.session.scalar(select(Notification).where(Notification.kind == "password_reset"))
    assert row.status == "sent" and "url" not in row.payload


def test_a_dead_letter_mails_each_admin_once(smtp, factories):
    admins = [factories.make_user("admin") for _ in range(2)]
    for _ in range(2):  # the hook runs twice for the same failure: still one mail each
        notifications.dead_letter("job-1", "jobs.exports.run_export", "exports", "Traceback...\nValueError: boom",
                                  "cid-42", "2026-12-02T18:00:00+00:00")
    deliver_all()
    for admin in admins:
        [mail] = smtp.to(admin.email)
        assert mail["Subject"] == "Job failed after its last retry: jobs.exports.run_export (exports)"
        text = text_of(mail)
        assert "ValueError: boom" in text and "cid-42" in text and "https://portal.example.com/admin/jobs" in text


def test_a_deactivated_person_is_not_mailed(smtp, people, factories):
    from portal.services import users

    requester, _, _ = people
    factories.make_request(requester)
    users.set_active(SYSTEM, requester.id, False)
    assert deliver_all() == 0
    assert smtp.messages == []


def test_old_sent_notifications_are_pruned(people, factories):
    requester, _, _ = people
    factories.make_request(requester)
    factories.make_request(requester)
    rows = db.session.scalars(select(Notification).order_by(Notification.id)).all()
    rows[0].status, rows[0].created_at = "sent", utcnow() - timedelta(days=91)
    rows[1].created_at = utcnow() - timedelta(days=91)  # still pending: never pruned
    db.session.commit()
    assert notifications.prune() == 1
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 1


def test_a_long_title_in_any_language_reads_back_intact_in_the_subject(smtp, people, factories):
    requester, _, _ = people
    title = "Drucker im 3. Stock druckt nur Müll — bitte schnell prüfen, 会议室的投影仪也坏了 " + "x" * 60
    req = factories.make_request(requester, title=title)
    deliver_all()
    [mail] = smtp.to(requester.email)
    assert mail["Subject"] == f"We received your request #{req.id} {title}"
