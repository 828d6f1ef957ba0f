"""Prometheus metrics: their definitions, what feeds them, and `GET /metrics`.

Three kinds of figures, each kept where it stays right with many processes:
- counted in this process (HTTP requests and durations, errors, sign-in failures, requests raised
  and completed, the connection pool): prometheus_client metrics. With several processes
  (gunicorn workers) set PROMETHEUS_MULTIPROC_DIR: each process writes its own files there and
  `/metrics` adds them up; the directory must exist before this module is imported (it is created
  here) and must be emptied before the processes start (`make run` does; see the README).
- counted in Redis by whichever process saw them (jobs: `services/job_metrics.py`; SLA breaches:
  here, after the commit that recorded them), so the RQ work horses leave no per-process files:
  published at scrape time.
- read at scrape time (open requests, queue depths, live workers, scheduler, the last SLA check,
  the last verified backup), cheap reads whose answer is the current state.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
if MULTIPROC_DIR:  # prometheus_client reads the variable when it is first imported, just below
    os.makedirs(MULTIPROC_DIR, exist_ok=True)

from prometheus_client import (  # noqa: E402 - the directory must exist first
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import (  # noqa: E402
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

log = logging.getLogger(__name__)

UNMATCHED = "unmatched"  # the endpoint label of a path that matched no route (never the raw path)
ACTIVE_STATUSES = ("open", "in_progress", "waiting_on_customer")
COMPLETED_STATUS = "resolved"
SLA_BREACHES_KEY = "portal:metrics:sla_breaches"  # Redis hash "category|priority|breach_type" -> count
BACKUP_FAILURES_KEY = "portal:metrics:backup"      # Redis hash "verify_failures" -> count
AUTH_METHODS = ("password", "2fa", "token")
DEFAULT_ALLOW = "127.0.0.0/8,::1"  # loopback only

# ---------------------------------------------------------------- counted in this process

HTTP_REQUESTS = Counter("app_requests_total", "HTTP requests answered, by route rule and status.",
                        ["method", "endpoint", "status"])
HTTP_DURATION = Histogram("app_request_duration_seconds", "Time to answer an HTTP request, by route rule.",
                          ["method", "endpoint"])
REQUESTS_CREATED = Counter("service_requests_created_total", "Service requests raised.", ["category", "priority"])
REQUESTS_COMPLETED = Counter("service_requests_completed_total", "Service requests moved to resolved.",
                             ["category", "priority"])
RESOLUTION_TIME = Histogram("service_request_resolution_seconds", "Time from raising a request to resolving it.",
                            ["category", "priority"],
                            buckets=[h * 3600 for h in (1, 2, 4, 8, 24, 48, 72, 120, 168, 336, 720)] + [float("inf")])
APP_ERRORS = Counter("app_errors_total", "5xx answers and unhandled exceptions.", ["error_type", "severity"])
AUTH_FAILURES = Counter("auth_failures_total", "Failed sign-ins (password, 2fa) and refused API tokens.",
                        ["method", "reason"])
# Per process, added up over the live processes: the web workers' pools together.
POOL_SIZE = Gauge("db_pool_size", "Connections the SQLAlchemy pools keep (pool_size).",
                  multiprocess_mode="livesum")
POOL_CHECKED_OUT = Gauge("db_pool_checked_out", "Pooled connections in use now.", multiprocess_mode="livesum")
POOL_OVERFLOW = Gauge("db_pool_overflow", "Connections open beyond pool_size now (max_overflow).",
                      multiprocess_mode="livesum")


def multiprocess_mode() -> bool:
    """True when the process counts into PROMETHEUS_MULTIPROC_DIR (gunicorn, the workers)."""
    return MULTIPROC_DIR is not None


# ---------------------------------------------------------------- the hooks the rest of the portal calls

def count_auth_failure(method: str, reason: str) -> None:
    """One refused sign-in or token: method `password`, `2fa` or `token`; reason a short fixed word."""
    AUTH_FAILURES.labels(method, reason).inc()


def count_error(exc: BaseException | None = None, error_type: str | None = None) -> None:
    """Count an unhandled exception (or a 5xx answer) once per request; the error handlers call this."""
    from flask import g, has_request_context

    if has_request_context():
        if g.get("_metrics_error_counted"):
            return
        g._metrics_error_counted = True
    kind, severity = error_type or _error_type(exc), "error"
    if kind == "database_unavailable":
        severity = "critical"
    APP_ERRORS.labels(kind, severity).inc()


def _error_type(exc: BaseException | None) -> str:
    from redis.exceptions import RedisError
    from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, SQLAlchemyError

    if isinstance(exc, (OperationalError, InterfaceError)):
        return "database_unavailable"
    if isinstance(exc, IntegrityError):
        return "integrity_error"
    if isinstance(exc, SQLAlchemyError):
        return "database_error"
    if isinstance(exc, RedisError):
        return "redis_error"
    return "unhandled_exception"


def record_sla_breaches(pairs: Iterable[tuple[int, str]]) -> None:
    """Breaches just written in the current transaction, as (request id, target); counted after it commits.

    Counted in Redis (not in this process): the checks run in short-lived work horses. One small
    GROUP BY per target finds the labels, however many requests one check breaches.
    """
    from sqlalchemy import text

    from portal.extensions import db

    by_target: dict[str, list[int]] = {}
    for request_id, target in pairs:
        by_target.setdefault(target, []).append(request_id)
    pending = _pending(db.session()) if by_target else None
    for target, ids in by_target.items():
        rows = db.session.execute(text(
            "SELECT category, priority, count(*) FROM service_request WHERE id = ANY(:ids) GROUP BY 1, 2"),
            {"ids": ids})
        for category, priority, count in rows:
            pending.append(("breach", category, priority, target, count))


# ---------------------------------------------------------------- request counting from the ORM

_PENDING = "metrics_pending"


def _pending(session) -> list:
    return session.info.setdefault(_PENDING, [])


def _after_flush(session, flush_context) -> None:
    """Note requests raised and resolved (and ORM-recorded breaches); they count once committed."""
    from sqlalchemy import inspect

    from portal.models import ServiceRequest, SlaMetric

    pending = None
    for obj in session.new:
        if isinstance(obj, ServiceRequest):
            pending = pending if pending is not None else _pending(session)
            pending.append(("created", obj.category, obj.priority, None, 1))
    for obj in session.dirty:
        if isinstance(obj, ServiceRequest):
            history = inspect(obj).attrs.status.history
            if COMPLETED_STATUS in (history.added or ()) and COMPLETED_STATUS not in (history.deleted or ()):
                pending = pending if pending is not None else _pending(session)
                took = None
                if obj.resolved_at and obj.created_at:
                    took = (obj.resolved_at - obj.created_at).total_seconds()
                pending.append(("completed", obj.category, obj.priority, took, 1))
        elif isinstance(obj, SlaMetric):
            for target in ("response", "resolution"):
                history = inspect(obj).attrs[f"{target}_breached_at"].history
                if history.added and history.added[0] is not None and not any(history.deleted or ()):
                    req = session.identity_map.get(inspect(ServiceRequest).identity_key_from_primary_key(
                        (obj.request_id,)))
                    category, priority = (req.category, req.priority) if req is not None else ("unknown", "unknown")
                    pending = pending if pending is not None else _pending(session)
                    pending.append(("breach", category, priority, target, 1))


def _after_commit(session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    breaches: dict[str, int] = {}
    for kind, category, priority, detail, amount in pending:
        if kind == "created":
            REQUESTS_CREATED.labels(category, priority).inc(amount)
        elif kind == "completed":
            REQUESTS_COMPLETED.labels(category, priority).inc(amount)
            if detail is not None:  # seconds from raising to resolving
                RESOLUTION_TIME.labels(category, priority).observe(max(detail, 0.0))
        else:  # detail: the breached target
            field = f"{category}|{priority}|{detail}"
            breaches[field] = breaches.get(field, 0) + amount
    if breaches:
        _count_in_redis(SLA_BREACHES_KEY, breaches)


def _after_rollback(session, previous_transaction) -> None:
    """The whole transaction rolled back: what it noted never happened (a savepoint's rollback is not that)."""
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)


