"""Admin safety on the pages: role changes and deactivations (of accounts and SLA definitions) ask first,
inline in their row; the audit page lists the log and undoes what can be undone, asking first too."""

from __future__ import annotations

import re
from datetime import date
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.web.helpers import HX, csrf_from_form, link_with_rel, text_of


@pytest.fixture()
def admin(make):
    return make.user("admin", name="Ada Admin", email="ada@example.com")


@pytest.fixture()
def sam(make):
    return make.user("agent", name="Sam Rivera", email="sam@example.com")


def _audit(app, action: str | None = None) -> list[tuple]:
    from sqlalchemy import select

    from portal.extensions import db
    from portal.models import AuditLog

    with app.app_context():
        stmt = select(AuditLog).order_by(AuditLog.id)
        if action:
            stmt = stmt.where(AuditLog.action == action)
        return [(e.id, e.action, e.entity_id, e.before, e.after) for e in db.session.scalars(stmt)]


def _only_tr(html: str) -> str:
    body = html.strip()
    assert body.startswith("<tr") and body.endswith("</tr>") and "<html" not in body, body[:200]
    return body


def _words(html: str) -> str:
    """The text a person reads: tags gone, spaces collapsed (none before punctuation)."""
    return re.sub(r" ([?.,:;])", r"\1", " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split()))


def _signed_in(client, user):
    """Sign in through the form with its CSRF token (for tests with checking on)."""
    token = csrf_from_form(text_of(client.get("/login")))
    assert client.post("/login", data={"email": user.email, "password": user.password,
                                       "csrf_token": token}).status_code == 303
    return client


# ---------------------------------------------------------------- users: role change asks first

def test_the_role_select_no_longer_saves_on_change(login_client, admin, sam):
    html = text_of(login_client(admin).get("/admin/users"))
    row = re.search(rf'<tr id="user-{sam.id}".*?</tr>', html, re.S).group(0)
    assert 'hx-trigger="change"' not in row and "<noscript>" not in row
    assert re.search(r'<button type="submit" class="linkish"[^>]*>Change<span class="visually-hidden"> the role of '
                     r"Sam Rivera</span></button>", row)


def test_role_change_htmx_first_asks_in_the_row_then_confirm_changes_it(app, login_client, make, admin, sam):
    client = login_client(admin)
    asked = client.post(f"/admin/users/{sam.id}/role", data={"role": "manager"}, headers=HX)
    assert asked.status_code == 200
    row = _only_tr(text_of(asked))
    assert f'<tr id="user-{sam.id}" class="confirming">' in row
    assert "Change Sam Rivera from agent to manager? They are signed out and sign in again with the new role." in \
        _words(row)
    for hidden in ('name="confirm" value="yes"', 'name="role" value="manager"', 'name="from_role" value="agent"'):
        assert hidden in row
    assert ">Confirm</button>" in row and ">Cancel</a>" in row and 'hx-target="#users-admin"' in row
    assert make.get_user(sam.id).role == "agent" and _audit(app, "user.role_changed") == []

    done = client.post(f"/admin/users/{sam.id}/role", data={"role": "manager", "from_role": "agent", "confirm": "yes"},
                       headers=HX)
    assert done.status_code == 200
    assert text_of(done).lstrip().startswith('<div id="users-admin"')
    assert "Sam Rivera is now manager." in text_of(done)
    assert make.get_user(sam.id).role == "manager"
    [(_, _, entity, before, after)] = _audit(app, "user.role_changed")
    assert (entity, before["role"], after["role"]) == (sam.id, "agent", "manager")


def test_role_change_without_javascript_is_a_full_page_with_the_same_question(login_client, make, admin, sam):
    client = login_client(admin)
    asked = client.post(f"/admin/users/{sam.id}/role", data={"role": "manager"})
    assert asked.status_code == 200
    html = text_of(asked)
    assert "<html" in html and f'<tr id="user-{sam.id}" class="confirming">' in html
    assert "Change Sam Rivera from agent to manager?" in _words(html)
    # Every other row is as usual.
    assert f'<tr id="user-{admin.id}" class="">' in html
    done = client.post(f"/admin/users/{sam.id}/role", data={"role": "manager", "from_role": "agent", "confirm": "yes"})
    assert done.status_code == 303 and done.headers["Location"] == "/admin/users"
    assert "Sam Rivera is now manager." in text_of(client.get("/admin/users"))
    assert make.get_user(sam.id).role == "manager"


def test_cancel_leads_back_to_the_list_with_nothing_changed(login_client, make, admin, sam):
    client = login_client(admin)
    row = text_of(client.post(f"/admin/users/{sam.id}/role", data={"role": "admin"}, headers=HX))
    cancel = re.search(r'<a class="button subtle" href="([^"]+)" hx-get="([^"]+)"', row)
    assert cancel.groups() == ("/admin/users", "/admin/users")
    back = client.get(cancel.group(2), headers=HX)
    assert back.status_code == 200 and 'class="confirming"' not in text_of(back)
    assert make.get_user(sam.id).role == "agent"


def test_refusal_shows_in_the_row_before_any_confirmation(app, login_client, make, admin):
    response = login_client(admin).post(f"/admin/users/{admin.id}/role", data={"role": "agent"}, headers=HX)
    assert response.status_code == 409
    row = _only_tr(text_of(response))
    assert 'class="confirming refused"' in row and "The last active admin must stay an admin." in row
    assert "Confirm" not in row and "Back to the list" in row
    assert make.get_user(admin.id).role == "admin"


def test_choosing_the_role_someone_already_has_says_so_in_the_row(login_client, admin, sam):
    response = login_client(admin).post(f"/admin/users/{sam.id}/role", data={"role": "agent"}, headers=HX)
    assert response.status_code == 422
    assert "Sam Rivera is already agent: choose another role." in _only_tr(text_of(response))


def test_own_role_change_warns_about_losing_the_admin_pages(login_client, make, admin):
    make.user("admin")  # not the last admin
    response = login_client(admin).post(f"/admin/users/{admin.id}/role", data={"role": "manager"}, headers=HX)
    assert "Change your own role from admin to manager? You lose the admin pages as soon as you confirm." in \
        _words(text_of(response))


def test_confirming_a_role_change_made_stale_meanwhile_is_refused(app, login_client, make, admin, sam):
    ben = make.user("admin", name="Ben Admin")
    ada_client, ben_client = login_client(admin), login_client(ben)
    ada_client.post(f"/admin/users/{sam.id}/role", data={"role": "manager"}, headers=HX)  # Ada is asked...
    ben_client.post(f"/admin/users/{sam.id}/role", data={"role": "admin", "from_role": "agent", "confirm": "yes"})
    response = ada_client.post(f"/admin/users/{sam.id}/role",  # ...and confirms after Ben's change
                               data={"role": "manager", "from_role": "agent", "confirm": "yes"}, headers=HX)
    assert response.status_code == 409
    html = text_of(response)
    assert html.lstrip().startswith('<div id="users-admin"')
    assert "Sam Rivera is admin now, not agent: Ben Admin changed it on" in html and "Nothing was changed." in html
    assert make.get_user(sam.id).role == "admin"


@pytest.mark.parametrize("data", [{"role": "root"}, {"role": "agent", "from_role": "boss", "confirm": "yes"}])
def test_bad_role_values_are_refused_with_a_message(login_client, make, admin, sam, data):
    response = login_client(admin).post(f"/admin/users/{sam.id}/role", data=data, headers=HX)
    assert response.status_code == 422 and "Choose a valid role." in text_of(response)
    assert make.get_user(sam.id).role == "agent"


# ---------------------------------------------------------------- users: deactivation asks first

def test_deactivation_asks_first_then_deactivates(app, login_client, make, admin, sam):
    client = login_client(admin)
    asked = client.post(f"/admin/users/{sam.id}/active", data={"active": "false"}, headers=HX)
    assert asked.status_code == 200
    row = _only_tr(text_of(asked))
    assert ("Deactivate Sam Rivera (sam@example.com)? They are signed out everywhere and their API tokens stop "
            "working.") in _words(row)
    assert 'name="active" value="false"' in row and 'class="danger-solid"' in row
    assert make.get_user(sam.id).active is True and _audit(app, "user.deactivated") == []

    done = client.post(f"/admin/users/{sam.id}/active", data={"active": "false", "confirm": "yes"}, headers=HX)
    assert done.status_code == 200 and "Sam Rivera was deactivated" in text_of(done)
    assert make.get_user(sam.id).active is False
    # Confirming again (a second tab): the account is no longer active, and nothing is written twice.
    again = client.post(f"/admin/users/{sam.id}/active", data={"active": "false", "confirm": "yes"}, headers=HX)
    assert again.status_code == 409 and "Sam Rivera is deactivated now, not active" in text_of(again)
    assert len(_audit(app, "user.deactivated")) == 1


def test_deactivation_without_javascript_asks_on_a_full_page(login_client, make, admin, sam):
    client = login_client(admin)
    asked = client.post(f"/admin/users/{sam.id}/active", data={"active": "false"})
    assert asked.status_code == 200 and "<html" in text_of(asked)
    assert "Deactivate Sam Rivera" in _words(text_of(asked))
    done = client.post(f"/admin/users/{sam.id}/active", data={"active": "false", "confirm": "yes"})
    assert done.status_code == 303 and make.get_user(sam.id).active is False


def test_reactivation_needs_no_question(login_client, make, admin, sam):
    make.deactivate(sam)
    response = login_client(admin).post(f"/admin/users/{sam.id}/active", data={"active": "true"}, headers=HX)
    assert response.status_code == 200 and "Sam Rivera was reactivated." in text_of(response)
    assert make.get_user(sam.id).active is True


@pytest.mark.parametrize("data", [{}, {"active": "maybe"}])
def test_deactivation_without_a_clear_choice_is_refused(login_client, make, admin, sam, data):
    response = login_client(admin).post(f"/admin/users/{sam.id}/active", data=data, headers=HX)
    assert response.status_code == 422 and "Choose to activate or deactivate." in text_of(response)
    assert make.get_user(sam.id).active is True


def test_an_expired_form_is_said_so_and_changes_nothing(app, make, admin, sam, csrf_on):
    client = _signed_in(app.test_client(), admin)
    response = client.post(f"/admin/users/{sam.id}/role", data={"role": "manager", "confirm": "yes",
                                                                "csrf_token": "stale"})
    assert response.status_code == 400 and "The form expired" in text_of(response)
    assert make.get_user(sam.id).role == "agent"


def test_the_two_steps_work_with_csrf_on(app, make, admin, sam, csrf_on):
    client = _signed_in(app.test_client(), admin)
    token = csrf_from_form(text_of(client.get("/admin/users")))
    asked = text_of(client.post(f"/admin/users/{sam.id}/role", data={"role": "manager", "csrf_token": token},
                                headers=HX))
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', asked))
    assert fields["confirm"] == "yes" and fields["csrf_token"]
    done = client.post(f"/admin/users/{sam.id}/role", data=fields, headers=HX)
    assert done.status_code == 200 and make.get_user(sam.id).role == "manager"


# ---------------------------------------------------------------- SLA definitions: deactivation asks first

@pytest.fixture()
def definition(app):
    from portal.policy import SYSTEM
    from portal.services import sla_admin

    with app.app_context():
        return sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "medium",
                                                    "response_time_hours": 4, "resolution_time_hours": 24}).id


