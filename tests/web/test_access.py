"""Every route, for every role and for anonymous visitors: who gets in, and what the others see.

ROUTES lists every (method, rule) of app.url_map except /static; a route added without an entry
here fails test_access_table_covers_every_route.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from tests.web.helpers import login_next, text_of

ROLES = ("requester", "agent", "manager", "admin")
ACTORS = ("anonymous", *ROLES)

# Who may use a route.
PUBLIC = frozenset(ACTORS)
SIGNED_IN = frozenset(ROLES)
OWNER = frozenset(ROLES)  # the requester on their own request, and all staff
STAFF = frozenset({"agent", "manager", "admin"})
MANAGERS = frozenset({"manager", "admin"})
ADMIN = frozenset({"admin"})


@dataclass(frozen=True)
class Route:
    method: str
    rule: str
    url: str  # formatted with the world's ids: {own}, {own_att}, {target}, {definition}, {calendar},
    # {holiday}, {exemption}
    who: frozenset
    form: dict[str, Any] | None = None
    json: dict[str, Any] | None = None
    credentials: bool = False  # send the actor's email and password
    headers: dict[str, str] | None = None
    accept: tuple[int, ...] = ()  # statuses that also mean "let in" (a form refusing the walk's dummy values)

    @property
    def api(self) -> bool:
        return self.rule.startswith("/api/")

    def __str__(self) -> str:
        return f"{self.method} {self.rule}"


XHR = {"X-Requested-With": "XMLHttpRequest"}  # what rq-dashboard's jQuery sends with its changes

ROUTES = [
    Route("GET", "/", "/", PUBLIC),
    Route("GET", "/login", "/login", PUBLIC),
    Route("POST", "/login", "/login", PUBLIC, credentials=True),
    Route("GET", "/logout", "/logout", PUBLIC),
    Route("POST", "/logout", "/logout", PUBLIC),
    Route("GET", "/login/2fa", "/login/2fa", PUBLIC),
    Route("POST", "/login/2fa", "/login/2fa", PUBLIC, form={"code": "123456"}),
    Route("GET", "/account/security", "/account/security", SIGNED_IN),
    Route("POST", "/account/security/password", "/account/security/password", SIGNED_IN,
          form={"current": "walking by", "password": "a-new-walking-phrase", "confirm": "a-new-walking-phrase"},
          accept=(422,)),
    Route("GET", "/account/security/two-factor", "/account/security/two-factor", SIGNED_IN),
    Route("POST", "/account/security/two-factor", "/account/security/two-factor", SIGNED_IN,
          form={"code": "123456", "password": "walking by"}, accept=(422,)),
    Route("POST", "/account/security/two-factor/off", "/account/security/two-factor/off", SIGNED_IN,
          form={"code": "123456", "password": "walking by"}, accept=(422,)),
    Route("POST", "/account/security/sessions/end-others", "/account/security/sessions/end-others", SIGNED_IN),
    Route("POST", "/account/security/tokens/<int:token_id>/revoke", "/account/security/tokens/{token}/revoke",
          frozenset({"requester", "admin"})),
    Route("GET", "/register", "/register", PUBLIC),
    Route("POST", "/register", "/register", PUBLIC,
          form={"name": "Walker", "email": "walker@example.com", "password": "a-long-walking-phrase",
                "confirm": "a-long-walking-phrase"}),
    Route("GET", "/verify-email/<token>", "/verify-email/{verify}", PUBLIC),
    Route("GET", "/password-reset", "/password-reset", PUBLIC),
    Route("POST", "/password-reset", "/password-reset", PUBLIC, form={"email": "walker@example.com"}),
    Route("GET", "/password-reset/<token>", "/password-reset/{reset}", PUBLIC),
    Route("POST", "/password-reset/<token>", "/password-reset/{reset}", PUBLIC,
          form={"password": "a-new-walking-phrase", "confirm": "a-new-walking-phrase"}),
    Route("GET", "/account", "/account", SIGNED_IN),
    Route("POST", "/account/notifications", "/account/notifications", SIGNED_IN, form={"sla_alerts": "each"}),
    # In-app notifications: one's own only; notification 1 is the requester's receipt (not an in-app kind),
    # so opening it is "not found" for everyone, as anyone else's is.
    Route("GET", "/notifications", "/notifications", SIGNED_IN),
    Route("GET", "/notifications/bell", "/notifications/bell", SIGNED_IN),
    Route("GET", "/notifications/<int:notification_id>", "/notifications/1", SIGNED_IN, accept=(404,)),
    Route("POST", "/notifications/read", "/notifications/read", SIGNED_IN, form={"up_to": "0"}),
    Route("GET", "/requests", "/requests", SIGNED_IN),
    Route("GET", "/requests/new", "/requests/new", SIGNED_IN),
    Route("POST", "/requests/new", "/requests/new", SIGNED_IN,
          form={"title": "Walk", "category": "other", "priority": "low", "description": "Walking."}),
    Route("GET", "/requests/<int:request_id>", "/requests/{own}", OWNER),
    Route("GET", "/requests/<int:request_id>/timeline", "/requests/{own}/timeline", OWNER),
    Route("GET", "/requests/<int:request_id>/header", "/requests/{own}/header", OWNER),
    # The page's live poll (a marker of the newest change) and its refresh (a plain visit goes to the page).
    Route("GET", "/requests/<int:request_id>/last-change", "/requests/{own}/last-change", OWNER),
    Route("GET", "/requests/<int:request_id>/parts", "/requests/{own}/parts", OWNER),
    Route("POST", "/requests/<int:request_id>/status", "/requests/{own}/status", OWNER, form={"status": "open"}),
    Route("POST", "/requests/<int:request_id>/assign", "/requests/{own}/assign", STAFF, form={"assignee": "me"}),
    Route("POST", "/requests/bulk", "/requests/bulk", STAFF, form={"change": "priority:high"}),
    Route("POST", "/requests/<int:request_id>/properties", "/requests/{own}/properties", STAFF,
          form={"priority": "high", "category": "network"}),
    Route("POST", "/requests/<int:request_id>/comments", "/requests/{own}/comments", OWNER,
          form={"body": "Walking by."}),
    # Only the requester opens a follow-up, of a closed request: {own} is not closed, so the page says why.
    Route("POST", "/requests/<int:request_id>/follow-up", "/requests/{own}/follow-up", OWNER,
          form={"body": "Walking by."}),
    Route("POST", "/requests/<int:request_id>/text", "/requests/{own}/text", OWNER,
          form={"edit-title": "Walking", "edit-description": "Walking by."}),
    Route("GET", "/attachments/<int:attachment_id>", "/attachments/{own_att}", OWNER),
    # Canned replies: the staff's library, and inserting one into a request's composer ({canned} is one)
    Route("GET", "/canned-replies", "/canned-replies", STAFF),
    Route("POST", "/canned-replies", "/canned-replies", STAFF,
          form={"title": "Walking", "body": "Hi {requester_name}"}),
    Route("GET", "/canned-replies/<int:canned_reply_id>", "/canned-replies/{canned}", STAFF),
    Route("POST", "/canned-replies/<int:canned_reply_id>", "/canned-replies/{canned}", STAFF,
          form={"title": "Walked", "body": "Hello."}),
    Route("POST", "/canned-replies/<int:canned_reply_id>/delete", "/canned-replies/{canned}/delete", STAFF, form={}),
    Route("GET", "/requests/<int:request_id>/canned-reply", "/requests/{own}/canned-reply?canned_reply={canned}",
          STAFF),
    Route("POST", "/requests/<int:request_id>/comments/canned", "/requests/{own}/comments/canned", STAFF,
          form={"body": "Walking by.", "canned_reply": ""}, accept=(422,)),
    # Saved views: staff save them; {view} is the manager's, shared with the team, so only the manager
    # and an admin change it (an agent is refused, a requester never gets in). Delete asks first (303).
    Route("GET", "/requests/views", "/requests/views", STAFF),
    Route("POST", "/requests/views", "/requests/views", STAFF,
          form={"view-name": "Walking", "view-query": "status=any"}),
    Route("POST", "/requests/views/<int:view_id>/rename", "/requests/views/{view}/rename", MANAGERS,
          form={"name": "Walked"}),
    Route("POST", "/requests/views/<int:view_id>/share", "/requests/views/{view}/share", MANAGERS,
          form={"shared": "false"}),
    Route("POST", "/requests/views/<int:view_id>/query", "/requests/views/{view}/query", MANAGERS,
          form={"view-query": "status=any"}),
    Route("POST", "/requests/views/<int:view_id>/delete", "/requests/views/{view}/delete", MANAGERS, form={}),
    Route("GET", "/admin/users", "/admin/users", ADMIN),
    Route("POST", "/admin/users", "/admin/users", ADMIN,
          form={"name": "New Person", "email": "new.person@example.com", "role": "requester",
                "password": "a-long-password"}),
    Route("POST", "/admin/users/<int:user_id>/active", "/admin/users/{target}/active", ADMIN,
          form={"active": "false"}),
    Route("POST", "/admin/users/<int:user_id>/role", "/admin/users/{target}/role", ADMIN, form={"role": "agent"}),
    Route("POST", "/admin/users/<int:user_id>/tokens/revoke", "/admin/users/{target}/tokens/revoke", ADMIN),
    Route("GET", "/admin/audit", "/admin/audit", ADMIN),
    # The walk's first audit entry: the first post only asks, or says why not (409; none at all is a 404).
    Route("POST", "/admin/audit/<int:entry_id>/undo", "/admin/audit/1/undo", ADMIN, form={}, accept=(404, 409)),
    Route("POST", "/api/v1/auth/token", "/api/v1/auth/token", PUBLIC, credentials=True),
    Route("GET", "/api/v1/auth/tokens", "/api/v1/auth/tokens", SIGNED_IN),
    Route("DELETE", "/api/v1/auth/token", "/api/v1/auth/token", SIGNED_IN),
    # The requester's own token: theirs to revoke, and an admin's; others are told it does not exist.
    Route("DELETE", "/api/v1/auth/tokens/<int:token_id>", "/api/v1/auth/tokens/{token}",
          frozenset({"requester", "admin"})),
    Route("GET", "/api/v1/service-requests", "/api/v1/service-requests", SIGNED_IN),
    Route("POST", "/api/v1/service-requests", "/api/v1/service-requests", SIGNED_IN,
          json={"title": "Walk", "description": "Walking.", "category": "other"}),
    Route("GET", "/api/v1/service-requests/<int:request_id>", "/api/v1/service-requests/{own}", OWNER),
    Route("PATCH", "/api/v1/service-requests/<int:request_id>", "/api/v1/service-requests/{own}", OWNER,
          json={"status": "open"}),
    Route("POST", "/api/v1/service-requests/<int:request_id>/comments",
          "/api/v1/service-requests/{own}/comments", OWNER, json={"body": "Walking by."}),
    Route("POST", "/api/v1/service-requests/<int:request_id>/follow-ups",
          "/api/v1/service-requests/{own}/follow-ups", frozenset({"requester"}), json={"description": "Walking by."},
          accept=(409,)),
    Route("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", PUBLIC),
    # Metrics: by network or token, not by role; the test client is loopback (tests/metrics/ test the rest)
    Route("GET", "/metrics", "/metrics", PUBLIC),
    # SLA pages
    Route("GET", "/sla/breaches", "/sla/breaches", STAFF),
    Route("GET", "/requests/<int:request_id>/sla", "/requests/{own}/sla", OWNER),
    Route("POST", "/requests/<int:request_id>/sla/exemptions", "/requests/{own}/sla/exemptions", MANAGERS,
          form={"exemption_type": "response", "reason": "Walking by.", "duration_hours": "2"}),
    Route("POST", "/requests/<int:request_id>/sla/exemptions/<int:exemption_id>/revoke",
          "/requests/{own}/sla/exemptions/{exemption}/revoke", MANAGERS, form={}),
    Route("GET", "/dashboard", "/dashboard", MANAGERS),
    Route("GET", "/dashboard/summary", "/dashboard/summary", MANAGERS),
    Route("GET", "/dashboard/breaches", "/dashboard/breaches", MANAGERS),
    Route("GET", "/dashboard/charts", "/dashboard/charts", MANAGERS),
    Route("GET", "/admin/sla", "/admin/sla", ADMIN),
    Route("POST", "/admin/sla", "/admin/sla", ADMIN,
          form={"category": "network", "priority": "high", "response_time_hours": "1",
                "resolution_time_hours": "4", "at_risk_percent": "75", "is_active": "y"}),
    Route("GET", "/admin/sla/<int:definition_id>", "/admin/sla/{definition}", ADMIN),
    Route("POST", "/admin/sla/<int:definition_id>", "/admin/sla/{definition}", ADMIN,
          form={"edit-response_time_hours": "2", "edit-resolution_time_hours": "8", "edit-at_risk_percent": "80",
                "edit-is_active": "y"}),
    Route("POST", "/admin/sla/<int:definition_id>/active", "/admin/sla/{definition}/active", ADMIN,
          form={"active": "false"}),
    Route("GET", "/admin/categories", "/admin/categories", ADMIN),
    Route("POST", "/admin/categories", "/admin/categories", ADMIN, form={"code": "facilities", "name": "Facilities"}),
    Route("POST", "/admin/categories/<code>/active", "/admin/categories/other/active", ADMIN,
          form={"active": "false"}),
    Route("GET", "/admin/calendars", "/admin/calendars", ADMIN),
    Route("POST", "/admin/calendars", "/admin/calendars", ADMIN,
          form={"name": "Night shift", "timezone": "Asia/Singapore", "working_days": ["0", "1"],
                "opens": "20:00", "closes": "23:00"}),
    Route("GET", "/admin/calendars/<int:calendar_id>", "/admin/calendars/{calendar}", ADMIN),
    Route("POST", "/admin/calendars/<int:calendar_id>", "/admin/calendars/{calendar}", ADMIN,
          form={"name": "Office renamed", "timezone": "Europe/London", "working_days": ["0", "1", "2"],
                "opens": "08:00", "closes": "17:00"}),
    Route("POST", "/admin/calendars/<int:calendar_id>/holidays", "/admin/calendars/{calendar}/holidays", ADMIN,
          form={"holiday-day": "2027-01-01", "holiday-name": "New Year"}),
    Route("GET", "/admin/calendars/<int:calendar_id>/holidays/import",
          "/admin/calendars/{calendar}/holidays/import?country=GB&subdivision=ENG&first_year=2027&last_year=2027",
          ADMIN),
    Route("POST", "/admin/calendars/<int:calendar_id>/holidays/import", "/admin/calendars/{calendar}/holidays/import",
          ADMIN, form={"import-country": "GB", "import-subdivision": "ENG", "import-first_year": "2027",
                       "import-last_year": "2027", "import-days": ["2027-12-27", "2027-12-28"]}),
    Route("POST", "/admin/holidays/<int:holiday_id>/delete", "/admin/holidays/{holiday}/delete", ADMIN, form={}),
    Route("GET", "/admin/jobs", "/admin/jobs", ADMIN),
    Route("POST", "/admin/jobs/<job_id>/requeue", "/admin/jobs/no-such-job/requeue", ADMIN, form={}),
    Route("POST", "/admin/jobs/<job_id>/discard", "/admin/jobs/no-such-job/discard", ADMIN, form={}),
    Route("POST", "/admin/jobs/requeue-all", "/admin/jobs/requeue-all", ADMIN, form={"queue": "email"}),
    Route("POST", "/admin/jobs/discard-all", "/admin/jobs/discard-all", ADMIN, form={"queue": "email"}),
    Route("GET", "/admin/status", "/admin/status", ADMIN),
    # Backups; {backup} is a file (and its .hmac) in a BACKUP_DIR of the test's own, no passphrase set
    Route("GET", "/admin/backups", "/admin/backups", ADMIN),
    Route("POST", "/admin/backups", "/admin/backups", ADMIN, form={}),
    Route("POST", "/admin/backups/<name>/verify", "/admin/backups/{backup}/verify", ADMIN, form={}),
    Route("GET", "/admin/backups/<name>/download", "/admin/backups/{backup}/download", ADMIN),
    Route("GET", "/admin/backups/<name>/download/hmac", "/admin/backups/{backup}/download/hmac", ADMIN),
    # Health endpoints for monitors and orchestrators (tests/health/ covers their answers)
    Route("GET", "/health", "/health", PUBLIC),
    Route("GET", "/health/live", "/health/live", PUBLIC),
    Route("GET", "/health/ready", "/health/ready", PUBLIC),
    # SLA API
    Route("GET", "/api/v1/sla/definitions", "/api/v1/sla/definitions", STAFF),
    Route("POST", "/api/v1/sla/definitions", "/api/v1/sla/definitions", ADMIN,
          json={"category": "network", "priority": "high", "response_time_hours": 1, "resolution_time_hours": 4}),
    Route("PATCH", "/api/v1/sla/definitions/<int:definition_id>", "/api/v1/sla/definitions/{definition}", ADMIN,
          json={"response_time_hours": 2}),
    Route("GET", "/api/v1/service-requests/<int:request_id>/sla-metrics",
          "/api/v1/service-requests/{own}/sla-metrics", OWNER),
    Route("GET", "/api/v1/service-requests/<int:request_id>/sla-exemptions",
          "/api/v1/service-requests/{own}/sla-exemptions", STAFF),
    Route("POST", "/api/v1/service-requests/<int:request_id>/sla-exemptions",
          "/api/v1/service-requests/{own}/sla-exemptions", MANAGERS,
          json={"exemption_type": "response", "reason": "Walking by.", "duration_hours": 2}),
    Route("POST", "/api/v1/service-requests/<int:request_id>/sla-exemptions/<int:exemption_id>/revoke",
          "/api/v1/service-requests/{own}/sla-exemptions/{exemption}/revoke", MANAGERS),
    Route("GET", "/api/v1/analytics/sla-statistics", "/api/v1/analytics/sla-statistics?days=30", MANAGERS),
    Route("GET", "/api/v1/analytics/sla-compliance", "/api/v1/analytics/sla-compliance?days=30", MANAGERS),
    Route("GET", "/api/dashboard/admin/sla-breaches", "/api/dashboard/admin/sla-breaches?page=1&per_page=10",
          ADMIN),
    Route("GET", "/api/dashboard/admin/summary", "/api/dashboard/admin/summary", ADMIN),
    # RQ's dashboard (rq-dashboard's own blueprint, mounted by portal/admin/rq_dashboard.py); {job} is a
    # failed job, so each action has something to act on. tests/web/test_rq_dashboard.py tests the rest.
    Route("GET", "/admin/rq/", "/admin/rq/", ADMIN),
    Route("GET", "/admin/rq/<int:instance_number>/", "/admin/rq/0/", ADMIN),
    Route("GET", "/admin/rq/<int:instance_number>/view", "/admin/rq/0/view", ADMIN),
    Route("GET", "/admin/rq/<int:instance_number>/view/queues", "/admin/rq/0/view/queues", ADMIN),
    Route("GET", "/admin/rq/<int:instance_number>/view/workers", "/admin/rq/0/view/workers", ADMIN),
    Route("GET", "/admin/rq/<int:instance_number>/view/jobs", "/admin/rq/0/view/jobs", ADMIN),
    Route("GET", "/admin/rq/<int:instance_number>/view/jobs/<queue_name>/<registry_name>/<int:per_page>/<order>/"
          "<int:page>", "/admin/rq/0/view/jobs/default/failed/8/asc/1", ADMIN),
    Route("GET", "/admin/rq/<int:instance_number>/view/job/<job_id>", "/admin/rq/0/view/job/{job}", ADMIN),
    Route("GET", "/admin/rq/<int:instance_number>/data/queues.json", "/admin/rq/0/data/queues.json", ADMIN),
    Route("GET", "/admin/rq/<int:instance_number>/data/jobs/<queue_name>/<registry_name>/<per_page>/<order>/"
          "<page>.json", "/admin/rq/0/data/jobs/default/failed/8/asc/1.json", ADMIN),
    Route("GET", "/admin/rq/<int:instance_number>/data/job/<job_id>.json", "/admin/rq/0/data/job/{job}.json", ADMIN),
    Route("GET", "/admin/rq/<int:instance_number>/data/workers.json", "/admin/rq/0/data/workers.json", ADMIN),
    Route("GET", "/admin/rq/favicon.ico", "/admin/rq/favicon.ico", ADMIN),
    Route("GET", "/admin/rq/static/<path:filename>", "/admin/rq/static/js/jquery-3.5.1.min.js", ADMIN),
    Route("POST", "/admin/rq/job/<job_id>/delete", "/admin/rq/job/{job}/delete", ADMIN, headers=XHR),
    Route("POST", "/admin/rq/job/<job_id>/requeue", "/admin/rq/job/{job}/requeue", ADMIN, headers=XHR),
    Route("GET", "/admin/rq/requeue/<queue_name>", "/admin/rq/requeue/default", ADMIN, headers=XHR),
    Route("POST", "/admin/rq/requeue/<queue_name>", "/admin/rq/requeue/default", ADMIN, headers=XHR),
    Route("POST", "/admin/rq/queue/<queue_name>/<registry_name>/empty", "/admin/rq/queue/default/failed/empty",
          ADMIN, headers=XHR),
    Route("POST", "/admin/rq/queue/<queue_name>/compact", "/admin/rq/queue/default/compact", ADMIN, headers=XHR),
    # Exports and reports; {export} is a finished CSV export of the manager's (admins may open any).
    Route("GET", "/exports", "/exports", MANAGERS),
    Route("POST", "/exports", "/exports", MANAGERS, form={"format": "csv", "priority": "high"}),
    Route("GET", "/exports/<int:export_id>", "/exports/{export}", MANAGERS),
    Route("GET", "/exports/<int:export_id>/download", "/exports/{export}/download", MANAGERS),
    Route("GET", "/reports", "/reports", MANAGERS),
    Route("POST", "/reports", "/reports", MANAGERS, form={"start": "2026-11-01", "end": "2026-11-30"}),
]

OWN_TITLE = "Own request Kilo"
OTHER_TITLE = "Other secret Lima"
OTHER_DESCRIPTION = "Other description Mike"
INTERNAL_BODY = "Internal note November"
OWN_FILE = b"own file Oscar"
OTHER_FILE = b"other file Papa"
INTERNAL_FILE = b"internal file Quebec"
TARGET_EMAIL = "target.romeo@example.com"
OTHER_NAME = "Other Person Sierra"


@pytest.fixture()
def backup_file(app, tmp_path):
    """A backup file and its .hmac in a BACKUP_DIR of the test's own; returns its name."""
    name = "backup_20261201_020000.sql.gz.enc"
    (tmp_path / name).write_bytes(b"Salted__walking by")
    (tmp_path / f"{name}.hmac").write_text("file: walking by\n")
    previous = app.config["BACKUP_DIR"]
    app.config["BACKUP_DIR"] = str(tmp_path)
    yield name
    app.config["BACKUP_DIR"] = previous


