"""Mail notifications: written with the change that causes them, delivered by the email queue.

Writing (inside the caller's unit of work): each event makes one `notification` row per recipient,
keyed by event and recipient, so an event seen twice (a retried job, a second scan) never makes
a second row; the first row for a person in a transaction also writes one outbox job,
`jobs.email.deliver(person)`, so 500 changes in one transaction are one job, not 500.

Delivering (`deliver`, on the email queue): takes all of a person's pending rows, applies their
choices (kinds turned off, SLA alerts hourly), the flood rule, and sends what is left as ONE mail
(a single notification, or a summary of several). The rows are marked sent in the same
transaction that sent the mail: a retried job finds nothing pending and sends nothing again.

`send_digests` (hourly) sends each person their held rows as one digest mail.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, render_template
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from portal.domain import mentions
from portal.domain import notifications as rules
from portal.domain.workflow import PRIORITY_LABELS, STATUS_LABELS
from portal.extensions import db
from portal.models import Notification, NotificationSetting, ServiceRequest, SlaEvent, User
from portal.models._time import utcnow
from portal.observability import current_request_context
from portal.queueing import enqueue
from portal.services import mail
from portal.services.errors import ValidationFailed
from portal.services.uow import transaction_scoped, unit_of_work

log = logging.getLogger(__name__)

DELIVER_JOB = "jobs.email.deliver"
DELIVER_BATCH = 5000          # pending rows one delivery run takes (a flood beyond it: another run)
SLA_ALERT_BATCH = 2000        # SLA events one alert transaction reads
KEEP_DAYS = 90                # sent and skipped rows are kept this long (the trail of what was mailed)
TARGET_LABELS = {"response": "First response", "resolution": "Resolution"}


# ---------------------------------------------------------------- links

def link(endpoint: str, **values: Any) -> str:
    """An absolute link into the portal for a mail (PORTAL_URL; no request context needed)."""
    base = urlsplit(current_app.config["PORTAL_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "http")
    return adapter.build(endpoint, values, force_external=True)


# ---------------------------------------------------------------- writing

def notify(kind: str, recipient: User | None, event: str, payload: dict[str, Any],
           request_id: int | None = None) -> bool:
    """Record that `recipient` is to hear about `event` (in the current unit of work).

    `event` names the happening, not the person ("request:12@v3"); with the kind and the
    recipient it is the idempotency key. Returns False when there is nobody to tell or the row
    already exists.
    """
    if recipient is None or not recipient.active:
        return False
    if kind not in rules.KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    key = f"{kind}:{event}:{recipient.id}"[:200]
    inserted = db.session.execute(
        insert(Notification).values(
            key=key, recipient_id=recipient.id, kind=kind, request_id=request_id, payload=payload,
            status="pending", created_at=utcnow(), correlation_id=current_request_context().correlation_id)
        .on_conflict_do_nothing(index_elements=["key"]).returning(Notification.id)).first()
    if inserted is None:
        return False
    scheduled = transaction_scoped().setdefault("mail_recipients", set())
    if recipient.id not in scheduled:
        scheduled.add(recipient.id)
        enqueue(DELIVER_JOB, recipient.id)
    return True


def _request_facts(req: ServiceRequest, category_names: dict[str, str] | None = None) -> dict[str, Any]:
    """What a mail says about a request, as it is at the moment of the event."""
    if category_names is None:
        from portal.services.categories import names

        category_names = names()
    return {
        "request_id": req.id, "title": req.title, "status": STATUS_LABELS.get(req.status, req.status),
        "priority": PRIORITY_LABELS.get(req.priority, req.priority),
        "category": category_names.get(req.category, req.category),
        "url": link("requests.show_request", request_id=req.id),
    }


def request_created(req: ServiceRequest) -> None:
    """Tell the requester their request was received."""
    notify("request_created", req.requester, f"request:{req.id}", _request_facts(req), req.id)


def assigned(req: ServiceRequest, actor: User) -> None:
    """Tell the new assignee (unless they assigned it to themselves)."""
    if req.assignee_id is None or req.assignee_id == actor.id:
        return
    assignee = db.session.get(User, req.assignee_id)
    notify("assigned", assignee, f"request:{req.id}@v{req.version}",
           {**_request_facts(req), "by": actor.name}, req.id)


def status_changed(req: ServiceRequest, actor: User, old_status: str) -> None:
    """Tell the requester their request moved (unless they moved it)."""
    if req.requester_id == actor.id:
        return
    notify("status_changed", req.requester, f"request:{req.id}@v{req.version}",
           {**_request_facts(req), "old_status": STATUS_LABELS.get(old_status, old_status), "by": actor.name},
           req.id)


EXCERPT_MAX = 1000


def public_comment(req: ServiceRequest, comment, actor: User) -> None:
    """Tell whom a reply concerns: the requester (an answer on their request) and the assignee (the
    requester, or a colleague, wrote on the request they work). Never an internal note, never its author."""
    if comment.internal:
        return
    facts = {**_request_facts(req), "by": actor.name, "excerpt": _excerpt(comment.body)}
    if req.requester_id != actor.id:
        notify("public_comment", req.requester, f"comment:{comment.id}", facts, req.id)
    if req.assignee_id is not None and req.assignee_id not in (actor.id, req.requester_id):
        notify("public_comment", req.assignee, f"comment:{comment.id}", {**facts, "assigned": True}, req.id)


def _excerpt(body: str) -> str:
    return body if len(body) <= EXCERPT_MAX else body[:EXCERPT_MAX].rstrip() + " …"


def mentionable_people() -> list[mentions.Person]:
    """Who an internal note may mention: the active staff (agents, managers, admins)."""
    rows = db.session.execute(
        select(User.id, User.name, User.email).where(User.active.is_(True), User.role.in_(rules.STAFF_ROLES)))
    return [mentions.Person(i, name, email) for i, name, email in rows]


def mentioned(req: ServiceRequest, comment, actor: User) -> list[int]:
    """Tell each colleague an internal note mentions (never its author; once per note); returns their ids.

    Only internal notes mention: a reply is written to the requester, and its mail would tell a
    colleague nothing the request page does not. The key is the comment and the person, so the
    same note seen twice tells nobody twice.
    """
    if not comment.internal or "@" not in comment.body:
        return []
    ids = mentions.mentioned_ids(comment.body, mentionable_people(), author_id=actor.id)
    if not ids:
        return []
    payload = {**_request_facts(req), "by": actor.name, "excerpt": _excerpt(comment.body), "comment_id": comment.id}
    people = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))}
    for person_id in ids:
        notify("mention", people.get(person_id), f"comment:{comment.id}", payload, req.id)
    return ids


def sla_alerts(batch: int = SLA_ALERT_BATCH) -> int:
    """Write the mails for breached and at-risk events not yet mailed; returns how many events.

    The SLA engine records each event once; this marks each one mailed in the same transaction
    as its notifications (SKIP LOCKED: two runs at once never take the same event). Each event
    goes to the request's assignee and every manager; one person's alerts of one run are one mail.
    """
    from portal.services.categories import names

    total = 0
    while True:
        with unit_of_work():
            events = list(db.session.scalars(
                select(SlaEvent).where(SlaEvent.kind.in_(("at_risk", "breached")), SlaEvent.notified_at.is_(None))
                .order_by(SlaEvent.id).limit(batch).with_for_update(skip_locked=True)))
            if not events:
                return total
            requests = {r.id: r for r in db.session.scalars(
                select(ServiceRequest).where(ServiceRequest.id.in_({e.request_id for e in events})))}
            assignee_ids = {r.assignee_id for r in requests.values() if r.assignee_id is not None}
            people = {u.id: u for u in db.session.scalars(
                select(User).where(User.active.is_(True), (User.role == "manager") | User.id.in_(assignee_ids)))}
            managers = {i: u for i, u in people.items() if u.role == "manager"}
            category_names = names()
            now = utcnow()
            for event in events:
                req = requests[event.request_id]
                kind = "sla_breached" if event.kind == "breached" else "sla_at_risk"
                payload = {**_request_facts(req, category_names),
                           "target": TARGET_LABELS.get(event.target or "", event.target), "at": event.at.isoformat()}
                recipients = dict(managers)
                if req.assignee_id in people:
                    recipients[req.assignee_id] = people[req.assignee_id]
                for person in recipients.values():
                    notify(kind, person, f"sla_event:{event.id}", payload, req.id)
                event.notified_at = now
            total += len(events)
        if len(events) < batch:
            return total


def dead_letter(job_id: str, func: str, queue: str, error: str, correlation_id: str | None,
                failed_at: str | None) -> int:
    """Tell every active admin, once per failure, that a job failed after its last retry."""
    admins = list(db.session.scalars(select(User).where(User.role == "admin", User.active.is_(True))))
    payload = {"job_id": job_id, "func": func, "queue": queue, "error": (error or "")[-2000:],
               "correlation_id": correlation_id, "failed_at": failed_at, "url": link("admin.failed_jobs")}
    with unit_of_work():
        return sum(notify("dead_letter", admin, f"job:{job_id}@{failed_at}", payload) for admin in admins)


def backup_failed(name: str | None, problem: str, backup_id: int) -> int:
    """Tell every active admin, once per backup, that it failed or did not verify."""
    admins = list(db.session.scalars(select(User).where(User.role == "admin", User.active.is_(True))))
    payload = {"name": name, "problem": problem[-2000:], "url": link("admin.list_backups")}
    with unit_of_work():
        return sum(notify("backup_failed", admin, f"backup:{backup_id}", payload) for admin in admins)


def security_alert(event: str, payload: dict[str, Any]) -> int:
    """Tell every active admin about suspicious activity (a blocked network), once per event and minute."""
    admins = list(db.session.scalars(select(User).where(User.role == "admin", User.active.is_(True))))
    payload = {**payload, "url": link("admin.system_status")}
    stamp = utcnow().isoformat(timespec="minutes")
    with unit_of_work():
        return sum(notify("security_alert", admin, f"{event}@{stamp}", payload) for admin in admins)


def account_locked(user: User, payload: dict[str, Any]) -> None:
    """Tell a person their account was locked after failed sign-ins (once per lock)."""
    payload = {**payload, "url": link("auth.login")}
    with unit_of_work():
        notify("account_locked", user, f"lock@{utcnow().isoformat(timespec='minutes')}", payload)


SECRET_LINK_KINDS = ("password_reset", "verify_email")  # their link is in the mail only, never kept after


def verify_email(user: User, url: str, nonce: str, valid_hours: int) -> None:
    """Send the link that confirms a new account's address."""
    with unit_of_work():
        notify("verify_email", user, f"verify:{nonce}", {"url": url, "valid_hours": valid_hours})


