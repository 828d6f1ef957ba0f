"""API test helpers: real bearer tokens, calls that carry them, and reads that bypass the ORM session.

Each API call runs in its own app context, so the view gets its own database session (as in
production) instead of sharing the test's session and identity map.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.api.helpers import API
from tests.conftest import TEST_PASSWORD

_NO_BODY = object()


@pytest.fixture()
def api(app, client):
    """api(method, path, token=None, json=..., data=..., content_type=..., headers=...) -> response."""

    def call(method: str, path: str, token: str | None = None, json: Any = _NO_BODY,
             data: Any = None, content_type: str | None = None, headers: dict | None = None,
             query: dict | None = None):
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {"method": method, "headers": sent, "query_string": query}
        if json is not _NO_BODY:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
        if content_type is not None:
            kwargs["content_type"] = content_type
        url = path if path.startswith("/") else f"{API}/{path}"
        with app.app_context():
            return client.open(url, **kwargs)

    return call


@pytest.fixture()
def token_for(api):
    """token_for(user) -> a fresh bearer token from POST /api/v1/auth/token."""

    def issue(user, password: str = TEST_PASSWORD) -> str:
        response = api("POST", "auth/token", json={"email": user.email, "password": password})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["token"]

    return issue


class Caller:
    """Calls the API as one user: caller.get("service-requests"), caller.patch(path, json=...)."""

    def __init__(self, api, token: str, user):
        self._api = api
        self.token = token
        self.user = user

    def __call__(self, method: str, path: str, **kwargs):
        return self._api(method, path, token=self.token, **kwargs)

    def get(self, path: str, **kwargs):
        return self("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self("POST", path, **kwargs)

    def patch(self, path: str, **kwargs):
        return self("PATCH", path, **kwargs)


@pytest.fixture()
def as_user(api, token_for):
    """as_user(user) -> a Caller holding a real token for that user."""
    return lambda user: Caller(api, token_for(user), user)


@pytest.fixture()
def stored(ctx):
    """stored(Model, id) -> the committed row as a dict (own connection, no ORM cache), or None."""
    from portal.extensions import db

    def row(model, row_id: int) -> dict | None:
        table = model.__table__
        with db.engine.connect() as conn:
            found = conn.execute(select(table).where(table.c.id == row_id)).mappings().one_or_none()
        return dict(found) if found is not None else None

    return row


@pytest.fixture()
def count_rows(ctx):
    """count_rows(Model) -> how many committed rows the table holds."""
    from sqlalchemy import func

    from portal.extensions import db

    def count(model) -> int:
        with db.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(model.__table__)).scalar_one()

    return count



@pytest.fixture()
def requester(factories, as_user):
    """A requester calling the API with a real token."""
    return as_user(factories.make_user("requester"))


@pytest.fixture()
def agent(factories, as_user):
    """An agent calling the API with a real token."""
    return as_user(factories.make_user("agent"))
