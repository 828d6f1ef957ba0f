"""docker-compose.production.yml read as compose reads it (YAML with merge keys): every hardening point."""

from __future__ import annotations

import re

import pytest
import yaml

from portal.queueing import QUEUES, WORKER_QUEUE_ORDER
from tests.deploy.helpers import ROOT

COMPOSE_FILE = ROOT / "docker-compose.production.yml"
APP_SERVICES = ("web", "worker_default", "worker_email", "scheduler", "migrate")
LONG_RUNNING = ("web", "worker_default", "worker_email", "scheduler")
REQUIRED = ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "BACKUP_PASSPHRASE", "PORTAL_DB_PASSWORD",
            "PORTAL_DB_OWNER_PASSWORD")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _memory_bytes(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([KMG])", text).groups()
    return int(number) * {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}[unit]


def test_compose_has_the_services_the_guide_names(services):
    assert {"web", "worker_default", "worker_email", "scheduler", "postgres", "redis"} <= set(services)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_app_services_are_locked_down(services, name):
    service = services[name]
    assert service["read_only"] is True
    assert set(service["tmpfs"]) >= {"/tmp", "/run"}
    assert service["cap_drop"] == ["ALL"] and "cap_add" not in service
    assert "no-new-privileges:true" in service["security_opt"]
    assert service["user"] == "1000:1000"
    assert "privileged" not in service
    limits = service["deploy"]["resources"]["limits"]
    assert 0 < float(limits["cpus"]) <= 2
    assert 128 * 1024 ** 2 <= _memory_bytes(limits["memory"]) <= 2 * 1024 ** 3
    assert service["pids_limit"] > 0


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_compose_long_running_services_have_a_meaningful_health_check(services, name):
    test = services[name]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "/app/deploy/healthcheck.py"]
    expected = {"web": ["web", "/health"], "scheduler": ["scheduler"]}.get(name, ["worker"])
    assert test[3:] == expected
    assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_workers_split_the_queues_in_the_portals_order(services):
    def queues(name):
        command = services[name]["command"]
        assert command[:2] == ["worker", "--queues"]
        return command[2].split(",")

    assert queues("worker_email") == ["email"]
    assert queues("worker_default") == [q for q in WORKER_QUEUE_ORDER if q != "email"]
    assert set(queues("worker_email")) | set(queues("worker_default")) == set(QUEUES)
    assert services["web"]["command"] == ["web"] and services["scheduler"]["command"] == ["scheduler"]
    assert services["migrate"]["command"] == ["migrate"] and services["migrate"]["restart"] == "no"


def test_compose_secrets_come_only_from_the_environment(services):
    text = COMPOSE_FILE.read_text()
    for name in REQUIRED:
        uses = re.findall(r"\$\{" + name + r"(\W[^}]*)?\}", text)
        assert uses, f"{name} is not used"
        assert all(u.startswith(":?") for u in uses), f"{name} must be ${{{name}:?message}} everywhere"
    for service in services.values():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|PASSPHRASE|TOKEN|DSN", key):
                assert re.fullmatch(r"\$\{\w+(:[-?][^}]*)?\}", str(value)), f"{key} is not from the environment"
    env = services["web"]["environment"]
    assert "${REDIS_PASSWORD:?" in env["REDIS_URL"] and "${PORTAL_DB_PASSWORD:?" in env["DATABASE_URL"]
    assert "${PORTAL_DB_OWNER_PASSWORD:?" in services["migrate"]["environment"]["DATABASE_URL"]
    assert "portal_owner" not in env["DATABASE_URL"]  # the app signs in as the role that owns nothing
    assert "sslmode=" in env["DATABASE_URL"]
    assert env["APP_ENV"] == "production"


def test_compose_volumes_hold_data_logs_and_backups(compose, services):
    def mounts(name):
        return {v.split(":")[1]: v.split(":")[0] for v in services[name].get("volumes", [])}

    for name in ("web", "worker_default"):
        assert {"/data", "/logs", "/backups"} <= set(mounts(name))
    assert {"/data", "/logs"} <= set(mounts("worker_email"))
    assert "/logs" in mounts("scheduler")
    assert mounts("postgres")["/var/lib/postgresql/data"] in compose["volumes"]
    assert mounts("redis")["/data"] in compose["volumes"]
    assert "${TLS_DIR:-portal-tls}:/etc/portal/tls:ro" in services["web"]["volumes"]


def test_compose_redis_runs_with_deploy_redis_conf_and_the_password(services):
    redis = services["redis"]
    assert "./deploy/redis.conf:/usr/local/etc/redis/redis.conf:ro" in redis["volumes"]
    command = " ".join(redis["command"])
    assert "redis-server /usr/local/etc/redis/redis.conf" in command
    assert '--requirepass "$$REDIS_PASSWORD"' in command and "--bind" in command
    assert "docker-entrypoint.sh redis-server" in command  # drops root as the image does
    assert "ports" not in redis and redis["networks"] == ["backend"]
    assert "REDISCLI_AUTH" in redis["healthcheck"]["test"][1]


def test_compose_postgres_runs_the_roles_script_at_initialisation(services):
    postgres = services["postgres"]
    assert "./deploy/postgres-roles.sql:/docker-entrypoint-initdb.d/10-portal-roles.sql:ro" in postgres["volumes"]
    for name in ("PORTAL_DB_PASSWORD", "PORTAL_DB_OWNER_PASSWORD", "POSTGRES_PASSWORD"):
        assert postgres["environment"][name].startswith("${" + name + ":?")
    assert "ports" not in postgres and postgres["networks"] == ["backend"]
    assert "pg_isready" in postgres["healthcheck"]["test"][1]


def test_compose_keeps_the_databases_off_the_outside(compose, services):
    assert compose["networks"]["backend"]["internal"] is True
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"web"}
    assert services["web"]["ports"] == ["${PORTAL_PORT:-5000}:5000"]


def test_compose_gives_the_tls_variables_to_the_web_only(services):
    """OpenSSL reads SSL_CERT_FILE as its CA bundle: in a worker it would break outgoing SMTP and Sentry TLS."""
    assert services["web"]["environment"]["SSL_CERT_FILE"] == "${SSL_CERT_FILE:-}"
    for name in set(APP_SERVICES) - {"web"}:
        assert "SSL_CERT_FILE" not in services[name]["environment"]