def account_exists(user: User, nonce: str) -> None:
    """Someone registered with an address that has an account: tell its owner, not the one registering."""
    with unit_of_work():
        notify("account_exists", user, f"exists:{nonce}", {"login_url": link("auth.login"),
                                                          "reset_url": link("auth.request_password_reset")})


def password_reset(user: User, reset_url: str, token_id: str, valid_minutes: int) -> None:
    """Send a password-reset link (always sent, whatever the person's choices)."""
    with unit_of_work():
        notify("password_reset", user, f"token:{token_id}", {"url": reset_url, "valid_minutes": valid_minutes})


# ---------------------------------------------------------------- choices

@dataclass(frozen=True)
class Choices:
    """What a person gets: kinds turned off, and SLA alerts as an hourly digest."""

    muted: frozenset[str]
    sla_digest: bool


def choices(user: User) -> Choices:
    setting = db.session.get(NotificationSetting, user.id)
    if setting is None:
        return Choices(frozenset(), False)
    return Choices(frozenset(setting.muted_kinds), setting.sla_digest)


def save_choices(actor: User, wanted: Iterable[str], sla_digest: bool) -> Choices:
    """Keep the kinds in `wanted` on (the rest of the person's kinds off) and the SLA digest choice."""
    offered = {k.code for k in rules.kinds_for(actor.role)}
    wanted = set(wanted)
    unknown = wanted - offered
    if unknown:
        raise ValidationFailed({"kinds": "Choose only from the notifications listed."})
    muted = sorted(offered - wanted)
    with unit_of_work():
        db.session.execute(
            insert(NotificationSetting).values(user_id=actor.id, muted_kinds=muted, sla_digest=bool(sla_digest),
                                               updated_at=utcnow())
            .on_conflict_do_update(index_elements=["user_id"],
                                   set_={"muted_kinds": muted, "sla_digest": bool(sla_digest),
                                         "updated_at": utcnow()}))
    return Choices(frozenset(muted), bool(sla_digest))


