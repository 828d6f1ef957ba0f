"""Benchmark of the periodic SLA breach check, portal.services.sla.check_all_breaches().

Runs against its own database only: the embedded PostgreSQL's `portal_bench` database (default)
or BENCH_DATABASE_URL. The schema of that database is dropped, rebuilt by the Alembic migrations
(as tests/conftest.py does) and seeded with PostgreSQL COPY by bench/seed.py; Redis database 9 of the embedded
Redis is only handed to create_app() and never written.

    .venv/bin/python bench/sla_check.py                               # 1,000,000 / 100,000 / 10,000
    .venv/bin/python bench/sla_check.py --requests 20000 --open 2000 --new-breaches 500   # smoke

Scenarios (one run, app context open, `now` fixed for the whole run):
  a. steady state: nothing new is due; check_all_breaches(now) beside the bare SELECTs of the
     rows its two UPDATEs would touch.
  b. N targets have just fallen due: untimed setup moves N open due times just before `now` and
     clears their breach marks and events; then the bare SELECTs and check_all_breaches(now)
     (which marks N targets, writes N events and returns N entries) are timed.
Results go to stdout and to a section of bench/RESULTS.md (replaced when re-run at the same size).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

# The data and the database helpers live in bench/seed.py; the names below are used here and by export.py/backup.py.
from seed import (  # noqa: E402
    bench_database_url,
    connect,
    empty_database,
    make_app,
    seed,
    seeded_meta,
)
from seed import redact as _redact  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
BENCH_REDIS_DB = 9

# The rows the breach UPDATEs of portal/services/sla/checks.py (_BREACH_SQL) touch, as plain SELECTs.
BARE_BREACH_SQL = {
    "response": "SELECT request_id FROM sla_metric WHERE response_due_at <= :now "
                "AND responded_at IS NULL AND response_breached_at IS NULL",
    "resolution": "SELECT request_id FROM sla_metric WHERE resolution_due_at <= :now "
                  "AND resolved_at IS NULL AND resolution_breached_at IS NULL",
}
BARE_AT_RISK_SQL = {
    "response": "SELECT request_id FROM sla_metric WHERE response_warn_at <= :now AND responded_at IS NULL "
                "AND response_at_risk_at IS NULL AND response_breached_at IS NULL",
    "resolution": "SELECT request_id FROM sla_metric WHERE resolution_warn_at <= :now AND resolved_at IS NULL "
                  "AND resolution_at_risk_at IS NULL AND resolution_breached_at IS NULL",
}
DUE_INDEX = {"response": "ix_sla_metric_response_due_open", "resolution": "ix_sla_metric_resolution_due_open"}

AIM_STEADY_MS = 20.0
AIM_BURST_MS = 1000.0
AIM_RATIO = 3.0


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- arguments and services

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1_000_000, help="service requests to seed")
    parser.add_argument("--open", type=int, default=100_000, help="of which still open (open/in_progress/waiting)")
    parser.add_argument("--new-breaches", type=int, default=10_000, help="targets that fall due in scenario b")
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions of scenario b")
    parser.add_argument("--steady-repeat", type=int, default=None,
                        help="timed repetitions of the steady-state check (default: 10 x --repeat)")
    parser.add_argument("--seed", type=int, default=20261129, help="random seed of the data generator")
    parser.add_argument("--chunk", type=int, default=50_000, help="rows generated per COPY chunk")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the data of an earlier run of the same size and seed instead of re-seeding")
    parser.add_argument("--no-vacuum", action="store_true",
                        help="do not VACUUM sla_metric and sla_event in the untimed setup of each repetition")
    parser.add_argument("--results", type=Path, default=RESULTS, help="Markdown file to update")
    parser.add_argument("--no-results", action="store_true", help="do not update the results file")
    args = parser.parse_args(argv)
    if args.steady_repeat is None:
        args.steady_repeat = 10 * args.repeat
    if not 0 < args.open < args.requests:
        parser.error("--open must be between 1 and --requests - 1")
    if args.repeat < 1 or args.steady_repeat < 1:
        parser.error("--repeat and --steady-repeat must be at least 1")
    if not 0 < args.new_breaches:
        parser.error("--new-breaches must be positive")
    return args


def service_urls() -> tuple[str, str, str]:
    """(database URL, Redis URL, description of the database) — never the portal's own (bench/seed.py refuses it)."""
    from portal import embedded

    database_url, where = bench_database_url()
    redis_url = embedded.ensure_redis(ROOT / "instance") + f"?db={BENCH_REDIS_DB}"
    return database_url, redis_url, where


