"""Read-only work on the read replica (DATABASE_REPLICA_URL), with `db.session` unchanged for services.

    with replica_session():
        data = sla_reports.statistics(days)      # its db.session reads come from the replica

Inside the block `db.session` is a session of its own on the replica engine (Flask-SQLAlchemy bind
"replica"), so a service reads through it without knowing; every transaction it opens is
`READ ONLY`, so a write attempted in the block fails instead of landing on the wrong server
(a real replica refuses it too). After the block the portal's own session is back, untouched:
objects loaded in the block are detached, so blocks return plain values (dicts, counts, files).
Writes that must go on while a block runs (an export's progress) use `db.engine`, the primary.

Without DATABASE_REPLICA_URL the block does nothing: everything reads from the primary, as before.
A replica that does not answer when the block starts is logged (WARNING) and the block reads from
the primary: the primary holds the same data, so an export or the SLA page keeps working and only
the load moves; the job or page fails only if the primary fails too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from flask import current_app
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from portal.extensions import db

log = logging.getLogger(__name__)

REPLICA_BIND = "replica"        # the key of SQLALCHEMY_BINDS (create_app)
ON_REPLICA = "on_replica"       # session.info flag of the block's session
CONNECT_TIMEOUT = 3             # seconds; an unreachable replica must not hold a page
T = TypeVar("T")


def replica_bind(url: str, engine_options: dict) -> dict:
    """The SQLALCHEMY_BINDS entry of the replica: the primary's pool settings, a short connect timeout."""
    from sqlalchemy.engine import make_url

    from portal import sqlalchemy_url

    options = {"url": sqlalchemy_url(url), **engine_options}
    if "connect_timeout" not in make_url(options["url"]).query:
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT, **options.get("connect_args", {})}
    return options


def replica_engine() -> Engine | None:
    """The replica's engine, or None when DATABASE_REPLICA_URL is unset."""
    if not current_app.config.get("DATABASE_REPLICA_URL"):
        return None
    return db.engines[REPLICA_BIND]


def on_replica() -> bool:
    """Whether `db.session` reads from the replica here (inside a replica_session block that got one)."""
    registry = db.session.registry
    return registry.has() and bool(registry().info.get(ON_REPLICA))


def read_engine() -> Engine:
    """The engine read-only work should use for raw connections (COPY): the replica inside a block."""
    return db.session.get_bind() if on_replica() else db.engine


def _read_only(session: Session, transaction, connection) -> None:
    connection.exec_driver_sql("SET TRANSACTION READ ONLY")  # per transaction: safe behind PgBouncer


@contextmanager
def replica_session() -> Iterator[bool]:
    """Route `db.session` to the replica for the block; yields whether it did (False: the primary)."""
    engine = replica_engine()
    if engine is None or on_replica():
        yield on_replica()
        return
    session = Session(bind=engine, info={ON_REPLICA: True})
    event.listen(session, "after_begin", _read_only)
    try:
        session.connection()  # checks a connection out (pre-ping) and begins: a dead replica shows here
    except DBAPIError as exc:
        session.close()
        log.warning("read replica unreachable, reading from the primary instead: %s",
                    str(exc.orig or exc).strip().splitlines()[0], extra={"type": "replica"})
        yield False
        return
    registry = db.session.registry
    previous = registry() if registry.has() else None
    registry.set(session)
    try:
        yield True
    finally:
        session.close()
        if previous is not None:
            registry.set(previous)
        else:
            registry.clear()


def read_on_replica(read: Callable[[], T]) -> T:
    """`read()` on the replica; if the replica fails during it, once more on the primary.

    For pages and API reads, whose `read` is a pure query: running it twice is harmless, and a
    replica dying mid-page then costs a retry, not an error page.
    """
    try:
        with replica_session():
            return read()
    except DBAPIError as exc:
        if not exc.connection_invalidated and not _is_connection_error(exc):
            raise
        log.warning("read replica failed during a read, reading from the primary instead: %s",
                    str(exc.orig or exc).strip().splitlines()[0], extra={"type": "replica"})
        return read()


def _is_connection_error(exc: DBAPIError) -> bool:
    from psycopg2 import InterfaceError, OperationalError

    return isinstance(exc.orig, OperationalError | InterfaceError)
