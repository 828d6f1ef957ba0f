"""RQ's dashboard at /admin/rq: admins only, on the portal's Redis, its own CSP exception, and its
module-level blueprint left untouched for any other app in the process.

(tests/web/test_access.py walks every dashboard route for every role.)"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from flask import Flask
from rq.registry import FailedJobRegistry

from portal.queueing import get_queue, push
from portal.web import CSP
from tests.web.helpers import login_next, text_of

XHR = {"X-Requested-With": "XMLHttpRequest"}


def _failed_job(app, message: str = "printer on fire") -> str:
    """A job in the default queue's failed registry."""
    with app.app_context():
        queue = get_queue("default")
        job = push("tests.jobs.sample_jobs.fail", message, queue="default")
        queue.remove(job)
        job.set_status("failed")
        FailedJobRegistry(queue=queue).add(job, exc_string=f"RuntimeError: {message}")
        return job.id


def _failed_ids(app) -> list[str]:
    with app.app_context():
        return FailedJobRegistry(queue=get_queue("default")).get_job_ids()


@pytest.fixture()
def admin(make, login_client):
    return login_client(make.user("admin"))


def test_admin_sees_the_queues_of_the_configured_redis(app, admin):
    with app.app_context():
        push("tests.jobs.sample_jobs.nap", 0, queue="email")
        push("tests.jobs.sample_jobs.nap", 0, queue="email")
    _failed_job(app)

    page = admin.get("/admin/rq/")
    assert page.status_code == 200 and "<h1>Queues</h1>" in text_of(page)
    queues = {q["name"]: q for q in admin.get("/admin/rq/0/data/queues.json").get_json()["queues"]}
    assert queues["email"]["count"] == 2
    assert queues["default"]["failed_job_registry_count"] == 1
    # The embedded Redis over its socket, or TEST_REDIS_URL's server: this run's (this worker's) database.
    assert app.config["RQ_DASHBOARD_REDIS_URL"] == [app.config["REDIS_URL"]]
    jobs = admin.get("/admin/rq/0/data/jobs/default/failed/8/asc/1.json").get_json()["jobs"]
    assert [j["description"] for j in jobs] == ["tests.jobs.sample_jobs.fail('printer on fire')"]


@pytest.mark.parametrize("role", ["requester", "agent", "manager"])
def test_anyone_but_an_admin_gets_our_403_page(make, login_client, role):
    client = login_client(make.user(role))
    for url in ("/admin/rq/", "/admin/rq/0/view/workers", "/admin/rq/0/data/queues.json"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "You do not have access to this page" in text_of(response)
        assert response.headers["Content-Security-Policy"] == CSP  # our page, our strict policy
    assert client.post("/admin/rq/queue/default/failed/empty", headers=XHR).status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in_and_come_back(client, make):
    response = client.get("/admin/rq/0/view/workers")
    assert response.status_code == 302
    assert login_next(response.headers["Location"]) == "/admin/rq/0/view/workers"
    assert client.post("/admin/rq/job/x/delete", headers=XHR).status_code == 302


def test_its_pages_get_a_csp_exception_for_their_own_script_and_nothing_else(admin):
    page = admin.get("/admin/rq/0/view/workers")
    policy = page.headers["Content-Security-Policy"]
    inline = re.findall(r"<script type=\"text/javascript\">(.*?)</script>", text_of(page), re.S)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}' 'unsafe-eval';" in policy
    assert "'unsafe-inline'" not in policy.split("style-src-attr")[0]  # no inline scripts or <style> elements
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    # Its JSON, the portal's own pages, and everything else keep the strict policy.
    assert admin.get("/admin/rq/0/data/workers.json").headers["Content-Security-Policy"] == CSP
    assert admin.get("/admin/jobs").headers["Content-Security-Policy"] == CSP
    assert admin.get("/requests").headers["Content-Security-Policy"] == CSP


