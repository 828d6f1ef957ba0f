"""Job functions for the job observability tests (importable by real worker processes)."""

from __future__ import annotations


def write_audit_row(note: str) -> int:
    """Write one audit row as the system, the way a job's service call would; returns its id."""
    from jobs._context import app_context
    from portal.services import audit
    from portal.services.uow import unit_of_work

    with app_context(), unit_of_work():
        row = audit.record(None, "job.observed", "job", 1, after={"note": note})
        from portal.extensions import db

        db.session.flush()
        return row.id


def always_fail(message: str) -> None:
    """Fail every time."""
    raise RuntimeError(message)


def crash_the_process() -> None:
    """End the work horse abruptly, as an out-of-memory kill or a segfault would."""
    import os

    os._exit(9)
