"""What the portal tells people by email: the kinds of notification, who may get each, and the
rules that keep mail calm (one mail per change, summaries instead of floods, hourly SLA digests).

Pure data and rules; the service (portal/services/notifications.py) writes and sends.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NotificationKind:
    """One kind of mail: `label` on the account page, `roles` who may receive it."""

    code: str
    label: str
    roles: tuple[str, ...]
    sla_alert: bool = False    # an SLA alert: may go in the hourly digest instead
    optional: bool = True      # False: always sent (a password reset is not a preference)
    in_app: bool = False       # also listed under the bell, linking to its request (whatever became of the mail)


ALL_ROLES = ("requester", "agent", "manager", "admin")
STAFF_ROLES = ("agent", "manager", "admin")

KINDS: dict[str, NotificationKind] = {
    k.code: k
    for k in (
        NotificationKind("request_created", "A request I raised was received", ALL_ROLES),
        NotificationKind("assigned", "A request is assigned to me", STAFF_ROLES, in_app=True),
        NotificationKind("public_comment", "Someone replies on a request I raised or one assigned to me",
                         ALL_ROLES, in_app=True),
        NotificationKind("mention", "Someone mentions me in an internal note", STAFF_ROLES, in_app=True),
        NotificationKind("status_changed", "The status of a request I raised changes", ALL_ROLES),
        NotificationKind("sla_at_risk", "An SLA target is at risk", ("agent", "manager"), sla_alert=True,
                         in_app=True),
        NotificationKind("sla_breached", "An SLA target is breached", ("agent", "manager"), sla_alert=True,
                         in_app=True),
        NotificationKind("dead_letter", "A background job failed after its last retry", ("admin",)),
        NotificationKind("password_reset", "Password reset link", ALL_ROLES, optional=False),
        NotificationKind("backup_failed", "A database backup failed or did not verify", ("admin",), optional=False),
        NotificationKind("security_alert", "Suspicious activity: sign-ins blocked for a network", ("admin",),
                         optional=False),
        NotificationKind("account_locked", "My account was locked after failed sign-ins", ALL_ROLES, optional=False),
        NotificationKind("verify_email", "Confirm my email address", ALL_ROLES, optional=False),
        NotificationKind("account_exists", "Someone tried to register with my address", ALL_ROLES, optional=False),
    )
}
# The bell lists these kinds (each about one request), read or not, whatever became of the mail: a
# person who turned the mail off still sees them in the portal. The unread index is partial on them.
IN_APP_KINDS = tuple(k.code for k in KINDS.values() if k.in_app)
UNREAD_SHOWN_MAX = 99           # the bell says "99+" past this: its count reads at most 100 rows
STATUSES = ("pending", "held", "sent", "skipped")
# Why a notification was held for the digest or skipped (shown to operators, kept on the row).
HELD_FOR_DIGEST = "digest"        # the recipient asked for SLA alerts hourly
HELD_FOR_FLOOD = "flood"          # too many mails to this person lately: the rest go in the digest
SKIPPED_TURNED_OFF = "turned_off"
SKIPPED_NO_RECIPIENT = "inactive"

# Flood rule: at most FLOOD_LIMIT single mails to one person in FLOOD_WINDOW_MINUTES; past it,
# notifications wait for the hourly digest. One delivery run with several notifications for a
# person sends them as one summary mail, whatever their number.
FLOOD_LIMIT = 10
FLOOD_WINDOW_MINUTES = 10
SUMMARY_LIST_MAX = 50           # a summary or digest lists this many items, then "and N more"


def kinds_for(role: str) -> list[NotificationKind]:
    """The kinds a person with `role` may receive and choose on their account page, in order."""
    return [k for k in KINDS.values() if role in k.roles and k.optional]


def wants(kind: str, role: str, muted: frozenset[str] | set[str]) -> bool:
    """Whether a person with `role`, who turned off `muted`, gets `kind` at all."""
    spec = KINDS[kind]
    if not spec.optional:
        return True
    return role in spec.roles and kind not in muted
