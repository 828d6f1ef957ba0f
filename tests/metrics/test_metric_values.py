"""What /metrics says after real traffic, real changes, a real SLA check and a real worker."""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta

from sqlalchemy.exc import OperationalError

from portal.models._time import utcnow
from portal.queueing import push
from portal.services import health, sla
from portal.services import requests as svc
from tests.factories import make_verified_backup
from tests.jobs.test_worker import ROOT, _env, _flask
from tests.services.sla_helpers import make_definition


def test_http_requests_are_counted_by_route_rule_never_the_raw_path(client, scrape):
    before = scrape()
    for _ in range(3):
        assert client.get("/login").status_code == 200
    assert client.get("/no/such/page/12345").status_code == 404
    assert client.get("/requests/987654").status_code == 302  # signed out: to the sign-in page
    after = scrape()

    def grew(name, **labels):
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew("app_requests_total", method="GET", endpoint="/login", status="200") == 3
    assert grew("app_requests_total", method="GET", endpoint="unmatched", status="404") == 1
    assert grew("app_requests_total", method="GET", endpoint="/requests/<int:request_id>", status="302") == 1
    assert grew("app_request_duration_seconds_count", method="GET", endpoint="/login") == 3
    assert grew("app_request_duration_seconds_bucket", method="GET", endpoint="/login", le="+Inf") == 3
    # The raw paths never become label values (a sample's value may hold any digits).
    assert "/no/such/page" not in after.text and "/requests/987654" not in after.text


def test_requests_raised_resolved_and_open_now(ctx, factories, scrape):
    before = scrape()
    agent = factories.make_user("agent")
    one = factories.make_request(category="hardware", priority="high")
    factories.make_request(category="hardware", priority="high")
    factories.make_request(category="network", priority="low")
    svc.change_status(agent, one.id, "in_progress")
    svc.change_status(agent, one.id, "resolved")
    svc.change_status(agent, one.id, "closed")  # closing a resolved request completes nothing more
    after = scrape()

    def grew(name, **labels):
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew("service_requests_created_total", category="hardware", priority="high") == 2
    assert grew("service_requests_created_total", category="network", priority="low") == 1
    assert grew("service_requests_completed_total", category="hardware", priority="high") == 1
    assert grew("service_request_resolution_seconds_count", category="hardware", priority="high") == 1
    assert grew("service_request_resolution_seconds_bucket", category="hardware", priority="high", le="3600.0") == 1
    assert after.value("service_requests_active", category="hardware", priority="high", status="open") == 1
    assert after.value("service_requests_active", category="network", priority="low", status="open") == 1
    assert after.value("service_requests_active", status="closed") == 0
    assert after.value("service_requests_active") == 2


def test_a_refused_change_counts_nothing(ctx, factories, scrape):
    agent = factories.make_user("agent")
    req = factories.make_request(category="hardware", priority="medium")
    before = scrape()
    try:
        svc.change_status(agent, req.id, "closed")  # open -> closed is refused, nothing commits
    except Exception:  # noqa: BLE001 - the refusal itself is tested elsewhere
        pass
    # flushed (so noted) but rolled back: never counted
    from portal.extensions import db
    from portal.models import ServiceRequest

    db.session.add(ServiceRequest(title="Ghost", description="Never saved.", category="hardware", priority="medium",
                                  status="open", requester_id=req.requester_id))
    db.session.flush()
    db.session.rollback()
    after = scrape()
    assert after.value("service_requests_completed_total") == before.value("service_requests_completed_total")
    assert after.value("service_requests_created_total") == before.value("service_requests_created_total")


def test_sla_breaches_are_counted_once_by_category_priority_and_type(ctx, factories, scrape):
    make_definition("hardware", "critical", 1, 4)
    factories.make_request(category="hardware", priority="critical")
    factories.make_request(category="hardware", priority="critical")
    before = scrape()
    sla.check_all_breaches(now=utcnow() + timedelta(hours=2))   # the response targets
    sla.check_all_breaches(now=utcnow() + timedelta(hours=10))  # the resolution targets
    sla.check_all_breaches(now=utcnow() + timedelta(hours=11))  # nothing new
    after = scrape()
    labels = {"category": "hardware", "priority": "critical"}
    assert after.value("sla_breaches_total", breach_type="response", **labels) - \
        before.value("sla_breaches_total", breach_type="response", **labels) == 2
    assert after.value("sla_breaches_total", breach_type="resolution", **labels) - \
        before.value("sla_breaches_total", breach_type="resolution", **labels) == 2