@pytest.fixture()
def world(make, backup_file):
    """Users of every role, a request of the signed-in requester and one of another requester,
    an SLA for those requests, a calendar with a holiday and an exemption on the own request."""
    people = {role: make.user(role) for role in ROLES}
    sla = make.sla()
    other = make.user("requester", name=OTHER_NAME)
    target = make.user("requester", email=TARGET_EMAIL)
    own = make.request(people["requester"], title=OWN_TITLE, status="resolved", uploads=[("own.txt", OWN_FILE)])
    theirs = make.request(other, title=OTHER_TITLE, description=OTHER_DESCRIPTION,
                          uploads=[("other.txt", OTHER_FILE)])
    note = make.comment(people["agent"], own.id, INTERNAL_BODY, internal=True,
                        uploads=[("internal.txt", INTERNAL_FILE)])
    exemption = make.exemption(people["manager"], own.id)
    canned = _canned_reply(make.app, people["agent"].id)
    view = _shared_view(make.app, people["manager"].id)
    verify, reset, token = _account_links(make.app, people["requester"].id)
    return SimpleNamespace(people=people, other=other, target=target, own=own, theirs=theirs, note=note, sla=sla,
                           exemption=exemption, job=_failed_job(make.app), backup=backup_file,
                           export=_finished_export(make.app, people["manager"].id), verify=verify, reset=reset,
                           token=token, canned=canned, view=view)


