"""Demo data: accounts for every role and ~300 requests spread over the last 60 days."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from portal.domain import workflow
from portal.extensions import db
from portal.models import AuditLog, Comment, ServiceRequest, User
from portal.models._time import utcnow
from portal.services.categories import ensure_default_categories
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


def create_demo_data(seed: int = 7, count: int = 300, only_if_empty: bool = False) -> DemoResult | None:
    """Create the demo accounts and requests; None when `only_if_empty` and users exist."""
    if only_if_empty and db.session.scalar(select(func.count()).select_from(User)):
        return None
    ensure_default_categories()
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
        age_days = (now - start).total_seconds() / 86400
        status = _status_for_age(rng, age_days)
        requester = rng.choice(requesters)
        assignee = None if status == "open" and rng.random() < 0.7 else rng.choice(agents)
        req = ServiceRequest(
            title=rng.choice(TITLES[category]), description=rng.choice(DESCRIPTIONS),
            category=category, priority=priority, status="open", requester_id=requester.id,
            assignee_id=assignee.id if assignee else None, created_at=start, updated_at=start,
        )
        db.session.add(req)
        db.session.flush()
        db.session.add(AuditLog(actor_id=requester.id, action="request.created", entity_type="service_request",
                                entity_id=req.id, after={"status": "open", "priority": priority,
                                                         "category": category}, at=start))
        clock = start
        if status != "open" and assignee is not None:
            clock = min(now, clock + timedelta(minutes=rng.randint(5, 240)))
            db.session.add(Comment(request_id=req.id, author_id=assignee.id, body=rng.choice(REPLIES),
                                   created_at=clock))
            req.first_response_at = clock
            if rng.random() < 0.3:
                db.session.add(Comment(request_id=req.id, author_id=assignee.id, internal=True,
                                       body=rng.choice(INTERNAL_NOTES), created_at=clock + timedelta(minutes=2)))
            if rng.random() < 0.4:
                clock = min(now, clock + timedelta(minutes=rng.randint(10, 600)))
                db.session.add(Comment(request_id=req.id, author_id=requester.id,
                                       body=rng.choice(CUSTOMER_REPLIES), created_at=clock))
        path = {"open": [], "in_progress": ["in_progress"],
                "waiting_on_customer": ["in_progress", "waiting_on_customer"],
                "resolved": ["in_progress", "resolved"], "closed": ["in_progress", "resolved", "closed"]}[status]
        if status != "open" and assignee is None:
            path = []
        current = "open"
        for target in path:
            clock = min(now, clock + timedelta(minutes=rng.randint(5, 60 * 24 * 3)))
            stamps = workflow.apply_transition(
                current, target, workflow.Timestamps(req.first_response_at, req.resolved_at, req.closed_at), clock)
            req.first_response_at, req.resolved_at, req.closed_at = (
                stamps.first_response_at, stamps.resolved_at, stamps.closed_at)
            db.session.add(AuditLog(actor_id=assignee.id, action="request.status_changed",
                                    entity_type="service_request", entity_id=req.id,
                                    before={"status": current}, after={"status": target}, at=clock))
            current = target
        req.status = current
        req.updated_at = clock
        created += 1
    db.session.commit()
    return DemoResult(users=len(DEMO_USERS), requests=created)
