"""deploy/postgres-roles.sql on the real test PostgreSQL, in a scratch database: the owner role
migrates, the application role reads and writes the portal's tables and can do nothing else."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from portal import sqlalchemy_url
from tests.backup.conftest import sibling_url
from tests.deploy.helpers import DEPLOY, ROOT, venv_path
from tests.jobs.test_worker import _env

SCRIPT = DEPLOY / "postgres-roles.sql"


def _dsn(url: str) -> str:
    return sqlalchemy_url(url).replace("postgresql+psycopg2://", "postgresql://", 1)


def _psql() -> str:
    """psql 15 or later (\\getenv): the embedded PostgreSQL's when installed, else the one on PATH."""
    try:
        from portal import embedded

        candidate = embedded.pg_bin_dir() / "psql"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    return shutil.which("psql") or pytest.skip("no psql")


def _as(url: str, role: str, password: str) -> str:
    return make_url(url).set(username=role, password=password).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def roles(service_urls):
    """A scratch database with the script applied: (superuser url, owner, app role, their urls)."""
    suffix = uuid.uuid4().hex[:8]
    owner, app_role = f"portal_owner_{suffix}", f"portal_app_{suffix}"
    admin_url = sibling_url(service_urls, f"roles_{suffix}")
    env = {**os.environ, "PORTAL_DB_OWNER": owner, "PORTAL_DB_USER": app_role,
           "PORTAL_DB_OWNER_PASSWORD": "owner-secret", "PORTAL_DB_PASSWORD": "app-secret"}
    # The superuser runs it (as the postgres image does); twice, to show it can be run again.
    for _ in range(2):
        result = subprocess.run([_psql(), "-X", "-q", "-d", _dsn(admin_url), "-f", str(SCRIPT)], env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    owner_url = _as(admin_url, owner, "owner-secret")
    app_url = _as(admin_url, app_role, "app-secret")
    try:
        yield admin_url, owner, app_role, owner_url, app_url
    finally:
        conn = psycopg2.connect(_dsn(service_urls[0]))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{make_url(admin_url).database}" WITH (FORCE)')
            cur.execute(f'DROP ROLE IF EXISTS "{app_role}"')
            cur.execute(f'DROP ROLE IF EXISTS "{owner}"')
        conn.close()


@pytest.fixture(scope="module")
def migrated(roles, app, tmp_path_factory):
    """The owner role applies the migrations (the compose `migrate` service: entrypoint.sh migrate)."""
    _, _, _, owner_url, _ = roles
    env = venv_path({**_env(app), "DATABASE_URL": owner_url, "LOG_DIR": "", "LOG_STDOUT": "false"})
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    result = subprocess.run(["bash", str(DEPLOY / "entrypoint.sh"), "migrate"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return roles


def _run(url: str, sql: str, params=None):
    conn = psycopg2.connect(_dsn(url))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def test_roles_are_neither_superusers_nor_able_to_create_roles_or_databases(roles):
    admin_url, owner, app_role, _, _ = roles
    rows = _run(admin_url, "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, "
                           "rolcanlogin FROM pg_roles WHERE rolname = ANY(%s)", ([owner, app_role],))
    assert sorted(rows) == sorted([(owner, False, False, False, False, False, True),
                                   (app_role, False, False, False, False, False, True)])


def test_roles_script_refuses_to_run_without_the_passwords(service_urls, roles):
    admin_url = roles[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_DB_")}
    result = subprocess.run([_psql(), "-X", "-q", "-d", _dsn(admin_url), "-f", str(SCRIPT)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "PORTAL_DB_OWNER_PASSWORD must be set" in result.stderr


def test_owner_role_owns_the_migrated_tables(migrated):
    admin_url, owner, _, _, _ = migrated
    owners = _run(admin_url, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
    assert owners == [(owner,)]
    assert _run(admin_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0][0] > 10


def test_app_role_reads_and_writes_the_portal_tables(migrated):
    _, _, _, _, app_url = migrated
    conn = psycopg2.connect(_dsn(app_url))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            assert cur.fetchone()
            cur.execute("INSERT INTO outbox_message (func, queue, args, kwargs, created_at, attempts) "
                        "VALUES ('jobs.maintenance.relay_outbox', 'default', '[]', '{}', now(), 0) RETURNING id")
            message_id = cur.fetchone()[0]  # from the table's sequence
            cur.execute("UPDATE outbox_message SET attempts = 1 WHERE id = %s", (message_id,))
            cur.execute("SELECT attempts FROM outbox_message WHERE id = %s", (message_id,))
            assert cur.fetchone() == (1,)
            cur.execute("DELETE FROM outbox_message WHERE id = %s", (message_id,))
            assert cur.rowcount == 1
    finally:
        conn.close()


@pytest.mark.parametrize("statement, refusal", [
    ('CREATE ROLE "intruder_{suffix}"', "permission denied"),
    ('CREATE DATABASE "intruder_{suffix}"', "permission denied"),
    ("DROP TABLE service_request", "must be owner"),
    ("ALTER TABLE service_request ADD COLUMN x int", "must be owner"),
    ("TRUNCATE audit_log", "permission denied"),
    ("CREATE TABLE intruder (id int)", "permission denied"),
    ("DROP SCHEMA public CASCADE", "must be owner"),
])
def test_app_role_cannot_change_the_schema_or_the_server(migrated, statement, refusal):
    _, _, _, _, app_url = migrated
    conn = psycopg2.connect(_dsn(app_url))
    conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
    try:
        with conn.cursor() as cur, pytest.raises(psycopg2.Error, match=refusal):
            cur.execute(statement.format(suffix=uuid.uuid4().hex[:8]))
    finally:
        conn.close()


def test_the_portal_works_as_the_app_role_and_keeps_sslmode(migrated, app, tmp_path):
    """The portal on the app role: /health/ready (database at head), and a backup with pg_dump run as that role.
    sslmode in DATABASE_URL reaches libpq in the pool, the health probe and pg_dump's URI."""
    from portal import create_app
    from portal.extensions import db
    from portal.services import backups, health

    _, _, _, _, app_url = migrated
    url = app_url + ("&" if "?" in app_url else "?") + "sslmode=prefer"
    other = create_app({"APP_ENV": "test", "TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": url,
                        "REDIS_URL": app.config["REDIS_URL"], "LOG_DIR": None, "LOG_STDOUT": False,
                        "BACKUP_DIR": str(tmp_path / "backups"), "BACKUP_PASSPHRASE": "deploy test passphrase",
                        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 1}})
    try:
        with other.app_context():
            assert other.test_client().get("/health/ready").get_json()["checks"]["migrations"] == "ok"
            with db.engine.connect() as conn:
                assert conn.connection.dbapi_connection.get_dsn_parameters()["sslmode"] == "prefer"
            assert "sslmode=prefer" in health._database_dsn()
            assert "sslmode=prefer" in backups.Target.from_url(url).uri
            made = backups.create_backup(trigger="command")
            assert Path(other.config["BACKUP_DIR"], made.name).stat().st_size > 0
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()