def _account_links(app, user_id: int) -> tuple[str, str, int]:
    """A confirmation link and a reset link of the requester (as mailed), and the id of one of their tokens."""
    from portal.extensions import db
    from portal.models import User
    from portal.services import accounts, users

    with app.app_context():
        user = db.session.get(User, user_id)
        verify = accounts._signer(accounts.VERIFY_SALT).dumps({"u": user.id, "e": user.email.lower()})
        reset = accounts._signer(accounts.RESET_SALT).dumps({"u": user.id, "h": accounts._fingerprint(user)})
        _raw, token = users.issue_token(user)
        return verify, reset, token.id


def _canned_reply(app, author_id: int) -> int:
    """A canned reply in the staff's library."""
    from portal.extensions import db
    from portal.models import User
    from portal.services import canned_replies

    with app.app_context():
        return canned_replies.create_canned_reply(db.session.get(User, author_id), "Walk", "Hi {requester_name}").id


def _shared_view(app, owner_id: int) -> int:
    """A saved view of the manager's, shared with the team."""
    from portal.extensions import db
    from portal.models import User
    from portal.services import saved_views

    with app.app_context():
        owner = db.session.get(User, owner_id)
        view = saved_views.create_saved_view(owner, "Walk", "status=active")
        return saved_views.set_saved_view_shared(owner, view.id, True, view.version).id


