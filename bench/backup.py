"""Benchmark of the encrypted database backup beside plain `pg_dump | gzip`.

Uses the database of bench/sla_check.py (the embedded PostgreSQL's `portal_bench`, or
BENCH_DATABASE_URL) and its seeding through bench/export.py's prepare(): 1,000,000 requests with SLA
clocks, seeded with COPY unless the same size and seed is already there; migrated to head first (the
`backup` catalog table is in 0007_backups).

    .venv/bin/python bench/backup.py                       # 1,000,000 requests (re-uses a seeded database)
    BENCH_DATABASE_URL=postgresql://.../scratch .venv/bin/python bench/backup.py \
        --requests 20000 --open 2000 --repeat 1 --no-results                      # smoke

Per repetition, alternating (ABBA: a then b on odd repetitions, b then a on even ones):
  a. the baseline: `pg_dump --format=plain --no-owner --no-privileges --schema=public --dbname=<db> |
     gzip -6 > file`, the two programs piped directly (no shell), with the pg_dump the portal picks
     (portal.services.backups.find_pg_dump(server major)); wall time until both have exited, and
     each one's CPU time (wait4).
  b. the portal: portal.services.backups.create_backup(trigger="command") (what `flask backup
     create` runs), in a fresh Python process with BACKUP_DIR in a temporary directory and a
     BACKUP_PASSPHRASE. Reported from the BackupResult: .seconds (everything) and
     .verification.seconds (HMAC pass, then decrypt + gunzip + scan); the rest is the dump part
     (row counts in the exported snapshot, pg_dump -> gzip -> AES -> file, fsync, .hmac, catalog).
     The child also times, by wrapping the module's functions (one call each, nothing per chunk),
     _count_rows, _dump, derive_keys (PBKDF2) and check_mac, with its own CPU time in each, so the
     report says where the time goes. A `progress` callback (once per 1 MiB read from pg_dump, as the
     backup job passes one) counts the raw SQL bytes.
Peak memory: the child's own VmHWM (read at the end, exact) and the largest VmHWM of it and of the
pg_dump it starts, sampled every 20 ms (bench/export.py's run_watched).
`--profile` adds one untimed run of (b) under cProfile and prints and records its top functions.
Results: stdout, and a section of bench/RESULTS.md per size (sla_check.replace_section).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
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

import export  # noqa: E402 - bench/export.py: prepare() (seed or re-use, migrate) and run_watched()
import seed as seeding  # noqa: E402 - bench/seed.py: the data-set options
import sla_check  # noqa: E402 - bench/sla_check.py: database, machine notes, the results writer

RESULTS = ROOT / "bench" / "RESULTS.md"
PASSPHRASE = "bench-only passphrase, not a secret"
PHASES = ("_dump", "verify_file")  # their peak memory is read separately
GZIP_LEVEL = 6
AIM_OVERHEAD = 0.40


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    seeding.add_data_arguments(parser)
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions of a. and b. (alternating)")
    parser.add_argument("--profile", action="store_true",
                        help="one more, untimed run of b. under cProfile; its top functions are reported")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-results", action="store_true")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # internal: run b. once, JSON to this file
    parser.add_argument("--child-profile", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


log = export.log


def vm_status(pid: int | str = "self") -> dict[str, int]:
    """VmHWM / VmRSS of a process in KiB."""
    found = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(("VmHWM:", "VmRSS:")):
                key, value = line.split(":", 1)
                found[key] = int(value.split()[0])
    return found


# ---------------------------------------------------------------- a. pg_dump | gzip

def code_version() -> str:
    """Which backups.py was measured: HEAD and the file's blob hash (it may differ from HEAD's)."""
    def git(*command: str) -> str:
        try:
            done = subprocess.run(["git", *command], cwd=ROOT, capture_output=True, text=True, check=True)
            return done.stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "?"
    path = "portal/services/backups.py"
    blob, head_blob = git("hash-object", path), git("rev-parse", f"HEAD:{path}")
    state = "as committed" if blob == head_blob else "with uncommitted changes"
    return f"commit {git('rev-parse', '--short', 'HEAD')}, `{path}` blob {blob[:10]} ({state})"


def pg_dump_binary(app) -> tuple[str, int]:
    from portal.services import backups

    with app.app_context():
        major = backups.server_major()
        return backups.find_pg_dump(major), major


def time_baseline(app, pg_dump: str, database_url: str, out: Path) -> dict[str, Any]:
    """`pg_dump ... | gzip -6 > out`, the two processes piped directly; wall and each one's CPU seconds."""
    from portal.services.backups import Target

    target = Target.from_url(database_url)
    dump_cmd = [pg_dump, "--format=plain", "--no-owner", "--no-privileges", "--schema=public",
                f"--dbname={target.uri}"]
    with open(out, "wb") as sink:
        started = time.perf_counter()
        dump = subprocess.Popen(dump_cmd, stdout=subprocess.PIPE, env=target.env())
        gzip = subprocess.Popen(["gzip", f"-{GZIP_LEVEL}"], stdin=dump.stdout, stdout=sink)
        dump.stdout.close()  # gzip holds the only read end: pg_dump sees SIGPIPE if gzip dies
        cpu, codes = {}, {}
        for name, proc in (("gzip", gzip), ("pg_dump", dump)):
            _pid, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = codes[name] = os.waitstatus_to_exitcode(status)
            cpu[name] = usage.ru_utime + usage.ru_stime
        wall = time.perf_counter() - started
    if any(codes.values()):
        raise SystemExit(f"pg_dump | gzip failed: exit codes {codes}")
    # Not part of the baseline: what an fsync of the file would add (the portal fsyncs its file).
    fsync_started = time.perf_counter()
    fd = os.open(out, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return {"s": wall, "size": out.stat().st_size, "cpu": cpu, "fsync_s": time.perf_counter() - fsync_started}


# ---------------------------------------------------------------- b. create_backup (child process)

def child(args: argparse.Namespace) -> None:
    """One create_backup(trigger="command") in this process; the figures as JSON to args.child."""
    from sqlalchemy import text

    from portal import create_app
    from portal.services import backups

    env = os.environ
    app = create_app({"DATABASE_URL": env["BENCH_BACKUP_DATABASE_URL"], "REDIS_URL": env["BENCH_BACKUP_REDIS_URL"],
                      "SECRET_KEY": "bench-only", "BACKUP_DIR": env["BENCH_BACKUP_DIR"],
                      "BACKUP_PASSPHRASE": PASSPHRASE, "BACKUP_PASSPHRASE_FILE": None, "LOG_DIR": None,
                      "LOG_STDOUT": False})
    parts: dict[str, list[list[float]]] = {}

    def timed(name: str) -> None:
        """Wrap backups.<name>: wall and CPU seconds of each call (one Python call more per call)."""
        original = getattr(backups, name)

        def wrapper(*a, **kw):
            if name in PHASES:
                reset_hwm()
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return original(*a, **kw)
            finally:
                parts.setdefault(name, []).append([time.perf_counter() - wall, time.process_time() - cpu])
                if name in PHASES:
                    phase_hwm[name] = vm_status()["VmHWM"]
        setattr(backups, name, wrapper)

    def reset_hwm() -> None:
        """VmHWM back to the current RSS (Linux: `echo 5 > /proc/PID/clear_refs`), so each phase has its own peak."""
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
        except OSError:
            pass

    phase_hwm: dict[str, int] = {}

    for name in ("_count_rows", "_dump", "derive_keys", "check_mac", "verify_file"):
        timed(name)
    raw = [0]

    def progress(done: int) -> None:
        raw[0] = done

    with app.app_context():
        from portal.extensions import db

        db.session.execute(text("SELECT 1"))  # connect before timing, as a running worker would be
        db.session.commit()
        before = vm_status()
        profiler = None
        if args.child_profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        wall, cpu = time.perf_counter(), time.process_time()
        result = backups.create_backup(trigger="command", progress=progress)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(args.child_profile))
        after = vm_status()
        peak_kib = max([after["VmHWM"], *phase_hwm.values()])
        import resource

        children_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        path = backups.backup_dir() / result.name
        mac_size = path.with_name(path.name + backups.MAC_SUFFIX).stat().st_size
    figures = {
        "name": result.name, "backup_id": result.backup_id, "seconds": result.seconds,
        "verify_s": result.verification.seconds, "verified": result.verification.ok, "size": result.size,
        "file_size": path.stat().st_size, "mac_size": mac_size, "tables": result.tables,
        "rows_in_file": result.verification.tables, "raw_sql": raw[0], "wall": wall, "cpu": cpu,
        "children_cpu": children_cpu.ru_utime + children_cpu.ru_stime, "parts": parts,
        "hwm_before_kib": before["VmHWM"], "hwm_kib": peak_kib, "rss_kib": after["VmRSS"],
        "phase_hwm_kib": phase_hwm,
    }
    args.child.write_text(json.dumps(figures))


