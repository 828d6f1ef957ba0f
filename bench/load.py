"""Load test of the portal under gunicorn (issue #11): signed-in agents, managers and the admin, with locust.

    .venv/bin/python bench/load.py                  # the embedded portal_bench: 20 users, then 1, 60 s each
    .venv/bin/python bench/load.py --database-url postgresql://postgres@127.0.0.1:5432/portal_load_100k
    .venv/bin/python bench/load.py --duration 5 --users 2 --no-results   # smoke run

The database (--database-url, else BENCH_DATABASE_URL, else the embedded PostgreSQL's `portal_bench`)
must hold a bench/seed.py seed; the portal's own database is refused (bench/seed.py's rules). It is
migrated to head, and the staff accounts the run signs in with get a known password (the seed's
hashes are placeholders), a confirmed address, and their API tokens from earlier runs removed, in
that database only. The run adds requests and changes statuses there: re-seed for pristine data.

The portal runs as production runs it: gunicorn with gunicorn.conf.py and the Procfile's flags
(workers: --workers, else WEB_CONCURRENCY, else 2; --threads adds gthread threads), APP_ENV=production
with a random SECRET_KEY, PYTHONUNBUFFERED=1 as in the image, a fresh PROMETHEUS_MULTIPROC_DIR and
INSTANCE_DIR in a temporary directory (logs: JSON lines on stdout, kept in a file there, and the
default LOG_DIR files), REDIS_URL database 8 of the embedded Redis (emptied before and after) or
--redis-url. One setting differs from production and is printed: TOKEN_MINT_RATE_LIMIT is raised,
since every simulated user mints its API token from the same address (127.0.0.1) and the default,
20 per hour per address, would refuse the second run within the hour.

locust (FastHttpUser, in this process) then runs each phase: --users simulated users (default 20)
sign in through the real /login form (CSRF token parsed from the page), mint an API token
(POST /api/v1/auth/token), and, after --warmup seconds (not counted), work for --duration seconds
(default 60) with no think time (--wait adds some), choosing each action with the issue's weights:
list with filters and sorts 40%, request page 25%, dashboard and breach polls 20%, create 5%, status
change 5%, API 5%; then the same with one user (the admin) for the single-user figures. Polls
revalidate as a browser's cache does (If-None-Match with their last answer's ETag; 304 or 200).
--only-users / --only-single runs one phase. The gunicorn master's and workers' memory is sampled
throughout. Results: a table on stdout and a section of bench/RESULTS.md (replaced when re-run with
the same size, phases and gunicorn settings).
"""

# ruff: noqa: I001 - locust must come first (below)
from __future__ import annotations

# locust patches the standard library for gevent when imported: first, as in any locustfile, so that
# socket, ssl and subprocess are the patched ones everywhere.
import locust
from locust import FastHttpUser, between, constant, events, task
from locust.env import Environment

import argparse
import html
import json
import math
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from datetime import UTC, datetime
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import gevent
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import seed as seeding  # noqa: E402 - bench/seed.py: databases, seeds, refusing the app's database
import sla_check  # noqa: E402 - bench/sla_check.py: machine notes and the RESULTS.md section writer

RESULTS = ROOT / "bench" / "RESULTS.md"
REDIS_DB = 8                       # of the embedded Redis: the load test's own, emptied before and after
PASSWORD = seeding.BENCH_PASSWORD
TOKEN_MINT_RATE_LIMIT = "10000 per hour"
# The actions and their weights (issue #11). One action may send two requests (create: form + submit;
# status change: page + submit); the report counts requests, per kind and per page.
MIX = {"list": 40, "request page": 25, "poll": 20, "create": 5, "status change": 5, "api": 5}
KIND_TITLES = {"list": "list with filters and sorts", "request page": "request page",
               "poll": "dashboard and breach polls", "create": "create (form + submit)",
               "status change": "status change (page + submit)", "api": "API"}
# Which account each simulated user signs in as, by its number: the admin (the only one with the
# dashboard), managers (/sla/breaches, SLA statistics) and agents; the single user is the admin.
ROLE_PATTERN = ("admin", "manager", "agent", "manager", "agent")
AIM_P95_MS, AIM_SINGLE_P95_MS, AIM_RPS = 100.0, 50.0, 300.0
OPEN_STATUSES = ("open", "in_progress", "waiting_on_customer")


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- arguments

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="a seeded database (default: BENCH_DATABASE_URL or the embedded "
                                               f"{seeding.BENCH_DB})")
    parser.add_argument("--redis-url", help=f"Redis for the portal (default: database {REDIS_DB} of the embedded "
                                            "Redis, emptied before and after)")
    parser.add_argument("--users", type=int, default=20, help="simulated users of the main phase")
    parser.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds of each phase")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="seconds of load after every user has signed in, before measuring (not counted)")
    parser.add_argument("--wait", type=float, default=0.0,
                        help="think time: each user waits 0..WAIT seconds between actions (default none)")
    phases = parser.add_mutually_exclusive_group()
    phases.add_argument("--only-users", action="store_true", help="run only the --users phase")
    phases.add_argument("--only-single", action="store_true", help="run only the single-user phase")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: WEB_CONCURRENCY, else 2, as the "
                                                    "Procfile)")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (>1: gthread)")
    parser.add_argument("--seed", type=int, default=11, help="random seed of the simulated users' choices")
    parser.add_argument("--profile", action="store_true",
                        help="sample the gunicorn workers with py-spy during the first phase's measured window "
                             "and say where their CPU went")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-results", action="store_true", help="do not update the results file")
    args = parser.parse_args(argv)
    if args.users < 1 or args.duration <= 0 or args.warmup < 0 or args.wait < 0 or args.spawn_rate <= 0:
        parser.error("--users, --duration and --spawn-rate must be positive, --warmup and --wait not negative")
    if args.threads < 1 or (args.workers is not None and args.workers < 1):
        parser.error("--workers and --threads must be at least 1")
    if args.workers is None:
        args.workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
    return args


# ---------------------------------------------------------------- the bench database

