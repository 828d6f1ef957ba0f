"""DATABASE_REPLICA_URL: exports, reports and the SLA figures read from the replica; writes stay on the primary.

The "replica" is the test database reached through connections whose every transaction is read-only
(`options=-c default_transaction_read_only=on`), the way a hot standby behaves: it has the data and
refuses writes. A cursor class installed on the replica engine's connections records every statement
sent through them (COPY included, which SQLAlchemy's own events do not see), so each test can tell
which reads went where.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import psycopg2.extensions
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from tests.scale.helpers import dispose_engines, free_port, portal_like, signed_in, with_query

READ_ONLY_OPTION = "-c%20default_transaction_read_only%3Don"


class Recorder:
    """Statements sent through the replica engine's connections, in order."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def clear(self) -> None:
        self.statements.clear()

    def touching(self, word: str) -> list[str]:
        return [s for s in self.statements if word in s]

    def writes(self) -> list[str]:
        return [s for s in self.statements
                if s.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")]


def _install(engine, recorder: Recorder) -> None:
    class CountingCursor(psycopg2.extensions.cursor):
        def execute(self, query, vars=None):  # noqa: A002 - psycopg2's own parameter name
            recorder.statements.append(query if isinstance(query, str) else query.decode())
            return super().execute(query, vars)

        def copy_expert(self, sql, file, size=8192):
            recorder.statements.append(sql)
            return super().copy_expert(sql, file, size)

    @event.listens_for(engine, "connect")
    def _counting(dbapi_connection, _record):
        dbapi_connection.cursor_factory = CountingCursor


@pytest.fixture()
def replica(app, export_dir):
    """A portal with DATABASE_REPLICA_URL (read-only connections to the test database) and its recorder."""
    url = with_query(app.config["DATABASE_URL"], options=READ_ONLY_OPTION, application_name="portal-replica")
    portal = portal_like(app, DATABASE_REPLICA_URL=url, EXPORT_DIR=str(export_dir))
    recorder = Recorder()
    with portal.app_context():
        from portal.replica import replica_engine

        _install(replica_engine(), recorder)
    yield portal, recorder
    dispose_engines(portal)


@pytest.fixture()
def export_dir(tmp_path):
    return tmp_path / "exports"


@pytest.fixture()
def jobs_use(monkeypatch):
    """Run jobs/ functions in this process on the given portal (as a worker with its settings would)."""

    def use(portal):
        monkeypatch.setattr("jobs._context._app", portal)

    return use


def _seed(portal):
    """A manager, requests under an SLA (one breached its response target an hour ago by the SLA
    check), the trend table; returns the manager's id."""
    from datetime import datetime

    from portal.extensions import db
    from portal.models import ServiceRequest, SlaMetric
    from portal.models._time import utcnow
    from portal.policy import SYSTEM
    from portal.services import reports, sla, sla_admin
    from tests import factories

    with portal.app_context():
        manager = factories.make_user("manager", email="manager@example.com")
        sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "medium",
                                             "response_time_hours": 4, "resolution_time_hours": 24})
        for n in range(5):
            req = factories.make_request(title=f"Replica request {n}")
        # The last request was raised five hours ago: its four-hour response target ran out an hour ago.
        metric = db.session.scalar(db.select(SlaMetric).where(SlaMetric.request_id == req.id))
        for obj in (metric, db.session.get(ServiceRequest, req.id)):
            for column in obj.__table__.columns:
                value = getattr(obj, column.key, None)
                if isinstance(value, datetime):
                    setattr(obj, column.key, value - timedelta(hours=5))
        db.session.commit()
        sla.run_check(now=utcnow())
        reports.calculate_trends()
        return manager.id


@pytest.mark.parametrize("kind", ["csv", "pdf", "report"])
def test_export_and_report_jobs_read_from_the_replica_and_write_their_row_on_the_primary(
        app, replica, export_dir, jobs_use, kind):
    portal, recorder = replica
    manager_id = _seed(portal)
    from jobs import exports as export_jobs
    from portal.extensions import db
    from portal.models import Export, User
    from portal.models._time import utcnow
    from portal.services import exports

    with portal.app_context():
        manager = db.session.get(User, manager_id)
        if kind == "report":
            today = utcnow().date()
            export_id = exports.request_report(manager, (today - timedelta(days=6)).isoformat(),
                                               today.isoformat()).id
        else:
            export_id = exports.request_export(manager, kind, {}).id
    recorder.clear()
    jobs_use(portal)

    summary = (export_jobs.build_report if kind == "report" else export_jobs.build_export)(export_id)

    assert summary["status"] == "done"
    with app.app_context():  # the primary, through the tests' own portal
        row = db.session.get(Export, export_id)
        assert row.status == "done" and row.rows_done == summary["rows"]
        assert (export_dir / row.file_path).stat().st_size > 0
    if kind == "csv":
        assert summary["rows"] == 5
        assert recorder.touching("COPY ("), "the CSV's COPY ran on the replica"
    if kind == "report":
        assert recorder.touching("trend_daily"), "the report read the trend table on the replica"
    else:
        assert recorder.touching("service_request"), "the requests were read on the replica"
    assert recorder.touching("SET TRANSACTION READ ONLY") or recorder.touching("READ ONLY")
    assert recorder.writes() == [], "no write went to the replica"
    assert not recorder.touching("export"), "the export row is read and written on the primary"


