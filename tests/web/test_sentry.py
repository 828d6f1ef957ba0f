"""Sentry: with SENTRY_DSN set, errors and failed jobs reach a local endpoint that plays Sentry's ingest API.

The SDK is process-wide, so the app and the worker that report run in their own processes.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.jobs.test_worker import ROOT, _env, _flask


class SentryIngest:
    """Accepts envelopes at /api/<project>/envelope/ and keeps their event items."""

    def __init__(self) -> None:
        events = self.events = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "br":  # the SDK's choice whenever `brotli` is importable (locust brings it)
                    import brotli

                    body = brotli.decompress(body)
                lines = body.split(b"\n")
                for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                    if header and json.loads(header).get("type") == "event":
                        events.append(json.loads(payload))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.dsn = f"http://public-key@127.0.0.1:{self.server.server_port}/42"

    def wait_for(self, test, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in list(self.events):
                if test(event):
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no such event among {len(self.events)}: {[e.get('message') for e in self.events]}")


@pytest.fixture()
def sentry_ingest():
    ingest = SentryIngest()
    yield ingest
    ingest.server.shutdown()


def _exception(event: dict) -> str:
    values = (event.get("exception") or {}).get("values") or []
    return " ".join(f"{v.get('type')}: {v.get('value')}" for v in values)


WEB_SCRIPT = """
import sentry_sdk
from portal import create_app
from portal.services import users
from portal.policy import SYSTEM
app = create_app()
app.config["WTF_CSRF_ENABLED"] = False  # the script signs in without reading the form first

@app.get("/__boom")
def boom():
    raise RuntimeError("the payroll database is on fire")

with app.app_context():
    person = users.create_user(SYSTEM, "sentry.person@example.com", "Sentry Person", "agent", "a-long-password-1")
    print(person.id)
client = app.test_client()
client.post("/login", data={"email": "sentry.person@example.com", "password": "a-long-password-1"})
print(client.get("/__boom", headers={"X-Correlation-ID": "sentry-trace-1"}).status_code)
sentry_sdk.flush(10)
"""


def test_an_unhandled_error_reaches_sentry_with_release_environment_and_only_the_user_id(app, sentry_ingest, tmp_path):
    env = {**_env(app), "SENTRY_DSN": sentry_ingest.dsn, "LOG_DIR": str(tmp_path), "LOG_STDOUT": "false"}
    result = subprocess.run([sys.executable, "-c", WEB_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    person_id, status = result.stdout.split()[-2:]
    assert status == "500"
    event = sentry_ingest.wait_for(lambda e: "payroll database is on fire" in _exception(e))
    assert "RuntimeError" in _exception(event)
    assert event["environment"] == "test" and event["release"] == "service-portal@1.0.0"
    assert event["tags"]["correlation_id"] == "sentry-trace-1"
    assert event["user"] == {"id": person_id}
    raw = json.dumps(event)
    assert "sentry.person@example.com" not in raw and "a-long-password-1" not in raw
    assert "session=" not in raw


def test_a_failed_job_reaches_sentry_with_its_correlation_id(app, ctx, sentry_ingest, tmp_path):
    from portal.observability import RequestContext, set_request_context
    from portal.queueing import push

    set_request_context(RequestContext(correlation_id="sentry-job-7"))
    try:
        job = push("tests.jobs.sample_jobs.fail", "the report printer jammed", queue="reports")
    finally:
        set_request_context(RequestContext())
    job.retries_left = 0
    job.save()
    env = {**_env(app), "SENTRY_DSN": sentry_ingest.dsn, "LOG_DIR": str(tmp_path)}
    result = subprocess.run(_flask("jobs", "worker", "--burst", "--queues", "reports"), cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    event = sentry_ingest.wait_for(lambda e: "report printer jammed" in _exception(e))
    assert event["tags"]["correlation_id"] == "sentry-job-7"
    assert event["environment"] == "test"
