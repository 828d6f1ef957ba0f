"""Encrypted database backups: create, verify, restore, retention, and the catalog that remembers them.

A backup is `pg_dump` (plain SQL) → gzip → AES-256-CBC, streamed in chunks, written under a temporary
name and renamed when complete. The file is exactly what

    openssl enc -aes-256-cbc -salt -pbkdf2 -md sha256 -iter 600000

writes ("Salted__", an 8-byte salt, then the ciphertext; key and IV from PBKDF2-HMAC-SHA256 of the
passphrase and salt), so an operator can always decrypt it with the openssl command line. OpenSSL's
`enc` has no integrity check, so beside each file `<name>.hmac` holds an HMAC-SHA256 of the whole
encrypted file, keyed by a key derived separately (PBKDF2 with its own salt prefix), and a key check
that tells a wrong passphrase from a damaged file. Every read (verify, restore) checks the HMAC first
and decrypts nothing that fails it.

Rows per table are counted in the same snapshot pg_dump dumps (`pg_export_snapshot`), kept in the
`backup` catalog row, and compared with the rows found in the file when it is read back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from flask import current_app
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from portal.extensions import db
from portal.models import Backup, User
from portal.models._time import utcnow
from portal.services.errors import ServiceError

log = logging.getLogger(__name__)

MAGIC = b"Salted__"
SALT_BYTES = 8
PBKDF2_ITERATIONS = 600_000
MAC_SALT_PREFIX = b"service-portal backup mac v1:"  # the HMAC key's own derivation, apart from the cipher's
KEY_CHECK_MESSAGE = b"service-portal backup key check"
CHUNK = 1024 * 1024
GZIP_LEVEL = 6                       # as `gzip` does by default
NAME_FORMAT = "backup_%Y%m%d_%H%M%S.sql.gz.enc"
NAME_RE = re.compile(r"^backup_(\d{8}_\d{6})\.sql\.gz\.enc$")
MAC_SUFFIX = ".hmac"
PARTIAL_PREFIX = ".partial-"         # a backup being written; never listed, removed when stale
ADVISORY_LOCK = 0x5EB0C4              # pg_try_advisory_lock key: one backup or restore at a time
QUEUED_STALE = timedelta(hours=2)     # a "queued" row no worker picked up in this long is given up
RESTORE_LOCK_TIMEOUT = "30s"
DUMP_HEADER = "-- PostgreSQL database dump"
DUMP_COMPLETE = "-- PostgreSQL database dump complete"


class BackupError(ServiceError):
    """A backup, verification or restore could not be done; the message says why, in words."""

    status = 409
    code = "backup_failed"


class BackupBusy(BackupError):
    code = "backup_busy"


class WrongPassphrase(BackupError):
    """The file is not at fault: it was made with another passphrase."""

    code = "wrong_passphrase"


# ---------------------------------------------------------------- settings

def passphrase(required: bool = True) -> bytes | None:
    """BACKUP_PASSPHRASE, else the first line of the file BACKUP_PASSPHRASE_FILE names."""
    config = current_app.config
    value = config.get("BACKUP_PASSPHRASE")
    if not value and config.get("BACKUP_PASSPHRASE_FILE"):
        path = Path(config["BACKUP_PASSPHRASE_FILE"])
        try:
            value = path.read_text().splitlines()[0] if path.read_text() else ""
        except OSError as exc:
            raise BackupError(f"BACKUP_PASSPHRASE_FILE {path} cannot be read: {exc.strerror}.") from exc
    if not value:
        if required:
            raise BackupError("No backup passphrase is set: set BACKUP_PASSPHRASE or BACKUP_PASSPHRASE_FILE. "
                              "Set it for the portal and its workers; backups are never written unencrypted.")
        return None
    return value.encode()


def backup_dir() -> Path:
    return Path(current_app.config["BACKUP_DIR"])


def backup_path(name: str) -> Path:
    """The file of a catalogued backup; refuses any name that is not one of ours (no path tricks)."""
    if not NAME_RE.match(name):
        raise BackupError(f"{name!r} is not a backup name (backup_YYYYMMDD_HHMMSS.sql.gz.enc).")
    return backup_dir() / name


def name_time(name: str) -> datetime | None:
    match = NAME_RE.match(name)
    return datetime.strptime(match.group(1), "%Y%m%d_%H%M%S").replace(tzinfo=UTC) if match else None


# ---------------------------------------------------------------- the file format

@dataclass(frozen=True)
class Keys:
    cipher_key: bytes
    iv: bytes
    mac_key: bytes

    @property
    def key_check(self) -> str:
        return hmac.new(self.mac_key, KEY_CHECK_MESSAGE, hashlib.sha256).hexdigest()


def derive_keys(secret: bytes, salt: bytes) -> Keys:
    """Key and IV as `openssl enc -pbkdf2 -md sha256 -iter 600000` derives them; the MAC key apart."""
    material = hashlib.pbkdf2_hmac("sha256", secret, salt, PBKDF2_ITERATIONS, dklen=48)
    mac_key = hashlib.pbkdf2_hmac("sha256", secret, MAC_SALT_PREFIX + salt, PBKDF2_ITERATIONS, dklen=32)
    return Keys(material[:32], material[32:], mac_key)


class EncryptingWriter:
    """gzip, then AES-256-CBC in OpenSSL's salted format, into `out`; HMAC of every byte written."""

    def __init__(self, out: BinaryIO, secret: bytes, level: int = GZIP_LEVEL):
        self.salt = salt = os.urandom(SALT_BYTES)
        self.keys = derive_keys(secret, salt)
        self.out = out
        self.size = 0
        self.mac = hmac.new(self.keys.mac_key, digestmod=hashlib.sha256)
        self._gzip = zlib.compressobj(level, zlib.DEFLATED, 31)
        self._padder = padding.PKCS7(128).padder()
        self._cipher = Cipher(algorithms.AES(self.keys.cipher_key), modes.CBC(self.keys.iv)).encryptor()
        self._emit(MAGIC + salt)

    def _emit(self, data: bytes) -> None:
        if data:
            self.out.write(data)
            self.mac.update(data)
            self.size += len(data)

    def _encrypt(self, data: bytes) -> None:
        if data:
            self._emit(self._cipher.update(self._padder.update(data)))

    def write(self, plain: bytes) -> None:
        self._encrypt(self._gzip.compress(plain))

    def close(self) -> str:
        """Flush everything; returns the HMAC (hex) of the whole encrypted file."""
        self._encrypt(self._gzip.flush())
        self._emit(self._cipher.update(self._padder.finalize()) + self._cipher.finalize())
        return self.mac.hexdigest()