def _definition_active(app, definition_id: int) -> bool:
    from portal.extensions import db
    from portal.models import SlaDefinition

    with app.app_context():
        return db.session.get(SlaDefinition, definition_id).is_active


def test_definition_deactivation_asks_in_the_row_then_deactivates(app, login_client, admin, definition):
    client = login_client(admin)
    asked = client.post(f"/admin/sla/{definition}/active", data={"active": "false"}, headers=HX)
    assert asked.status_code == 200
    row = _only_tr(text_of(asked))
    assert "Deactivate Hardware / medium? New hardware requests of medium priority start without an SLA" in \
        _words(row)
    assert _definition_active(app, definition) is True
    done = client.post(f"/admin/sla/{definition}/active", data={"active": "false", "confirm": "yes"}, headers=HX)
    assert done.status_code == 200 and "hardware / medium is now inactive." in text_of(done)
    assert _definition_active(app, definition) is False
    [(_, _, entity, before, after)] = _audit(app, "sla_definition.deactivated")
    assert (entity, before, after) == (definition, {"is_active": True}, {"is_active": False})


def test_definition_deactivation_without_javascript_asks_on_the_page(app, login_client, admin, definition):
    client = login_client(admin)
    asked = client.post(f"/admin/sla/{definition}/active", data={"active": "false"})
    assert asked.status_code == 200 and "<html" in text_of(asked) and 'class="confirming"' in text_of(asked)
    assert _definition_active(app, definition) is True


