"""Sending one email: SMTP when MAIL_SERVER is set, else an .eml file under MAIL_DIR (development).

Only the email queue's jobs call this (through portal/services/notifications.py); a page never
waits on a mail server.
"""

from __future__ import annotations

import email.policy
import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from flask import current_app

from portal.models._time import utcnow

log = logging.getLogger(__name__)
# Headers up to RFC 5322's 998 characters stay on one line: a subject with a long request title is
# not folded before its first word (which some readers show as a leading space).
HEADER_POLICY = email.policy.default.clone(max_line_length=998)


def build_message(to: str, subject: str, text: str, html: str | None = None, message_id: str | None = None,
                  headers: dict[str, str] | None = None) -> EmailMessage:
    """A plain-text mail with an HTML alternative, from MAIL_FROM."""
    msg = EmailMessage(policy=HEADER_POLICY)
    msg["From"] = current_app.config["MAIL_FROM"]
    msg["To"] = to
    msg["Subject"] = " ".join(subject.split())  # never a header injection, never a folded line
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = message_id or make_msgid(domain=_domain())
    msg["Auto-Submitted"] = "auto-generated"   # RFC 3834: out-of-office replies stay away
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg


def stable_message_id(key: str) -> str:
    """The same Message-ID for the same notification(s), so a mail sent twice reads as one."""
    safe = re.sub(r"[^A-Za-z0-9._-]", ".", key)[:120]
    return f"<{safe}@{_domain()}>"


def _domain() -> str:
    sender = current_app.config["MAIL_FROM"]
    match = re.search(r"@([A-Za-z0-9.-]+)", sender)
    return match.group(1) if match else "service-portal.local"


def send(msg: EmailMessage) -> str:
    """Deliver `msg`; returns where it went ("smtp" or the .eml path). SMTP errors are raised (the job retries)."""
    config = current_app.config
    if config.get("MAIL_SERVER"):
        _send_smtp(msg, config)
        log.info("mail sent to %s: %s", msg["To"], msg["Subject"])
        return "smtp"
    path = _write_eml(msg, Path(config["MAIL_DIR"]))
    log.info("mail written to %s (MAIL_SERVER is unset): to %s: %s", path, msg["To"], msg["Subject"])
    return str(path)


def _send_smtp(msg: EmailMessage, config) -> None:
    timeout = config["MAIL_TIMEOUT"]
    if config["MAIL_USE_SSL"]:
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=timeout,
                                              context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=timeout)
    with smtp:
        if config["MAIL_USE_TLS"] and not config["MAIL_USE_SSL"]:
            smtp.starttls(context=ssl.create_default_context())
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
        smtp.send_message(msg)


def _write_eml(msg: EmailMessage, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
    ident = re.sub(r"[^A-Za-z0-9]", "", str(msg["Message-ID"]))[:40]
    path = directory / f"{stamp}-{ident}.eml"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(bytes(msg))
    tmp.replace(path)  # a reader never sees half a mail
    return path
