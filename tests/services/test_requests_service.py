"""Service request operations as users meet them: raise, find, edit, work and read a request."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from portal.extensions import db
from portal.models import Attachment, AuditLog, Category, Comment, ServiceRequest, SlaEvent, SlaMetric
from portal.paging import PER_PAGE_MAX
from portal.services import audit, sla
from portal.services import requests as svc
from portal.services.attachments import Upload
from portal.services.errors import Conflict, Forbidden, NotFound, RequestClosed, ValidationFailed

VALID = {"title": "Laptop will not boot", "description": "Black screen after the logo.", "category": "hardware",
         "priority": "medium"}


def count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def audit_rows(req_id: int, action: str | None = None) -> list[AuditLog]:
    db.session.expire_all()
    stmt = select(AuditLog).where(AuditLog.entity_type == "service_request", AuditLog.entity_id == req_id)
    if action:
        stmt = stmt.where(AuditLog.action == action)
    return list(db.session.scalars(stmt.order_by(AuditLog.id)))


def set_row(req, **values) -> None:
    db.session.execute(update(ServiceRequest).where(ServiceRequest.id == req.id).values(**values))
    db.session.commit()


def ids(page) -> list[int]:
    return [r.id for r in page.items]


@pytest.fixture()
def requester(factories):
    return factories.make_user("requester")


@pytest.fixture()
def agent(factories):
    return factories.make_user("agent")


# ---------------------------------------------------------------- create_request

@pytest.mark.parametrize(("overrides", "fields"), [
    ({"title": ""}, {"title"}),
    ({"title": "   "}, {"title"}),
    ({"title": None}, {"title"}),
    ({"title": "x" * 201}, {"title"}),
    ({"description": ""}, {"description"}),
    ({"category": "plumbing"}, {"category"}),
    ({"category": ""}, {"category"}),
    ({"category": None}, {"category"}),
    ({"priority": "urgent"}, {"priority"}),
    ({"priority": "CRITICAL"}, {"priority"}),
    ({"title": "", "category": "nope", "priority": "x"}, {"title", "category", "priority"}),
])
def test_create_request_invalid_values_refused_and_nothing_written(requester, overrides, fields):
    before_audit = count(AuditLog)
    with pytest.raises(ValidationFailed) as info:
        svc.create_request(requester, **{**VALID, **overrides})
    assert set(info.value.fields) == fields
    assert info.value.status == 422
    assert count(ServiceRequest) == 0
    assert count(AuditLog) == before_audit


def test_create_request_title_of_exactly_200_characters_accepted(requester):
    req = svc.create_request(requester, **{**VALID, "title": "x" * 200})
    assert len(req.title) == 200


def test_create_request_over_long_title_message_mentions_limit(requester):
    with pytest.raises(ValidationFailed) as info:
        svc.create_request(requester, **{**VALID, "title": "y" * 201})
    assert "200" in info.value.fields["title"]


def test_create_request_inactive_category_refused(requester):
    db.session.get(Category, "network").active = False
    db.session.commit()
    with pytest.raises(ValidationFailed) as info:
        svc.create_request(requester, **{**VALID, "category": "network"})
    assert "category" in info.value.fields
    assert "network" not in info.value.fields["category"]
    assert count(ServiceRequest) == 0


def test_create_request_without_category_asks_for_one(requester):
    with pytest.raises(ValidationFailed) as info:
        svc.create_request(requester, **{**VALID, "category": ""})
    assert info.value.fields == {"category": "Choose a category."}


def test_check_new_request_reports_every_field_at_once(ctx):
    title, description, errors = svc.check_new_request("  Printer  ", "", "", "urgent")
    assert (title, description) == ("Printer", "")
    assert errors == {"description": "This field is required.", "category": "Choose a category.",
                      "priority": "Choose one of: low, medium, high, critical."}


def test_create_request_stores_trimmed_values_as_open(requester, factories):
    req = svc.create_request(requester, title="  Wi-Fi drops  ", description=" Every hour. ", category="network",
                             priority="high")
    row = factories.reload(req)
    assert (row.title, row.description, row.category, row.priority) == ("Wi-Fi drops", "Every hour.", "network",
                                                                         "high")
    assert row.status == "open"
    assert row.requester_id == requester.id
    assert row.assignee_id is None
    assert row.first_response_at is None and row.resolved_at is None and row.closed_at is None


def test_create_request_writes_created_audit_row(requester):
    req = svc.create_request(requester, **VALID)
    rows = audit_rows(req.id, "request.created")
    assert len(rows) == 1
    assert rows[0].actor_id == requester.id
    assert rows[0].before is None
    assert rows[0].after["title"] == VALID["title"]
    assert rows[0].after["status"] == "open"


def test_create_request_audit_failure_rolls_back_the_request(requester, monkeypatch):
    def broken_record(*args, **kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(audit, "record", broken_record)
    with pytest.raises(RuntimeError):
        svc.create_request(requester, **VALID)
    assert count(ServiceRequest) == 0
    assert count(AuditLog, AuditLog.entity_type == "service_request") == 0


# ---------------------------------------------------------------- get_request

def test_get_request_other_requesters_request_not_found(factories, requester):
    other = factories.make_request()
    with pytest.raises(NotFound):
        svc.get_request(requester, other.id)


def test_get_request_own_request_and_staff_see_it(factories, requester, agent):
    req = factories.make_request(requester)
    assert svc.get_request(requester, req.id).id == req.id
    assert svc.get_request(agent, req.id).id == req.id


def test_get_request_missing_id_not_found(agent):
    with pytest.raises(NotFound, match="#999"):
        svc.get_request(agent, 999)


# ---------------------------------------------------------------- list_requests

def test_list_requests_requester_sees_only_own(factories, requester):
    mine = [factories.make_request(requester), factories.make_request(requester)]
    factories.make_request()
    page = svc.list_requests(requester, svc.RequestFilters())
    assert sorted(ids(page)) == sorted(r.id for r in mine)
    assert page.total == 2


@pytest.mark.parametrize("role", ["agent", "manager", "admin"])
def test_list_requests_staff_see_all(factories, role):
    made = [factories.make_request() for _ in range(3)]
    staff = factories.make_user(role)
    page = svc.list_requests(staff, svc.RequestFilters())
    assert sorted(ids(page)) == sorted(r.id for r in made)


def test_sees_any_request_is_a_requesters_own_or_any_for_staff(factories, requester, agent):
    assert not svc.sees_any_request(requester) and not svc.sees_any_request(agent)
    factories.make_request()  # someone else's
    assert not svc.sees_any_request(requester)
    assert svc.sees_any_request(agent)
    factories.make_request(requester)
    assert svc.sees_any_request(requester)


@pytest.fixture()
def board(factories, agent):
    """A small mix of requests for filter tests."""
    other_agent = factories.make_user("agent")
    r = {}
    r["open"] = factories.make_request(title="Mouse broken", priority="low", category="hardware")
    r["progress"] = factories.make_request(title="VPN down", priority="critical", category="network")
    r["waiting"] = factories.make_request(title="Need licence", priority="high", category="software")
    r["resolved"] = factories.make_request(title="Password reset", priority="medium", category="access")
    r["closed"] = factories.make_request(title="Old ticket", priority="low", category="other")
    set_row(r["progress"], status="in_progress", assignee_id=agent.id)
    set_row(r["waiting"], status="waiting_on_customer", assignee_id=other_agent.id)
    set_row(r["resolved"], status="resolved", assignee_id=agent.id)
    set_row(r["closed"], status="closed")
    base = datetime(2024, 5, 1, tzinfo=UTC)
    for i, key in enumerate(["open", "progress", "waiting", "resolved", "closed"]):
        set_row(r[key], created_at=base + timedelta(days=i), updated_at=base + timedelta(days=10 - i))
    r["other_agent"] = other_agent
    return r


@pytest.mark.parametrize(("status", "expected"), [
    ("open", {"open"}),
    ("in_progress", {"progress"}),
    ("waiting_on_customer", {"waiting"}),
    ("resolved", {"resolved"}),
    ("closed", {"closed"}),
    ("active", {"open", "progress", "waiting"}),
    ("done", {"resolved", "closed"}),
    ("", {"open", "progress", "waiting", "resolved", "closed"}),
])
def test_list_requests_status_filter(board, agent, status, expected):
    page = svc.list_requests(agent, svc.RequestFilters(status=status))
    assert set(ids(page)) == {board[k].id for k in expected}


def test_list_requests_priority_filter(board, agent):
    page = svc.list_requests(agent, svc.RequestFilters(priority="low"))
    assert set(ids(page)) == {board["open"].id, board["closed"].id}


def test_list_requests_category_filter(board, agent):
    page = svc.list_requests(agent, svc.RequestFilters(category="network"))
    assert ids(page) == [board["progress"].id]


def test_list_requests_assignee_filters(board, agent):
    mine = svc.list_requests(agent, svc.RequestFilters(assignee="me"))
    assert set(ids(mine)) == {board["progress"].id, board["resolved"].id}
    nobody = svc.list_requests(agent, svc.RequestFilters(assignee="none"))
    assert set(ids(nobody)) == {board["open"].id, board["closed"].id}
    other = svc.list_requests(agent, svc.RequestFilters(assignee=str(board["other_agent"].id)))
    assert ids(other) == [board["waiting"].id]


def test_list_requests_filters_combine(board, agent):
    page = svc.list_requests(agent, svc.RequestFilters(status="active", assignee="me"))
    assert ids(page) == [board["progress"].id]


def test_list_requests_sort_newest_and_oldest(board, agent):
    order = [board[k].id for k in ["open", "progress", "waiting", "resolved", "closed"]]
    assert ids(svc.list_requests(agent, svc.RequestFilters(sort="oldest"))) == order
    assert ids(svc.list_requests(agent, svc.RequestFilters(sort="newest"))) == order[::-1]


def test_list_requests_sort_updated(board, agent):
    page = svc.list_requests(agent, svc.RequestFilters(sort="updated"))
    assert ids(page) == [board[k].id for k in ["open", "progress", "waiting", "resolved", "closed"]]


def test_list_requests_sort_priority_puts_critical_first(board, agent):
    page = svc.list_requests(agent, svc.RequestFilters(sort="priority"))
    assert [r.priority for r in page.items] == ["critical", "high", "medium", "low", "low"]
    assert page.items[0].id == board["progress"].id
    # Equal priority: the older request first.
    assert ids(page)[-2:] == [board["open"].id, board["closed"].id]


def test_list_requests_sort_status_follows_workflow_order(board, agent):
    page = svc.list_requests(agent, svc.RequestFilters(sort="status"))
    assert [r.status for r in page.items] == ["open", "in_progress", "waiting_on_customer", "resolved", "closed"]


@pytest.mark.parametrize(("status", "expected"), [
    ("done", ["resolved", "closed"]),
    ("active", ["open", "in_progress", "waiting_on_customer"]),
])
def test_a_status_group_sorted_by_status_lists_its_statuses_in_workflow_order(board, agent, status, expected):
    """The group's ranks are said as a condition too (the sort's index then starts at the group's
    first rank instead of walking every open request before the done ones)."""
    page = svc.list_requests(agent, svc.RequestFilters(status=status, sort="status"))
    assert [r.status for r in page.items] == expected


def test_list_requests_q_matches_title_case_insensitively(factories, agent):
    hit = factories.make_request(title="Outlook keeps CRASHING", description="nothing useful")
    factories.make_request(title="Monitor flicker", description="nothing useful")
    assert ids(svc.list_requests(agent, svc.RequestFilters(q="crashing"))) == [hit.id]
    assert ids(svc.list_requests(agent, svc.RequestFilters(q="outLOOK"))) == [hit.id]


def test_list_requests_q_matches_description_case_insensitively(factories, agent):
    hit = factories.make_request(title="Issue", description="The SharePoint site says 403")
    factories.make_request(title="Issue", description="Keyboard missing keys")
    assert ids(svc.list_requests(agent, svc.RequestFilters(q="sharepoint"))) == [hit.id]


def test_list_requests_q_hash_id_finds_request_by_number(factories, agent):
    factories.make_request(title="first", description="no numbers here")
    target = factories.make_request(title="second", description="none here either")
    page = svc.list_requests(agent, svc.RequestFilters(q=f"#{target.id}"))
    assert ids(page) == [target.id]
    assert ids(svc.list_requests(agent, svc.RequestFilters(q=str(target.id)))) == [target.id]


def test_list_requests_q_hash_id_respects_visibility(factories, requester):
    other = factories.make_request()
    assert svc.list_requests(requester, svc.RequestFilters(q=f"#{other.id}")).total == 0


def test_list_requests_q_searches_words_not_like_patterns(factories, agent):
    """Search is by words: % and _ are not wildcards, and punctuation alone finds nothing (not everything)."""
    hit = factories.make_request(title="Disk at 100% full")
    factories.make_request(title="Printer jam")
    assert ids(svc.list_requests(agent, svc.RequestFilters(q="100%"))) == [hit.id]
    assert svc.list_requests(agent, svc.RequestFilters(q="%")).total == 0
    assert svc.list_requests(agent, svc.RequestFilters(q="_")).total == 0


def test_list_requests_q_underscore_joins_nothing(factories, agent):
    hit = factories.make_request(title="Error in my_script")
    factories.make_request(title="Error in myXscript")
    assert ids(svc.list_requests(agent, svc.RequestFilters(q="my_script"))) == [hit.id]


def test_list_requests_q_words_are_prefixes_and_stemmed(factories, agent):
    """`print` finds "printer" and "printing"; `crashes` finds "crashed" (English stems)."""
    printer = factories.make_request(title="Printer offline", description="Nothing prints")
    crashed = factories.make_request(title="Laptop", description="Outlook crashed twice")
    factories.make_request(title="Monitor", description="flicker")
    assert ids(svc.list_requests(agent, svc.RequestFilters(q="print"))) == [printer.id]
    assert ids(svc.list_requests(agent, svc.RequestFilters(q="crashes"))) == [crashed.id]
    assert ids(svc.list_requests(agent, svc.RequestFilters(q=r"\\print"))) == [printer.id]  # punctuation is ignored
    assert ids(svc.list_requests(agent, svc.RequestFilters(q="print flicker"))) == []  # every word must match


def test_list_requests_q_without_words_does_not_crash(factories, agent):
    """'²'.isdigit() is True but int('²') raises: a search for a superscript must not crash the list."""
    factories.make_request(title="Need m² measurements")
    assert svc.list_requests(agent, svc.RequestFilters(q="²")).items == []


def test_list_requests_q_huge_number_searches_text_only(factories, agent):
    factories.make_request(title="ticket")
    assert svc.list_requests(agent, svc.RequestFilters(q="#99999999999")).total == 0


@pytest.mark.parametrize(("total", "per_page", "page", "pages", "on_page", "has_prev", "has_next"), [
    (0, 5, 1, 1, 0, False, False),
    (5, 5, 1, 1, 5, False, False),
    (7, 5, 1, 2, 5, False, True),
    (7, 5, 2, 2, 2, True, False),
    (7, 5, 3, 2, 2, True, False),  # past the end: the last page
    (11, 3, 2, 4, 3, True, True),
])
def test_list_requests_pagination(factories, agent, total, per_page, page, pages, on_page, has_prev, has_next):
    requester = factories.make_user("requester")
    for i in range(total):
        factories.make_request(requester, title=f"Request {i}")
    result = svc.list_requests(agent, svc.RequestFilters(per_page=per_page, page=page))
    assert result.total == total
    assert result.pages == pages
    assert len(result.items) == on_page
    assert (result.has_prev, result.has_next) == (has_prev, has_next)


def test_list_requests_pages_do_not_overlap_and_cover_everything(factories, agent):
    requester = factories.make_user("requester")
    made = {factories.make_request(requester).id for _ in range(7)}
    seen: list[int] = []
    for n in (1, 2, 3):
        seen += ids(svc.list_requests(agent, svc.RequestFilters(per_page=3, page=n)))
    assert len(seen) == 7
    assert set(seen) == made


def test_parse_filters_drops_unknown_values_and_reports_when_strict(ctx):
    f = svc.parse_filters({"status": "bogus", "priority": "high", "sort": "random", "page": "0"})
    assert (f.status, f.priority, f.sort, f.page) == ("", "high", "newest", 1)
    assert set(f.errors) == {"status", "sort", "page"}
    with pytest.raises(ValidationFailed) as info:
        svc.parse_filters({"category": "nope"}, strict=True)
    assert "category" in info.value.fields


@pytest.mark.parametrize("name", ["page", "per_page", "assignee"])
def test_parse_filters_unicode_digit_reported_not_crashing(agent, name):
    """A superscript passes str.isdigit() but not int(): it must be reported like any other bad number."""
    f = svc.parse_filters({name: "²"})
    assert name in f.errors
    assert svc.list_requests(agent, f).total == 0


def test_parse_filters_caps_per_page(ctx):
    assert svc.parse_filters({"per_page": "5000"}).per_page == PER_PAGE_MAX


# ---------------------------------------------------------------- update_request

def test_update_request_staff_changes_several_fields_with_one_audit_row(factories, agent):
    req = factories.make_request()
    svc.update_request(agent, req.id, {"title": "New title", "priority": "high", "category": "software"})
    row = factories.reload(req)
    assert (row.title, row.priority, row.category) == ("New title", "high", "software")
    rows = audit_rows(req.id, "request.updated")
    assert len(rows) == 1
    assert rows[0].before == {"title": "Printer is jammed", "priority": "medium", "category": "hardware"}
    assert rows[0].after == {"title": "New title", "priority": "high", "category": "software"}


def test_update_request_valid_title_with_invalid_priority_changes_nothing(factories, agent):
    req = factories.make_request()
    audit_before = count(AuditLog)
    with pytest.raises(ValidationFailed) as info:
        svc.update_request(agent, req.id, {"title": "Better title", "priority": "urgent"})
    assert set(info.value.fields) == {"priority"}
    row = factories.reload(req)
    assert row.title == "Printer is jammed"
    assert row.priority == "medium"
    assert count(AuditLog) == audit_before


def test_update_request_valid_title_with_invalid_transition_changes_nothing(factories, agent):
    req = factories.make_request()
    audit_before = count(AuditLog)
    with pytest.raises(Conflict):
        svc.update_request(agent, req.id, {"title": "Better title", "status": "closed"})
    row = factories.reload(req)
    assert row.title == "Printer is jammed"
    assert row.status == "open"
    assert count(AuditLog) == audit_before


def test_update_request_valid_title_with_bad_assignee_changes_nothing(factories, agent, requester):
    req = factories.make_request()
    with pytest.raises(ValidationFailed):
        svc.update_request(agent, req.id, {"title": "Better title", "assignee_id": requester.id})
    assert factories.reload(req).title == "Printer is jammed"


@pytest.mark.parametrize("field", ["priority", "category", "assignee_id"])
def test_update_request_requester_cannot_change_staff_fields(factories, requester, agent, field):
    req = factories.make_request(requester)
    value = {"priority": "critical", "category": "software", "assignee_id": agent.id}[field]
    with pytest.raises(Forbidden):
        svc.update_request(requester, req.id, {field: value})
    row = factories.reload(req)
    assert (row.priority, row.category, row.assignee_id) == ("medium", "hardware", None)


def test_update_request_requester_edits_own_open_request(factories, requester):
    req = factories.make_request(requester)
    svc.update_request(requester, req.id, {"title": "Printer jammed again", "description": "Tray 3 now."})
    row = factories.reload(req)
    assert (row.title, row.description) == ("Printer jammed again", "Tray 3 now.")


@pytest.mark.parametrize("status", ["resolved", "closed"])
def test_update_request_requester_cannot_edit_finished_request(factories, requester, status):
    req = factories.make_request(requester)
    set_row(req, status=status)
    with pytest.raises(Conflict, match="reopen"):
        svc.update_request(requester, req.id, {"title": "Changed"})
    assert factories.reload(req).title == "Printer is jammed"


def test_update_request_requester_cannot_edit_someone_elses_request(factories, requester):
    other = factories.make_request()
    with pytest.raises(NotFound):
        svc.update_request(requester, other.id, {"title": "Mine now"})


def test_update_request_no_real_change_writes_no_audit(factories, agent):
    req = factories.make_request()
    before = count(AuditLog)
    svc.update_request(agent, req.id, {"title": "Printer is jammed", "priority": "medium"})
    assert count(AuditLog) == before


def test_update_request_touches_updated_at(factories, agent):
    req = factories.make_request()
    old = datetime(2020, 1, 1, tzinfo=UTC)
    set_row(req, updated_at=old)
    svc.update_request(agent, req.id, {"priority": "low"})
    assert factories.reload(req).updated_at > old


# ---------------------------------------------------------------- change_status / assign

def test_change_status_valid_move_writes_status_changed_audit(factories, agent):
    req = factories.make_request()
    svc.change_status(agent, req.id, "in_progress")
    row = factories.reload(req)
    assert row.status == "in_progress"
    assert row.first_response_at is not None
    rows = audit_rows(req.id, "request.status_changed")
    assert len(rows) == 1
    assert rows[0].before == {"status": "open"} and rows[0].after == {"status": "in_progress"}


def test_change_status_invalid_transition_conflict_and_no_audit(factories, agent):
    req = factories.make_request()
    before = count(AuditLog)
    with pytest.raises(Conflict) as info:
        svc.change_status(agent, req.id, "closed")
    assert "resolved first" in info.value.message
    assert "status" in info.value.fields
    assert factories.reload(req).status == "open"
    assert count(AuditLog) == before


def test_change_status_unknown_status_validation_failed(factories, agent):
    req = factories.make_request()
    with pytest.raises(ValidationFailed):
        svc.change_status(agent, req.id, "archived")


def test_change_status_same_status_conflict(factories, agent):
    req = factories.make_request()
    with pytest.raises(Conflict, match="already"):
        svc.change_status(agent, req.id, "open")


def test_change_status_full_lifecycle_timestamps(factories, agent, requester):
    req = factories.make_request(requester)
    svc.change_status(agent, req.id, "in_progress")
    svc.change_status(agent, req.id, "resolved")
    resolved_at = factories.reload(req).resolved_at
    assert resolved_at is not None
    svc.change_status(requester, req.id, "closed")
    row = factories.reload(req)
    assert row.status == "closed"
    assert row.resolved_at == resolved_at
    assert row.closed_at is not None
    svc.change_status(agent, req.id, "open")  # staff reopen a closed request; its requester cannot
    row = factories.reload(req)
    assert row.status == "open"
    assert row.resolved_at is None and row.closed_at is None
    assert row.first_response_at is not None


def test_change_status_requester_cannot_work_request(factories, requester):
    req = factories.make_request(requester)
    with pytest.raises(Conflict):
        svc.change_status(requester, req.id, "in_progress")


def test_assign_to_agent_writes_assigned_audit(factories, agent):
    req = factories.make_request()
    svc.assign(agent, req.id, agent.id)
    assert factories.reload(req).assignee_id == agent.id
    rows = audit_rows(req.id, "request.assigned")
    assert len(rows) == 1
    assert rows[0].after == {"assignee_id": agent.id}
    svc.assign(agent, req.id, None)
    assert factories.reload(req).assignee_id is None


def test_assign_to_requester_validation_failed(factories, agent, requester):
    req = factories.make_request()
    with pytest.raises(ValidationFailed) as info:
        svc.assign(agent, req.id, requester.id)
    assert "assignee_id" in info.value.fields
    assert factories.reload(req).assignee_id is None


def test_assign_to_inactive_agent_validation_failed(factories, agent):
    gone = factories.make_user("agent", active=False)
    req = factories.make_request()
    with pytest.raises(ValidationFailed) as info:
        svc.assign(agent, req.id, gone.id)
    assert "assignee_id" in info.value.fields
    assert factories.reload(req).assignee_id is None


@pytest.mark.parametrize("value", [999999, "abc", True, 1.5, pytest.param("²", id="superscript-two")])
def test_assign_to_nonsense_validation_failed(factories, agent, value):
    req = factories.make_request()
    with pytest.raises(ValidationFailed):
        svc.assign(agent, req.id, value)


def test_assign_by_requester_forbidden(factories, requester, agent):
    req = factories.make_request(requester)
    with pytest.raises(Forbidden):
        svc.assign(requester, req.id, agent.id)


# ---------------------------------------------------------------- add_comment

def test_add_comment_first_public_staff_comment_sets_first_response_at(factories, agent):
    req = factories.make_request()
    svc.add_comment(agent, req.id, "Looking into it.")
    first = factories.reload(req).first_response_at
    assert first is not None
    svc.add_comment(agent, req.id, "Still looking.")
    assert factories.reload(req).first_response_at == first


def test_add_comment_internal_note_does_not_set_first_response_at(factories, agent):
    req = factories.make_request()
    svc.add_comment(agent, req.id, "Probably the fuser.", internal=True)
    assert factories.reload(req).first_response_at is None


def test_add_comment_requester_comment_does_not_set_first_response_at(factories, requester):
    req = factories.make_request(requester)
    svc.add_comment(requester, req.id, "Any news?")
    assert factories.reload(req).first_response_at is None


def test_add_comment_requester_reply_on_waiting_moves_to_in_progress(factories, agent, requester):
    req = factories.make_request(requester)
    svc.change_status(agent, req.id, "waiting_on_customer")
    svc.add_comment(requester, req.id, "Here is the info you asked for.")
    assert factories.reload(req).status == "in_progress"
    rows = audit_rows(req.id, "request.updated")
    assert rows and rows[-1].after["status"] == "in_progress"


def test_add_comment_staff_comment_on_waiting_keeps_status(factories, agent):
    req = factories.make_request()
    svc.change_status(agent, req.id, "waiting_on_customer")
    svc.add_comment(agent, req.id, "Reminder: please reply.")
    assert factories.reload(req).status == "waiting_on_customer"


def test_add_comment_requester_internal_forbidden(factories, requester):
    req = factories.make_request(requester)
    with pytest.raises(Forbidden):
        svc.add_comment(requester, req.id, "secret", internal=True)
    assert count(Comment) == 0


def test_add_comment_empty_body_validation_failed(factories, agent):
    req = factories.make_request()
    with pytest.raises(ValidationFailed) as info:
        svc.add_comment(agent, req.id, "   ")
    assert "body" in info.value.fields
    assert count(Comment) == 0


def test_add_comment_on_invisible_request_not_found(factories, requester):
    other = factories.make_request()
    with pytest.raises(NotFound):
        svc.add_comment(requester, other.id, "hello")


def _finished(factories, agent, requester, status: str, **overrides):
    """A request of `requester`, resolved (and closed, for "closed") by `agent`."""
    req = factories.make_request(requester, **overrides)
    svc.change_status(agent, req.id, "resolved")
    if status == "closed":
        svc.change_status(agent, req.id, "closed")
    return factories.reload(req)


def test_add_comment_requester_reply_on_resolved_reopens_it_with_audit_and_sla(factories, agent, requester):
    req = _finished(factories, agent, requester, "resolved")
    assert req.resolved_at is not None

    comment = svc.add_comment(requester, req.id, "It broke again this morning.")

    row = factories.reload(req)
    assert (row.status, row.resolved_at, row.closed_at) == ("open", None, None)
    assert count(Comment, Comment.request_id == req.id) == 1 and comment.body == "It broke again this morning."
    reopened = audit_rows(req.id, "request.updated")[-1]
    assert (reopened.actor_id, reopened.before, reopened.after) == (requester.id, {"status": "resolved"},
                                                                     {"status": "open"})
    [resumed] = db.session.scalars(select(SlaEvent).where(SlaEvent.request_id == req.id, SlaEvent.kind == "resumed"))
    assert resumed.detail == {"reason": "reopened", "to": "open"}
    metric = db.session.scalar(select(SlaMetric).where(SlaMetric.request_id == req.id))
    assert (metric.status, metric.resolved_at) == ("open", None)
    changes = [e.changes for e in svc.timeline(requester, row) if e.kind == "event" and e.changes]
    assert changes[-1] == [("status", "resolved", "open")]


def test_add_comment_staff_reply_on_resolved_keeps_it_resolved(factories, agent, requester):
    req = _finished(factories, agent, requester, "resolved")
    svc.add_comment(agent, req.id, "Glad it works now.")
    svc.add_comment(agent, req.id, "Closing tomorrow.", internal=True)
    row = factories.reload(req)
    assert row.status == "resolved" and row.resolved_at is not None
    assert not [r for r in audit_rows(req.id, "request.updated") if "status" in r.after]


def test_add_comment_requester_reply_on_closed_refused_and_nothing_saved(app, factories, agent, requester):
    req = _finished(factories, agent, requester, "closed")
    audit_before, version = count(AuditLog), req.version
    upload_dir = Path(app.config["UPLOAD_DIR"])
    files_before = set(upload_dir.iterdir()) if upload_dir.exists() else set()
    with pytest.raises(RequestClosed) as info:
        svc.add_comment(requester, req.id, "Still broken.", uploads=[_upload("photo.jpg")])
    assert info.value.status == 409 and info.value.code == "request_closed"
    assert f"#{req.id} is closed" in info.value.message and "follow-up" in info.value.message
    row = factories.reload(req)
    assert (row.status, row.version) == ("closed", version)
    assert count(Comment) == 0 and count(Attachment) == 0
    assert count(AuditLog) == audit_before
    assert (set(upload_dir.iterdir()) if upload_dir.exists() else set()) == files_before


def test_add_comment_staff_may_still_write_on_a_closed_request(factories, agent, requester):
    req = _finished(factories, agent, requester, "closed")
    svc.add_comment(agent, req.id, "Duplicate of #1, for the record.", internal=True)
    assert factories.reload(req).status == "closed"
    assert count(Comment, Comment.request_id == req.id) == 1


# ---------------------------------------------------------------- follow-ups

def test_open_follow_up_prefills_from_the_closed_request_and_links_it(factories, agent, requester):
    req = _finished(factories, agent, requester, "closed", title="VPN drops", category="network", priority="high")

    follow = svc.open_follow_up(requester, req.id, "  It drops again since the update.  ")

    row = factories.reload(follow)
    assert (row.title, row.description, row.category, row.priority, row.status) == (
        f"Follow-up to #{req.id}: VPN drops", "It drops again since the update.", "network", "high", "open")
    assert (row.follow_up_of_id, row.requester_id) == (req.id, requester.id)
    assert factories.reload(req).status == "closed"
    assert svc.follow_ups_of(requester, req) == [follow.id] == svc.follow_ups_of(agent, req)
    [created] = audit_rows(follow.id, "request.created")
    assert created.after["follow_up_of_id"] == req.id
    [noted] = audit_rows(req.id, "request.followed_up")
    assert noted.after == {"follow_up_id": follow.id}
    assert sla.get_metric(follow.id) is not None  # its own SLA clock


def test_open_follow_up_title_is_shortened_to_fit(factories, agent, requester):
    req = _finished(factories, agent, requester, "closed", title="x" * 200)
    follow = svc.open_follow_up(requester, req.id, "Again.")
    assert len(follow.title) == 200 and follow.title.startswith(f"Follow-up to #{req.id}: xxx")
    assert follow.title.endswith("…")


def test_open_follow_up_keeps_a_category_retired_since(factories, agent, requester):
    req = _finished(factories, agent, requester, "closed", category="network")
    db.session.get(Category, "network").active = False
    db.session.commit()
    assert svc.open_follow_up(requester, req.id, "Again.").category == "network"


@pytest.mark.parametrize("status", ["open", "resolved"])
def test_open_follow_up_of_a_request_not_closed_is_refused(factories, agent, requester, status):
    req = factories.make_request(requester) if status == "open" else _finished(factories, agent, requester, status)
    with pytest.raises(Conflict) as info:
        svc.open_follow_up(requester, req.id, "Again.")
    assert "reply on it instead" in info.value.message
    assert count(ServiceRequest) == 1


def test_open_follow_up_only_by_its_requester(factories, agent, requester):
    req = _finished(factories, agent, requester, "closed")
    with pytest.raises(Forbidden):
        svc.open_follow_up(agent, req.id, "Again.")
    with pytest.raises(NotFound):
        svc.open_follow_up(factories.make_user("requester"), req.id, "Again.")
    with pytest.raises(ValidationFailed) as info:
        svc.open_follow_up(requester, req.id, "   ")
    assert set(info.value.fields) == {"description"}
    assert count(ServiceRequest) == 1


# ---------------------------------------------------------------- timeline

def _upload(name: str, data: bytes = b"data") -> Upload:
    return Upload(name, io.BytesIO(data))


def test_timeline_hides_internal_comments_and_their_attachments_from_requester(factories, agent, requester):
    req = factories.make_request(requester)
    public = svc.add_comment(agent, req.id, "We are on it.", uploads=[_upload("steps.txt")])
    internal = svc.add_comment(agent, req.id, "Vendor RMA 42.", internal=True, uploads=[_upload("rma.pdf")])
    row = factories.reload(req)

    seen = svc.timeline(requester, row)
    comment_ids = [e.comment.id for e in seen if e.kind == "comment"]
    assert comment_ids == [public.id]
    files = [a.filename for e in seen for a in e.attachments]
    assert files == ["steps.txt"]
    assert [a.filename for a in svc.request_attachments(requester, row)] == ["steps.txt"]

    staff_view = svc.timeline(agent, row)
    assert {e.comment.id for e in staff_view if e.kind == "comment"} == {public.id, internal.id}
    assert sorted(a.filename for e in staff_view for a in e.attachments) == ["rma.pdf", "steps.txt"]
    assert sorted(a.filename for a in svc.request_attachments(agent, row)) == ["rma.pdf", "steps.txt"]


def test_timeline_includes_events_oldest_first(factories, agent, requester):
    req = factories.make_request(requester)
    svc.change_status(agent, req.id, "in_progress")
    svc.add_comment(agent, req.id, "Working on it.")
    entries = svc.timeline(requester, factories.reload(req))
    kinds = [(e.kind, e.event.action if e.event else None) for e in entries]
    assert kinds[0] == ("event", "request.created")
    assert ("event", "request.status_changed") in kinds
    assert ("comment", None) in kinds
    ats = [e.at for e in entries]
    assert ats == sorted(ats)


def test_get_attachment_internal_note_file_not_found_for_requester(factories, agent, requester):
    req = factories.make_request(requester)
    svc.add_comment(agent, req.id, "note", internal=True, uploads=[_upload("secret.txt")])
    att = db.session.scalar(select(Attachment))
    with pytest.raises(NotFound):
        svc.get_attachment(requester, att.id)
    assert svc.get_attachment(agent, att.id).id == att.id


def test_timeline_events_show_readable_changes(factories, agent, requester):
    req = factories.make_request(requester)
    svc.assign(agent, req.id, agent.id)
    svc.add_comment(agent, req.id, "On it.")  # sets first_response_at only: no separate event line
    svc.change_status(agent, req.id, "waiting_on_customer")
    svc.add_comment(requester, req.id, "Answer.")
    entries = svc.timeline(requester, factories.reload(req))
    changes = [e.changes for e in entries if e.kind == "event" and e.event.action != "request.created"]
    assert changes == [
        [("assignee", None, agent.name)],
        [("status", "open", "waiting_on_customer")],
        [("status", "waiting_on_customer", "in_progress")],
    ]


def test_list_search_matching_many_merges_text_and_comment_matches_in_order(factories, agent, requester,
                                                                           monkeypatch):
    """Past SEARCH_SMALL matches a search reads title/description matches and comment matches as
    separate ordered streams and merges them: every page in order, nothing twice, nothing missed;
    a requester never finds a request by an internal note."""
    from portal.services.requests import queries

    monkeypatch.setattr(queries, "SEARCH_SMALL", 2)
    by_title = [factories.make_request(requester, title=f"Toner low {i}") for i in range(4)]
    by_comment = [factories.make_request(requester, title=f"Printer {i}") for i in range(4)]
    for req in by_comment:
        svc.add_comment(agent, req.id, "Replaced the toner cartridge.")
    noted = factories.make_request(requester, title="Scanner")
    svc.add_comment(agent, noted.id, "Toner supplier is slow", internal=True)
    factories.make_request(requester, title="Unrelated")

    def walk(actor, sort: str) -> list[int]:
        seen, f = [], svc.RequestFilters(q="toner", sort=sort, per_page=3)
        while True:
            page = svc.list_requests(actor, f)
            assert not page.total_exact and page.total == 2  # "more than 2"
            seen += ids(page)
            if not page.next_cursor:
                return seen
            f = svc.RequestFilters(q="toner", sort=sort, per_page=3, after=page.next_cursor)

    everyone = [r.id for r in (*by_title, *by_comment)]
    assert walk(agent, "newest") == sorted([*everyone, noted.id], reverse=True)
    assert walk(agent, "oldest") == sorted([*everyone, noted.id])
    assert walk(requester, "newest") == sorted(everyone, reverse=True)
    best_match = svc.RequestFilters(q="toner", sort="relevance")
    svc.list_requests(agent, best_match)
    assert best_match.unranked and best_match.sort == "newest"  # too many to rank


def test_list_search_ranks_title_matches_above_description_matches(factories, agent):
    in_title = factories.make_request(title="VPN drops every hour", description="Since Monday")
    in_description = factories.make_request(title="Laptop", description="The vpn client hangs")
    f = svc.parse_filters({"q": "vpn"})
    assert f.sort == "relevance"  # the default while searching
    page = svc.list_requests(agent, f)
    assert ids(page) == [in_title.id, in_description.id]
    assert "\ue000VPN\ue001" in page.highlights[in_title.id][0]
    assert "\ue000vpn\ue001" in page.highlights[in_description.id][1]
