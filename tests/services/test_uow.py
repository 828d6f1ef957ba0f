"""The unit of work: one commit, or nothing written; only a unique violation is a 409."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import Category
from portal.services.errors import SAME_MOMENT, Conflict
from portal.services.uow import unit_of_work


def _categories() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Category))


def test_commits_once_at_the_end_and_runs_after_commit_hooks(ctx):
    before = _categories()
    ran = []
    with unit_of_work() as work:
        db.session.add(Category(code="facilities", name="Facilities", sort_order=50, active=True))
        work.after_commit(lambda: ran.append("after"))
        work.on_rollback(lambda: ran.append("rollback"))
        assert ran == []
    assert ran == ["after"]
    assert _categories() == before + 1


def test_an_error_rolls_everything_back_and_runs_rollback_hooks(ctx):
    before = _categories()
    ran = []
    with pytest.raises(RuntimeError), unit_of_work() as work:
        db.session.add(Category(code="facilities", name="Facilities", sort_order=50, active=True))
        db.session.flush()
        work.on_rollback(lambda: ran.append("rollback"))
        work.after_commit(lambda: ran.append("after"))
        raise RuntimeError("half-way")
    assert ran == ["rollback"]
    assert _categories() == before


def test_a_unique_violation_is_a_conflict(ctx):
    with pytest.raises(Conflict) as caught, unit_of_work():
        db.session.add(Category(code="hardware", name="Hardware again", sort_order=1, active=True))
    assert caught.value.status == 409 and caught.value.message == SAME_MOMENT
    assert db.session.get(Category, "hardware").name == "Hardware"


def test_other_integrity_errors_stay_errors_and_are_logged(ctx, caplog):
    with pytest.raises(IntegrityError), unit_of_work():
        db.session.execute(text(
            "INSERT INTO service_request (title, description, category, priority, status, requester_id, "
            "created_at, updated_at) VALUES ('t', 'd', 'hardware', 'urgent!', 'open', 999, now(), now())"))
    assert any("integrity error" in r.getMessage() for r in caplog.records)


def test_a_check_violation_reaching_a_page_is_a_500_not_a_409(app, client, monkeypatch, caplog):
    """A missing check of ours must show up as an error to fix, not as "someone saved at the same moment"."""
    from portal.requests import routes

    def broken(*args, **kwargs):
        with unit_of_work():
            db.session.execute(text(
                "INSERT INTO category (code, name, sort_order, active) VALUES (NULL, 'x', 1, true)"))

    monkeypatch.setattr(routes.svc, "list_categories", broken)
    with app.app_context():
        from tests import factories

        email = factories.make_user("requester").email
    client.post("/login", data={"email": email, "password": "correct-horse-battery"})
    response = client.get("/requests/new")
    assert response.status_code == 500
    assert "Someone else saved" not in response.get_data(as_text=True)
    assert any("integrity error" in r.getMessage() for r in caplog.records)