@dataclass(frozen=True)
class MacFile:
    """The `.hmac` file beside a backup: its HMAC, size, salt (so a damaged header is not taken for a wrong
    passphrase) and a key check (so a wrong passphrase is not taken for damage)."""

    name: str
    size: int
    salt: str
    digest: str
    key_check: str

    def render(self) -> str:
        return ("# Service Portal backup: HMAC-SHA256 of the encrypted file (key: PBKDF2-HMAC-SHA256 of the\n"
                f"# passphrase, salt \"{MAC_SALT_PREFIX.decode()}\" + the file's salt, {PBKDF2_ITERATIONS} "
                "iterations).\n"
                f"file: {self.name}\nsize: {self.size}\nsalt: {self.salt}\nhmac-sha256: {self.digest}\n"
                f"key-check: {self.key_check}\n")

    @classmethod
    def read(cls, path: Path) -> MacFile:
        fields: dict[str, str] = {}
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise BackupError(f"{path.name} cannot be read as a backup HMAC file.") from exc
        for line in lines:
            if ":" in line and not line.startswith("#"):
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
        try:
            return cls(fields["file"], int(fields["size"]), fields["salt"], fields["hmac-sha256"],
                       fields["key-check"])
        except (KeyError, ValueError) as exc:
            raise BackupError(f"{path.name} is not a backup HMAC file (missing or bad field {exc}).") from exc


