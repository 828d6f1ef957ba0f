"""The audit log read back: the confirmation checks ask the same rules as the changes, and the admins'
audit page lists the log newest first, filtered and paged by position, through its indexes."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from portal import policy
from portal.extensions import db
from portal.models import AuditLog
from portal.models._time import utcnow
from portal.policy import SYSTEM
from portal.services import audit, sla_admin, users
from portal.services.errors import Conflict, Forbidden, NotFound, ValidationFailed

PORTAL = Path(__file__).resolve().parents[2] / "portal"


def audit_count(*where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(AuditLog).where(*where))


# ---------------------------------------------------------------- the confirmation asks the same rules

def test_check_role_change_allows_what_change_role_allows_and_writes_nothing(ctx, factories):
    admin = factories.make_user("admin")
    sam = factories.make_user("agent", name="Sam Rivera")
    before = audit_count()
    assert users.check_role_change(admin, sam.id, "manager").id == sam.id
    assert factories.reload(sam).role == "agent"
    assert audit_count() == before


@pytest.mark.parametrize("role", ["agent", "manager", "requester"])
def test_check_role_change_refuses_the_last_admin_with_the_changes_own_message(ctx, factories, role):
    admin = factories.make_user("admin")
    with pytest.raises(Conflict) as asked:
        users.check_role_change(admin, admin.id, role)
    with pytest.raises(Conflict) as changed:
        users.change_role(admin, admin.id, role)
    assert asked.value.message == changed.value.message == "The last active admin must stay an admin."


def test_check_role_change_same_role_says_there_is_nothing_to_change(ctx, factories):
    admin = factories.make_user("admin")
    sam = factories.make_user("agent", name="Sam Rivera")
    with pytest.raises(ValidationFailed) as refused:
        users.check_role_change(admin, sam.id, "agent")
    assert refused.value.fields["role"] == "Sam Rivera is already agent: choose another role."


@pytest.mark.parametrize("role", ["root", "", "Admin"])
def test_check_role_change_unknown_role_refused(ctx, factories, role):
    admin = factories.make_user("admin")
    with pytest.raises(ValidationFailed):
        users.check_role_change(admin, factories.make_user("agent").id, role)


def test_check_and_change_refuse_a_non_admin_and_an_unknown_account(ctx, factories):
    manager = factories.make_user("manager")
    target = factories.make_user("agent")
    for check in (lambda: users.check_role_change(manager, target.id, "admin"),
                  lambda: users.check_set_active(manager, target.id, False)):
        with pytest.raises(Forbidden):
            check()
    admin = factories.make_user("admin")
    with pytest.raises(NotFound):
        users.check_role_change(admin, 999_999, "agent")
    with pytest.raises(NotFound):
        users.check_set_active(admin, 999_999, False)


def test_check_set_active_refusals_match_set_active(ctx, factories):
    first = factories.make_user("admin")
    second = factories.make_user("admin")
    for check in (users.check_set_active, users.set_active):
        with pytest.raises(Forbidden, match="You cannot deactivate your own account."):
            check(first, first.id, False)
    users.set_active(first, second.id, False)
    with pytest.raises(Conflict, match="already deactivated"):
        users.check_set_active(first, second.id, False)
    with pytest.raises(Conflict, match="last active admin cannot be deactivated"):
        users.check_set_active(SYSTEM, first.id, False)
    with pytest.raises(Conflict, match="last active admin cannot be deactivated"):
        users.set_active(SYSTEM, first.id, False)


def test_change_role_from_a_role_it_no_longer_has_is_refused_naming_who_changed_it(ctx, factories):
    admin = factories.make_user("admin", name="Ada Admin")
    other = factories.make_user("admin", name="Ben Admin")
    sam = factories.make_user("agent", name="Sam Rivera")
    users.change_role(other, sam.id, "admin")
    rows = audit_count()
    with pytest.raises(Conflict) as refused:
        users.change_role(admin, sam.id, "manager", expected_role="agent")
    assert refused.value.message.startswith("Sam Rivera is admin now, not agent: Ben Admin changed it on ")
    assert refused.value.message.endswith("Nothing was changed.")
    assert factories.reload(sam).role == "admin"
    assert audit_count() == rows
    # The same change made from the role it has goes through.
    assert users.change_role(admin, sam.id, "manager", expected_role="admin").role == "manager"


def test_set_active_from_a_state_it_no_longer_has_is_refused(ctx, factories):
    admin = factories.make_user("admin")
    sam = factories.make_user("agent", name="Sam Rivera")
    users.set_active(admin, sam.id, False)
    with pytest.raises(Conflict, match="Sam Rivera is deactivated now, not active: you changed it"):
        users.set_active(admin, sam.id, False, expected_active=True)
    assert users.set_active(admin, sam.id, True, expected_active=False).active is True


# ---------------------------------------------------------------- SLA definitions

@pytest.fixture()
def definition(ctx):
    return sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "medium",
                                                "response_time_hours": 4, "resolution_time_hours": 24})


def test_set_definition_active_records_a_deactivation_with_before_and_after(ctx, factories, definition):
    admin = factories.make_user("admin")
    assert sla_admin.check_definition_active(admin, definition.id, False).id == definition.id
    sla_admin.set_definition_active(admin, definition.id, False, expected_active=True)
    [row] = db.session.scalars(select(AuditLog).where(AuditLog.action == "sla_definition.deactivated")).all()
    assert (row.entity_type, row.entity_id, row.actor_id) == ("sla_definition", definition.id, admin.id)
    assert (row.before, row.after) == ({"is_active": True}, {"is_active": False})
    with pytest.raises(Conflict, match="already inactive"):
        sla_admin.check_definition_active(admin, definition.id, False)
    with pytest.raises(Conflict, match="hardware / medium is inactive now, not active"):
        sla_admin.set_definition_active(admin, definition.id, False, expected_active=True)


def test_reactivating_beside_another_active_definition_is_refused_by_check_and_change(ctx, factories, definition):
    admin = factories.make_user("admin")
    sla_admin.set_definition_active(admin, definition.id, False)
    sla_admin.create_definition(admin, {"category": "hardware", "priority": "medium", "response_time_hours": 1,
                                        "resolution_time_hours": 8})
    for change in (sla_admin.check_definition_active, sla_admin.set_definition_active):
        with pytest.raises(Conflict, match="There is already an active definition for hardware / medium"):
            change(admin, definition.id, True)


def test_definition_activity_needs_the_sla_configure_permission(ctx, factories, definition):
    manager = factories.make_user("manager")
    for change in (sla_admin.check_definition_active, sla_admin.set_definition_active):
        with pytest.raises(Forbidden):
            change(manager, definition.id, False)
    with pytest.raises(NotFound):
        sla_admin.check_definition_active(SYSTEM, 999_999, False)


# ---------------------------------------------------------------- reading the log

def _entries(n: int, at=None, **kw) -> list[AuditLog]:
    """n audit rows written straight (the page reads what any change wrote)."""
    at = at or utcnow()
    rows = [AuditLog(action=kw.get("action", "user.created"), entity_type=kw.get("entity_type", "user"),
                     entity_id=kw.get("entity_id", i + 1), before=None, after={"name": f"n{i}"},
                     at=at - timedelta(seconds=kw.get("step", 1) * i)) for i in range(n)]
    db.session.add_all(rows)
    db.session.commit()
    return rows


def _walk(f: audit.AuditFilters, per_page: int) -> list[int]:
    """Every id, page after page by the Older link."""
    seen = []
    while True:
        page = audit.list_entries(f, per_page=per_page)
        seen += [e.id for e in page.items]
        if not page.has_next:
            return seen
        f = audit.AuditFilters(entity_type=f.entity_type, action=f.action, entity_id=f.entity_id,
                               after=page.next_cursor)


def test_list_entries_pages_newest_first_by_position_with_ties_in_time(ctx):
    now = utcnow()
    rows = _entries(7, at=now, step=0) + _entries(5, at=now - timedelta(minutes=5))  # 7 rows share one time
    expected = sorted(rows, key=lambda r: (r.at, r.id), reverse=True)
    assert _walk(audit.AuditFilters(), 3) == [r.id for r in expected]
    first = audit.list_entries(audit.AuditFilters(), per_page=3)
    assert not first.has_prev and first.has_next
    # Back from the second page: the first again.
    second = audit.list_entries(audit.AuditFilters(after=first.next_cursor), per_page=3)
    back = audit.list_entries(audit.AuditFilters(before=second.prev_cursor), per_page=3)
    assert [e.id for e in back.items] == [e.id for e in first.items] and not back.has_prev


def test_list_entries_filters_by_kind_action_and_entity(ctx):
    _entries(4)
    _entries(3, action="calendar.holiday_removed", entity_type="business_calendar", entity_id=9)
    _entries(2, action="user.role_changed", entity_id=5)
    kinds = audit.list_entries(audit.AuditFilters(entity_type="business_calendar")).items
    assert {(e.entity_type, e.action) for e in kinds} == {("business_calendar", "calendar.holiday_removed")}
    assert len(kinds) == 3
    assert len(audit.list_entries(audit.AuditFilters(action="user.role_changed")).items) == 2
    one = audit.list_entries(audit.AuditFilters(entity_type="user", entity_id=5)).items
    assert {e.entity_id for e in one} == {5} and len(one) == 2
    assert _walk(audit.AuditFilters(entity_type="user"), 2) == [
        e.id for e in audit.list_entries(audit.AuditFilters(entity_type="user"), per_page=50).items]


@pytest.mark.parametrize(("args", "errors"), [
    ({"entity_type": "planet"}, {"entity_type"}),
    ({"action": "user.exploded"}, {"action"}),
    ({"entity_id": "7"}, {"entity_id"}),
    ({"entity_type": "user", "entity_id": "x7"}, {"entity_id"}),
    ({"entity_type": "user", "entity_id": "99999999999999"}, {"entity_id"}),
    ({"entity_type": ["user"], "action": None}, set()),
    ({"entity_type": "user", "entity_id": "7", "action": "user.role_changed"}, set()),
])
def test_parse_filters_drops_what_is_not_valid_with_a_reason(args, errors):
    f = audit.parse_filters(args)
    assert set(f.errors) == errors
    for name in errors:
        assert not getattr(f, name)


@pytest.mark.parametrize("token", ["nonsense", "W10", "WyJ4IiwxXQ", "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwxXQ", "=" * 40])
def test_a_damaged_page_link_shows_the_newest_with_a_message(ctx, token):
    _entries(3)
    f = audit.AuditFilters(after=token)
    page = audit.list_entries(f)
    assert len(page.items) == 3 and f.errors == {"after": "That page link is out of date; showing the newest changes."}


def test_describe_shows_only_what_changed_in_words(ctx, factories):
    admin = factories.make_user("admin")
    sam = factories.make_user("agent", name="Sam Rivera")
    users.change_role(admin, sam.id, "manager")
    entry = db.session.scalars(select(AuditLog).where(AuditLog.action == "user.role_changed")).one()
    [row] = audit.present([entry])
    assert (row.actor, row.action, row.entity_kind, row.entity_name) == (admin.name, "Role changed", "Account",
                                                                           "Sam Rivera")
    assert row.changes == [audit.FieldChange("Role", "Agent", "Manager")]


def test_describe_a_removed_holiday_and_an_edited_definition(ctx):
    cal = sla_admin.create_calendar(SYSTEM, {"name": "Office", "timezone": "Europe/London",
                                             "working_days": [0, 1, 2, 3, 4], "opens": "09:00", "closes": "18:00"})
    holiday, _ = sla_admin.add_holiday(SYSTEM, cal.id, date(2026, 12, 25), "Christmas Day")
    sla_admin.remove_holiday(SYSTEM, holiday.id)
    definition = sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "high",
                                                      "response_time_hours": 1, "resolution_time_hours": 8})
    sla_admin.update_definition(SYSTEM, definition.id, {"response_time_hours": 0.5, "calendar_id": cal.id,
                                                        "pause_statuses": ["waiting_on_customer", "in_progress"]})
    removed = db.session.scalars(select(AuditLog).where(AuditLog.action == "calendar.holiday_removed")).one()
    edited = db.session.scalars(select(AuditLog).where(AuditLog.action == "sla_definition.updated")).one()
    gone, changed = audit.present([removed, edited])
    assert (gone.actor, gone.entity_name) == ("System", "Office")
    assert gone.changes == [audit.FieldChange("Date", "25 Dec 2026", None),
                            audit.FieldChange("Name", "Christmas Day", None)]
    assert changed.entity_name == "Hardware / High"
    assert {c.label: (c.before, c.after) for c in changed.changes} == {
        "Respond within": ("1 h", "30 min"),
        "Counts": ("none", "business hours: Office"),
        "Clock pauses while": ("Waiting on customer", "In progress, Waiting on customer"),
    }


def test_value_text_keeps_long_and_odd_values_short_and_plain():
    assert audit.value_text("description", "x" * 500).endswith("…") and len(audit.value_text("description",
                                                                                            "x" * 500)) == 140
    assert audit.value_text("active", False) == "no"
    assert audit.value_text("working_days", [0, 4, 9]) == "Mon, Fri, 9"
    assert audit.value_text("day", "not a date") == "not a date"
    assert audit.value_text("created_at", "2026-12-05T14:02:00+00:00") == "05 Dec 2026 14:02 UTC"
    assert audit.value_text("extra", {"a": 1}) == '{"a": 1}'


def test_every_action_the_portal_records_is_in_the_catalogue():
    """A new audit action gets its words on the audit page (and a place in its filter)."""
    found: set[str] = set()
    for path in PORTAL.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        for call in re.finditer(r"audit\.record(?:_changes)?\(", source):
            depth, end = 1, call.end()
            while depth and end < len(source):
                depth += {"(": 1, ")": -1}.get(source[end], 0)
                end += 1
            args = source[call.end():end - 1]
            found.update(re.findall(r'"([a-z0-9_]+\.[a-z0-9_]+)"', args.split(",", 2)[1] if "," in args else ""))
            namer = re.match(r"\s*[^,]+,\s*([A-Za-z_]\w*)\s*,", args)
            if namer and f"def {namer.group(1)}(" in source:
                body = source.split(f"def {namer.group(1)}(", 1)[1].split("\ndef ", 1)[0]
                found.update(re.findall(r'"([a-z0-9_]+\.[a-z0-9_]+)"', body))
    assert {"user.role_changed", "request.assigned", "calendar.holiday_removed"} <= found  # the scan works
    assert found - set(audit.ACTION_LABELS) == set(), "add these to portal/services/audit.py ACTIONS"
    assert set(audit.ACTIONS) <= set(audit.ENTITY_TYPES)


def test_the_audit_page_permission_is_admin_only():
    assert policy.PERMISSIONS["audit.read"][0] == "admin"


def test_audit_page_queries_use_their_indexes(ctx):
    """Whole log, by kind, by action, one entity: each page one walk of an index in the page's order."""
    # A log shaped like a real one (mostly request and account rows, a few of each admin change), analysed.
    db.session.execute(text("""
        INSERT INTO audit_log (action, entity_type, entity_id, at)
        SELECT CASE WHEN g % 2 = 0 THEN 'comment.added' ELSE 'user.password_changed' END,
               CASE WHEN g % 2 = 0 THEN 'service_request' ELSE 'user' END, g % 700, now() - g * interval '1 minute'
          FROM generate_series(1, 6000) AS g"""))
    _entries(4, action="calendar.holiday_removed", entity_type="business_calendar", entity_id=9)
    _entries(4, action="user.role_changed", entity_id=3)
    db.session.execute(text("ANALYZE audit_log"))
    db.session.commit()
    mark = (utcnow(), 10)

    def explain(f: audit.AuditFilters) -> str:
        statements: list[str] = []

        def capture(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().upper().startswith("SELECT") and "audit_log" in statement:
                statements.append(cursor.mogrify(statement, parameters).decode())

        from sqlalchemy import event

        event.listen(db.engine, "before_cursor_execute", capture)
        try:
            audit.list_entries(f)
        finally:
            event.remove(db.engine, "before_cursor_execute", capture)
        assert statements and not any("OFFSET" in s or "count(" in s.lower() for s in statements), statements
        # A few test rows would be read whole and sorted; price that out, as at a million rows.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            db.session.execute(text(f"SET LOCAL {setting} = off"))
        plans = ["\n".join(db.session.execute(text("EXPLAIN " + s)).scalars()) for s in statements]
        db.session.rollback()
        return "\n".join(plans)

    cursor = audit._cursor(AuditLog(at=mark[0], id=mark[1]))
    cases = [
        (audit.AuditFilters(), "ix_audit_log_at"),
        (audit.AuditFilters(after=cursor), "ix_audit_log_at"),
        (audit.AuditFilters(before=cursor), "ix_audit_log_at"),
        (audit.AuditFilters(entity_type="business_calendar", after=cursor), "ix_audit_log_entity_type_at"),
        (audit.AuditFilters(action="user.role_changed", after=cursor), "ix_audit_log_action_at"),
        (audit.AuditFilters(entity_type="user", entity_id=3, after=cursor), "ix_audit_log_entity"),
    ]
    for f, index in cases:
        plan = explain(f)
        assert re.search(rf"using {index} on audit_log", plan) and "Seq Scan on audit_log" not in plan, (f, plan)
        assert "Sort Key: audit_log.at" not in plan or "Presorted Key" in plan, (f, plan)


def test_a_refused_definition_change_names_who_changed_its_state_not_who_edited_it_since(ctx, factories, definition):
    ada = factories.make_user("admin", name="Ada Admin")
    ben = factories.make_user("admin", name="Ben Admin")
    cleo = factories.make_user("admin", name="Cleo Admin")
    sla_admin.set_definition_active(ben, definition.id, False)
    sla_admin.update_definition(cleo, definition.id, {"response_time_hours": 2})
    with pytest.raises(Conflict) as refused:
        sla_admin.set_definition_active(ada, definition.id, False, expected_active=True)
    assert "hardware / medium is inactive now, not active: Ben Admin changed it on" in refused.value.message
