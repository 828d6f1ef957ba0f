"""Attachment uploads: what is accepted, where it lands, and that refused uploads leave nothing behind."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Attachment, ServiceRequest
from portal.services import attachments as files
from portal.services import requests as svc
from portal.services.attachments import Upload
from portal.services.errors import NotFound, ValidationFailed

VALID = {"title": "Screen broken", "description": "See photo.", "category": "hardware", "priority": "medium"}


def upload(name: str, data: bytes = b"hello world") -> Upload:
    return Upload(name, io.BytesIO(data))


def on_disk(app) -> set[str]:
    path = Path(app.config["UPLOAD_DIR"])
    return {p.name for p in path.iterdir()} if path.exists() else set()


@pytest.fixture(autouse=True)
def empty_upload_dir(app):
    """The session shares one UPLOAD_DIR: start and end each test with it empty."""
    def wipe():
        path = Path(app.config["UPLOAD_DIR"])
        if path.exists():
            for item in path.iterdir():
                item.unlink()

    wipe()
    yield
    wipe()


@pytest.fixture()
def small_limit(app):
    """MAX_ATTACHMENT_BYTES set to 10 bytes for one test, restored afterwards."""
    old = app.config["MAX_ATTACHMENT_BYTES"]
    app.config["MAX_ATTACHMENT_BYTES"] = 10
    yield 10
    app.config["MAX_ATTACHMENT_BYTES"] = old


# ---------------------------------------------------------------- store_uploads

def test_store_uploads_allowed_file_stored_under_random_name(ctx):
    data = b"%PDF-1.4 fake pdf"
    [stored] = files.store_uploads([upload("Invoice March.pdf", data)])
    assert stored.filename == "Invoice March.pdf"
    assert stored.size == len(data)
    assert stored.content_type == "application/pdf"
    assert re.fullmatch(r"[0-9a-f]{32}", stored.storage_name)
    assert "Invoice" not in stored.storage_name
    path = Path(ctx.config["UPLOAD_DIR"]) / stored.storage_name
    assert path.read_bytes() == data
    assert files.path_of(stored.storage_name) == path


def test_store_uploads_same_name_twice_gets_two_storage_names(ctx):
    a, b = files.store_uploads([upload("log.txt", b"one"), upload("log.txt", b"two")])
    assert a.storage_name != b.storage_name
    assert on_disk(ctx) == {a.storage_name, b.storage_name}


@pytest.mark.parametrize(("name", "content_type"), [
    ("photo.PNG", "image/png"),
    ("scan.jpeg", "image/jpeg"),
    ("scan.jpg", "image/jpeg"),
    ("notes.txt", "text/plain"),
    ("server.log", "text/plain"),
    ("data.csv", "text/csv"),
    ("report.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("archive.zip", "application/zip"),
])
def test_store_uploads_content_type_from_extension(ctx, name, content_type):
    [stored] = files.store_uploads([upload(name)])
    assert stored.content_type == content_type
    assert stored.filename == name


@pytest.mark.parametrize("name", ["page.html", "page.HTM", "logo.svg", "setup.exe", "script.js", "run.sh",
                                  "README", ".txt", "invoice.pdf.exe"])
def test_store_uploads_disallowed_type_refused(ctx, name):
    with pytest.raises(ValidationFailed) as info:
        files.store_uploads([upload(name)])
    assert "attachments" in info.value.fields
    assert "not an allowed file type" in info.value.fields["attachments"]
    assert on_disk(ctx) == set()


def test_store_uploads_custom_field_name_in_error(ctx):
    with pytest.raises(ValidationFailed) as info:
        files.store_uploads([upload("x.html")], field="files")
    assert set(info.value.fields) == {"files"}


def test_store_uploads_over_limit_refused_and_nothing_left(ctx, small_limit):
    with pytest.raises(ValidationFailed) as info:
        files.store_uploads([upload("big.txt", b"x" * (small_limit + 1))])
    assert "big.txt" in info.value.fields["attachments"]
    assert "larger" in info.value.fields["attachments"]
    assert on_disk(ctx) == set()


def test_store_uploads_exactly_at_limit_accepted(ctx, small_limit):
    [stored] = files.store_uploads([upload("edge.txt", b"x" * small_limit)])
    assert stored.size == small_limit


def test_store_uploads_limit_restored_after_test(ctx):
    assert ctx.config["MAX_ATTACHMENT_BYTES"] > 1024 * 1024


def test_store_uploads_empty_file_refused_and_nothing_left(ctx):
    with pytest.raises(ValidationFailed, match="Some values") as info:
        files.store_uploads([upload("empty.txt", b"")])
    assert "empty" in info.value.fields["attachments"]
    assert on_disk(ctx) == set()


def test_store_uploads_later_bad_file_discards_earlier_good_ones(ctx, small_limit):
    with pytest.raises(ValidationFailed):
        files.store_uploads([upload("a.txt", b"fine"), upload("b.txt", b"fine too"),
                             upload("c.txt", b"x" * (small_limit + 5))])
    assert on_disk(ctx) == set()
    with pytest.raises(ValidationFailed):
        files.store_uploads([upload("a.txt", b"fine"), upload("b.exe", b"MZ")])
    assert on_disk(ctx) == set()
    with pytest.raises(ValidationFailed):
        files.store_uploads([upload("a.txt", b"fine"), upload("b.txt", b"")])
    assert on_disk(ctx) == set()


def test_store_uploads_stream_error_leaves_no_partial_file(ctx):
    """A client that disconnects mid-upload makes the stream raise: the half-written file must go too."""

    class BrokenStream(io.RawIOBase):
        def __init__(self):
            self.calls = 0

        def read(self, size=-1):
            self.calls += 1
            if self.calls == 1:
                return b"partial data"
            raise OSError("client disconnected")

    with pytest.raises(OSError):
        files.store_uploads([upload("ok.txt", b"complete"), Upload("cut.txt", BrokenStream())])
    assert on_disk(ctx) == set()


def test_store_uploads_too_many_files_refused(ctx):
    with pytest.raises(ValidationFailed) as info:
        files.store_uploads([upload(f"f{i}.txt") for i in range(files.MAX_FILES + 1)])
    assert str(files.MAX_FILES) in info.value.fields["attachments"]
    assert on_disk(ctx) == set()


def test_store_uploads_max_files_accepted_and_nameless_entries_ignored(ctx):
    stored = files.store_uploads([upload(f"f{i}.txt") for i in range(files.MAX_FILES)] + [upload("")])
    assert len(stored) == files.MAX_FILES


@pytest.mark.parametrize(("raw", "shown"), [
    ("../../etc/passwd.txt", "passwd.txt"),
    ("/etc/passwd.txt", "passwd.txt"),
    ("..\\..\\windows\\win.ini.txt", "win.ini.txt"),
    ("C:\\Users\\me\\Desktop\\photo.png", "photo.png"),
    ('we"ird<name>|.txt', "weirdname.txt"),
    ("tab\there.txt", "tabhere.txt"),
])
def test_store_uploads_path_traversal_names_stripped(ctx, raw, shown):
    [stored] = files.store_uploads([upload(raw)])
    assert stored.filename == shown
    assert on_disk(ctx) == {stored.storage_name}
    assert (Path(ctx.config["UPLOAD_DIR"]) / stored.storage_name).is_file()


def test_clean_filename_long_name_keeps_extension(ctx):
    name = files.clean_filename("a" * 300 + ".pdf")
    assert len(name) == files.FILENAME_MAX
    assert name.endswith(".pdf")


# ---------------------------------------------------------------- through create_request / add_comment

def test_create_request_with_upload_records_attachment(ctx, factories):
    requester = factories.make_user("requester")
    req = svc.create_request(requester, **VALID, uploads=[upload("photo.png", b"\x89PNG....")])
    [att] = svc.request_attachments(requester, factories.reload(req))
    assert (att.filename, att.size, att.content_type) == ("photo.png", 8, "image/png")
    assert att.uploaded_by_id == requester.id
    assert att.comment_id is None
    assert on_disk(ctx) == {att.storage_name}


def test_create_request_validation_error_after_valid_files_stores_nothing(ctx, factories):
    requester = factories.make_user("requester")
    with pytest.raises(ValidationFailed) as info:
        svc.create_request(requester, **{**VALID, "category": "nope"},
                           uploads=[upload("a.txt", b"one"), upload("b.pdf", b"two")])
    assert "category" in info.value.fields
    assert on_disk(ctx) == set()
    assert db.session.scalar(select(func.count()).select_from(ServiceRequest)) == 0


def test_create_request_bad_file_stores_no_request_and_no_files(ctx, factories):
    requester = factories.make_user("requester")
    with pytest.raises(ValidationFailed) as info:
        svc.create_request(requester, **VALID, uploads=[upload("a.txt"), upload("evil.html")])
    assert "attachments" in info.value.fields
    assert on_disk(ctx) == set()
    assert db.session.scalar(select(func.count()).select_from(ServiceRequest)) == 0


def test_create_request_database_failure_discards_stored_files(ctx, factories, monkeypatch):
    requester = factories.make_user("requester")

    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr("portal.services.requests.commands._add_attachments", broken)
    with pytest.raises(RuntimeError):
        svc.create_request(requester, **VALID, uploads=[upload("a.txt")])
    assert on_disk(ctx) == set()
    assert db.session.scalar(select(func.count()).select_from(ServiceRequest)) == 0


def test_add_comment_bad_upload_stores_no_comment_and_no_files(ctx, factories):
    agent = factories.make_user("agent")
    req = factories.make_request()
    with pytest.raises(ValidationFailed):
        svc.add_comment(agent, req.id, "see attached", uploads=[upload("ok.txt"), upload("x.svg")])
    assert on_disk(ctx) == set()
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0


# ---------------------------------------------------------------- get_attachment

def test_get_attachment_requester_who_cannot_see_request_not_found(ctx, factories):
    owner = factories.make_user("requester")
    stranger = factories.make_user("requester")
    req = svc.create_request(owner, **VALID, uploads=[upload("private.txt")])
    att = db.session.scalar(select(Attachment).where(Attachment.request_id == req.id))
    with pytest.raises(NotFound):
        svc.get_attachment(stranger, att.id)
    assert svc.get_attachment(owner, att.id).id == att.id
    assert svc.get_attachment(factories.make_user("agent"), att.id).id == att.id


def test_get_attachment_unknown_id_not_found(ctx, factories):
    with pytest.raises(NotFound):
        svc.get_attachment(factories.make_user("agent"), 12345)