def _write_atomically(path: Path, data: bytes) -> None:
    temp = path.with_name(f"{PARTIAL_PREFIX}{path.name}")
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    temp.replace(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- reading a file back

class DumpScanner:
    """Reads a plain pg_dump stream: its header, the tables it creates, rows per COPY, the completion line.

    Fed in chunks of any size; COPY data is counted by newlines a chunk at a time (a data row never
    holds a raw newline), so a dump of millions of rows is read at gunzip's pace.
    """

    def __init__(self) -> None:
        self.tables: set[str] = set()
        self.rows: dict[str, int] = {}
        self.header = False
        self.complete = False
        self.after_complete: list[str] = []
        self._copying: str | None = None
        self._rest = b""
        self._lines = 0

    def feed(self, data: bytes) -> None:
        buf = self._rest + data if self._rest else data
        pos, end = 0, len(buf)
        while pos < end:
            if self._copying is not None:
                if buf.startswith(b"\\.\n", pos):
                    self._copying, pos = None, pos + 3
                    continue
                stop = buf.find(b"\n\\.\n", pos)
                if stop >= 0:
                    self.rows[self._copying] += buf.count(b"\n", pos, stop + 1)
                    self._copying, pos = None, stop + 4
                    continue
                last = buf.rfind(b"\n", pos)
                if last < 0:
                    break
                self.rows[self._copying] += buf.count(b"\n", pos, last + 1)
                pos = last + 1
                break
            newline = buf.find(b"\n", pos)
            if newline < 0:
                break
            self._line(buf[pos:newline].decode("utf-8", "replace"))
            pos = newline + 1
        self._rest = buf[pos:]

    def _line(self, line: str) -> None:
        self._lines += 1
        if self.complete:
            if line.strip() and line.strip() != "--" and not line.startswith("\\unrestrict"):
                self.after_complete.append(line[:80])
            return
        if line == DUMP_HEADER and self._lines <= 10:
            self.header = True
        elif line == DUMP_COMPLETE:
            self.complete = True
        elif line.startswith("CREATE TABLE "):
            self.tables.add(_table_name(line[len("CREATE TABLE "):].split(" (")[0]))
        elif line.startswith("COPY ") and line.endswith(" FROM stdin;"):
            name = _table_name(line[len("COPY "):].split(" ")[0])
            self._copying = name
            self.rows.setdefault(name, 0)

    def finish(self) -> None:
        if self._rest:  # a last line without its newline
            if self._copying is None:
                self._line(self._rest.decode("utf-8", "replace"))
            self._rest = b""


def _table_name(qualified: str) -> str:
    """`public.service_request` or `public."user"` → the bare table name."""
    name = qualified.split(".", 1)[1] if "." in qualified else qualified
    return name.strip('"')


@dataclass
class Verification:
    """What reading a backup back found. `problem` is None when it is sound and complete."""

    name: str
    size: int = 0
    problem: str | None = None
    tables: dict[str, int] = field(default_factory=dict)
    expected: dict[str, int] | None = None
    seconds: float = 0.0
    wrong_passphrase: bool = False   # the file may be fine: it was only not opened

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_mac(path: Path, secret: bytes) -> tuple[Keys, int]:
    """Check the `.hmac` file against the encrypted file before anything is decrypted.

    Raises BackupError naming the fault: not a backup, no HMAC file, wrong passphrase, truncated,
    changed. Returns the keys and the file's size.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(len(MAGIC) + SALT_BYTES)
    except FileNotFoundError as exc:
        raise BackupError(f"{path} does not exist.") from exc
    except OSError as exc:
        raise BackupError(f"{path} cannot be read: {exc.strerror}.") from exc
    if len(head) < len(MAGIC) + SALT_BYTES or not head.startswith(MAGIC):
        raise BackupError(f"{path.name} is not an encrypted backup (it does not start with OpenSSL's "
                          "\"Salted__\" header); it may be truncated to nothing or another file.")
    mac_path = path.with_name(path.name + MAC_SUFFIX)
    if not mac_path.exists():
        raise BackupError(f"{mac_path.name} is missing, so {path.name} cannot be checked for damage; "
                          "it is not used without its HMAC file.")
    expected = MacFile.read(mac_path)
    try:
        keys = derive_keys(secret, bytes.fromhex(expected.salt))
    except ValueError as exc:
        raise BackupError(f"{mac_path.name} is damaged (its salt is not hexadecimal).") from exc
    if not hmac.compare_digest(keys.key_check, expected.key_check):
        raise WrongPassphrase(f"Wrong passphrase for {path.name}: it was made with another one "
                              "(BACKUP_PASSPHRASE / BACKUP_PASSPHRASE_FILE).")
    if head[len(MAGIC):] != bytes.fromhex(expected.salt):
        raise BackupError(f"{path.name} is damaged: its header changed since it was written. Use another backup.")
    if size < expected.size:
        raise BackupError(f"{path.name} is truncated: {size:,} of {expected.size:,} bytes are there.")
    mac = hmac.new(keys.mac_key, digestmod=hashlib.sha256)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            mac.update(chunk)
    if size != expected.size or not hmac.compare_digest(mac.hexdigest(), expected.digest):
        raise BackupError(f"{path.name} is damaged: its contents changed since it was written "
                          "(the HMAC does not match). Use another backup.")
    return keys, size


def decrypted_chunks(path: Path, keys: Keys) -> Iterator[bytes]:
    """The plain SQL of a backup whose HMAC was checked, a chunk at a time."""
    decryptor = Cipher(algorithms.AES(keys.cipher_key), modes.CBC(keys.iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    gunzip = zlib.decompressobj(31)
    with open(path, "rb") as handle:
        handle.seek(len(MAGIC) + SALT_BYTES)
        try:
            while chunk := handle.read(CHUNK):
                yield from _inflate(gunzip, unpadder.update(decryptor.update(chunk)))
            yield from _inflate(gunzip, unpadder.update(decryptor.finalize()) + unpadder.finalize())
            yield gunzip.flush()
        except ValueError as exc:  # bad padding: the ciphertext was cut short or changed
            raise BackupError(f"{path.name} does not decrypt cleanly ({exc}); it is damaged.") from exc
        except zlib.error as exc:
            raise BackupError(f"{path.name} decrypts, but its gzip stream is broken ({exc}).") from exc
    if not gunzip.eof:
        raise BackupError(f"{path.name} ends before its gzip stream does: it is incomplete.")


def _inflate(gunzip, data: bytes) -> Iterator[bytes]:
    """Decompress in pieces of at most CHUNK bytes, so memory stays flat however well the data packed."""
    while data:
        yield gunzip.decompress(data, CHUNK)
        data = gunzip.unconsumed_tail


def verify_file(path: Path, secret: bytes, expected: dict[str, int] | None = None) -> Verification:
    """Check the HMAC, then decrypt and read the whole dump: header, our tables, rows, completion line.

    Never raises for a bad file: the answer's `problem` says what is wrong, in words.
    """
    started = time.monotonic()
    result = Verification(path.name, expected=expected)
    try:
        keys, result.size = check_mac(path, secret)
        scanner = DumpScanner()
        for chunk in decrypted_chunks(path, keys):
            scanner.feed(chunk)
        scanner.finish()
    except BackupError as exc:
        result.problem = exc.message
        result.wrong_passphrase = isinstance(exc, WrongPassphrase)
        result.seconds = time.monotonic() - started
        return result
    result.tables = dict(sorted(scanner.rows.items()))
    result.problem = _judge(scanner, expected)
    result.seconds = time.monotonic() - started
    return result


# Tables every version of the portal's schema has: what a dump must create when the tables it had at
# dump time are not known (a file the catalog never saw). When they are known (the counts taken in the
# dump's snapshot), every one of them must be there. Never the current models' list: a backup made
# before a later migration added a table is still whole.
CORE_TABLES = frozenset({"alembic_version", "user", "category", "service_request", "comment", "audit_log"})


def _judge(scanner: DumpScanner, expected: dict[str, int] | None) -> str | None:
    if not scanner.header:
        return "It is not a pg_dump SQL dump (no \"-- PostgreSQL database dump\" header)."
    if not scanner.complete:
        return "The dump is incomplete: its last line (\"-- PostgreSQL database dump complete\") is missing."
    if scanner.after_complete:
        return f"Something follows the dump's completion line: {scanner.after_complete[0]!r}."
    missing = sorted((set(expected) if expected is not None else CORE_TABLES) - scanner.tables)
    if missing:
        return f"The dump has no CREATE TABLE for {', '.join(missing)}."
    if expected is not None:
        wrong = [f"{table}: {scanner.rows.get(table, 0):,} rows in the file, {count:,} at dump time"
                 for table, count in sorted(expected.items()) if scanner.rows.get(table, 0) != count]
        if wrong:
            return "Row counts differ from those taken at dump time: " + "; ".join(wrong[:5]) + "."
    return None


# ---------------------------------------------------------------- PostgreSQL programs

@dataclass(frozen=True)
class Target:
    """A database to dump or restore: libpq's URI (without the password) and the password apart."""

    uri: str
    password: str | None
    label: str  # for messages: no password, no user

    @classmethod
    def from_url(cls, url: str) -> Target:
        parsed = make_url(url)
        if not parsed.drivername.startswith("postgres"):
            raise BackupError("Backups need a PostgreSQL database URL.")
        bare = parsed.set(drivername="postgresql", password=None)
        label = f"{parsed.database or ''}"
        return cls(bare.render_as_string(hide_password=False), parsed.password, label)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password  # never on the command line, where `ps` shows it
        return env


def database_url() -> str:
    """Where backups and restores connect: DATABASE_DIRECT_URL when set, else DATABASE_URL.

    They need one server session for their whole run (a session-level advisory lock held across
    transactions, an exported snapshot that pg_dump joins, psql's `SET lock_timeout`), which a
    transaction-mode pooler such as PgBouncer does not keep: behind one, point DATABASE_DIRECT_URL
    at PostgreSQL itself.
    """
    return current_app.config.get("DATABASE_DIRECT_URL") or current_app.config["DATABASE_URL"]


def server_major(url: str | None = None) -> int:
    engine = db.engine if url is None else _engine(url)
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT current_setting('server_version_num')::int")).scalar_one()) // 10000


def _engine(url: str):
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from portal import sqlalchemy_url

    return create_engine(sqlalchemy_url(url), poolclass=NullPool)


def find_pg_dump(major: int) -> str:
    """The pg_dump of the server's major version; refuses, saying what to install, when none fits."""
    from portal.services import health

    found = health.find_pg_dump(major)
    if found is None:
        raise BackupError(f"No pg_dump found: install postgresql-client-{major} or set PG_DUMP to its path.")
    binary, version = found
    if version != major:
        raise BackupError(f"{binary} is version {version} but the server is PostgreSQL {major}: a dump made "
                          f"with another major version may not restore. Install postgresql-client-{major} "
                          f"or set PG_DUMP to a pg_dump {major}.")
    return binary


def find_psql(major: int) -> str:
    """The psql beside the matching pg_dump (restores load the plain SQL dump through it)."""
    psql = str(Path(find_pg_dump(major)).with_name("psql"))
    if not os.access(psql, os.X_OK):
        raise BackupError(f"No psql beside {Path(psql).with_name('pg_dump')}: install the whole "
                          f"postgresql-client-{major}.")
    return psql


# ---------------------------------------------------------------- creating a backup

@dataclass
class BackupResult:
    backup_id: int
    name: str
    size: int
    tables: dict[str, int]
    verification: Verification
    seconds: float


def request_backup(user: User) -> Backup:
    """The admin page's "Back up now": a catalog row and its job, unless one is already waiting or running."""
    from portal.queueing import enqueue
    from portal.services.uow import unit_of_work

    passphrase()  # refuse now, on the page, rather than in a job
    with unit_of_work():
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK + 1})
        waiting = db.session.scalars(select(Backup).where(Backup.status.in_(("queued", "running")))
                                     .with_for_update()).all()
        for row in waiting:
            if row.status == "queued" and utcnow() - row.created_at > QUEUED_STALE:
                _fail_row(row, "No worker picked this backup up; it was given up.")
            else:
                raise BackupBusy("A backup is already "
                                 f"{'running' if row.status == 'running' else 'waiting for a worker'}; "
                                 "it shows here when it is done.")
        row = Backup(status="queued", trigger="manual", requested_by_id=user.id)
        db.session.add(row)
        db.session.flush()
        enqueue("jobs.backup.create_backup", backup_id=row.id)
    return row


