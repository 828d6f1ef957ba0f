"""Housekeeping jobs on the default queue."""

from __future__ import annotations

from jobs._context import app_context, record_meta


def purge_expired_tokens() -> int:
    """Delete API tokens that expired over a day ago; records the count in job.meta."""
    from portal.services.users import purge_expired_tokens as purge

    with app_context():
        count = purge()
    record_meta(purged=count)
    return count


def relay_outbox() -> int:
    """Relay outbox rows still waiting (every minute; the rows written while Redis was down)."""
    from portal.queueing import relay_outbox as relay

    with app_context():
        count = relay()
    record_meta(relayed=count)
    return count


def prune_outbox() -> int:
    """Delete outbox rows relayed over 30 days ago (nightly); records the count in job.meta."""
    from portal.queueing import prune_outbox as prune

    with app_context():
        count = prune()
    record_meta(pruned=count)
    return count


def fold_request_tally() -> dict:
    """Sum the request tally's rows per combination into one (every minute; the counts are exact meanwhile)."""
    from portal.services import request_tally

    with app_context():
        summary = request_tally.fold()
    record_meta(**summary)
    return summary
