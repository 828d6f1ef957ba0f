"""The restore drill on real PostgreSQL: back up, damage, restore, and nothing is lost; bad files touch nothing."""

from __future__ import annotations

import os
import subprocess

from sqlalchemy import text

from portal.services import backups
from tests.backup.conftest import PASSPHRASE, copy_backup, fingerprint, sibling_url


def _damage(app) -> None:
    with app.app_context():
        from portal.extensions import db

        db.session.execute(text("DELETE FROM comment WHERE id % 2 = 0"))
        db.session.execute(text("UPDATE service_request SET title = 'overwritten' WHERE id % 3 = 0"))
        db.session.execute(text("DROP TABLE sla_event"))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def _restore(app, path, *extra, passphrase=PASSPHRASE):
    app.config["BACKUP_PASSPHRASE"] = passphrase
    try:
        with app.app_context():
            return app.test_cli_runner().invoke(args=["backup", "restore", str(path), "--yes", *extra])
    finally:
        app.config["BACKUP_PASSPHRASE"] = PASSPHRASE


def test_restore_brings_back_every_row_of_every_table(drill):
    app, path = drill
    before = fingerprint(app)
    assert before["service_request"][0] > 3000 and before["comment"][0] > 0 and before["sla_event"][0] > 0
    _damage(app)
    damaged = fingerprint(app)
    assert "sla_event" not in damaged and damaged["comment"] != before["comment"]

    result = _restore(app, path)
    assert result.exit_code == 0, result.output
    assert "Restored " + path.name in result.output
    assert f"service_request {before['service_request'][0]:>12,}".replace(" ", "") in result.output.replace(" ", "")

    after = fingerprint(app)
    # Every table as it was, byte for byte, but the catalog: the backup restored from was being
    # made when it was dumped, and is now recorded as verified.
    assert {t: v for t, v in after.items() if t != "backup"} == {t: v for t, v in before.items() if t != "backup"}
    with app.app_context():
        from portal.extensions import db
        from portal.models import Backup

        row = db.session.query(Backup).filter_by(name=path.name).one()
        assert row.status == "verified" and row.table_counts["service_request"] == before["service_request"][0]
        db.session.remove()
        db.engine.dispose()


def test_wrong_passphrase_truncated_or_flipped_file_leave_the_database_untouched(drill, tmp_path):
    app, path = drill
    _damage(app)
    damaged = fingerprint(app)

    refused = _restore(app, path, passphrase="not the passphrase")
    assert refused.exit_code == 1 and "Wrong passphrase" in refused.output
    assert fingerprint(app) == damaged

    truncated = copy_backup(path, tmp_path / "truncated")
    with open(truncated, "r+b") as handle:
        handle.truncate(truncated.stat().st_size // 2)
    refused = _restore(app, truncated)
    assert refused.exit_code == 1 and "is truncated" in refused.output and "not touched" in refused.output
    assert fingerprint(app) == damaged

    flipped = copy_backup(path, tmp_path / "flipped")
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    refused = _restore(app, flipped)
    assert refused.exit_code == 1 and "is damaged" in refused.output
    assert fingerprint(app) == damaged

    no_mac = copy_backup(path, tmp_path / "nomac")
    no_mac.with_name(no_mac.name + ".hmac").unlink()
    refused = _restore(app, no_mac)
    assert refused.exit_code == 1 and ".hmac is missing" in refused.output
    assert fingerprint(app) == damaged

    assert _restore(app, path).exit_code == 0  # and the good file still restores


def test_an_error_half_way_through_the_load_rolls_everything_back(drill, tmp_path):
    """A sound file (HMAC and completeness pass) whose SQL fails in the middle: nothing is committed."""
    app, path = drill
    with app.app_context():
        keys, _size = backups.check_mac(path, PASSPHRASE.encode())
        plain = b"".join(backups.decrypted_chunks(path, keys))
    cut = plain.index(b"\nCOPY public.service_request ")
    poisoned = plain[:cut] + b"\nSELECT 1/0;\n" + plain[cut:]
    crafted = tmp_path / "crafted" / "backup_20200101_000000.sql.gz.enc"
    crafted.parent.mkdir()
    with open(crafted, "wb") as out:
        writer = backups.EncryptingWriter(out, PASSPHRASE.encode())
        writer.write(poisoned)
        digest = writer.close()
    crafted.with_name(crafted.name + ".hmac").write_text(
        backups.MacFile(crafted.name, writer.size, writer.salt.hex(), digest, writer.keys.key_check).render())
    _damage(app)
    damaged = fingerprint(app)

    refused = _restore(app, crafted)
    assert refused.exit_code == 1, refused.output
    assert "rolled back" in refused.output and "division by zero" in refused.output
    assert fingerprint(app) == damaged
    assert _restore(app, path).exit_code == 0


def test_restore_into_a_staging_database_first(drill, service_urls):
    """The runbook's first step: restore into another database, look, then cut over."""
    app, path = drill
    before = fingerprint(app)
    staging = sibling_url(service_urls, "staging")
    result = _restore(app, path, "--database-url", staging)
    assert result.exit_code == 0, result.output
    assert fingerprint(app) == before  # the live database was not touched
    from portal import create_app

    staged = create_app({"APP_ENV": "test", "SECRET_KEY": "x", "DATABASE_URL": staging, "LOG_DIR": None,
                         "LOG_STDOUT": False, "REDIS_URL": service_urls[1]})
    copy = fingerprint(staged)
    assert {t: v for t, v in copy.items() if t != "backup"} == {t: v for t, v in before.items() if t != "backup"}


def test_the_openssl_command_line_decrypts_a_backup(drill, tmp_path):
    """An operator without the portal gets the SQL back with the command in the README."""
    _app, path = drill
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE)
    from tests.jobs.test_worker import ROOT

    readme = (ROOT / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith("openssl enc -d -aes-256-cbc"))
    command = line.replace("PASSPHRASE_FILE", str(secret)).replace("FILE", str(path))
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr
    sql = result.stdout.decode()
    assert sql.startswith("--\n-- PostgreSQL database dump\n")
    assert "-- PostgreSQL database dump complete" in sql
    assert "CREATE TABLE public.service_request (" in sql


