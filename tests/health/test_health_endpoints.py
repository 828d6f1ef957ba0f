"""/health, /health/live and /health/ready against the real PostgreSQL, Redis, workers and scheduler."""

from __future__ import annotations

import os
import signal
import threading
import time
from urllib.parse import urlsplit

from portal import __version__
from tests.health.conftest import app_with_database, wait_for

COMPONENTS = {"database", "redis", "workers", "scheduler"}


def _get(client, url: str, **kw):
    started = time.monotonic()
    response = client.get(url, **kw)
    return response, time.monotonic() - started


def _assert_reveals_nothing(app, response) -> None:
    """No host, port, socket path, user name or password of the database or Redis in a public body."""
    body = response.get_data(as_text=True)
    for url in (app.config["DATABASE_URL"], app.config["REDIS_URL"]):
        parts = urlsplit(url)
        for secret in (parts.hostname, parts.password, parts.username, parts.path.strip("/") if parts.hostname
                       is None else None, str(parts.port) if parts.port else None):
            if secret and len(secret) > 2:
                assert secret not in body, f"{secret!r} leaked into {body}"
    assert "127.0.0.1" not in body and "localhost" not in body and "postgresql" not in body
    assert "secret-pw" not in body


def test_health_is_healthy_with_a_live_worker_and_scheduler(app, client, processes):
    processes.worker()
    processes.scheduler()

    response = wait_for(lambda: (r := client.get("/health")).get_json()["status"] == "healthy" and r, 30,
                        "/health to say healthy")
    body = response.get_json()
    assert response.status_code == 200
    assert body["components"] == dict.fromkeys(COMPONENTS, "healthy")
    assert body["version"] == __version__
    assert body["environment"] == "test"
    assert set(body["workers"]["alive_per_queue"]) == {"email", "default", "analytics", "reports", "exports",
                                                       "backup"}
    assert all(count == 1 for count in body["workers"]["alive_per_queue"].values())
    assert body["timestamp"].endswith("+00:00")
    assert response.headers["Cache-Control"] == "no-store"
    _assert_reveals_nothing(app, response)


def test_health_is_degraded_without_workers_or_scheduler(app, client):
    response, took = _get(client, "/health")
    body = response.get_json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["components"] == {"database": "healthy", "redis": "healthy", "workers": "unhealthy",
                                  "scheduler": "unhealthy"}
    assert set(body["workers"]["alive_per_queue"].values()) == {0}
    assert took < 2


def test_health_counts_a_worker_that_stopped_as_gone(app, client, processes):
    worker = processes.worker(queues="email")
    body = client.get("/health").get_json()
    assert body["workers"]["alive_per_queue"]["email"] == 1
    assert body["workers"]["alive_per_queue"]["default"] == 0  # a queue nobody serves
    assert body["components"]["workers"] == "unhealthy"

    processes.stop(worker)  # a clean stop registers the worker's death
    wait_for(lambda: client.get("/health").get_json()["workers"]["alive_per_queue"]["email"] == 0, 10,
             "the stopped worker to disappear")


def test_health_stays_200_and_degraded_when_redis_is_stopped(app, client, own_redis):
    assert client.get("/health").get_json()["components"]["redis"] == "healthy"
    own_redis.stop()

    response, took = _get(client, "/health")
    body = response.get_json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["components"] == {"database": "healthy", "redis": "unhealthy", "workers": "unknown",
                                  "scheduler": "unknown"}
    assert took < 2
    _assert_reveals_nothing(app, response)

    own_redis.start()
    assert client.get("/health").get_json()["components"]["redis"] == "healthy"


def test_health_answers_within_two_seconds_when_redis_hangs(app, client, own_redis):
    os.kill(own_redis.proc.pid, signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        response, took = _get(client, "/health")
        ready, ready_took = _get(client, "/health/ready")
    finally:
        os.kill(own_redis.proc.pid, signal.SIGCONT)
    assert took < 2, took
    assert response.status_code == 200
    assert response.get_json()["status"] == "degraded"
    assert response.get_json()["components"]["redis"] == "unhealthy"
    assert ready_took < 2, ready_took
    assert ready.status_code == 503 and "redis" in ready.get_json()["failing"]


def test_health_is_503_when_the_database_server_is_down(app, dead_database_app):
    client = dead_database_app.test_client()
    response, took = _get(client, "/health")
    body = response.get_json()
    assert response.status_code == 503
    assert body["status"] == "unhealthy"
    assert body["components"]["database"] == "unhealthy"
    assert body["components"]["redis"] == "healthy"  # the same Redis as the real app
    assert took < 2, took
    _assert_reveals_nothing(dead_database_app, response)


def test_health_is_503_within_two_seconds_when_the_database_hangs(silent_database_app):
    client = silent_database_app.test_client()
    response, took = _get(client, "/health")
    assert response.status_code == 503
    assert response.get_json()["components"]["database"] == "unhealthy"
    assert took < 2, took
    ready, ready_took = _get(client, "/health/ready")
    assert ready.status_code == 503 and ready.get_json()["failing"] == ["database", "migrations"]
    assert ready_took < 2, ready_took
    # the probes gave up on the silent server: no thread is left waiting on it
    wait_for(lambda: not [t for t in threading.enumerate() if t.name.startswith("health")], 3,
             "the probe threads to finish")


def test_health_is_503_when_the_database_does_not_exist(app, backup_dir):
    url = app.config["DATABASE_URL"]
    parts = urlsplit(url)
    missing = parts._replace(path="/portal_health_no_such_database").geturl()
    other = app_with_database(app, missing)
    response, took = _get(other.test_client(), "/health")
    assert response.status_code == 503
    assert response.get_json()["components"]["database"] == "unhealthy"
    assert "portal_health_no_such_database" not in response.get_data(as_text=True)
    assert took < 2


def test_health_live_needs_nothing(dead_database_app):
    response = dead_database_app.test_client().get("/health/live")
    assert response.status_code == 200
    assert response.get_json() == {"status": "alive"}
    assert response.headers["Cache-Control"] == "no-store"


def test_health_ready_when_database_migrated_and_redis_up(app, client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}
    assert body["failing"] == []
    assert response.headers["Cache-Control"] == "no-store"


def test_health_ready_is_503_with_the_database_down(dead_database_app):
    response, took = _get(dead_database_app.test_client(), "/health/ready")
    assert response.status_code == 503
    assert response.get_json()["failing"] == ["database", "migrations"]
    assert response.get_json()["checks"]["migrations"] == "unknown"
    assert took < 2
    _assert_reveals_nothing(dead_database_app, response)


def test_health_ready_is_503_with_redis_down(client, own_redis):
    own_redis.stop()
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.get_json()["failing"] == ["redis"]


def test_health_ready_is_503_when_migrations_are_behind(app, client, behind_migrations):
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.get_json()["checks"]["migrations"] == "not at head"
    assert response.get_json()["failing"] == ["migrations"]
    # /health itself only asks whether the database answers
    assert client.get("/health").status_code == 200


def test_health_is_public_uncached_and_needs_no_csrf(app, client, csrf_on):
    for url in ("/health", "/health/live", "/health/ready"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "no-store"
        assert response.is_json
    assert client.get("/health/").status_code in (200, 308)


def test_health_ignores_rate_limits(app, client):
    for _ in range(30):
        assert client.get("/health/live").status_code == 200
