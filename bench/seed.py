"""Seed a benchmark database with realistic helpdesk data at scale, through PostgreSQL COPY.

    .venv/bin/python bench/seed.py                                      # 1,000,000 requests into portal_bench
    .venv/bin/python bench/seed.py --requests 100000 \
        --database-url postgresql://postgres:@/portal_bench_100k?host=$PWD/instance/postgres

The target database (--database-url, else BENCH_DATABASE_URL, else the embedded PostgreSQL's
`portal_bench`, created when missing) has its schema dropped, rebuilt by the Alembic migrations and
filled: 216 users, 20 SLA definitions, N requests over two years (volume growing, weekday and
office-hour peaks; skewed category, priority, requester and assignee), one SLA clock per request with
met, breached and at-risk targets, SLA events, and (unless --core-only) comments (a few per request,
one in a thousand with hundreds), audit rows (creation and every status change), exemptions and open
requests that have already breached. The app's own database is refused.

bench/sla_check.py, bench/export.py and bench/backup.py seed through `seed()` with the core tables
only (users, definitions, requests, clocks, events), as before.
"""

from __future__ import annotations

import argparse
import bisect
import io
import itertools
import json
import math
import os
import random
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "portal_bench"
# The staff accounts' password in a bench database (the seed's hashes are placeholders): load.py
# and pages.py sign in with it; set by prepare_staff, in that database only.
BENCH_PASSWORD = "bench-load-password-2026"   # noqa: S105
REFUSED_DATABASES = {"portal", "postgres", "template0", "template1"}
META_PREFIXES = ("bench/seed.py ", "bench/sla_check.py ")  # the COMMENT on sla_metric; the second: older seeds

CATEGORIES = ("hardware", "software", "network", "access", "other")
CATEGORY_WEIGHTS = (25, 35, 15, 15, 10)
PRIORITIES = ("low", "medium", "high", "critical")
# Per category: network and access problems are more often urgent than "other".
PRIORITY_WEIGHTS = {"hardware": (30, 42, 21, 7), "software": (32, 42, 20, 6), "network": (20, 35, 30, 15),
                    "access": (25, 40, 25, 10), "other": (45, 40, 12, 3)}
# (response hours, resolution hours) per priority; the same for every category, 24x7 calendar.
TARGET_HOURS = {"low": (24, 120), "medium": (8, 72), "high": (4, 24), "critical": (1, 4)}
OPEN_STATUSES = ("open", "in_progress", "waiting_on_customer")
OPEN_STATUS_WEIGHTS = (45, 35, 20)
HISTORY_DAYS = 730
GROWTH = 0.6                 # the last day sees 1.6x the volume of the first
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 8, 14, 16, 16, 15, 11, 14, 15, 14, 12, 8, 5, 3, 2, 2, 1, 1)
WEEKEND_WEIGHT = 0.25
RECENT_OPEN_SHARE = 0.7      # among the most recent requests, this share is still open
RESPONDED_SHARE = 0.9        # open requests that already had a first response
AT_RISK_PERCENT = 75
N_ADMINS, N_MANAGERS, N_AGENTS, N_REQUESTERS = 1, 5, 30, 180   # 216 users; user 1 admin, 2-6 managers

SUBJECTS = {
    "hardware": ("Laptop", "Monitor", "Docking station", "Printer", "Keyboard", "Headset", "Phone", "Badge reader"),
    "software": ("Outlook", "Excel", "Teams", "SAP client", "VPN client", "Browser", "PDF editor", "Antivirus"),
    "network": ("Wi-Fi", "VPN", "Office network", "DNS", "Proxy", "Meeting room screen", "Firewall rule"),
    "access": ("Password", "Shared drive", "Mailbox", "CRM account", "Badge", "MFA token", "Git repository"),
    "other": ("Desk move", "New starter", "Leaver", "Purchase", "Question", "Training", "Licence"),
}
PROBLEMS = ("does not start", "is very slow", "keeps crashing", "shows an error", "stopped working after update",
            "needs replacing", "cannot connect", "asks for credentials again", "is missing", "request")
RARE_WORD = "kerberos"       # in one title of about 2,000: bench/explain.py searches for it
COMMENT_BODIES = ("Thanks, looking into it.", "Could you send a screenshot of the error?",
                  "Restarted the service, please try again.", "Still happening this morning.",
                  "Ordered a replacement, should arrive in two days.", "Works now, thank you!",
                  "Escalated to the second line.", "Waiting for the vendor's answer.",
                  "Can you tell me the asset tag on the back?", "Rolled back the update on this machine.")
