"""What /metrics says while something is down or locked down: the load balancer's health probes are
not application errors, and a Redis without INFO costs only the memory gauges."""

from __future__ import annotations

from portal.queueing import push
from tests.health.conftest import backup_dir, configured_redis, dead_database_app, own_redis  # noqa: F401 - fixtures


def test_health_probe_503s_are_not_counted_as_application_errors(app, client, scrape, dead_database_app,  # noqa: F811
                                                                 own_redis):  # noqa: F811
    before = scrape()
    down = dead_database_app.test_client()
    assert down.get("/health").status_code == 503
    assert down.get("/health/ready").status_code == 503
    own_redis.stop()  # the database is fine here, Redis is not
    assert client.get("/health/ready").status_code == 503
    after = scrape()

    def grew(name: str, **labels) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew("app_errors_total") == 0  # PortalUnhandledErrors and PortalHighErrorRate stay quiet
    assert grew("app_requests_total", endpoint="/health", status="503") == 1  # still counted as answers
    assert grew("app_requests_total", endpoint="/health/ready", status="503") == 2


def test_redis_refusing_info_leaves_out_only_the_memory_gauges(app, ctx, scrape, configured_redis):  # noqa: F811
    configured_redis("--rename-command", "INFO", "")  # as a hardened redis.conf may
    push("tests.jobs.sample_jobs.nap", 0, queue="default")

    samples = scrape()
    assert samples.value("metrics_source_up", source="redis") == 1
    assert samples.value("queue_depth", queue="default") == 1
    assert samples.value("workers_alive", queue="default") == 0
    assert samples.value("scheduler_up") == 0
    assert samples.value("sla_check_age_seconds") == float("inf")
    assert "# TYPE sla_breaches_total counter" in samples.text  # no breaches yet: the family, no samples
    assert "redis_memory_used_bytes" not in samples.names and "redis_memory_max_bytes" not in samples.names