def create_backup(backup_id: int | None = None, trigger: str = "scheduled",
                  progress: Callable[[int], None] | None = None) -> BackupResult:
    """Dump, compress, encrypt, write, then verify; the catalog row and the metrics say how it went.

    One at a time (a PostgreSQL advisory lock): a second call while one runs raises BackupBusy.
    A failed dump or verification marks the row failed, mails the admins, and raises BackupError.
    """
    secret = passphrase()
    started = time.monotonic()
    target = Target.from_url(database_url())
    major = server_major()
    pg_dump = find_pg_dump(major)
    directory = backup_dir()
    directory.mkdir(parents=True, exist_ok=True)

    snapshot_conn = _engine(database_url()).connect()
    try:
        got = snapshot_conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK}).scalar_one()
        if not got:
            raise BackupBusy("Another backup or restore is running; try again when it has finished.")
        row = _start_row(backup_id, trigger, major)
        try:
            name = _free_name(directory)
            row.name = name
            db.session.commit()
            # The counts and the dump see the same snapshot: what is counted is what is dumped.
            snapshot_conn.commit()
            snapshot_conn.execute(text("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            snapshot = snapshot_conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            counts = _count_rows(snapshot_conn)
            size = _dump(pg_dump, target, snapshot, directory / name, secret, progress)
            snapshot_conn.rollback()
            row.size_bytes, row.table_counts, row.finished_at = size, counts, utcnow()
            db.session.commit()
            verification = verify_file(directory / name, secret, counts)
        except Exception as exc:
            db.session.rollback()
            problem = exc.message if isinstance(exc, ServiceError) else f"{type(exc).__name__}: {exc}"
            _record_failure(row, problem)
            raise BackupError(f"The backup failed: {problem}") from exc
        if not verification.ok:
            _record_failure(row, f"Verification failed: {verification.problem}")
            raise BackupError(f"{name} was written but did not verify: {verification.problem}")
        row.status, row.verified_at = "verified", utcnow()
        db.session.commit()
    finally:
        snapshot_conn.close()  # also releases the advisory lock
    seconds = time.monotonic() - started
    log.info("backup %s written and verified: %s bytes, %s rows in %.1f s", name, size,
             sum(counts.values()), seconds, extra={"type": "backup", "backup": name})
    return BackupResult(row.id, name, size, counts, verification, seconds)


def _start_row(backup_id: int | None, trigger: str, major: int) -> Backup:
    """Under the lock: rows still "running" are left from a process that died; then take or add ours."""
    for stale in db.session.scalars(select(Backup).where(Backup.status == "running")):
        _fail_row(stale, "Interrupted: the process making it stopped before it finished.")
    row = db.session.get(Backup, backup_id) if backup_id is not None else None
    if row is None or row.status != "queued":
        row = Backup(trigger=trigger)
        db.session.add(row)
    row.status, row.started_at, row.server_version = "running", utcnow(), str(major)
    db.session.commit()
    return row


def _free_name(directory: Path) -> str:
    """backup_YYYYMMDD_HHMMSS.sql.gz.enc of now (UTC); waits for the next second if that name is taken."""
    while True:
        now = datetime.now(UTC)
        name = now.strftime(NAME_FORMAT)
        taken = (directory / name).exists() or db.session.scalar(select(Backup.id).where(Backup.name == name))
        if not taken:
            return name
        time.sleep(1 - now.microsecond / 1_000_000 + 0.01)


def _count_rows(conn) -> dict[str, int]:
    tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).scalars()
    counts = {}
    for table in list(tables):
        quoted = '"' + table.replace('"', '""') + '"'
        counts[table] = int(conn.execute(text(f"SELECT count(*) FROM public.{quoted}")).scalar_one())
    return counts


def _dump(pg_dump: str, target: Target, snapshot: str, path: Path, secret: bytes,
          progress: Callable[[int], None] | None) -> int:
    """pg_dump → gzip → AES into a temporary file, renamed to `path` only when all of it is written."""
    temp = path.with_name(f"{PARTIAL_PREFIX}{path.name}")
    command = [pg_dump, "--format=plain", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
               "--schema=public", f"--dbname={target.uri}"]
    stderr = tempfile.TemporaryFile()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=target.env())
    try:
        with open(temp, "wb") as out:
            writer = EncryptingWriter(out, secret)
            read = 0
            # read1: whatever pg_dump has written so far (a pipe holds 64 KiB), so it keeps dumping
            # while this process compresses, as `pg_dump | gzip` would.
            while chunk := process.stdout.read1(CHUNK):
                writer.write(chunk)
                read += len(chunk)
                if progress is not None:
                    progress(read)
            digest = writer.close()
            out.flush()
            os.fsync(out.fileno())
        code = process.wait()
        if code != 0:
            stderr.seek(0)
            message = stderr.read().decode("utf-8", "replace").strip().splitlines()
            raise BackupError(f"pg_dump failed (exit {code}): {message[-1] if message else 'no message'}")
        _write_atomically(path.with_name(path.name + MAC_SUFFIX),
                          MacFile(path.name, writer.size, writer.salt.hex(), digest,
                                  writer.keys.key_check).render().encode())
        temp.replace(path)
        _fsync_dir(path.parent)
        return writer.size
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait()
        temp.unlink(missing_ok=True)
        raise
    finally:
        stderr.close()


