"""The bell, /notifications and @mentions on the request page (issue #12)."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.web.helpers import HX, csrf_from_body, csrf_from_form, oob_ids, text_of


def _unread(app, user_id: int) -> int:
    from portal.extensions import db
    from portal.models import User
    from portal.services import in_app

    with app.app_context():
        return in_app.unread_count(db.session.get(User, user_id))


def _mention_ids(app, user_id: int) -> list[int]:
    from portal.extensions import db
    from portal.models import Notification

    with app.app_context():
        return list(db.session.scalars(select(Notification.id).where(
            Notification.recipient_id == user_id, Notification.kind == "mention").order_by(Notification.id)))


def _setup(make):
    requester = make.user("requester", name="Rita Requester")
    alex = make.user("agent", name="Alex Agent")
    bea = make.user("agent", name="Bea Stone", email="bea.stone@example.com")
    req = make.request(requester, title="Printer jams")
    return requester, alex, bea, req


def _bell_label(html: str) -> str:
    return re.search(r'class="bell[^"]*"[^>]*aria-label="([^"]+)"', html).group(1)


def test_the_bell_shows_the_unread_count_and_opening_marks_read(app, make, login_client):
    _, alex, bea, req = _setup(make)
    note = make.comment(alex, req.id, "@Bea Stone could you look?", internal=True)
    client = login_client(bea)
    page = text_of(client.get("/requests"))
    assert _bell_label(page) == "Notifications, 1 unread"
    assert '<span class="bell-count" aria-hidden="true">1</span>' in page

    listing = text_of(client.get("/notifications"))
    assert f"Alex Agent mentioned you on #{req.id} Printer jams" in listing
    assert "Unread: " in listing
    [nid] = _mention_ids(app, bea.id)
    opened = client.get(f"/notifications/{nid}")
    assert opened.status_code == 303
    assert opened.headers["Location"].endswith(f"/requests/{req.id}#comment-{note.id}")
    assert _unread(app, bea.id) == 0
    assert _bell_label(text_of(client.get("/requests"))) == "Notifications, none unread"


def test_someone_elses_notification_is_not_found_and_stays_unread(app, make, login_client):
    _, alex, bea, req = _setup(make)
    make.comment(alex, req.id, "@Bea Stone here", internal=True)
    [nid] = _mention_ids(app, bea.id)
    assert login_client(alex).get(f"/notifications/{nid}").status_code == 404
    assert _unread(app, bea.id) == 1


def test_the_bell_poll_answers_304_until_the_count_changes(app, make, login_client):
    _, alex, bea, req = _setup(make)
    client = login_client(bea)
    first = client.get("/notifications/bell", headers=HX)
    assert first.status_code == 200 and first.headers.get("ETag")
    assert "Notifications, none unread" in text_of(first)
    again = client.get("/notifications/bell", headers={**HX, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    make.comment(alex, req.id, "@bea.stone ping", internal=True)
    changed = client.get("/notifications/bell", headers={**HX, "If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and "Notifications, 1 unread" in text_of(changed)


def test_mark_all_read_reaches_only_the_newest_shown(app, make, login_client):
    _, alex, bea, req = _setup(make)
    make.comment(alex, req.id, "@Bea Stone one", internal=True)
    client = login_client(bea)
    listing = text_of(client.get("/notifications"))
    up_to = re.search(r'name="up_to" value="(\d+)"', listing).group(1)
    make.comment(alex, req.id, "@Bea Stone two, after the page was shown", internal=True)

    response = client.post("/notifications/read", data={"up_to": up_to}, headers=HX)
    assert response.status_code == 200
    body = text_of(response)
    assert "Marked 1 notification read." in body
    assert "bell" in oob_ids(body) and "Notifications, 1 unread" in body
    assert _unread(app, bea.id) == 1

    plain = client.post("/notifications/read", data={"up_to": "not a number"})
    assert plain.status_code == 303 and _unread(app, bea.id) == 1


def test_mark_all_read_needs_the_csrf_token(app, make, csrf_on):
    _, alex, bea, req = _setup(make)
    make.comment(alex, req.id, "@Bea Stone one", internal=True)
    client = app.test_client()
    token = csrf_from_form(text_of(client.get("/login")))
    assert client.post("/login", data={"email": bea.email, "password": bea.password,
                                       "csrf_token": token}).status_code == 303
    listing = text_of(client.get("/notifications"))
    up_to = re.search(r'name="up_to" value="(\d+)"', listing).group(1)
    assert client.post("/notifications/read", data={"up_to": up_to}).status_code == 400
    assert _unread(app, bea.id) == 1
    token = csrf_from_body(listing)
    response = client.post("/notifications/read", data={"up_to": up_to}, headers={**HX, "X-CSRFToken": token})
    assert response.status_code == 200 and _unread(app, bea.id) == 0


def test_the_list_pages_older_notifications_by_id(app, make, login_client):
    from portal.services import in_app

    _, alex, bea, req = _setup(make)
    for n in range(in_app.PAGE_SIZE + 2):
        make.comment(alex, req.id, f"@Bea Stone note {n}", internal=True)
    client = login_client(bea)
    first = text_of(client.get("/notifications"))
    assert first.count('class="notification unread') == in_app.PAGE_SIZE
    older = re.search(r'href="/notifications\?before=(\d+)"', first).group(1)
    second = text_of(client.get(f"/notifications?before={older}"))
    assert second.count('class="notification unread') == 2 and "before=" not in second.split("Newest")[-1]


def test_a_requester_sees_replies_under_the_bell(app, make, login_client):
    requester, alex, _, req = _setup(make)
    make.comment(alex, req.id, "Try tray 1.")
    page = text_of(login_client(requester).get("/notifications"))
    assert f"Alex Agent replied on #{req.id} Printer jams" in page and "Try tray 1." in page


def test_mentions_are_marked_in_internal_notes_only_and_escaped(app, make, login_client):
    _, alex, bea, req = _setup(make)
    make.comment(alex, req.id, "<b>@Bea Stone</b> & @nobody see this", internal=True)
    make.comment(alex, req.id, "Reply naming @Bea Stone", internal=False)
    page = text_of(login_client(alex).get(f"/requests/{req.id}"))
    assert '&lt;b&gt;<strong class="mention" title="Bea Stone">@Bea Stone</strong>&lt;/b&gt; &amp; @nobody' in page
    assert "Reply naming @Bea Stone" in page  # a reply is not marked
    assert page.count('class="mention"') == 1
    assert '<option value="Bea Stone" data-handle="bea.stone">' in page  # the composer's completion


def test_a_requester_gets_no_list_of_staff_to_mention(app, make, login_client):
    requester, _, _, req = _setup(make)
    page = text_of(login_client(requester).get(f"/requests/{req.id}"))
    assert "composer-people" not in page and 'class="bell' in page


def test_opening_the_request_from_anywhere_marks_its_notifications_read(app, make, login_client):
    """Seen is seen: the request opened from the list (not the bell) clears its notifications,
    and only its own; the bell on that very page already counts what is left."""
    requester, alex, bea, req = _setup(make)
    other = make.request(requester, title="Screen flickers")
    make.comment(alex, req.id, "@Bea Stone could you look?", internal=True)
    make.comment(alex, other.id, "@Bea Stone and this one", internal=True)
    client = login_client(bea)
    assert _unread(app, bea.id) == 2

    page = text_of(client.get(f"/requests/{req.id}"))
    assert _bell_label(page) == "Notifications, 1 unread"
    assert _unread(app, bea.id) == 1
    client.get(f"/requests/{req.id}")      # again: nothing left to mark, nothing else touched
    assert _unread(app, bea.id) == 1
    assert login_client(alex).get(f"/requests/{other.id}").status_code == 200   # someone else's view
    assert _unread(app, bea.id) == 1