def prepare_database(database_url: str, redis_url: str, accounts_needed: int) -> dict[str, Any]:
    """Check the seed, migrate to head, give the staff accounts a known password; ids the users pick from."""
    meta = seeding.seeded_meta(database_url)
    if meta is None:
        sys.exit(f"{seeding.redact(database_url)} holds no bench seed: fill it with bench/seed.py first, e.g. "
                 f".venv/bin/python bench/seed.py --requests 100000 --database-url {seeding.redact(database_url)}")
    log(f"seed: {meta.get('requests'):,} requests ({meta.get('open'):,} open), seed {meta.get('seed')}, "
        f"now {meta.get('now')}; migrating to head")
    seeding.migrate(database_url, redis_url)
    app = seeding.make_app(database_url, redis_url)
    with app.app_context():
        from portal.services import users

        password_hash = users.hash_password(PASSWORD)   # the portal's own argon2id settings
        machine = sla_check.machine()
        from portal.extensions import db
        from portal.services import sla_rollup

        # What the scheduler's refresh-sla-rollup does every 5 minutes: fold the rows earlier runs'
        # changes added, so the SLA figures start from the state production keeps them in.
        folded = sla_rollup.fold()
        log(f"SLA rollups folded: {folded}")

        db.session.remove()
        db.engine.dispose()
    conn = seeding.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, email, role FROM \"user\" WHERE active AND role IN ('admin', 'manager', 'agent') "
                        "ORDER BY id")
            staff = [{"id": i, "email": e, "role": r} for i, e, r in cur.fetchall()]
            by_role = {role: [a for a in staff if a["role"] == role] for role in ("admin", "manager", "agent")}
            missing = [role for role, found in by_role.items() if not found]
            if missing:
                sys.exit(f"the seed has no active {', '.join(missing)} account: is it a bench/seed.py seed?")
            used = {a["id"] for a in (account_for(i, by_role) for i in range(max(accounts_needed, 1)))}
            removed_tokens = seeding.prepare_staff(cur, sorted(used), password_hash)
            cur.execute("SELECT max(id) FROM service_request")
            max_id = cur.fetchone()[0] or 1
            cur.execute("SELECT id FROM service_request WHERE status = ANY(%s) ORDER BY id DESC LIMIT 5000",
                        (list(OPEN_STATUSES),))
            open_ids = [row[0] for row in cur.fetchall()]
            cur.execute("SELECT count(*) FROM service_request")
            request_count = cur.fetchone()[0]
            cur.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            size = cur.fetchone()[0]
            cur.execute("SELECT code FROM category WHERE active ORDER BY sort_order")
            categories = [row[0] for row in cur.fetchall()]
        conn.commit()
    finally:
        conn.close()
    log(f"{len(used)} staff accounts get the bench password; {removed_tokens} API tokens of earlier runs removed")
    return {"meta": meta, "by_role": by_role, "max_id": max_id, "open_ids": open_ids or [max_id],
            "request_count": request_count, "size": size, "categories": categories or ["other"],
            "agent_ids": [a["id"] for a in by_role["agent"]], "machine": machine}


def account_for(index: int, by_role: dict[str, list[dict]]) -> dict:
    """The account simulated user `index` signs in as (ROLE_PATTERN; accounts of a role taken in turn)."""
    role = ROLE_PATTERN[index % len(ROLE_PATTERN)]
    nth = sum(1 for i in range(index) if ROLE_PATTERN[i % len(ROLE_PATTERN)] == role)
    accounts = by_role[role]
    return accounts[nth % len(accounts)]


