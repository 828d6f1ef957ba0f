"""Where one page's time goes, in one process: Python CPU, SQL statements and their time, per page of the load mix.

    .venv/bin/python bench/pages.py                          # every page, 20 calls each, on the embedded portal_bench
    .venv/bin/python bench/pages.py --only dashboard --calls 50
    .venv/bin/python bench/pages.py --only "request page" --cprofile 25   # plus cProfile's top 25 (cumulative)
    .venv/bin/python bench/pages.py --statements "sla/breaches"           # plus each statement of one call

The load test (bench/load.py) measures the portal from outside, under gunicorn; this looks inside one
page at a time. It builds the portal as production does (APP_ENV=production, a random SECRET_KEY,
no two-factor requirement, as load.py runs it) against a bench/seed.py database (--database-url,
else BENCH_DATABASE_URL, else the embedded `portal_bench`; the portal's own database is refused),
signs in through the /login form as the admin, a manager and an agent (given load.py's password, in
that database only), and calls each page of load.py's mix through Flask's test client: --calls
times after one untimed call. Per page it prints the medians of the process's CPU time (Python:
the portal, SQLAlchemy, Jinja2, psycopg2's client side), the wall time, the number of SQL
statements (SQLAlchemy cursor events; COMMIT/ROLLBACK are not statements) and their summed wall
time (PostgreSQL's work plus the round trips). With --revalidate the polls send their previous
answer's ETag, as a browser does (an unchanged poll is then a 304).
"""

from __future__ import annotations

import argparse
import cProfile
import html
import io
import os
import pstats
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import seed as seeding  # noqa: E402 - bench/seed.py: databases, seeds, refusing the app's database

PASSWORD = seeding.BENCH_PASSWORD
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
VERSION = re.compile(r'name="version" value="(\d+)"')
OPEN = ("open", "in_progress", "waiting_on_customer")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a bench/seed.py database (default: BENCH_DATABASE_URL or the "
                                               f"embedded {seeding.BENCH_DB})")
    parser.add_argument("--redis-url", help="Redis for the portal (default: database 13 of the embedded Redis)")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per page (after one untimed)")
    parser.add_argument("--only", help="pages whose name contains this text")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N",
                        help="print cProfile's top N functions (cumulative) per page")
    parser.add_argument("--cprofile-filter", metavar="REGEX",
                        help="only functions whose file:line(name) matches, e.g. 'portal/|templates/'")
    parser.add_argument("--revalidate", action="store_true",
                        help="polls send the ETag of their previous answer (If-None-Match), as a browser does")
    parser.add_argument("--statements", metavar="TEXT",
                        help="print the statements of one call of the pages whose name contains TEXT")
    return parser.parse_args(argv)


