"""Attachment files: checked against the allow-list, stored under random names, served as downloads."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask import current_app
from sqlalchemy import or_, select

from portal import policy
from portal.extensions import db
from portal.models import Attachment, Comment, ServiceRequest, User
from portal.services.errors import NotFound, ValidationFailed

# Extension -> the content type we record and serve. HTML, SVG and scripts are never accepted.
ALLOWED_TYPES: dict[str, str] = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".txt": "text/plain",
    ".log": "text/plain",
    ".csv": "text/csv",
    ".json": "application/json",
    ".zip": "application/zip",
    ".eml": "message/rfc822",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
}
MAX_FILES = 5
FILENAME_MAX = 200


@dataclass(frozen=True)
class Upload:
    """A file a user submitted, not yet stored."""

    filename: str
    stream: BinaryIO


@dataclass(frozen=True)
class StoredFile:
    """A file written to UPLOAD_DIR, ready to be recorded as an Attachment."""

    filename: str
    storage_name: str
    size: int
    content_type: str


def upload_dir() -> Path:
    path = Path(current_app.config["UPLOAD_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def clean_filename(raw: str) -> str:
    """The name shown and offered on download: no directories, no control characters."""
    name = os.path.basename((raw or "").replace("\\", "/")).strip()
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>|')
    if len(name) > FILENAME_MAX:
        stem, ext = os.path.splitext(name)
        name = stem[: FILENAME_MAX - len(ext)] + ext
    return name


def store_uploads(uploads: list[Upload], field: str = "attachments") -> list[StoredFile]:
    """Check and write every upload, or write none and raise ValidationFailed."""
    uploads = [u for u in uploads if u.filename]
    if len(uploads) > MAX_FILES:
        raise ValidationFailed({field: f"Attach at most {MAX_FILES} files at a time."})
    limit = current_app.config["MAX_ATTACHMENT_BYTES"]
    stored: list[StoredFile] = []
    try:
        for upload in uploads:
            name = clean_filename(upload.filename)
            ext = os.path.splitext(name)[1].lower()
            if not name or ext not in ALLOWED_TYPES:
                allowed = ", ".join(sorted(e.lstrip(".") for e in ALLOWED_TYPES))
                raise ValidationFailed({field: f"'{name or upload.filename}' is not an allowed file type ({allowed})."})
            storage_name = secrets.token_hex(16)
            target = upload_dir() / storage_name
            size = _copy_limited(upload.stream, target, limit)
            if size is None:
                raise ValidationFailed({field: f"'{name}' is larger than {limit // (1024 * 1024)} MB."})
            if size == 0:
                target.unlink(missing_ok=True)
                raise ValidationFailed({field: f"'{name}' is empty."})
            stored.append(StoredFile(name, storage_name, size, ALLOWED_TYPES[ext]))
    except BaseException:
        discard(stored)
        raise
    return stored


def _copy_limited(stream: BinaryIO, target: Path, limit: int) -> int | None:
    """Copy at most `limit` bytes; returns the size, or None (and no file) when over."""
    size = 0
    try:
        with open(target, "wb") as out:
            while chunk := stream.read(64 * 1024):
                size += len(chunk)
                if size > limit:
                    break
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)  # never leave a half-written file behind
        raise
    if size > limit:
        target.unlink(missing_ok=True)
        return None
    return size


def discard(stored: list[StoredFile]) -> None:
    """Remove files written for a change that did not commit."""
    for item in stored:
        (upload_dir() / item.storage_name).unlink(missing_ok=True)


def path_of(storage_name: str) -> Path:
    """Where a stored file lives on disk."""
    return upload_dir() / storage_name


# ---------------------------------------------------------------- who may see which file

def request_attachments(actor: User, req: ServiceRequest) -> list[Attachment]:
    """Files on the request the actor may see (requesters never see internal-note files)."""
    stmt = (
        select(Attachment).outerjoin(Comment, Attachment.comment_id == Comment.id)
        .where(Attachment.request_id == req.id).order_by(Attachment.created_at, Attachment.id)
    )
    if not policy.can(actor, "requests.internal_notes"):
        stmt = stmt.where(or_(Attachment.comment_id.is_(None), Comment.internal.is_(False)))
    return list(db.session.scalars(stmt))


def get_attachment(actor: User, attachment_id: int) -> Attachment:
    """An attachment the actor may download; NotFound otherwise."""
    from portal.services.requests.queries import get_request  # requests import this module

    att = db.session.get(Attachment, attachment_id)
    if att is None:
        raise NotFound("No such attachment.")
    get_request(actor, att.request_id)  # raises NotFound when the request is not visible
    if att.comment is not None and att.comment.internal and not policy.can(actor, "requests.internal_notes"):
        raise NotFound("No such attachment.")
    return att