def test_definition_already_inactive_says_so_in_the_row(app, login_client, admin, definition):
    client = login_client(admin)
    client.post(f"/admin/sla/{definition}/active", data={"active": "false", "confirm": "yes"})
    response = client.post(f"/admin/sla/{definition}/active", data={"active": "false"}, headers=HX)
    assert response.status_code == 409
    assert "hardware / medium is already inactive: there is nothing to change." in _only_tr(text_of(response))


def test_the_edit_row_of_an_active_definition_cannot_deactivate_it(app, login_client, admin, definition):
    client = login_client(admin)
    html = text_of(client.get(f"/admin/sla/{definition}", headers=HX))
    edit_row = re.search(r'<tr class="editing">.*?</tr>', html, re.S).group(0)
    assert 'name="edit-is_active"' not in edit_row and "use Deactivate in the list: it asks first" in edit_row
    data = {"edit-response_time_hours": "2", "edit-resolution_time_hours": "12", "edit-at_risk_percent": "75"}
    assert client.post(f"/admin/sla/{definition}", data=data, headers=HX).status_code == 200  # no Active box sent
    assert _definition_active(app, definition) is True


# ---------------------------------------------------------------- the audit page

@pytest.fixture()
def history(app, make, admin, sam):
    """Ada changed Sam to manager, deactivated him, and removed a holiday; ids of those entries."""
    from portal.extensions import db
    from portal.models import User
    from portal.policy import SYSTEM
    from portal.services import sla_admin, users

    with app.app_context():
        ada = db.session.get(User, admin.id)
        users.change_role(ada, sam.id, "manager")
        users.set_active(ada, sam.id, False)
        cal = sla_admin.create_calendar(SYSTEM, {"name": "Office", "timezone": "Europe/London",
                                                 "working_days": [0, 1, 2, 3, 4], "opens": "09:00", "closes": "18:00"})
        holiday, _ = sla_admin.add_holiday(SYSTEM, cal.id, date(2026, 12, 25), "Christmas Day")
        sla_admin.remove_holiday(ada, holiday.id)
        calendar_id = cal.id
    return {action: entry_id for entry_id, action, *_ in _audit(app)} | {"calendar": calendar_id}