def count_backup_verify_failure() -> None:
    """A backup read back wrong (or not at all); counted in Redis, as the backup job runs in a work horse."""
    _count_in_redis(BACKUP_FAILURES_KEY, {"verify_failures": 1})


def _count_in_redis(key: str, increments: dict[str, int]) -> None:
    from redis.exceptions import RedisError

    try:
        with _scrape_redis().pipeline(transaction=True) as pipe:
            for field, amount in increments.items():
                pipe.hincrby(key, field, amount)
            pipe.execute()
    except RedisError as exc:
        log.warning("could not count %s in Redis (%s): %s", key, exc, increments)
    except RuntimeError:  # no app context: nowhere to count
        log.warning("could not count %s outside the app: %s", key, increments)


_listening = False


def _listen_to_sessions() -> None:
    """Once per process: the ORM events that count requests raised and resolved, after commit."""
    global _listening
    if _listening:
        return
    from flask_sqlalchemy.session import Session
    from sqlalchemy import event

    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_soft_rollback", _after_rollback)
    _listening = True


# ---------------------------------------------------------------- the connection pool

_pool_watched: set[tuple[int, int]] = set()


def _pool_figures(pool) -> None:
    """This process's pool now (QueuePool; other pools have no such figures)."""
    try:
        POOL_SIZE.set(pool.size())
        POOL_CHECKED_OUT.set(pool.checkedout())
        POOL_OVERFLOW.set(max(pool.overflow(), 0))
    except AttributeError:
        pass


