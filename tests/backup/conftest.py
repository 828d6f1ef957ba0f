"""Backups on real PostgreSQL: a drill database of its own (restores drop its schema), real pg_dump/psql."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from portal import create_app
from tests.conftest import database_beside, empty_database

PASSPHRASE = "correct horse battery staple, backups"
EXTRA_REQUESTS = 10  # copies of each demo request: demo data plus a few thousand requests


@pytest.fixture()
def backups_on(app, tmp_path) -> Iterator[Path]:
    """The session app backs up into a fresh directory with a passphrase, for one test."""
    directory = tmp_path / "backups"
    saved = {k: app.config.get(k) for k in ("BACKUP_DIR", "BACKUP_PASSPHRASE", "BACKUP_PASSPHRASE_FILE")}
    app.config.update(BACKUP_DIR=str(directory), BACKUP_PASSPHRASE=PASSPHRASE, BACKUP_PASSPHRASE_FILE=None)
    yield directory
    app.config.update(saved)


def sibling_url(service_urls, suffix: str = "drill") -> str:
    """A database beside the test database (same server), created when missing.

    Named after this run's own test database, so each xdist worker has its own (portal_test_gw0_drill).
    """
    return database_beside(service_urls[0], f"{make_url(service_urls[0]).database}_{suffix}")


@pytest.fixture(scope="module")
def drill(service_urls, tmp_path_factory):
    """An app on its own database with demo data and a few thousand requests, and one verified backup."""
    url = sibling_url(service_urls)
    empty_database(url)
    directory = tmp_path_factory.mktemp("drill-backups")
    app = create_app({
        "APP_ENV": "test", "TESTING": True, "SECRET_KEY": "test-secret", "DATABASE_URL": url,
        "REDIS_URL": service_urls[1], "BACKUP_DIR": str(directory), "BACKUP_PASSPHRASE": PASSPHRASE,
        "MAIL_DIR": str(tmp_path_factory.mktemp("drill-mail")), "LOG_DIR": str(tmp_path_factory.mktemp("drill-logs")),
        "LOG_STDOUT": False, "PASSWORD_HASH_TIME_COST": 1, "PASSWORD_HASH_MEMORY_KIB": 64,
    })
    with app.app_context():
        from flask_migrate import upgrade

        from portal.extensions import db
        from portal.services import backups

        upgrade()
        result = app.test_cli_runner().invoke(args=["demo-data", "--seed", "3"])
        assert result.exit_code == 0, result.output
        # Every stored column but the id (a new one) and the generated ones (PostgreSQL computes them).
        columns = db.session.execute(text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'service_request' "
            "AND column_name <> 'id' AND is_generated = 'NEVER' ORDER BY ordinal_position")).scalars().all()
        listed = ", ".join(f'"{name}"' for name in columns)
        db.session.execute(text(
            f"INSERT INTO service_request ({listed}) SELECT {listed} "
            "FROM service_request, generate_series(1, :copies)"), {"copies": EXTRA_REQUESTS})
        db.session.commit()
        made = backups.create_backup(trigger="command")
        db.session.remove()
        db.engine.dispose()
    yield app, directory / made.name
    with app.app_context():
        from portal.extensions import db

        db.engine.dispose()


def fingerprint(app) -> dict[str, tuple[int, str]]:
    """Every table's row count and a checksum of its whole contents."""
    with app.app_context():
        from portal.extensions import db

        with db.engine.connect() as conn:
            tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
            found = {}
            for table in sorted(tables):
                row = conn.execute(text(
                    f'SELECT count(*), md5(coalesce(string_agg(t::text, E\'\\n\' ORDER BY t::text), \'\')) '
                    f'FROM public."{table}" t')).one()
                found[table] = (row[0], row[1])
        db.engine.dispose()
    return found


def copy_backup(path: Path, into: Path) -> Path:
    """A backup and its .hmac file copied elsewhere (to damage the copy, not the original)."""
    into.mkdir(parents=True, exist_ok=True)
    target = into / path.name
    shutil.copy(path, target)
    shutil.copy(path.with_name(path.name + ".hmac"), target.with_name(target.name + ".hmac"))
    return target