def test_audit_page_lists_changes_newest_first_in_words(login_client, admin, sam, history):
    response = login_client(admin).get("/admin/audit")
    assert response.status_code == 200
    html = text_of(response)
    assert "<h1>Audit log</h1>" in html and '<section id="audit-log"' in html
    ids = [int(i) for i in re.findall(r'<tr id="audit-(\d+)"', html)]
    assert ids == sorted(ids, reverse=True) and history["user.role_changed"] in ids
    role_row = re.search(rf'<tr id="audit-{history["user.role_changed"]}".*?</tr>', html, re.S).group(0)
    words = _words(role_row)
    assert "Ada Admin Role changed Sam Rivera Account" in words and "Role: Agent → Manager" in words
    assert f'href="/admin/users#user-{sam.id}"' in role_row
    assert f'href="/admin/audit?entity_type=user&amp;entity_id={sam.id}"' in role_row
    assert ">Change back to agent</button>" in role_row
    holiday_row = re.search(rf'<tr id="audit-{history["calendar.holiday_removed"]}".*?</tr>', html, re.S).group(0)
    assert "Holiday removed Office" in _words(holiday_row) and "Date: 25 Dec 2026 Name: Christmas Day" in \
        _words(holiday_row)
    assert f'href="/admin/calendars/{history["calendar"]}"' in holiday_row and ">Restore holiday</button>" in \
        holiday_row
    created = re.search(rf'<tr id="audit-{history["user.created"]}".*?</tr>', html, re.S).group(0)
    assert "<button" not in created  # nothing to undo there
    assert 'aria-current="page">Audit log</a>' in html