def _failed_job(app) -> str:
    """A job in the default queue's failed registry (the RQ dashboard's routes act on it)."""
    from rq.registry import FailedJobRegistry

    from portal.queueing import get_queue, push

    with app.app_context():
        queue = get_queue("default")
        job = push("tests.jobs.sample_jobs.fail", "walking by", queue=queue.name)
        queue.remove(job)
        job.set_status("failed")
        FailedJobRegistry(queue=queue).add(job, exc_string="RuntimeError: walking by")
        return job.id


def _finished_export(app, owner_id: int) -> int:
    """A finished CSV export owned by `owner_id`, its file under EXPORT_DIR."""
    from datetime import timedelta

    from portal.extensions import db
    from portal.models import Export
    from portal.models._time import utcnow
    from portal.services.exports import export_dir

    with app.app_context():
        export = Export(owner_id=owner_id, kind="requests_csv", params={"filters": {}}, status="done", rows_done=0,
                        gzipped=False, file_name="requests.csv", expires_at=utcnow() + timedelta(days=7))
        db.session.add(export)
        db.session.flush()
        export.file_path = f"access-{export.id}.csv"
        (export_dir() / export.file_path).write_text("id,title\n")
        export.size_bytes = 9
        db.session.commit()
        return export.id


def _url(route: Route, world) -> str:
    return route.url.format(own=world.own.id, own_att=world.own.attachment_ids[0], target=world.target.id,
                            definition=world.sla.definition_id, calendar=world.sla.calendar_id,
                            holiday=world.sla.holiday_id, exemption=world.exemption, job=world.job,
                            export=world.export, backup=world.backup, verify=world.verify, reset=world.reset,
                            token=world.token, canned=world.canned, view=world.view)


