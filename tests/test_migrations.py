"""The schema comes only from the migrations, and they describe the models exactly."""

import hashlib
import json
import logging
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from portal import logs
from portal.extensions import db
from portal.policy import SYSTEM


def test_migrations_build_the_schema_on_an_empty_database(ctx):
    downgrade(revision="base")
    db.session.remove()
    remaining = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
    assert remaining == set(), "downgrade to base should leave an empty database"

    upgrade()
    insp = inspect(db.engine)
    tables = set(insp.get_table_names())
    assert {"user", "service_request", "comment", "attachment", "audit_log", "category", "api_token"} <= tables
    indexes = {ix["name"]: ix["column_names"] for ix in insp.get_indexes("service_request")}
    assert indexes["ix_service_request_status_seek"] == ["status", "created_at", "id"]
    assert indexes["ix_service_request_priority_rank"] == ["priority_rank", "created_at", "id"]
    assert "ix_service_request_search" in indexes
    categories = db.session.execute(text("SELECT code FROM category ORDER BY sort_order")).scalars().all()
    assert categories == ["hardware", "software", "network", "access", "other"]


def test_models_match_the_migrations(ctx):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def test_an_upgrade_inside_the_portal_keeps_its_json_log_files(app, ctx, tmp_path):
    """flask db upgrade, the test app and `flask backup restore` migrate after create_app: alembic.ini's
    logging must not swap the portal's JSON handlers and LOG_DIR files for plain stderr."""
    logs.configure({**app.config, "LOG_DIR": str(tmp_path), "LOG_STDOUT": False})
    try:
        upgrade()  # at head already: env.py runs all the same
        logging.getLogger("portal.after_upgrade").warning("still JSON after the upgrade")
        for handler in logging.getLogger().handlers:
            handler.flush()
        written = (tmp_path / "app.log").read_text() if (tmp_path / "app.log").exists() else ""
    finally:
        logs.configure(app.config)
    lines = [json.loads(line) for line in written.splitlines()]  # every line JSON
    assert any(x["logger"] == "portal.after_upgrade" and x["message"] == "still JSON after the upgrade"
               for x in lines)
    assert any(x["logger"].startswith("alembic") for x in lines)  # the migration's own lines too


def test_email_is_unique_regardless_of_case(ctx, factories):
    factories.make_user("agent", email="Case@Example.com")
    from portal.services import users
    from portal.services.errors import Conflict

    try:
        users.create_user(SYSTEM, "case@example.COM", "Other", "agent", "long-enough-pw")
    except Conflict as exc:
        assert "already" in exc.message
    else:
        raise AssertionError("a second account with the same email in another case was created")


def test_a_follow_up_outlives_the_request_it_follows(ctx, factories):
    """0015: deleting a request keeps its follow-ups and drops their link (ON DELETE SET NULL)."""
    from portal.models import ServiceRequest
    from portal.services import requests as svc

    agent, requester = factories.make_user("agent"), factories.make_user("requester")
    closed = factories.make_request(requester)
    svc.change_status(agent, closed.id, "resolved")
    svc.change_status(agent, closed.id, "closed")
    closed_id, follow_id = closed.id, svc.open_follow_up(requester, closed.id, "Again.").id
    db.session.execute(text("DELETE FROM service_request WHERE id = :id"), {"id": closed_id})
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(ServiceRequest, closed_id) is None
    assert db.session.get(ServiceRequest, follow_id).follow_up_of_id is None


RELEASED = Path(__file__).resolve().parent.parent / "migrations" / "released.sha256"
VERSIONS = RELEASED.parent / "versions"


def test_released_migrations_are_never_edited():
    """A migration that has landed is never edited: a kept database would say "up to date" and miss it.

    migrations/released.sha256 records each revision file's hash (`sha256sum` format). A change to
    the schema is a new revision; record it with `cd migrations/versions && sha256sum NEW.py >>
    ../released.sha256` in the commit that adds it.
    """
    recorded = dict(line.split()[::-1] for line in RELEASED.read_text().splitlines() if line.strip())
    present = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in VERSIONS.glob("*.py")}
    edited = sorted(name for name, digest in present.items() if name in recorded and recorded[name] != digest)
    assert not edited, f"released migrations were edited (add a new revision instead): {edited}"
    missing = sorted(set(recorded) - set(present))
    assert not missing, f"released migrations were deleted: {missing}"
    unrecorded = sorted(set(present) - set(recorded))
    assert not unrecorded, f"record new revisions in migrations/released.sha256: {unrecorded}"


def test_0003_adds_the_calendar_snapshot_a_kept_0002_database_lacks(ctx):
    """The first 0002 had no sla_metric.calendar; 0003 adds it and fills it as a clock would have copied it."""
    downgrade(revision="0002_sla_engine")
    db.session.remove()
    with db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE sla_metric DROP COLUMN calendar"))  # the database as the first 0002 left it
        conn.execute(text("""
            INSERT INTO "user" (id, email, name, password_hash, role, active, session_version, created_at)
                 VALUES (1, 'r@example.com', 'R', 'x', 'requester', true, 1, now());
            INSERT INTO business_calendar (id, name, timezone, working_days, opens, closes, created_at, updated_at)
                 VALUES (7, 'London', 'Europe/London', '{0,1,2,3,4}', '09:00', '17:30', now(), now());
            INSERT INTO holiday (calendar_id, day, name)
                 VALUES (7, '2026-12-25', 'Christmas'), (7, '2026-12-28', 'Boxing');
            INSERT INTO service_request (id, title, description, category, priority, status, requester_id,
                                         created_at, updated_at)
                 VALUES (1, 't', 'd', 'hardware', 'medium', 'open', 1, now(), now());
            INSERT INTO sla_metric (request_id, calendar_id, at_risk_percent, pause_statuses, started_at,
                                    paused_seconds, is_breached, status, created_at, updated_at)
                 VALUES (1, 7, 75, '{}', now(), 0, false, 'open', now(), now());
        """))
    upgrade()
    snapshot = db.session.execute(text("SELECT calendar FROM sla_metric WHERE request_id = 1")).scalar_one()
    assert snapshot == {"id": 7, "timezone": "Europe/London", "working_days": [0, 1, 2, 3, 4], "opens": "09:00",
                        "closes": "17:30", "holidays": ["2026-12-25", "2026-12-28"]}
    version = db.session.execute(text("SELECT version FROM service_request WHERE id = 1")).scalar_one()
    assert version == 1