EXEMPTION_REASONS = ("Waiting for a vendor part", "Customer on leave", "Planned maintenance window",
                     "Change freeze", "Site inaccessible")
LONG_THREAD_SHARE = 0.001    # requests with hundreds of comments (long timelines)
EXEMPTION_SHARE = 0.01
OPEN_BREACHED_SHARE = 0.08   # open requests whose response or resolution target already breached


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that name a seeded data set (the benches that re-use one share them)."""
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--reseed", action="store_true", help="seed again even if the same data is there")


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- database URLs and connections

def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "?"


def redact(url: str) -> str:
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


def dsn(database_url: str) -> str:
    from portal import sqlalchemy_url

    return sqlalchemy_url(database_url).replace("postgresql+psycopg2://", "postgresql://")


def connect(database_url: str, autocommit: bool = False):
    import psycopg2

    conn = psycopg2.connect(dsn(database_url))
    conn.autocommit = autocommit
    return conn


def _server_and_name(url: str) -> tuple[str, str, str]:
    """(host or socket directory, port, database) of a URL, for comparing two URLs."""
    parts = urlsplit(dsn(url))
    query = parse_qs(parts.query)
    host = parts.hostname or (query.get("host") or [""])[0] or "localhost"
    port = str(parts.port or (query.get("port") or ["5432"])[0])
    return os.path.realpath(host) if host.startswith("/") else host, port, database_name(url)


def app_database_url() -> str | None:
    """The database the portal itself uses here: DATABASE_URL (what portal.config reads), else the embedded `portal`."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return configured
    # portal.embedded's server under the app's instance directory; its app database is `portal`.
    socket_dir = Path(os.environ.get("INSTANCE_DIR") or ROOT / "instance") / "postgres"
    return f"postgresql://postgres:@/portal?host={socket_dir}" if socket_dir.exists() else None


def refuse_app_database(database_url: str) -> None:
    """Exit with a clear message when the URL names the portal's own (or a system) database."""
    name = database_name(database_url)
    if name in REFUSED_DATABASES:
        sys.exit(f"refusing to seed database {name!r}: seeding drops its schema. Give a scratch database, e.g. "
                 f"--database-url ...{BENCH_DB}")
    own = app_database_url()
    if own and _server_and_name(own) == _server_and_name(database_url):
        sys.exit(f"refusing to seed {redact(database_url)}: it is the portal's own database "
                 f"(DATABASE_URL / portal.config). Give a scratch database.")


def bench_database_url(database_url: str | None = None, default_name: str = BENCH_DB) -> tuple[str, str]:
    """(URL, description): --database-url, else BENCH_DATABASE_URL, else the embedded server's `default_name`."""
    from portal import embedded

    if database_url:
        where = redact(database_url)
    elif os.environ.get("BENCH_DATABASE_URL"):
        database_url = os.environ["BENCH_DATABASE_URL"]
        where = f"BENCH_DATABASE_URL ({redact(database_url)})"
    else:
        database_url = embedded.ensure_postgres(ROOT / "instance", database=default_name)
        where = f"embedded PostgreSQL, database {default_name}"
    refuse_app_database(database_url)
    return database_url, where