# ---------------------------------------------------------------- gunicorn

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(database_url: str, redis_url: str, workdir: Path, port: int, workers: int) -> dict[str, str]:
    """Production settings (portal/config.py) for the bench server; only the token-mint limit is raised."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SSL_", "SCHEDULE_", "SENTRY_")) and k not in ("BENCH_DATABASE_URL",)}
    env.update({
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "INSTANCE_DIR": str(workdir / "instance"),
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus"),
        # Logs as production writes them by default: JSON lines on stdout (into a file here) and under
        # $INSTANCE_DIR/logs. (LOG_DIR="" would be stdout only, but then the portal configures no logging.)
        "LOG_DIR": str(workdir / "instance" / "logs"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "TOKEN_MINT_RATE_LIMIT": TOKEN_MINT_RATE_LIMIT,
        "REQUIRE_2FA_FOR": "",
        "TZ": "UTC",
        "PYTHONUNBUFFERED": "1",            # as the image sets it: log lines leave at once
    })
    return env


class Server:
    """gunicorn with gunicorn.conf.py and the Procfile's flags, in a temporary directory; memory sampled."""

    profiled = False  # --profile samples the first phase only

    def __init__(self, args: argparse.Namespace, database_url: str, redis_url: str):
        self.workdir = Path(tempfile.mkdtemp(prefix="portal-load-"))
        (self.workdir / "prometheus").mkdir()
        (self.workdir / "instance").mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers, self.threads = args.workers, args.threads
        self.database = seeding.database_name(database_url)
        self.command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--no-control-socket",
                        "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers)]
        if self.threads > 1:
            self.command += ["--threads", str(self.threads)]
        self.command.append("wsgi:app")
        self.env = server_environment(database_url, redis_url, self.workdir, self.port, self.workers)
        self.log_path = self.workdir / "gunicorn.log"
        self.process: subprocess.Popen | None = None
        self.peak = {"rss": 0, "pss": 0, "processes": 0}
        self.hwm: dict[int, int] = {}
        self._sampler = None

    def display_command(self) -> str:
        return ("APP_ENV=production gunicorn --config gunicorn.conf.py --no-control-socket --bind 127.0.0.1:PORT "
                f"--workers {self.workers}" + (f" --threads {self.threads}" if self.threads > 1 else "") + " wsgi:app")

    def start(self) -> None:
        handle = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._log_handle = handle
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        last = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"gunicorn exited with {self.process.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health/ready", timeout=3) as response:
                    if response.status == 200:
                        break
            except urllib.error.HTTPError as exc:
                last = exc.read().decode(errors="replace")[:300]
            except OSError as exc:
                last = str(exc)
            time.sleep(0.3)
        else:
            self.stop()
            sys.exit(f"the portal was not ready within 90 s (last answer: {last}):\n{self.tail()}")
        workers = self.processes()[1:]
        log(f"gunicorn ready on {self.url}: master {self.process.pid}, {len(workers)} workers"
            f"{f' x {self.threads} threads' if self.threads > 1 else ''}")
        self._sampler = gevent.spawn(self._sample)

    def processes(self) -> list[psutil.Process]:
        try:
            master = psutil.Process(self.process.pid)
            return [master, *master.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _sample(self) -> None:
        """Peak of the summed RSS and PSS of the master and its workers, every 0.5 s."""
        while True:
            rss = pss = 0
            procs = self.processes()
            for proc in procs:
                try:
                    info = proc.memory_full_info()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                rss += info.rss
                pss += getattr(info, "pss", info.rss)
            self.peak["rss"] = max(self.peak["rss"], rss)
            self.peak["pss"] = max(self.peak["pss"], pss)
            self.peak["processes"] = max(self.peak["processes"], len(procs))
            self._read_hwm(procs)
            gevent.sleep(0.5)

    def _read_hwm(self, procs: list[psutil.Process]) -> None:
        for proc in procs:
            try:
                with open(f"/proc/{proc.pid}/status") as handle:
                    for line in handle:
                        if line.startswith("VmHWM:"):
                            self.hwm[proc.pid] = max(self.hwm.get(proc.pid, 0), int(line.split()[1]) * 1024)
            except OSError:
                pass

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.processes():
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def postgres_cpu(self) -> dict[int, float]:
        """CPU seconds of the local PostgreSQL backends serving the bench database, by pid."""
        name = f" {self.database} "
        out = {}
        for proc in psutil.process_iter(["cmdline"]):
            try:
                cmd = " ".join(proc.info["cmdline"] or []) + " "
                if cmd.startswith("postgres: ") and name in cmd:
                    times = proc.cpu_times()
                    out[proc.pid] = times.user + times.system
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return out

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.kill()
            self._read_hwm(self.processes())
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log_handle", None):
            self._log_handle.close()

    def app_errors(self) -> list[str]:
        """The errors the portal logged (its JSON ERROR lines and the exceptions of tracebacks), counted."""
        found: Counter[str] = Counter()
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        for line in lines:
            if line.startswith("{") and '"level": "ERROR"' in line:
                try:
                    record = json.loads(line)
                    message = str(record.get("message")).strip().splitlines() or [""]
                    where = next((m.strip() for m in reversed(message) if m.strip().startswith(f'File "{ROOT}/')
                                  and "/.venv/" not in m),
                                 "")
                    text = message[0] if len(message) == 1 else f"{message[0]} ... {message[-1]} ({where})"
                    found[f"ERROR {record.get('logger')} {record.get('path', '')}: {text[:300]}"] += 1
                except ValueError:
                    found[line[:200]] += 1
            elif "[CRITICAL]" in line or "[ERROR]" in line:
                found[line[:240]] += 1
        return [f"{text} ({count}x)" for text, count in found.most_common()]

    def server_durations(self, since: float, until: float) -> dict[str, list[float]]:
        """The portal's own duration_ms (its http_request log lines) between two wall-clock times, by route."""
        out: dict[str, list[float]] = defaultdict(list)
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return out
        for line in text.splitlines():
            if '"http_request"' not in line:
                continue
            try:
                record = json.loads(line)
                at = datetime.fromisoformat(record["timestamp"]).timestamp()
                path = str(record.get("path", ""))
                if since <= at <= until and record.get("duration_ms") is not None and not path.startswith("/health"):
                    out[f"{record.get('method')} {re.sub(r'/[0-9]+', '/<id>', path)}"].append(
                        float(record["duration_ms"]))
            except (ValueError, KeyError, TypeError):
                continue
        return out


# ---------------------------------------------------------------- the simulated users

class Plan:
    """What the users of the current phase share: accounts, ids to visit, and the recorder."""

    by_role: dict[str, list[dict]] = {}
    max_id = 1
    open_ids: list[int] = [1]
    agent_ids: list[int] = []
    categories: list[str] = []
    next_index = 0
    ready = 0
    measuring = False
    tokens: list[str] = []
    setup_failures: list[str] = []
    rng = random.Random(11)

    @classmethod
    def reset(cls, info: dict[str, Any], seed: int) -> None:
        cls.by_role, cls.max_id, cls.open_ids = info["by_role"], info["max_id"], info["open_ids"]
        cls.agent_ids, cls.categories = info["agent_ids"], info["categories"]
        cls.next_index, cls.ready, cls.measuring = 0, 0, False
        cls.tokens, cls.setup_failures = [], []
        cls.rng = random.Random(seed)


class Recorder:
    """Every request's time while measuring, by name ("kind: page"); errors and 409s apart."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.conflicts: Counter[str] = Counter()
        self.messages: Counter[str] = Counter()
        self.setup: dict[str, list[float]] = defaultdict(list)

    def on_request(self, request_type, name, response_time, response_length, response=None, context=None,
                   exception=None, **_: Any) -> None:
        if name.startswith("setup:"):
            self.setup[name].append(response_time)
            if exception is not None:
                self.messages[f"{name}: {str(exception)[:160]}"] += 1
            return
        if not Plan.measuring:
            return
        self.samples[name].append(response_time)
        status = getattr(response, "status_code", None)
        if name.startswith("status change: submit") and status == 409:
            self.conflicts[name] += 1
        elif exception is not None:
            self.errors[name] += 1
            self.messages[f"{name}: {str(exception)[:160]}"] += 1


RECORDER = Recorder()
events.request.add_listener(lambda **kw: RECORDER.on_request(**kw))

CSRF_IN_BODY = re.compile(r'"X-CSRFToken": "([^"]+)"')
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
NEXT_LINK = re.compile(r'<a href="([^"]+)"[^>]*rel="next"')
VERSION = re.compile(r'name="version" value="(\d+)"')
STATUS_BUTTON = re.compile(r'name="status" value="([a-z_]+)"')
CATEGORY_OPTION = re.compile(r'<option value="([a-z][a-z0-9_-]*)"')
SORTS = ("newest", "oldest", "updated", "priority", "status")
STATUS_FILTERS = ("active", "done", "open", "in_progress", "waiting_on_customer", "resolved", "closed")
PRIORITIES = ("low", "medium", "high", "critical")


class PortalUser(FastHttpUser):
    """A staff member at work: signs in through the form, keeps an API token, then acts with the mix's weights."""

    wait_time = constant(0)
    # One request at a time per user (gunicorn's sync workers close the connection after each answer).
    concurrency = 1
    network_timeout = 60.0
    connection_timeout = 60.0

    def on_start(self) -> None:
        index = Plan.next_index
        Plan.next_index += 1
        self.rng = random.Random(Plan.rng.random())
        self.account = account_for(index, Plan.by_role)
        self.role = self.account["role"]
        self.csrf = ""
        self.next_link: str | None = None
        self.own_ids: list[int] = []
        self.token = ""
        self.etags: dict[tuple[str, str], str] = {}   # a poll's last ETag, as the browser's cache keeps it
        # APP_ENV=production marks the session cookie Secure; browsers send Secure cookies to
        # http://127.0.0.1 (a secure context) and so does this client.
        self.client.cookiejar.set_policy(DefaultCookiePolicy(secure_protocols=("https", "wss", "http")))
        try:
            self._sign_in()
            self._mint_token()
        except Exception as exc:  # noqa: BLE001 - a user that cannot sign in stops, and the run says why
            Plan.setup_failures.append(f"{self.account['email']}: {exc}")
            raise
        Plan.ready += 1

    # -------------------------------------------------------- helpers

    def _request(self, method: str, url: str, name: str, expect: tuple[int, ...] = (200,), **kwargs: Any):
        kwargs.setdefault("allow_redirects", False)
        headers = {"Referer": self.host + "/requests", **kwargs.pop("headers", {})}
        with self.client.request(method, url, name=name, headers=headers, catch_response=True, **kwargs) as resp:
            if resp.status_code in expect:
                resp.success()
            else:
                location = resp.headers.get("Location", "") if resp.headers else ""
                resp.failure(f"HTTP {resp.status_code}" + (f" -> {location}" if location else ""))
        return resp

    def _page(self, url: str, name: str, htmx_target: str | None = None, expect: tuple[int, ...] = (200,)):
        headers = {}
        if htmx_target is not None:
            headers = {"HX-Request": "true", "HX-Target": htmx_target, "HX-Current-URL": self.host + url}
        resp = self._request("GET", url, name, expect, headers=headers)
        if htmx_target is None and resp.status_code == 200:
            found = CSRF_IN_BODY.search(resp.text or "")
            if found:
                self.csrf = html.unescape(found.group(1))
        return resp

    def _poll(self, url: str, name: str, htmx_target: str):
        """A 30-second poll as a browser sends it: revalidating the copy it kept (If-None-Match with the
        last answer's ETag), so an unchanged one comes back a bodiless 304."""
        headers = {"HX-Request": "true", "HX-Target": htmx_target, "HX-Current-URL": self.host + url}
        kept = self.etags.get((url, htmx_target))
        if kept:
            headers["If-None-Match"] = kept
        resp = self._request("GET", url, name, (200, 304), headers=headers)
        if resp.status_code == 200 and resp.headers and resp.headers.get("ETag"):
            self.etags[(url, htmx_target)] = resp.headers["ETag"]
        return resp

    def _api(self, url: str, name: str):
        return self._request("GET", url, name, headers={"Authorization": f"Bearer {self.token}",
                                                        "Accept": "application/json"})

    def _sign_in(self) -> None:
        resp = self._request("GET", "/login", "setup: sign-in form")
        found = CSRF_FIELD.search(resp.text or "")
        if resp.status_code != 200 or not found:
            raise RuntimeError(f"no sign-in form (HTTP {resp.status_code})")
        body = urlencode({"csrf_token": html.unescape(found.group(1)), "email": self.account["email"],
                          "password": PASSWORD})
        resp = self._request("POST", "/login", "setup: sign in", expect=(303,), data=body,
                             headers={"Content-Type": "application/x-www-form-urlencoded",
                                      "Referer": self.host + "/login"})
        if resp.status_code != 303:
            raise RuntimeError(f"sign-in refused (HTTP {resp.status_code})")
        resp = self._page("/requests", "setup: first page")
        if resp.status_code != 200 or not self.csrf:
            raise RuntimeError(f"signed in, but the request list answered HTTP {resp.status_code}")

    def _mint_token(self) -> None:
        resp = self._request("POST", "/api/v1/auth/token", "setup: API token", expect=(201,),
                             json={"email": self.account["email"], "password": PASSWORD})
        if resp.status_code != 201:
            raise RuntimeError(f"no API token (HTTP {resp.status_code}: {(resp.text or '')[:200]})")
        self.token = json.loads(resp.text)["token"]
        Plan.tokens.append(self.token)

    def _some_id(self, open_share: float = 0.5) -> int:
        if self.own_ids and self.rng.random() < 0.1:
            return self.rng.choice(self.own_ids)
        if self.rng.random() < open_share:
            return self.rng.choice(Plan.open_ids)
        return self.rng.randint(1, Plan.max_id)

    # -------------------------------------------------------- the mix

    @task(MIX["list"])
    def list_requests(self) -> None:
        """Filters, sorts, the rare-word and #id searches, and next pages by the page's own link."""
        if self.next_link and self.rng.random() < 0.3:
            url, name, target = self.next_link, "list: next page", "request-table"
        else:
            r = self.rng.random()
            params: dict[str, Any] = {}
            if r < 0.1:
                params["q"], name = seeding.RARE_WORD, "list: search kerberos"
            elif r < 0.2:
                params["q"], name = f"#{self._some_id()}", "list: search #id"
            elif r < 0.3:
                name = "list: default"
            else:
                if self.rng.random() < 0.5:
                    params["status"] = self.rng.choice(STATUS_FILTERS)
                if self.rng.random() < 0.35:
                    params["priority"] = self.rng.choice(PRIORITIES)
                if self.rng.random() < 0.35:
                    params["category"] = self.rng.choice(Plan.categories)
                if self.rng.random() < 0.3:
                    params["assignee"] = self.rng.choice(("me", "none", str(self.rng.choice(Plan.agent_ids))))
                sort = self.rng.choice(SORTS)
                if sort != "newest":
                    params["sort"] = sort
                name = f"list: filters, sort={sort}"
            url = "/requests" + ("?" + urlencode(params) if params else "")
            target = "request-table" if self.rng.random() < 0.7 else None   # HTMX filter change, or a full page
        resp = self._page(url, name, target)
        found = NEXT_LINK.search(resp.text or "") if resp.status_code == 200 else None
        self.next_link = html.unescape(found.group(1)) if found else None

    @task(MIX["request page"])
    def request_page(self) -> None:
        """A request, open or any of the seed's."""
        self._page(f"/requests/{self._some_id()}", "request page")

    @task(MIX["poll"])
    def poll(self) -> None:
        """The admin's dashboard, a manager's /sla/breaches, an agent's open request's SLA targets (30-s polls)."""
        r = self.rng.random()
        if self.role == "admin":
            if r < 0.1:
                self._page("/dashboard", "poll: /dashboard (page)")
            elif r < 0.45:
                self._poll("/dashboard/summary", "poll: /dashboard/summary", "summary-cards")
            elif r < 0.8:
                self._poll("/dashboard/breaches", "poll: /dashboard/breaches", "breach-widget")
            elif r < 0.95:
                self._poll("/sla/breaches", "poll: /sla/breaches (poll)", "breach-table")
            else:
                self._page("/sla/breaches", "poll: /sla/breaches (page)")
        elif self.role == "manager":
            if r < 0.75:
                self._poll("/sla/breaches", "poll: /sla/breaches (poll)", "breach-table")
            elif r < 0.9:
                self._page("/sla/breaches", "poll: /sla/breaches (page)")
            else:
                days = self.rng.choice((7, 90, 365))
                self._page(f"/sla/breaches?days={days}", "poll: /sla/breaches?days=7|90|365 (page)")
        else:
            self._poll(f"/requests/{self.rng.choice(Plan.open_ids)}/sla", "poll: request SLA targets (poll)",
                       "sla-targets")

    @task(MIX["create"])
    def create(self) -> None:
        """The new-request form, then its multipart POST (303 to the new request)."""
        resp = self._page("/requests/new", "create: form")
        found = CSRF_FIELD.search(resp.text or "")
        if resp.status_code != 200 or not found:
            return
        categories = CATEGORY_OPTION.findall(resp.text) or Plan.categories
        boundary = "----bench" + secrets.token_hex(8)
        fields = {"csrf_token": html.unescape(found.group(1)),
                  "title": f"Load test: {self.rng.choice(('VPN', 'Laptop', 'Printer', 'Mailbox'))} "
                           f"{self.rng.choice(('is slow', 'does not start', 'asks for a password'))}",
                  "category": self.rng.choice([c for c in categories if c in Plan.categories] or categories),
                  "priority": self.rng.choices(PRIORITIES, (30, 45, 20, 5))[0],
                  "description": "Raised by bench/load.py: a simulated user filing a request under load."}
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                 for k, v in fields.items()]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; filename=""\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n\r\n--{boundary}--\r\n")
        resp = self._request("POST", "/requests/new", "create: submit", expect=(303,), data="".join(parts).encode(),
                             headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                                      "Referer": self.host + "/requests/new"})
        location = resp.headers.get("Location", "") if resp.headers else ""
        created = re.search(r"/requests/(\d+)$", location)
        if created:
            self.own_ids.append(int(created.group(1)))

    @task(MIX["status change"])
    def status_change(self) -> None:
        """Open the request (the form carries its version), then move it on; a 409 is another user's race."""
        request_id = self.own_ids[-1] if self.own_ids and self.rng.random() < 0.6 else self.rng.choice(Plan.open_ids)
        resp = self._page(f"/requests/{request_id}", "status change: page")
        if resp.status_code != 200:
            return
        version = VERSION.search(resp.text or "")
        choices = [s for s in dict.fromkeys(STATUS_BUTTON.findall(resp.text or "")) if s != "closed"] \
            or STATUS_BUTTON.findall(resp.text or "")
        if not version or not choices:
            return
        status = choices[0] if self.rng.random() < 0.7 else self.rng.choice(choices)
        self._request("POST", f"/requests/{request_id}/status", "status change: submit", expect=(200, 409),
                      data=urlencode({"csrf_token": self.csrf, "version": version.group(1), "status": status}),
                      headers={"Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true",
                               "X-CSRFToken": self.csrf, "HX-Current-URL": f"{self.host}/requests/{request_id}",
                               "Referer": f"{self.host}/requests/{request_id}"})

    @task(MIX["api"])
    def api(self) -> None:
        """The JSON API with the user's token: list with filters, one request, SLA statistics, admin summary."""
        r = self.rng.random()
        rank = {"agent": 0, "manager": 1, "admin": 2}[self.role]
        if r < 0.45 - 0.1 * rank:
            params: dict[str, Any] = {"sort": self.rng.choice(SORTS), "page": self.rng.randint(1, 3)}
            if self.rng.random() < 0.5:
                params["status"] = self.rng.choice(STATUS_FILTERS)
            if self.rng.random() < 0.3:
                params["priority"] = self.rng.choice(PRIORITIES)
            self._api("/api/v1/service-requests?" + urlencode(params), "api: GET /api/v1/service-requests")
        elif r < 0.85 - 0.15 * rank or rank == 0:
            self._api(f"/api/v1/service-requests/{self._some_id()}", "api: GET /api/v1/service-requests/<id>")
        elif r < 0.85 or rank == 1:
            self._api("/api/v1/analytics/sla-statistics?days=30", "api: GET /api/v1/analytics/sla-statistics")
        else:
            self._api("/api/dashboard/admin/summary", "api: GET /api/dashboard/admin/summary")