# ---------------------------------------------------------------- delivering

def headline(kind: str, p: dict[str, Any]) -> str:
    """One line about a notification: a single mail's subject, an item in a summary or digest."""
    ref = f"#{p.get('request_id')} {p.get('title', '')}".strip()
    return {
        "request_created": f"We received your request {ref}",
        "assigned": f"{ref} was assigned to you",
        "public_comment": f"{p.get('by')} replied on {ref}",
        "mention": f"{p.get('by')} mentioned you on {ref}",
        "status_changed": f"{ref} is now {p.get('status')}",
        "sla_at_risk": f"At risk: {p.get('target')} target of {ref}",
        "sla_breached": f"Breached: {p.get('target')} target of {ref}",
        "dead_letter": f"Job failed after its last retry: {p.get('func')} ({p.get('queue')})",
        "backup_failed": f"Backup failed: {p.get('name') or 'the database backup'}",
        "security_alert": f"Security: {p.get('what')}",
        "account_locked": "Your Service Portal account was locked after failed sign-ins",
        "verify_email": "Confirm your email address for Service Portal",
        "account_exists": "You already have a Service Portal account",
        "password_reset": "Reset your Service Portal password",
    }[kind]


def _render(template: str, **context: Any) -> tuple[str, str]:
    context.setdefault("account_url", link("account.account"))
    return render_template(f"mail/{template}.txt", **context), render_template(f"mail/{template}.html", **context)


