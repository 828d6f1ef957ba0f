"""Stale pages: a change made from an old view of a request is refused with the current state shown."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.web.helpers import HX, REQUEST_PAGE_PARTS, main_part, oob_ids, text_of


def version_on(html: str) -> int:
    """The version every form of the request page carries (they must all agree)."""
    versions = set(re.findall(r'name="version" value="(\d+)"', html))
    assert len(versions) == 1, versions
    return int(versions.pop())


def part(html: str, element_id: str) -> str:
    match = re.search(rf'<(section|div|ol) id="{element_id}".*?</\1>', html, re.S)
    assert match, element_id
    return match.group(0)


@pytest.fixture()
def desk(make):
    return {"alex": make.user("agent", name="Alex Agent"), "sam": make.user("agent", name="Sam Rivera"),
            "riley": make.user("requester", name="Riley Requester")}


def test_stale_tab_start_work_after_resolve_is_refused_with_the_current_state(login_client, make, desk):
    req = make.request(desk["riley"])
    alex = login_client(desk["alex"])
    old_tab = text_of(alex.get(f"/requests/{req.id}"))
    seen = version_on(old_tab)
    assert 'data-status="in_progress"' in old_tab  # "Start work" was on offer

    assert login_client(desk["sam"]).post(f"/requests/{req.id}/status", data={"status": "resolved"}).status_code == 303

    response = alex.post(f"/requests/{req.id}/status", data={"status": "in_progress", "version": seen}, headers=HX)
    assert response.status_code == 409
    html = text_of(response)
    panel = main_part(html)
    assert panel.lstrip().startswith('<section id="request-panel"')
    assert "Changed by <strong>Sam Rivera</strong> at <time" in panel
    assert "here is the current state" in panel and "Your change was not saved" in panel
    assert 'data-status="in_progress"' in panel  # now offered as a reopen of the resolved request
    assert "Reopen and work on it" in panel
    # Every other part shows the current state too, with the current version in its forms.
    assert oob_ids(html) == REQUEST_PAGE_PARTS - {"request-panel"}
    assert "Resolved" in part(html, "request-header")
    assert version_on(html) == seen + 1
    assert make.get_request(req.id).status == "resolved"


def test_stale_plain_post_redirects_with_the_conflict_explained(login_client, make, desk):
    req = make.request(desk["riley"])
    alex = login_client(desk["alex"])
    seen = version_on(text_of(alex.get(f"/requests/{req.id}")))
    login_client(desk["sam"]).post(f"/requests/{req.id}/properties", data={"priority": "high", "category": "hardware"})

    response = alex.post(f"/requests/{req.id}/properties",
                         data={"priority": "low", "category": "hardware", "version": seen})
    assert response.status_code == 303
    page = text_of(alex.get(response.headers["Location"]))
    assert "was changed by Sam Rivera at" in page and "here is the current state" in page
    assert make.get_request(req.id).priority == "high"


def test_stale_assign_is_refused(login_client, make, desk):
    req = make.request(desk["riley"])
    alex = login_client(desk["alex"])
    seen = version_on(text_of(alex.get(f"/requests/{req.id}")))
    login_client(desk["sam"]).post(f"/requests/{req.id}/assign", data={"assignee": "me"})
    response = alex.post(f"/requests/{req.id}/assign", data={"assignee": "me", "version": seen}, headers=HX)
    assert response.status_code == 409
    assert make.get_request(req.id).assignee_id == desk["sam"].id


def test_the_same_tab_keeps_working_after_its_own_changes(login_client, make, desk):
    """Each answer carries the new version, so a second change from the same page is not stale."""
    req = make.request(desk["riley"])
    alex = login_client(desk["alex"])
    html = text_of(alex.get(f"/requests/{req.id}"))
    for data, url in ((({"assignee": "me"}), "assign"), ({"body": "Looking now."}, "comments"),
                      ({"status": "in_progress"}, "status"), ({"priority": "high", "category": "network"},
                                                              "properties")):
        response = alex.post(f"/requests/{req.id}/{url}", data={**data, "version": version_on(html)}, headers=HX)
        assert response.status_code == 200, (url, text_of(response)[:300])
        html = text_of(response)
    after = make.get_request(req.id)
    assert (after.assignee_id, after.status, after.priority) == (desk["alex"].id, "in_progress", "high")


def test_a_version_that_is_not_a_number_is_422(login_client, make, desk):
    req = make.request(desk["riley"])
    response = login_client(desk["alex"]).post(f"/requests/{req.id}/status",
                                               data={"status": "resolved", "version": "x1"}, headers=HX)
    assert response.status_code == 422
    assert "Send the request&#39;s version as a whole number." in text_of(response)
    assert make.get_request(req.id).status == "open"


# ---------------------------------------------------------------- title and description

def test_requester_edits_title_and_description_and_the_timeline_says_so(app, login_client, make, desk):
    req = make.request(desk["riley"])
    riley = login_client(desk["riley"])
    page = text_of(riley.get(f"/requests/{req.id}"))
    assert "Edit title and description" in page
    response = riley.post(f"/requests/{req.id}/text", data={
        "edit-title": "Printer jams on tray 2 only", "edit-description": "Tray 1 works.", "version": version_on(page)},
        headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert main_part(html).lstrip().startswith('<section id="request-description"')
    assert "Title and description saved." in html
    assert "Printer jams on tray 2 only" in part(html, "request-header")
    timeline = part(html, "timeline")
    assert "renamed it “Printer is jammed” → “Printer jams on tray 2 only”" in timeline
    assert "edited the description" in timeline
    with app.app_context():
        from portal.extensions import db
        from portal.models import AuditLog

        row = db.session.scalar(select(AuditLog).where(AuditLog.action == "request.updated",
                                                       AuditLog.entity_id == req.id))
        assert row.before == {"title": "Printer is jammed", "description": "Paper stuck in tray 2."}
        assert row.after == {"title": "Printer jams on tray 2 only", "description": "Tray 1 works."}


def test_stale_text_edit_keeps_the_unsaved_text_beside_the_current_one(login_client, make, desk):
    req = make.request(desk["riley"])
    riley = login_client(desk["riley"])
    seen = version_on(text_of(riley.get(f"/requests/{req.id}")))
    login_client(desk["alex"]).post(f"/requests/{req.id}/text", data={
        "edit-title": "Tray 2 jams (Canon MX)", "edit-description": "Paper stuck in tray 2."})

    response = riley.post(f"/requests/{req.id}/text", data={
        "edit-title": "Printer jams again", "edit-description": "It happened twice today.", "version": seen},
        headers=HX)
    assert response.status_code == 409
    html = text_of(response)
    description = main_part(html)
    assert "Changed by <strong>Alex Agent</strong>" in description
    assert "Your unsaved version is below" in description
    assert 'value="Printer jams again"' in description and "It happened twice today." in description
    assert "<details class=\"edit-text\" open>" in description
    assert "Tray 2 jams (Canon MX)" in part(html, "request-header")
    assert make.get_request(req.id).title == "Tray 2 jams (Canon MX)"


def test_requester_cannot_edit_a_resolved_request_and_sees_why(login_client, make, desk):
    req = make.request(desk["riley"])
    login_client(desk["alex"]).post(f"/requests/{req.id}/status", data={"status": "resolved"})
    riley = login_client(desk["riley"])
    assert "Edit title and description" not in text_of(riley.get(f"/requests/{req.id}"))
    response = riley.post(f"/requests/{req.id}/text", data={"edit-title": "New", "edit-description": "New"},
                          headers=HX)
    assert response.status_code == 409
    assert "reopen it first" in text_of(response)
    assert make.get_request(req.id).title == "Printer is jammed"


def test_empty_title_is_422_with_the_field_error(login_client, make, desk):
    req = make.request(desk["riley"])
    response = login_client(desk["alex"]).post(f"/requests/{req.id}/text", data={
        "edit-title": "  ", "edit-description": "Still here."}, headers=HX)
    assert response.status_code == 422
    assert "This field is required." in text_of(response)
    assert make.get_request(req.id).title == "Printer is jammed"


def test_category_names_not_codes_on_the_request_page(login_client, make, desk, app):
    from portal.policy import SYSTEM
    from portal.services import categories

    with app.app_context():
        categories.create_category(SYSTEM, "av-kit", "Meeting-room AV")
    req = make.request(desk["riley"], category="av-kit")
    html = text_of(login_client(desk["alex"]).get(f"/requests/{req.id}"))
    assert "Meeting-room AV" in part(html, "request-header")
    assert "Av-kit" not in html
    listing = text_of(login_client(desk["alex"]).get("/requests"))
    assert "Meeting-room AV" in listing


def test_own_change_in_another_tab_is_named_as_such(login_client, make, desk):
    req = make.request(desk["riley"])
    alex = login_client(desk["alex"])
    seen = version_on(text_of(alex.get(f"/requests/{req.id}")))
    alex.post(f"/requests/{req.id}/status", data={"status": "resolved", "version": seen})
    response = alex.post(f"/requests/{req.id}/status", data={"status": "in_progress", "version": seen}, headers=HX)
    assert response.status_code == 409
    panel = main_part(text_of(response))
    assert "You changed this in another tab or window" in panel
    assert "flash-warning" in panel and "Changed by" not in panel
    # The panel's refusal does not open the text editor of the description sent along with it.
    assert "<details class=\"edit-text\" open>" not in part(text_of(response), "request-description")


def test_every_change_answer_retitles_the_tab(login_client, make, desk):
    req = make.request(desk["riley"])
    response = login_client(desk["alex"]).post(f"/requests/{req.id}/text", data={
        "edit-title": "Toner low", "edit-description": "Tray 2."}, headers=HX)
    assert f"<title>#{req.id} Toner low · Service Portal</title>" in text_of(response)
