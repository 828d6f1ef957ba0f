"""Demo data: accounts for every role, SLA rules, and ~300 requests spread over the last 60 days
whose clocks are met, at risk, breached, paused and exempt."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select, update

from portal.domain import workflow
from portal.extensions import db
from portal.models import (
    AuditLog,
    BusinessCalendarRecord,
    Comment,
    Holiday,
    ServiceRequest,
    SlaDefinition,
    SlaEvent,
    SlaMetric,
    User,
)
from portal.models._time import utcnow
from portal.services import sla
from portal.services.categories import DEFAULT_CATEGORIES, ensure_default_categories
from portal.services.uow import unit_of_work
from portal.services.users import hash_password

DEMO_PASSWORD = "demo-password"
DEMO_USERS = (
    ("admin@example.com", "Ada Admin", "admin"),
    ("manager@example.com", "Morgan Manager", "manager"),
    ("agent@example.com", "Alex Agent", "agent"),
    ("sam.agent@example.com", "Sam Rivera", "agent"),
    ("kim.agent@example.com", "Kim Okafor", "agent"),
    ("requester@example.com", "Riley Requester", "requester"),
    ("jordan@example.com", "Jordan Lee", "requester"),
    ("priya@example.com", "Priya Natarajan", "requester"),
    ("tomas@example.com", "Tomás García", "requester"),
    ("mei@example.com", "Mei Chen", "requester"),
)
DEMO_SIGN_INS = (
    ("admin@example.com", "admin"),
    ("manager@example.com", "manager"),
    ("agent@example.com", "agent"),
    ("requester@example.com", "requester"),
)

TITLES = {
    "hardware": ["Laptop will not power on", "Docking station not detecting monitors", "Keyboard keys sticking",
                 "Replace cracked phone screen", "Printer on 3rd floor jams constantly", "Battery drains in an hour",
                 "Need a second monitor", "Headset microphone not working"],
    "software": ["Excel crashes when opening large files", "Install Visual Studio Code", "Outlook stuck on 'updating'",
                 "License expired for design tool", "Teams notifications not showing", "Upgrade to latest OS build",
                 "PDF editor asks for activation", "Browser extension blocked by policy"],
    "network": ["VPN disconnects every few minutes", "Wi-Fi weak in meeting room B", "Cannot reach shared drive",
                "Slow internet on guest network", "DNS errors for intranet site", "Ethernet port dead at desk 14"],
    "access": ["Access to finance shared folder", "Reset MFA device", "New starter needs accounts",
               "Remove access for leaver", "Admin rights for install", "Cannot sign in to HR portal"],
    "other": ["Move desk equipment to new office", "Question about data retention", "Request a training session",
              "Conference room display setup", "Recycle old equipment"],
}
DESCRIPTIONS = [
    "Started this morning. I restarted twice and it still happens.",
    "This blocks my work on the quarterly report, please help soon.",
    "Happens intermittently, roughly every hour. Screenshot attached in chat.",
    "Colleagues nearby have the same issue.",
    "Not urgent, but would be great to have by end of week.",
]
REPLIES = [
    "Thanks for reporting this, I'm looking into it now.",
    "Could you tell me the exact error message you see?",
    "I've pushed a fix; please try again and let me know.",
    "Ordered the replacement part, it should arrive in two days.",
    "Checked the logs; this looks like a known issue with the last update.",
]
CUSTOMER_REPLIES = ["Here is the error: 0x80070005.", "Tried again, it works now. Thanks!", "Still happening, sadly."]
INTERNAL_NOTES = ["Vendor ticket opened, ref VND-2231.", "Same root cause as last week's outage.",
                  "Escalate to network team if not fixed by Friday."]


@dataclass
class DemoResult:
    users: int
    requests: int


def demo_accounts_exist() -> bool:
    """True once the demo admin account exists."""
    return db.session.scalar(select(User.id).where(func.lower(User.email) == DEMO_USERS[0][0])) is not None


def _status_for_age(rng: random.Random, age_days: float) -> str:
    if age_days > 20:
        return rng.choices(["closed", "resolved", "in_progress", "waiting_on_customer"], [60, 30, 6, 4])[0]
    if age_days > 5:
        return rng.choices(["resolved", "closed", "in_progress", "waiting_on_customer", "open"],
                           [30, 20, 25, 10, 15])[0]
    return rng.choices(["open", "in_progress", "waiting_on_customer", "resolved"], [45, 35, 10, 10])[0]


# Minutes to the first reply and between status steps, by priority: urgent work moves faster.
PACE = {"critical": ((5, 45), (30, 300)), "high": ((10, 150), (60, 600)),
        "medium": ((20, 360), (120, 1800)), "low": ((30, 720), (240, 4320))}

# The guide's examples, then a sensible rest of the matrix (hours: response, resolution; calendar?).
DEMO_SLA = {
    ("hardware", "high"): (2, 8, False), ("software", "medium"): (4, 24, True), ("network", "high"): (1, 4, False),
}
DEMO_SLA_DEFAULTS = {"critical": (0.5, 4, False), "high": (2, 8, False), "medium": (4, 24, True),
                     "low": (8, 72, True)}


def ensure_demo_sla() -> None:
    """A London business calendar with holidays, and an active definition for every pair."""
    if db.session.scalar(select(func.count()).select_from(SlaDefinition)):
        return
    cal = BusinessCalendarRecord(name="London office", timezone="Europe/London", working_days=[0, 1, 2, 3, 4],
                                 opens=time(9, 0), closes=time(18, 0))
    for day, name in ((date(2026, 8, 31), "Summer bank holiday"), (date(2026, 12, 25), "Christmas Day"),
                      (date(2026, 12, 28), "Boxing Day (substitute)"), (date(2027, 1, 1), "New Year's Day")):
        cal.holidays.append(Holiday(day=day, name=name))
    db.session.add(cal)
    db.session.flush()
    for code, _, _ in DEFAULT_CATEGORIES:
        for priority in workflow.PRIORITIES:
            response, resolution, business = DEMO_SLA.get((code, priority), DEMO_SLA_DEFAULTS[priority])
            db.session.add(SlaDefinition(category=code, priority=priority, response_time_hours=response,
                                         resolution_time_hours=resolution, calendar_id=cal.id if business else None,
                                         pause_statuses=["waiting_on_customer"], at_risk_percent=75))
    db.session.flush()


def _step(req: ServiceRequest, actor: User, at: datetime, **fields) -> None:
    """Change the request as of `at` and keep its SLA clock in step, as the services would."""
    before = sla.clock_snapshot(req)
    for name, value in fields.items():
        setattr(req, name, value)
    req.updated_at = at
    sla.sync(req, before, actor, at)


def create_demo_data(seed: int = 7, count: int = 300, only_if_empty: bool = False) -> DemoResult | None:
    """Create the demo accounts, SLA rules and requests; None when `only_if_empty` and users exist."""
    if only_if_empty and db.session.scalar(select(func.count()).select_from(User)):
        return None
    with unit_of_work():
        ensure_default_categories()
        ensure_demo_sla()
        rng = random.Random(seed)
        password_hash = hash_password(DEMO_PASSWORD)
        people: dict[str, list[User]] = {role: [] for role in workflow.ROLES}
        for email, name, role in DEMO_USERS:
            user = db.session.scalar(select(User).where(func.lower(User.email) == email))
            if user is None:
                user = User(email=email, name=name, role=role, password_hash=password_hash, active=True)
                db.session.add(user)
            people[user.role].append(user)
        db.session.flush()
        agents = people["agent"] + people["manager"]
        requesters = people["requester"]
        now = utcnow()
        created = 0
        for _ in range(count):
            category = rng.choices(list(TITLES), [30, 30, 15, 15, 10])[0]
            priority = rng.choices(workflow.PRIORITIES, [25, 45, 22, 8])[0]
            start = now - timedelta(minutes=rng.randint(10, 60 * 24 * 60))
            status = _status_for_age(rng, (now - start).total_seconds() / 86400)
            requester = rng.choice(requesters)
            assignee = None if status == "open" and rng.random() < 0.7 else rng.choice(agents)
            _make_request(rng, now, start, category, priority, status, requester, assignee)
            created += 1
        for title, category, priority, minutes_ago in (
                ("Email server unreachable for the sales team", "network", "critical", 25),
                ("Payroll system login fails for everyone in finance", "access", "high", 300)):
            _make_request(rng, now, now - timedelta(minutes=minutes_ago), category, priority, "open",
                          requesters[0], None, title=title)
            created += 1
    _replay_checks(now - timedelta(days=61), now)
    _demo_exemptions(people["manager"][0], now)
    return DemoResult(users=len(DEMO_USERS), requests=created)


def _make_request(rng: random.Random, now: datetime, start: datetime, category: str, priority: str, status: str,
                  requester: User, assignee: User | None, title: str | None = None) -> ServiceRequest:
    req = ServiceRequest(
        title=title or rng.choice(TITLES[category]), description=rng.choice(DESCRIPTIONS),
        category=category, priority=priority, status="open", requester_id=requester.id,
        assignee_id=assignee.id if assignee else None, created_at=start, updated_at=start,
    )
    db.session.add(req)
    db.session.flush()
    db.session.add(AuditLog(actor_id=requester.id, action="request.created", entity_type="service_request",
                            entity_id=req.id, after={"status": "open", "priority": priority,
                                                     "category": category}, at=start))
    sla.start_clock(req, start, requester)
    if status == "open" or assignee is None:
        return req
    reply_pace, step_pace = PACE[priority]
    clock = _advance(rng, start, reply_pace, now)
    db.session.add(Comment(request_id=req.id, author_id=assignee.id, body=rng.choice(REPLIES), created_at=clock))
    _step(req, assignee, clock, first_response_at=clock)
    if rng.random() < 0.3:
        db.session.add(Comment(request_id=req.id, author_id=assignee.id, internal=True,
                               body=rng.choice(INTERNAL_NOTES), created_at=clock + timedelta(minutes=2)))
    path = {"in_progress": ["in_progress"], "waiting_on_customer": ["in_progress", "waiting_on_customer"],
            "resolved": ["in_progress", "resolved"], "closed": ["in_progress", "resolved", "closed"]}[status]
    if status in ("resolved", "closed") and rng.random() < 0.35:
        path = ["in_progress", "waiting_on_customer", "in_progress", *path[1:]]
    current = "open"
    for target in path:
        clock = _advance(rng, clock, step_pace, now)
        if current == "waiting_on_customer":
            db.session.add(Comment(request_id=req.id, author_id=requester.id,
                                   body=rng.choice(CUSTOMER_REPLIES), created_at=clock))
        stamps = workflow.apply_transition(
            current, target, workflow.Timestamps(req.first_response_at, req.resolved_at, req.closed_at), clock)
        db.session.add(AuditLog(actor_id=assignee.id, action="request.status_changed",
                                entity_type="service_request", entity_id=req.id,
                                before={"status": current}, after={"status": target}, at=clock))
        _step(req, assignee, clock, status=target, first_response_at=stamps.first_response_at,
              resolved_at=stamps.resolved_at, closed_at=stamps.closed_at)
        current = target
    return req


def _advance(rng: random.Random, clock: datetime, pace: tuple[int, int], now: datetime) -> datetime:
    """The next step's time: the usual pace, but always some way short of now (history, not the future)."""
    step = timedelta(minutes=rng.randint(*pace))
    room = (now - clock) * rng.uniform(0.2, 0.6)
    return clock + min(step, room)


