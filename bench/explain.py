"""EXPLAIN (ANALYZE, BUFFERS) of the SQL the slow pages of issue #11 send, on seeded benchmark databases.

    .venv/bin/python bench/explain.py                                   # portal_bench (as seeded)
    .venv/bin/python bench/explain.py --database-url postgresql://.../scratch
    .venv/bin/python bench/explain.py --requests-sizes 100000,1000000   # side by side, into RESULTS.md

The SQL is not written here: the page's own service functions are called (the request list's
portal.services.requests.queries.list_requests for an admin with the list's filters, each sort, a
search, the last page; the dashboard's sla_reports.dashboard_summary and breach widget; /sla/breaches'
breach_list, compliance_report and statistics for 30 and 365 days; its 30-second poll), every
statement they send is captured from the engine (SQLAlchemy `before_cursor_execute`) with its bound
parameters, and then run again as `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) <statement>` with the same
parameters through the connection, --repeat times (the median is reported; the first, untimed call
of the page warmed the cache). Windows use the seed's `now`, so both sizes look at the same days.

With --requests-sizes, size 1,000,000 is the embedded `portal_bench` and any other size N the embedded
`portal_bench_<N/1000>k`; a database without a seed of that size is seeded with bench/seed.py first.
Every database is migrated to head before it is measured.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import seed as seeding  # noqa: E402 - bench/seed.py: databases, migrations and the data
import sla_check  # noqa: E402 - bench/sla_check.py: machine notes and the results writer

RESULTS = ROOT / "bench" / "RESULTS.md"
ADMIN_ID = 1          # bench/seed.py seeds user 1 as the admin
REDIS_DB = 9          # create_app() needs one; nothing is written to it


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- the pages' queries

def page_calls(admin, now: datetime, search_id: int, agent_id: int = 0, requester=None,
               middle_cursor: str = "") -> list[tuple[str, Callable[[], Any]]]:
    """(page as the issue's table names it, the service calls its route makes) in the table's order."""
    from flask import current_app

    from portal.services import sla_reports
    from portal.services.requests import queries

    per_page = current_app.config["PER_PAGE"]

    def request_list(**args: str) -> Callable[[], Any]:
        filters = queries.parse_filters(args, per_page)   # outside the capture: its category look-up is trivial
        return lambda: queries.list_requests(admin, filters)

    def breaches_page(days: int) -> Callable[[], Any]:
        def call() -> None:
            sla_reports.breach_list(sla_reports.parse_breach_filters({}), 1, per_page, now)
            sla_reports.compliance_report(days, now)
            sla_reports.statistics(days, now)
        return call

    return [
        ("/requests default (all, newest first)", request_list()),
        (f"/requests search rare word ({seeding.RARE_WORD})", request_list(q=seeding.RARE_WORD)),
        ("/requests search #id (the middle id)", request_list(q=f"#{search_id}")),
        ("/requests sort=updated", request_list(sort="updated")),
        ("/requests sort=priority", request_list(sort="priority")),
        ("/requests sort=status", request_list(sort="status")),
        ("/requests sort=oldest", request_list(sort="oldest")),
        ("/requests last page", request_list(last="1")),
        ("/requests next page from the middle (after= a position half-way)", request_list(after=middle_cursor)),
        ("/requests page=20000 (OFFSET, old links and API clients)", request_list(page="20000")),
        ("/requests search common word (printer)", request_list(q="printer")),
        ("/requests status=active sort=oldest", request_list(status="active", sort="oldest")),
        ("/requests status=active sort=priority", request_list(status="active", sort="priority")),
        ("/requests assignee=<an agent> sort=updated", request_list(assignee=str(agent_id), sort="updated")),
        ("/requests category=network priority=critical status=done sort=status",
         request_list(category="network", priority="critical", status="done", sort="status")),
        ("/requests as a requester (own requests, newest)",
         (lambda f: lambda: queries.list_requests(requester, f))(queries.parse_filters({}, per_page))),
        ("/dashboard (admin): summary cards", lambda: sla_reports.dashboard_summary(now)),
        ("/dashboard (admin): breach widget", lambda: sla_reports.breach_list(sla_reports.BreachFilters(), 1, 10,
                                                                               now)),
        ("/sla/breaches?days=30", breaches_page(30)),
        ("/sla/breaches?days=365", breaches_page(365)),
        ("/sla/breaches 30-second poll", lambda: sla_reports.breach_list(sla_reports.parse_breach_filters({}), 1,
                                                                          per_page, now)),
        ("/sla/breaches as an agent (theirs or unassigned) 30-second poll",
         lambda: sla_reports.breach_list(sla_reports.BreachFilters(mine_or_unassigned=agent_id), 1, per_page, now)),
        ("/sla/breaches?priority=high 30-second poll",
         lambda: sla_reports.breach_list(sla_reports.BreachFilters(priority="high"), 1, per_page, now)),
        ("/requests?status=open (control)", request_list(status="open")),
    ]


class Capture:
    """Records every statement (with its parameters) the engine sends while active."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[tuple[str, Any]] = []

    def __enter__(self) -> Capture:
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:
        # Queries only: not the pool's pre-ping (SELECT 1 on check-out), not SET / COMMIT.
        if statement.lstrip().upper().startswith(("SELECT", "WITH")) and statement.strip() != "SELECT 1":
            self.statements.append((statement, parameters))


def describe(sql: str) -> str:
    """A short name for a statement: what it counts, groups or pages."""
    flat = re.sub(r"CASE ([\w.]+) WHEN .*? END", r"rank(\1)", " ".join(sql.split()))
    outer_from = re.search(r'FROM "?(\w+)"?', flat)
    table = outer_from.group(1) if outer_from else "?"
    limit = "LIMIT" in flat
    if flat.startswith("SELECT count(*) AS count_1 FROM (SELECT"):
        inner = re.search(r'FROM \(SELECT .*? FROM "?(\w+)"?', flat)
        return f"count(*) of the matching {inner.group(1) if inner else table} rows"
    group = re.search(r"GROUP BY (.+?)(?: ORDER BY| LIMIT|$)", flat)
    if group:
        return f"group by {group.group(1)[:60]}"
    if "count(*)" in flat and "FILTER" in flat:
        return "count met / decided targets (UNION ALL over sla_metric)"
    if flat.startswith("SELECT count(*)"):
        return f"count(*) from {table}"
    if limit:
        order = re.search(r"ORDER BY (.+?) LIMIT", flat)
        return f"one page ({'ORDER BY ' + order.group(1)[:70] if order else 'LIMIT'})"
    if table == "user" and "WHERE \"user\".id =" in flat:
        return "the signed-in user (reloaded per request)"
    return f"select from {table}"


def walk(node: dict[str, Any]):
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)