# ---------------------------------------------------------------- the machine

def process_cpu() -> dict[int, tuple[str, float]]:
    """(what it is, CPU seconds) of every process: to say what else used the shared cores."""
    out = {}
    for proc in psutil.process_iter(["cmdline", "name", "cpu_times"]):
        try:
            cmd = proc.info["cmdline"] or [proc.info["name"] or "?"]
            times = proc.info["cpu_times"]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if times is None:
            continue
        line = " ".join(cmd)
        if line.startswith("postgres: "):
            parts = line.split()
            label = f"postgres ({parts[2]})" if len(parts) > 3 else "postgres (server)"
        elif "pytest" in line:
            label = "pytest"
        elif "-m" in cmd[:-1]:
            label = f"python -m {cmd[cmd.index('-m') + 1]}"
        else:
            label = Path(cmd[0]).name or "?"
        out[proc.pid] = (label, times.user + times.system)
    return out


def busiest_others(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], exclude: set[int],
                   seconds: float) -> str:
    """The other programs that used the most CPU between two snapshots (share of one core)."""
    used: Counter[str] = Counter()
    for pid, (label, total) in after.items():
        if pid in exclude:
            continue
        used[label] += total - before.get(pid, (label, 0.0))[1]
    top = [(label, t) for label, t in used.most_common(6) if t / seconds >= 0.02]
    return ", ".join(f"{label} {t / seconds:.0%}" for label, t in top) or "nothing much"


