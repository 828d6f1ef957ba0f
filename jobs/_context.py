"""One Flask app per worker process, created on first use (never at import time)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from flask import Flask

_app: Flask | None = None


@contextlib.contextmanager
def app_context() -> Iterator[Flask]:
    """Run the body inside the portal's app context."""
    global _app
    if _app is None:
        from portal import create_app

        _app = create_app()
    with _app.app_context():
        yield _app


def record_meta(**values) -> None:
    """Write progress or results into the running RQ job's meta (no-op outside a worker)."""
    from rq import get_current_job

    job = get_current_job()
    if job is not None:
        job.meta.update(values)
        job.save_meta()
