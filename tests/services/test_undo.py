"""Undo from the audit log: through the owning service, audited, only from the state the entry left,
and of two admins undoing the same entry at once exactly one wins (real PostgreSQL, racing threads)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditLog, Holiday, SlaDefinition, User
from portal.policy import SYSTEM
from portal.services import sla_admin, undo, users
from portal.services.errors import Conflict, Forbidden, NotFound, ServiceError
from tests.services.test_concurrency import race

ROUNDS = 8


def last_entry(action: str) -> AuditLog:
    db.session.expire_all()
    return db.session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id.desc())).first()


def entries(action: str) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == action))


def actor(user_id: int) -> User:
    return db.session.get(User, user_id)


@pytest.fixture()
def office(ctx):
    """A calendar whose Christmas Day was removed (the entry to restore it from)."""
    cal = sla_admin.create_calendar(SYSTEM, {"name": "Office", "timezone": "Europe/London",
                                             "working_days": [0, 1, 2, 3, 4], "opens": "09:00", "closes": "18:00"})
    holiday, _ = sla_admin.add_holiday(SYSTEM, cal.id, date(2026, 12, 25), "Christmas Day")
    sla_admin.remove_holiday(SYSTEM, holiday.id)
    return cal


# ---------------------------------------------------------------- what can be undone

def test_offers_only_where_an_undo_makes_sense(ctx, factories, office):
    admin = factories.make_user("admin")
    sam = factories.make_user("agent", name="Sam Rivera")
    users.change_role(admin, sam.id, "manager")
    users.set_active(admin, sam.id, False)
    users.set_active(admin, sam.id, True)
    definition = sla_admin.create_definition(admin, {"category": "hardware", "priority": "medium",
                                                     "response_time_hours": 4, "resolution_time_hours": 24})
    sla_admin.set_definition_active(admin, definition.id, False)
    sla_admin.update_definition(admin, definition.id, {"response_time_hours": 2})
    offers = {e.action: undo.offer_for(e) for e in db.session.scalars(select(AuditLog))}
    assert offers["user.role_changed"] == undo.UndoOffer(undo.ROLE_BACK, "Change back to agent")
    assert offers["user.deactivated"] == undo.UndoOffer(undo.REACTIVATE_USER, "Reactivate")
    assert offers["sla_definition.deactivated"] == undo.UndoOffer(undo.REACTIVATE_DEFINITION, "Reactivate")
    assert offers["calendar.holiday_removed"] == undo.UndoOffer(undo.RESTORE_HOLIDAY, "Restore holiday")
    for action in ("user.created", "user.activated", "sla_definition.created", "sla_definition.updated",
                   "calendar.created", "calendar.holiday_added"):
        assert offers[action] is None, action


def test_an_api_deactivation_of_a_definition_offers_reactivation_too(ctx, factories):
    definition = sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "medium",
                                                      "response_time_hours": 4, "resolution_time_hours": 24})
    sla_admin.update_definition(SYSTEM, definition.id, {"is_active": False, "response_time_hours": 2})
    assert undo.offer_for(last_entry("sla_definition.updated")).kind == undo.REACTIVATE_DEFINITION


def test_an_entry_with_nothing_to_undo_or_none_at_all_is_refused(ctx, factories):
    admin = factories.make_user("admin")
    with pytest.raises(Conflict, match="cannot be undone from the audit log"):
        undo.check(admin, last_entry("user.created").id)
    with pytest.raises(NotFound):
        undo.check(admin, 999_999)


# ---------------------------------------------------------------- undoing

def test_undo_a_role_change_changes_it_back_and_is_audited(ctx, factories):
    admin = factories.make_user("admin")
    sam = factories.make_user("agent", name="Sam Rivera")
    users.change_role(admin, sam.id, "manager")
    entry = last_entry("user.role_changed")
    plan = undo.check(admin, entry.id)
    assert plan.question.startswith("Change Sam Rivera back from manager to agent?")
    assert factories.reload(sam).role == "manager"  # asking changes nothing
    assert undo.undo(admin, entry.id).done == "Sam Rivera is agent again."
    assert factories.reload(sam).role == "agent"
    back = last_entry("user.role_changed")
    assert back.id != entry.id and (back.before["role"], back.after["role"], back.actor_id) == (
        "manager", "agent", admin.id)
    # The same entry again: the role is no longer the entry's "after".
    with pytest.raises(Conflict, match="Sam Rivera is agent now, not manager: you changed it"):
        undo.undo(admin, entry.id)
    assert entries("user.role_changed") == 2


def test_undo_a_role_change_refused_when_changed_since_and_nothing_is_written(ctx, factories):
    ada = factories.make_user("admin", name="Ada Admin")
    ben = factories.make_user("admin", name="Ben Admin")
    sam = factories.make_user("agent", name="Sam Rivera")
    users.change_role(ada, sam.id, "manager")
    entry = last_entry("user.role_changed")
    users.change_role(ben, sam.id, "admin")
    for step in (undo.check, undo.undo):
        with pytest.raises(Conflict) as refused:
            step(ada, entry.id)
        assert refused.value.message.startswith("Sam Rivera is admin now, not manager: Ben Admin changed it on")
    assert factories.reload(sam).role == "admin" and entries("user.role_changed") == 2


def test_undoing_a_promotion_of_the_last_admin_is_refused_by_the_usual_rule(ctx, factories):
    first = factories.make_user("admin")
    sam = factories.make_user("agent")
    users.change_role(first, sam.id, "admin")
    entry = last_entry("user.role_changed")
    users.set_active(sam, first.id, False)  # Sam is now the only active admin
    with pytest.raises(Conflict, match="The last active admin must stay an admin."):
        undo.check(SYSTEM, entry.id)
    with pytest.raises(Conflict, match="The last active admin must stay an admin."):
        undo.undo(SYSTEM, entry.id)
    assert factories.reload(sam).role == "admin"


def test_undo_a_deactivation_reactivates(ctx, factories):
    admin = factories.make_user("admin")
    sam = factories.make_user("agent", name="Sam Rivera")
    users.set_active(admin, sam.id, False)
    entry = last_entry("user.deactivated")
    assert undo.undo(admin, entry.id).done == "Sam Rivera was reactivated."
    assert factories.reload(sam).active is True
    assert last_entry("user.activated").actor_id == admin.id
    with pytest.raises(Conflict, match="Sam Rivera is active now, not deactivated"):
        undo.check(admin, entry.id)


def test_undo_a_definition_deactivation_and_its_refusals(ctx, factories):
    admin = factories.make_user("admin")
    definition = sla_admin.create_definition(admin, {"category": "hardware", "priority": "medium",
                                                     "response_time_hours": 4, "resolution_time_hours": 24})
    sla_admin.set_definition_active(admin, definition.id, False)
    entry = last_entry("sla_definition.deactivated")
    other = sla_admin.create_definition(admin, {"category": "hardware", "priority": "medium",
                                                "response_time_hours": 1, "resolution_time_hours": 8})
    with pytest.raises(Conflict, match="There is already an active definition for hardware / medium"):
        undo.check(admin, entry.id)
    sla_admin.set_definition_active(admin, other.id, False)
    plan = undo.undo(admin, entry.id)
    assert plan.done == "The SLA definition hardware / medium is active again."
    db.session.expire_all()
    assert db.session.get(SlaDefinition, definition.id).is_active is True
    assert last_entry("sla_definition.activated").entity_id == definition.id
    with pytest.raises(Conflict, match="hardware / medium is active now, not inactive"):
        undo.undo(admin, entry.id)


def test_undo_a_holiday_removal_restores_it_once(ctx, factories, office):
    admin = factories.make_user("admin")
    entry = last_entry("calendar.holiday_removed")
    plan = undo.check(admin, entry.id)
    assert plan.question.startswith("Restore Christmas Day (25 Dec 2026) to the calendar Office?")
    undo.undo(admin, entry.id)
    days = db.session.scalars(select(Holiday.name).where(Holiday.calendar_id == office.id)).all()
    assert days == ["Christmas Day"]
    assert last_entry("calendar.holiday_added").actor_id == admin.id
    with pytest.raises(Conflict, match=r"25 Dec 2026 is a holiday of Office again already \(Christmas Day\)"):
        undo.undo(admin, entry.id)


def test_undo_needs_the_owning_services_permission(ctx, factories, office):
    manager = factories.make_user("manager")
    sam = factories.make_user("agent")
    users.set_active(SYSTEM, sam.id, False)
    for action in ("user.deactivated", "calendar.holiday_removed"):
        with pytest.raises(Forbidden):
            undo.undo(manager, last_entry(action).id)
    assert factories.reload(sam).active is False


# ---------------------------------------------------------------- two admins, one entry, the same moment

def _one_won(results: list[object]) -> ServiceError:
    lost = [r for r in results if isinstance(r, ServiceError)]
    won = [r for r in results if isinstance(r, undo.UndoPlan)]
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], Conflict), lost[0]
    return lost[0]


def test_race_two_admins_undo_the_same_role_change_one_wins(app, ctx, factories):
    ada, ben = factories.make_user("admin").id, factories.make_user("admin").id
    for n in range(ROUNDS):
        sam = factories.make_user("agent", name=f"Sam {n}")
        users.change_role(actor(ada), sam.id, "manager")
        entry = last_entry("user.role_changed").id
        lost = _one_won(race(app, lambda e=entry: undo.undo(actor(ada), e), lambda e=entry: undo.undo(actor(ben), e)))
        assert lost.message.startswith(f"Sam {n} is agent now, not manager:") and "changed it" in lost.message
        assert factories.reload(sam).role == "agent"
        changes = db.session.scalars(select(AuditLog).where(
            AuditLog.entity_type == "user", AuditLog.entity_id == sam.id,
            AuditLog.action == "user.role_changed").order_by(AuditLog.id)).all()
        assert [(c.before["role"], c.after["role"]) for c in changes] == [("agent", "manager"), ("manager", "agent")]


def test_race_two_admins_reactivate_the_same_account_one_wins(app, ctx, factories):
    ada, ben = factories.make_user("admin").id, factories.make_user("admin").id
    for n in range(ROUNDS):
        sam = factories.make_user("agent", name=f"Sam {n}")
        users.set_active(actor(ada), sam.id, False)
        entry = last_entry("user.deactivated").id
        lost = _one_won(race(app, lambda e=entry: undo.undo(actor(ada), e), lambda e=entry: undo.undo(actor(ben), e)))
        assert lost.message.startswith(f"Sam {n} is active now, not deactivated:")
        assert factories.reload(sam).active is True
        assert db.session.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.entity_id == sam.id, AuditLog.action == "user.activated")) == 1


def test_race_two_admins_reactivate_the_same_definition_one_wins(app, ctx, factories):
    ada, ben = factories.make_user("admin").id, factories.make_user("admin").id
    definition = sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "medium",
                                                      "response_time_hours": 4, "resolution_time_hours": 24})
    for _ in range(ROUNDS):
        sla_admin.set_definition_active(actor(ada), definition.id, False)
        entry = last_entry("sla_definition.deactivated").id
        lost = _one_won(race(app, lambda e=entry: undo.undo(actor(ada), e), lambda e=entry: undo.undo(actor(ben), e)))
        assert "hardware / medium is active now, not inactive" in lost.message
        db.session.expire_all()
        assert db.session.get(SlaDefinition, definition.id).is_active is True
    assert entries("sla_definition.activated") == ROUNDS


def test_race_two_admins_restore_the_same_holiday_one_wins(app, ctx, factories, office):
    ada, ben = factories.make_user("admin").id, factories.make_user("admin").id
    for _ in range(ROUNDS):
        entry = last_entry("calendar.holiday_removed").id
        lost = _one_won(race(app, lambda e=entry: undo.undo(actor(ada), e), lambda e=entry: undo.undo(actor(ben), e)))
        assert "25 Dec 2026 is a holiday of Office again already" in lost.message
        [holiday] = db.session.scalars(select(Holiday).where(Holiday.calendar_id == office.id)).all()
        sla_admin.remove_holiday(SYSTEM, holiday.id)  # and again, for the next round