def _fail_row(row: Backup, problem: str) -> None:
    row.status, row.error, row.finished_at = "failed", problem, row.finished_at or utcnow()


def _record_failure(row: Backup, problem: str) -> None:
    """Mark the row failed, count a verification failure, and mail the admins (once per backup)."""
    from portal import metrics
    from portal.services import notifications

    row = db.session.merge(row)
    _fail_row(row, problem)
    db.session.commit()
    if problem.startswith("Verification failed"):
        metrics.count_backup_verify_failure()
    log.error("backup %s failed: %s", row.name or f"#{row.id}", problem, extra={"type": "backup"})
    try:
        notifications.backup_failed(row.name, problem, row.id)
    except Exception:  # noqa: BLE001 - the failure is already on the row and in errors.log
        log.exception("could not queue the backup failure mail")


def verify_backup(name_or_path: str | Path, secret: bytes | None = None) -> Verification:
    """`flask backup verify` and the admin page's "Verify": read a file back and record what was found.

    A catalogued backup is compared with its dump-time row counts; a file the catalog never saw is
    checked for completeness and, when sound, added as "unverified" → "verified" with its counts.
    """
    secret = secret or passphrase()
    path = Path(name_or_path)
    if not path.is_absolute() and path.parent == Path("."):
        path = backup_dir() / path.name
    named = NAME_RE.match(path.name) is not None
    row = db.session.scalar(select(Backup).where(Backup.name == path.name)) if named else None
    result = verify_file(path, secret, row.table_counts if row is not None else None)
    if path.parent.resolve() != backup_dir().resolve() or result.wrong_passphrase:
        # A copy elsewhere (a download, say) is compared with its catalog row but recorded nowhere;
        # a wrong passphrase says nothing about the file.
        return result
    if row is None and named and path.exists():
        row = Backup(name=path.name, trigger="found", status="unverified", created_at=name_time(path.name),
                     size_bytes=result.size or path.stat().st_size, table_counts=result.tables or None)
        db.session.add(row)
    if row is not None and result.ok:
        row.status, row.verified_at, row.error = "verified", utcnow(), None
        row.table_counts = row.table_counts or result.tables
        db.session.commit()
    elif row is not None:
        _record_failure(row, f"Verification failed: {result.problem}")
    return result


