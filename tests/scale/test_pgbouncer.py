"""The portal through PgBouncer in transaction mode: the main flows work; backups go to PostgreSQL directly.

A real pgbouncer (Debian's package) pools the test database with `pool_mode = transaction` and
otherwise default settings. The web side runs in this process on a portal whose DATABASE_URL is the
pooler; the jobs run in real `flask jobs worker` processes with the same DATABASE_URL.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from sqlalchemy import text

from tests.jobs.test_worker import ROOT, _env, _flask
from tests.scale.helpers import dispose_engines, portal_like, signed_in
from tests.web.helpers import HX

PASSPHRASE = "correct horse battery staple, pooled"
LOCKS_HERE = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
              "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")


@pytest.fixture()
def pooled(app, pgbouncer, tmp_path):
    """A portal whose DATABASE_URL is the pooler, with its own export and backup directories."""
    portal = portal_like(app, DATABASE_URL=pgbouncer.url, EXPORT_DIR=str(tmp_path / "exports"),
                         BACKUP_DIR=str(tmp_path / "backups"), BACKUP_PASSPHRASE=PASSPHRASE)
    yield portal
    dispose_engines(portal)


def _worker(portal, **extra: str) -> str:
    """A burst `flask jobs worker` on every queue, with the portal's DATABASE_URL (the pooler)."""
    env = {**_env(portal), **extra}
    result = subprocess.run(_flask("jobs", "worker", "--burst"), cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def test_main_flows_work_through_pgbouncer_in_transaction_mode(pooled, pgbouncer):
    from portal.extensions import db
    from portal.models import Export, ServiceRequest, SlaDefinition, SlaEvent, SlaMetric
    from portal.queueing import push
    from tests import factories

    with pooled.app_context():
        db.session.add(SlaDefinition(category="hardware", priority="high", response_time_hours=4,
                                     resolution_time_hours=8))
        db.session.commit()
        people = {role: factories.make_user(role, email=f"{role}@example.com").email
                  for role in ("requester", "agent", "manager")}
    before = pgbouncer.stats()

    # Sign in (a server-side session row), raise a request (its SLA clock, audit, outbox, mail).
    requester = signed_in(pooled, people["requester"])
    created = requester.post("/requests/new", data={"title": "Dock has no power", "category": "hardware",
                                                    "priority": "high", "description": "Dead since Monday."})
    assert created.status_code == 303
    request_id = int(re.fullmatch(r"/requests/(\d+)", created.headers["Location"]).group(1))
    assert requester.get(created.headers["Location"]).status_code == 200

    # An agent takes it and starts work (the row locked FOR UPDATE, versions checked).
    agent = signed_in(pooled, people["agent"])
    assert agent.post(f"/requests/{request_id}/assign", data={"assignee": "me"}, headers=HX).status_code == 200
    assert agent.post(f"/requests/{request_id}/status", data={"status": "in_progress"},
                      headers=HX).status_code == 200

    # The resolution target falls due; a manager asks for a CSV export.
    with pooled.app_context():
        db.session.execute(text("UPDATE sla_metric SET resolution_due_at = now() - interval '1 hour', "
                                "resolution_warn_at = now() - interval '2 hours' WHERE request_id = :id"),
                           {"id": request_id})
        db.session.commit()
        push("jobs.analytics.check_sla_breaches")
    manager = signed_in(pooled, people["manager"])
    exported = manager.post("/exports", data={"format": "csv"})
    assert exported.status_code == 303
    export_id = int(exported.headers["Location"].rsplit("/", 1)[1])

    # Workers through the pooler: mail, the SLA check, the export.
    _worker(pooled)

    with pooled.app_context():
        req = db.session.get(ServiceRequest, request_id)
        assert (req.status, req.assignee.email) == ("in_progress", people["agent"])
        metric = db.session.scalar(db.select(SlaMetric).where(SlaMetric.request_id == request_id))
        assert metric.resolution_breached_at is not None and metric.is_breached
        assert db.session.scalar(db.select(db.func.count()).select_from(SlaEvent).where(
            SlaEvent.request_id == request_id, SlaEvent.kind == "breached")) == 1
        export = db.session.get(Export, export_id)
        assert export.status == "done", export.error
    download = manager.get(f"/exports/{export_id}/download")
    assert download.status_code == 200
    assert "Dock has no power" in download.get_data(as_text=True)
    assert manager.get("/sla/breaches").status_code == 200

    # /health (what a load balancer asks) sees the database through the pooler too.
    health = pooled.test_client().get("/health")
    assert health.status_code == 200, health.get_json()
    assert health.get_json()["components"]["database"] == "healthy"

    after = pgbouncer.stats()
    assert after["total_xact_count"] - before["total_xact_count"] > 20, "the work went through the pooler"


def test_backups_use_the_direct_url_beside_a_pooled_database_url(app, pgbouncer, tmp_path):
    """Backups hold one server session (advisory lock, exported snapshot): DATABASE_DIRECT_URL gives them one."""
    portal = portal_like(app, DATABASE_URL=pgbouncer.url, DATABASE_DIRECT_URL=app.config["DATABASE_URL"],
                         BACKUP_DIR=str(tmp_path / "backups"), BACKUP_PASSPHRASE=PASSPHRASE)
    from portal.extensions import db
    from portal.models import Backup
    from portal.services import backups
    from tests import factories

    try:
        with portal.app_context():
            factories.make_request()
            assert backups.database_url() == app.config["DATABASE_URL"]
            result = backups.create_backup(trigger="manual")
            assert result.verification.ok and result.tables["service_request"] == 1
            assert db.session.get(Backup, result.backup_id).status == "verified"
            # Nothing is left behind on a pooled server connection: the lock went with the direct session.
            assert db.session.scalar(text(LOCKS_HERE)) == 0
            again = backups.create_backup(trigger="manual")  # not refused as "another backup is running"
            assert again.verification.ok
    finally:
        dispose_engines(portal)


def test_without_the_direct_url_a_backup_leaves_its_lock_on_a_pooled_connection(pooled):
    """Why backups need DATABASE_DIRECT_URL: through the pooler the backup "works", but its session-level
    advisory lock stays on whichever server connection took it, after the backup is over. A later backup
    or restore landing on another server connection is then refused as "another one is running", and one
    landing on the same connection re-enters the lock, so two could run at once."""
    from portal.extensions import db
    from portal.services import backups

    with pooled.app_context():
        assert backups.database_url() == pooled.config["DATABASE_URL"]  # the pooler
        assert backups.create_backup(trigger="manual").verification.ok
        db.session.rollback()
        held = db.session.scalar(text(LOCKS_HERE + " AND objid = :key AND granted"),
                                 {"key": backups.ADVISORY_LOCK})
    assert held == 1  # released only when PgBouncer closes that server connection


def test_health_probe_needs_no_startup_options(pgbouncer):
    """PgBouncer refuses startup parameters it does not know (`options`); the probe sends none."""
    from portal.services.health import probe_database

    probe = probe_database(pgbouncer.url)
    assert probe.reachable, probe.error
