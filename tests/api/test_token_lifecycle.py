"""API tokens: listed with their last use, revoked by their owner or an admin, capped, minting rate-limited."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import ApiToken, AuditLog
from portal.services import users
from tests.api.helpers import error_of
from tests.conftest import TEST_PASSWORD


def test_tokens_are_listed_with_last_use_and_the_one_in_hand_marked(api, factories, token_for):
    user = factories.make_user("agent")
    first, second = token_for(user), token_for(user)
    listed = api("GET", "auth/tokens", token=second)
    assert listed.status_code == 200
    items = listed.get_json()["items"]
    assert [i["current"] for i in items] == [True, False]
    assert items[0]["last_used_at"] is not None and items[1]["last_used_at"] is None  # first never used
    assert api("GET", "service-requests", token=first).status_code == 200
    items = api("GET", "auth/tokens", token=second).get_json()["items"]
    assert items[1]["last_used_at"] is not None


def test_revoking_a_token_stops_it_at_once_and_is_audited(api, factories, token_for):
    user = factories.make_user("agent")
    keep, lose = token_for(user), token_for(user)
    lose_id = next(i["id"] for i in api("GET", "auth/tokens", token=lose).get_json()["items"] if i["current"])
    assert api("DELETE", f"auth/tokens/{lose_id}", token=keep).status_code == 204
    assert api("GET", "service-requests", token=lose).status_code == 401
    assert api("GET", "service-requests", token=keep).status_code == 200
    [row] = db.session.scalars(select(AuditLog).where(AuditLog.action == "token.revoked")).all()
    assert (row.actor_id, row.entity_id, row.before["token_id"]) == (user.id, user.id, lose_id)

    assert api("DELETE", "auth/token", token=keep).status_code == 204  # signing out of the API
    assert api("GET", "service-requests", token=keep).status_code == 401


def test_nobody_revokes_or_lists_someone_elses_token_but_an_admin(api, factories, token_for):
    owner, other, admin = factories.make_user("agent"), factories.make_user("manager"), factories.make_user("admin")
    owner_token = token_for(owner)
    owner_token_id = api("GET", "auth/tokens", token=owner_token).get_json()["items"][0]["id"]
    other_token, admin_token = token_for(other), token_for(admin)

    refused = api("DELETE", f"auth/tokens/{owner_token_id}", token=other_token)
    assert refused.status_code == 404 and error_of(refused)["code"] == "not_found"
    assert api("GET", "auth/tokens", token=other_token, query={"user_id": owner.id}).status_code == 403
    assert api("GET", "auth/tokens", token=admin_token, query={"user_id": "x"}).status_code == 422

    seen = api("GET", "auth/tokens", token=admin_token, query={"user_id": owner.id}).get_json()["items"]
    assert [i["id"] for i in seen] == [owner_token_id]
    assert api("DELETE", f"auth/tokens/{owner_token_id}", token=admin_token).status_code == 204
    assert api("GET", "service-requests", token=owner_token).status_code == 401


def test_an_account_holds_at_most_twenty_live_tokens_even_when_minted_at_once(app, ctx, factories):
    user = factories.make_user("agent")
    for _ in range(users.TOKEN_LIVE_MAX - 2):
        users.issue_token(user)
    user_id = user.id
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def mint():
        with app.app_context():
            from portal.models import User

            barrier.wait()
            try:
                users.issue_token(db.session.get(User, user_id))
                outcomes.append("minted")
            except Exception as exc:  # noqa: BLE001 - the refusal is what is counted
                outcomes.append(type(exc).__name__)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=mint) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["Conflict", "Conflict", "minted", "minted"]
    assert db.session.scalar(select(func.count()).select_from(ApiToken)) == users.TOKEN_LIVE_MAX


def test_the_cap_is_answered_with_409_and_what_to_do(api, ctx, factories):
    user = factories.make_user("agent")
    for _ in range(users.TOKEN_LIVE_MAX):
        users.issue_token(user)
    refused = api("POST", "auth/token", json={"email": user.email, "password": TEST_PASSWORD})
    assert refused.status_code == 409 and "Revoke one you no longer use" in error_of(refused)["message"]


def test_minting_is_rate_limited_even_when_every_attempt_succeeds(app, api, factories):
    user = factories.make_user("agent")
    app.config["TOKEN_MINT_RATE_LIMIT"] = "3 per hour"
    try:
        codes = [api("POST", "auth/token", json={"email": user.email, "password": TEST_PASSWORD}).status_code
                 for _ in range(4)]
    finally:
        app.config["TOKEN_MINT_RATE_LIMIT"] = "20 per hour"
    assert codes == [201, 201, 201, 429]
