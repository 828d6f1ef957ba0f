"""The SLA API: definitions, a request's clock and exemptions, statistics, and the dashboard's JSON.

Breached and at-risk states are made without waiting: definitions exist before the requests,
then either the periodic checks run with a future `now`, or a request is backdated (its
created/started times and events moved into the past) and the checks run at the real now.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditLog, ServiceRequest, SlaDefinition, SlaEvent, SlaExemption, SlaMetric
from portal.models._time import utcnow
from portal.policy import SYSTEM
from portal.services import sla, sla_admin
from tests.api.helpers import API, error_of
from tests.jobs.test_worker import _env
from tests.services.sla_helpers import make_calendar, state_of_all

ROOT = Path(__file__).resolve().parents[2]
GUIDE_DEFINITION = {"category": "network", "priority": "high", "response_time_hours": 1, "resolution_time_hours": 4}
DEFINITIONS = "sla/definitions"


# ---------------------------------------------------------------- callers and helpers

@pytest.fixture()
def admin(factories, as_user):
    return as_user(factories.make_user("admin"))


@pytest.fixture()
def manager(factories, as_user):
    return as_user(factories.make_user("manager"))


@pytest.fixture()
def agent(factories, as_user):
    return as_user(factories.make_user("agent"))


@pytest.fixture()
def requester(factories, as_user):
    return as_user(factories.make_user("requester"))


def _define(category: str = "network", priority: str = "high", response: float = 1, resolution: float = 4,
            **extra) -> SlaDefinition:
    return sla_admin.create_definition(SYSTEM, {"category": category, "priority": priority,
                                              "response_time_hours": response, "resolution_time_hours": resolution,
                                              **extra})


def _t(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _metrics_path(request_id: int) -> str:
    return f"service-requests/{request_id}/sla-metrics"


def _exemptions_path(request_id: int) -> str:
    return f"service-requests/{request_id}/sla-exemptions"


def _metric(caller, request_id: int) -> dict:
    response = caller.get(_metrics_path(request_id))
    assert response.status_code == 200, response.get_json()
    entries = response.get_json()["sla_metrics"]
    assert len(entries) == 1, entries
    return entries[0]


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _definitions_state() -> list[tuple]:
    db.session.expire_all()
    return [(d.id, d.category, d.priority, d.response_time_hours, d.resolution_time_hours, d.is_active,
             d.calendar_id, list(d.pause_statuses), d.at_risk_percent, d.updated_at)
            for d in db.session.scalars(select(SlaDefinition).order_by(SlaDefinition.id))]


def _everything() -> tuple:
    """Definitions, every clock, event and exemption, and the audit log: to show a call changed nothing."""
    return _definitions_state(), state_of_all(), _count(AuditLog)


def _backdate(request_id: int, hours: float) -> None:
    """Pretend the request was raised `hours` ago (clock and events too); the checks are run separately."""
    db.session.expire_all()
    req = db.session.get(ServiceRequest, request_id)
    req.created_at -= timedelta(hours=hours)
    metric = sla.get_metric(request_id)
    metric.started_at -= timedelta(hours=hours)
    for event in db.session.scalars(select(SlaEvent).where(SlaEvent.request_id == request_id)):
        event.at -= timedelta(hours=hours)
    sla.recompute(metric, utcnow())
    db.session.commit()


def _run_checks() -> None:
    sla.check_all_breaches()
    sla.check_at_risk()
    db.session.expire_all()


# ---------------------------------------------------------------- POST /sla/definitions

def test_create_definition_as_in_the_operations_guide(admin, ctx, stored):
    response = admin.post(DEFINITIONS, json=GUIDE_DEFINITION)

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["category"] == "network" and body["priority"] == "high"
    assert body["response_time_hours"] == 1 and body["resolution_time_hours"] == 4
    assert body["is_active"] is True
    assert body["calendar_id"] is None
    assert body["pause_statuses"] == ["waiting_on_customer"]
    assert body["at_risk_percent"] == 75
    _t(body["created_at"]), _t(body["updated_at"])
    assert response.headers["Location"].endswith(f"{API}/sla/definitions/{body['id']}")
    row = stored(SlaDefinition, body["id"])
    assert float(row["response_time_hours"]) == 1 and float(row["resolution_time_hours"]) == 4 and row["is_active"]
    audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "sla_definition.created")).one()
    assert audit.actor_id == admin.user.id and audit.entity_id == body["id"]


def test_create_definition_with_all_optional_fields(admin, ctx):
    calendar = make_calendar()

    response = admin.post(DEFINITIONS, json={
        "category": "software", "priority": "low", "response_time_hours": 2.5, "resolution_time_hours": 40.25,
        "calendar_id": calendar.id, "pause_statuses": ["waiting_on_customer", "in_progress"],
        "at_risk_percent": 50, "is_active": True})

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["response_time_hours"] == 2.5 and body["resolution_time_hours"] == 40.25
    assert body["calendar_id"] == calendar.id and body["at_risk_percent"] == 50
    assert body["pause_statuses"] == ["in_progress", "waiting_on_customer"]


def test_new_requests_get_the_created_definitions_targets(admin, requester, factories):
    definition = admin.post(DEFINITIONS, json=GUIDE_DEFINITION).get_json()
    req = factories.make_request(requester.user, category="network", priority="high")

    metric = _metric(requester, req.id)

    assert metric["definition_id"] == definition["id"]
    assert metric["response_time_hours"] == 1 and metric["resolution_time_hours"] == 4
    started = _t(metric["started_at"])
    assert _t(metric["response_due_at"]) == started + timedelta(hours=1)
    assert _t(metric["resolution_due_at"]) == started + timedelta(hours=4)


@pytest.mark.parametrize("role", ["agent", "manager", "requester"])
def test_create_definition_by_non_admin_is_403_and_creates_nothing(factories, as_user, role):
    caller = as_user(factories.make_user(role))
    before = _everything()

    response = caller.post(DEFINITIONS, json=GUIDE_DEFINITION)

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert _everything() == before
    assert _count(SlaDefinition) == 0


def test_create_definition_without_token_is_401(api, ctx):
    response = api("POST", DEFINITIONS, json=GUIDE_DEFINITION)

    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert _count(SlaDefinition) == 0


@pytest.mark.parametrize("changes, field", [
    ({"response_time_hours": -1}, "response_time_hours"),
    ({"resolution_time_hours": -4}, "resolution_time_hours"),
    ({"response_time_hours": 0}, "response_time_hours"),
    ({"resolution_time_hours": 0}, "resolution_time_hours"),
    ({"response_time_hours": 5, "resolution_time_hours": 4}, "resolution_time_hours"),
    ({"category": "food"}, "category"),
    ({"priority": "urgent"}, "priority"),
    ({"category": None}, "category"),
    ({"response_time_hours": "1"}, "response_time_hours"),
    ({"resolution_time_hours": "4"}, "resolution_time_hours"),
    ({"response_time_hours": True}, "response_time_hours"),
    ({"resolution_time_hours": False}, "resolution_time_hours"),
    ({"response_time_hours": 1.005}, "response_time_hours"),
    ({"resolution_time_hours": 4.123}, "resolution_time_hours"),
    ({"response_time_hours": 8760.01, "resolution_time_hours": 9000}, "response_time_hours"),
    ({"response_time_hours": None}, "response_time_hours"),
    ({"calendar_id": 999_999}, "calendar_id"),
    ({"calendar_id": -1}, "calendar_id"),
    ({"calendar_id": "1"}, "calendar_id"),
    ({"pause_statuses": ["on_holiday"]}, "pause_statuses"),
    ({"pause_statuses": ["resolved"]}, "pause_statuses"),
    ({"pause_statuses": "waiting_on_customer"}, "pause_statuses"),
    ({"at_risk_percent": 0}, "at_risk_percent"),
    ({"at_risk_percent": 100}, "at_risk_percent"),
    ({"at_risk_percent": -5}, "at_risk_percent"),
    ({"at_risk_percent": 50.5}, "at_risk_percent"),
    ({"is_active": "yes"}, "is_active"),
    ({"apply_to_open": True}, "apply_to_open"),
    ({"sla_name": "Network high"}, "sla_name"),
])
def test_create_definition_invalid_is_422_naming_the_field(admin, ctx, changes, field):
    before = _everything()

    response = admin.post(DEFINITIONS, json={**GUIDE_DEFINITION, **changes})

    assert response.status_code == 422, response.get_json()
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert field in error["fields"], error
    assert _everything() == before
    assert _count(SlaDefinition) == 0


@pytest.mark.parametrize("missing", ["category", "priority", "response_time_hours", "resolution_time_hours"])
def test_create_definition_missing_field_is_422(admin, ctx, missing):
    response = admin.post(DEFINITIONS, json={k: v for k, v in GUIDE_DEFINITION.items() if k != missing})

    assert response.status_code == 422
    assert missing in error_of(response)["fields"]
    assert _count(SlaDefinition) == 0


@pytest.mark.parametrize("statuses", [[["open"]], [{"status": "open"}], [1]])
def test_create_definition_pause_statuses_of_non_strings_is_422_not_500(admin, ctx, statuses):
    response = admin.post(DEFINITIONS, json={**GUIDE_DEFINITION, "pause_statuses": statuses})

    assert response.status_code == 422, (response.status_code, response.get_json())
    assert "pause_statuses" in error_of(response)["fields"]
    assert _count(SlaDefinition) == 0


def test_create_definition_equal_response_and_resolution_is_accepted(admin):
    response = admin.post(DEFINITIONS, json={**GUIDE_DEFINITION, "response_time_hours": 4})

    assert response.status_code == 201, response.get_json()


def test_create_definition_boundaries_are_accepted(admin):
    response = admin.post(DEFINITIONS, json={**GUIDE_DEFINITION, "response_time_hours": 0.01,
                                             "resolution_time_hours": 8760, "at_risk_percent": 99,
                                             "pause_statuses": []})

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["response_time_hours"] == 0.01 and body["resolution_time_hours"] == 8760
    assert body["pause_statuses"] == [] and body["at_risk_percent"] == 99


def test_second_active_definition_for_the_same_pair_is_409(admin, ctx):
    first = admin.post(DEFINITIONS, json=GUIDE_DEFINITION).get_json()
    before = _everything()

    response = admin.post(DEFINITIONS, json={**GUIDE_DEFINITION, "response_time_hours": 2,
                                             "resolution_time_hours": 8})

    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"
    assert _everything() == before
    assert [d.id for d in db.session.scalars(select(SlaDefinition))] == [first["id"]]


def test_second_definition_is_allowed_after_deactivating_the_first(admin, ctx):
    first = admin.post(DEFINITIONS, json=GUIDE_DEFINITION).get_json()

    off = admin.patch(f"{DEFINITIONS}/{first['id']}", json={"is_active": False})
    second = admin.post(DEFINITIONS, json={**GUIDE_DEFINITION, "response_time_hours": 2,
                                           "resolution_time_hours": 8})

    assert off.status_code == 200 and off.get_json()["is_active"] is False
    assert second.status_code == 201, second.get_json()
    assert second.get_json()["is_active"] is True
    assert sla.find_definition("network", "high").id == second.get_json()["id"]


def test_inactive_duplicate_can_be_created_but_not_reactivated_while_another_is_active(admin, ctx):
    active = admin.post(DEFINITIONS, json=GUIDE_DEFINITION).get_json()
    spare = admin.post(DEFINITIONS, json={**GUIDE_DEFINITION, "is_active": False})
    assert spare.status_code == 201, spare.get_json()
    before = _everything()

    response = admin.patch(f"{DEFINITIONS}/{spare.get_json()['id']}", json={"is_active": True})

    assert response.status_code == 409
    assert _everything() == before
    assert sla.find_definition("network", "high").id == active["id"]


@pytest.mark.parametrize("raw", ['{"category": "network",', "[]", '"network"', ""])
def test_create_definition_malformed_json_is_400(admin, ctx, raw):
    response = admin.post(DEFINITIONS, data=raw, content_type="application/json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"
    assert _count(SlaDefinition) == 0


def test_create_definition_form_encoded_is_400(admin, ctx):
    response = admin.post(DEFINITIONS, data=GUIDE_DEFINITION)

    assert response.status_code == 400
    assert _count(SlaDefinition) == 0


# ---------------------------------------------------------------- GET /sla/definitions

@pytest.mark.parametrize("role", ["agent", "manager", "admin"])
def test_list_definitions_for_staff(factories, as_user, ctx, role):
    network = _define()
    old = _define("software", "low", 8, 72, is_active=False)
    critical = _define("software", "critical", 0.5, 2)

    response = as_user(factories.make_user(role)).get(DEFINITIONS)

    assert response.status_code == 200
    items = response.get_json()["definitions"]
    assert [d["id"] for d in items] == [network.id, critical.id, old.id]  # active first, then by category, rank
    assert items[0] == {**items[0], "category": "network", "priority": "high", "response_time_hours": 1.0,
                        "resolution_time_hours": 4.0, "is_active": True, "calendar_id": None,
                        "pause_statuses": ["waiting_on_customer"], "at_risk_percent": 75}


def test_list_definitions_as_requester_is_403(requester, ctx):
    _define()

    response = requester.get(DEFINITIONS)

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"


def test_list_definitions_without_token_is_401(api, ctx):
    assert api("GET", DEFINITIONS).status_code == 401


# ---------------------------------------------------------------- PATCH /sla/definitions/<id>

def test_patch_hours_keeps_open_clocks_and_applies_to_new_requests(admin, agent, factories, stored):
    definition = _define()
    old = factories.make_request(category="network", priority="high")
    before = _metric(agent, old.id)

    response = admin.patch(f"{DEFINITIONS}/{definition.id}", json={"response_time_hours": 2,
                                                                  "resolution_time_hours": 8})

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["id"] == definition.id
    assert body["response_time_hours"] == 2 and body["resolution_time_hours"] == 8
    assert body["rebuild"] is None
    assert _t(body["updated_at"]) > _t(body["created_at"])
    assert float(stored(SlaDefinition, definition.id)["resolution_time_hours"]) == 8
    after = _metric(agent, old.id)
    assert after == before  # open clocks keep the targets copied when they started
    assert _count(SlaEvent, SlaEvent.kind == "recalculated") == 0
    new = factories.make_request(category="network", priority="high")
    assert _metric(agent, new.id)["resolution_time_hours"] == 8
    audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "sla_definition.updated")).one()
    assert audit.before == {"response_time_hours": 1.0, "resolution_time_hours": 4.0}
    assert audit.after == {"response_time_hours": 2.0, "resolution_time_hours": 8.0}


def test_patch_apply_to_open_rebuilds_open_clocks_in_a_real_worker(app, admin, agent, factories):
    from portal.services import requests as svc

    definition = _define()
    open_req = factories.make_request(category="network", priority="high")
    done_req = factories.make_request(category="network", priority="high")
    svc.update_request(agent.user, done_req.id, {"status": "resolved"})
    before_open, before_done = _metric(agent, open_req.id), _metric(agent, done_req.id)

    response = admin.patch(f"{DEFINITIONS}/{definition.id}", json={"response_time_hours": 2,
                                                                  "resolution_time_hours": 12,
                                                                  "apply_to_open": True})

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["rebuild"] == "Open requests are being recalculated in the background."
    assert "apply_to_open" not in {k for k in response.get_json() if k != "rebuild"}
    assert _metric(agent, open_req.id) == before_open  # queued, not done in the request
    from portal.queueing import get_queue

    assert get_queue("analytics").count == 1

    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "worker", "--burst"],
                            cwd=ROOT, env=_env(app), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr

    rebuilt = _metric(agent, open_req.id)
    assert rebuilt["response_time_hours"] == 2 and rebuilt["resolution_time_hours"] == 12
    started = _t(rebuilt["started_at"])
    assert started == _t(before_open["started_at"])
    assert _t(rebuilt["response_due_at"]) == started + timedelta(hours=2)
    assert _t(rebuilt["resolution_due_at"]) == started + timedelta(hours=12)
    events = list(db.session.scalars(select(SlaEvent).where(SlaEvent.kind == "recalculated")))
    assert [e.request_id for e in events] == [open_req.id]
    assert events[0].detail["reason"] == "rules_changed"
    assert events[0].detail["from"]["resolution_hours"] == 4 and events[0].detail["to"]["resolution_hours"] == 12
    assert _metric(agent, done_req.id) == before_done  # a resolved request's clock is not rebuilt


def test_patch_changing_category_or_priority_is_422(admin, ctx):
    definition = _define()
    before = _everything()

    for changes in ({"category": "software"}, {"priority": "low"}):
        response = admin.patch(f"{DEFINITIONS}/{definition.id}", json=changes)
        assert response.status_code == 422
        assert set(changes) <= set(error_of(response)["fields"])

    assert _everything() == before


def test_patch_with_the_same_category_and_priority_is_fine(admin, ctx):
    definition = _define()

    response = admin.patch(f"{DEFINITIONS}/{definition.id}", json={"category": "network", "priority": "high",
                                                                  "at_risk_percent": 60})

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["at_risk_percent"] == 60


@pytest.mark.parametrize("changes, field", [
    ({"response_time_hours": 5}, "resolution_time_hours"),   # longer than the stored resolution time
    ({"resolution_time_hours": 0.5}, "resolution_time_hours"),
    ({"response_time_hours": -1}, "response_time_hours"),
    ({"response_time_hours": "2"}, "response_time_hours"),
    ({"at_risk_percent": 100}, "at_risk_percent"),
    ({"calendar_id": 424242}, "calendar_id"),
    ({"pause_statuses": ["closed"]}, "pause_statuses"),
    ({"apply_to_open": "yes"}, "apply_to_open"),
    ({"id": 7}, "id"),
])
def test_patch_invalid_is_422_and_changes_nothing(admin, ctx, changes, field):
    definition = _define()
    before = _everything()

    response = admin.patch(f"{DEFINITIONS}/{definition.id}", json=changes)

    assert response.status_code == 422, response.get_json()
    assert field in error_of(response)["fields"]
    assert _everything() == before


def test_patch_unknown_definition_is_404(admin, ctx):
    response = admin.patch(f"{DEFINITIONS}/999999", json={"response_time_hours": 2})

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


@pytest.mark.parametrize("role", ["agent", "manager", "requester"])
def test_patch_by_non_admin_is_403(factories, as_user, ctx, role):
    definition = _define()
    caller = as_user(factories.make_user(role))
    before = _everything()

    response = caller.patch(f"{DEFINITIONS}/{definition.id}", json={"response_time_hours": 2, "apply_to_open": True})

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert _everything() == before


def test_patch_malformed_json_is_400(admin, ctx):
    definition = _define()
    before = _everything()

    response = admin.patch(f"{DEFINITIONS}/{definition.id}", data="{not json", content_type="application/json")

    assert response.status_code == 400
    assert _everything() == before


# ---------------------------------------------------------------- GET .../sla-metrics

def test_sla_metrics_have_the_guides_shape(factories, requester):
    definition = _define()
    req = factories.make_request(requester.user, category="network", priority="high")

    response = requester.get(_metrics_path(req.id))

    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["sla_metrics"]
    metric = body["sla_metrics"][0]
    assert {"status", "response_sla_met", "resolution_sla_met", "is_breached", "breach_type"} <= set(metric)
    assert metric["status"] == "open"
    assert metric["definition_id"] == definition.id
    assert metric["response_sla_met"] is None and metric["resolution_sla_met"] is None
    assert metric["is_breached"] is False and metric["breach_type"] is None
    assert metric["response_at_risk"] is False and metric["resolution_at_risk"] is False
    assert metric["paused_seconds"] == 0 and metric["paused_since"] is None
    assert metric["responded_at"] is None and metric["resolved_at"] is None


def test_sla_metrics_of_someone_elses_request_is_404_for_a_requester(factories, requester):
    _define()
    other = factories.make_request(category="network", priority="high")

    response = requester.get(_metrics_path(other.id))

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_sla_metrics_unknown_request_is_404_and_no_token_is_401(agent, api):
    assert agent.get(_metrics_path(999_999)).status_code == 404
    assert api("GET", _metrics_path(1)).status_code == 401


def test_sla_metrics_visible_to_any_staff(factories, agent, manager):
    _define()
    req = factories.make_request(category="network", priority="high")

    assert _metric(agent, req.id) == _metric(manager, req.id)


def test_sla_metrics_without_a_matching_definition(factories, requester):
    _define()  # network/high only
    req = factories.make_request(requester.user, category="hardware", priority="medium")

    metric = _metric(requester, req.id)

    assert metric["definition_id"] is None
    assert metric["response_time_hours"] is None and metric["resolution_time_hours"] is None
    assert metric["response_due_at"] is None and metric["resolution_due_at"] is None
    assert metric["response_sla_met"] is None and metric["resolution_sla_met"] is None
    assert metric["is_breached"] is False and metric["breach_type"] is None


@pytest.mark.parametrize("hours_later, breach_type", [(2, "response"), (5, "both")])
def test_sla_metrics_after_the_breach_check(factories, requester, hours_later, breach_type):
    _define()
    req = factories.make_request(requester.user, category="network", priority="high")

    found = sla.check_all_breaches(now=utcnow() + timedelta(hours=hours_later))

    assert [r["request_id"] for r in found] == [req.id]
    metric = _metric(requester, req.id)
    assert metric["is_breached"] is True
    assert metric["breach_type"] == breach_type
    assert metric["response_sla_met"] is False
    assert metric["resolution_sla_met"] is (False if breach_type == "both" else None)


def test_sla_metrics_as_in_the_guide_resolution_breached_after_a_timely_response(factories, agent, requester):
    from portal.services import requests as svc

    _define()
    req = factories.make_request(requester.user, category="network", priority="high")
    svc.update_request(agent.user, req.id, {"status": "in_progress"})

    sla.check_all_breaches(now=utcnow() + timedelta(hours=5))

    metric = _metric(requester, req.id)
    assert {k: metric[k] for k in ("status", "response_sla_met", "resolution_sla_met", "is_breached",
                                   "breach_type")} == {
        "status": "in_progress", "response_sla_met": True, "resolution_sla_met": False, "is_breached": True,
        "breach_type": "resolution"}


def test_sla_metrics_after_the_at_risk_check(factories, requester):
    _define()
    req = factories.make_request(requester.user, category="network", priority="high")

    assert sla.check_at_risk(now=utcnow() + timedelta(minutes=50)) == 1

    metric = _metric(requester, req.id)
    assert metric["response_at_risk"] is True and metric["resolution_at_risk"] is False
    assert metric["is_breached"] is False


def test_sla_metrics_when_responded_on_time(factories, agent, requester):
    from portal.services import requests as svc

    _define()
    req = factories.make_request(requester.user, category="network", priority="high")
    svc.add_comment(agent.user, req.id, "Looking into it now.")

    metric = _metric(requester, req.id)

    assert metric["response_sla_met"] is True
    assert metric["responded_at"] is not None
    assert metric["resolution_sla_met"] is None


# ---------------------------------------------------------------- exemptions

@pytest.fixture()
def covered(factories, requester):
    """An open network/high request under a 24x7 1 h / 4 h definition."""
    _define()
    return factories.make_request(requester.user, category="network", priority="high")


REASON = "Waiting on the ISP to replace the line."


def test_grant_timed_resolution_exemption_moves_the_due_time(covered, manager, agent):
    before = _metric(agent, covered.id)

    response = manager.post(_exemptions_path(covered.id), json={
        "exemption_type": "resolution", "reason": REASON, "duration_hours": 24})

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["exemption_type"] == "resolution" and body["reason"] == REASON
    assert body["duration_hours"] == 24 and body["active"] is True
    assert body["granted_by"]["id"] == manager.user.id
    assert body["revoked_at"] is None and body["revoked_by"] is None
    assert _t(body["expires_at"]) == _t(body["granted_at"]) + timedelta(hours=24)
    after = _metric(agent, covered.id)
    assert _t(after["resolution_due_at"]) == _t(before["resolution_due_at"]) + timedelta(hours=24)
    assert after["response_due_at"] == before["response_due_at"]
    kinds = [(e.kind, e.target) for e in db.session.scalars(
        select(SlaEvent).where(SlaEvent.request_id == covered.id, SlaEvent.kind == "exempted"))]
    assert kinds == [("exempted", "resolution")]
    assert _count(AuditLog, AuditLog.action == "sla.exemption_granted") == 1


def test_grant_both_moves_both_due_times(covered, admin, agent):
    before = _metric(agent, covered.id)

    response = admin.post(_exemptions_path(covered.id), json={
        "exemption_type": "both", "reason": REASON, "duration_hours": 1.5})

    assert response.status_code == 201, response.get_json()
    after = _metric(agent, covered.id)
    for target in ("response", "resolution"):
        assert _t(after[f"{target}_due_at"]) == _t(before[f"{target}_due_at"]) + timedelta(hours=1.5)


def test_grant_indefinite_exemption_stops_the_clock(covered, manager, agent):
    before = _metric(agent, covered.id)

    response = manager.post(_exemptions_path(covered.id), json={
        "exemption_type": "resolution", "reason": REASON, "duration_hours": None})

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["duration_hours"] is None and response.get_json()["expires_at"] is None
    after = _metric(agent, covered.id)
    assert after["resolution_due_at"] is None
    assert after["response_due_at"] == before["response_due_at"]
    sla.check_all_breaches(now=utcnow() + timedelta(hours=100))
    assert _metric(agent, covered.id)["breach_type"] == "response"  # the exempt target cannot breach


def test_grant_without_duration_field_is_indefinite(covered, manager, agent):
    response = manager.post(_exemptions_path(covered.id), json={"exemption_type": "response", "reason": REASON})

    assert response.status_code == 201, response.get_json()
    assert _metric(agent, covered.id)["response_due_at"] is None


@pytest.mark.parametrize("role, status", [("agent", 403), ("requester", 403)])
def test_grant_by_agent_or_requester_is_refused(covered, factories, as_user, requester, role, status):
    caller = requester if role == "requester" else as_user(factories.make_user(role))
    before = _everything()

    response = caller.post(_exemptions_path(covered.id), json={
        "exemption_type": "resolution", "reason": REASON, "duration_hours": 24})

    assert response.status_code == status
    assert error_of(response)["code"] == "forbidden"
    assert _everything() == before


@pytest.mark.parametrize("body, field", [
    ({"exemption_type": "resolution", "duration_hours": 24}, "reason"),
    ({"exemption_type": "resolution", "reason": "", "duration_hours": 24}, "reason"),
    ({"exemption_type": "resolution", "reason": "   \n\t ", "duration_hours": 24}, "reason"),
    ({"exemption_type": "resolution", "reason": "x" * 2001}, "reason"),
    ({"exemption_type": "resolution", "reason": None}, "reason"),
    ({"exemption_type": "resolution", "reason": "nul\u0000byte"}, "reason"),
    ({"reason": REASON}, "exemption_type"),
    ({"exemption_type": "sometimes", "reason": REASON}, "exemption_type"),
    ({"exemption_type": None, "reason": REASON}, "exemption_type"),
    ({"exemption_type": "resolution", "reason": REASON, "duration_hours": 0}, "duration_hours"),
    ({"exemption_type": "resolution", "reason": REASON, "duration_hours": -1}, "duration_hours"),
    ({"exemption_type": "resolution", "reason": REASON, "duration_hours": 0.001}, "duration_hours"),
    ({"exemption_type": "resolution", "reason": REASON, "duration_hours": 1.234}, "duration_hours"),
    ({"exemption_type": "resolution", "reason": REASON, "duration_hours": 100000}, "duration_hours"),
    ({"exemption_type": "resolution", "reason": REASON, "duration_hours": "24"}, "duration_hours"),
    ({"exemption_type": "resolution", "reason": REASON, "duration_hours": True}, "duration_hours"),
    ({"exemption_type": "resolution", "reason": REASON, "expires_at": "2030-01-01"}, "expires_at"),
])
def test_grant_invalid_is_422_and_changes_nothing(covered, manager, ctx, body, field):
    before = _everything()

    response = manager.post(_exemptions_path(covered.id), json=body)

    assert response.status_code == 422, response.get_json()
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert field in error["fields"], error
    assert _everything() == before


def test_grant_longest_duration_is_accepted(covered, manager):
    response = manager.post(_exemptions_path(covered.id), json={
        "exemption_type": "both", "reason": REASON, "duration_hours": 8760})

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["duration_hours"] == 8760


def test_grant_after_a_breach_leaves_the_breach_standing(covered, manager, agent):
    sla.check_all_breaches(now=utcnow() + timedelta(hours=2))

    response = manager.post(_exemptions_path(covered.id), json={"exemption_type": "both", "reason": REASON})

    assert response.status_code == 201
    metric = _metric(agent, covered.id)
    assert metric["is_breached"] is True and metric["breach_type"] == "response"
    assert metric["response_sla_met"] is False


def test_grant_on_a_request_without_sla_is_409(factories, manager, ctx):
    _define()
    req = factories.make_request(category="hardware", priority="low")
    before = _everything()

    response = manager.post(_exemptions_path(req.id), json={
        "exemption_type": "resolution", "reason": REASON, "duration_hours": 24})

    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"
    assert _everything() == before


def test_grant_on_an_unknown_request_is_404(manager, ctx):
    response = manager.post(_exemptions_path(999_999), json={"exemption_type": "resolution", "reason": REASON})

    assert response.status_code == 404


def test_grant_malformed_json_is_400(covered, manager):
    before = _everything()

    response = manager.post(_exemptions_path(covered.id), data="{", content_type="application/json")

    assert response.status_code == 400
    assert _everything() == before


def test_list_exemptions_shows_which_are_active(covered, manager, agent):
    timed = manager.post(_exemptions_path(covered.id), json={
        "exemption_type": "resolution", "reason": "First", "duration_hours": 24}).get_json()
    ended = manager.post(_exemptions_path(covered.id), json={
        "exemption_type": "response", "reason": "Second"}).get_json()
    assert manager.post(f"{_exemptions_path(covered.id)}/{ended['id']}/revoke").status_code == 200

    response = agent.get(_exemptions_path(covered.id))

    assert response.status_code == 200
    body = response.get_json()
    assert [x["id"] for x in body["exemptions"]] == [ended["id"], timed["id"]]  # newest first
    assert {x["id"]: x["active"] for x in body["exemptions"]} == {timed["id"]: True, ended["id"]: False}
    assert [x["id"] for x in body["active"]] == [timed["id"]]
    assert body["active"][0]["reason"] == "First"


def test_list_exemptions_empty_and_refused_to_requesters(covered, requester, agent):
    assert agent.get(_exemptions_path(covered.id)).get_json() == {"exemptions": [], "active": []}
    response = requester.get(_exemptions_path(covered.id))
    assert response.status_code == 403
    assert agent.get(_exemptions_path(999_999)).status_code == 404


def test_list_shows_an_expired_exemption_as_inactive(covered, manager, agent):
    sla.grant_exemption(manager.user, covered.id, REASON, "resolution", 1, now=utcnow() - timedelta(hours=3))

    body = agent.get(_exemptions_path(covered.id)).get_json()

    assert [x["active"] for x in body["exemptions"]] == [False]
    assert body["active"] == []


def test_revoke_ends_the_exemption_and_restarts_the_clock(covered, manager, agent):
    before = _metric(agent, covered.id)
    granted = manager.post(_exemptions_path(covered.id), json={
        "exemption_type": "resolution", "reason": REASON}).get_json()
    assert _metric(agent, covered.id)["resolution_due_at"] is None

    response = manager.post(f"{_exemptions_path(covered.id)}/{granted['id']}/revoke")

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["id"] == granted["id"] and body["active"] is False
    assert body["revoked_by"]["id"] == manager.user.id
    revoked_at = _t(body["revoked_at"])
    assert revoked_at >= _t(body["granted_at"])
    after = _metric(agent, covered.id)
    # The clock did not count from the grant to the revocation.
    assert _t(after["resolution_due_at"]) == _t(before["resolution_due_at"]) + (revoked_at - _t(body["granted_at"]))
    assert _count(SlaEvent, SlaEvent.kind == "exemption_revoked") == 1
    assert _count(AuditLog, AuditLog.action == "sla.exemption_revoked") == 1


def test_revoke_twice_is_409(covered, manager, ctx):
    granted = manager.post(_exemptions_path(covered.id), json={
        "exemption_type": "both", "reason": REASON, "duration_hours": 2}).get_json()
    path = f"{_exemptions_path(covered.id)}/{granted['id']}/revoke"
    assert manager.post(path).status_code == 200
    before = _everything()

    response = manager.post(path)

    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"
    assert _everything() == before


def test_revoke_an_expired_exemption_is_409(covered, manager, ctx):
    expired = sla.grant_exemption(manager.user, covered.id, REASON, "resolution", 1,
                                  now=utcnow() - timedelta(hours=3))
    before = _everything()

    response = manager.post(f"{_exemptions_path(covered.id)}/{expired.id}/revoke")

    assert response.status_code == 409
    assert _everything() == before


def test_revoke_an_exemption_of_another_request_is_404(covered, factories, manager, ctx):
    other = factories.make_request(category="network", priority="high")
    theirs = manager.post(_exemptions_path(other.id), json={"exemption_type": "both", "reason": REASON}).get_json()
    before = _everything()

    response = manager.post(f"{_exemptions_path(covered.id)}/{theirs['id']}/revoke")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert _everything() == before
    assert db.session.get(SlaExemption, theirs["id"]).revoked_at is None


def test_revoke_unknown_exemption_is_404(covered, manager):
    assert manager.post(f"{_exemptions_path(covered.id)}/999999/revoke").status_code == 404


@pytest.mark.parametrize("role", ["agent", "requester"])
def test_revoke_by_agent_or_requester_is_403(covered, factories, as_user, requester, manager, ctx, role):
    granted = manager.post(_exemptions_path(covered.id), json={
        "exemption_type": "resolution", "reason": REASON}).get_json()
    caller = requester if role == "requester" else as_user(factories.make_user(role))
    before = _everything()

    response = caller.post(f"{_exemptions_path(covered.id)}/{granted['id']}/revoke")

    assert response.status_code == 403
    assert _everything() == before


# ---------------------------------------------------------------- a desk of breached and at-risk work

@pytest.fixture()
def desk(factories):
    """Open requests under 24x7 SLAs: network/high 1 h / 4 h, software/low 1 h / 2 h.

    old:       network/high raised 80 h ago -> both targets breached, ~79 h overdue
    software:  software/low raised 5 h ago  -> both breached, ~4 h overdue
    late:      network/high raised 2 h ago  -> response breached, ~1 h overdue; assigned to an agent
    warned:    network/high raised 48 min ago -> response at risk (warns at 45 min)
    answered:  network/high, answered on time by an agent (one target met)
    fresh:     network/high, just raised
    nosla:     hardware/medium, no definition
    """
    from portal.services import requests as svc

    _define("network", "high", 1, 4)
    _define("software", "low", 1, 2)
    staff = factories.make_user("agent", name="Alex Agent")
    made = {name: factories.make_request(title=name.title(), category=category, priority=priority).id
            for name, category, priority in (
                ("old", "network", "high"), ("software", "software", "low"), ("late", "network", "high"),
                ("warned", "network", "high"), ("answered", "network", "high"), ("fresh", "network", "high"),
                ("nosla", "hardware", "medium"))}
    svc.add_comment(staff, made["answered"], "On it.")
    svc.assign(staff, made["late"], staff.id)
    for name, hours in (("old", 80), ("software", 5), ("late", 2), ("warned", 0.8)):
        _backdate(made[name], hours)
    _run_checks()
    made["agent"] = staff
    return made


STATS = "analytics/sla-statistics"
COMPLIANCE = "analytics/sla-compliance"
BREACHES = "/api/dashboard/admin/sla-breaches"
SUMMARY = "/api/dashboard/admin/summary"


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_statistics_count_the_breaches(desk, factories, as_user, role):
    response = as_user(factories.make_user(role)).get(STATS, query={"days": "30"})

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["days"] == 30
    assert body["total_breaches"] == 5
    assert body["response_breaches"] == 3
    assert body["resolution_breaches"] == 2
    assert body["breaches_by_priority"] == {"high": 3, "low": 2}
    assert body["breaches_by_category"] == {"network": 3, "software": 2}
    assert body["targets_met"] == 1 and body["targets_decided"] == 6
    assert body["compliance_rate"] == round(1 / 6, 4)


def test_statistics_default_window_and_empty_portal(manager):
    body = manager.get(STATS).get_json()

    assert body == {"days": 30, "total_breaches": 0, "response_breaches": 0, "resolution_breaches": 0,
                    "breaches_by_priority": {}, "breaches_by_category": {}, "targets_met": 0,
                    "targets_decided": 0, "compliance_rate": None}


def test_statistics_only_count_breaches_inside_the_window(desk, manager):
    old_events = db.session.scalars(select(SlaEvent).where(SlaEvent.request_id == desk["old"],
                                                           SlaEvent.kind == "breached"))
    for event in old_events:
        event.at -= timedelta(days=40)
    # The figures come from the clocks' breach times (through the daily rollups): move those too.
    metric = db.session.scalar(select(SlaMetric).where(SlaMetric.request_id == desk["old"]))
    for target in ("response", "resolution"):
        if getattr(metric, f"{target}_breached_at") is not None:
            setattr(metric, f"{target}_breached_at", getattr(metric, f"{target}_breached_at") - timedelta(days=40))
    db.session.commit()

    assert manager.get(STATS, query={"days": "30"}).get_json()["total_breaches"] == 3
    assert manager.get(STATS, query={"days": "60"}).get_json()["total_breaches"] == 5


def test_statistics_breach_check_running_twice_counts_once(desk, manager):
    _run_checks()
    sla.check_all_breaches(now=utcnow() + timedelta(minutes=1))

    assert manager.get(STATS).get_json()["total_breaches"] == 5


@pytest.mark.parametrize("days", ["0", "366", "abc", "-5", "1.5", " 30", "３０"])
@pytest.mark.parametrize("path", [STATS, COMPLIANCE])
def test_statistics_bad_days_is_422(manager, path, days):
    response = manager.get(path, query={"days": days})

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error" and "days" in error["fields"]


@pytest.mark.parametrize("path", [STATS, COMPLIANCE])
def test_statistics_window_bounds_are_accepted(manager, path):
    assert manager.get(path, query={"days": "1"}).status_code == 200
    assert manager.get(path, query={"days": "365"}).get_json()["days"] == 365


@pytest.mark.parametrize("role", ["agent", "requester"])
@pytest.mark.parametrize("path", [STATS, COMPLIANCE])
def test_statistics_refused_to_agents_and_requesters(factories, as_user, role, path):
    response = as_user(factories.make_user(role)).get(path, query={"days": "30"})

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"


@pytest.mark.parametrize("path", [STATS, COMPLIANCE])
def test_statistics_without_token_is_401(api, path):
    assert api("GET", path).status_code == 401


def test_compliance_report_shape_and_numbers(desk, manager):
    response = manager.get(COMPLIANCE, query={"days": "90"})

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert set(body) == {"days", "overall", "by_category", "by_priority", "by_agent", "weekly"}
    assert body["days"] == 90
    assert body["overall"] == {"met": 1, "total": 6, "rate": round(1 / 6, 4)}
    assert body["by_category"] == [{"category": "network", "met": 1, "total": 4, "rate": 0.25},
                                   {"category": "software", "met": 0, "total": 2, "rate": 0.0}]
    assert body["by_priority"] == [{"priority": "high", "met": 1, "total": 4, "rate": 0.25},
                                   {"priority": "low", "met": 0, "total": 2, "rate": 0.0}]
    assert body["by_agent"] == [{"agent": "Alex Agent", "met": 0, "total": 1, "rate": 0.0},
                                {"agent": "Unassigned", "met": 1, "total": 5, "rate": 0.2}]
    assert body["weekly"], body
    assert sum(w["total"] for w in body["weekly"]) == 6 and sum(w["met"] for w in body["weekly"]) == 1
    for week in body["weekly"]:
        assert set(week) == {"week", "met", "total", "rate"}
        assert datetime.fromisoformat(week["week"]).weekday() == 0


def test_compliance_default_window_is_90_days(manager):
    body = manager.get(COMPLIANCE).get_json()

    assert body["days"] == 90
    assert body["overall"] == {"met": 0, "total": 0, "rate": None}
    assert body["by_category"] == [] and body["by_priority"] == [] and body["by_agent"] == [] and body["weekly"] == []


# ---------------------------------------------------------------- /api/dashboard/admin/sla-breaches

def _rows(caller, **query) -> list[dict]:
    response = caller.get(BREACHES, query=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def test_breach_list_most_overdue_first(desk, admin):
    caller = admin

    response = caller.get(BREACHES, query={"page": "1", "per_page": "10"})

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["page"], body["per_page"], body["total"], body["pages"]) == (1, 10, 4, 1)
    items = body["items"]
    assert [i["request_id"] for i in items] == [desk["old"], desk["software"], desk["late"], desk["warned"]]
    assert [i["state"] for i in items] == ["breached", "breached", "breached", "at_risk"]
    assert [i["breach_type"] for i in items] == ["both", "both", "response", None]
    overdue = [i["hours_overdue"] for i in items]
    assert overdue[:3] == sorted(overdue[:3], reverse=True)
    assert overdue[0] == pytest.approx(79, abs=0.05)
    assert overdue[1] == pytest.approx(4, abs=0.05)
    assert overdue[2] == pytest.approx(1, abs=0.05)
    warned = items[3]
    assert warned["hours_overdue"] == 0 and warned["hours_left"] == pytest.approx(0.2, abs=0.05)
    late = items[2]
    assert late["assignee"] == "Alex Agent" and late["title"] == "Late"
    assert late["priority"] == "high" and late["category"] == "network" and late["status"] == "open"
    assert _t(late["response_due_at"]) < utcnow() < _t(late["resolution_due_at"])


def test_breach_list_pages(desk, admin):
    first = admin.get(BREACHES, query={"per_page": "3"}).get_json()
    second = admin.get(BREACHES, query={"per_page": "3", "page": "2"}).get_json()
    beyond = admin.get(BREACHES, query={"per_page": "3", "page": "3"}).get_json()

    assert [i["request_id"] for i in first["items"]] == [desk["old"], desk["software"], desk["late"]]
    assert [i["request_id"] for i in second["items"]] == [desk["warned"]]
    # Past the end: the last page, as the request list does.
    assert beyond["page"] == 2 and [i["request_id"] for i in beyond["items"]] == [desk["warned"]]
    assert beyond["total"] == 4 and first["pages"] == 2
    assert admin.get(BREACHES).get_json()["per_page"] == 10


def test_breach_list_filters(desk, admin):
    ids = lambda **q: [i["request_id"] for i in _rows(admin, **q)]  # noqa: E731
    old_created = db.session.get(ServiceRequest, desk["old"]).created_at.date()

    assert ids(priority="low") == [desk["software"]]
    assert ids(priority="critical") == []
    assert ids(category="network") == [desk["old"], desk["late"], desk["warned"]]
    assert ids(category="software", priority="low") == [desk["software"]]
    assert ids(state="breached") == [desk["old"], desk["software"], desk["late"]]
    assert ids(state="at_risk") == [desk["warned"]]
    assert ids(assignee=str(desk["agent"].id)) == [desk["late"]]
    assert ids(assignee="none") == [desk["old"], desk["software"], desk["warned"]]
    assert ids(**{"from": old_created.isoformat(), "to": old_created.isoformat()}) == [desk["old"]]
    assert ids(**{"from": (old_created + timedelta(days=1)).isoformat()}) == [
        desk["software"], desk["late"], desk["warned"]]
    assert ids(to=old_created.isoformat()) == [desk["old"]]


def test_breach_list_leaves_out_resolved_requests(desk, admin):
    from portal.services import requests as svc

    svc.update_request(desk["agent"], desk["old"], {"status": "resolved"})

    assert desk["old"] not in [i["request_id"] for i in _rows(admin)]


@pytest.mark.parametrize("query, field", [
    ({"page": "0"}, "page"),
    ({"page": "-1"}, "page"),
    ({"page": "x"}, "page"),
    ({"page": "1.5"}, "page"),
    ({"per_page": "0"}, "per_page"),
    ({"per_page": "101"}, "per_page"),
    ({"per_page": "ten"}, "per_page"),
    ({"priority": "urgent"}, "priority"),
    ({"category": "food"}, "category"),
    ({"state": "late"}, "state"),
    ({"assignee": "me"}, "assignee"),
    ({"from": "yesterday"}, "from"),
    ({"to": "2026-13-01"}, "to"),
    ({"from": "2026-02-01", "to": "2026-01-01"}, "to"),
])
def test_breach_list_bad_arguments_are_422(admin, query, field):
    response = admin.get(BREACHES, query=query)

    assert response.status_code == 422, response.get_json()
    error = error_of(response)
    assert error["code"] == "validation_error" and field in error["fields"]


def test_breach_list_end_before_start_is_422_naming_the_end_date(desk, admin):
    response = admin.get(BREACHES, query={"priority": "low", "from": "2026-02-01", "to": "2026-01-31"})

    assert response.status_code == 422, response.get_json()
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert error["fields"] == {"to": "The end date is before the start date."}


def test_breach_list_category_with_a_nul_character_is_422_not_500(admin):
    response = admin.get(BREACHES, query={"category": "net\u0000work"})

    assert response.status_code == 422, (response.status_code, response.get_json())
    assert "category" in error_of(response)["fields"]


def test_breach_list_last_representable_to_date_is_not_500(desk, admin):
    response = admin.get(BREACHES, query={"to": "9999-12-31"})

    assert response.status_code == 200, (response.status_code, response.get_json())
    assert response.get_json()["total"] == 4


def test_breach_list_earliest_from_date_is_fine(desk, admin):
    assert len(_rows(admin, **{"from": "0001-01-01"})) == 4


def test_breach_list_no_longer_shows_a_target_exempted_until_revoked_as_at_risk(factories, admin, agent):
    _define()
    req = factories.make_request(category="network", priority="high")
    _backdate(req.id, 0.8)
    _run_checks()
    assert [i["state"] for i in _rows(admin)] == ["at_risk"]

    granted = admin.post(_exemptions_path(req.id), json={"exemption_type": "both", "reason": REASON})

    assert granted.status_code == 201
    metric = _metric(agent, req.id)
    assert metric["response_due_at"] is None and metric["resolution_due_at"] is None
    # An exempt target cannot breach, so it is not at risk of breaching.
    assert metric["response_at_risk"] is False
    assert _rows(admin) == []
    assert admin.get(SUMMARY).get_json()["at_risk_now"] == 0


@pytest.mark.parametrize("path", [BREACHES, SUMMARY])
@pytest.mark.parametrize("role", ["agent", "manager", "requester"])
def test_dashboard_refused_to_everyone_but_admins(factories, as_user, role, path):
    response = as_user(factories.make_user(role)).get(path)

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"


@pytest.mark.parametrize("path", [BREACHES, SUMMARY])
def test_dashboard_anonymous_is_401(api, path):
    response = api("GET", path)

    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# ---------------------------------------------------------------- /api/dashboard/admin/summary

def test_dashboard_summary(desk, admin):
    response = admin.get(SUMMARY)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert {"open_by_status", "open_by_priority", "breached_now", "at_risk_now", "met_rate_30d"} <= set(body)
    assert body["open_by_status"] == {"open": 7, "in_progress": 0, "waiting_on_customer": 0}
    assert body["open_by_priority"] == {"critical": 0, "high": 5, "medium": 1, "low": 1}
    assert body["open_total"] == 7
    assert body["breached_now"] == 3
    assert body["at_risk_now"] == 1
    assert body["met_rate_30d"] == round(1 / 6, 4)
    assert body["targets_decided_30d"] == 6


def test_dashboard_summary_of_an_empty_portal(admin):
    body = admin.get(SUMMARY).get_json()

    assert body["open_by_status"] == {"open": 0, "in_progress": 0, "waiting_on_customer": 0}
    assert body["breached_now"] == 0 and body["at_risk_now"] == 0 and body["met_rate_30d"] is None