def request_verify(name: str) -> None:
    """The admin page's "Verify": a job on the backup queue, refused now when it could only fail there."""
    from portal.queueing import enqueue
    from portal.services.uow import unit_of_work

    passphrase()
    if not backup_path(name).is_file():
        raise BackupError(f"{name} is no longer in the backup directory, so it cannot be verified.")
    with unit_of_work():
        enqueue("jobs.backup.verify_backup", name)


# ---------------------------------------------------------------- listing and retention

@dataclass(frozen=True)
class Listed:
    """A backup as the list shows it: the catalog row (if any) and the file (if it is still there)."""

    name: str
    created_at: datetime | None
    size: int | None
    status: str
    verified_at: datetime | None
    error: str | None
    on_disk: bool
    rows: int | None
    row_id: int | None


def list_backups(limit: int = 100) -> list[Listed]:
    """Newest first: every backup file in BACKUP_DIR and the catalog's recent rows (incl. queued, failed)."""
    files = {path.name: path for path in _backup_files()}
    rows = list(db.session.scalars(select(Backup).order_by(Backup.created_at.desc(), Backup.id.desc())
                                   .limit(limit)))
    seen = set()
    listed = []
    for row in rows:
        path = files.get(row.name) if row.name else None
        if row.name:
            seen.add(row.name)
        if row.deleted_at is not None and path is None:
            continue
        listed.append(Listed(row.name or "", row.created_at, row.size_bytes, row.status, row.verified_at,
                             row.error, path is not None, row.total_rows, row.id))
    for name, path in files.items():
        if name not in seen and not db.session.scalar(select(Backup.id).where(Backup.name == name)):
            listed.append(Listed(name, name_time(name), path.stat().st_size, "unverified", None,
                                 "Not in the catalog (made elsewhere, or before a restore): verify it.",
                                 True, None, None))
    listed.sort(key=lambda item: item.created_at or datetime.min.replace(tzinfo=UTC), reverse=True)
    return listed