def build_app(database_url: str, redis_url: str, workdir: Path):
    os.environ.update({
        "APP_ENV": "production", "SECRET_KEY": secrets.token_hex(32), "DATABASE_URL": database_url,
        "REDIS_URL": redis_url, "INSTANCE_DIR": str(workdir / "instance"),
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus"), "LOG_DIR": str(workdir / "logs"),
        "REQUIRE_2FA_FOR": "", "TZ": "UTC", "TOKEN_MINT_RATE_LIMIT": "10000 per hour",
    })
    for sub in ("instance", "prometheus", "logs"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    from portal import create_app

    return create_app()


def accounts(app) -> dict[str, dict[str, Any]]:
    """The first active admin, manager and agent, given the bench password; ids to visit."""
    from sqlalchemy import text

    from portal.extensions import db
    from portal.services import users

    with app.app_context():
        found = {}
        for role in ("admin", "manager", "agent"):
            row = db.session.execute(text('SELECT id, email FROM "user" WHERE active AND role = :r '
                                          "ORDER BY id LIMIT 1"), {"r": role}).one()
            found[role] = {"id": row.id, "email": row.email}
        with db.session.connection().connection.cursor() as cur:
            seeding.prepare_staff(cur, [a["id"] for a in found.values()], users.hash_password(PASSWORD))
        open_ids = [r[0] for r in db.session.execute(text(
            "SELECT id FROM service_request WHERE status = ANY(:s) ORDER BY id DESC LIMIT 500"), {"s": list(OPEN)})]
        max_id = db.session.execute(text("SELECT max(id) FROM service_request")).scalar_one()
        category = db.session.execute(text("SELECT code FROM category WHERE active "
                                           "ORDER BY sort_order LIMIT 1")).scalar()
        db.session.commit()
        db.session.remove()
    return {"accounts": found, "open_ids": open_ids, "max_id": max_id, "category": category or "other"}


def sign_in(app, email: str):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = html.unescape(CSRF.search(page).group(1))
    response = client.post("/login", data={"csrf_token": token, "email": email, "password": PASSWORD})
    if response.status_code not in (302, 303):
        sys.exit(f"signing in as {email} answered {response.status_code}")
    minted = client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    if minted.status_code != 201:
        sys.exit(f"no API token for {email}: {minted.status_code} {minted.get_data(as_text=True)[:200]}")
    client.api_token = minted.get_json()["token"]
    return client


def pages(info: dict[str, Any]) -> list[tuple[str, str, Any, str | None]]:
    """(name, role, URL or a function of the call number giving one, HX-Target or None)."""
    open_ids, max_id = info["open_ids"], info["max_id"]
    listed = [
        ("list: default (staff: open work)", "agent", "/requests", None),
        ("list: all, newest", "agent", "/requests?status=all", None),
        ("list: HTMX filter, priority=high, sort=status", "agent", "/requests?priority=high&sort=status",
         "request-table"),
        ("list: category + priority, sort=oldest", "agent",
         f"/requests?category={info['category']}&priority=medium&sort=oldest", None),
        ("list: search kerberos", "agent", "/requests?q=kerberos", None),
        ("list: search #id", "agent", f"/requests?q=%23{open_ids[3]}", None),
        ("request page (open)", "agent", lambda i: f"/requests/{open_ids[i % len(open_ids)]}", None),
        ("request page (any)", "agent", lambda i: f"/requests/{(i * 7919) % max_id + 1}", None),
        ("request SLA targets (poll)", "agent", lambda i: f"/requests/{open_ids[i % len(open_ids)]}/sla",
         "sla-targets"),
        ("dashboard (page)", "admin", "/dashboard", None),
        ("dashboard summary (poll)", "admin", "/dashboard/summary", "summary-cards"),
        ("dashboard breaches (poll)", "admin", "/dashboard/breaches", "breach-widget"),
        ("sla/breaches (page)", "manager", "/sla/breaches", None),
        ("sla/breaches (poll)", "manager", "/sla/breaches", "breach-table"),
        ("sla/breaches?days=365 (page)", "manager", "/sla/breaches?days=365", None),
        ("create: form", "agent", "/requests/new", None),
        ("api: list", "agent", "/api/v1/service-requests?status=open&sort=priority", None),
        ("api: one request", "agent", lambda i: f"/api/v1/service-requests/{open_ids[i % len(open_ids)]}", None),
        ("api: sla-statistics 30 days", "manager", "/api/v1/analytics/sla-statistics?days=30", None),
        ("api: admin summary", "admin", "/api/dashboard/admin/summary", None),
        ("notifications bell (poll)", "agent", "/notifications/bell", "bell"),
    ]
    return listed


def run(args: argparse.Namespace) -> None:
    from sqlalchemy import event

    from portal.extensions import db

    database_url, where = seeding.bench_database_url(args.database_url)
    if args.redis_url:
        redis_url = args.redis_url
    else:
        from portal import embedded

        redis_url = embedded.ensure_redis(ROOT / "instance") + "?db=13"
    workdir = Path(tempfile.mkdtemp(prefix="portal-pages-"))
    app = build_app(database_url, redis_url, workdir)
    info = accounts(app)
    clients = {role: sign_in(app, account["email"]) for role, account in info["accounts"].items()}
    print(f"database: {where}; {info['max_id']:,} requests; {args.calls} calls a page after one untimed")

    statements: list[tuple[str, float]] = []
    started: list[float] = []
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        started.append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, time.perf_counter() - started.pop()))

    rows = []
    for name, role, url, target in pages(info):
        if args.only and args.only not in name:
            continue
        client = clients[role]
        headers = {"HX-Request": "true", "HX-Target": target} if target else {}
        if name.startswith("api:"):
            headers = {"Accept": "application/json", "Authorization": f"Bearer {client.api_token}"}
        profiler = cProfile.Profile() if args.cprofile else None
        cpu, wall, counts, sql = [], [], [], []
        etag = None
        for i in range(args.calls + 1):
            address = url(i) if callable(url) else url
            if args.revalidate and target and etag:
                headers["If-None-Match"] = etag
            statements.clear()
            c0, w0 = time.process_time(), time.perf_counter()
            if profiler and i:
                profiler.enable()
            response = client.get(address, headers=headers)
            if profiler and i:
                profiler.disable()
            c1, w1 = time.process_time(), time.perf_counter()
            if response.status_code not in (200, 304):
                sys.exit(f"{name}: {address} answered {response.status_code}")
            etag = response.headers.get("ETag") or etag
            if i == 0:
                if args.statements and args.statements in name:
                    print(f"\n## statements of {name} ({address})")
                    for text, seconds in statements:
                        print(f"  {seconds * 1000:7.2f} ms  {' '.join(text.split())[:220]}")
                continue
            cpu.append((c1 - c0) * 1000)
            wall.append((w1 - w0) * 1000)
            counts.append(len(statements))
            sql.append(sum(s for _, s in statements) * 1000)
        rows.append((name, statistics.median(counts), statistics.median(cpu), statistics.median(sql),
                     statistics.median(wall), response.status_code, len(response.get_data())))
        if profiler:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
            stats.print_stats(args.cprofile_filter or "", args.cprofile)
            print(f"\n## cProfile of {name}, {args.calls} calls\n{out.getvalue()}")
    width = max(len(r[0]) for r in rows)
    print(f"\n{'page':<{width}}  stmts  cpu ms  sql ms  wall ms  last  bytes")
    for name, count, c, s, w, status, size in rows:
        print(f"{name:<{width}}  {count:5.0f}  {c:6.1f}  {s:6.1f}  {w:7.1f}  {status:4}  {size:,}")


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
