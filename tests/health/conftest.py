"""Fixtures for the health tests: real worker and scheduler processes, Redis servers of a test's own,
an app pointed at a database that is not there, and a backup directory per test."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from portal import create_app
from tests.jobs.test_outbox import LocalRedis, own_redis  # noqa: F401 - re-exported fixture
from tests.jobs.test_worker import ROOT, _env, _flask
from tests.polling import wait_for  # noqa: F401 - the health tests import it from here


class Processes:
    """Worker and scheduler processes started the way the Procfile starts them; all stopped at the end."""

    def __init__(self, app):
        self.app = app
        self.running: list[subprocess.Popen] = []

    def start(self, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen(_flask(*args), cwd=ROOT, env=_env(self.app), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        self.running.append(proc)
        return proc

    def worker(self, queues: str | None = None) -> subprocess.Popen:
        """A real RQ worker; returns once it waits for jobs.

        Not merely once its heartbeat is in Redis: RQ registers the worker before it installs its
        signal handlers (and starts its scheduler in between), so a SIGTERM in that window kills it
        without the clean stop that removes it from Redis. "idle" is set in the job loop, after them.
        """
        from rq import Worker

        from portal.queueing import redis_connection

        proc = self.start("jobs", "worker", *(["--queues", queues] if queues else []))
        with self.app.app_context():
            connection = redis_connection()
            wait_for(lambda: self._alive(proc) and any(w.pid == proc.pid and w.get_state() == "idle"
                                                       for w in Worker.all(connection=connection)),
                     60, "the worker waiting for jobs")
        return proc

    def scheduler(self) -> subprocess.Popen:
        """A real rq-scheduler; returns once it is alive and has registered the schedule."""
        from portal.queueing import SCHEDULE, redis_connection
        from portal.services.health import scheduler_alive

        proc = self.start("jobs", "scheduler", "--interval", "1")
        with self.app.app_context():
            connection = redis_connection()
            wanted = {s.id.encode() for s in SCHEDULE}
            wait_for(lambda: self._alive(proc) and scheduler_alive(connection)
                     and wanted <= set(connection.zrange("rq:scheduler:scheduled_jobs", 0, -1)),
                     60, "the scheduler")
        return proc

    @staticmethod
    def _alive(proc: subprocess.Popen) -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.stderr.read() if proc.stderr else ''}")
        return True

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.running):
            self.stop(proc)


@pytest.fixture()
def processes(app) -> Iterator[Processes]:
    procs = Processes(app)
    yield procs
    procs.stop_all()


@pytest.fixture()
def backup_dir(app, tmp_path) -> Iterator[Path]:
    """BACKUP_DIR is a fresh, writable directory for this test."""
    path = tmp_path / "backups"
    path.mkdir()
    previous = app.config["BACKUP_DIR"]
    app.config["BACKUP_DIR"] = str(path)
    yield path
    app.config["BACKUP_DIR"] = previous


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_with_database(app, database_url: str):
    """A second portal on the same Redis whose DATABASE_URL is `database_url` (never migrated)."""
    return create_app({
        "APP_ENV": "test", "TESTING": True, "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": False,
        "DATABASE_URL": database_url, "REDIS_URL": app.config["REDIS_URL"],
        "UPLOAD_DIR": app.config["UPLOAD_DIR"], "EXPORT_DIR": app.config["EXPORT_DIR"],
        "MAIL_DIR": app.config["MAIL_DIR"], "LOG_DIR": app.config.get("LOG_DIR"), "LOG_STDOUT": False,
        "BACKUP_DIR": app.config["BACKUP_DIR"],
    })


@pytest.fixture()
def dead_database_app(app, backup_dir):
    """A portal whose database server is not listening (a closed local port)."""
    return app_with_database(app, f"postgresql://portal:secret-pw@127.0.0.1:{closed_port()}/portal")


class ConfiguredRedis(LocalRedis):
    """A redis-server of the test's own with extra settings (a password, renamed commands)."""

    def __init__(self, workdir: Path, *settings: str, password: str | None = None):
        super().__init__(workdir)
        self.settings = settings
        self.password = password

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), *self.settings], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = Redis(host="127.0.0.1", port=self.port, password=self.password)
        wait_for(lambda: _pings(client), 10, "redis-server to start")


def _pings(client: Redis) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - not up yet
        return False


@pytest.fixture()
def configured_redis(app, tmp_path):
    """Start a Redis with given settings and point the app at `url`; restored afterwards."""
    servers: list[ConfiguredRedis] = []
    previous = app.config["REDIS_URL"]

    def start(*settings: str, password: str | None = None, url_password: str | None = None) -> ConfiguredRedis:
        server = ConfiguredRedis(tmp_path, *settings, password=password)
        server.start()
        servers.append(server)
        auth = f":{url_password}@" if url_password else ""
        app.config["REDIS_URL"] = f"redis://{auth}127.0.0.1:{server.port}/0"
        return server

    yield start
    app.config["REDIS_URL"] = previous
    for server in servers:
        server.stop()


@pytest.fixture()
def behind_migrations(app):
    """The database records the revision before this code's head (as after deploying unmigrated code)."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from portal.config import PROJECT_ROOT
    from portal.extensions import db

    script = ScriptDirectory(str(PROJECT_ROOT / "migrations"))
    with app.app_context():
        head = db.session.scalar(text("SELECT version_num FROM alembic_version"))
        previous = script.get_revision(head).down_revision
        db.session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": previous})
        db.session.commit()
    yield previous
    with app.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
        db.session.commit()


def make_user(app, role: str):
    """An account of `role` (in a short app context); returns its e-mail address."""
    from tests import factories

    with app.app_context():
        return factories.make_user(role).email


def signed_in(app, role: str):
    """A test client signed in as a new user of `role` through the real sign-in form."""
    from tests.conftest import TEST_PASSWORD

    email = make_user(app, role)
    client = app.test_client()
    assert client.post("/login", data={"email": email, "password": TEST_PASSWORD}).status_code == 303
    return client


def cover_every_sla_pair(app) -> int:
    """An active SLA definition for every active category and priority; returns how many."""
    from portal.domain.workflow import PRIORITIES
    from portal.extensions import db
    from portal.models import Category
    from portal.policy import SYSTEM
    from portal.services import sla_admin

    with app.app_context():
        codes = list(db.session.scalars(db.select(Category.code).where(Category.active)))
        for code in codes:
            for priority in PRIORITIES:
                sla_admin.create_definition(SYSTEM, {"category": code, "priority": priority,
                                                     "response_time_hours": 4, "resolution_time_hours": 24})
        return len(codes) * len(PRIORITIES)


@pytest.fixture()
def silent_database_app(app, backup_dir):
    """A portal whose database port accepts connections and never answers (a hung server)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)  # the kernel completes the handshakes; nobody ever replies
    try:
        yield app_with_database(app, f"postgresql://portal:secret-pw@127.0.0.1:{server.getsockname()[1]}/portal")
    finally:
        server.close()
