"""Benchmark of the CSV export: the real job in a real RQ worker beside PostgreSQL's own COPY.

Uses the database of bench/sla_check.py (the embedded PostgreSQL's `portal_bench`, or
BENCH_DATABASE_URL) and bench/seed.py's seeding: 1,000,000 requests with SLA clocks, seeded with COPY unless the
same size and seed is already there (`--reuse`, the default here). Migrations are run to head
first. Redis database 10 of the embedded Redis carries the export jobs and is emptied at the end.

    .venv/bin/python bench/export.py                       # 1,000,000 requests (re-uses a seeded database)
    .venv/bin/python bench/export.py --requests 20000 --open 2000 --repeat 1   # smoke

Per repetition, untimed setup then timed:
  a. PostgreSQL's own COPY: `psql -c "COPY (<the export's SELECT>) TO STDOUT WITH (FORMAT csv, HEADER)"`
     into a file (the same SELECT text the job runs: the list's filters, joins, formula escaping).
  b. The export as users get it: an `export` row and its outbox job written by
     portal.services.exports.request_export, then `flask jobs worker --burst --queues exports`;
     timed from the job's own started_at/finished_at (count + COPY + file), and the worker's
     wall time; gzip off (EXPORT_GZIP_OVER_BYTES huge) for the like-for-like figure, and once more
     with the default threshold (the file is gzipped).
Peak memory: the largest VmHWM of the worker and of the work-horse it forks, sampled while it runs.
Also times the trend job (a full fill of the empty table, then the hourly recount) and EXPLAINs it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import seed as seeding  # noqa: E402 - bench/seed.py: the data generator, COPY seeding and database helpers
import sla_check  # noqa: E402 - bench/sla_check.py: machine notes and the results writer

RESULTS = ROOT / "bench" / "RESULTS.md"
REDIS_DB = 10
MANAGER_ID = 2  # sla_check seeds user 1 as admin, 2-3 as managers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    seeding.add_data_arguments(parser)
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions of a. and b.")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-results", action="store_true")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def _process_tree(pid: int) -> list[int]:
    found = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                for child in fh.read().split():
                    found += _process_tree(int(child))
    except OSError:
        pass
    return found


def run_watched(command: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run `command`; returns (result, wall seconds, peak RSS in MB of it and every process it forked).

    The peak is each process's VmHWM (the kernel's high-water mark of its resident memory), sampled
    every 20 ms while it runs: the worker, and the work-horse it forks for each job.
    """
    peak_kib = 0
    started = time.perf_counter()
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        import threading

        output: dict[str, str] = {}
        reader = threading.Thread(target=lambda: output.update(zip(("out", "err"), proc.communicate(), strict=True)))
        reader.start()
        while proc.poll() is None:
            for pid in _process_tree(proc.pid):
                try:
                    with open(f"/proc/{pid}/status") as fh:
                        for line in fh:
                            if line.startswith("VmHWM:"):
                                peak_kib = max(peak_kib, int(line.split()[1]))
                except OSError:
                    pass
            time.sleep(0.02)
        reader.join()
    wall = time.perf_counter() - started
    result = subprocess.CompletedProcess(command, proc.returncode, output.get("out", ""), output.get("err", ""))
    return result, wall, peak_kib / 1024


def prepare(args: argparse.Namespace) -> tuple[str, str, str, str]:
    """Seed (or re-use) the bench database and migrate it to head; returns (db url, redis url, where, seed text)."""
    from portal import embedded

    database_url, _, where = sla_check.service_urls()
    redis_url = embedded.ensure_redis(ROOT / "instance") + f"?db={REDIS_DB}"
    meta = seeding.seeded_meta(database_url)
    wanted = {"requests": args.requests, "open": args.open, "seed": args.seed}
    if meta and {k: meta.get(k) for k in wanted} == wanted and not args.reseed:
        seed_text = f"re-used the data seeded for `now` = {meta['now']}"
        log(seed_text)
    else:
        log("emptying the schema, migrating and seeding with bench/seed.py's generator (core tables)")
        seeding.empty_database(database_url)
        app = sla_check.make_app(database_url, redis_url)
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            from portal.extensions import db

            db.engine.dispose()
        seed_args = argparse.Namespace(requests=args.requests, open=args.open, seed=args.seed, chunk=args.chunk)
        seeded = seeding.seed(database_url, seed_args, datetime.now(UTC).replace(microsecond=0))
        seed_text = f"seeded in this run: {seeded['total_s']:.0f} s (COPY + VACUUM ANALYZE)"
        log(seed_text)
    app = sla_check.make_app(database_url, redis_url)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()  # a database seeded before 0005_exports gets the export tables and indexes
        from portal.extensions import db

        db.engine.dispose()
    return database_url, redis_url, where, seed_text


