"""Container health checks (Dockerfile HEALTHCHECK, docker-compose.production.yml); exit 0 healthy, 1 not.

    python deploy/healthcheck.py web [/health]   GET it on this container's gunicorn
    python deploy/healthcheck.py worker          an RQ worker of this container has a live heartbeat
    python deploy/healthcheck.py scheduler       an rq-scheduler keeps its key alive in Redis

Deliberately small: the standard library, redis and rq only, never the portal's create_app (a check
runs every 30 s and must cost little). Slim images have no curl, hence urllib.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

TIMEOUT = 5.0  # seconds; /health answers within about 1.5 s whatever a component does
# RQ's worker_ttl (420 s) plus a minute, as portal/services/health.py WORKER_HEARTBEAT_GRACE: an idle
# worker beats about every 405 s, so a worker that stopped beating for longer is hung.
HEARTBEAT_GRACE = timedelta(seconds=420 + 60)
SCHEDULER_KEYS = "rq:scheduler_instance:*"  # rq-scheduler's key, refreshed every interval, gone 10 s after


def check_web(path: str = "/health") -> tuple[bool, str]:
    """200 from gunicorn on this container. /health is 200 while degraded, 503 only without the database."""
    tls = bool(os.environ.get("SSL_CERT_FILE") and os.environ.get("SSL_KEY_FILE"))
    url = f"{'https' if tls else 'http'}://127.0.0.1:{os.environ.get('PORT') or '5000'}{path}"
    # The certificate names the public host, not 127.0.0.1: this loopback probe does not verify it.
    context = ssl._create_unverified_context() if tls else None  # noqa: S323
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT, context=context) as response:  # noqa: S310
            return response.status == 200, f"{url}: {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: {exc.code}"
    except OSError as exc:
        return False, f"{url}: {exc}"


def _redis():
    from redis import Redis

    return Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)


def check_worker(hostname: str | None = None) -> tuple[bool, str]:
    """Some RQ worker registered from this host (the container) has beaten within the grace period."""
    from rq import Worker

    hostname = hostname or socket.gethostname()
    now = datetime.now(UTC)
    for worker in Worker.all(connection=_redis()):
        beat = worker.last_heartbeat
        if worker.hostname == hostname and beat is not None:
            beat = beat if beat.tzinfo else beat.replace(tzinfo=UTC)
            if now - beat <= HEARTBEAT_GRACE:
                return True, f"worker {worker.name} beat at {beat.isoformat(timespec='seconds')}"
    return False, f"no RQ worker of {hostname} with a heartbeat in the last {HEARTBEAT_GRACE.seconds} s"


def check_scheduler() -> tuple[bool, str]:
    """A live rq-scheduler (its key has no `death` field). rq-scheduler records no host, so this says
    "a scheduler is running", which is what matters: one suffices, and the stack runs one."""
    connection = _redis()
    for key in connection.scan_iter(match=SCHEDULER_KEYS, count=1000):
        if not connection.hexists(key, "death"):
            return True, f"scheduler {key.decode()} alive"
    return False, "no live rq-scheduler in Redis"


def main(argv: list[str]) -> int:
    """Run the check `argv[0]` names; print one line; 0 healthy, 1 not (2 on a usage error)."""
    checks = {"web": check_web, "worker": check_worker, "scheduler": check_scheduler}
    if not argv or argv[0] not in checks:
        print(f"usage: healthcheck.py {{{'|'.join(checks)}}} [path]", file=sys.stderr)
        return 2
    try:
        healthy, line = checks[argv[0]](*argv[1:2])
    except Exception as exc:  # noqa: BLE001 - any failure to ask is "unhealthy", with the reason
        healthy, line = False, f"{type(exc).__name__}: {exc}"
    print(("healthy: " if healthy else "unhealthy: ") + line)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
