"""Scale-out tests: a read replica, PgBouncer in transaction mode, several web and worker processes."""

from __future__ import annotations

import pytest

from tests.scale.pgbouncer import PgBouncer, require_binary


@pytest.fixture()
def pgbouncer(app):
    """A PgBouncer (transaction mode) in front of the test database, for one test."""
    require_binary()
    bouncer = PgBouncer(app.config["DATABASE_URL"]).start()
    yield bouncer
    bouncer.stop()