def explain_statement(conn, sql: str, params: Any, repeat: int) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) `repeat` times (JSON, median time) and once as text for the record."""
    runs = []
    for _ in range(repeat):
        doc = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params).scalar()
        runs.append(doc[0] if isinstance(doc, list) else doc)
        conn.rollback()
    text = [row[0] for row in conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)]
    conn.rollback()
    plan = runs[-1]["Plan"]
    nodes = list(walk(plan))
    seq = sorted({("Parallel " if n.get("Parallel Aware") else "") + f"Seq Scan on {n['Relation Name']}"
                  for n in nodes if n["Node Type"] == "Seq Scan"})
    disk = [f"{n['Node Type']} {n.get('Sort Method', '')} {n.get('Sort Space Used', '?')} kB" for n in nodes
            if n.get("Sort Space Type") == "Disk"]
    temp_blocks = plan.get("Temp Written Blocks", 0)
    return {
        "ms": statistics.median(r["Execution Time"] for r in runs),
        "planning_ms": statistics.median(r["Planning Time"] for r in runs),
        "rows": plan.get("Actual Rows"),
        "seq_scan_request": any(n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "service_request"
                                for n in nodes),
        "seq_scans": seq,
        "disk_sort": disk,
        "temp_mb": temp_blocks * 8 / 1024,
        "buffers": plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0),
        "text": text,
    }


def measure(database_url: str, repeat: int) -> dict[str, Any]:
    """Every page's statements on one database: list of {page, query, sql, ...explain figures}."""
    from portal import embedded

    redis_url = embedded.ensure_redis(ROOT / "instance") + f"?db={REDIS_DB}"
    meta = seeding.seeded_meta(database_url) or {}
    now = datetime.fromisoformat(meta["now"]) if meta.get("now") else datetime.now(UTC)
    app = seeding.make_app(database_url, redis_url)
    rows: list[dict[str, Any]] = []
    with app.app_context():
        from portal.extensions import db
        from portal.models import ServiceRequest, User

        machine = sla_check.machine()
        admin = db.session.get(User, ADMIN_ID)
        if admin is None or admin.role != "admin":
            sys.exit(f"user {ADMIN_ID} of {seeding.redact(database_url)} is not an admin: is it seeded?")
        from portal.services.requests import queries

        total = db.session.query(ServiceRequest.id).order_by(ServiceRequest.id.desc()).limit(1).scalar() or 1
        search_id = total // 2
        agent_id = db.session.query(User.id).filter(User.role == "agent").order_by(User.id).limit(1).scalar()
        requester = db.session.query(User).filter(User.role == "requester").order_by(User.id).first()
        middle = db.session.get(ServiceRequest, search_id)
        middle_cursor = queries._cursor("newest", [middle.created_at, middle.id]) if middle else ""
        db.session.commit()
        for page, call in page_calls(admin, now, search_id, agent_id, requester, middle_cursor):
            with Capture(db.engine) as capture:
                call()
            db.session.commit()
            log(f"{page}: {len(capture.statements)} statements")
            with db.engine.connect() as conn:
                raw = conn.connection.dbapi_connection
                for sql, params in capture.statements:
                    figures = explain_statement(conn, sql, params, repeat)
                    with raw.cursor() as cur:
                        literal = cur.mogrify(sql, params).decode()
                    rows.append({"page": page, "query": describe(sql), "sql": literal, **figures})
                    log(f"  {figures['ms']:9.1f} ms  rows {figures['rows']:>8}  "
                        f"{'SEQ SCAN service_request' if figures['seq_scan_request'] else 'no seq scan':24}  "
                        f"{'; '.join(figures['disk_sort']) or 'no disk sort':28}  {describe(sql)}")
        load_end = sla_check.activity()
        db.session.remove()
        db.engine.dispose()
    return {"rows": rows, "meta": meta, "now": now.isoformat(), "machine": machine, "load_end": load_end}