def _replay_checks(since: datetime, now: datetime) -> None:
    """Run the periodic checks as the scheduler would have, hourly, so breach times are true."""
    at = since
    while at < now:
        sla.check_all_breaches(at)
        sla.check_at_risk(at)
        at += timedelta(hours=1)
    sla.check_all_breaches(now)
    sla.check_at_risk(now)
    with unit_of_work():  # sixty days of replayed alerts are history, not news: nobody is mailed them
        db.session.execute(update(SlaEvent).where(SlaEvent.kind.in_(("breached", "at_risk")),
                                                  SlaEvent.notified_at.is_(None)).values(notified_at=now))


def _demo_exemptions(manager: User, now: datetime) -> None:
    """Two open requests with an exemption: one for a day, one until revoked."""
    candidates = list(db.session.scalars(
        select(ServiceRequest).join(SlaMetric, SlaMetric.request_id == ServiceRequest.id)
        .where(ServiceRequest.status == "in_progress", SlaMetric.resolution_breached_at.is_(None),
               SlaMetric.definition_id.is_not(None))
        .order_by(ServiceRequest.created_at.desc()).limit(2)))
    reasons = [("Waiting for the vendor's replacement part (RMA 55121)", 24),
               ("Customer is travelling; agreed to pick this up on their return", None)]
    for req, (reason, hours) in zip(candidates, reasons, strict=False):
        sla.grant_exemption(manager, req.id, reason, "resolution", hours, now=now - timedelta(hours=1))
