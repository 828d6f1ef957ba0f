"""Accounts: creation, sign-in, deactivation, roles and API tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import ApiToken, AuditLog, User
from portal.models._time import utcnow
from portal.policy import SYSTEM
from portal.services import sessions, users
from portal.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tests.conftest import TEST_PASSWORD


def count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def user_audit(user_id: int, action: str) -> list[AuditLog]:
    db.session.expire_all()
    return list(db.session.scalars(
        select(AuditLog).where(AuditLog.entity_type == "user", AuditLog.entity_id == user_id,
                               AuditLog.action == action).order_by(AuditLog.id)
    ))


# ---------------------------------------------------------------- create_user

def test_create_user_stores_normalised_account_with_hashed_password(ctx, factories):
    admin = factories.make_user("admin")
    user = users.create_user(admin, "  Jane.Doe@Example.COM ", "  Jane Doe ", "agent", TEST_PASSWORD)
    row = factories.reload(user)
    assert row.email == "Jane.Doe@example.com"
    assert row.name == "Jane Doe"
    assert row.role == "agent"
    assert row.active is True
    assert TEST_PASSWORD not in row.password_hash
    [entry] = user_audit(user.id, "user.created")
    assert entry.actor_id == admin.id
    assert entry.after == {"email": "Jane.Doe@example.com", "name": "Jane Doe", "role": "agent", "active": True}


@pytest.mark.parametrize(("email", "name", "role", "password", "fields"), [
    ("not-an-email", "Ann", "agent", TEST_PASSWORD, {"email"}),
    ("", "Ann", "agent", TEST_PASSWORD, {"email"}),
    ("ann@", "Ann", "agent", TEST_PASSWORD, {"email"}),
    ("ann@example.com", "Ann", "agent", "short", {"password"}),
    ("ann@example.com", "Ann", "agent", "123456789", {"password"}),
    ("ann@example.com", "Ann", "agent", "x" * 257, {"password"}),
    ("ann@example.com", "Ann", "agent", "", {"password"}),
    ("ann@example.com", "Ann", "superuser", TEST_PASSWORD, {"role"}),
    ("ann@example.com", "Ann", "Admin", TEST_PASSWORD, {"role"}),
    ("ann@example.com", "   ", "agent", TEST_PASSWORD, {"name"}),
    ("ann@example.com", "n" * 121, "agent", TEST_PASSWORD, {"name"}),
    ("bad", "", "boss", "pw", {"email", "name", "role", "password"}),
])
def test_create_user_invalid_values_refused_and_nothing_written(ctx, email, name, role, password, fields):
    with pytest.raises(ValidationFailed) as info:
        users.create_user(SYSTEM, email, name, role, password)
    assert set(info.value.fields) == fields
    assert count(User) == 0
    assert count(AuditLog) == 0


def test_create_user_password_of_exactly_twelve_characters_accepted(ctx):
    user = users.create_user(SYSTEM, "ten@example.com", "Ten", "requester", "lamp-river-7")
    assert user.id


@pytest.mark.parametrize("duplicate", ["SAM@EXAMPLE.COM", "Sam@example.com", " sam@Example.Com "])
def test_create_user_duplicate_email_in_other_case_conflict(ctx, duplicate):
    users.create_user(SYSTEM, "sam@example.com", "Sam", "requester", TEST_PASSWORD)
    with pytest.raises(Conflict) as info:
        users.create_user(SYSTEM, duplicate, "Sam Again", "agent", TEST_PASSWORD)
    assert "email" in info.value.fields
    assert count(User) == 1


# ---------------------------------------------------------------- authenticate

def test_authenticate_right_password_returns_user_and_stamps_login(ctx, factories):
    user = factories.make_user("requester", email="login@example.com")
    assert factories.reload(user).last_login_at is None
    before = utcnow()
    found = users.authenticate("login@example.com", TEST_PASSWORD)
    assert found is not None and found.id == user.id
    stamped = factories.reload(user).last_login_at
    assert stamped is not None and stamped >= before


def test_authenticate_email_case_and_spaces_ignored(ctx, factories):
    user = factories.make_user("agent", email="case@example.com")
    found = users.authenticate("  CASE@Example.com ", TEST_PASSWORD)
    assert found is not None and found.id == user.id


@pytest.mark.parametrize("password", ["wrong-password-123", "", None, TEST_PASSWORD.upper()])
def test_authenticate_wrong_password_none_and_no_login_stamp(ctx, factories, password):
    user = factories.make_user("requester", email="wrong@example.com")
    assert users.authenticate("wrong@example.com", password) is None
    assert factories.reload(user).last_login_at is None


@pytest.mark.parametrize("email", ["nobody@example.com", "", None])
def test_authenticate_unknown_email_none(ctx, factories, email):
    factories.make_user("requester", email="someone@example.com")
    assert users.authenticate(email, TEST_PASSWORD) is None


def test_authenticate_inactive_user_none(ctx, factories):
    user = factories.make_user("agent", email="gone@example.com", active=False)
    assert users.authenticate("gone@example.com", TEST_PASSWORD) is None
    assert factories.reload(user).last_login_at is None


# ---------------------------------------------------------------- set_active

def test_set_active_false_ends_every_session(ctx, factories):
    admin = factories.make_user("admin")
    user = factories.make_user("agent")
    keys = [sessions.start(user, remember=False), sessions.start(user, remember=True)]
    db.session.commit()
    assert [sessions.load(key).id for key in keys] == [user.id, user.id]
    users.set_active(admin, user.id, False)
    assert factories.reload(user).active is False
    assert [sessions.load(key) for key in keys] == [None, None]
    users.set_active(admin, user.id, True)
    assert [sessions.load(key) for key in keys] == [None, None]  # reactivation brings no session back


def test_a_role_change_ends_the_persons_sessions(ctx, factories):
    admin = factories.make_user("admin")
    user = factories.make_user("agent")
    key = sessions.start(user, remember=False)
    db.session.commit()
    users.change_role(admin, user.id, "manager")
    assert sessions.load(key) is None


def test_set_active_false_expires_api_tokens(ctx, factories):
    admin = factories.make_user("admin")
    user = factories.make_user("agent")
    raw, token = users.issue_token(user)
    assert users.user_for_token(raw).id == user.id
    users.set_active(admin, user.id, False)
    assert users.user_for_token(raw) is None
    db.session.expire_all()
    assert db.session.get(ApiToken, token.id).expires_at <= utcnow()
    # Reactivation does not bring old tokens back.
    users.set_active(admin, user.id, True)
    assert users.user_for_token(raw) is None


def test_set_active_writes_audit_rows(ctx, factories):
    admin = factories.make_user("admin")
    user = factories.make_user("agent")
    users.set_active(admin, user.id, False)
    users.set_active(admin, user.id, True)
    [off] = user_audit(user.id, "user.deactivated")
    [on] = user_audit(user.id, "user.activated")
    assert (off.before["active"], off.after["active"]) == (True, False)
    assert (on.before["active"], on.after["active"]) == (False, True)
    assert off.actor_id == admin.id


def test_set_active_same_value_is_a_no_op(ctx, factories):
    user = factories.make_user("agent")
    key = sessions.start(user, remember=False)
    db.session.commit()
    users.set_active(SYSTEM, user.id, True)
    assert sessions.load(key).id == user.id
    assert user_audit(user.id, "user.activated") == []


def test_set_active_cannot_deactivate_yourself(ctx, factories):
    factories.make_user("admin")
    admin = factories.make_user("admin")
    with pytest.raises(Forbidden):
        users.set_active(admin, admin.id, False)
    assert factories.reload(admin).active is True


def test_set_active_last_active_admin_cannot_be_deactivated(ctx, factories):
    admin = factories.make_user("admin")
    factories.make_user("admin", active=False)
    with pytest.raises(Conflict, match="last active admin"):
        users.set_active(SYSTEM, admin.id, False)
    assert factories.reload(admin).active is True


def test_set_active_admin_deactivated_while_another_remains(ctx, factories):
    first = factories.make_user("admin")
    second = factories.make_user("admin")
    users.set_active(first, second.id, False)
    assert factories.reload(second).active is False
    with pytest.raises(Conflict):
        users.set_active(SYSTEM, first.id, False)


def test_set_active_unknown_user_not_found(ctx):
    with pytest.raises(NotFound):
        users.set_active(SYSTEM, 4242, False)


# ---------------------------------------------------------------- change_role

def test_change_role_writes_audit_with_before_and_after(ctx, factories):
    admin = factories.make_user("admin")
    user = factories.make_user("requester")
    users.change_role(admin, user.id, "manager")
    assert factories.reload(user).role == "manager"
    [entry] = user_audit(user.id, "user.role_changed")
    assert entry.actor_id == admin.id
    assert entry.before["role"] == "requester"
    assert entry.after["role"] == "manager"


def test_change_role_same_role_no_audit(ctx, factories):
    user = factories.make_user("agent")
    users.change_role(SYSTEM, user.id, "agent")
    assert user_audit(user.id, "user.role_changed") == []


def test_change_role_unknown_role_validation_failed(ctx, factories):
    user = factories.make_user("agent")
    with pytest.raises(ValidationFailed) as info:
        users.change_role(SYSTEM, user.id, "root")
    assert "role" in info.value.fields
    assert factories.reload(user).role == "agent"


@pytest.mark.parametrize("role", ["manager", "agent", "requester"])
def test_change_role_last_active_admin_cannot_be_demoted(ctx, factories, role):
    admin = factories.make_user("admin")
    factories.make_user("admin", active=False)
    with pytest.raises(Conflict):
        users.change_role(admin, admin.id, role)
    assert factories.reload(admin).role == "admin"
    assert user_audit(admin.id, "user.role_changed") == []


def test_change_role_admin_demoted_while_another_active_admin_remains(ctx, factories):
    first = factories.make_user("admin")
    second = factories.make_user("admin")
    users.change_role(first, second.id, "agent")
    assert factories.reload(second).role == "agent"
    with pytest.raises(Conflict):
        users.change_role(SYSTEM, first.id, "agent")


def test_change_role_inactive_admin_may_be_demoted(ctx, factories):
    factories.make_user("admin")
    old = factories.make_user("admin", active=False)
    users.change_role(SYSTEM, old.id, "requester")
    assert factories.reload(old).role == "requester"


# ---------------------------------------------------------------- API tokens

def test_issue_token_round_trip_and_only_digest_stored(ctx, factories):
    user = factories.make_user("agent")
    raw, token = users.issue_token(user)
    assert users.user_for_token(raw).id == user.id
    assert token.token_hash != raw
    assert raw not in token.token_hash
    hours = ctx.config["API_TOKEN_TTL_HOURS"]
    assert abs((token.expires_at - utcnow()) - timedelta(hours=hours)) < timedelta(minutes=1)


def test_issue_token_each_token_is_different(ctx, factories):
    user = factories.make_user("agent")
    raw1, _ = users.issue_token(user)
    raw2, _ = users.issue_token(user)
    assert raw1 != raw2
    assert users.user_for_token(raw1).id == users.user_for_token(raw2).id == user.id


def test_user_for_token_expired_token_none(ctx, factories):
    user = factories.make_user("agent")
    raw, token = users.issue_token(user)
    token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert users.user_for_token(raw) is None


@pytest.mark.parametrize("raw", ["", None, "not-a-token", "x" * 201])
def test_user_for_token_unknown_or_malformed_none(ctx, factories, raw):
    users.issue_token(factories.make_user("agent"))
    assert users.user_for_token(raw) is None


def test_user_for_token_inactive_user_none(ctx, factories):
    admin = factories.make_user("admin")
    user = factories.make_user("agent")
    raw, token = users.issue_token(user)
    users.set_active(admin, user.id, False)
    token = db.session.get(ApiToken, token.id)
    token.expires_at = utcnow() + timedelta(hours=1)  # even if the token were still valid
    db.session.commit()
    assert users.user_for_token(raw) is None


def test_purge_expired_tokens_removes_only_those_expired_over_a_day_ago(ctx, factories):
    user = factories.make_user("agent")
    now = utcnow()
    expiries = {
        "long_gone": now - timedelta(days=3),
        "just_over_a_day": now - timedelta(days=1, minutes=5),
        "under_a_day": now - timedelta(hours=23),
        "just_expired": now - timedelta(minutes=1),
        "valid": now + timedelta(hours=5),
    }
    tokens = {}
    for label, expires in expiries.items():
        _, token = users.issue_token(user)
        token.expires_at = expires
        tokens[label] = token.id
    db.session.commit()

    assert users.purge_expired_tokens() == 2
    left = set(db.session.scalars(select(ApiToken.id)))
    assert left == {tokens["under_a_day"], tokens["just_expired"], tokens["valid"]}
    assert users.purge_expired_tokens() == 0


@pytest.mark.parametrize(("password", "message"), [
    ("elevenchars", "Use at least 12 characters."),
    ("Ada.Lovelace@Example.com", "Do not use your email address"),
    ("ada.lovelace", "Do not use your email address"),
    ("1qaz2wsx3edc", "one of the most common passwords"),
    ("123QWEasdZXC", "one of the most common passwords"),
])
def test_passwords_that_are_refused(ctx, password, message):
    with pytest.raises(ValidationFailed) as refused:
        users.create_user(SYSTEM, "ada.lovelace@example.com", "Ada", "requester", password)
    assert message in refused.value.fields["password"]


def test_the_common_password_list_is_shipped_and_read(ctx):
    common = users.common_passwords()
    assert len(common) == 10_000 and "password" in common and "correct-horse-battery" not in common