def _compose(user: User, rows: list[Notification], digest: bool) -> tuple[str, str, str]:
    """Subject, text and HTML for one mail about `rows`."""
    if len(rows) == 1 and not digest:
        row = rows[0]
        text, html = _render(row.kind, user=user, p=row.payload, headline=headline(row.kind, row.payload))
        return headline(row.kind, row.payload), text, html
    items = [{"headline": headline(r.kind, r.payload), "url": r.payload.get("url"), "kind": r.kind}
             for r in rows[:rules.SUMMARY_LIST_MAX]]
    more = max(0, len(rows) - rules.SUMMARY_LIST_MAX)
    if digest:
        subject = f"Your Service Portal digest: {len(rows)} update{'s' if len(rows) != 1 else ''}"
    else:
        subject = f"{len(rows)} updates on Service Portal"
    text, html = _render("summary", user=user, items=items, more=more, count=len(rows), digest=digest,
                         subject=subject)
    return subject, text, html


def _send(user: User, rows: list[Notification], digest: bool = False) -> None:
    """Send one mail about `rows` and mark them sent (the caller's transaction holds them locked)."""
    subject, text, html = _compose(user, rows, digest)
    message_id = mail.stable_message_id(f"n{rows[0].id}-{len(rows)}-{'d' if digest else 's'}")
    mail.send(mail.build_message(user.email, subject, text, html, message_id,
                                 headers={"X-Portal-Notification": ",".join(sorted({r.kind for r in rows}))}))
    now = utcnow()
    for row in rows:
        row.status, row.sent_at, row.message_id, row.reason = "sent", now, message_id, None
        if row.kind in SECRET_LINK_KINDS:
            row.payload = {k: v for k, v in row.payload.items() if k != "url"}  # the link lives in the mail only


def _recent_mails(user_id: int) -> int:
    since = utcnow() - timedelta(minutes=rules.FLOOD_WINDOW_MINUTES)
    return db.session.scalar(
        select(func.count(func.distinct(Notification.message_id)))
        .where(Notification.recipient_id == user_id, Notification.status == "sent", Notification.sent_at >= since)) or 0


