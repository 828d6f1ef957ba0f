"""In-app notifications and @mentions on real PostgreSQL: who is told, the bell's count, reading.

The bell reads the mail notification rows (portal/services/in_app.py); mentions are written with
the note that makes them (portal/services/notifications.mentioned).
"""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import func, select, text

from portal.domain import notifications as rules
from portal.extensions import db
from portal.models import Comment, Notification, User
from portal.services import in_app, notifications
from portal.services import requests as svc
from portal.services.errors import NotFound
from tests.mail_server import text_of


@pytest.fixture()
def team(factories):
    requester = factories.make_user("requester", email="rita@example.com", name="Rita Requester")
    alex = factories.make_user("agent", email="alex@example.com", name="Alex Agent")
    bea = factories.make_user("agent", email="bea.stone@example.com", name="Bea Stone")
    mona = factories.make_user("manager", email="mona@example.com", name="Mona Manager")
    return requester, alex, bea, mona


def mention_rows(person) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.recipient_id == person.id,
                                                              Notification.kind == "mention")))


def deliver_all() -> int:
    people = db.session.scalars(select(Notification.recipient_id).where(Notification.status == "pending").distinct())
    return sum(notifications.deliver(person) for person in list(people))


_keys = itertools.count()


def add_rows(person, count: int, request_id: int | None = None, kind: str = "assigned") -> list[int]:
    """`count` in-app notifications for `person`, committed (as other changes would write them)."""
    ids = [db.session.execute(
        Notification.__table__.insert().values(
            key=f"{kind}:test:{person.id}:{next(_keys)}", recipient_id=person.id,
            kind=kind, request_id=request_id, payload={"request_id": request_id, "title": "T", "by": "X"},
            status="sent", created_at=func.now()).returning(Notification.id)).scalar_one() for _ in range(count)]
    db.session.commit()
    return ids


# ---------------------------------------------------------------- mentions

def test_an_internal_note_mentioning_a_colleague_tells_them_in_app_and_by_mail(smtp, team, factories):
    requester, alex, bea, _ = team
    req = factories.make_request(requester)
    deliver_all()
    smtp.messages.clear()
    note = svc.add_comment(alex, req.id, "@Bea Stone can you check the toner?", internal=True)

    [row] = mention_rows(bea)
    assert (row.request_id, row.payload["comment_id"], row.payload["by"]) == (req.id, note.id, "Alex Agent")
    assert in_app.unread_count(bea) == 1
    assert [n.kind for n in in_app.list_notifications(bea).items] == ["mention"]
    deliver_all()
    [mail] = smtp.to(bea.email)
    assert mail["Subject"] == f"Alex Agent mentioned you on #{req.id} Printer is jammed"
    assert "> @Bea Stone can you check the toner?" in text_of(mail)
    assert smtp.to(requester.email) == []  # an internal note tells the requester nothing


def test_a_mention_by_email_handle_in_any_case_resolves_and_unknown_words_do_not(team, factories):
    requester, alex, bea, mona = team
    req = factories.make_request(requester)
    svc.add_comment(alex, req.id, "@BEA.STONE and @mona, not @nobody nor rita@example.com", internal=True)
    assert len(mention_rows(bea)) == 1 and len(mention_rows(mona)) == 1
    assert db.session.scalar(select(func.count()).select_from(Notification)
                             .where(Notification.kind == "mention")) == 2


def test_nobody_is_told_of_their_own_mention_nor_of_a_public_reply_or_a_requester(team, factories):
    requester, alex, bea, _ = team
    req = factories.make_request(requester)
    svc.add_comment(alex, req.id, "Note to self, @Alex Agent", internal=True)
    svc.add_comment(alex, req.id, "@Bea Stone will call you", internal=False)  # a reply: mentions nobody
    svc.add_comment(alex, req.id, "@Rita Requester said so", internal=True)   # not staff: not mentionable
    assert mention_rows(alex) == mention_rows(bea) == mention_rows(requester) == []