def _api_token(client, user) -> str:
    response = client.post("/api/v1/auth/token", json={"email": user.email, "password": user.password})
    assert response.status_code == 201
    return response.get_json()["token"]


def _call(app, login_client, route: Route, actor: str, world, url: str | None = None):
    user = world.people.get(actor)
    url = url or _url(route, world)
    headers = dict(route.headers or {})
    if route.api:
        client = app.test_client()
        if user is not None and not route.credentials:  # the token endpoint takes a password instead
            headers["Authorization"] = f"Bearer {_api_token(client, user)}"
    else:
        client = login_client(user) if user is not None else app.test_client()
    kwargs: dict[str, Any] = {"headers": headers}
    if route.credentials:
        who = user or world.people["requester"]
        payload = {"email": who.email, "password": who.password}
        kwargs["json" if route.api else "data"] = payload
    elif route.json is not None:
        kwargs["json"] = route.json
    elif route.form is not None:
        kwargs["data"] = route.form
    return client.open(url, method=route.method, **kwargs)


SECRETS = [OWN_TITLE, OTHER_TITLE, OTHER_DESCRIPTION, INTERNAL_BODY, TARGET_EMAIL]
FILES = [OWN_FILE, OTHER_FILE, INTERNAL_FILE]


def _assert_no_secrets(response, secrets=SECRETS, files=FILES):
    body = response.get_data()
    for secret in secrets:
        assert secret.encode() not in body, secret
    for content in files:
        assert content not in body, content