def export_sql(app) -> str:
    from portal.extensions import db
    from portal.models import User
    from portal.services.exports import csv_select, to_sql
    from portal.services.requests.queries import parse_filters

    with app.app_context():
        owner = db.session.get(User, MANAGER_ID)
        raw = db.engine.raw_connection()
        try:
            sql = to_sql(csv_select(owner, parse_filters({})), raw.cursor())
        finally:
            raw.close()
    return sql


def time_psql_copy(database_url: str, sql: str, out: Path) -> tuple[float, int]:
    command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", seeding.dsn(database_url), "-c",
               f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')"]
    with open(out, "wb") as fh:
        started = time.perf_counter()
        subprocess.run(command, stdout=fh, check=True)
        elapsed = time.perf_counter() - started
    return elapsed, out.stat().st_size


def run_export(app, database_url: str, redis_url: str, export_dir: Path, gzip_over: int) -> dict[str, Any]:
    from portal.extensions import db
    from portal.models import Export, User
    from portal.services import exports

    with app.app_context():
        owner = db.session.get(User, MANAGER_ID)
        export_id = exports.request_export(owner, "csv", {}).id
        db.session.remove()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "SECRET_KEY": "bench-only",
           "EXPORT_DIR": str(export_dir), "EXPORT_GZIP_OVER_BYTES": str(gzip_over), "TZ": "UTC"}
    result, wall, peak_mb = run_watched([sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "worker", "--burst",
                                         "--queues", "exports"], env)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    with app.app_context():
        export = db.session.get(Export, export_id)
        if export.status != "done":
            raise SystemExit(f"export {export_id} ended {export.status}: {export.error}\n{result.stderr[-3000:]}")
        info = {"id": export_id, "rows": export.rows_done, "job_s": (export.finished_at - export.started_at)
                .total_seconds(), "wall_s": wall, "size": export.size_bytes, "gzipped": export.gzipped,
                "peak_mb": peak_mb}
        (export_dir / export.file_path).unlink()
        db.session.execute(Export.__table__.delete().where(Export.id == export_id))
        db.session.commit()
    return info


def trend_timings(app) -> dict[str, Any]:
    from sqlalchemy import text

    from portal.extensions import db
    from portal.models import TrendDaily
    from portal.models._time import utcnow
    from portal.services import reports

    with app.app_context():
        db.session.execute(TrendDaily.__table__.delete())
        db.session.commit()
        started = time.perf_counter()
        full = reports.calculate_trends(3)
        full_s = time.perf_counter() - started
        started = time.perf_counter()
        hourly = reports.calculate_trends(3)
        hourly_s = time.perf_counter() - started
        rows = db.session.scalar(text("SELECT count(*) FROM trend_daily"))
        from datetime import timedelta

        now = utcnow()
        start = datetime.combine((now - timedelta(days=2)).date(), datetime.min.time(), tzinfo=UTC)
        plan = db.session.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + reports._RECOUNT_SQL.text),
                                  {"start": start, "end": now + timedelta(days=1), "now": now}).scalars().all()
        db.session.rollback()
        started = time.perf_counter()
        data = reports.report_data((now - timedelta(days=364)).date(), now.date())
        report_s = time.perf_counter() - started
        list_plan = db.session.execute(text(
            "EXPLAIN ANALYZE SELECT * FROM export WHERE owner_id = 2 AND created_at >= now() - interval '7 days' "
            "ORDER BY created_at DESC, id DESC LIMIT 100")).scalars().all()
    return {"full": full, "full_s": full_s, "hourly": hourly, "hourly_s": hourly_s, "rows": rows, "plan": plan,
            "report_s": report_s, "report_created": data.total.created, "list_plan": list_plan}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.chdir(ROOT)
    os.environ.setdefault("TZ", "UTC")
    database_url, redis_url, where, seed_text = prepare(args)
    app = sla_check.make_app(database_url, redis_url)
    app.config["EXPORT_DIR"] = tempfile.mkdtemp(prefix="bench-exports-")
    export_dir = Path(app.config["EXPORT_DIR"])
    sql = export_sql(app)
    machine = sla_check.machine_info() if hasattr(sla_check, "machine_info") else None
    load_start = os.getloadavg()

    copies, plain, gz = [], [], []
    for i in range(args.repeat):
        copy_s, copy_size = time_psql_copy(database_url, sql, export_dir / "copy.csv")
        (export_dir / "copy.csv").unlink()
        copies.append((copy_s, copy_size))
        log(f"[{i + 1}/{args.repeat}] psql COPY: {copy_s:.2f} s, {copy_size / 1e6:.0f} MB")
        one = run_export(app, database_url, redis_url, export_dir, gzip_over=10**15)
        plain.append(one)
        log(f"[{i + 1}/{args.repeat}] export job: {one['job_s']:.2f} s ({one['rows']:,} rows, "
            f"{one['size'] / 1e6:.0f} MB); worker wall {one['wall_s']:.2f} s, peak RSS {one['peak_mb']:.0f} MB")
    one = run_export(app, database_url, redis_url, export_dir, gzip_over=10 * 1024 * 1024)
    gz.append(one)
    log(f"gzipped export job: {one['job_s']:.2f} s, {one['size'] / 1e6:.0f} MB, peak RSS {one['peak_mb']:.0f} MB")
    peak_all = max(run["peak_mb"] for run in plain + gz)
    log("trend job: full fill and hourly recount")
    trends = trend_timings(app)

    from redis import Redis

    Redis.from_url(redis_url).flushdb()
    rows = plain[0]["rows"]
    copy_med = statistics.median(c[0] for c in copies)
    job_med = statistics.median(p["job_s"] for p in plain)
    wall_med = statistics.median(p["wall_s"] for p in plain)
    info = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "where": where, "seed": seed_text,
        "rows": rows, "copy_s": copy_med, "copy_rps": rows / copy_med, "copy_size": copies[0][1],
        "job_s": job_med, "job_rps": rows / job_med, "wall_s": wall_med, "size": plain[0]["size"],
        "gz": gz[0], "peak_all": peak_all,
        "trends": trends, "load_start": load_start, "load_end": os.getloadavg(), "machine": machine,
        "copies": [c[0] for c in copies], "jobs": [p["job_s"] for p in plain],
        "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/export.py", *(argv or sys.argv[1:])]),
        "nproc": os.cpu_count(),
    }
    summary = (f"{rows:,} rows: psql COPY median {copy_med:.2f} s ({info['copy_rps']:,.0f} rows/s); export job "
               f"median {job_med:.2f} s ({info['job_rps']:,.0f} rows/s, {info['job_rps'] / info['copy_rps']:.0%} of "
               f"COPY); worker wall {wall_med:.2f} s; gzipped job {gz[0]['job_s']:.2f} s; worker peak RSS "
               f"{peak_all:.0f} MB")
    print(summary)
    if not args.no_results:
        write_results(args.results, args, info)
        log(f"results written to {args.results}")