def test_audit_page_filters_by_kind_action_and_entity(login_client, admin, sam, history):
    client = login_client(admin)
    html = text_of(client.get("/admin/audit?entity_type=business_calendar", headers={**HX, "HX-Target": "audit-log"}))
    assert html.lstrip().startswith('<section id="audit-log"') and "<html" not in html
    assert "Holiday removed" in html and "Role changed" not in html
    html = text_of(client.get("/admin/audit?action=user.deactivated"))
    assert len(re.findall(r'<tr id="audit-', html)) == 1 and "Account deactivated" in html
    assert '<option value="user.deactivated" selected>' in html
    html = text_of(client.get(f"/admin/audit?entity_type=user&entity_id={sam.id}"))
    assert "Only the history of one account: <strong>Sam Rivera</strong>" in html
    rows = re.findall(r'<tr id="audit-(\d+)".*?</tr>', html, re.S)
    assert {history["user.role_changed"], history["user.deactivated"]} <= {int(i) for i in rows}
    assert len(rows) == 3  # and the account's creation
    assert all(f'href="/admin/users#user-{sam.id}"' in row for row in re.findall(r'<tr id="audit-.*?</tr>', html, re.S))


@pytest.mark.parametrize(("query", "message"), [
    ("entity_type=planet", "That kind of thing is not one the log records"),
    ("action=user.exploded", "That change is not one the log records"),
    ("entity_id=12", "A number needs the kind of thing it is"),
    ("after=garbage", "That page link is out of date; showing the newest changes."),
])
def test_audit_page_bad_filters_are_ignored_with_a_message(login_client, admin, history, query, message):
    response = login_client(admin).get(f"/admin/audit?{query}")
    assert response.status_code == 200
    html = text_of(response)
    assert "Some filters were ignored:" in html and message in html
    assert 'id="audit-' in html


def test_audit_page_pages_by_position(app, login_client, admin):
    from portal.extensions import db
    from portal.models import AuditLog

    with app.app_context():
        db.session.add_all(AuditLog(action="user.password_changed", entity_type="user", entity_id=admin.id)
                           for _ in range(120))
        db.session.commit()
    client = login_client(admin)
    seen: list[int] = []
    url = "/admin/audit?action=user.password_changed"
    pages = 0
    while url:
        html = text_of(client.get(url))
        seen += [int(i) for i in re.findall(r'<tr id="audit-(\d+)"', html)]
        pages += 1
        url = link_with_rel(html, "next")
        if url:
            assert "after=" in url and "page=" not in url and "action=user.password_changed" in url
    assert pages == 3 and len(seen) == len(set(seen)) == 120
    last = text_of(client.get(link_with_rel(text_of(client.get("/admin/audit?action=user.password_changed")),
                                            "next")))
    newer = link_with_rel(last, "prev")
    assert parse_qs(urlsplit(newer).query)["before"]
    assert re.findall(r'<tr id="audit-(\d+)"', text_of(client.get(newer)))[0] == str(max(seen))


def test_audit_page_empty_states(login_client, admin):
    client = login_client(admin)
    assert "No changes match these filters." in text_of(client.get("/admin/audit?action=backup.downloaded"))


@pytest.mark.parametrize("role", ["requester", "agent", "manager"])
def test_audit_page_and_undo_are_for_admins_only(app, login_client, make, history, role):
    client = login_client(make.user(role))
    assert client.get("/admin/audit").status_code == 403
    entry = history["user.deactivated"]
    assert client.post(f"/admin/audit/{entry}/undo", data={"confirm": "yes"}).status_code == 403
    assert 'href="/admin/audit"' not in text_of(client.get("/requests"))
    assert make.get_user(_audit(app, "user.deactivated")[0][2]).active is False


# ---------------------------------------------------------------- undo from the audit page

def test_undo_asks_in_the_row_then_undoes_and_shows_the_undo_in_the_log(app, login_client, make, admin, sam,
                                                                          history):
    client = login_client(admin)
    entry = history["user.role_changed"]
    asked = client.post(f"/admin/audit/{entry}/undo", data={"entity_type": "user"}, headers=HX)
    assert asked.status_code == 200
    row = _only_tr(text_of(asked))
    assert "Change Sam Rivera back from manager to agent?" in _words(row)
    assert 'name="entity_type" value="user"' in row and 'name="confirm" value="yes"' in row
    assert make.get_user(sam.id).role == "manager"

    done = client.post(f"/admin/audit/{entry}/undo", data={"entity_type": "user", "confirm": "yes"}, headers=HX)
    assert done.status_code == 200
    html = text_of(done)
    assert html.lstrip().startswith('<section id="audit-log"') and "Sam Rivera is agent again." in html
    assert make.get_user(sam.id).role == "agent"
    newest = re.findall(r'<tr id="audit-(\d+)".*?</tr>', html, re.S)[0]
    assert int(newest) > entry and "Business calendar" not in html  # the filter was kept
    assert "Role: Manager → Agent" in _words(re.search(rf'<tr id="audit-{newest}".*?</tr>', html, re.S).group(0))