def test_access_table_covers_every_route(app):
    in_app = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules() if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    in_table = {(r.method, r.rule) for r in ROUTES}
    assert len(in_table) == len(ROUTES), "duplicate entries in ROUTES"
    assert in_app - in_table == set(), "routes with no access-table entry"
    assert in_table - in_app == set(), "access-table entries for routes that no longer exist"


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_access_route_for_actor(app, login_client, make, world, route, actor):
    response = _call(app, login_client, route, actor, world)
    status = response.status_code
    if actor in route.who:
        assert 200 <= status < 400 or status in route.accept, f"{route} as {actor}: {status}"
        if actor == "requester":
            # Allowed, but never anyone else's data or internal notes.
            _assert_no_secrets(response, [OTHER_TITLE, OTHER_DESCRIPTION, INTERNAL_BODY, TARGET_EMAIL],
                               [OTHER_FILE, INTERNAL_FILE])
        if route.method == "GET" and status == 200 and "{own}" in route.url and not route.api:
            assert OWN_TITLE in text_of(response) or route.url.endswith(("/timeline", "/sla", "/last-change")) \
                or "/canned-reply?" in route.url  # partials, and a canned reply's text
        return
    _assert_no_secrets(response)
    if actor == "anonymous":
        if route.api:
            assert status == 401, f"{route}: {status}"
            assert response.is_json and "error" in response.get_json()
        else:
            assert status == 302, f"{route}: {status}"
            assert login_next(response.headers["Location"]) is not None
    else:
        assert status in (403, 404), f"{route} as {actor}: {status}"