def write_results(path: Path, args: argparse.Namespace, info: dict[str, Any]) -> None:

    key = f"requests={args.requests}"
    begin, end = f"<!-- BEGIN export {key} -->", f"<!-- END export {key} -->"
    t = info["trends"]
    ratio = info["job_rps"] / info["copy_rps"]
    lines = [
        begin,
        f"### CSV export, {info['rows']:,} requests — `bench/export.py`",
        "",
        f"- Date: {info['date']}; {info['nproc']} CPUs shared with other work (load average at start "
        f"{info['load_start'][0]:.2f}, at end {info['load_end'][0]:.2f}); {info['where']}",
        f"- Command: `{info['command']}` (Makefile: `make bench-export`)",
        f"- Data: {info['seed']}",
        "",
        "| What | median s | rows/s | file | Aim | Met |",
        "|---|---:|---:|---:|---|---|",
        f"| PostgreSQL's own `COPY (same SELECT) TO STDOUT` (psql, to a file) | {info['copy_s']:.2f} | "
        f"{info['copy_rps']:,.0f} | {info['copy_size'] / 1e6:.0f} MB | | |",
        f"| export job (count + COPY via psycopg2 `copy_expert` + progress), gzip off | {info['job_s']:.2f} | "
        f"{info['job_rps']:,.0f} | {info['size'] / 1e6:.0f} MB | ≥ 50% of COPY | "
        f"{'yes' if ratio >= 0.5 else '**no**'} ({ratio:.0%}) |",
        f"| same, worker process wall time (start-up, relay, job, exit) | {info['wall_s']:.2f} | "
        f"{info['rows'] / info['wall_s']:,.0f} | | | |",
        f"| export job with the default gzip threshold (10 MB): file gzipped | {info['gz']['job_s']:.2f} | "
        f"{info['rows'] / info['gz']['job_s']:,.0f} | {info['gz']['size'] / 1e6:.0f} MB .csv.gz | | |",
        f"| worker peak RSS (largest VmHWM of worker or work-horse, all runs) | | | {info['peak_all']:.0f} MB | "
        f"< 200 MB | "
        f"{'yes' if info['peak_all'] < 200 else '**no**'} |",
        "",
        f"Each repetition: COPY {', '.join(f'{s:.2f}' for s in info['copies'])} s; export job "
        f"{', '.join(f'{s:.2f}' for s in info['jobs'])} s.",
        "",
        f"Trend job (`jobs.analytics.calculate_trends`): filling the empty table from every request took "
        f"{t['full_s']:.1f} s ({t['full']['days']} days, {t['rows']:,} rows of day × category × priority); "
        f"the hourly recount of the last 3 days {t['hourly_s'] * 1000:.0f} ms. An SLA report's numbers for a "
        f"year ({t['report_created']:,} requests) read from the table in {t['report_s'] * 1000:.0f} ms.",
        "",
        "<details><summary>EXPLAIN ANALYZE of the hourly recount and of the exports list</summary>", "", "```",
        *t["plan"], "", *t["list_plan"], "```", "", "</details>", "",
        end,
    ]
    sla_check.replace_section(path, begin, end, "\n".join(lines))


if __name__ == "__main__":
    main()