def _backup_files() -> list[Path]:
    directory = backup_dir()
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir() if NAME_RE.match(path.name) and path.is_file())


def newest_verified() -> Backup | None:
    return db.session.scalar(select(Backup).where(Backup.status == "verified", Backup.deleted_at.is_(None))
                             .order_by(Backup.verified_at.desc()).limit(1))


def prune_backups(now: datetime | None = None) -> list[str]:
    """Delete our backup files older than RETENTION_DAYS, never the newest verified one; returns their names.

    Only names matching backup_YYYYMMDD_HHMMSS.sql.gz.enc (and their .hmac) are touched, so nothing
    an operator put in BACKUP_DIR is removed; leftovers of interrupted runs go after a day.
    """
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=current_app.config["RETENTION_DAYS"])
    keep = newest_verified()
    deleted = []
    for path in _backup_files():
        made = name_time(path.name)
        if made is None or made >= cutoff or (keep is not None and keep.name == path.name):
            continue
        path.unlink(missing_ok=True)
        path.with_name(path.name + MAC_SUFFIX).unlink(missing_ok=True)
        deleted.append(path.name)
    if deleted:
        for row in db.session.scalars(select(Backup).where(Backup.name.in_(deleted))):
            row.deleted_at = utcnow()
    directory = backup_dir()
    if directory.is_dir():
        for path in directory.iterdir():
            stale = now.timestamp() - path.stat().st_mtime > 86400
            partial = path.name.startswith(PARTIAL_PREFIX) and NAME_RE.match(
                path.name[len(PARTIAL_PREFIX):].removesuffix(MAC_SUFFIX))
            orphan = (path.name.endswith(MAC_SUFFIX) and NAME_RE.match(path.name.removesuffix(MAC_SUFFIX))
                      and not path.with_name(path.name.removesuffix(MAC_SUFFIX)).exists())
            if stale and (partial or orphan):
                path.unlink(missing_ok=True)
    db.session.commit()
    if deleted:
        log.info("retention deleted %d backup(s): %s", len(deleted), ", ".join(deleted), extra={"type": "backup"})
    return deleted


# ---------------------------------------------------------------- restore

@dataclass
class RestoreResult:
    name: str
    tables: dict[str, int]          # rows per table in the database after the restore and migrations
    expected: dict[str, int]        # rows per table in the file
    seconds: float


def other_sessions(url: str) -> int:
    """Connections to the target database other than ours (web, workers, psql sessions)."""
    with _engine(url).connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'")).scalar_one())


