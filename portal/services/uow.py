"""One change, one unit of work: everything inside commits once, or nothing does.

    with unit_of_work() as work:
        req = lock_request(...)          # SELECT ... FOR UPDATE, version checked
        ...                              # domain rules and audit rows
        work.on_rollback(discard_files)  # undo what lives outside the database
        queueing.enqueue("jobs.x.y", id)  # an outbox row, committed with the change
    # committed here; the outbox rows are relayed to Redis now

Services own their transactions through this context and nothing else; no service writes its
own try/commit/except/rollback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.queueing import OUTBOX_PENDING, relay_after_commit
from portal.services.errors import conflict_from_integrity

log = logging.getLogger(__name__)


TRANSACTION_SCOPED = "transaction_scoped"


def transaction_scoped() -> dict:
    """A dict for the current unit of work only: emptied when it commits or rolls back.

    For what a service collects across one change (say, the people already due a mail run).
    """
    return db.session.info.setdefault(TRANSACTION_SCOPED, {})


class UnitOfWork:
    """Hooks for what must happen beside the database transaction."""

    def __init__(self) -> None:
        self._on_rollback: list[Callable[[], None]] = []
        self._after_commit: list[Callable[[], None]] = []

    def on_rollback(self, action: Callable[[], None]) -> None:
        """Run `action` if the change does not commit (e.g. remove files written for it)."""
        self._on_rollback.append(action)

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once the change is committed (e.g. wake the outbox relay)."""
        self._after_commit.append(action)


@contextmanager
def unit_of_work() -> Iterator[UnitOfWork]:
    """Commit once at the end; roll back (and run the rollback hooks) on any error.

    A unique violation at commit becomes a Conflict (409): two people saved the same unique
    thing at the same moment. Any other integrity error is logged with its detail and re-raised.
    """
    work = UnitOfWork()
    try:
        yield work
        db.session.commit()
    except BaseException as exc:
        db.session.rollback()
        db.session.info.pop(OUTBOX_PENDING, None)  # the outbox rows went with the rollback
        db.session.info.pop(TRANSACTION_SCOPED, None)
        for action in work._on_rollback:
            action()
        if isinstance(exc, IntegrityError):
            conflict = conflict_from_integrity(exc)
            if conflict is not None:
                raise conflict from exc
            log.error("integrity error: %s", getattr(exc, "orig", exc))
        raise
    db.session.info.pop(TRANSACTION_SCOPED, None)
    for action in work._after_commit:
        action()
    if db.session.info.pop(OUTBOX_PENDING, False):
        relay_after_commit()
