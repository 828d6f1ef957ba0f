"""Operator commands: users, demo data, welcome."""

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditLog, ServiceRequest, SlaDefinition, SlaExemption, SlaMetric, User
from portal.services import sla_reports, users


def test_users_create_list_and_deactivate(runner, ctx):
    result = runner.invoke(args=["users", "create", "--email", "Ops@Example.com", "--name", "Ops Person",
                                 "--role", "admin", "--password", "a-long-password"])
    assert result.exit_code == 0, result.output
    assert "Created admin ops@example.com" in result.output or "Created admin Ops@example.com" in result.output
    assert users.authenticate("ops@example.com", "a-long-password") is not None

    result = runner.invoke(args=["users", "create", "--email", "agent@example.com", "--name", "Agent",
                                 "--role", "agent", "--password", "a-long-password"])
    assert result.exit_code == 0
    listing = runner.invoke(args=["users", "list"]).output
    assert "agent@example.com" in listing and "agent" in listing and "active" in listing

    result = runner.invoke(args=["users", "deactivate", "agent@example.com"])
    assert result.exit_code == 0
    assert users.authenticate("agent@example.com", "a-long-password") is None
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "user.deactivated")) == 1


def test_users_create_reports_bad_input_clearly(runner, ctx):
    result = runner.invoke(args=["users", "create", "--email", "not-an-email", "--name", "X",
                                 "--role", "agent", "--password", "short"])
    assert result.exit_code != 0
    assert "email" in result.output and "password" in result.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_users_deactivate_unknown_email(runner, ctx):
    result = runner.invoke(args=["users", "deactivate", "nobody@example.com"])
    assert result.exit_code != 0
    assert "No user with email nobody@example.com" in result.output


def test_demo_data_creates_people_and_requests_once(runner, ctx):
    result = runner.invoke(args=["demo-data", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert "Created 10 users and 302 requests" in result.output
    statuses = set(db.session.scalars(select(ServiceRequest.status)))
    assert statuses == {"open", "in_progress", "waiting_on_customer", "resolved", "closed"}
    roles = set(db.session.scalars(select(User.role)))
    assert roles == {"admin", "manager", "agent", "requester"}
    assert users.authenticate("agent@example.com", "demo-password") is not None

    # Every page has something true to show: a definition for every pair, and clocks in every state.
    assert db.session.scalar(select(func.count()).select_from(SlaDefinition)) == 5 * 4
    assert db.session.scalar(select(func.count()).select_from(SlaMetric)) == 302
    summary = sla_reports.dashboard_summary()
    assert summary["breached_now"] > 0 and summary["at_risk_now"] > 0
    assert 0 < summary["met_rate_30d"] < 1
    open_metrics = select(SlaMetric).join(ServiceRequest, ServiceRequest.id == SlaMetric.request_id).where(
        ServiceRequest.status.in_(("open", "in_progress", "waiting_on_customer")))
    assert any(m.paused_since for m in db.session.scalars(open_metrics))
    assert db.session.scalar(select(func.count()).select_from(SlaExemption)) == 2
    # Sixty days of replayed alerts are history: the first real check mails nobody about them.
    from portal.services import notifications

    assert notifications.sla_alerts() == 0

    again = runner.invoke(args=["demo-data", "--if-empty"])
    assert "nothing created" in again.output
    assert db.session.scalar(select(func.count()).select_from(ServiceRequest)) == 302

    welcome = runner.invoke(args=["welcome"])
    assert "http://127.0.0.1:5000" in welcome.output and "admin@example.com" in welcome.output