def test_an_inactive_colleague_is_not_mentioned(team, factories):
    requester, alex, _, _ = team
    gone = factories.make_user("agent", name="Gus Gone", active=False)
    req = factories.make_request(requester)
    svc.add_comment(alex, req.id, "@Gus Gone?", internal=True)
    assert mention_rows(gone) == []


def test_a_note_seen_twice_mentions_each_person_once(team, factories):
    requester, alex, bea, _ = team
    req = factories.make_request(requester)
    note = svc.add_comment(alex, req.id, "@Bea Stone, @bea.stone: twice in one note", internal=True)
    assert len(mention_rows(bea)) == 1
    # The same note written again (a retried job or a second pass): the key refuses a second row.
    comment = db.session.get(Comment, note.id)
    from portal.services.uow import unit_of_work

    with unit_of_work():
        assert notifications.mentioned(db.session.get(type(req), req.id), comment, alex) == [bea.id]
    assert len(mention_rows(bea)) == 1


def test_a_muted_mention_mail_still_shows_under_the_bell(smtp, team, factories):
    requester, alex, bea, _ = team
    notifications.save_choices(bea, [k.code for k in rules.kinds_for("agent") if k.code != "mention"], False)
    req = factories.make_request(requester)
    deliver_all()
    svc.add_comment(alex, req.id, "@Bea Stone FYI", internal=True)
    deliver_all()
    assert smtp.to(bea.email) == []
    [row] = mention_rows(bea)
    assert row.status == "skipped" and row.read_at is None
    assert in_app.unread_count(bea) == 1


# ---------------------------------------------------------------- the bell

def test_the_bell_lists_the_in_app_kinds_of_each_person(team, factories):
    requester, alex, bea, mona = team
    req = factories.make_request(requester)                    # request_created: mail only
    svc.assign(mona, req.id, alex.id)                            # assigned: Alex's bell
    svc.add_comment(alex, req.id, "Try tray 1.")                 # public_comment: Rita's bell
    svc.change_status(alex, req.id, "waiting_on_customer")      # status_changed: mail only
    assert [n.kind for n in in_app.list_notifications(alex).items] == ["assigned"]
    assert [n.kind for n in in_app.list_notifications(requester).items] == ["public_comment"]
    assert in_app.unread_count(requester) == 1


def test_a_colleague_moved_to_requester_no_longer_sees_their_mentions(team, factories):
    requester, alex, bea, _ = team
    req = factories.make_request(requester)
    svc.add_comment(alex, req.id, "@Bea Stone secret internal detail", internal=True)
    person = db.session.get(User, bea.id)
    person.role = "requester"
    db.session.commit()
    assert in_app.unread_count(person) == 0 and in_app.list_notifications(person).items == []


def test_the_unread_count_stops_at_the_cap_and_reads_99_plus(team):
    _, alex, _, _ = team
    add_rows(alex, rules.UNREAD_SHOWN_MAX + 5)
    assert in_app.unread_count(alex) == rules.UNREAD_SHOWN_MAX + 1
    assert in_app.count_label(in_app.unread_count(alex)) == "99+"
    assert in_app.count_label(3) == "3"


def test_the_unread_count_uses_the_partial_index(team):
    _, alex, _, _ = team
    add_rows(alex, 3)
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    capped = select(Notification.id).where(Notification.recipient_id == alex.id,
                                           Notification.kind.in_(in_app.kinds_for("agent")),
                                           Notification.read_at.is_(None)).limit(100)
    sql = capped.compile(db.engine, compile_kwargs={"literal_binds": True})
    plan = "\n".join(db.session.execute(text(f"EXPLAIN {sql}")).scalars())
    db.session.rollback()
    assert "ix_notification_unread" in plan, plan