# ---------------------------------------------------------------- timing

def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def bare(queries: dict[str, str], now: datetime) -> list[int]:
    """The bare SELECTs, one per target, run and fetched the same way as the check's statements."""
    from sqlalchemy import text

    from portal.extensions import db

    found: list[int] = []
    for sql in queries.values():
        found.extend(row[0] for row in db.session.execute(text(sql), {"now": now}))
    db.session.commit()
    return found


def explain(sql: str, now: datetime, analyze: bool = True) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) in a transaction that is rolled back."""
    from sqlalchemy import text

    from portal.extensions import db

    options = "ANALYZE, BUFFERS" if analyze else "COSTS"
    try:
        return [row[0] for row in db.session.execute(text(f"EXPLAIN ({options}) {sql}"), {"now": now})]
    finally:
        db.session.rollback()


def scenario_steady(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    from portal.services import sla

    assert sla.check_all_breaches(now) == [], "the seed must leave nothing due: is the database stale?"
    assert bare(BARE_BREACH_SQL, now) == []
    check_ms, bare_ms = [], []
    for _ in range(args.steady_repeat):
        ms, result = timed(lambda: sla.check_all_breaches(now))
        assert result == []
        check_ms.append(ms)
        ms, rows = timed(lambda: bare(BARE_BREACH_SQL, now))
        assert rows == []
        bare_ms.append(ms)
    # Extra, no aim: the at-risk check in the same state.
    assert sla.check_at_risk(now) == 0
    risk_ms, risk_bare_ms = [], []
    for _ in range(args.steady_repeat):
        ms, flagged = timed(lambda: sla.check_at_risk(now))
        assert flagged == 0
        risk_ms.append(ms)
        ms, rows = timed(lambda: bare(BARE_AT_RISK_SQL, now))
        assert rows == []
        risk_bare_ms.append(ms)
    return {"check": check_ms, "bare": bare_ms, "risk": risk_ms, "risk_bare": risk_bare_ms}


def pick_new_breaches(n: int) -> tuple[list[int], list[int], list[tuple]]:
    """Running open clocks to make due: unanswered ones on response, the others on resolution."""
    from sqlalchemy import text

    from portal.extensions import db

    unanswered = [r[0] for r in db.session.execute(text(
        "SELECT request_id FROM sla_metric WHERE resolved_at IS NULL AND responded_at IS NULL "
        "AND response_due_at IS NOT NULL AND resolution_due_at IS NOT NULL ORDER BY request_id LIMIT :n"),
        {"n": n // 2})]
    answered = [r[0] for r in db.session.execute(text(
        "SELECT request_id FROM sla_metric WHERE resolved_at IS NULL AND responded_at IS NOT NULL "
        "AND resolution_due_at IS NOT NULL ORDER BY request_id LIMIT :n"), {"n": n - len(unanswered)})]
    if len(unanswered) + len(answered) < n:
        sys.exit(f"only {len(unanswered) + len(answered)} running open clocks; lower --new-breaches")
    originals = list(db.session.execute(text(
        "SELECT request_id, response_due_at, resolution_due_at, response_sla_met, resolution_sla_met, updated_at "
        "FROM sla_metric WHERE request_id = ANY(:ids)"), {"ids": unanswered + answered}))
    db.session.commit()
    return unanswered, answered, originals


def reset_new_breaches(response_ids: list[int], resolution_ids: list[int], now: datetime,
                       vacuum_url: str | None) -> None:
    """Untimed setup: the chosen targets fell due 1 s .. 5 min ago and carry no breach yet.

    With vacuum_url, VACUUM removes the row versions the previous repetition left behind, so every
    repetition starts from the same physical state (otherwise dead index entries pile up in the
    just-due range of the partial indexes and each repetition scans more of them).
    """
    from sqlalchemy import text

    from portal.extensions import db

    ids = response_ids + resolution_ids
    db.session.execute(text(
        "UPDATE sla_metric SET "
        "  response_due_at = CASE WHEN request_id = ANY(:resp) "
        "    THEN CAST(:now AS timestamptz) - make_interval(secs => 1 + request_id % 300) "
        "    ELSE response_due_at END, "
        "  resolution_due_at = CASE WHEN request_id = ANY(:reso) "
        "    THEN CAST(:now AS timestamptz) - make_interval(secs => 1 + request_id % 300) "
        "    ELSE resolution_due_at END, "
        "  response_breached_at = NULL, resolution_breached_at = NULL, "
        "  response_sla_met = CASE WHEN request_id = ANY(:resp) THEN NULL ELSE response_sla_met END, "
        "  resolution_sla_met = NULL, is_breached = false, breach_type = NULL "
        "WHERE request_id = ANY(:ids)"), {"resp": response_ids, "reso": resolution_ids, "ids": ids, "now": now})
    db.session.execute(text("DELETE FROM sla_event WHERE kind = 'breached' AND request_id = ANY(:ids)"),
                       {"ids": ids})
    db.session.commit()
    if vacuum_url:
        conn = connect(vacuum_url, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute("VACUUM sla_metric, sla_event")
        finally:
            conn.close()
    # Touch the new row versions once (hint bits), so neither timed query pays for that.
    db.session.execute(text("SELECT count(*) FROM sla_metric WHERE request_id = ANY(:ids)"), {"ids": ids})
    bare(BARE_BREACH_SQL, now)


def restore(originals: list[tuple]) -> None:
    """Put the chosen clocks back as seeded (steady state), so --reuse finds nothing due."""
    from sqlalchemy import text

    from portal.extensions import db

    db.session.rollback()
    ids, response_due, resolution_due, response_met, resolution_met, updated = (
        list(column) for column in zip(*originals, strict=True))
    db.session.execute(text(
        "UPDATE sla_metric m SET response_due_at = o.rd, resolution_due_at = o.sd, response_breached_at = NULL, "
        "resolution_breached_at = NULL, response_sla_met = o.rm, resolution_sla_met = o.sm, is_breached = false, "
        "breach_type = NULL, updated_at = o.u "
        "FROM unnest(CAST(:ids AS integer[]), CAST(:rd AS timestamptz[]), CAST(:sd AS timestamptz[]), "
        "CAST(:rm AS boolean[]), CAST(:sm AS boolean[]), CAST(:u AS timestamptz[])) AS o(id, rd, sd, rm, sm, u) "
        "WHERE m.request_id = o.id"),
        {"ids": ids, "rd": response_due, "sd": resolution_due, "rm": response_met, "sm": resolution_met,
         "u": updated})
    db.session.execute(text("DELETE FROM sla_event WHERE kind = 'breached' AND request_id = ANY(:ids)"),
                       {"ids": ids})
    db.session.commit()


class StatementClock:
    """Times each SQL statement that check_all_breaches sends (SQLAlchemy engine events), for a breakdown."""

    def __init__(self, engine):
        self.engine = engine
        self.items: list[tuple[str, float]] = []
        self._started = 0.0

    def __enter__(self):
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc):
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self._started = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        elapsed = (time.perf_counter() - self._started) * 1000
        flat = " ".join(statement.split())
        target = re.search(r"SET (response|resolution)_breached_at", flat)
        if target:
            label = f"UPDATE + INSERT events, {target.group(1)} (_BREACH_SQL)"
        elif "FROM service_request" in flat:
            count = len(parameters) if hasattr(parameters, "__len__") else "?"
            label = f"SELECT title, priority ... WHERE id IN (...{count} bound parameters)"
        else:
            label = flat[:60]
        self.items.append((label, elapsed))


def scenario_burst(args: argparse.Namespace, now: datetime, database_url: str) -> dict[str, Any]:
    from sqlalchemy import text

    from portal.extensions import db
    from portal.services import sla

    n = args.new_breaches
    response_ids, resolution_ids, originals = pick_new_breaches(n)
    check_ms, bare_ms = [], []
    plans: dict[str, list[str]] = {}
    vacuum_url = None if args.no_vacuum else database_url
    breakdown: list[tuple[str, float]] = []
    try:
        for rep in range(args.repeat):
            reset_new_breaches(response_ids, resolution_ids, now, vacuum_url)
            if rep == 0:
                for target, sql in BARE_BREACH_SQL.items():
                    plans[target] = explain(sql, now)
            ms, rows = timed(lambda: bare(BARE_BREACH_SQL, now))
            assert len(rows) == n, f"bare SQL found {len(rows)} rows, expected {n}"
            bare_ms.append(ms)
            ms, result = timed(lambda: sla.check_all_breaches(now))
            check_ms.append(ms)
            assert len(result) == n, f"check_all_breaches returned {len(result)} entries, expected {n}"
            assert sum(len(r["breaches"]) for r in result) == n
            events = db.session.scalar(text(
                "SELECT count(*) FROM sla_event WHERE kind = 'breached' AND at = :now"), {"now": now})
            db.session.commit()
            assert events == n, f"{events} breach events written, expected {n}"
            log(f"  rep {rep + 1}: check_all_breaches {ms:.1f} ms, bare SQL {bare_ms[-1]:.1f} ms")
        # One more, not counted above: where the time of one check goes, statement by statement.
        reset_new_breaches(response_ids, resolution_ids, now, vacuum_url)
        with StatementClock(db.engine) as clock:
            ms, result = timed(lambda: sla.check_all_breaches(now))
        assert len(result) == n
        breakdown = clock.items + [("rest: Python (rows, dicts, sort), COMMIT, pool check-out",
                                    ms - sum(t for _, t in clock.items))]
        breakdown.append(("total of this extra call", ms))
        for label, t in breakdown:
            log(f"    {t:8.1f} ms  {label}")
    finally:
        restore(originals)
    assert sla.check_all_breaches(now) == [], "restore did not bring back the steady state"
    return {"check": check_ms, "bare": bare_ms, "plans": plans, "breakdown": breakdown,
            "split": {"response": len(response_ids), "resolution": len(resolution_ids)}}


# ---------------------------------------------------------------- reporting

def machine() -> dict[str, str]:
    from sqlalchemy import text

    from portal.extensions import db

    mem_kib = 0
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    settings = {name: db.session.scalar(text(f"SHOW {name}"))
                for name in ("server_version", "shared_buffers", "work_mem", "jit", "synchronous_commit")}
    db.session.commit()
    return {"load": activity(),"nproc": str(os.cpu_count()), "memory": f"{mem_kib / 1024 / 1024:.1f} GiB", "cpu": cpu,
            "python": platform.python_version(), **settings}


def activity() -> str:
    """Load average and what else the database server is busy with (other sessions share the CPUs)."""
    from sqlalchemy import text

    from portal.extensions import db

    busy = db.session.execute(text(
        "SELECT coalesce(datname, '?'), count(*) FROM pg_stat_activity WHERE state = 'active' "
        "AND pid <> pg_backend_pid() AND backend_type = 'client backend' GROUP BY 1 ORDER BY 1")).all()
    db.session.commit()
    one, five, _ = os.getloadavg()
    others = ", ".join(f"{name}: {count}" for name, count in busy) or "none"
    return f"load average {one:.2f} (1 min) / {five:.2f} (5 min); other active sessions on the server: {others}"


def plan_summary(plan: list[str], target: str) -> str:
    text_plan = "\n".join(plan)
    index = DUE_INDEX[target]
    scans = re.findall(r"(Index Scan|Index Only Scan|Bitmap Index Scan|Seq Scan)(?: using| on)? (\S+)", text_plan)
    used = any(name == index for _, name in scans)
    execution = re.search(r"Execution Time: ([\d.]+) ms", text_plan)
    how = ", ".join(f"{kind} {name}" for kind, name in scans) or "?"
    return (f"{target}: partial index {index} {'USED' if used else 'NOT used'} ({how}); "
            f"execution {execution.group(1) if execution else '?'} ms")


def write_results(path: Path, args: argparse.Namespace, info: dict[str, Any]) -> None:
    key = f"requests={args.requests} open={args.open} new={args.new_breaches}"
    begin, end = f"<!-- BEGIN sla_check {key} -->", f"<!-- END sla_check {key} -->"
    rows = info["rows"]
    lines = [
        begin,
        f"### {args.requests:,} requests, {args.open:,} open, {args.new_breaches:,} new breaches",
        "",
        f"- Date: {info['date']}",
        f"- Machine: {info['machine']['nproc']} CPUs ({info['machine']['cpu']}), {info['machine']['memory']} RAM; "
        f"PostgreSQL {info['machine']['server_version']} ({info['where']}; shared_buffers "
        f"{info['machine']['shared_buffers']}, work_mem {info['machine']['work_mem']}, jit "
        f"{info['machine']['jit']}, synchronous_commit {info['machine']['synchronous_commit']}); "
        f"Python {info['machine']['python']}",
        f"- Other activity: at start {info['machine']['load']}; at end {info['load_end']}",
        f"- Command: `{info['command']}`",
        f"- Seed: {info['seed_text']}",
        f"- Benchmark `now`: {info['now']}; steady state timed {args.steady_repeat}x, "
        f"new breaches {args.repeat}x (after one untimed warm-up call); untimed setup of each new-breach "
        f"repetition {'without' if args.no_vacuum else 'with'} VACUUM of sla_metric and sla_event",
        "",
        "| Scenario | check median ms | check p95 ms | bare SQL median ms | ratio | Aim | Met |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row['name']} | {row['check_median']:.2f} | {row['check_p95']:.2f} | "
                     f"{row['bare_median']:.2f} | {row['ratio']:.1f}x | {row['aim']} | {row['met']} |")
    lines += ["", f"Where one check of {args.new_breaches:,} new breaches spends its time (an extra call, "
              "statements timed with SQLAlchemy cursor events):", ""]
    lines += [f"- {t:.1f} ms: {label}" for label, t in info["breakdown"]]
    lines += ["", "EXPLAIN (ANALYZE, BUFFERS) of the bare queries:", ""]
    lines += [f"- steady state, {s}" for s in info["steady_plans"]]
    lines += [f"- {args.new_breaches:,} just due, {s}" for s in info["burst_plans"]]
    lines += ["", "<details><summary>Plans</summary>", "", "```"]
    for title, plan in info["plan_texts"]:
        lines += [f"-- {title}", *plan, ""]
    lines += ["```", "", "</details>", ""]
    if info["notes"]:
        lines += ["Notes (written by the script):", ""] + [f"- {note}" for note in info["notes"]] + [""]
    lines.append(end)
    replace_section(path, begin, end, "\n".join(lines))


def replace_section(path: Path, begin: str, end: str, section: str) -> None:
    """Put `section` (which starts with `begin` and ends with `end`) in RESULTS.md, replacing its last run."""
    content = path.read_text() if path.exists() else "# Benchmark results\n\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(content):
        content = pattern.sub(lambda _: section, content)
    else:
        content = content.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(content)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    os.environ.setdefault("TZ", "UTC")
    database_url, redis_url, where = service_urls()
    log(f"database: {where}; redis: db {BENCH_REDIS_DB} of the embedded server (not written)")

    meta = seeded_meta(database_url) if args.reuse else None
    wanted = {"requests": args.requests, "open": args.open, "seed": args.seed}
    if meta and {k: meta.get(k) for k in wanted} == wanted:
        now = datetime.fromisoformat(meta["now"])
        seed_text = f"reused the data seeded for `now` = {now.isoformat()} (--reuse); not re-seeded in this run"
        log(f"reusing the seeded data ({now.isoformat()})")
        seeded = None
    else:
        now = datetime.now(UTC).replace(microsecond=0)
        log("emptying the schema and running the migrations")
        started = time.perf_counter()
        empty_database(database_url)
        app = make_app(database_url, redis_url)
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            from portal.extensions import db

            db.session.remove()
            db.engine.dispose()
        migrate_s = time.perf_counter() - started
        log(f"migrated in {migrate_s:.1f} s; seeding {args.requests:,} requests ({args.open:,} open) with COPY")
        seeded = seed(database_url, args, now)
        c = seeded["counts"]
        seed_text = (f"{seeded['total_s']:.1f} s (COPY {seeded['copy_s']:.1f} s + VACUUM ANALYZE "
                     f"{seeded['vacuum_s']:.1f} s; migrations {migrate_s:.1f} s before that, not counted) for "
                     f"{c['service_request']:,} service_request, {c['sla_metric']:,} sla_metric and "
                     f"{c['sla_event']:,} sla_event rows ('started' per request, plus one 'breached' per already "
                     f"breached target: {c['breached_targets']:,})")
        log(f"seeded: {seed_text}")

    app = make_app(database_url, redis_url)
    with app.app_context():
        from portal.extensions import db
        from portal.services import sla

        info_machine = machine()
        log("steady state: nothing due")
        steady = scenario_steady(args, now)
        steady_plans = {t: explain(sql, now) for t, sql in BARE_BREACH_SQL.items()}
        update_plans = {t: explain(sla._BREACH_SQL.format(t=t, other=sla._OTHER[t], done=sla._DONE_COLUMN[t]), now)
                        for t in BARE_BREACH_SQL}
        for target, plan in steady_plans.items():
            log("  " + plan_summary(plan, target))
        log(f"{args.new_breaches:,} targets just fell due")
        burst = scenario_burst(args, now, database_url)
        load_end = activity()
        log(f"activity: at start {info_machine['load']}; at end {load_end}")
        db.session.remove()

    rows = []
    for name, data, aim_ms, aim in (
        ("steady state (nothing due)", steady, AIM_STEADY_MS, f"< {AIM_STEADY_MS:.0f} ms, <= {AIM_RATIO:.0f}x bare"),
        (f"{args.new_breaches:,} new breaches ({burst['split']['response']:,} response, "
         f"{burst['split']['resolution']:,} resolution)", burst, AIM_BURST_MS,
         f"< {AIM_BURST_MS / 1000:.0f} s, <= {AIM_RATIO:.0f}x bare"),
    ):
        check_median, bare_median = statistics.median(data["check"]), statistics.median(data["bare"])
        ratio = check_median / bare_median
        misses = []
        if check_median >= aim_ms:
            misses.append(f"median {check_median:.1f} ms over {aim_ms:.0f} ms")
        if ratio > AIM_RATIO:
            misses.append(f"{ratio:.1f}x bare")
        rows.append({"name": name, "check_median": check_median, "check_p95": p95(data["check"]),
                     "bare_median": bare_median, "ratio": ratio, "aim": aim,
                     "met": "yes" if not misses else "**no** (" + "; ".join(misses) + ")"})
    risk_median, risk_bare = statistics.median(steady["risk"]), statistics.median(steady["risk_bare"])
    rows.append({"name": "extra: check_at_risk, steady state", "check_median": risk_median,
                 "check_p95": p95(steady["risk"]), "bare_median": risk_bare, "ratio": risk_median / risk_bare,
                 "aim": "none (for reference)", "met": "-"})

    log("")
    log(f"{'scenario':58} {'median':>9} {'p95':>9} {'bare':>9} {'ratio':>6}  met")
    for row in rows:
        log(f"{row['name']:58} {row['check_median']:9.2f} {row['check_p95']:9.2f} {row['bare_median']:9.2f} "
            f"{row['ratio']:5.1f}x  {row['met']}")

    notes = []
    for target, plan in steady_plans.items():
        if DUE_INDEX[target] not in "\n".join(plan):
            notes.append(f"The steady-state {target} query does not use {DUE_INDEX[target]}.")
    if not args.no_results:
        command = ".venv/bin/python bench/sla_check.py" + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "")
        if os.environ.get("BENCH_DATABASE_URL"):
            command = f"BENCH_DATABASE_URL={_redact(os.environ['BENCH_DATABASE_URL'])} {command}"
        plan_texts = [(f"steady state, bare {t}", p) for t, p in steady_plans.items()]
        plan_texts += [(f"steady state, check_all_breaches UPDATE for {t} (rolled back)", p)
                       for t, p in update_plans.items()]
        plan_texts += [(f"{args.new_breaches:,} just due, bare {t}", p) for t, p in burst["plans"].items()]
        write_results(args.results, args, {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": info_machine, "where": where,
            "command": command, "seed_text": seed_text, "now": now.isoformat(), "rows": rows,
            "steady_plans": [plan_summary(p, t) for t, p in steady_plans.items()],
            "burst_plans": [plan_summary(p, t) for t, p in burst["plans"].items()],
            "plan_texts": plan_texts, "notes": notes, "load_end": load_end, "breakdown": burst["breakdown"],
        })
        log(f"\nresults written to {args.results}")


if __name__ == "__main__":
    main()
