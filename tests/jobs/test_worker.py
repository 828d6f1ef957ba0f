"""Real RQ worker and scheduler processes, started the way the Procfile starts them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from rq.job import Job

from portal.extensions import db
from portal.models import ApiToken
from portal.models._time import utcnow
from portal.queueing import QUEUES, SCHEDULE, push, redis_connection
from portal.services import users

ROOT = Path(__file__).resolve().parents[2]


def _env(app) -> dict[str, str]:
    """The environment of a worker, scheduler or web process started for a test: the test's services, and
    the test's directories (read now, so a test that moved one hands it on), never the instance/ of a checkout."""
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": app.config["DATABASE_URL"],
        "REDIS_URL": app.config["REDIS_URL"],
        "APP_ENV": "test",
        "SECRET_KEY": "test-secret",
        "TZ": "UTC",
        "LOG_DIR": app.config.get("LOG_DIR") or "",
        "MAIL_DIR": app.config["MAIL_DIR"],
        "BACKUP_DIR": app.config["BACKUP_DIR"],
        "EXPORT_DIR": app.config["EXPORT_DIR"],
        "UPLOAD_DIR": app.config["UPLOAD_DIR"],
    })
    return env


def _flask(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "wsgi", *args]


def test_worker_runs_a_queued_job_with_its_retry_policy(app, ctx, factories):
    user = factories.make_user("agent")
    _, old = users.issue_token(user)
    _, fresh = users.issue_token(user)
    old.expires_at = utcnow() - timedelta(days=3)
    db.session.commit()

    job = push("jobs.maintenance.purge_expired_tokens", queue="default")
    assert job.retries_left == QUEUES["default"].max_retries
    assert job.failure_ttl >= 30 * 24 * 3600  # a dead letter is kept for at least 30 days

    result = subprocess.run(_flask("jobs", "worker", "--burst"), cwd=ROOT, env=_env(app),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr

    job = Job.fetch(job.id, connection=redis_connection())
    assert job.get_status() == "finished"
    assert job.return_value() == 1
    assert job.meta["purged"] == 1
    db.session.expire_all()
    assert [t.id for t in db.session.query(ApiToken)] == [fresh.id]


def test_worker_processes_write_into_the_tests_directories(app, ctx):
    """Never into the checkout's instance/ (logs, mail, backups, exports), which a test run must leave alone."""
    env = _env(app)
    for setting in ("LOG_DIR", "MAIL_DIR", "BACKUP_DIR", "EXPORT_DIR", "UPLOAD_DIR"):
        assert env[setting] and not Path(env[setting]).resolve().is_relative_to(ROOT / "instance"), setting
    job = push("tests.jobs.sample_jobs.nap", 0, queue="default")

    result = subprocess.run(_flask("jobs", "worker", "--burst", "--queues", "default"), cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert job.id in (Path(app.config["LOG_DIR"]) / "jobs.log").read_text()


def test_worker_refuses_unknown_queue(app):
    result = subprocess.run(_flask("jobs", "worker", "--burst", "--queues", "nope"), cwd=ROOT, env=_env(app),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Unknown queue(s): nope" in result.stderr


def test_scheduler_registers_the_periodic_jobs(app, ctx):
    proc = subprocess.Popen(_flask("jobs", "scheduler", "--interval", "1"), cwd=ROOT, env=_env(app),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        connection = redis_connection()
        deadline = time.monotonic() + 30
        wanted = {s.id for s in SCHEDULE}
        found: set[str] = set()
        while time.monotonic() < deadline and found != wanted:
            found = {jid.decode() for jid in connection.zrange("rq:scheduler:scheduled_jobs", 0, -1)} & wanted
            time.sleep(0.2)
        assert found == wanted, proc.stderr.read() if proc.poll() is not None else "scheduler did not register jobs"
        job = Job.fetch("purge-expired-tokens", connection=connection)
        assert job.meta.get("cron_string") == "17 3 * * *"
        assert job.origin == "default"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
