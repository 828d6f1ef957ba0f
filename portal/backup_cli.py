"""`flask backup …`: create, verify, list, restore and prune encrypted backups (portal/services/backups.py)."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from portal.services.errors import ServiceError

backup_cli = AppGroup("backup", help="Encrypted database backups: create, verify, list, restore, prune.")


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _secret() -> bytes:
    """The passphrase from BACKUP_PASSPHRASE(_FILE), else asked for (never echoed)."""
    from portal.services import backups

    try:
        secret = backups.passphrase(required=False)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    if secret is None:
        value = click.prompt("Backup passphrase", hide_input=True, default="", show_default=False)
        if not value:
            raise click.ClickException("No passphrase given.")
        secret = value.encode()
    return secret


def _file(given: str) -> Path:
    """A path as given, or a backup name in BACKUP_DIR."""
    from portal.services import backups

    path = Path(given)
    if not path.exists() and path.parent == Path("."):
        path = backups.backup_dir() / given
    if not path.exists():
        raise click.ClickException(f"{given} does not exist (nor in BACKUP_DIR {backups.backup_dir()}).")
    return path


@backup_cli.command("create")
def create_command() -> None:
    """Back up the database now (encrypted), then read it back and check it."""
    from portal.services import backups

    try:
        result = backups.create_backup(trigger="command")
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{result.name}: {_size(result.size)}, {len(result.tables)} tables, "
               f"{sum(result.tables.values()):,} rows, verified, in {result.seconds:.1f} s")
    click.echo(f"  in {backups.backup_dir()}")


@backup_cli.command("verify")
@click.argument("file")
def verify_command(file: str) -> None:
    """Check FILE (a path, or a name in BACKUP_DIR): HMAC, decryption, every table and its rows."""
    from portal.services import backups

    path = _file(file)
    secret = _secret()
    try:
        result = backups.verify_backup(path, secret)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    if not result.ok:
        click.echo(f"FAILED {path.name}: {result.problem}", err=True)
        raise SystemExit(1)
    compared = "counts match those taken at dump time" if result.expected is not None else \
        "not in the catalog, so counts could not be compared"
    click.echo(f"OK {path.name}: {_size(result.size)}, {len(result.tables)} tables, "
               f"{sum(result.tables.values()):,} rows ({compared}), read in {result.seconds:.1f} s")


@backup_cli.command("list")
def list_command() -> None:
    """The backups in BACKUP_DIR and the catalog, newest first: name, time, size, verified."""
    from portal.services import backups

    listed = backups.list_backups()
    if not listed:
        click.echo(f"No backups yet in {backups.backup_dir()}.")
        return
    click.echo(f"{'NAME':<34} {'MADE (UTC)':<17} {'SIZE':>9}  STATUS")
    for item in listed:
        made = f"{item.created_at:%Y-%m-%d %H:%M}" if item.created_at else "-"
        status = item.status
        if item.status == "verified" and item.verified_at:
            status = f"verified {item.verified_at:%Y-%m-%d %H:%M}"
        if not item.on_disk and item.status in ("verified", "unverified"):
            status += " (file missing)"
        click.echo(f"{item.name or '(not started)':<34} {made:<17} {_size(item.size):>9}  {status}")
        if item.error and item.status in ("failed", "unverified"):
            click.echo(f"{'':<34} {item.error}")


@backup_cli.command("restore")
@click.argument("file")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--database-url", default=None,
              help="Restore into this database instead (a staging copy, to check before cutting over).")
def restore_command(file: str, yes: bool, database_url: str | None) -> None:
    """Verify FILE completely, then replace the database with it in one transaction and migrate."""
    from sqlalchemy.engine import make_url

    from portal.extensions import db
    from portal.services import backups

    path = _file(file)
    secret = _secret()
    url = database_url or backups.database_url()
    label = make_url(url).render_as_string(hide_password=True)
    try:
        others = backups.other_sessions(url)
    except Exception as exc:  # noqa: BLE001 - an unreachable target is the operator's to fix
        raise click.ClickException(f"Cannot connect to {label}: {str(exc).splitlines()[0]}") from exc
    if not yes:
        click.echo(f"This replaces EVERY table of {label} with the contents of {path.name}.")
        if others:
            click.echo(f"{others} other connection(s) are open to it: stop the web and worker processes first, "
                       "or the restore waits for them and gives up after 30 s.")
        click.confirm("Continue?", abort=True)
    db.engine.dispose()  # our own pooled connections would hold locks on the tables being replaced
    try:
        result = backups.restore_backup(path, secret, url, say=click.echo)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Restored {result.name} into {label} in {result.seconds:.1f} s. Rows per table now:")
    for table, count in sorted(result.tables.items()):
        was = result.expected.get(table)
        note = "" if was is None or was == count else f"  (backup had {was:,}; migrations changed it)"
        click.echo(f"  {table:<28} {count:>12,}{note}")


@backup_cli.command("prune")
def prune_command() -> None:
    """Delete backups older than RETENTION_DAYS now (never the newest verified one)."""
    from portal.services import backups

    deleted = backups.prune_backups()
    days = current_app.config["RETENTION_DAYS"]
    listed = ": " + ", ".join(deleted) if deleted else "."
    click.echo(f"Deleted {len(deleted)} backup(s) older than {days} days{listed}")
