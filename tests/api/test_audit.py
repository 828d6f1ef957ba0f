from __future__ import annotations

from sqlalchemy import select

from portal.models import AuditLog


def _request_events(request_id: int) -> list[AuditLog]:
    from portal.extensions import db

    db.session.expire_all()
    return list(db.session.scalars(
        select(AuditLog).where(AuditLog.entity_type == "service_request", AuditLog.entity_id == request_id)
        .order_by(AuditLog.id)))


def test_audit_patch_records_actor_before_after_and_correlation_id(factories, as_user):
    agent = as_user(factories.make_user("agent"))
    req = factories.make_request(title="Old title", priority="low")

    response = agent.patch(f"service-requests/{req.id}", json={"title": "New title", "priority": "high"},
                           headers={"X-Correlation-ID": "test-corr-42"})

    assert response.status_code == 200
    assert response.headers["X-Correlation-ID"] == "test-corr-42"
    entries = _request_events(req.id)
    entry = next(e for e in entries if e.action == "request.updated")
    assert entry.actor_id == agent.user.id
    assert entry.before == {"title": "Old title", "priority": "low"}
    assert entry.after == {"title": "New title", "priority": "high"}
    assert entry.correlation_id == "test-corr-42"
    # A new priority restarts the SLA clock; the audit trail says so, in the same request.
    recalculated = next(e for e in entries if e.action == "sla.recalculated")
    assert recalculated.correlation_id == "test-corr-42"


def test_audit_status_patch_is_a_status_changed_row(factories, as_user):
    agent = as_user(factories.make_user("agent"))
    req = factories.make_request()

    agent.patch(f"service-requests/{req.id}", json={"status": "resolved"}, headers={"X-Correlation-ID": "c-7"})

    entry = _request_events(req.id)[-1]
    assert (entry.action, entry.before, entry.after) == ("request.status_changed", {"status": "open"},
                                                          {"status": "resolved"})
    assert entry.correlation_id == "c-7"


def test_audit_unsafe_correlation_id_is_replaced(factories, as_user):
    agent = as_user(factories.make_user("agent"))
    req = factories.make_request()

    response = agent.patch(f"service-requests/{req.id}", json={"priority": "high"},
                           headers={"X-Correlation-ID": "bad id; drop table"})

    entry = _request_events(req.id)[-1]
    assert entry.correlation_id == response.headers["X-Correlation-ID"] != "bad id; drop table"


def test_audit_rejected_patch_writes_no_row(factories, as_user):
    agent = as_user(factories.make_user("agent"))
    req = factories.make_request()
    before = [e.id for e in _request_events(req.id)]

    assert agent.patch(f"service-requests/{req.id}", json={"status": "closed"}).status_code == 409
    assert agent.patch(f"service-requests/{req.id}", json={"priority": "urgent"}).status_code == 422

    assert [e.id for e in _request_events(req.id)] == before