def test_undo_without_javascript_asks_on_the_page_and_redirects_back_to_the_same_list(login_client, make, admin,
                                                                                      sam, history):
    client = login_client(admin)
    entry = history["user.deactivated"]
    asked = client.post(f"/admin/audit/{entry}/undo", data={"action": "user.deactivated"})
    assert asked.status_code == 200
    html = text_of(asked)
    assert "<html" in html and f'<tr id="audit-{entry}" class="confirming">' in html
    assert "Reactivate Sam Rivera? They can sign in again" in _words(html)
    done = client.post(f"/admin/audit/{entry}/undo", data={"action": "user.deactivated", "confirm": "yes"})
    assert done.status_code == 303 and done.headers["Location"] == "/admin/audit?action=user.deactivated"
    assert "Sam Rivera was reactivated." in text_of(client.get(done.headers["Location"]))
    assert make.get_user(sam.id).active is True


def test_undo_refused_when_changed_since_shows_why_in_the_row(app, login_client, make, admin, sam, history):
    from portal.extensions import db
    from portal.models import User
    from portal.services import users

    with app.app_context():
        users.change_role(db.session.get(User, admin.id), sam.id, "admin")
    client = login_client(admin)
    response = client.post(f"/admin/audit/{history['user.role_changed']}/undo", data={}, headers=HX)
    assert response.status_code == 409
    row = _only_tr(text_of(response))
    assert "Sam Rivera is admin now, not manager: you changed it on" in row
    assert "Nothing was changed." in row and "Confirm" not in row
    # Confirming anyway (an old page): the same refusal, above the list, nothing changed.
    confirmed = client.post(f"/admin/audit/{history['user.role_changed']}/undo", data={"confirm": "yes"},
                            headers=HX)
    assert confirmed.status_code == 409 and "Sam Rivera is admin now, not manager" in text_of(confirmed)
    assert make.get_user(sam.id).role == "admin"


def test_restore_holiday_from_the_audit_page(app, login_client, admin, history):
    client = login_client(admin)
    entry = history["calendar.holiday_removed"]
    asked = _only_tr(text_of(client.post(f"/admin/audit/{entry}/undo", headers=HX)))
    assert "Restore Christmas Day (25 Dec 2026) to the calendar Office?" in _words(asked)
    done = client.post(f"/admin/audit/{entry}/undo", data={"confirm": "yes"}, headers=HX)
    assert "Christmas Day (25 Dec 2026) is a holiday of Office again." in text_of(done)
    twice = client.post(f"/admin/audit/{entry}/undo", data={"confirm": "yes"})
    assert twice.status_code == 303
    assert "25 Dec 2026 is a holiday of Office again already (Christmas Day)" in text_of(
        client.get(twice.headers["Location"]))


@pytest.mark.parametrize("headers", [{}, HX], ids=["plain", "htmx"])
def test_undo_of_an_entry_that_cannot_be_undone_or_does_not_exist(login_client, admin, history, headers):
    client = login_client(admin)
    response = client.post(f"/admin/audit/{history['user.created']}/undo", headers=headers)
    assert response.status_code == 409 and "cannot be undone from the audit log" in text_of(response)
    assert ("<html" in text_of(response)) is not bool(headers)  # without JavaScript: the page, the reason in the row
    assert client.post("/admin/audit/987654/undo", headers=headers).status_code == 404


def test_undo_question_without_javascript_shows_the_entry_even_when_newer_ones_pushed_it_off(app, login_client,
                                                                                            admin, history):
    from portal.extensions import db
    from portal.models import AuditLog

    with app.app_context():
        db.session.add_all(AuditLog(action="user.password_changed", entity_type="user", entity_id=admin.id)
                           for _ in range(60))
        db.session.commit()
    entry = history["user.role_changed"]
    html = text_of(login_client(admin).post(f"/admin/audit/{entry}/undo"))  # the list's first page, as it is now
    assert f'<tr id="audit-{entry}" class="confirming">' in html
    assert "Change Sam Rivera back from manager to agent?" in _words(html)
    assert link_with_rel(html, "prev")  # the newer ones are a page away
