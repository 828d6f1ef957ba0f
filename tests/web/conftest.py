"""Helpers for the web tests.

The shared `factories` fixture keeps an app context pushed for the whole test. Test-client
requests made inside it reuse that context, so `g` (where Flask-Login caches `current_user`)
and the SQLAlchemy session are shared between requests and between clients. Here every
set-up or check runs in its own short app context instead, and returns plain snapshots.
"""

from __future__ import annotations

import io
import itertools
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from portal.policy import SYSTEM
from tests.conftest import TEST_PASSWORD

_seq = itertools.count(1)


def _user_ns(user) -> SimpleNamespace:
    return SimpleNamespace(id=user.id, email=user.email, name=user.name, role=user.role, active=user.active,
                           password=TEST_PASSWORD)


class Maker:
    """Creates and reads rows, each call in a fresh app context."""

    def __init__(self, app):
        self.app = app

    def user(self, role: str = "requester", active: bool = True, **kw) -> SimpleNamespace:
        from tests import factories

        n = next(_seq)
        # factories' default addresses end in .test, which email-validator refuses.
        kw.setdefault("email", f"{role}{n}@example.com")
        kw.setdefault("name", f"{role.title()} Person{n}")
        with self.app.app_context():
            return _user_ns(factories.make_user(role, active=active, **kw))

    def request(self, requester, uploads=None, status: str | None = None, assignee=None,
                **fields) -> SimpleNamespace:
        from portal.extensions import db
        from portal.models import Attachment, ServiceRequest, User
        from portal.services import attachments as files
        from tests import factories

        with self.app.app_context():
            actor = db.session.get(User, requester.id)
            ups = [files.Upload(name, io.BytesIO(data)) for name, data in (uploads or [])]
            req = factories.make_request(actor, uploads=ups, **fields)
            if status is not None or assignee is not None:
                row = db.session.get(ServiceRequest, req.id)
                if status is not None:
                    row.status = status
                if assignee is not None:
                    row.assignee_id = assignee.id
                db.session.commit()
            att_ids = list(db.session.scalars(
                select(Attachment.id).where(Attachment.request_id == req.id).order_by(Attachment.id)))
            return SimpleNamespace(id=req.id, title=req.title, requester_id=req.requester_id,
                                   attachment_ids=att_ids)

    def comment(self, author, request_id: int, body: str, internal: bool = False, uploads=None) -> SimpleNamespace:
        from portal.extensions import db
        from portal.models import Attachment, User
        from portal.services import attachments as files
        from portal.services import requests as svc

        with self.app.app_context():
            actor = db.session.get(User, author.id)
            ups = [files.Upload(name, io.BytesIO(data)) for name, data in (uploads or [])]
            comment = svc.add_comment(actor, request_id, body, internal, ups)
            att_ids = list(db.session.scalars(
                select(Attachment.id).where(Attachment.comment_id == comment.id).order_by(Attachment.id)))
            return SimpleNamespace(id=comment.id, body=comment.body, attachment_ids=att_ids)

    def sla(self) -> SimpleNamespace:
        """A 24x7 SLA for hardware/medium (the factories' default request) and a calendar with a holiday."""
        from datetime import date, time

        from portal.services import sla_admin

        with self.app.app_context():
            cal = sla_admin.create_calendar(SYSTEM, {"name": f"Office {next(_seq)}", "timezone": "Europe/London",
                                                   "working_days": [0, 1, 2, 3, 4], "opens": time(9),
                                                   "closes": time(18)})
            holiday, _ = sla_admin.add_holiday(SYSTEM, cal.id, date(2026, 12, 25), "Christmas Day")
            definition = sla_admin.create_definition(SYSTEM, {
                "category": "hardware", "priority": "medium", "response_time_hours": 4,
                "resolution_time_hours": 24})
            return SimpleNamespace(definition_id=definition.id, calendar_id=cal.id, holiday_id=holiday.id)

    def exemption(self, granter, request_id: int, exemption_type: str = "resolution",
                  hours: float | None = None) -> int:
        from portal.extensions import db
        from portal.models import User
        from portal.services import sla

        with self.app.app_context():
            actor = db.session.get(User, granter.id)
            return sla.grant_exemption(actor, request_id, "Waiting for the vendor", exemption_type, hours).id

    def deactivate(self, user) -> None:
        from portal.services import users

        with self.app.app_context():
            users.set_active(SYSTEM, user.id, False)

    def token(self, user) -> str:
        from portal.extensions import db
        from portal.models import User
        from portal.services import users

        with self.app.app_context():
            raw, _ = users.issue_token(db.session.get(User, user.id))
            return raw

    def get_request(self, request_id: int) -> SimpleNamespace | None:
        from portal.extensions import db
        from portal.models import ServiceRequest

        with self.app.app_context():
            row = db.session.get(ServiceRequest, request_id)
            if row is None:
                return None
            return SimpleNamespace(id=row.id, title=row.title, status=row.status, priority=row.priority,
                                   category=row.category, assignee_id=row.assignee_id,
                                   requester_id=row.requester_id)

    def get_user(self, user_id: int) -> SimpleNamespace | None:
        from portal.extensions import db
        from portal.models import User

        with self.app.app_context():
            row = db.session.get(User, user_id)
            return _user_ns(row) if row else None

    def find_user(self, email: str) -> SimpleNamespace | None:
        from portal.services import users

        with self.app.app_context():
            row = users.find_by_email(email)
            return _user_ns(row) if row else None

    def count(self, model_name: str) -> int:
        import portal.models as models
        from portal.extensions import db

        with self.app.app_context():
            return db.session.scalar(select(func.count()).select_from(getattr(models, model_name)))

    def comments(self, request_id: int) -> list[SimpleNamespace]:
        from portal.extensions import db
        from portal.models import Comment

        with self.app.app_context():
            rows = db.session.scalars(select(Comment).where(Comment.request_id == request_id).order_by(Comment.id))
            return [SimpleNamespace(id=c.id, body=c.body, internal=c.internal, author_id=c.author_id) for c in rows]


@pytest.fixture()
def make(app) -> Maker:
    return Maker(app)


@pytest.fixture()
def login_client(app):
    """A new test client signed in as `user` through the real sign-in form."""

    def _login(user, password: str = TEST_PASSWORD):
        c = app.test_client()
        response = c.post("/login", data={"email": user.email, "password": password})
        assert response.status_code == 303, response.status_code
        return c

    return _login
