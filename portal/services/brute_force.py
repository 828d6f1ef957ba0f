"""Brute-force defence for sign-in (page and API token): block a client IP, lock an account, tell people.

Counted in Redis, shared by every web process:
- 5 failed sign-ins from one IP within 5 minutes block that IP from signing in for 15 minutes; the
  block is written to the audit log and mailed to the admins, once per block.
- 10 failed sign-ins for one account (by the email typed, from any IPs) within 15 minutes lock it for
  15 minutes; its owner is told by mail, once per lock. Unknown addresses are "locked" the same way,
  so the answer never tells whether an account exists.
A successful sign-in clears the account's count (not the IP's). If Redis cannot be asked the check
lets the sign-in proceed (the password is still checked) and logs a warning: an outage of Redis must
not lock everyone out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

IP_FAILURES, IP_WINDOW, IP_BLOCK = 5, 5 * 60, 15 * 60
ACCOUNT_FAILURES, ACCOUNT_WINDOW, ACCOUNT_LOCK = 10, 15 * 60, 15 * 60
PREFIX = "portal:auth:"


@dataclass(frozen=True)
class Refusal:
    """Why a sign-in is refused before the password is looked at, and for how long."""

    reason: str      # "ip_blocked" or "account_locked" (auth_failures_total reason "locked")
    seconds: int

    @property
    def message(self) -> str:
        minutes = max(1, -(-self.seconds // 60))
        if self.reason == "ip_blocked":
            return (f"Too many failed sign-ins from your network. Signing in from here is paused for {minutes} "
                    f"minute{'s' if minutes != 1 else ''}.")
        return (f"Too many failed sign-ins for this account. It is locked for {minutes} minute"
                f"{'s' if minutes != 1 else ''}; if it was not you, reset your password afterwards.")


def _redis():
    from portal.services.health import health_redis

    return health_redis()


def _email_key(email: str) -> str:
    return (email or "").strip().lower()[:254]


def refusal(ip: str | None, email: str) -> Refusal | None:
    """A current IP block or account lock, else None (also when Redis cannot be asked)."""
    try:
        connection = _redis()
        with connection.pipeline(transaction=False) as pipe:
            pipe.ttl(f"{PREFIX}block:ip:{ip}")
            pipe.ttl(f"{PREFIX}lock:account:{_email_key(email)}")
            ip_ttl, account_ttl = pipe.execute()
    except RedisError as exc:
        log.warning("brute-force check skipped, Redis unavailable: %s", exc)
        return None
    if ip_ttl and ip_ttl > 0:
        return Refusal("ip_blocked", ip_ttl)
    if account_ttl and account_ttl > 0:
        return Refusal("account_locked", account_ttl)
    return None


def _count(connection, key: str, window: int) -> int:
    with connection.pipeline(transaction=True) as pipe:
        pipe.set(key, 0, ex=window, nx=True)  # a fixed window starting at the first failure
        pipe.incr(key)
        return int(pipe.execute()[1])


def record_failure(ip: str | None, email: str) -> None:
    """Count a failed sign-in; start a block or lock (with its audit row and mails) at the threshold."""
    email = _email_key(email)
    try:
        connection = _redis()
        ip_failures = _count(connection, f"{PREFIX}fail:ip:{ip}", IP_WINDOW)
        account_failures = _count(connection, f"{PREFIX}fail:account:{email}", ACCOUNT_WINDOW)
        blocked = ip_failures >= IP_FAILURES and connection.set(f"{PREFIX}block:ip:{ip}", 1, ex=IP_BLOCK, nx=True)
        locked = account_failures >= ACCOUNT_FAILURES and connection.set(
            f"{PREFIX}lock:account:{email}", 1, ex=ACCOUNT_LOCK, nx=True)
    except RedisError as exc:
        log.warning("could not count a failed sign-in, Redis unavailable: %s", exc)
        return
    if blocked:
        _ip_blocked(ip, ip_failures)
    if locked:
        _account_locked(email, account_failures, ip)


def record_success(email: str) -> None:
    try:
        _redis().delete(f"{PREFIX}fail:account:{_email_key(email)}")
    except RedisError:
        pass


def _ip_blocked(ip: str | None, failures: int) -> None:
    from portal.services import audit, notifications
    from portal.services.uow import unit_of_work

    log.warning("sign-in blocked for %s after %d failures", ip, failures, extra={"type": "security"})
    with unit_of_work():
        audit.record(None, "security.ip_blocked", "security", 0, None,
                     {"ip": ip, "failures": failures, "minutes": IP_BLOCK // 60})
    notifications.security_alert(f"ip:{ip}", {
        "what": f"{failures} failed sign-ins from {ip} within {IP_WINDOW // 60} minutes",
        "done": f"Signing in from {ip} is blocked for {IP_BLOCK // 60} minutes.", "ip": ip})


def _account_locked(email: str, failures: int, ip: str | None) -> None:
    from portal.services import audit, notifications, users
    from portal.services.uow import unit_of_work

    user = users.find_by_email(email)
    log.warning("account %s locked after %d failures", user.id if user else "(unknown address)", failures,
                extra={"type": "security"})
    if user is None:
        return  # nobody to tell; the lock still stands, so the answer is the same as for a real account
    with unit_of_work():
        audit.record(None, "security.account_locked", "user", user.id, None,
                     {"failures": failures, "minutes": ACCOUNT_LOCK // 60, "last_ip": ip})
    notifications.account_locked(user, {"failures": failures, "minutes": ACCOUNT_LOCK // 60, "ip": ip})