def _watch_pool(engine) -> None:
    """Follow this process's pool from its events; done on a web process's first request, so the
    RQ work horses (one process per job) never write a file of their own."""
    key = (os.getpid(), id(engine))
    if key in _pool_watched:
        return
    from sqlalchemy import event

    pool = engine.pool
    event.listen(pool, "checkout", lambda *args: _pool_figures(pool))
    event.listen(pool, "checkin", lambda *args: _pool_figures(pool))
    _pool_figures(pool)
    _pool_watched.add(key)


# ---------------------------------------------------------------- read at scrape time

def _scrape_redis():
    from portal.services.health import health_redis

    return health_redis()


class PortalCollector:
    """What is read when Prometheus scrapes: jobs and breaches from Redis, open requests from the database."""

    def collect(self) -> Iterator:
        """Each source on its own: one that is down leaves out its figures, never the whole answer."""
        up = GaugeMetricFamily("metrics_source_up", "1 when /metrics could read this source.", labels=["source"])
        for source, reader in (("redis", self._from_redis), ("database", self._from_database)):
            try:
                families = list(reader())
            except Exception as exc:  # noqa: BLE001 - a source down is reported as such
                log.warning("metrics: could not read %s: %s", source, exc)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield from self._from_files()
        yield up

    def _from_redis(self) -> Iterator:
        from portal.services import health
        from portal.services.jobs import job_stats

        connection = _scrape_redis()
        stats = job_stats(connection)
        runs = CounterMetricFamily("jobs_total", "Job runs by task and outcome (all workers).",
                                   labels=["task_name", "status"])
        for (task, outcome), value in sorted(stats.jobs_total.items()):
            runs.add_metric([task, outcome], value)
        yield runs
        durations = HistogramMetricFamily("job_duration_seconds", "Job run time by task (all workers).",
                                          labels=["task_name"])
        for task, histogram in sorted(stats.job_duration_seconds.items()):
            buckets = [("+Inf" if bound == float("inf") else repr(bound), count) for bound, count in histogram.buckets]
            durations.add_metric([task], buckets, histogram.sum)
        yield durations
        yield _gauge("queue_depth", "Jobs waiting on each queue.", "queue", stats.queue_depth)
        yield _gauge("dead_letter_jobs", "Jobs in each queue's failed registry (the dead letters).", "queue",
                     stats.dead_letter_jobs)
        dead = CounterMetricFamily("dead_letters_total", "Jobs that failed after their last retry, ever.",
                                   labels=["queue"])
        for queue, value in stats.dead_letters_total.items():
            dead.add_metric([queue], value)
        yield dead
        yield _gauge("workers_alive", "RQ workers with a live heartbeat serving each queue.", "queue",
                     health.live_workers(connection))
        yield GaugeMetricFamily("scheduler_up", "1 while an rq-scheduler process is alive.",
                                value=1 if health.scheduler_alive(connection) else 0)
        breaches = CounterMetricFamily("sla_breaches_total", "SLA targets breached, by the request's category "
                                       "and priority when recorded.", labels=["category", "priority", "breach_type"])
        for field, value in sorted(connection.hgetall(SLA_BREACHES_KEY).items()):
            breaches.add_metric(field.decode().split("|", 2), int(value))
        yield breaches
        failures = connection.hget(BACKUP_FAILURES_KEY, "verify_failures")
        yield CounterMetricFamily("backup_verify_failures", "Backups that did not verify (read back wrong).",
                                  value=int(failures or 0))
        yield from _redis_memory(connection)
        last = health.read_last_sla_check(connection)
        yield GaugeMetricFamily("sla_check_last_run_timestamp_seconds", "When the SLA check last ran (0: never).",
                                value=last.timestamp() if last else 0)
        yield GaugeMetricFamily("sla_check_age_seconds", "Seconds since the SLA check last ran (+Inf: never).",
                                value=(time.time() - last.timestamp()) if last else float("inf"))

    def _from_database(self) -> Iterator:
        from sqlalchemy import text

        from portal.extensions import db
        from portal.models import RequestTally
        from portal.services import request_tally
        from portal.services.backups import newest_verified

        active = GaugeMetricFamily("service_requests_active", "Requests not yet resolved, now.",
                                   labels=["category", "priority", "status"])
        try:
            db.session.execute(text("SET LOCAL statement_timeout = 2000"))  # a slow database: skip, not hang
            rows = request_tally.grouped((RequestTally.category, RequestTally.priority, RequestTally.status),
                                         [RequestTally.status.in_(ACTIVE_STATUSES)])
            backup = newest_verified()
        finally:
            db.session.rollback()  # ends the read (and the SET LOCAL) whatever happened
        for category, priority, status, count in rows:
            active.add_metric([category, priority, status], count)
        yield active
        yield GaugeMetricFamily("backup_last_success_timestamp_seconds",
                                "When the newest verified backup was verified (0: never).",
                                value=backup.verified_at.timestamp() if backup else 0)
        yield GaugeMetricFamily("backup_size_bytes", "Size of the newest verified backup file (0: none).",
                                value=(backup.size_bytes or 0) if backup else 0)
        _pool_figures(db.engine.pool)

    def _from_files(self) -> Iterator:
        from flask import current_app

        from portal import __version__

        info = GaugeMetricFamily("app_info", "The running portal.", labels=["version", "environment"])
        info.add_metric([__version__, current_app.config["APP_ENV"]], 1)
        yield info


