"""Two web processes and two RQ workers on one PostgreSQL and one Redis: no job lost, none run twice.

Real processes started the way the Procfile starts them (gunicorn, `flask jobs worker`), on free
ports, with a real SMTP server; once on PostgreSQL directly, once through PgBouncer in transaction
mode. Requests are raised through the API of both web processes at once, each enqueuing a mail job
through the outbox; a manager signed in on one web process asks for CSV exports through both (the
session lives in the database, so either process knows it). Every side effect is counted: mails
received, export files written, outbox rows relayed, RQ's registries and the workers' own per-task
run counters.
"""

from __future__ import annotations

import http.cookiejar
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.deploy.helpers import stop
from tests.jobs.test_worker import ROOT, _env, _flask
from tests.polling import wait_for
from tests.scale.helpers import free_port
from tests.web.helpers import csrf_from_body, csrf_from_form

REQUESTS = 30   # each: one request row, one notification, one mail job, one mail
EXPORTS = 6     # each: one export row, one export job, one file


class Browser:
    """A cookie-keeping HTTP client (urllib): one person's browser, used against any web process."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, url: str) -> tuple[int, str, str]:
        with self.opener.open(url, timeout=30) as response:
            return response.status, response.geturl(), response.read().decode()

    def post(self, url: str, form: dict[str, str]) -> tuple[int, str, str]:
        data = urllib.parse.urlencode(form).encode()
        with self.opener.open(urllib.request.Request(url, data=data, method="POST"), timeout=30) as response:
            return response.status, response.geturl(), response.read().decode()


def _api_post(url: str, token: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own test server
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture(params=["direct", "pgbouncer"])
def database_url(request, app):
    """PostgreSQL itself, or the same database through PgBouncer in transaction mode."""
    if request.param == "direct":
        return app.config["DATABASE_URL"]
    return request.getfixturevalue("pgbouncer").url


@pytest.fixture()
def cluster(app, smtp, database_url, tmp_path):
    """Two gunicorn web processes (one worker, four threads each) and two RQ workers on one database and Redis."""
    exports = tmp_path / "exports"
    base_env = {**_env(app), "DATABASE_URL": database_url, "EXPORT_DIR": str(exports), "LOG_DIR": "",
                "LOG_STDOUT": "false", "DB_POOL_SIZE": "4", "MAIL_SERVER": "127.0.0.1",
                "MAIL_PORT": str(smtp.port), "MAIL_USE_TLS": "false", "PORTAL_URL": "https://portal.example.com"}
    processes: list[subprocess.Popen] = []

    def start(command: list[str], host: str) -> subprocess.Popen:
        metrics = tmp_path / f"prometheus-{host}"  # one multiprocess directory per "host"
        metrics.mkdir()
        proc = subprocess.Popen(command, cwd=ROOT, env={**base_env, "PROMETHEUS_MULTIPROC_DIR": str(metrics)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        processes.append(proc)
        return proc

    webs = []
    for n in (1, 2):
        port = free_port()
        proc = start([sys.executable, "-m", "gunicorn", "--no-control-socket", "--bind", f"127.0.0.1:{port}",
                      "--workers", "1", "--threads", "4", "wsgi:app"], f"web{n}")
        webs.append((f"http://127.0.0.1:{port}", proc))
    workers = [start(_flask("jobs", "worker"), f"worker{n}") for n in (1, 2)]

    def up(base: str, proc: subprocess.Popen) -> bool:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited: {proc.stderr.read()[-3000:]}")
        try:
            with urllib.request.urlopen(base + "/health/live", timeout=2) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    try:
        for base, proc in webs:
            wait_for(lambda base=base, proc=proc: up(base, proc), timeout=60, what=f"gunicorn at {base}")
        yield [base for base, _ in webs], workers, exports
    finally:
        stop(*processes)


def test_two_web_processes_and_two_workers_run_every_job_exactly_once(app, smtp, cluster):
    from rq.job import Job
    from rq.registry import FailedJobRegistry, FinishedJobRegistry

    from portal.extensions import db
    from portal.models import Export, OutboxMessage
    from portal.queueing import QUEUES, get_queue, redis_connection
    from portal.services import job_metrics, users
    from tests import factories

    webs, workers, export_dir = cluster
    with app.app_context():
        tokens = [users.issue_token(factories.make_user("requester", email=f"r{n}@example.com"))[0]
                  for n in range(REQUESTS)]
        manager = factories.make_user("manager", email="manager@example.com")
        manager_email = manager.email

    # The manager signs in on web 1; the same browser then works on web 2 (sessions live in the database).
    browser = Browser()
    _, _, page = browser.get(webs[0] + "/login")
    status, landed, _ = browser.post(webs[0] + "/login", {"email": manager_email, "password": "correct-horse-battery",
                                                          "csrf_token": csrf_from_form(page)})
    assert status == 200 and not landed.endswith("/login"), landed
    _, _, page = browser.get(webs[1] + "/requests")
    csrf = csrf_from_body(page)

    def raise_request(n: int) -> tuple[int, dict]:
        return _api_post(webs[n % 2] + "/api/v1/service-requests", tokens[n], {
            "title": f"Scale request {n:03d}", "description": "Raised by the scale-out test.",
            "category": "software", "priority": "low"})

    def export(n: int) -> str:
        _, landed, _ = browser.post(webs[n % 2] + "/exports", {"format": "csv", "csrf_token": csrf})
        return landed

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=12) as pool:
        created = pool.map(raise_request, range(REQUESTS))
        asked = pool.map(export, range(EXPORTS))
        created, asked = list(created), list(asked)
    assert [status for status, _ in created] == [201] * REQUESTS, [b for s, b in created if s != 201][:3]
    export_ids = sorted(int(url.rsplit("/", 1)[1]) for url in asked)
    assert len(set(export_ids)) == EXPORTS

    def all_done():
        with app.app_context():
            db.session.remove()
            done = db.session.scalar(db.select(db.func.count()).select_from(Export).where(Export.status == "done"))
        return len(smtp.messages) >= REQUESTS and done == EXPORTS

    wait_for(all_done, timeout=60, what="every mail and export")
    time.sleep(1)  # anything run twice would show up now
    elapsed = time.monotonic() - started

    # Mails: one per request, none twice.
    subjects = Counter(str(m["Subject"]) for m in smtp.messages)
    assert len(smtp.messages) == REQUESTS
    assert all(count == 1 for count in subjects.values()), subjects.most_common(3)
    assert sorted(m["To"] for m in smtp.messages) == sorted(f"r{n}@example.com" for n in range(REQUESTS))
    # Export files: one per export.
    assert sorted(int(p.name.split("-")[0]) for p in export_dir.glob("*.csv")) == export_ids

    connection = redis_connection(app.config["REDIS_URL"])
    with app.app_context():
        db.session.remove()
        outbox = list(db.session.scalars(db.select(OutboxMessage)))
        # Every outbox row relayed once, under its own job id.
        assert len(outbox) == REQUESTS + EXPORTS
        assert all(row.relayed_at is not None and row.job_id == f"outbox-{row.id}" for row in outbox)
        assert Counter(row.func for row in outbox) == {"jobs.email.deliver": REQUESTS,
                                                      "jobs.exports.build_export": EXPORTS}
        # RQ: each of those jobs finished; nothing failed, nothing waits.
        finished = Counter()
        for name in QUEUES:
            queue = get_queue(name, connection)
            finished.update(FinishedJobRegistry(queue=queue).get_job_ids())
            assert FailedJobRegistry(queue=queue).get_job_ids() == [], name
            assert queue.count == 0, name
        # Jobs of the kinds this test causes; a job another test on this Redis database pushed and
        # a worker of its own finished after the flush (a random id) is not ours, and is named if seen.
        funcs = {row.func for row in outbox}
        kinds = {job_id: getattr(Job.fetch(job_id, connection=connection), "func_name", None) for job_id in finished}
        ours = Counter({job_id: n for job_id, n in finished.items() if kinds[job_id] in funcs})
        assert ours == Counter(row.job_id for row in outbox), {k: v for k, v in kinds.items() if k not in ours}
        jobs = [Job.fetch(row.job_id, connection=connection) for row in outbox]
    assert {job.get_status() for job in jobs} == {"finished"}
    # The workers' own counters (every run of every job, in Redis): each job ran exactly once.
    runs = job_metrics.runs(connection)
    assert runs.get(("jobs.email.deliver", "finished")) == REQUESTS
    assert runs.get(("jobs.exports.build_export", "finished")) == EXPORTS
    assert not [key for key in runs if key[1] != "finished"], runs
    # Both workers took part (RQ hands queued jobs to whichever worker is waiting).
    assert len({job.worker_name for job in jobs}) == 2, Counter(job.worker_name for job in jobs)
    assert all(proc.poll() is None for proc in workers)
    print(f"{REQUESTS} requests and {EXPORTS} exports through 2 web processes, all jobs done in {elapsed:.1f} s")