def time_portal(database_url: str, redis_url: str, backup_dir: Path, profile: Path | None = None) -> dict[str, Any]:
    """Run child() in a fresh process, watching the peak memory of it and of the pg_dump it starts."""
    out = backup_dir.parent / "child.json"
    out.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(out)]
    if profile is not None:
        command += ["--child-profile", str(profile)]
    env = {**os.environ, "BENCH_BACKUP_DATABASE_URL": database_url, "BENCH_BACKUP_REDIS_URL": redis_url,
           "BENCH_BACKUP_DIR": str(backup_dir), "TZ": "UTC"}
    result, wall, tree_peak_mb = export.run_watched(command, env)
    if result.returncode != 0 or not out.exists():
        raise SystemExit(f"create_backup failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    figures = json.loads(out.read_text())
    figures["process_wall"] = wall
    figures["tree_peak_mb"] = tree_peak_mb
    for path in backup_dir.iterdir():
        path.unlink()
    return figures


def part(run: dict[str, Any], name: str, index: int = 0) -> float:
    """Total wall (index 0) or CPU (index 1) seconds of the wrapped calls of `name` in one run."""
    return sum(call[index] for call in run["parts"].get(name, []))


def forget_backups(app, names: list[str]) -> None:
    """The catalog rows our runs wrote into the bench database."""
    from sqlalchemy import delete

    from portal.extensions import db
    from portal.models import Backup

    with app.app_context():
        db.session.execute(delete(Backup).where(Backup.name.in_(names)))
        db.session.commit()


def profile_lines(path: Path, limit: int = 18) -> list[str]:
    import io
    import pstats

    text = io.StringIO()
    stats = pstats.Stats(str(path), stream=text)
    stats.sort_stats("tottime").print_stats(limit)
    lines = text.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    head = next((line.strip() for line in lines if "function calls" in line), "")
    return [head, "", *[line.rstrip() for line in lines[start:] if line.strip()]]


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.chdir(ROOT)
    os.environ.setdefault("TZ", "UTC")
    if args.child:
        child(args)
        return
    database_url, redis_url, where, seed_text = export.prepare(args)
    app = sla_check.make_app(database_url, redis_url)
    pg_dump, major = pg_dump_binary(app)
    with app.app_context():
        machine = sla_check.machine()
    code = code_version()
    log(f"pg_dump: {pg_dump} (server PostgreSQL {major}); {machine['load']}; {code}")
    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    backup_dir = work / "backups"
    backup_dir.mkdir()
    baseline_file = work / "baseline.sql.gz"

    plain, portal = [], []
    try:
        for i in range(args.repeat):
            order = ("a", "b") if i % 2 == 0 else ("b", "a")
            for which in order:
                if which == "a":
                    one = time_baseline(app, pg_dump, database_url, baseline_file)
                    baseline_file.unlink()
                    plain.append(one)
                    log(f"[{i + 1}/{args.repeat}] a. pg_dump | gzip -{GZIP_LEVEL}: {one['s']:.2f} s, "
                        f"{one['size'] / 1e6:.1f} MB (CPU pg_dump {one['cpu']['pg_dump']:.2f} s, gzip "
                        f"{one['cpu']['gzip']:.2f} s; an fsync would add {one['fsync_s']:.2f} s)")
                else:
                    one = time_portal(database_url, redis_url, backup_dir)
                    portal.append(one)
                    log(f"[{i + 1}/{args.repeat}] b. create_backup: {one['seconds']:.2f} s (dump part "
                        f"{one['seconds'] - one['verify_s']:.2f} s, verification {one['verify_s']:.2f} s), "
                        f"{one['size'] / 1e6:.1f} MB, {sum(one['tables'].values()):,} rows, raw SQL "
                        f"{one['raw_sql'] / 1e6:.0f} MB; VmHWM {one['hwm_kib'] / 1024:.0f} MB (dump "
                        f"{one['phase_hwm_kib'].get('_dump', 0) / 1024:.0f}, verify "
                        f"{one['phase_hwm_kib'].get('verify_file', 0) / 1024:.0f})")
        profile = None
        if args.profile:
            log("one more b. under cProfile (untimed)")
            stats_path = work / "create_backup.prof"
            profiled = time_portal(database_url, redis_url, backup_dir, profile=stats_path)
            portal_names = [profiled["name"]]
            profile = {"seconds": profiled["seconds"], "lines": profile_lines(stats_path)}
            print("\n".join(profile["lines"]))
        else:
            portal_names = []
        forget_backups(app, [run["name"] for run in portal] + portal_names)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with app.app_context():
        load_end = sla_check.activity()

    rows = sum(portal[0]["tables"].values())
    if any(run["tables"] != run["rows_in_file"] or not run["verified"] for run in portal):
        raise SystemExit("a backup's rows in the file differ from the counts taken at dump time")
    med = statistics.median
    a_s = med(run["s"] for run in plain)
    b_s = med(run["seconds"] for run in portal)
    verify_s = med(run["verify_s"] for run in portal)
    dump_s = med(run["seconds"] - run["verify_s"] for run in portal)
    overhead = b_s / a_s - 1
    info = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "where": where, "seed": seed_text,
        "machine": machine, "load_end": load_end, "code": code, "pg_dump": pg_dump, "major": major, "rows": rows,
        "tables": len(portal[0]["tables"]), "a_s": a_s, "b_s": b_s, "verify_s": verify_s, "dump_s": dump_s,
        "overhead": overhead, "dump_overhead": dump_s / a_s - 1, "verify_share": verify_s / b_s,
        "plain": plain, "portal": portal, "raw_sql": portal[0]["raw_sql"], "profile": profile,
        "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/backup.py", *(argv or sys.argv[1:])]),
    }
    if os.environ.get("BENCH_DATABASE_URL"):
        info["command"] = f"BENCH_DATABASE_URL={sla_check._redact(os.environ['BENCH_DATABASE_URL'])} {info['command']}"
    print(f"{rows:,} rows, raw SQL {info['raw_sql'] / 1e6:.0f} MB: pg_dump | gzip median {a_s:.2f} s; "
          f"create_backup median {b_s:.2f} s (dump part {dump_s:.2f} s, verification {verify_s:.2f} s = "
          f"{info['verify_share']:.0%}); overhead {overhead:+.0%} (aim < +{AIM_OVERHEAD:.0%}: "
          f"{'met' if overhead < AIM_OVERHEAD else 'MISSED'}); peak VmHWM "
          f"{max(run['hwm_kib'] for run in portal) / 1024:.0f} MB")
    if not args.no_results:
        write_results(args.results, args, info)
        log(f"results written to {args.results}")