def test_the_list_pages_newest_first_by_id(team):
    _, alex, _, _ = team
    ids = add_rows(alex, 5)
    first = in_app.list_notifications(alex, limit=2)
    assert [n.id for n in first.items] == ids[:-3:-1] and first.before == ids[3]
    second = in_app.list_notifications(alex, first.before, limit=2)
    third = in_app.list_notifications(alex, second.before, limit=2)
    assert [n.id for n in second.items + third.items] == ids[2::-1] and third.before is None
    assert in_app.newest_id(alex) == ids[-1]


def test_opening_one_marks_it_and_older_ones_of_its_request_read(team, factories):
    requester, alex, bea, _ = team
    one, other = factories.make_request(requester), factories.make_request(requester)
    older, clicked, newer = add_rows(alex, 3, one.id)
    [elsewhere] = add_rows(alex, 1, other.id)
    in_app.open_notification(alex, clicked)
    db.session.expire_all()
    read = {n.id for n in in_app.list_notifications(alex).items if n.read_at}
    assert read == {older, clicked}
    assert in_app.unread_count(alex) == 2  # the newer one and the other request's stay unread
    with pytest.raises(NotFound):
        in_app.open_notification(bea, newer)  # someone else's
    assert elsewhere


def test_mark_all_read_stops_at_the_newest_shown(team):
    _, alex, _, _ = team
    shown = add_rows(alex, 3)
    arrived_since = add_rows(alex, 1)
    assert in_app.mark_all_read(alex, up_to=shown[-1]) == 3
    assert in_app.unread_count(alex) == 1
    assert [n.id for n in in_app.list_notifications(alex).items if n.read_at is None] == arrived_since


# ---------------------------------------------------------------- races, on real PostgreSQL

def test_a_notification_committed_while_mark_all_read_runs_stays_unread(app, team):
    """One connection has written a new notification and not committed yet when "Mark all read"
    (from a page that could not have shown it) runs; after it commits, it is unread."""
    _, alex, _, _ = team
    shown = add_rows(alex, 2)
    alex_id = alex.id
    written, go_on, finished = threading.Event(), threading.Event(), threading.Event()
    late: list[int] = []

    def arrive():
        with app.app_context():
            try:
                late.append(db.session.execute(Notification.__table__.insert().values(
                    key=f"mention:late:{alex_id}", recipient_id=alex_id, kind="mention", payload={},
                    status="pending", created_at=func.now()).returning(Notification.id)).scalar_one())
                written.set()
                go_on.wait(10)
                db.session.commit()
            finally:
                db.session.remove()
                finished.set()

    thread = threading.Thread(target=arrive)
    thread.start()
    assert written.wait(10)
    # The page showed up to shown[-1]; even a stale page that sent a later id would not reach an
    # uncommitted row, and the id bound keeps rows committed afterwards out.
    assert in_app.mark_all_read(alex, up_to=shown[-1]) == 2
    go_on.set()
    thread.join(10)
    assert finished.is_set()
    db.session.expire_all()
    assert in_app.unread_count(alex) == 1
    assert [n.id for n in in_app.list_notifications(alex).items if n.read_at is None] == late


def test_two_tabs_marking_all_read_at_once_both_succeed_and_keep_the_first_read_time(app, team):
    _, alex, _, _ = team
    shown = add_rows(alex, 20)
    newer = add_rows(alex, 1)
    alex_id = alex.id
    barrier = threading.Barrier(2)
    results: list[object] = [None, None]

    def tab(i: int):
        with app.app_context():
            try:
                person = db.session.get(User, alex_id)
                barrier.wait(10)
                results[i] = in_app.mark_all_read(person, up_to=shown[-1])
            except Exception as exc:  # noqa: BLE001 - the test reports it
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=tab, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [0, 20], results  # each row marked by exactly one of them
    db.session.expire_all()
    assert in_app.unread_count(db.session.get(User, alex_id)) == 1
    unread = [n.id for n in in_app.list_notifications(alex, limit=50).items if n.read_at is None]
    assert unread == newer
