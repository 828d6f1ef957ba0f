"""The schema comes only from the migrations, and they describe the models exactly."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

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
    assert indexes["idx_service_request_status_created"] == ["status", "created_at"]
    assert indexes["idx_service_request_priority_created"] == ["priority", "created_at"]
    categories = db.session.execute(text("SELECT code FROM category ORDER BY sort_order")).scalars().all()
    assert categories == ["hardware", "software", "network", "access", "other"]


def test_models_match_the_migrations(ctx):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


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