def _redis_memory(connection) -> Iterator:
    """Redis's memory gauges, or none when INFO is refused (a hardened redis.conf may rename it away):
    only these two go missing, never the queue, job, scheduler and SLA figures read beside them."""
    from redis.exceptions import ResponseError

    try:
        memory = connection.info("memory")
    except ResponseError as exc:
        log.debug("metrics: no redis_memory_* gauges, INFO is refused: %s", exc)  # allowed: not worth a line per scrape
        return
    yield GaugeMetricFamily("redis_memory_used_bytes", "Memory Redis uses (INFO memory).",
                            value=memory.get("used_memory", 0))
    yield GaugeMetricFamily("redis_memory_max_bytes", "Redis maxmemory (0: no limit).",
                            value=memory.get("maxmemory", 0))


def _gauge(name: str, doc: str, label: str, values: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, value in values.items():
        family.add_metric([key], value)
    return family


# ---------------------------------------------------------------- processes sharing the directory

_PID_IN_NAME = re.compile(r"_(\d+)\.db$")
_PROCESS_FAMILIES = {"process_cpu_seconds_total": "counter", "process_resident_memory_bytes": "gauge",
                     "process_virtual_memory_bytes": "gauge", "process_open_fds": "gauge",
                     "process_start_time_seconds": "gauge"}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_processes(directory: str) -> list[int]:
    """Pids of the live processes writing to `directory`; the gauges of dead ones are removed first."""
    pids = set()
    for path in Path(directory).glob("gauge_live*_*.db"):
        match = _PID_IN_NAME.search(path.name)
        if match:
            pids.add(int(match.group(1)))
    alive = []
    for pid in sorted(pids):
        if _alive(pid):
            alive.append(pid)
        else:
            multiprocess.mark_process_dead(pid, directory)
    return alive


def _role(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "other"
    if "gunicorn" in cmdline:
        return "web"
    if "scheduler" in cmdline:
        return "scheduler"
    if "worker" in cmdline or "rq:" in cmdline:
        return "worker"
    return "other"


class ProcessesCollector:
    """CPU and memory of every live portal process sharing the directory, labelled by pid and role."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def collect(self) -> Iterator:
        from prometheus_client import ProcessCollector

        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for pid in live_processes(self.directory):
            role = _role(pid)
            for family in ProcessCollector(pid=lambda pid=pid: pid, registry=None).collect():
                for sample in family.samples:
                    if sample.name not in _PROCESS_FAMILIES:
                        continue
                    if sample.name not in families:
                        kind = CounterMetricFamily if _PROCESS_FAMILIES[sample.name] == "counter" else GaugeMetricFamily
                        name = sample.name.removesuffix("_total") if kind is CounterMetricFamily else sample.name
                        families[sample.name] = kind(name, family.documentation, labels=["pid", "role"])
                    families[sample.name].add_metric([str(pid), role], sample.value)
        yield from families.values()


# ---------------------------------------------------------------- GET /metrics

def metrics_text() -> bytes:
    """The whole exposition: this process (or every process of the directory) plus the scrape-time reads."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(PortalCollector())
    if multiprocess_mode():
        registry = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
        registry.register(ProcessesCollector(MULTIPROC_DIR))
        return generate_latest(registry) + generate_latest(scrape)
    return generate_latest(REGISTRY) + generate_latest(scrape)


def allowed_networks(spec: str) -> tuple:
    """METRICS_ALLOW ("127.0.0.0/8,::1") as networks; raises ValueError on a bad entry."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


_FORWARDED = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def may_read_metrics(remote_addr: str | None, headers, networks: tuple, token: str | None) -> bool:
    """The bearer token (compared in constant time), or a direct peer inside an allowed network.

    A request that passed through a proxy (it carries forwarding headers) is judged by its token
    only: behind a proxy on the same host every peer address would look like loopback.
    """
    scheme, _, given = (headers.get("Authorization") or "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    if any(headers.get(name) for name in _FORWARDED):
        return False
    try:
        address = ipaddress.ip_address((remote_addr or "").split("%", 1)[0])
    except ValueError:
        return False
    if getattr(address, "ipv4_mapped", None):
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in networks)


# ---------------------------------------------------------------- `flask metrics ...`

def host_metrics_text() -> bytes:
    """Only what the processes of this host's directory counted, and their CPU and memory.

    For a host that runs workers but no web process: the cluster-wide figures (jobs, queues,
    breaches, open requests) come from the web targets, so nothing is published twice.
    """
    registry = CollectorRegistry(auto_describe=False)
    multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
    registry.register(ProcessesCollector(MULTIPROC_DIR))
    return generate_latest(registry)


def _cli():
    import click
    from flask import current_app
    from flask.cli import AppGroup

    group = AppGroup("metrics", help="Prometheus metrics (PROMETHEUS_MULTIPROC_DIR).")

    @group.command("serve")
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
    @click.option("--port", default=9101, show_default=True, type=int)
    def serve(host: str, port: int) -> None:
        """Serve this host's process figures on /metrics, for a host with workers and no web process."""
        if not multiprocess_mode():
            raise click.ClickException("Set PROMETHEUS_MULTIPROC_DIR to the directory the workers share.")
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        from werkzeug.wrappers import Request, Response

        app = current_app._get_current_object()
        networks = allowed_networks(app.config.get("METRICS_ALLOW", DEFAULT_ALLOW))

        def answer(environ, start_response):
            request = Request(environ)
            if request.path != "/metrics":
                response = Response("Not found\n", status=404, mimetype="text/plain")
            elif not may_read_metrics(request.remote_addr, request.headers, networks, app.config.get("METRICS_TOKEN")):
                response = Response("403 Forbidden\n", status=403, mimetype="text/plain")
            else:
                response = Response(host_metrics_text(), content_type=CONTENT_TYPE_LATEST)
            return response(environ, start_response)

        class QuietHandler(WSGIRequestHandler):
            def log_message(self, *args) -> None:  # one line per scrape is noise
                pass

        click.echo(f"Serving this host's process metrics on http://{host}:{port}/metrics")
        make_server(host, port, answer, handler_class=QuietHandler).serve_forever()

    @group.command("clear")
    @click.option("--force", is_flag=True, help="Clear even while portal processes still use the directory.")
    def clear(force: bool) -> None:
        """Empty PROMETHEUS_MULTIPROC_DIR: run it before starting web and workers, never while they run."""
        if not multiprocess_mode():
            raise click.ClickException("PROMETHEUS_MULTIPROC_DIR is not set.")
        others = [pid for pid in live_processes(MULTIPROC_DIR) if pid != os.getpid()]
        if others and not force:
            raise click.ClickException(f"Processes {', '.join(map(str, others))} still count into "
                                       f"{MULTIPROC_DIR}; stop them first (or --force).")
        removed = 0
        for path in Path(MULTIPROC_DIR).glob("*.db"):
            path.unlink(missing_ok=True)
            removed += 1
        click.echo(f"Emptied {MULTIPROC_DIR} ({removed} files).")

    return group


# ---------------------------------------------------------------- wiring

_START = "portal.metrics.start"


class _Timer:
    """WSGI middleware: note when a request arrived, before any hook of the app runs."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        environ[_START] = time.perf_counter()
        return self.wsgi_app(environ, start_response)


def init_app(app) -> None:
    """Count every request, answer GET /metrics (to allowed networks or the token)."""
    from flask import Response, current_app, g, request

    networks = allowed_networks(app.config.get("METRICS_ALLOW", DEFAULT_ALLOW))
    app.wsgi_app = _Timer(app.wsgi_app)
    app.cli.add_command(_cli())
    _listen_to_sessions()

    @app.before_request
    def _watch_pool_once():
        if not g.get("_metrics_pool"):
            from portal.extensions import db

            _watch_pool(db.engine)
            g._metrics_pool = True

    @app.after_request
    def _count_request(response):
        endpoint = request.url_rule.rule if request.url_rule is not None else UNMATCHED
        status = response.status_code
        HTTP_REQUESTS.labels(request.method, endpoint, str(status)).inc()
        started = request.environ.get(_START)
        if started is not None:
            HTTP_DURATION.labels(request.method, endpoint).observe(time.perf_counter() - started)
        # A health probe's 503 is its answer, not a failure of the portal: the outage it reports has
        # alerts of its own, and load-balancer polling must not turn it into an error rate.
        if status >= 500 and request.blueprint != "health":
            count_error(error_type=f"http_{status}")
        return response

    @app.get("/metrics")
    def metrics():
        """Prometheus text format; from METRICS_ALLOW networks or with METRICS_TOKEN, else 403."""
        token = current_app.config.get("METRICS_TOKEN")
        if not may_read_metrics(request.remote_addr, request.headers, networks, token):
            return Response("403 Forbidden: /metrics answers allowed networks (METRICS_ALLOW) or the "
                            "bearer token (METRICS_TOKEN) only.\n", status=403, mimetype="text/plain")
        response = Response(metrics_text(), content_type=CONTENT_TYPE_LATEST)
        response.headers["Cache-Control"] = "no-store"
        return response