def _ms(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def write_results(path: Path, args: argparse.Namespace, info: dict[str, Any]) -> None:
    key = f"requests={args.requests}"
    begin, end = f"<!-- BEGIN backup {key} -->", f"<!-- END backup {key} -->"
    m, med = info["machine"], statistics.median
    plain, portal = info["plain"], info["portal"]
    a_s, b_s = info["a_s"], info["b_s"]
    parts = {name: med(part(run, name) for run in portal)
             for name in ("_count_rows", "_dump", "derive_keys", "check_mac", "verify_file")}
    cpu = {name: med(part(run, name, 1) for run in portal) for name in ("_count_rows", "_dump", "verify_file")}
    scan_s = parts["verify_file"] - parts["check_mac"]
    rest_s = b_s - parts["_count_rows"] - parts["_dump"] - parts["verify_file"]
    hwm = max(run["hwm_kib"] for run in portal) / 1024
    hwm_before = max(run["hwm_before_kib"] for run in portal) / 1024
    tree = max(run["tree_peak_mb"] for run in portal)
    met = info["overhead"] < AIM_OVERHEAD

    def phase(name: str) -> float:
        return max(run["phase_hwm_kib"].get(name, 0) for run in portal) / 1024
    lines = [
        begin,
        f"### Encrypted backup, {args.requests:,} requests — `bench/backup.py`",
        "",
        f"- Date: {info['date']}",
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, shared with other work; PostgreSQL "
        f"{m['server_version']} ({info['where']}; shared_buffers {m['shared_buffers']}); Python {m['python']}; "
        f"`{info['pg_dump']}` (chosen by `find_pg_dump({info['major']})`), gzip -{GZIP_LEVEL}",
        f"- Other activity: at start {m['load']}; at end {info['load_end']}",
        f"- Command: `{info['command']}` (Makefile: `make bench-backup`)",
        f"- Code: {info['code']}",
        f"- Data: {info['seed']}; {info['rows']:,} rows in {info['tables']} tables, raw SQL "
        f"{info['raw_sql'] / 1e6:,.0f} MB",
        f"- {args.repeat} repetitions of a. and b., alternating (a b, b a, ...); medians below",
        "",
        "| What | median s | vs a. | file | Aim | Met |",
        "|---|---:|---:|---:|---|---|",
        f"| a. `pg_dump --format=plain --no-owner --no-privileges --schema=public \\| gzip -{GZIP_LEVEL} > file` | "
        f"{a_s:.2f} | | {med(r['size'] for r in plain) / 1e6:.1f} MB | | |",
        f"| b. `create_backup(trigger=\"command\")`, whole (`BackupResult.seconds`) | {b_s:.2f} | "
        f"{info['overhead']:+.0%} | {med(r['size'] for r in portal) / 1e6:.1f} MB + {portal[0]['mac_size']} B .hmac | "
        f"< +{AIM_OVERHEAD:.0%} | {'yes' if met else '**no**'} |",
        f"| b., dump part (counts, pg_dump → gzip → AES → file, fsync, .hmac, catalog) | {info['dump_s']:.2f} | "
        f"{info['dump_overhead']:+.0%} | | | |",
        f"| b., verification (`.verification.seconds`: HMAC pass, decrypt + gunzip + scan) | {info['verify_s']:.2f} | "
        f"{info['verify_s'] / a_s:.0%} of a. | {info['verify_share']:.0%} of b. | | |",
        f"| b., peak memory of the Python process (VmHWM; {hwm_before:.0f} MB before the backup started) | | | "
        f"{hwm:.0f} MB | flat: not growing with the dump | {hwm - hwm_before:+.0f} MB during the backup of "
        f"{info['raw_sql'] / 1e6:,.0f} MB of SQL |",
        "",
        f"Each repetition: a. {_ms([r['s'] for r in plain])} s; b. {_ms([r['seconds'] for r in portal])} s "
        f"(verification {_ms([r['verify_s'] for r in portal])} s).",
        "",
        "Where b.'s time goes (medians; wall s, and the Python process's own CPU s where measured, "
        "from wrappers around the module's functions):",
        "",
        f"- {parts['_count_rows']:.2f} s (CPU {cpu['_count_rows']:.2f}): `_count_rows` — `count(*)` of every table in "
        "the exported snapshot",
        f"- {parts['_dump']:.2f} s (CPU {cpu['_dump']:.2f}): `_dump` — pg_dump → zlib level {GZIP_LEVEL} → "
        f"AES-256-CBC + HMAC → file, fsync, .hmac (a.'s pg_dump used {med(r['cpu']['pg_dump'] for r in plain):.2f} s "
        f"CPU and its gzip {med(r['cpu']['gzip'] for r in plain):.2f} s; an fsync of a.'s file took "
        f"{med(r['fsync_s'] for r in plain):.2f} s)",
        f"- {parts['verify_file']:.2f} s (CPU {cpu['verify_file']:.2f}): `verify_file` — of which `check_mac` "
        f"{parts['check_mac']:.2f} s (one PBKDF2 derivation + HMAC of the file) and decrypt + gunzip + "
        f"`DumpScanner` {scan_s:.2f} s",
        f"- {parts['derive_keys']:.2f} s: `derive_keys` in total (PBKDF2-HMAC-SHA256, 2 x 600,000 iterations per "
        "call, once when writing and once when verifying; included in the lines above)",
        f"- {rest_s:.2f} s: the rest (server version, finding pg_dump, advisory lock, catalog rows, commits)",
        "",
        f"Memory: the Python process doing b. peaked at {hwm:.0f} MB VmHWM ({hwm_before:.0f} MB after start-up, "
        f"before the backup; peak while dumping {phase('_dump'):.0f} MB, while verifying "
        f"{phase('verify_file'):.0f} MB, "
        f"each phase's VmHWM reset at its start via /proc/self/clear_refs); with the pg_dump it starts, the largest "
        f"VmHWM sampled every 20 ms was {tree:.0f} MB.",
        "",
    ]
    if info["profile"]:
        lines += [f"<details><summary>cProfile of one more b. ({info['profile']['seconds']:.2f} s under the "
                  "profiler), top functions by own time</summary>", "", "```", *info["profile"]["lines"], "```", "",
                  "</details>", ""]
    lines.append(end)
    sla_check.replace_section(path, begin, end, "\n".join(lines))


if __name__ == "__main__":
    main()
