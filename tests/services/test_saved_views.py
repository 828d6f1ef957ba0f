"""Saved views: the list's filters under a name, a person's own or shared with the team; who may do
what, the messages a bad name gets, the limit, stale and racing changes, and the indexes they read."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from sqlalchemy import select, text

from portal.extensions import db
from portal.models import AuditLog, SavedView
from portal.services import saved_views as saved
from portal.services.errors import Conflict, Forbidden, NotFound, StaleChange, ValidationFailed
from portal.services.requests.queries import parse_filters
from tests.services.test_concurrency import ROUNDS, actor, race

OPEN_HIGH = "status=active&priority=high"


def trail(view_id: int) -> list[AuditLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditLog).where(
        AuditLog.entity_type == "saved_view", AuditLog.entity_id == view_id).order_by(AuditLog.id)))


@pytest.fixture()
def team(ctx, factories):
    return {"agent": factories.make_user("agent", name="Alex Agent"),
            "other": factories.make_user("agent", name="Sam Rivera"),
            "manager": factories.make_user("manager", name="Maya Manager"),
            "admin": factories.make_user("admin", name="Ada Admin"),
            "requester": factories.make_user("requester")}


# ---------------------------------------------------------------- the query a view stores

@pytest.mark.parametrize(("query", "stored"), [
    ("status=active&priority=high", OPEN_HIGH),
    ("?priority=high&status=active&page=3&after=abc_DEF&last=1", OPEN_HIGH),   # never a page or a cursor
    ("status=active&priority=urgentest&category=nope&assignee=x", "status=active"),  # nothing invalid
    ("status=any&sort=oldest&per_page=50", "status=any&sort=oldest&per_page=50"),
    ("status=active&sort=due", "status=active"),                    # the default order is not written out
    ("q=++vpn+drops++&status=any", "status=any&q=vpn+drops"),
    ("", ""),
])
def test_normalise_query_is_what_the_list_would_show(ctx, query, stored):
    assert saved.normalise_query(query) == stored
    assert saved.normalise_query(dict(parse_qsl(query.lstrip("?")))) == stored  # a mapping reads the same


def test_normalise_query_is_stable(ctx):
    once = saved.normalise_query("status=done&priority=low&category=network&assignee=me&q=printer&sort=oldest")
    assert saved.normalise_query(once) == once


# ---------------------------------------------------------------- creating

@pytest.mark.parametrize("role", ["agent", "manager", "admin"])
def test_staff_save_a_view_private_with_an_audit_row(team, role):
    view = saved.create_saved_view(team[role], "  Open high ", "priority=high&status=active&page=2")
    assert (view.owner_id, view.name, view.query, view.shared, view.version) == (
        team[role].id, "Open high", OPEN_HIGH, False, 1)
    [row] = trail(view.id)
    assert (row.action, row.actor_id, row.before) == ("saved_view.created", team[role].id, None)
    assert row.after == {"name": "Open high", "query": OPEN_HIGH, "shared": False}


def test_requester_may_not_save_list_or_touch_views(team):
    view = saved.create_saved_view(team["manager"], "Team queue", OPEN_HIGH)
    saved.set_saved_view_shared(team["manager"], view.id, True, view.version)
    requester = team["requester"]
    for call in (lambda: saved.list_saved_views(requester),
                 lambda: saved.create_saved_view(requester, "Mine", ""),
                 lambda: saved.get_saved_view(requester, view.id),
                 lambda: saved.rename_saved_view(requester, view.id, "Mine"),
                 lambda: saved.set_saved_view_shared(requester, view.id, False),
                 lambda: saved.update_saved_view_query(requester, view.id, ""),
                 lambda: saved.delete_saved_view(requester, view.id)):
        with pytest.raises(Forbidden):
            call()


@pytest.mark.parametrize(("name", "message"), [
    ("", saved.NAME_MISSING),
    ("   ", saved.NAME_MISSING),
    (None, saved.NAME_MISSING),
    ("x" * 61, "Use at most 60 characters (got 61)."),
    ("Nul\x00", "Remove the NUL"),
    (["list"], "Must be text."),
])
def test_bad_names_are_refused_with_a_message_on_the_name(team, name, message):
    with pytest.raises(ValidationFailed) as refused:
        saved.create_saved_view(team["agent"], name, OPEN_HIGH)
    assert message in refused.value.fields["name"]
    view = saved.create_saved_view(team["agent"], "Fine", OPEN_HIGH)
    with pytest.raises(ValidationFailed) as refused:
        saved.rename_saved_view(team["agent"], view.id, name, view.version)
    assert message in refused.value.fields["name"]
    assert db.session.scalar(select(SavedView.name)) == "Fine"


def test_a_name_is_unique_per_person_whatever_its_case(team):
    saved.create_saved_view(team["agent"], "Printers", "category=hardware")
    with pytest.raises(Conflict) as refused:
        saved.create_saved_view(team["agent"], "PRINTERS", "")
    assert refused.value.fields == {"name": "You already have a view called “Printers”; choose another name."}
    assert refused.value.status == 409
    saved.create_saved_view(team["other"], "printers", "")  # someone else's name is theirs
    mine = saved.create_saved_view(team["agent"], "Network", "category=network")
    with pytest.raises(Conflict):
        saved.rename_saved_view(team["agent"], mine.id, "printers ", mine.version)
    renamed = saved.rename_saved_view(team["agent"], mine.id, "NETWORK", mine.version)  # its own name, recased
    assert renamed.name == "NETWORK"
    assert saved.find_own_view(team["agent"], " printers").name == "Printers"


def test_a_person_keeps_at_most_the_limit_of_views(team):
    for n in range(saved.VIEWS_MAX):
        saved.create_saved_view(team["agent"], f"View {n}", f"q=word{n}")
    with pytest.raises(ValidationFailed) as refused:
        saved.create_saved_view(team["agent"], "One more", "")
    assert refused.value.fields["name"] == saved.TOO_MANY
    assert f"{saved.VIEWS_MAX} saved views" in saved.TOO_MANY
    saved.create_saved_view(team["other"], "One more", "")  # the limit is per person
    first = db.session.scalar(select(SavedView).where(SavedView.name == "View 0"))
    saved.delete_saved_view(team["agent"], first.id, first.version)
    saved.create_saved_view(team["agent"], "One more", "")


def test_a_query_too_long_to_store_is_refused_on_the_query(team, monkeypatch):
    monkeypatch.setattr(saved, "VIEW_QUERY_MAX", 20)
    with pytest.raises(ValidationFailed) as refused:
        saved.create_saved_view(team["agent"], "Long", "q=" + "a" * 30)
    assert refused.value.fields == {"query": saved.QUERY_TOO_LONG}


# ---------------------------------------------------------------- reading

def test_list_is_own_views_then_the_teams_shared_ones_each_by_name(team):
    for name in ("zebra", "Alpha", "mid"):
        saved.create_saved_view(team["agent"], name, "")
    private = saved.create_saved_view(team["manager"], "Manager private", "")
    shared = saved.create_saved_view(team["manager"], "Escalations", OPEN_HIGH)
    saved.set_saved_view_shared(team["manager"], shared.id, True, shared.version)
    admins = saved.create_saved_view(team["admin"], "breaches", "")
    saved.set_saved_view_shared(team["admin"], admins.id, True, admins.version)
    views = saved.list_saved_views(team["agent"])
    assert [v.name for v in views] == ["Alpha", "mid", "zebra", "breaches", "Escalations"]
    assert views[-1].owner.name == "Maya Manager"
    assert private.id not in {v.id for v in views}
    # The manager sees their own shared view once, among their own.
    assert [v.name for v in saved.list_saved_views(team["manager"])] == ["Escalations", "Manager private", "breaches"]
    with pytest.raises(NotFound):
        saved.get_saved_view(team["agent"], private.id)
    assert saved.get_saved_view(team["agent"], shared.id).id == shared.id
    assert saved.get_saved_view(team["admin"], private.id).id == private.id


def test_current_view_is_the_one_showing_exactly_the_lists_filters(team):
    saved.create_saved_view(team["agent"], "Open high", OPEN_HIGH)
    views = saved.list_saved_views(team["agent"])
    assert saved.current_view(views, parse_filters({"status": "active", "priority": "high", "page": "4"})) == views[0]
    assert saved.current_view(views, parse_filters({"status": "active", "priority": "high", "sort": "oldest"})) is None
    assert saved.current_view(views, parse_filters({"status": "active"})) is None


def test_describe_query_says_each_filter_in_words(team):
    said = saved.describe_query("status=active&priority=high&category=network&assignee=me&q=vpn&sort=oldest")
    assert said == [("Status", "Open (not resolved)"), ("Priority", "High"), ("Category", "Network"),
                    ("Assignee", "Whoever opens it"), ("Search", "“vpn”"), ("Sort", "Oldest first")]
    assert saved.describe_query(f"assignee={team['other'].id}") == [("Assignee", "Sam Rivera")]
    assert saved.describe_query("") == []


@pytest.mark.parametrize("bad_id", [None, "", "abc", "-1", 10**20, True, 999_999])
def test_unknown_ids_are_not_found(team, bad_id):
    with pytest.raises(NotFound):
        saved.get_saved_view(team["agent"], bad_id)
    with pytest.raises(NotFound):
        saved.rename_saved_view(team["agent"], bad_id, "New")


# ---------------------------------------------------------------- sharing and who changes what

def test_managers_share_and_unshare_their_views_with_audit_rows(team):
    view = saved.create_saved_view(team["manager"], "Escalations", OPEN_HIGH)
    shared = saved.set_saved_view_shared(team["manager"], view.id, True, view.version)
    assert shared.shared and shared.version == 2
    saved.set_saved_view_shared(team["manager"], view.id, True, shared.version)  # already: nothing recorded
    unshared = saved.set_saved_view_shared(team["manager"], view.id, False, shared.version)
    assert not unshared.shared
    assert [(r.action, r.before, r.after) for r in trail(view.id)][1:] == [
        ("saved_view.shared", {"shared": False}, {"shared": True}),
        ("saved_view.unshared", {"shared": True}, {"shared": False})]
    with pytest.raises(ValidationFailed):
        saved.set_saved_view_shared(team["manager"], view.id, "yes")


def test_agents_may_not_share(team):
    view = saved.create_saved_view(team["agent"], "Mine", "")
    with pytest.raises(Forbidden) as refused:
        saved.set_saved_view_shared(team["agent"], view.id, True, view.version)
    assert refused.value.message == "Only managers and admins can share a view with the team."


def test_only_the_owner_or_an_admin_changes_a_view(team):
    view = saved.create_saved_view(team["manager"], "Escalations", OPEN_HIGH)
    view = saved.set_saved_view_shared(team["manager"], view.id, True, view.version)
    for who in ("agent", "other"):
        for call in (lambda w=who: saved.rename_saved_view(team[w], view.id, "Mine"),
                     lambda w=who: saved.update_saved_view_query(team[w], view.id, ""),
                     lambda w=who: saved.delete_saved_view(team[w], view.id)):
            with pytest.raises(Forbidden) as refused:
                call()
            assert "Only the person who saved this view, or an admin" in refused.value.message
    agents_view = saved.create_saved_view(team["agent"], "Agent's", "")
    with pytest.raises(NotFound):  # another's private view: not even there
        saved.rename_saved_view(team["other"], agents_view.id, "Mine")
    with pytest.raises(NotFound):  # a manager shares only their own (and another's private view is not there)
        saved.set_saved_view_shared(team["manager"], agents_view.id, True)
    renamed = saved.rename_saved_view(team["admin"], view.id, "Escalations (team)", view.version)
    unshared = saved.set_saved_view_shared(team["admin"], view.id, False, renamed.version)
    assert (unshared.name, unshared.shared, unshared.owner_id) == ("Escalations (team)", False, team["manager"].id)
    assert saved.delete_saved_view(team["admin"], view.id, unshared.version) == "Escalations (team)"


def test_update_query_points_a_view_at_other_filters(team):
    view = saved.create_saved_view(team["agent"], "Mine", OPEN_HIGH)
    updated = saved.update_saved_view_query(team["agent"], view.id, "status=done&page=9", view.version)
    assert (updated.query, updated.version) == ("status=done", 2)
    row = trail(view.id)[-1]
    assert (row.action, row.before, row.after) == ("saved_view.updated", {"query": OPEN_HIGH}, {"query": "status=done"})


def test_rename_records_only_what_changed(team):
    view = saved.create_saved_view(team["agent"], "Mine", OPEN_HIGH)
    same = saved.rename_saved_view(team["agent"], view.id, "Mine", view.version)
    assert same.version == 1 and len(trail(view.id)) == 1
    renamed = saved.rename_saved_view(team["agent"], view.id, "Ours", view.version)
    assert renamed.version == 2
    assert (trail(view.id)[-1].before, trail(view.id)[-1].after) == ({"name": "Mine"}, {"name": "Ours"})


def test_delete_keeps_what_the_view_was_in_the_audit_trail(team):
    view = saved.create_saved_view(team["agent"], "Mine", OPEN_HIGH)
    assert saved.delete_saved_view(team["agent"], view.id, view.version) == "Mine"
    db.session.expire_all()
    assert db.session.get(SavedView, view.id) is None
    row = trail(view.id)[-1]
    assert (row.action, row.after) == ("saved_view.deleted", None)
    assert row.before == {"name": "Mine", "query": OPEN_HIGH, "shared": False}
    with pytest.raises(NotFound):
        saved.delete_saved_view(team["agent"], view.id)


# ---------------------------------------------------------------- stale and racing changes

def test_a_stale_rename_is_refused_naming_who_changed_it(team):
    view = saved.create_saved_view(team["manager"], "Escalations", OPEN_HIGH)
    seen = view.version
    saved.rename_saved_view(team["admin"], view.id, "Escalated", seen)
    with pytest.raises(StaleChange) as refused:
        saved.rename_saved_view(team["manager"], view.id, "Hot", seen)
    assert refused.value.status == 409
    assert (refused.value.changed_by, refused.value.changed_by_id, refused.value.version) == (
        "Ada Admin", team["admin"].id, 2)
    assert refused.value.message.startswith("The view “Escalated” was changed by Ada Admin")
    for call in (lambda: saved.delete_saved_view(team["manager"], view.id, seen),
                 lambda: saved.set_saved_view_shared(team["manager"], view.id, True, seen),
                 lambda: saved.update_saved_view_query(team["manager"], view.id, "", seen)):
        with pytest.raises(StaleChange):
            call()
    db.session.expire_all()
    assert (db.session.get(SavedView, view.id).name, db.session.get(SavedView, view.id).shared) == ("Escalated", False)


@pytest.mark.parametrize("version", ["abc", "0", "-1", "1.5"])
def test_a_damaged_version_is_a_field_error(team, version):
    view = saved.create_saved_view(team["agent"], "Mine", "")
    with pytest.raises(ValidationFailed) as refused:
        saved.rename_saved_view(team["agent"], view.id, "Ours", version)
    assert refused.value.fields == {"version": saved.VERSION_BAD}


def test_two_tabs_renaming_the_same_view_at_once_one_wins_the_other_gets_409(app, team):
    """The same person in two tabs, both opened at the same version: one rename saves, the other is
    refused as stale (never applied on top), whichever gets the row lock first."""
    agent = team["agent"].id
    view = saved.create_saved_view(team["agent"], "Start", "")
    view_id = view.id
    for n in range(ROUNDS):
        seen = db.session.get(SavedView, view_id).version
        results = race(app, *(lambda name=f"{side} {n}", seen=seen:
                              saved.rename_saved_view(actor(agent), view_id, name, seen).name
                              for side in ("Left", "Right")))
        kinds = sorted(type(r).__name__ for r in results)
        assert kinds == ["StaleChange", "str"], results
        winner = next(r for r in results if isinstance(r, str))
        loser = next(r for r in results if isinstance(r, StaleChange))
        assert loser.changed_by_id == agent and loser.version == seen + 1
        db.session.expire_all()
        assert db.session.get(SavedView, view_id).name == winner


def test_two_tabs_saving_past_the_limit_at_once_make_no_more_than_the_limit(app, team):
    agent = team["agent"].id
    for n in range(saved.VIEWS_MAX - 1):
        saved.create_saved_view(team["agent"], f"View {n}", "")
    results = race(app, lambda: saved.create_saved_view(actor(agent), "Left", "").id,
                   lambda: saved.create_saved_view(actor(agent), "Right", "").id)
    assert sorted(type(r).__name__ for r in results) == ["ValidationFailed", "int"], results
    assert saved.count_own_views(agent) == saved.VIEWS_MAX


def test_two_tabs_saving_the_same_name_at_once_one_wins(app, team):
    agent = team["agent"].id
    for n in range(4):
        results = race(app, lambda n=n: saved.create_saved_view(actor(agent), f"Same {n}", "").id,
                       lambda n=n: saved.create_saved_view(actor(agent), f"SAME {n}", "").id)
        assert sorted(type(r).__name__ for r in results) == ["Conflict", "int"], results


# ---------------------------------------------------------------- the indexes

def _plan(stmt) -> str:
    compiled = stmt.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
    # A handful of rows would be read whole; what is asked is whether the index can serve the query, in order.
    for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
        db.session.execute(text(f"SET LOCAL {setting} = off"))
    plan = "\n".join(db.session.scalars(text(f"EXPLAIN {compiled}")))
    db.session.rollback()
    return plan


def test_the_tabs_and_the_count_read_the_views_through_their_indexes(team):
    from sqlalchemy import func

    for n in range(5):
        saved.create_saved_view(team["agent"], f"View {n}", "")
    own = _plan(saved.own_views_query(team["agent"].id))
    assert "uq_saved_view_owner_name" in own and "Sort" not in own, own
    shared = _plan(saved.shared_views_query(team["agent"].id))
    assert "ix_saved_view_shared" in shared and "Sort" not in shared, shared
    count = _plan(select(func.count()).select_from(SavedView).where(SavedView.owner_id == team["agent"].id))
    assert "uq_saved_view_owner_name" in count, count