# ---------------------------------------------------------------- a phase

def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q from 0 to 100)."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(len(ordered) * q / 100) - 1))]


def run_phase(server: Server, info: dict[str, Any], users: int, args: argparse.Namespace) -> dict[str, Any]:
    """Start `users` users, wait for their sign-ins, warm up, measure for --duration seconds, stop."""
    global RECORDER
    RECORDER = Recorder()
    Plan.reset(info, args.seed + users)
    PortalUser.host = server.url
    PortalUser.wait_time = between(0, args.wait) if args.wait else constant(0)
    env = Environment(user_classes=[PortalUser], events=events, host=server.url)
    runner = env.create_local_runner()
    log(f"\n== {users} user{'s' if users != 1 else ''}: signing in")
    started = time.monotonic()
    runner.start(users, spawn_rate=args.spawn_rate)
    while Plan.ready + len(Plan.setup_failures) < users:
        if time.monotonic() - started > 120:
            break
        gevent.sleep(0.2)
    if Plan.setup_failures or Plan.ready < users:
        runner.quit()
        sys.exit("some users could not sign in:\n  " + "\n  ".join(Plan.setup_failures or ["timed out"])
                 + "\n" + server.tail())
    log(f"all {users} signed in after {time.monotonic() - started:.1f} s; warming up {args.warmup:.0f} s")
    gevent.sleep(args.warmup)
    me = psutil.Process()
    cpu0 = (server.cpu_seconds(), sum(me.cpu_times()[:2]), psutil.cpu_times(), server.postgres_cpu(), process_cpu())
    load0 = os.getloadavg()
    wall0 = time.time()
    t0 = time.perf_counter()
    Plan.measuring = True
    profilers = start_profiles(server, args.duration) if args.profile and not Server.profiled else []
    log(f"measuring {args.duration:.0f} s")
    next_report = 10.0
    while (elapsed := time.perf_counter() - t0) < args.duration:
        gevent.sleep(min(0.5, args.duration - elapsed))
        if elapsed >= next_report:
            done = sum(len(s) for s in RECORDER.samples.values())
            log(f"  {elapsed:4.0f} s: {done:,} requests ({done / elapsed:.0f}/s), "
                f"{sum(RECORDER.errors.values())} errors")
            next_report += 10
    Plan.measuring = False
    measured = time.perf_counter() - t0
    wall1 = time.time()
    total_now = psutil.cpu_times()
    postgres_now = server.postgres_cpu()
    ours = {me.pid, *(p.pid for p in server.processes()), *postgres_now}
    others = busiest_others(cpu0[4], process_cpu(), ours, measured)
    cpu = {
        "server": server.cpu_seconds() - cpu0[0],
        "postgres": sum(t - cpu0[3].get(pid, 0.0) for pid, t in postgres_now.items()),
        "generator": sum(me.cpu_times()[:2]) - cpu0[1],
        "busy": sum(getattr(total_now, f) - getattr(cpu0[2], f) for f in ("user", "system", "nice", "irq", "softirq")),
        "capacity": measured * (os.cpu_count() or 1),
        "others": others,
    }
    load1 = os.getloadavg()
    runner.quit()
    revoke_tokens(server.url, Plan.tokens)
    recorder = RECORDER
    server_ms = server.server_durations(wall0, wall1)
    return {"users": users, "seconds": measured, "recorder": recorder, "cpu": cpu, "load": (load0, load1),
            "exceptions": [f"{e['msg']} ({e['count']}x)" for e in runner.exceptions.values()],
            "server_ms": server_ms, "profile": finish_profiles(profilers)}