def test_access_allowed_changes_took_effect_for_admin_routes(app, login_client, make, world):
    """Sanity check that the walk really exercised the admin POSTs (not just redirected)."""
    client = login_client(world.people["admin"])
    assert client.post(f"/admin/users/{world.target.id}/role", data={"role": "agent", "confirm": "yes"}).status_code \
        == 303
    assert make.get_user(world.target.id).role == "agent"


# ---------------------------------------------------------------- another requester's request

OTHER_ROUTES = [
    ("GET", "/requests/{id}", None, None),
    ("GET", "/requests/{id}/timeline", None, None),
    ("GET", "/requests/{id}/header", None, None),
    ("GET", "/requests/{id}/last-change", None, None),
    ("GET", "/requests/{id}/parts", None, None),
    ("POST", "/requests/{id}/status", {"status": "resolved"}, None),
    ("POST", "/requests/{id}/status", {"status": "bogus"}, None),
    ("POST", "/requests/{id}/assign", {"assignee": "me"}, None),
    ("POST", "/requests/{id}/properties", {"priority": "critical", "category": "network"}, None),
    ("POST", "/requests/{id}/comments", {"body": "Sneaky reply"}, None),
    ("POST", "/requests/{id}/comments", {"body": ""}, None),
    ("POST", "/requests/{id}/follow-up", {"body": "Sneaky follow-up"}, None),
    ("POST", "/requests/{id}/text", {"edit-title": "Hijacked", "edit-description": "Hijacked"}, None),
    ("GET", "/requests/{id}/canned-reply", None, None),
    ("POST", "/requests/{id}/comments/canned", {"body": "Sneaky", "canned_reply": "1"}, None),
    ("GET", "/attachments/{att}", None, None),
    ("GET", "/api/v1/service-requests/{id}", None, None),
    ("PATCH", "/api/v1/service-requests/{id}", None, {"title": "Hijacked"}),
    ("PATCH", "/api/v1/service-requests/{id}", None, {"status": "closed"}),
    ("POST", "/api/v1/service-requests/{id}/comments", None, {"body": "Sneaky reply"}),
    ("POST", "/api/v1/service-requests/{id}/follow-ups", None, {"description": "Sneaky follow-up"}),
    ("GET", "/requests/{id}/sla", None, None),
    ("POST", "/requests/{id}/sla/exemptions", {"exemption_type": "both", "reason": "Sneaky"}, None),
    ("POST", "/requests/{id}/sla/exemptions/{xid}/revoke", {}, None),
    ("GET", "/api/v1/service-requests/{id}/sla-metrics", None, None),
    ("GET", "/api/v1/service-requests/{id}/sla-exemptions", None, None),
    ("POST", "/api/v1/service-requests/{id}/sla-exemptions", None, {"exemption_type": "both", "reason": "Sneaky"}),
    ("POST", "/api/v1/service-requests/{id}/sla-exemptions/{xid}/revoke", None, {}),
]