# ---------------------------------------------------------------- databases

def database_for_size(size: int) -> tuple[str, str]:
    """The embedded database of a size: portal_bench for 1,000,000, portal_bench_<N/1000>k otherwise."""
    name = seeding.BENCH_DB if size == 1_000_000 else f"{seeding.BENCH_DB}_{size // 1000}k"
    return _embedded(name), f"embedded PostgreSQL, database {name}"


def _embedded(name: str) -> str:
    from portal import embedded

    url = embedded.ensure_postgres(ROOT / "instance", database=name)
    seeding.refuse_app_database(url)
    return url


def ready(database_url: str, size: int | None, seed_value: int) -> None:
    """Seed when the database holds no seed of `size`, then migrate to head."""
    from portal import embedded

    meta = seeding.seeded_meta(database_url)
    if size is not None and (meta is None or meta.get("requests") != size):
        log(f"{seeding.redact(database_url)} holds {meta and meta.get('requests')} requests, not {size:,}: seeding it")
        args = seeding.parse_args(["--requests", str(size), "--seed", str(seed_value)])
        seeding.prepare_and_seed(database_url, args)
    elif meta is None:
        sys.exit(f"{seeding.redact(database_url)} holds no bench seed: run bench/seed.py for it first")
    log(f"migrating {seeding.redact(database_url)} to head")
    seeding.migrate(database_url, embedded.ensure_redis(ROOT / "instance") + f"?db={REDIS_DB}")


# ---------------------------------------------------------------- report

def size_label(size: int) -> str:
    return f"{size // 1_000_000}M" if size % 1_000_000 == 0 else f"{size // 1000}k"