# ---------------------------------------------------------------- where the workers' CPU goes (--profile)

# The innermost frame of a sample that matches one of these (file path fragments) names its area.
PROFILE_AREAS = (
    ("psycopg2/", "psycopg2 (sending statements, reading rows)"),
    ("jinja2/", "Jinja2 (rendering templates)"), ("templates/", "Jinja2 (rendering templates)"),
    ("sqlalchemy/", "SQLAlchemy (building statements, loading rows)"),
    ("logging/", "logging (JSON log lines)"), ("pythonjsonlogger/", "logging (JSON log lines)"),
    ("flask_wtf/", "Flask-WTF (forms, CSRF)"), ("wtforms/", "Flask-WTF (forms, CSRF)"),
    ("flask_login/", "Flask-Login"), ("flask_limiter/", "Flask-Limiter"), ("limits/", "Flask-Limiter"),
    ("prometheus_client/", "prometheus_client (metrics)"),
    ("prometheus_flask_exporter/", "prometheus_client (metrics)"),
    ("redis/", "redis-py"), ("werkzeug/", "Werkzeug"), ("flask/", "Flask"), ("gunicorn/", "gunicorn"),
    ("argon2/", "argon2 (passwords)"), ("portal/", "the portal's own code"), ("json/", "json"),
)


def _in(frame: str, place: str) -> bool:
    """Whether a py-spy frame ("name (path/file.py:line)", paths relative to sys.path) lies under `place`."""
    return f"({place}" in frame or f"/{place}" in frame


def start_profiles(server: Server, seconds: float) -> list[tuple[subprocess.Popen, Path]]:
    """py-spy record (raw stacks, on-CPU samples only, without pausing the worker) of every gunicorn worker."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        sys.exit("--profile needs py-spy (requirements-dev.txt: make bench-load installs it)")
    Server.profiled = True
    started = []
    for proc in server.processes()[1:]:
        out = server.workdir / f"py-spy-{proc.pid}.txt"
        started.append((subprocess.Popen(
            [py_spy, "record", "--pid", str(proc.pid), "--duration", str(max(1, round(seconds))), "--rate", "100",
             "--nonblocking", "--function", "--format", "raw", "--output", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), out))
    log(f"profiling {len(started)} workers with py-spy (100 samples/s, on-CPU only)")
    return started


def finish_profiles(profilers: list[tuple[subprocess.Popen, Path]]) -> dict[str, Any] | None:
    """The samples of every worker by area (innermost recognised frame) and the portal's busiest functions."""
    if not profilers:
        return None
    areas: Counter[str] = Counter()
    portal: Counter[str] = Counter()
    total = 0
    for proc, out in profilers:
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if not out.exists():
            log(f"py-spy wrote nothing for {out.name}: {err.decode(errors='replace')[-300:]}")
            continue
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = stack.split(";")
            areas[next((name for frame in reversed(frames) for key, name in PROFILE_AREAS if _in(frame, key)),
                       "other (Python, the standard library)")] += n
            for frame in dict.fromkeys(f for f in frames if _in(f, "portal/") or _in(f, "templates/")):
                portal[re.sub(r" \(\S*?/?(portal|templates)/", r" (\1/", frame)] += n
    return {"total": total, "areas": areas, "portal": portal}


def profile_lines(profile: dict[str, Any] | None) -> list[str]:
    """The profile as Markdown list items."""
    if not profile or not profile["total"]:
        return []
    total = profile["total"]
    lines = [f"Where the gunicorn workers' CPU went (py-spy, {total:,} samples it judged running, of the measured "
             "window; part of the wait inside psycopg2's C code counts as running; each sample counted once, in "
             "the innermost library it was in):", ""]
    lines += [f"- {name}: {n / total:.0%}" for name, n in profile["areas"].most_common() if n / total >= 0.01]
    lines += ["", "The portal's functions and templates with the most samples under them (inclusive):", ""]
    lines += [f"- {n / total:.0%} `{frame}`" for frame, n in profile["portal"].most_common(15)]
    return lines


def revoke_tokens(base_url: str, tokens: list[str]) -> None:
    """Sign the users out of the API (DELETE /api/v1/auth/token): accounts hold at most 20 live tokens."""
    for token in tokens:
        request = urllib.request.Request(base_url + "/api/v1/auth/token", method="DELETE",
                                         headers={"Authorization": f"Bearer {token}"})
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except OSError:
            pass


# ---------------------------------------------------------------- report

def kind_of(name: str) -> str:
    return name.split(":", 1)[0]


def summarise(phase: dict[str, Any]) -> dict[str, Any]:
    """Rows per kind and per page: count, rps, p50/p95/p99/max, errors, 409s."""
    rec: Recorder = phase["recorder"]
    seconds = phase["seconds"]

    def row(label: str, names: list[str]) -> dict[str, Any]:
        samples = [t for n in names for t in rec.samples[n]]
        return {"label": label, "count": len(samples), "rps": len(samples) / seconds,
                "p50": percentile(samples, 50), "p95": percentile(samples, 95), "p99": percentile(samples, 99),
                "max": max(samples) if samples else float("nan"),
                "errors": sum(rec.errors[n] for n in names), "conflicts": sum(rec.conflicts[n] for n in names)}

    names = sorted(rec.samples, key=lambda n: (list(MIX).index(kind_of(n)), n))
    kinds = [row(kind, [n for n in names if kind_of(n) == kind]) for kind in MIX]
    pages = [row(n, [n]) for n in names]
    total = row("all", names)
    setup = {n: (len(t), percentile(t, 50), max(t)) for n, t in rec.setup.items()}
    return {"kinds": kinds, "pages": pages, "total": total, "setup": setup}


def fmt(value: float) -> str:
    return "-" if value != value else f"{value:,.1f}"