# Every request route of the url_map is tried with another requester's ids.
REQUEST_RULES = {
    "/requests/<int:request_id>", "/requests/<int:request_id>/timeline", "/requests/<int:request_id>/header",
    "/requests/<int:request_id>/last-change", "/requests/<int:request_id>/parts",
    "/requests/<int:request_id>/status", "/requests/<int:request_id>/assign",
    "/requests/<int:request_id>/properties", "/requests/<int:request_id>/comments", "/requests/<int:request_id>/text",
    "/requests/<int:request_id>/follow-up", "/attachments/<int:attachment_id>",
    "/requests/<int:request_id>/canned-reply", "/requests/<int:request_id>/comments/canned",
    "/api/v1/service-requests/<int:request_id>", "/api/v1/service-requests/<int:request_id>/comments",
    "/api/v1/service-requests/<int:request_id>/follow-ups",
    "/requests/<int:request_id>/sla", "/requests/<int:request_id>/sla/exemptions",
    "/requests/<int:request_id>/sla/exemptions/<int:exemption_id>/revoke",
    "/api/v1/service-requests/<int:request_id>/sla-metrics", "/api/v1/service-requests/<int:request_id>/sla-exemptions",
    "/api/v1/service-requests/<int:request_id>/sla-exemptions/<int:exemption_id>/revoke",
}


def test_access_other_requester_table_covers_request_routes(app):
    with_ids = {r.rule for r in app.url_map.iter_rules()
                if "request_id" in r.arguments or "attachment_id" in r.arguments}
    assert with_ids == REQUEST_RULES
    templates = {url for _, url, _, _ in OTHER_ROUTES}
    assert len(templates) == len(REQUEST_RULES)


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize(("method", "url", "form", "json"), OTHER_ROUTES,
                         ids=[f"{m} {u} {f or j or ''}" for m, u, f, j in OTHER_ROUTES])
def test_access_requester_cannot_touch_another_requesters_request(app, login_client, make, world,
                                                                   method, url, form, json, htmx):
    me = world.people["requester"]
    url = url.format(id=world.theirs.id, att=world.theirs.attachment_ids[0], xid=world.exemption)
    headers = {"HX-Request": "true"} if htmx else {}
    if url.startswith("/api/"):
        client = app.test_client()
        headers["Authorization"] = f"Bearer {_api_token(client, me)}"
    else:
        client = login_client(me)
    response = client.open(url, method=method, data=form, json=json, headers=headers)
    assert response.status_code in (403, 404), response.status_code
    _assert_no_secrets(response, [OTHER_TITLE, OTHER_DESCRIPTION], [OTHER_FILE])
    assert OTHER_NAME not in text_of(response)
    after = make.get_request(world.theirs.id)
    assert (after.title, after.status, after.priority, after.category, after.assignee_id) == (
        OTHER_TITLE, "open", "medium", "hardware", None)
    assert make.comments(world.theirs.id) == []


def test_access_requester_cannot_download_internal_note_file(login_client, world):
    client = login_client(world.people["requester"])
    response = client.get(f"/attachments/{world.note.attachment_ids[0]}")
    assert response.status_code == 404
    assert INTERNAL_FILE not in response.data
    assert client.get(f"/attachments/{world.own.attachment_ids[0]}").data == OWN_FILE


def test_access_requester_api_hides_internal_notes(app, world):
    client = app.test_client()
    token = _api_token(client, world.people["requester"])
    body = client.get(f"/api/v1/service-requests/{world.own.id}", headers={"Authorization": f"Bearer {token}"})
    assert body.status_code == 200
    assert INTERNAL_BODY not in body.get_data(as_text=True)
    listing = client.get("/api/v1/service-requests", headers={"Authorization": f"Bearer {token}"})
    assert [item["title"] for item in listing.get_json()["items"]] == [OWN_TITLE]