def write_results(path: Path, sizes: list[int], runs: dict[int, dict[str, Any]], command: str) -> None:
    key = ",".join(str(s) for s in sizes)
    begin, end = f"<!-- BEGIN explain sizes={key} -->", f"<!-- END explain sizes={key} -->"
    title = " and ".join(f"{s:,}" for s in sizes)
    first = runs[sizes[0]]
    m = first["machine"]
    lines = [
        begin,
        f"### Query plans at {title} requests — `bench/explain.py` (written by the script)",
        "",
        "The statements the slow pages of issue #11 send (captured from the page's own service calls, "
        "admin actor, default filters unless named), each run as `EXPLAIN (ANALYZE, BUFFERS)` with its bound "
        "parameters; server execution time, median of the repetitions, warm cache. Planning time and the "
        "Python/rendering side of each page are not included.",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}",
        f"- Command: `{command}` (Makefile: `make bench-explain`)",
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM; PostgreSQL {m['server_version']} "
        f"(embedded; shared_buffers {m['shared_buffers']}, work_mem {m['work_mem']}, jit {m['jit']}); "
        f"Python {m['python']}",
    ]
    for size in sizes:
        run = runs[size]
        meta = run["meta"]
        lines.append(f"- {size:,} requests: {run['where']}, seeded for `now` = {meta.get('now')} "
                     f"({'with' if meta.get('extras') else 'without'} comments, audit rows, exemptions and "
                     f"already-breached open requests); other activity at start {run['machine']['load']}; "
                     f"at end {run['load_end']}")
    if len({bool(runs[s]["meta"].get("extras")) for s in sizes}) > 1:
        lines.append("- The databases were seeded differently (see above): only the SQL of the pages is the same; "
                     "row counts of comments, audit rows, exemptions and open breaches differ beyond the size.")
    lines.append(f"- Rare-word search: `{seeding.RARE_WORD}`, in about one title of 2,000 of a bench/seed.py seed "
                 "(none in a seed made before it). Rows of the two sizes are matched by position.")
    labels = [size_label(s) for s in sizes]
    lines += [
        "",
        "| page | statement | " + " | ".join(f"ms at {label}" for label in labels) + " | rows at "
        + labels[-1] + " | buffers at " + labels[-1] + " | Seq Scan on service_request ("
        + " / ".join(labels) + ") | other Seq Scans at " + labels[-1] + " | sort on disk at " + labels[-1] + " |",
        "|---|---|" + "---:|" * len(sizes) + "---:|---:|---|---|---|",
    ]
    by_size = {s: runs[s]["rows"] for s in sizes}
    count = min(len(r) for r in by_size.values())
    page_totals: dict[str, list[float]] = {}
    for i in range(count):
        row = by_size[sizes[-1]][i]
        cells = [by_size[s][i] for s in sizes]
        totals = page_totals.setdefault(row["page"], [0.0] * len(sizes))
        for j, cell in enumerate(cells):
            totals[j] += cell["ms"]
        seq = " / ".join("**yes**" if c["seq_scan_request"] else "no" for c in cells)
        disk = "; ".join(row["disk_sort"]) or "no"
        others = "; ".join(scan for scan in row["seq_scans"] if not scan.endswith(" service_request")) or "no"
        lines.append(f"| {row['page']} | {row['query']} | " + " | ".join(f"{c['ms']:,.1f}" for c in cells)
                     + f" | {row['rows']:,} | {row['buffers']:,} | {seq} | {others} | {disk} |")
    lines += ["", "Per page (sum of its statements):", "",
              "| page | " + " | ".join(f"ms at {label}" for label in labels) + " | growth |",
              "|---|" + "---:|" * len(sizes) + "---:|"]
    for page, totals in page_totals.items():
        growth = f"{totals[-1] / totals[0]:.1f}x" if totals[0] else "-"
        lines.append(f"| {page} | " + " | ".join(f"{t:,.1f}" for t in totals) + f" | {growth} |")
    # The plans of the largest size only, and only of statements over 1 ms (the rest are index look-ups).
    largest = sizes[-1]
    lines += ["", f"<details><summary>Plans at {largest:,} requests (EXPLAIN (ANALYZE, BUFFERS), last repetition; "
              "statements over 1 ms) and their SQL</summary>", "", "```"]
    for row in runs[largest]["rows"]:
        if row["ms"] >= 1.0:
            lines += [f"-- {row['page']}: {row['query']}", f"-- {' '.join(row['sql'].split())}", *row["text"], ""]
    lines += ["```", ""]
    lines += ["</details>", "", end]
    sla_check.replace_section(path, begin, end, "\n".join(lines))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="one seeded database (default: BENCH_DATABASE_URL or the embedded "
                                               f"{seeding.BENCH_DB})")
    parser.add_argument("--requests-sizes", help="comma-separated sizes, e.g. 100000,1000000: one embedded "
                                                 "database each, seeded if missing; writes RESULTS.md")
    parser.add_argument("--repeat", type=int, default=3, help="EXPLAIN ANALYZE runs per statement (median)")
    parser.add_argument("--seed", type=int, default=20261129, help="random seed when a database must be seeded")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-results", action="store_true", help="do not update the results file")
    args = parser.parse_args(argv)
    if args.requests_sizes:
        try:
            args.sizes = sorted({int(s.replace("_", "")) for s in args.requests_sizes.split(",") if s.strip()})
        except ValueError:
            parser.error("--requests-sizes takes whole numbers, e.g. 100000,1000000")
        if args.database_url:
            parser.error("--database-url and --requests-sizes exclude each other")
    else:
        args.sizes = []
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.chdir(ROOT)
    os.environ.setdefault("TZ", "UTC")
    runs: dict[int, dict[str, Any]] = {}
    if args.sizes:
        targets = [(size, *database_for_size(size)) for size in args.sizes]
    else:
        url, where = seeding.bench_database_url(args.database_url)
        meta = seeding.seeded_meta(url) or {}
        targets = [(meta.get("requests"), url, where)]
    for size, url, where in targets:
        ready(url, size if args.sizes else None, args.seed)
        log(f"\n== {where}")
        run = measure(url, args.repeat)
        run["where"] = where
        runs[size or run["meta"].get("requests") or 0] = run
    if not args.no_results:
        command = ".venv/bin/python bench/explain.py" + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "")
        write_results(args.results, sorted(runs), runs, command)
        log(f"\nresults written to {args.results}")


if __name__ == "__main__":
    main()
