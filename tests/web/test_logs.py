"""Logs: JSON lines in app.log / api.log / jobs.log / errors.log, correlation ids, and no secrets."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest

from portal import logs
from tests.conftest import TEST_PASSWORD


@pytest.fixture()
def log_dir(app, tmp_path):
    """The app's logs go to a fresh directory for this test (restored afterwards)."""
    config = {**app.config, "LOG_DIR": str(tmp_path / "logs"), "LOG_STDOUT": False}
    logs.configure(config)
    yield tmp_path / "logs"
    logs.configure(app.config)


def _lines(path: Path) -> list[dict]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]  # every line is JSON


def test_every_request_writes_one_json_http_request_line(app, log_dir, make, login_client):
    agent = make.user("agent")
    client = login_client(agent)
    client.get("/requests", headers={"X-Correlation-ID": "trace-requests-1"})
    token = app.test_client().post("/api/v1/auth/token", json={"email": agent.email, "password": TEST_PASSWORD})
    bearer = token.get_json()["token"]
    app.test_client().get("/api/v1/service-requests", headers={"Authorization": f"Bearer {bearer}",
                                                               "X-Correlation-ID": "trace-api-1"})

    lines = _lines(log_dir / "app.log")
    [page] = [x for x in lines if x.get("correlation_id") == "trace-requests-1" and x["type"] == "http_request"]
    assert {k: page[k] for k in ("method", "path", "status", "user_id")} == {
        "method": "GET", "path": "/requests", "status": 200, "user_id": agent.id}
    assert isinstance(page["duration_ms"], float) and page["level"] == "INFO" and page["timestamp"].endswith("+00:00")
    api = [x for x in _lines(log_dir / "api.log")]
    assert {x["path"] for x in api} == {"/api/v1/auth/token", "/api/v1/service-requests"}
    [listing] = [x for x in api if x["path"] == "/api/v1/service-requests"]
    assert listing["user_id"] == agent.id and listing["correlation_id"] == "trace-api-1"
    assert _lines(log_dir / "errors.log") == []