def test_sla_page_and_statistics_api_read_their_figures_from_the_replica(replica):
    portal, recorder = replica
    _seed(portal)
    client = signed_in(portal, "manager@example.com")
    recorder.clear()

    page = client.get("/sla/breaches?days=30")

    assert page.status_code == 200
    assert recorder.touching("sla_rollup"), "the statistics were read on the replica"
    assert recorder.writes() == []

    with portal.app_context():
        from portal.extensions import db
        from portal.models import User
        from portal.services import users

        manager = db.session.scalar(db.select(User).where(User.email == "manager@example.com"))
        raw, _ = users.issue_token(manager)
    recorder.clear()
    stats = portal.test_client().get("/api/v1/analytics/sla-statistics?days=30",
                                     headers={"Authorization": f"Bearer {raw}"})
    assert stats.status_code == 200, stats.get_json()
    assert stats.get_json()["response_breaches"] == 1
    assert recorder.touching("sla_rollup")
    recorder.clear()
    compliance = portal.test_client().get("/api/v1/analytics/sla-compliance",
                                          headers={"Authorization": f"Bearer {raw}"})
    assert compliance.status_code == 200
    assert recorder.touching("sla_metric")


def test_a_write_through_the_replica_fails(replica):
    portal, recorder = replica
    from portal.extensions import db
    from portal.replica import replica_engine, replica_session

    with portal.app_context():
        with replica_session() as used:
            assert used
            with pytest.raises(DBAPIError, match="read-only transaction"):
                db.session.execute(text("UPDATE category SET name = name"))
        # The replica's own connections refuse writes too (a hot standby would).
        with replica_engine().connect() as conn, pytest.raises(DBAPIError, match="read-only transaction"):
            conn.execute(text("UPDATE category SET name = name"))
        # After the block the portal's session is the primary's again, and writes.
        db.session.execute(text("UPDATE category SET name = name"))
        db.session.commit()


def test_the_block_itself_refuses_writes_on_a_writable_server(app):
    """Pointed by mistake at a writable server, a replica block still cannot change anything."""
    portal = portal_like(app, DATABASE_REPLICA_URL=app.config["DATABASE_URL"])
    from portal.extensions import db
    from portal.replica import replica_session

    with portal.app_context():
        with replica_session() as used:
            assert used
            with pytest.raises(DBAPIError, match="read-only transaction"):
                db.session.execute(text("UPDATE category SET name = name"))
    dispose_engines(portal)


def test_without_a_replica_everything_reads_from_the_primary(ctx):
    from portal.extensions import db
    from portal.replica import read_engine, replica_engine, replica_session

    assert replica_engine() is None
    assert "replica" not in db.engines
    with replica_session() as used:
        assert used is False
        assert read_engine() is db.engine
        assert db.session.execute(text("SHOW transaction_read_only")).scalar_one() == "off"


@pytest.fixture()
def replica_log():
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("portal.replica")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_a_replica_that_is_down_falls_back_to_the_primary_with_a_warning(app, export_dir, jobs_use, replica_log):
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/portal"
    portal = portal_like(app, DATABASE_REPLICA_URL=dead, EXPORT_DIR=str(export_dir))
    manager_id = _seed(portal)
    from jobs import exports as export_jobs
    from portal.extensions import db
    from portal.models import User
    from portal.services import exports

    with portal.app_context():
        export_id = exports.request_export(db.session.get(User, manager_id), "csv", {}).id
    jobs_use(portal)

    assert export_jobs.build_export(export_id)["rows"] == 5
    page = signed_in(portal, "manager@example.com").get("/sla/breaches")
    assert page.status_code == 200
    dispose_engines(portal)
    warnings = [r.getMessage() for r in replica_log if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("read replica unreachable, reading from the primary" in w for w in warnings)


def test_a_replica_dying_during_a_page_read_is_retried_on_the_primary(replica, replica_log):
    portal, _ = replica
    from portal.extensions import db
    from portal.replica import read_on_replica

    calls = []

    def read():
        calls.append(db.session.execute(text("SHOW transaction_read_only")).scalar_one())
        if len(calls) == 1:  # the replica's server goes away under us
            db.session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return "figures"

    with portal.app_context():
        assert read_on_replica(read) == "figures"
    assert calls == ["on", "off"]  # first on the replica, then on the primary
    assert any("failed during a read" in r.getMessage() for r in replica_log)


def test_doctor_reports_the_replica_and_the_direct_url(app, replica):
    portal, _ = replica
    from portal.services import health

    with portal.app_context():
        assert [(c.name, c.status) for c in health._check_other_databases()] == [("replica", "ok")]
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/portal"
    other = portal_like(app, DATABASE_REPLICA_URL=dead, DATABASE_DIRECT_URL=dead)
    with other.app_context():
        checks = {c.name: c for c in health._check_other_databases()}
    assert checks["replica"].status == "warn" and "read from the primary" in checks["replica"].action
    assert checks["direct_database"].status == "fail"
    dispose_engines(other)


@pytest.mark.parametrize("name", ["DATABASE_REPLICA_URL", "DATABASE_DIRECT_URL"])
def test_config_refuses_a_database_url_that_is_not_postgresql(name):
    from portal.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=name):
        load_config({"APP_ENV": "test", name: "mysql://portal@db/portal"})
    assert load_config({"APP_ENV": "test", name: "postgresql://portal@db/portal"})[name] == "postgresql://portal@db/portal"
    assert load_config({"APP_ENV": "test"})[name] is None
