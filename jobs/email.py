"""Mail jobs on the email queue: deliver a person's notifications, the hourly digest, pruning."""

from __future__ import annotations

from jobs._context import app_context, record_meta


def deliver(recipient_id: int) -> int:
    """Send one person their pending notifications as one mail (retried on a mail server error)."""
    from portal.services import notifications

    with app_context():
        count = notifications.deliver(recipient_id)
    record_meta(sent=count)
    return count


def send_digests() -> int:
    """Send each person their held notifications (hourly SLA digests, flood overflow) as one mail."""
    from portal.services import notifications

    with app_context():
        count = notifications.send_digests()
    record_meta(digests=count)
    return count


def prune_notifications() -> int:
    """Delete sent and skipped notifications older than 90 days (nightly)."""
    from portal.services import notifications

    with app_context():
        count = notifications.prune()
    record_meta(pruned=count)
    return count