def restore_backup(path: Path, secret: bytes, url: str | None = None,
                   say: Callable[[str], None] = lambda _line: None) -> RestoreResult:
    """Verify the whole file, then drop the schema and load the dump in ONE transaction, then migrate.

    Nothing touches the database before the file is checked end to end; the load commits only
    after every byte streamed into psql passed the HMAC again and psql reported no error, so a
    wrong passphrase, a damaged file or an error half-way leaves the database as it was.
    """
    started = time.monotonic()
    url = url or database_url()
    target = Target.from_url(url)
    say(f"Checking {path.name} (HMAC, decryption, the whole dump)…")
    verification = verify_file(path, secret)
    if not verification.ok:
        raise BackupError(f"{path.name} cannot be restored: {verification.problem} The database was not touched.")
    say(f"  sound: {len(verification.tables)} tables, {sum(verification.tables.values()):,} rows.")
    major = server_major(url)
    psql = find_psql(major)

    lock_conn = _engine(url).connect()
    try:
        if not lock_conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK}).scalar_one():
            raise BackupBusy("A backup or another restore is running on this database; wait for it to finish.")
        lock_conn.commit()
        say("Loading it in one transaction (drop schema public, then the dump)…")
        _load(psql, target, path, secret, verification)
    finally:
        lock_conn.close()
    say("Running the migrations (flask db upgrade)…")
    _migrate(url)
    with _engine(url).begin() as conn:
        _settle_catalog(conn, path.name, verification)
        after = _count_rows(conn)
    return RestoreResult(path.name, after, verification.tables, time.monotonic() - started)


def _settle_catalog(conn, name: str, verification: Verification) -> None:
    """The restored catalog is as it was at dump time: the backup restored from shows "running" in it
    (it was being made), as may others. Record the restored one as verified, the others as cut short."""
    conn.execute(text("UPDATE backup SET status = 'verified', verified_at = now(), finished_at = coalesce("
                      "finished_at, now()), size_bytes = :size, table_counts = CAST(:counts AS jsonb), error = NULL "
                      "WHERE name = :name"),
                 {"name": name, "size": verification.size, "counts": json.dumps(verification.tables)})
    conn.execute(text("UPDATE backup SET status = 'failed', finished_at = coalesce(finished_at, now()), "
                      "error = 'In progress when the backup that was restored was made; its outcome is not known "
                      "here (verify the file).' WHERE status IN ('queued', 'running')"))


def _load(psql: str, target: Target, path: Path, secret: bytes, verification: Verification) -> None:
    keys, _size = check_mac(path, secret)
    command = [psql, "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", f"--dbname={target.uri}"]
    output = tempfile.TemporaryFile()
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT,
                               env=target.env())
    committed = False
    try:
        process.stdin.write(
            f"SET lock_timeout = '{RESTORE_LOCK_TIMEOUT}';\nBEGIN;\n"
            "DROP SCHEMA IF EXISTS public CASCADE;\n".encode())  # the dump creates it (--schema=public)
        mac = hmac.new(keys.mac_key, digestmod=hashlib.sha256)
        with open(path, "rb") as handle:  # the bytes decrypted now are the bytes checked now
            while chunk := handle.read(CHUNK):
                mac.update(chunk)
        expected = MacFile.read(path.with_name(path.name + MAC_SUFFIX))
        if not hmac.compare_digest(mac.hexdigest(), expected.digest):
            raise BackupError(f"{path.name} changed while it was being restored; nothing was committed.")
        scanner = DumpScanner()
        for chunk in decrypted_chunks(path, keys):
            scanner.feed(chunk)
            process.stdin.write(chunk)
        scanner.finish()
        if _judge(scanner, verification.tables) is not None:
            raise BackupError(f"{path.name} read differently the second time; nothing was committed.")
        process.stdin.write(b"\nCOMMIT;\n")
        committed = True
    except BrokenPipeError:
        pass  # psql stopped at an error: its message is read below
    finally:
        try:
            process.stdin.close()
        except BrokenPipeError:
            pass
        code = process.wait()
        output.seek(0)
        text_out = output.read().decode("utf-8", "replace").strip()
        output.close()
    if code != 0 or not committed:
        lines = [line for line in text_out.splitlines() if line.strip()]
        raise BackupError("The restore stopped and was rolled back; the database is as it was. "
                          f"psql said: {lines[-1] if lines else 'nothing'}")


def _migrate(url: str) -> None:
    """`flask db upgrade` against `url` (the restored dump may predate this code's migrations)."""
    from flask_migrate import upgrade

    from portal import create_app

    if url == database_url():
        upgrade(directory=str(_migrations_dir()))
        return
    app = create_app({"DATABASE_URL": url, "LOG_DIR": None})
    with app.app_context():
        upgrade(directory=str(_migrations_dir()))


def _migrations_dir() -> Path:
    from portal.config import PROJECT_ROOT

    return PROJECT_ROOT / "migrations"