def phase_lines(phase: dict[str, Any], summary: dict[str, Any], aim_p95: float, markdown: bool) -> list[str]:
    """The tables of one phase (Markdown for RESULTS.md, plain for stdout)."""
    lines: list[str] = []
    head = ["kind / page", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "409", "p95 aim"]

    def table_row(r: dict[str, Any], title: str) -> list[str]:
        met = "-" if not r["count"] else ("met" if r["p95"] < aim_p95 else "**missed**" if markdown else "MISSED")
        return [title, f"{r['count']:,}", f"{r['rps']:.1f}", fmt(r["p50"]), fmt(r["p95"]), fmt(r["p99"]),
                fmt(r["max"]), str(r["errors"]), str(r["conflicts"]), met]

    rows = [table_row(k, KIND_TITLES[k["label"]]) for k in summary["kinds"]]
    rows.append(table_row(summary["total"], "all"))
    page_rows = [table_row(p, p["label"]) for p in summary["pages"]]
    routes = sorted(phase["server_ms"].items(), key=lambda item: -percentile(item[1], 95))
    route_head = ["route (the portal's own time)", "requests", "p50 ms", "p95 ms", "p99 ms"]
    route_rows = [[route, f"{len(t):,}", fmt(percentile(t, 50)), fmt(percentile(t, 95)), fmt(percentile(t, 99))]
                  for route, t in routes]
    if markdown:
        lines += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * 8 + "---|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        lines += ["", "Per page:", "", "| " + " | ".join(["page", *head[1:]]) + " |", "|---|" + "---:|" * 8 + "---|"]
        lines += ["| " + " | ".join(r) + " |" for r in page_rows]
        if route_rows:
            lines += ["", "Time inside the portal per route (its http_request log lines; the difference to the "
                      "times above is the wait for a free worker and the client):", "",
                      "| " + " | ".join(route_head) + " |", "|---|" + "---:|" * 4]
            lines += ["| " + " | ".join(r) + " |" for r in route_rows]
    else:
        widths = [max(len(r[i]) for r in [head, *rows, *page_rows]) for i in range(len(head))]

        def plain(r: list[str]) -> str:
            return "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))

        lines += [plain(head), *map(plain, rows), "", *map(plain, page_rows)]
        if route_rows:
            rw = [max(len(r[i]) for r in [route_head, *route_rows]) for i in range(len(route_head))]
            lines += [""] + ["  ".join(c.ljust(rw[0]) if i == 0 else c.rjust(rw[i]) for i, c in enumerate(r))
                             for r in [route_head, *route_rows]]
    return lines