def test_the_scripts_back_up_list_and_restore_asking_for_passphrase_and_confirmation(drill, service_urls, tmp_path):
    """What an operator types: the two scripts, the passphrase asked for (not echoed), then "y"."""
    from tests.jobs.test_worker import ROOT

    app, _path = drill
    directory = tmp_path / "script-backups"
    env = {**os.environ, "DATABASE_URL": app.config["DATABASE_URL"], "REDIS_URL": service_urls[1],
           "APP_ENV": "test", "SECRET_KEY": "test-secret", "BACKUP_DIR": str(directory),
           "BACKUP_PASSPHRASE": PASSPHRASE, "LOG_DIR": str(tmp_path / "logs"), "MAIL_DIR": str(tmp_path / "mail")}
    made = subprocess.run(["bash", "scripts/backup_database.sh"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert made.returncode == 0, made.stderr
    name = [line for line in made.stdout.splitlines() if line.startswith("backup_")][0].split(":")[0]
    listed = subprocess.run(["bash", "scripts/backup_database.sh", "--list"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert name in listed.stdout and "verified" in listed.stdout

    staging = sibling_url(service_urls, "staging")
    asked = {k: v for k, v in env.items() if k != "BACKUP_PASSPHRASE"}
    declined = subprocess.run(["bash", "scripts/restore_database.sh", name, "--database-url", staging], cwd=ROOT,
                              env=asked, input=f"{PASSPHRASE}\nn\n", capture_output=True, text=True, timeout=120,
                              check=False)
    assert declined.returncode == 1 and "Aborted" in declined.stderr + declined.stdout
    restored = subprocess.run(["bash", "scripts/restore_database.sh", name, "--database-url", staging], cwd=ROOT,
                              env=asked, input=f"{PASSPHRASE}\ny\n", capture_output=True, text=True, timeout=300,
                              check=False)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    said = restored.stdout + restored.stderr
    assert "Backup passphrase:" in said and PASSPHRASE not in said
    assert "This replaces EVERY table of" in restored.stdout and f"Restored {name}" in restored.stdout


def test_the_hmac_can_be_checked_with_openssl_alone(drill, tmp_path):
    """The README's commands (openssl kdf + dgst) give the hmac-sha256 line of the .hmac file."""
    from tests.jobs.test_worker import ROOT

    _app, path = drill
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("# check the HMAC first"):]
    lines = block[:block.index("```")].splitlines()[1:]
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    script = "\n".join(lines).replace("PASSPHRASE_FILE", str(secret)).replace("FILE", str(path))
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    expected = backups.MacFile.read(path.with_name(path.name + ".hmac")).digest
    assert result.stdout.strip().endswith("= " + expected)