def test_its_actions_need_its_own_scripts_header_but_no_csrf_token(app, admin, csrf_on):
    job_id = _failed_job(app)
    refused = admin.post(f"/admin/rq/job/{job_id}/requeue")  # a form posted from elsewhere looks like this
    assert refused.status_code == 400 and _failed_ids(app) == [job_id]
    assert admin.get("/admin/rq/requeue/default").status_code == 400  # a link cannot requeue either
    assert _failed_ids(app) == [job_id]

    done = admin.post(f"/admin/rq/job/{job_id}/requeue", headers=XHR)  # CSRF is on: exempt, yet admin only
    assert done.status_code == 200 and done.get_json() == {"status": "OK"}
    assert _failed_ids(app) == []
    with app.app_context():
        assert job_id in get_queue("default").job_ids
    # The portal's own forms still need their token.
    assert admin.post("/admin/jobs/requeue-all", data={"queue": "default"}).status_code == 400


def test_empty_deletes_the_failed_jobs_and_missing_jobs_are_404(app, admin):
    _failed_job(app, "one")
    _failed_job(app, "two")
    assert admin.post("/admin/rq/queue/default/failed/empty", headers=XHR).get_json() == {"status": "OK"}
    assert _failed_ids(app) == []
    assert admin.get("/admin/rq/0/view/job/no-such-job").status_code == 404
    assert admin.post("/admin/rq/job/no-such-job/requeue", headers=XHR).status_code == 404
    assert admin.post("/admin/rq/queue/reports/compact", headers=XHR).get_json() == {"status": "OK"}  # empty
    assert admin.get("/admin/rq/1/view/queues").status_code == 404  # one Redis: the portal's


def test_the_failed_jobs_page_links_to_it(make, login_client, admin):
    # Not in the top menu (it keeps the admin's menu on one line): the operator reaches it from Failed jobs.
    assert 'href="/admin/rq/">RQ dashboard</a>' in text_of(admin.get("/admin/jobs"))
    assert 'href="/admin/rq/"' not in text_of(admin.get("/requests"))
    manager = login_client(make.user("manager"))
    assert "RQ dashboard" not in text_of(manager.get("/requests"))


def test_its_module_level_hook_stays_out_of_other_apps(app, make, login_client, service_urls):
    """rq-dashboard's blueprint (and its before_request hook) is one object for the whole process."""
    from rq_dashboard.web import blueprint, push_rq_connection, setup_rq_connection

    from portal import create_app

    # Nothing of ours was added to the shared blueprint; this app runs its own guard instead of its hook.
    assert blueprint.before_request_funcs == {None: [push_rq_connection]}
    assert push_rq_connection not in app.before_request_funcs.get("rq_dashboard", [])

    # A second portal app in the same process, on a Redis that is not there: its dashboard fails,
    # this app's keeps working, each on its own REDIS_URL.
    database_url, _ = service_urls
    other = create_app({"APP_ENV": "test", "TESTING": True, "SECRET_KEY": "other", "DATABASE_URL": database_url,
                        "REDIS_URL": "unix:///nonexistent/redis.sock", "WTF_CSRF_ENABLED": False,
                        "PASSWORD_HASH_TIME_COST": 1, "PASSWORD_HASH_MEMORY_KIB": 64})
    person = make.user("admin")
    admin = login_client(person)
    other_admin = other.test_client()
    assert other_admin.get("/admin/rq/").status_code == 302  # guarded there too
    assert other_admin.post("/login", data={"email": person.email, "password": person.password}).status_code == 303
    assert "<h1>Connection Error</h1>" in text_of(other_admin.get("/admin/rq/"))
    assert "<h1>Queues</h1>" in text_of(admin.get("/admin/rq/"))
    assert admin.get("/admin/rq/0/data/queues.json").status_code == 200

    # A plain Flask app that mounts the same blueprint its own way gets rq-dashboard as shipped
    # (no sign-in of ours), and an app without it is untouched.
    plain = Flask("plain")
    plain.config["RQ_DASHBOARD_REDIS_URL"] = app.config["REDIS_URL"]
    plain.register_blueprint(blueprint, url_prefix="/rq")
    setup_rq_connection(plain)
    assert plain.test_client().get("/rq/0/data/queues.json").status_code == 200
    bare = Flask("bare")
    bare.add_url_rule("/", "home", lambda: "home")
    assert bare.test_client().get("/").data == b"home"
