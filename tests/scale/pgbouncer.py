"""A real PgBouncer in transaction mode in front of the test PostgreSQL, for one test."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from portal import sqlalchemy_url
from tests.scale.helpers import free_port

DATABASE = "portal"  # the name clients use; PgBouncer maps it to the test database
# The settings docs recommend for the portal (README, "Beyond one machine"); nothing else is changed
# from PgBouncer's defaults, so the app is tested against what an operator gets out of the box.
SETTINGS = {
    "pool_mode": "transaction",
    "max_client_conn": "500",
    "default_pool_size": "20",
}


def binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None)


def require_binary() -> str:
    """pgbouncer's path; skipped with the reason when it is not installed (failed under CI=true)."""
    found = binary()
    if found is None:
        reason = "pgbouncer is not installed (apt-get install -y pgbouncer; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


class PgBouncer:
    """pgbouncer on 127.0.0.1:<free port>, pooling `database_url`'s database in transaction mode."""

    def __init__(self, database_url: str):
        self.target = make_url(sqlalchemy_url(database_url))
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """What the portal's DATABASE_URL would be: the pooler, not PostgreSQL."""
        user = self.target.username or "postgres"
        return f"postgresql://{user}@127.0.0.1:{self.port}/{DATABASE}"

    def _server(self) -> str:
        host = self.target.query.get("host") or self.target.host or "localhost"
        parts = {"host": host, "port": str(self.target.port or 5432), "dbname": self.target.database,
                 "user": self.target.username or "postgres"}
        if self.target.password:
            parts["password"] = self.target.password
        return " ".join(f"{key}={value}" for key, value in parts.items())

    def _run_as(self) -> str | None:
        """PgBouncer refuses to run as root: then the user the PostgreSQL socket belongs to, or nobody."""
        if os.geteuid() != 0:
            return None
        host = self.target.query.get("host") or ""
        if host.startswith("/"):
            return pwd.getpwuid(os.stat(host).st_uid).pw_name
        return "nobody"

    def start(self) -> PgBouncer:
        settings = {"listen_addr": "127.0.0.1", "listen_port": str(self.port), "unix_socket_dir": "",
                    "auth_type": "any", "admin_users": self.target.username or "postgres",
                    "logfile": str(self.directory / "pgbouncer.log"), **SETTINGS}
        ini = self.directory / "pgbouncer.ini"
        ini.write_text(f"[databases]\n{DATABASE} = {self._server()}\n\n[pgbouncer]\n"
                       + "".join(f"{key} = {value}\n" for key, value in settings.items()))
        command = [binary() or "pgbouncer"]
        user = self._run_as()
        if user:
            shutil.chown(self.directory, user)
            shutil.chown(ini, user)
            command += ["-u", user]
        self.process = subprocess.Popen([*command, str(ini)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                psycopg2.connect(self._dsn(DATABASE)).close()
                return self
            except psycopg2.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"pgbouncer did not start: {self.log()}") from None
                time.sleep(0.05)

    def _dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={database} user={self.target.username or 'postgres'}"

    def stats(self) -> dict[str, int]:
        """SHOW STATS of the pooled database from the admin console (transactions, queries served)."""
        conn = psycopg2.connect(self._dsn("pgbouncer"))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW STATS")
                names = [c.name for c in cur.description]
                for row in cur.fetchall():
                    values = dict(zip(names, row, strict=True))
                    if values["database"] == DATABASE:
                        return values
        finally:
            conn.close()
        return {}

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        text = path.read_text() if path.exists() else ""
        if self.process is not None and self.process.poll() is not None and self.process.stderr:
            text += self.process.stderr.read()
        return text[-3000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
