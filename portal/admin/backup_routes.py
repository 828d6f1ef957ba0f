"""The admin's "Backups" page: the catalog and the files, "Back up now", verify, and downloads.

Thin: the backup service (portal/services/backups.py) makes and reads backups; backup_admin adds
what only this page needs. While a backup or a verification is waiting or running, the list
partial polls itself every 3 s and stops when nothing is in progress.
"""

from __future__ import annotations

from flask import send_file, url_for
from flask_login import current_user

from portal.admin import bp
from portal.forms import EmptyForm
from portal.htmx import form_done, form_refused, render_page_or_partial
from portal.models._time import utcnow
from portal.policy import permission_required
from portal.services import backup_admin, backups
from portal.services.errors import ServiceError
from portal.services.health import BACKUP_STALE

BACKUPS = "admin/_backups.html"
EXPIRED = "The form expired; reload the page and try again."
IN_PROGRESS = ("queued", "running")


def _context() -> dict:
    listed = backups.list_backups()
    verifying = backup_admin.pending_verifications() & {b.name for b in listed if b.name}
    newest = backups.newest_verified()
    now = utcnow()
    return {
        "backups": listed,
        "verifying": verifying,
        "busy": verifying or any(b.status in IN_PROGRESS for b in listed),
        "in_progress": any(b.status in IN_PROGRESS for b in listed),
        "newest": newest,
        "newest_stale": newest is None or now - (newest.created_at or newest.verified_at) > BACKUP_STALE,
        "settings": backup_admin.settings(),
        "now": now,
    }


@bp.get("/backups")
@permission_required("system.backups")
def list_backups():
    """Every backup, newest first, with the settings on top; the partial alone for HTMX polls."""
    return render_page_or_partial("admin/backups.html", BACKUPS, **_context())


@bp.post("/backups")
@permission_required("system.backups")
def request_backup():
    """ "Back up now": one backup job, unless one is already waiting or running."""
    back = url_for("admin.list_backups")
    try:
        if not EmptyForm().validate_on_submit():
            raise ServiceError(EXPIRED)
        backups.request_backup(current_user)
    except ServiceError as exc:
        return form_refused(exc, back)
    return form_done("Backup queued; it appears here when done.", back)


@bp.post("/backups/<name>/verify")
@permission_required("system.backups")
def verify_backup(name: str):
    """Read one backup back on the backup queue; its row shows the outcome when the worker is done."""
    back = url_for("admin.list_backups")
    try:
        if not EmptyForm().validate_on_submit():
            raise ServiceError(EXPIRED)
        backups.request_verify(name)
    except ServiceError as exc:
        return form_refused(exc, back)
    return form_done(f"Verification queued; {name} shows the outcome here when it is done.", back)


@bp.get("/backups/<name>/download")
@permission_required("system.backups")
def download_backup(name: str):
    """The encrypted file, as an attachment (a restore needs its .hmac beside it); audited."""
    path = backup_admin.file_for_download(current_user, name)
    return send_file(path, mimetype="application/octet-stream", as_attachment=True, download_name=path.name,
                     max_age=0, conditional=True)


@bp.get("/backups/<name>/download/hmac")
@permission_required("system.backups")
def download_backup_hmac(name: str):
    """The backup's .hmac file (its integrity check and key check), as an attachment; audited."""
    path = backup_admin.file_for_download(current_user, name, hmac_file=True)
    return send_file(path, mimetype="text/plain", as_attachment=True, download_name=path.name, max_age=0,
                     conditional=True)