def phase_notes(phase: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    cpu, (load0, load1) = phase["cpu"], phase["load"]
    rec: Recorder = phase["recorder"]
    server_ms = phase["server_ms"]
    notes = [
        f"measured {phase['seconds']:.1f} s; {summary['total']['count']:,} requests, "
        f"{summary['total']['rps']:.1f} req/s; errors {summary['total']['errors']}, 409 conflicts (expected races "
        f"of the status change) {summary['total']['conflicts']}",
        f"CPU over the window: {cpu['busy'] / cpu['capacity']:.0%} of {os.cpu_count()} cores busy; gunicorn "
        f"{cpu['server'] / cpu['capacity']:.0%}, the load generator (locust, this process) "
        f"{cpu['generator'] / cpu['capacity']:.0%}, PostgreSQL for the bench database "
        f"{cpu['postgres'] / cpu['capacity']:.0%}, everything else on the machine "
        f"{max(0.0, cpu['busy'] - cpu['server'] - cpu['generator'] - cpu['postgres']) / cpu['capacity']:.0%} "
        f"(in shares of one core: {cpu['others']})",
        f"load average (1/5 min): {load0[0]:.2f}/{load0[1]:.2f} before, {load1[0]:.2f}/{load1[1]:.2f} after",
    ]
    count = summary["total"]["count"]
    if count:
        app, db, gen = (cpu[k] * 1000 / count for k in ("server", "postgres", "generator"))
        notes.append(f"CPU per request (independent of how busy the machine was): gunicorn {app:.1f} ms, PostgreSQL "
                     f"{db:.1f} ms, load generator {gen:.1f} ms; so {os.cpu_count()} cores to themselves would "
                     f"serve at most about {os.cpu_count() * 1000 / (app + db + gen):.0f} req/s of this mix "
                     f"({os.cpu_count() * 1000 / (app + db):.0f} without the load generator)")
    every = [t for times in server_ms.values() for t in times]
    if every:
        notes.append(f"the portal's own time per request (its http_request log lines' duration_ms: inside the "
                     f"worker, without the wait for a free worker): p50 {percentile(every, 50):.1f} ms, p95 "
                     f"{percentile(every, 95):.1f} ms, p99 {percentile(every, 99):.1f} ms over {len(every):,} requests")
    setup = "; ".join(f"{n[7:]} {c}x median {p50:.0f} ms max {mx:.0f} ms"
                      for n, (c, p50, mx) in summary["setup"].items())
    notes.append(f"sign-in before measuring (not counted): {setup}")
    for message, count in rec.messages.most_common(8):
        notes.append(f"error: {message} ({count}x)")
    notes += [f"task exception: {e}" for e in phase["exceptions"][:5]]
    return notes


def verdict(phases: dict[str, dict[str, Any]], summaries: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    if "users" in phases:
        s = summaries["users"]
        users = phases["users"]["users"]
        out.append(f"{users} users: {s['total']['rps']:.0f} req/s (aim {AIM_RPS:.0f}: "
                   f"{'met' if s['total']['rps'] >= AIM_RPS else 'missed'}); errors {s['total']['errors']} "
                   f"(aim 0: {'met' if not s['total']['errors'] else 'missed'}); p95 under {AIM_P95_MS:.0f} ms: "
                   + pages_verdict(s["pages"], AIM_P95_MS))
    if "single" in phases:
        s = summaries["single"]
        out.append(f"1 user: {s['total']['rps']:.0f} req/s, errors {s['total']['errors']}; p95 under "
                   f"{AIM_SINGLE_P95_MS:.0f} ms: " + pages_verdict(s["pages"], AIM_SINGLE_P95_MS))
    return out


def pages_verdict(pages: list[dict[str, Any]], aim: float) -> str:
    """Which pages miss the p95 aim (or, when most do, which meet it)."""
    slow = [p["label"] for p in pages if p["p95"] >= aim]
    fast = [p["label"] for p in pages if p["p95"] < aim]
    if not slow:
        return f"met by every page ({len(pages)})"
    if not fast:
        return f"missed by every page ({len(pages)})"
    if len(slow) > len(fast):
        return f"missed by {len(slow)} of {len(pages)} pages; met only by " + ", ".join(fast)
    return f"missed by {len(slow)} of {len(pages)} pages: " + ", ".join(slow)


def memory_line(server: Server) -> str:
    hwm = max(server.hwm.values()) if server.hwm else 0
    return (f"gunicorn master + {server.peak['processes'] - 1} workers: peak RSS {server.peak['rss'] / 2**20:,.0f} MiB "
            f"summed (PSS {server.peak['pss'] / 2**20:,.0f} MiB), sampled every 0.5 s; largest single process "
            f"VmHWM {hwm / 2**20:,.0f} MiB")


def phases_title(phases: dict[str, dict[str, Any]]) -> str:
    return " then ".join(f"{p['users']} user{'s' if p['users'] != 1 else ''}" for p in phases.values())


def write_results(path: Path, key: str, context: dict[str, Any], phases: dict[str, dict[str, Any]],
                  summaries: dict[str, dict[str, Any]]) -> None:
    begin, end = f"<!-- BEGIN load {key} -->", f"<!-- END load {key} -->"
    m, info, server = context["machine"], context["info"], context["server"]
    lines = [
        begin,
        f"### Load test at {info['meta'].get('requests'):,} seeded requests, {phases_title(phases)}, "
        f"{server.workers} worker{'s' if server.workers != 1 else ''}"
        f"{f' x {server.threads} threads' if server.threads > 1 else ''} — `bench/load.py` (written by the script)",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}",
        f"- Command: `{context['command']}`",
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, shared with other work; "
        f"PostgreSQL {m['server_version']} (shared_buffers {m['shared_buffers']}, work_mem {m['work_mem']}, "
        f"jit {m['jit']}, synchronous_commit {m['synchronous_commit']}); Python {m['python']}; "
        f"locust {locust.__version__} (FastHttpUser) on the same machine",
        f"- Database: {context['where']}, {info['size']}, {info['request_count']:,} requests (seeded "
        f"{info['meta'].get('requests'):,} for `now` = {info['meta'].get('now')}, "
        f"{'with' if info['meta'].get('extras') else 'without'} comments and audit rows)",
        f"- Server: `{server.display_command()}`; sync workers"
        f"{'' if server.threads == 1 else f', gthread with {server.threads} threads'}, APP_ENV=production, "
        f"logs to stdout and files, Redis {context['redis']}; TOKEN_MINT_RATE_LIMIT raised to {TOKEN_MINT_RATE_LIMIT} "
        "(all users mint from 127.0.0.1); no other rate limit applies to these pages",
        f"- Memory: {memory_line(server)}",
        f"- Mix (actions): {', '.join(f'{KIND_TITLES[k]} {w}%' for k, w in MIX.items())}; no think time"
        + (f" (0-{context['wait']} s)" if context["wait"] else "") + f"; warm-up {context['warmup']:.0f} s "
        "after sign-in, not counted. Users: the admin (dashboard), managers (/sla/breaches, SLA statistics) "
        "and agents (their open request's SLA-targets poll) in the order admin, manager, agent, manager, agent...; "
        "the single user is the admin.",
        "",
        "Verdict against issue #11's aims:",
        "",
        *[f"- {line}" for line in verdict(phases, summaries)],
    ]
    for key_name, title in (("users", f"{phases.get('users', {}).get('users', '?')} concurrent users"),
                            ("single", "1 user")):
        if key_name not in phases:
            continue
        aim = AIM_P95_MS if key_name == "users" else AIM_SINGLE_P95_MS
        lines += ["", f"#### {title}", ""]
        lines += phase_lines(phases[key_name], summaries[key_name], aim, markdown=True)
        lines += [""] + [f"- {note}" for note in phase_notes(phases[key_name], summaries[key_name])]
        if phases[key_name].get("profile"):
            lines += ["", *profile_lines(phases[key_name]["profile"])]
    if context["app_errors"]:
        lines += ["", "The portal logged errors:", "", "```", *context["app_errors"][:8], "```"]
    lines += ["", end]
    sla_check.replace_section(path, begin, end, "\n".join(lines))


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.chdir(ROOT)
    os.environ.setdefault("TZ", "UTC")
    from portal import embedded

    database_url, where = seeding.bench_database_url(args.database_url)
    log(f"database: {where}")
    flush_redis = not args.redis_url
    redis_url = args.redis_url or embedded.ensure_redis(ROOT / "instance") + f"?db={REDIS_DB}"
    if flush_redis:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    phases_wanted = ([] if args.only_single else ["users"]) + ([] if args.only_users else ["single"])
    info = prepare_database(database_url, redis_url, max(args.users, 1))
    server = Server(args, database_url, redis_url)
    log(f"starting {server.display_command()} (in {server.workdir})")
    server.start()
    phases: dict[str, dict[str, Any]] = {}
    try:
        for phase in phases_wanted:
            phases[phase] = run_phase(server, info, args.users if phase == "users" else 1, args)
    finally:
        server.stop()
        if flush_redis:
            import redis

            redis.Redis.from_url(redis_url).flushdb()
    summaries = {name: summarise(p) for name, p in phases.items()}
    app_errors = server.app_errors()
    log("")
    for name, phase in phases.items():
        aim = AIM_P95_MS if name == "users" else AIM_SINGLE_P95_MS
        log(f"== {phase['users']} user{'s' if phase['users'] != 1 else ''} ({phase['seconds']:.0f} s measured; "
            f"p95 aim {aim:.0f} ms)")
        for line in phase_lines(phase, summaries[name], aim, markdown=False):
            log(line)
        for note in phase_notes(phase, summaries[name]):
            log(f"  {note}")
        for line in profile_lines(phase.get("profile")):
            log(f"  {line}")
        log("")
    log(f"memory: {memory_line(server)}")
    log(f"database: {where}, {info['size']}, {info['request_count']:,} requests; server: {server.display_command()}")
    log(f"note: TOKEN_MINT_RATE_LIMIT was raised to {TOKEN_MINT_RATE_LIMIT} for this server (every user mints its "
        "token from 127.0.0.1); no other limit was changed")
    for line in verdict(phases, summaries):
        log(f"verdict: {line}")
    if app_errors:
        log("the portal logged errors:\n  " + "\n  ".join(app_errors[:8]))
        log(f"server log kept in {server.log_path}")
    else:
        shutil.rmtree(server.workdir, ignore_errors=True)
    if not args.no_results:
        command = ".venv/bin/python bench/load.py" + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "")
        key = (f"requests={info['meta'].get('requests')} phases={'+'.join(str(p['users']) for p in phases.values())} "
               f"workers={server.workers} threads={server.threads}")
        write_results(args.results, key, {
            "machine": info["machine"], "info": info, "server": server, "command": command, "where": where,
            "redis": "database 8 of the embedded Redis" if flush_redis else seeding.redact(redis_url),
            "wait": args.wait, "warmup": args.warmup, "app_errors": app_errors,
        }, phases, summaries)
        log(f"results written to {args.results}")


if __name__ == "__main__":
    main()