def deliver(recipient_id: int) -> int:
    """Send `recipient_id` their pending notifications as one mail; returns how many went (0 or more).

    Raises on a mail server error: nothing is marked, the job is retried, nothing is sent twice.
    """
    sent = 0
    while True:
        with unit_of_work():
            rows = list(db.session.scalars(
                select(Notification).where(Notification.recipient_id == recipient_id, Notification.status == "pending")
                .order_by(Notification.id).limit(DELIVER_BATCH).with_for_update(skip_locked=True)))
            if not rows:
                return sent
            user = db.session.get(User, recipient_id)
            to_send = _sort(user, rows)
            if to_send:
                _send(user, to_send)
                sent += len(to_send)
        if len(rows) < DELIVER_BATCH:
            return sent


def _screen(user: User | None, rows: list[Notification]) -> tuple[list[Notification], Choices | None]:
    """Mark skipped what nobody should get (the person is gone, or turned the kind off).

    Returns the rest and the person's choices (None when there is nobody to send to)."""
    if user is None or not user.active:
        for row in rows:
            row.status, row.reason = "skipped", rules.SKIPPED_NO_RECIPIENT
        return [], None
    mine = choices(user)
    kept = []
    for row in rows:
        if rules.wants(row.kind, user.role, mine.muted):
            kept.append(row)
        else:
            row.status, row.reason = "skipped", rules.SKIPPED_TURNED_OFF
    return kept, mine


def _sort(user: User | None, rows: list[Notification]) -> list[Notification]:
    """Apply the person's choices and the flood rule; mark what is skipped or held; return what goes now."""
    kept, mine = _screen(user, rows)
    if not kept:
        return []
    now_rows: list[Notification] = []
    for row in kept:
        if rules.KINDS[row.kind].sla_alert and mine.sla_digest:
            row.status, row.reason = "held", rules.HELD_FOR_DIGEST
        else:
            now_rows.append(row)
    if now_rows and _recent_mails(user.id) >= rules.FLOOD_LIMIT:
        # Enough mail for now: what can wait goes in the next digest; a reset link never waits.
        waiting = [r for r in now_rows if rules.KINDS[r.kind].optional]
        for row in waiting:
            row.status, row.reason = "held", rules.HELD_FOR_FLOOD
        now_rows = [r for r in now_rows if not rules.KINDS[r.kind].optional]
    return now_rows


def send_digests() -> int:
    """Send each person with held notifications one digest mail; returns how many people got one.

    One person's mail failing does not stop the others; the job fails afterwards so RQ retries
    (the digests already sent are marked and not sent again).
    """
    people = list(db.session.scalars(
        select(Notification.recipient_id).where(Notification.status == "held").distinct()))
    db.session.rollback()  # end the read-only transaction; each person's digest is its own
    done, failed = 0, []
    for person in people:
        try:
            with unit_of_work():
                rows = list(db.session.scalars(
                    select(Notification).where(Notification.recipient_id == person, Notification.status == "held")
                    .order_by(Notification.id).with_for_update(skip_locked=True)))
                user = db.session.get(User, person)
                keep, _ = _screen(user, rows)
                if keep:
                    _send(user, keep, digest=True)
                    done += 1
        except Exception as exc:  # noqa: BLE001 - one person's mail server error must not block the rest
            log.exception("digest for user %s failed; it is retried", person)
            failed.append((person, exc))
    if failed:
        raise RuntimeError(f"{len(failed)} digest(s) could not be sent: {failed[0][1]}") from failed[0][1]
    return done


def prune(days: int = KEEP_DAYS) -> int:
    """Delete sent and skipped notifications older than `days`; returns how many."""
    with unit_of_work():
        result = db.session.execute(Notification.__table__.delete().where(
            Notification.status.in_(("sent", "skipped")), Notification.created_at < utcnow() - timedelta(days=days)))
    return result.rowcount or 0


def recent_for(user: User, limit: int = 20) -> list[Notification]:
    """The person's latest notifications and what became of each (for their account page)."""
    return list(db.session.scalars(
        select(Notification).where(Notification.recipient_id == user.id)
        .order_by(Notification.id.desc()).limit(limit)))