def test_errors_go_to_errors_log_with_the_correlation_id(app, log_dir, client, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("the database fell over")

    monkeypatch.setattr("portal.services.requests.list_categories", boom)
    from tests.web.conftest import Maker

    agent = Maker(app).user("agent")
    client.post("/login", data={"email": agent.email, "password": TEST_PASSWORD})
    response = client.get("/requests", headers={"X-Correlation-ID": "trace-boom-1"})
    assert response.status_code == 500
    [error] = _lines(log_dir / "errors.log")
    assert error["level"] == "ERROR" and error["correlation_id"] == "trace-boom-1"
    assert "RuntimeError: the database fell over" in error["message"]  # with its traceback


def test_passwords_tokens_cookies_and_codes_never_reach_a_log(app, log_dir, client, make):
    requester = make.user("requester")
    client.post("/login", data={"email": requester.email, "password": "wrong-password-Zebra-42"})
    signed_in = client.post("/login", data={"email": requester.email, "password": TEST_PASSWORD})
    session_cookie = signed_in.headers.get("Set-Cookie", "").split("session=")[-1].split(";")[0]
    token = app.test_client().post("/api/v1/auth/token", json={"email": requester.email,
                                                                "password": TEST_PASSWORD}).get_json()["token"]
    app.test_client().get("/api/v1/service-requests?token=" + token, headers={"Authorization": f"Bearer {token}"})
    # Code that logs carelessly is still caught on the way out.
    careless = logging.getLogger("portal.careless")
    careless.warning("sign-in with password=%s and totp=%s via %s", "hunter2-Secret", "492039",
                     f"Bearer {token}")
    careless.warning("retrying", extra={"authorization": f"Bearer {token}", "password": "hunter2-Secret",
                                        "url": "postgresql://portal:db-Secret-9@db.internal/portal"})

    written = "".join(p.read_text() for p in log_dir.glob("*.log"))
    for secret in ("wrong-password-Zebra-42", TEST_PASSWORD, token, "hunter2-Secret", "492039", "db-Secret-9",
                   session_cookie):
        assert secret and secret not in written, secret
    assert "[redacted]" in written
    paths = [x["path"] for x in _lines(log_dir / "app.log") if x["type"] == "http_request"]
    assert "/api/v1/service-requests" in paths  # the path, never its query string


def test_files_rotate_by_size(app, tmp_path):
    config = {**app.config, "LOG_DIR": str(tmp_path), "LOG_STDOUT": False, "LOG_MAX_BYTES": 4000, "LOG_BACKUPS": 2}
    logs.configure(config)
    try:
        for n in range(200):
            logging.getLogger("portal.volume").info("line %d of a busy day", n)
    finally:
        logs.configure(app.config)
    assert (tmp_path / "app.log").exists() and (tmp_path / "app.log.1").exists() and (tmp_path / "app.log.2").exists()
    assert not (tmp_path / "app.log.3").exists()
    assert all(json.loads(line) for line in (tmp_path / "app.log.1").read_text().splitlines())


def test_worker_job_lines_go_to_jobs_log_as_json(app, ctx, tmp_path):
    from portal.queueing import push
    from tests.jobs.test_worker import ROOT, _env, _flask

    ok = push("tests.jobs.sample_jobs.nap", 0)
    doomed = push("tests.jobs.sample_jobs.fail", "toner empty", queue="exports")
    doomed.retries_left = 0
    doomed.save()
    env = {**_env(app), "LOG_DIR": str(tmp_path)}
    result = subprocess.run(_flask("jobs", "worker", "--burst", "--queues", "default,exports"), cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    jobs_lines = _lines(tmp_path / "jobs.log")
    finished = [x for x in jobs_lines if x.get("job_id") == ok.id and x.get("job_event") == "end"]
    assert finished and finished[0]["type"] == "job" and finished[0]["correlation_id"]
    errors = _lines(tmp_path / "errors.log")
    assert any(x.get("job_id") == doomed.id and "toner empty" in x["message"] for x in errors)
    stdout = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert any(x.get("job_id") == ok.id for x in stdout)  # containers read stdout


def test_rq_lines_about_a_job_are_job_lines_with_its_id(app, ctx, tmp_path):
    from portal.queueing import push
    from tests.jobs.test_worker import ROOT, _env, _flask

    ok = push("tests.jobs.sample_jobs.nap", 0)
    doomed = push("tests.jobs.sample_jobs.fail", "paper jam", queue="exports")
    doomed.retries_left = 0
    doomed.save()
    env = {**_env(app), "LOG_DIR": str(tmp_path), "LOG_STDOUT": "false"}
    result = subprocess.run(_flask("jobs", "worker", "--burst", "--queues", "default,exports"), cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr

    [raised] = [x for x in _lines(tmp_path / "errors.log") if x["logger"] == "rq.worker"]
    assert raised["type"] == "job" and raised["job_id"] == doomed.id and "paper jam" in raised["message"]
    jobs_lines = _lines(tmp_path / "jobs.log")
    assert raised in jobs_lines
    rq_lines = [x for x in jobs_lines if x["logger"].startswith("rq.")]
    assert {x["type"] for x in rq_lines} == {"job"}
    [done] = [x for x in rq_lines if "Job OK" in x["message"]]  # RQ names the job in none of its fields
    assert done["job_id"] == ok.id
    assert [x for x in rq_lines if "job_id" not in x]  # the worker's own lines (started, listening) name none


def test_a_request_refused_by_csrf_is_logged_with_its_own_correlation_id(app, log_dir, client, csrf_on):
    client.get("/login", headers={"X-Correlation-ID": "trace-before"})
    refused = client.post("/login", data={"email": "a@example.com", "password": "x"},
                          headers={"X-Correlation-ID": "trace-refused"})
    assert refused.status_code == 400 and refused.headers["X-Correlation-ID"] == "trace-refused"
    lines = [x for x in _lines(log_dir / "app.log") if x.get("correlation_id") == "trace-refused"]
    assert {x["type"] for x in lines} >= {"http_request"}
    [line] = [x for x in lines if x["type"] == "http_request"]
    assert (line["method"], line["status"]) == ("POST", 400) and line["duration_ms"] >= 0


def test_without_a_log_dir_lines_still_go_to_stdout(capsys):
    """LOG_DIR unset or empty means stdout only, not no logging at all (the first configure of a
    process used to find `None == None` and return before adding any handler)."""
    import logging

    from portal import logs

    root = logging.getLogger()
    saved_handlers, saved_mark = list(root.handlers), root.__dict__.pop(logs._CONFIGURED, None)
    for handler in saved_handlers:
        root.removeHandler(handler)
    try:
        logs.configure({"LOG_DIR": None, "LOG_STDOUT": True, "LOG_LEVEL": "INFO"})
        logging.getLogger("portal.test").warning("still heard")
        assert '"message": "still heard"' in capsys.readouterr().out
    finally:
        for handler in [h for h in root.handlers if getattr(h, logs._CONFIGURED, False)]:
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        if saved_mark is not None:
            setattr(root, logs._CONFIGURED, saved_mark)
        else:
            root.__dict__.pop(logs._CONFIGURED, None)
