"""Server-side sessions: a copied cookie dies with sign-out; idle and absolute timeouts; ending sessions."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from portal.extensions import db
from portal.models import UserSession
from portal.models._time import utcnow


def _copy(source, app, *names):
    """A second browser holding copies of `source`'s cookies (what a thief would take)."""
    thief = app.test_client()
    for name in names:
        cookie = source.get_cookie(name)
        assert cookie is not None, name
        thief.set_cookie(name, cookie.value)
    return thief


def _sign_in(app, user, remember=False):
    browser = app.test_client()
    data = {"email": user.email, "password": user.password}
    if remember:
        data["remember"] = "y"
    assert browser.post("/login", data=data).status_code == 303
    return browser


def _signed_in(browser) -> bool:
    return browser.get("/requests").status_code == 200


def _sessions(app, user_id):
    with app.app_context():
        return db.session.scalars(select(UserSession).where(UserSession.user_id == user_id)
                                  .order_by(UserSession.id)).all()


def test_a_session_cookie_copied_before_sign_out_no_longer_works(app, make):
    user = make.user("requester")
    request = make.request(user)
    browser = _sign_in(app, user)
    thief = _copy(browser, app, "session")
    assert _signed_in(thief)  # the copy works while the session lives

    assert browser.post("/logout").status_code == 303
    assert not _signed_in(thief)
    # Nor can it post a comment with the token it held.
    posted = thief.post(f"/requests/{request.id}/comments", data={"body": "after sign-out"})
    assert posted.status_code in (302, 401)
    with app.app_context():
        from portal.models import Comment

        assert db.session.scalar(select(Comment).where(Comment.body == "after sign-out")) is None
    [row] = _sessions(app, user.id)
    assert row.revoked_reason == "signed_out"


def test_a_copied_keep_me_signed_in_cookie_dies_with_sign_out(app, make):
    user = make.user("agent")
    browser = _sign_in(app, user, remember=True)
    stolen = browser.get_cookie("remember_token").value
    thief = _copy(browser, app, "remember_token")  # no session cookie: signs in from the remember cookie
    assert _signed_in(thief)
    browser.post("/logout")
    assert not _signed_in(thief)
    later = app.test_client()
    later.set_cookie("remember_token", stolen)  # the copy alone, in a new browser
    assert not _signed_in(later)


def test_each_sign_in_is_its_own_session_and_ending_one_leaves_the_others(app, make):
    user = make.user("agent")
    laptop, phone = _sign_in(app, user), _sign_in(app, user)
    assert laptop.get_cookie("session").value != phone.get_cookie("session").value
    laptop.post("/logout")
    assert not _signed_in(laptop) and _signed_in(phone)


def test_idle_timeout_and_absolute_lifetime(app, make):
    user = make.user("agent")
    idle = _sign_in(app, user)
    old = _sign_in(app, user)
    idle_row, old_row = _sessions(app, user.id)
    with app.app_context():
        minutes = app.config["SESSION_IDLE_MINUTES"]
        db.session.execute(update(UserSession).where(UserSession.id == idle_row.id)
                           .values(last_seen_at=utcnow() - timedelta(minutes=minutes + 1)))
        db.session.execute(update(UserSession).where(UserSession.id == old_row.id)
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert not _signed_in(idle)
    assert not _signed_in(old)
    # A session in use is kept alive by its requests (last_seen_at moves on).
    active = _sign_in(app, user)
    row = _sessions(app, user.id)[-1]
    with app.app_context():
        db.session.execute(update(UserSession).where(UserSession.id == row.id)
                           .values(last_seen_at=utcnow() - timedelta(minutes=minutes - 1)))
        db.session.commit()
    assert _signed_in(active)
    assert utcnow() - _sessions(app, user.id)[-1].last_seen_at < timedelta(minutes=1)


def test_deactivating_an_account_signs_it_out_everywhere(app, make, login_client):
    admin = make.user("admin")
    user = make.user("agent")
    browser = _sign_in(app, user, remember=True)
    assert _signed_in(browser)
    with app.app_context():
        from portal.models import User
        from portal.services import users

        users.set_active(db.session.get(User, admin.id), user.id, False)
    assert not _signed_in(browser)
    assert not _signed_in(_copy(browser, app, "remember_token"))


def test_session_fixation_a_planted_session_does_not_survive_sign_in(app, make):
    user = make.user("requester")
    attacker = app.test_client()
    attacker.get("/login")
    planted = attacker.get_cookie("session")
    victim = app.test_client()
    if planted is not None:
        victim.set_cookie("session", planted.value)
    assert victim.post("/login", data={"email": user.email, "password": user.password}).status_code == 303
    assert planted is None or victim.get_cookie("session").value != planted.value
    if planted is not None:
        assert not _signed_in(_copy(attacker, app, "session"))