def test_a_late_resolution_recorded_by_the_clock_is_a_breach_too(ctx, factories, scrape, monkeypatch):
    make_definition("software", "high", 1, 2)
    agent = factories.make_user("agent")
    req = factories.make_request(category="software", priority="high")
    before = scrape()
    later = utcnow() + timedelta(hours=3)
    monkeypatch.setattr("portal.services.requests.commands.utcnow", lambda: later)
    monkeypatch.setattr("portal.services.sla.clock.utcnow", lambda: later, raising=False)
    svc.change_status(agent, req.id, "resolved")  # both targets missed, recorded at resolution
    after = scrape()
    grew = after.value("sla_breaches_total", category="software", priority="high") - \
        before.value("sla_breaches_total", category="software", priority="high")
    assert grew == 2


def test_failed_sign_ins_and_refused_tokens(client, factories, scrape):
    user = factories.make_user("agent")
    before = scrape()
    assert client.post("/login", data={"email": user.email, "password": "wrong-password!"}).status_code == 401
    assert client.post("/login", data={"email": "nobody@example.com", "password": "whatever-pass"}).status_code == 401
    token_request = {"email": user.email, "password": "nope-nope-nope"}
    assert client.post("/api/v1/auth/token", json=token_request).status_code == 401
    assert client.get("/api/v1/service-requests", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    assert client.get("/api/v1/service-requests").status_code == 401
    after = scrape()

    def grew(**labels):
        return after.value("auth_failures_total", **labels) - before.value("auth_failures_total", **labels)

    assert grew(method="password", reason="invalid_credentials") == 2
    assert grew(method="password", reason="unknown_user") == 1
    assert grew(method="token", reason="unknown_token") == 1
    assert grew(method="token", reason="missing") == 1
    assert user.email not in after.text  # reasons, never who


def test_unhandled_errors_are_counted_once_with_their_type(client, scrape, monkeypatch):
    before = scrape()

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr("portal.api.routes.openapi_document", broken)
    assert client.get("/api/v1/openapi.json").status_code == 500

    def database_gone():
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr("portal.api.routes.openapi_document", database_gone)
    assert client.get("/api/v1/openapi.json").status_code == 500
    after = scrape()

    def grew(**labels):
        return after.value("app_errors_total", **labels) - before.value("app_errors_total", **labels)

    assert grew(error_type="unhandled_exception", severity="error") == 1
    assert grew(error_type="database_unavailable", severity="critical") == 1
    assert grew() == 2  # the 500 answers are not counted a second time
    assert after.value("app_requests_total", endpoint="/api/v1/openapi.json", status="500") - \
        before.value("app_requests_total", endpoint="/api/v1/openapi.json", status="500") == 2


def test_jobs_from_a_real_worker_and_the_queues(app, ctx, scrape):
    push("tests.jobs.sample_jobs.nap", 0, queue="default")
    push("tests.jobs.sample_jobs.nap", 0, queue="default")
    failing = push("tests.jobs.sample_jobs.fail", "printer on fire", queue="default")
    failing.retries_left = 0
    failing.save()
    push("tests.jobs.sample_jobs.nap", 0, queue="email")  # no worker serves email here
    waiting = scrape()
    assert waiting.value("queue_depth", queue="default") == 3
    assert waiting.value("queue_depth", queue="email") == 1

    result = subprocess.run(_flask("jobs", "worker", "--queues", "default", "--burst"), cwd=ROOT, env=_env(app),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    done = scrape()
    assert done.value("jobs_total", task_name="tests.jobs.sample_jobs.nap", status="finished") == 2
    assert done.value("jobs_total", task_name="tests.jobs.sample_jobs.fail", status="failed-final") == 1
    assert done.value("job_duration_seconds_count", task_name="tests.jobs.sample_jobs.nap") == 2
    assert done.value("job_duration_seconds_bucket", task_name="tests.jobs.sample_jobs.nap", le="+Inf") == 2
    assert done.value("queue_depth", queue="default") == 0
    assert done.value("queue_depth", queue="email") == 1
    assert done.value("dead_letter_jobs", queue="default") == 1
    assert done.value("dead_letters_total", queue="default") == 1


def test_workers_scheduler_sla_check_and_backup_freshness(app, ctx, scrape):
    assert scrape().value("workers_alive", queue="default") == 0
    proc = subprocess.Popen(_flask("jobs", "worker", "--queues", "default"), cwd=ROOT, env=_env(app),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while scrape().value("workers_alive", queue="default") < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        samples = scrape()
        assert samples.value("workers_alive", queue="default") == 1
        assert samples.value("workers_alive", queue="email") == 0
        assert samples.value("scheduler_up") == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    never = scrape()
    assert never.value("sla_check_last_run_timestamp_seconds") == 0
    assert never.value("sla_check_age_seconds") == float("inf")
    health.record_sla_check(utcnow() - timedelta(minutes=20))
    stale = scrape()
    assert 20 * 60 <= stale.value("sla_check_age_seconds") < 21 * 60

    verified = utcnow() - timedelta(hours=30)
    make_verified_backup("backup_20261201_020000.sql.gz.enc", verified, size=4321)
    figures = scrape()
    assert abs(figures.value("backup_last_success_timestamp_seconds") - verified.timestamp()) < 1
    assert figures.value("backup_size_bytes") == 4321


def test_pool_and_process_figures(client, app, scrape):
    client.get("/login")
    samples = scrape()
    assert samples.value("db_pool_size") == app.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_size"]
    assert samples.value("db_pool_checked_out") >= 0
    assert samples.value("db_pool_overflow") == 0
    assert samples.value("process_resident_memory_bytes") > 0
    assert samples.value("metrics_source_up", source="database") == 1
    assert samples.value("metrics_source_up", source="redis") == 1
    assert samples.value("redis_memory_used_bytes") > 0
    assert samples.matching("app_info", environment="test")


def test_active_requests_gauge_counts_the_unresolved_requests_from_the_tally(ctx, factories, client):
    """The scrape reads the request tally (a few thousand rows at any size), not the requests: its
    figures equal a count of the unresolved requests after creates and status changes."""
    from portal.services import requests as svc
    from tests.metrics.conftest import Samples

    agent = factories.make_user("agent")
    made = [factories.make_request(priority=p, category=c)
            for p, c in (("high", "hardware"), ("high", "hardware"), ("low", "software"), ("low", "network"))]
    svc.change_status(agent, made[1].id, "in_progress")
    svc.change_status(agent, made[2].id, "resolved")
    samples = Samples(client.get("/metrics").get_data(as_text=True))
    assert samples.value("service_requests_active", category="hardware", priority="high", status="open") == 1
    assert samples.value("service_requests_active", category="hardware", priority="high", status="in_progress") == 1
    assert samples.value("service_requests_active", category="network", priority="low", status="open") == 1
    assert not samples.matching("service_requests_active", category="software")  # resolved: not active


def test_a_source_down_leaves_out_its_figures_and_says_so(app, client, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    client.get("/login")
    monkeypatch.setitem(app.config, "REDIS_URL", dead)

    def broken_read(*_args, **_kwargs):
        from sqlalchemy import text

        from portal.extensions import db

        return db.session.execute(text("SELECT no_such_column FROM request_tally")).all()

    monkeypatch.setattr("portal.services.request_tally.grouped", broken_read)
    started = time.monotonic()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert time.monotonic() - started < 5
    from tests.metrics.conftest import Samples

    samples = Samples(response.get_data(as_text=True))
    assert samples.value("metrics_source_up", source="redis") == 0
    assert samples.value("metrics_source_up", source="database") == 0
    assert "queue_depth" not in samples.names and "service_requests_active" not in samples.names
    assert "app_requests_total" in samples.names  # this process's own counts still answer
    assert client.get("/login").status_code == 200  # and the session is usable after the failed read