def ensure_database(database_url: str) -> None:
    """Create the database of the URL when missing (through the server's `postgres` database)."""
    import psycopg2

    try:
        connect(database_url).close()
        return
    except psycopg2.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    parts = urlsplit(database_url)
    admin = connect(parts._replace(path="/postgres").geturl(), autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{database_name(database_url)}"')
    finally:
        admin.close()


def empty_database(database_url: str) -> None:
    """Drop every table so the migrations start from nothing (as tests/conftest.py does)."""
    conn = connect(database_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        conn.close()


def make_app(database_url: str, redis_url: str):
    from portal import create_app

    return create_app({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "SECRET_KEY": "bench-only"})


def migrate(database_url: str, redis_url: str) -> None:
    """Run the Alembic migrations to head (flask db upgrade)."""
    app = make_app(database_url, redis_url)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        from portal.extensions import db

        db.session.remove()
        db.engine.dispose()


# ---------------------------------------------------------------- COPY text

def _ts(epoch: float | None) -> str:
    if epoch is None:
        return r"\N"
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _b(value: bool | None) -> str:
    return r"\N" if value is None else ("t" if value else "f")


def _n(value: Any) -> str:
    return r"\N" if value is None else str(value)


def _json(value: dict) -> str:
    return json.dumps(value, separators=(",", ":")).replace("\\", "\\\\")


def _cumulative(weights: list[float]) -> list[float]:
    return list(itertools.accumulate(weights))


class Generator:
    """Deterministic rows for users, requests, clocks, events (and with extras comments, audit, exemptions)."""

    def __init__(self, args: argparse.Namespace, now: datetime):
        self.rng = random.Random(args.seed)
        self.n = args.requests
        self.extras = bool(getattr(args, "extras", False))
        self.now = now.timestamp()
        self.first = self.now - HISTORY_DAYS * 86400
        self.last = self.now - 600
        recent = min(self.n, math.ceil(args.open / RECENT_OPEN_SHARE))
        open_ids = sorted(self.rng.sample(range(self.n - recent + 1, self.n + 1), args.open))
        self.open_ids = set(open_ids)
        # Already-breached open requests come from the later open ids only: bench/sla_check.py makes the
        # earliest running clocks fall due, and those must not carry an earlier breach.
        breached_pool = open_ids[len(open_ids) // 2:]
        share = OPEN_BREACHED_SHARE if self.extras else 0.0
        self.open_breached = set(self.rng.sample(breached_pool, int(len(open_ids) * share)))
        self.ids = {"sla_event": 0, "comment": 0, "audit_log": 0, "sla_exemption": 0}
        self.counts = {"service_request": 0, "sla_metric": 0, "sla_event": 0, "breached_targets": 0,
                       "comment": 0, "audit_log": 0, "sla_exemption": 0}
        self.first_agent = 1 + N_ADMINS + N_MANAGERS
        self.first_requester = self.first_agent + N_AGENTS
        self.managers = range(1 + N_ADMINS, self.first_agent)
        # A few agents carry most of the work, a few requesters file most of the requests (Zipf-like).
        self.agent_cum = _cumulative([1 / (k + 1) ** 0.7 for k in range(N_AGENTS)])
        self.requester_cum = _cumulative([1 / (k + 1) ** 0.9 for k in range(N_REQUESTERS)])
        self.category_cum = _cumulative(CATEGORY_WEIGHTS)
        self.status_cum = _cumulative(OPEN_STATUS_WEIGHTS)
        self.priority_cum = {c: _cumulative(w) for c, w in PRIORITY_WEIGHTS.items()}
        # Creation times: ids stay in creation order; the rate per hour grows over the two years and
        # peaks in office hours on weekdays. created(id) is the inverse of the cumulative rate.
        hours = HISTORY_DAYS * 24
        start = datetime.fromtimestamp(self.first, UTC)
        weekday0, hour0 = start.weekday(), start.hour
        weights = []
        for h in range(hours):
            day = (weekday0 + (hour0 + h) // 24) % 7
            weights.append((1 + GROWTH * h / hours) * HOUR_WEIGHTS[(hour0 + h) % 24]
                           * (WEEKEND_WEIGHT if day >= 5 else 1.0))
        self.hour_cum = _cumulative(weights)
        self.hour_span = (self.last - self.first) / hours

    @staticmethod
    def definition_id(category: str, priority: str) -> int:
        return 1 + CATEGORIES.index(category) * len(PRIORITIES) + PRIORITIES.index(priority)

    def users(self) -> str:
        out = io.StringIO()
        created = _ts(self.first - 86400)
        roles = ["admin"] * N_ADMINS + ["manager"] * N_MANAGERS + ["agent"] * N_AGENTS + ["requester"] * N_REQUESTERS
        for uid, role in enumerate(roles, start=1):
            out.write(f"{uid}\t{role}{uid}@bench.invalid\tBench {role.title()} {uid}\t"
                      f"$argon2id$bench-not-a-real-hash\t{role}\tt\t{created}\t\\N\n")
        return out.getvalue()

    def created_at(self, rid: int) -> float:
        total = self.hour_cum[-1]
        u = (rid - 0.5) / self.n * total
        hour = bisect.bisect_left(self.hour_cum, u)
        below = self.hour_cum[hour - 1] if hour else 0.0
        within = (u - below) / (self.hour_cum[hour] - below)
        return self.first + (hour + within) * self.hour_span

    def chunk(self, start: int, stop: int) -> dict[str, str]:
        """COPY text per table for request ids start..stop-1."""
        self.out = {table: io.StringIO() for table in TABLE_COLUMNS}
        for rid in range(start, stop):
            self._one(rid)
        return {table: buffer.getvalue() for table, buffer in self.out.items()}

    def _next(self, table: str) -> int:
        self.ids[table] += 1
        self.counts[table] += 1
        return self.ids[table]

    def _event(self, rid: int, kind: str, target: str | None, at: float, detail: dict) -> None:
        eid = self._next("sla_event")
        self.out["sla_event"].write(f"{eid}\t{rid}\t{kind}\t{_n(target)}\t{_ts(at)}\t\\N\t{_json(detail)}\n")

    def _audit(self, rid: int, actor: int | None, action: str, at: float, before: dict | None, after: dict) -> None:
        aid = self._next("audit_log")
        self.out["audit_log"].write(f"{aid}\t{_n(actor)}\t{action}\tservice_request\t{rid}\t"
                                    f"{_json(before) if before else chr(92) + 'N'}\t{_json(after)}\t\\N\t\\N\t"
                                    f"{_ts(at)}\n")

    def _one(self, rid: int) -> None:
        rng, now = self.rng, self.now
        created = min(self.created_at(rid), self.last)
        category = CATEGORIES[bisect.bisect_left(self.category_cum, rng.random() * self.category_cum[-1])]
        cum = self.priority_cum[category]
        priority = PRIORITIES[bisect.bisect_left(cum, rng.random() * cum[-1])]
        rh, sh = TARGET_HOURS[priority]
        rwin, swin = rh * 3600.0, sh * 3600.0
        m: dict[str, Any] = dict.fromkeys((
            "response_due_at", "resolution_due_at", "response_warn_at", "resolution_warn_at", "responded_at",
            "resolved_at", "paused_since", "response_sla_met", "resolution_sla_met", "response_at_risk_at",
            "resolution_at_risk_at", "response_breached_at", "resolution_breached_at", "breach_type"))
        m["paused_seconds"] = 0
        closed_at = None
        if rid in self.open_ids:
            status = OPEN_STATUSES[bisect.bisect_left(self.status_cum, rng.random() * self.status_cum[-1])]
            if rid in self.open_breached:
                self._open_breached_clock(m, created, rwin, swin)
                if status == "waiting_on_customer":
                    status = "in_progress"
            else:
                self._open_clock(m, status, created, rwin, swin)
            updated = max(created, m["responded_at"] or created, m["paused_since"] or created,
                          m["response_breached_at"] or created, m["resolution_breached_at"] or created)
        else:
            self._finished_clock(m, created, rwin, swin)
            resolved = m["resolved_at"]
            closed_at = resolved + rng.uniform(86400, 3 * 86400)
            if closed_at > now - 60 or rng.random() < 0.15:
                status, closed_at = "resolved", None
            else:
                status = "closed"
            updated = closed_at or resolved
        response_breached, resolution_breached = m["response_breached_at"], m["resolution_breached_at"]
        is_breached = response_breached is not None or resolution_breached is not None
        if is_breached:
            m["breach_type"] = ("both" if response_breached and resolution_breached
                                else "response" if response_breached else "resolution")
        requester = self.first_requester + bisect.bisect_left(self.requester_cum, rng.random() * self.requester_cum[-1])
        assignee = None
        if status != "open" or rng.random() < 0.3:
            assignee = self.first_agent + bisect.bisect_left(self.agent_cum, rng.random() * self.agent_cum[-1])
        definition = self.definition_id(category, priority)
        subject = rng.choice(SUBJECTS[category])
        title = f"{subject} {rng.choice(PROBLEMS)}"
        if rng.random() < 0.0005:
            title += f" ({RARE_WORD} ticket)"
        description = (f"{subject} on asset HD-{rng.randrange(10000, 99999)} {rng.choice(PROBLEMS)} since "
                       f"{datetime.fromtimestamp(created, UTC):%A}. Request {rid}, raised by the bench seed.")
        self.out["service_request"].write("\t".join((
            str(rid), title, description, category, priority, status, str(requester), _n(assignee), _ts(created),
            _ts(updated), _ts(m["responded_at"]), _ts(m["resolved_at"]), _ts(closed_at))) + "\n")
        self.out["sla_metric"].write("\t".join((
            str(rid), str(rid), str(definition), r"\N", f"{rh}.00", f"{sh}.00", str(AT_RISK_PERCENT),
            "{waiting_on_customer}", _ts(created),
            _ts(m["response_due_at"]), _ts(m["resolution_due_at"]), _ts(m["response_warn_at"]),
            _ts(m["resolution_warn_at"]), _ts(m["responded_at"]), _ts(m["resolved_at"]), str(m["paused_seconds"]),
            _ts(m["paused_since"]), _b(m["response_sla_met"]), _b(m["resolution_sla_met"]),
            _ts(m["response_at_risk_at"]), _ts(m["resolution_at_risk_at"]), _ts(response_breached),
            _ts(resolution_breached), _b(is_breached), _n(m["breach_type"]), status, _ts(created),
            _ts(updated), priority, category, _n(assignee))) + "\n")
        self.counts["service_request"] += 1
        self.counts["sla_metric"] += 1
        self._event(rid, "started", None, created,
                    {"definition_id": definition, "response_hours": float(rh), "resolution_hours": float(sh)})
        for target in ("response", "resolution"):
            breached_at = m[f"{target}_breached_at"]
            if breached_at is not None:
                due = m[f"{target}_due_at"]   # as the check / the clock record it: overdue when marked
                self._event(rid, "breached", target, breached_at,
                            {"due_at": _ts(due), "hours_overdue": round((breached_at - due) / 3600, 2)})
                self.counts["breached_targets"] += 1
        if self.extras:
            self._history(rid, status, requester, assignee, created, updated, m["responded_at"], m["resolved_at"],
                          closed_at, priority, category)

    def _history(self, rid: int, status: str, requester: int, assignee: int | None, created: float,
                 updated: float, responded: float | None, resolved: float | None, closed: float | None,
                 priority: str, category: str) -> None:
        """Comments, audit rows (creation and each status change) and sometimes an exemption."""
        rng = self.rng
        self._audit(rid, requester, "request.created", created, None,
                    {"status": "open", "priority": priority, "category": category, "assignee_id": assignee})
        steps = []
        if status != "open":
            steps.append(("open", "in_progress", responded or created + 60))
        if status == "waiting_on_customer":
            steps.append(("in_progress", "waiting_on_customer", updated))
        if resolved is not None and status in ("resolved", "closed"):
            steps.append(("in_progress", "resolved", resolved))
        if closed is not None:
            steps.append(("resolved", "closed", closed))
        for before, after, at in steps:
            self._audit(rid, assignee, "request.updated", at, {"status": before}, {"status": after})
        if rng.random() < LONG_THREAD_SHARE:
            count = rng.randint(100, 500)
        else:
            count = (0, 1, 1, 2, 2, 3, 3, 3, 4, 5, 6, 8)[rng.randrange(12)]
        span = max(60.0, (closed or resolved or self.last) - created)
        out = self.out["comment"]
        for i in range(count):
            cid = self._next("comment")
            staff = assignee is not None and i % 2 == 1
            author = assignee if staff else requester
            internal = "t" if staff and rng.random() < 0.15 else "f"
            at = created + span * (i + rng.random()) / count
            out.write(f"{cid}\t{rid}\t{author}\t{COMMENT_BODIES[rng.randrange(len(COMMENT_BODIES))]}\t"
                      f"{internal}\t{_ts(at)}\n")
        if rng.random() < EXEMPTION_SHARE:
            xid = self._next("sla_exemption")
            kind = ("response", "resolution", "both")[rng.randrange(3)]
            hours = rng.choice((4, 8, 24, 48, 72))
            granted = created + rng.uniform(0, max(60.0, span / 2))
            revoked = granted + rng.uniform(600, hours * 3600) if rng.random() < 0.1 else None
            manager = self.managers[rng.randrange(len(self.managers))]
            self.out["sla_exemption"].write(
                f"{xid}\t{rid}\t{kind}\t{rng.choice(EXEMPTION_REASONS)}\t{hours}.00\t{manager}\t{_ts(granted)}\t"
                f"{_ts(granted + hours * 3600)}\t{_ts(revoked)}\t{_n(manager if revoked else None)}\n")

    def _finished_clock(self, m: dict[str, Any], created: float, rwin: float, swin: float) -> None:
        """Resolved or closed: both targets met on time or late (a late one was breached once)."""
        rng, limit = self.rng, self.now - 60
        responded = min(created + rwin * rng.expovariate(2.5), limit)        # ~8% late
        resolved = min(max(responded, created + swin * rng.expovariate(2.3)), limit)  # ~10% late
        m["responded_at"], m["resolved_at"] = responded, resolved
        for target, window, done in (("response", rwin, responded), ("resolution", swin, resolved)):
            due, warn = created + window, created + window * AT_RISK_PERCENT / 100
            m[f"{target}_due_at"], m[f"{target}_warn_at"] = due, warn
            check_lag = rng.uniform(1, 60)   # the periodic check runs every minute
            if done > warn + check_lag:
                m[f"{target}_at_risk_at"] = warn + check_lag
            late = done > due
            m[f"{target}_sla_met"] = not late
            if late:   # flagged by the periodic check, or by the clock when the target was met late
                m[f"{target}_breached_at"] = min(due + check_lag, done)

    def _open_breached_clock(self, m: dict[str, Any], created: float, rwin: float, swin: float) -> None:
        """Open and already overdue: the check has marked the target (so a new check finds nothing)."""
        rng, now = self.rng, self.now
        lag = rng.uniform(1, 60)
        m["response_due_at"] = created + rwin
        m["response_warn_at"] = created + rwin * AT_RISK_PERCENT / 100
        m["resolution_due_at"] = due = created + swin
        m["resolution_warn_at"] = warn = created + swin * AT_RISK_PERCENT / 100
        responded = created + rwin * rng.uniform(0.1, 1.5)
        if responded < now - 60 and rng.random() < 0.7:
            m["responded_at"] = responded
            m["response_sla_met"] = responded <= m["response_due_at"]
            if not m["response_sla_met"]:
                m["response_breached_at"] = m["response_due_at"] + min(lag, responded - m["response_due_at"])
        elif m["response_due_at"] + lag < now:
            m["response_breached_at"], m["response_sla_met"] = m["response_due_at"] + lag, False
        if m["response_warn_at"] + lag < now and (m["responded_at"] or now) > m["response_warn_at"] + lag:
            m["response_at_risk_at"] = m["response_warn_at"] + lag
        if due + lag < now:
            m["resolution_breached_at"], m["resolution_sla_met"] = due + lag, False
        if warn + lag < now:
            m["resolution_at_risk_at"] = warn + lag

    def _open_clock(self, m: dict[str, Any], status: str, created: float, rwin: float, swin: float) -> None:
        """Still open: nothing due before `now` (due times in the future, or NULL while paused)."""
        rng, now = self.rng, self.now
        responded = created + rwin * rng.uniform(0.05, 0.95)
        if rng.random() >= RESPONDED_SHARE or responded > now - 30:
            responded = None
        if status == "waiting_on_customer":   # the open pause stops the clock: no resolution due time
            paused_since = rng.uniform(max(created, responded or created, now - 5 * 86400), now - 60)
            m["paused_since"] = paused_since
            m["paused_seconds"] = int(now - paused_since)
            if responded is not None and responded > paused_since:
                responded = None
            if responded is not None:
                m["responded_at"], m["response_sla_met"] = responded, True
                m["response_due_at"] = created + rwin
                m["response_warn_at"] = created + rwin * AT_RISK_PERCENT / 100
            return
        if responded is not None:
            m["responded_at"], m["response_sla_met"] = responded, True
            m["response_due_at"] = response_due = created + rwin
            m["response_warn_at"] = warn = created + rwin * AT_RISK_PERCENT / 100
            if responded > warn + 60:
                m["response_at_risk_at"] = warn + 60
        else:   # running, due in the future (the clock was extended by earlier pauses)
            m["response_due_at"] = response_due = now + rng.uniform(300, 48 * 3600)
            m["response_warn_at"] = warn = response_due - rwin * (100 - AT_RISK_PERCENT) / 100
            if warn <= now:
                m["response_at_risk_at"] = max(warn, created)
        resolution_due = max(now + rng.uniform(3600, 10 * 86400), response_due + swin - rwin)
        m["resolution_due_at"] = resolution_due
        m["resolution_warn_at"] = warn = resolution_due - swin * (100 - AT_RISK_PERCENT) / 100
        if warn <= now:
            m["resolution_at_risk_at"] = max(warn, created)
        m["paused_seconds"] = min(2**31 - 1, max(0, int(resolution_due - created - swin)))


USER_COLUMNS = "id, email, name, password_hash, role, active, created_at, last_login_at"
TABLE_COLUMNS = {
    "service_request": "id, title, description, category, priority, status, requester_id, assignee_id, created_at, "
                       "updated_at, first_response_at, resolved_at, closed_at",
    "sla_metric": "id, request_id, definition_id, calendar_id, response_target_hours, resolution_target_hours, "
                  "at_risk_percent, pause_statuses, started_at, response_due_at, resolution_due_at, "
                  "response_warn_at, resolution_warn_at, responded_at, resolved_at, paused_seconds, paused_since, "
                  "response_sla_met, resolution_sla_met, response_at_risk_at, resolution_at_risk_at, "
                  "response_breached_at, resolution_breached_at, is_breached, breach_type, status, created_at, "
                  "updated_at, priority, category, assignee_id",   # the last three: the request's copies (0023)
    "sla_event": "id, request_id, kind, target, at, actor_id, detail",
    "comment": "id, request_id, author_id, body, internal, created_at",
    "audit_log": "id, actor_id, action, entity_type, entity_id, before, after, ip, correlation_id, at",
    "sla_exemption": "id, request_id, exemption_type, reason, duration_hours, granted_by_id, granted_at, "
                     "expires_at, revoked_at, revoked_by_id",
}


def _copy(cur, table: str, columns: str, payload: str) -> None:
    if payload:
        cur.copy_expert(f'COPY "{table}" ({columns}) FROM STDIN', io.StringIO(payload))


def seed(database_url: str, args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    """COPY the rows in chunks, then VACUUM ANALYZE; returns timings and row counts.

    `args` needs requests, open, seed and chunk; `extras` (default false) adds comments, audit rows,
    exemptions and already-breached open requests.
    """
    from portal.services import request_tally
    from portal.services.sla.clock import REFILL_DUE_SORT

    gen = Generator(args, now)
    started = time.perf_counter()
    conn = connect(database_url)
    try:
        with conn.cursor() as cur:
            # The SLA rollup triggers would log a day per clock copied: they are off for the load and
            # the rollups are counted once at the end (below). So is the trigger that copies each
            # clock's request's priority, category and assignee (0023): the rows carry them.
            cur.execute("ALTER TABLE sla_metric DISABLE TRIGGER USER")
            # The request tally's trigger would add a row per request copied: counted once at the end.
            cur.execute("ALTER TABLE service_request DISABLE TRIGGER request_tally_count")
            _copy(cur, "user", USER_COLUMNS, gen.users())
            created = _ts(gen.first - 86400)
            for category in CATEGORIES:
                for priority in PRIORITIES:
                    rh, sh = TARGET_HOURS[priority]
                    cur.execute(
                        "INSERT INTO sla_definition (id, category, priority, response_time_hours, "
                        "resolution_time_hours, is_active, pause_statuses, at_risk_percent, created_at, updated_at) "
                        "VALUES (%s, %s, %s, %s, %s, true, %s, %s, %s, %s)",
                        (gen.definition_id(category, priority), category, priority, rh, sh,
                         ["waiting_on_customer"], AT_RISK_PERCENT, created, created))
            for start in range(1, args.requests + 1, args.chunk):
                stop = min(args.requests + 1, start + args.chunk)
                for table, payload in gen.chunk(start, stop).items():
                    _copy(cur, table, TABLE_COLUMNS[table], payload)
                if (stop - 1) % (args.chunk * 4) == 0 or stop > args.requests:
                    log(f"  seeded {stop - 1:,} / {args.requests:,} requests "
                        f"({time.perf_counter() - started:.1f} s)")
            for table in ("user", "sla_definition", *TABLE_COLUMNS):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                            f"coalesce((SELECT max(id) FROM \"{table}\"), 1))")
            meta = {"requests": args.requests, "open": args.open, "seed": args.seed, "now": now.isoformat(),
                    "extras": gen.extras}
            cur.execute("COMMENT ON TABLE sla_metric IS %s", (META_PREFIXES[0] + json.dumps(meta),))
            cur.execute("ALTER TABLE sla_metric ENABLE TRIGGER USER")
            cur.execute("ALTER TABLE service_request ENABLE TRIGGER request_tally_count")
            cur.execute(request_tally.RECOUNT)
            cur.execute(REFILL_DUE_SORT)
        conn.commit()
    finally:
        conn.close()
    count_rollups(database_url)
    copied = time.perf_counter() - started
    conn = connect(database_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("VACUUM (ANALYZE)")
    finally:
        conn.close()
    total = time.perf_counter() - started
    return {"copy_s": copied, "vacuum_s": total - copied, "total_s": total, "counts": gen.counts}


def count_rollups(database_url: str) -> None:
    """Fill the SLA report rollups from every clock (their triggers were off for the COPY)."""
    from portal.services import sla_rollup

    conn = connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute(sla_rollup.RECOUNT_ALL)
        conn.commit()
    finally:
        conn.close()


def prepare_staff(cur, user_ids: list[int], password_hash: str) -> int:
    """Give these accounts BENCH_PASSWORD (its hash) and a confirmed address, and remove their API
    tokens of earlier runs (an account holds at most 20 live ones); returns how many tokens went."""
    cur.execute('UPDATE "user" SET password_hash = %s, email_verified_at = coalesce(email_verified_at, now()) '
                "WHERE id = ANY(%s)", (password_hash, sorted(user_ids)))
    cur.execute("DELETE FROM api_token WHERE user_id = ANY(%s)", (sorted(user_ids),))
    return cur.rowcount


def seeded_meta(database_url: str) -> dict[str, Any] | None:
    """The size, seed and `now` of an earlier seed in this database, if any."""
    conn = connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.sla_metric') IS NOT NULL")
            if not cur.fetchone()[0]:
                return None
            cur.execute("SELECT obj_description('sla_metric'::regclass, 'pg_class')")
            comment = cur.fetchone()[0] or ""
    finally:
        conn.close()
    for prefix in META_PREFIXES:
        if comment.startswith(prefix):
            return json.loads(comment[len(prefix):])
    return None


def prepare_and_seed(database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Empty the database, migrate it to head and seed it; returns seed()'s result plus migrate_s."""
    from portal import embedded

    redis_url = embedded.ensure_redis(ROOT / "instance") + "?db=9"   # create_app needs one; nothing is written
    ensure_database(database_url)
    started = time.perf_counter()
    empty_database(database_url)
    migrate(database_url, redis_url)
    migrate_s = time.perf_counter() - started
    log(f"migrated in {migrate_s:.1f} s; seeding {args.requests:,} requests ({args.open:,} open) with COPY")
    result = seed(database_url, args, datetime.now(UTC).replace(microsecond=0))
    return {**result, "migrate_s": migrate_s}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1_000_000, help="service requests to seed")
    parser.add_argument("--open", type=int, default=None, help="of which still open (default: a tenth)")
    parser.add_argument("--database-url", help="target database (default: BENCH_DATABASE_URL or the embedded "
                                               f"{BENCH_DB}); its schema is dropped")
    parser.add_argument("--seed", type=int, default=20261129, help="random seed of the data generator")
    parser.add_argument("--chunk", type=int, default=50_000, help="requests generated per COPY chunk")
    parser.add_argument("--core-only", action="store_true",
                        help="only users, definitions, requests, SLA clocks and events (what sla_check.py seeds)")
    args = parser.parse_args(argv)
    if args.open is None:
        args.open = max(1, args.requests // 10)
    if not 0 < args.open < args.requests:
        parser.error("--open must be between 1 and --requests - 1")
    args.extras = not args.core_only
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    os.environ.setdefault("TZ", "UTC")
    database_url, where = bench_database_url(args.database_url)
    log(f"database: {where}")
    result = prepare_and_seed(database_url, args)
    counts = ", ".join(f"{count:,} {table}" for table, count in result["counts"].items() if count)
    log(f"seeded in {result['total_s']:.1f} s (COPY {result['copy_s']:.1f} s + VACUUM ANALYZE "
        f"{result['vacuum_s']:.1f} s; migrations {result['migrate_s']:.1f} s before that): {counts}")


if __name__ == "__main__":
    main()
