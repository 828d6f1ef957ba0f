"""The Dockerfile read instruction by instruction (no Docker daemon or registry here), and its entry
point (deploy/entrypoint.sh) run for real with bash against the test database and Redis."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import urllib.request

import pytest

from tests.deploy.helpers import ROOT, dockerfile_instructions, free_port, healthcheck, stop, venv_path
from tests.jobs.test_worker import _env
from tests.polling import wait_for

ENTRYPOINT_SCRIPT = ROOT / "deploy" / "entrypoint.sh"
# The PostgreSQL client each Debian release ships (postgresql-client-N).
DEBIAN_POSTGRES = {"bookworm": 15, "trixie": 17}


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    return dockerfile_instructions((ROOT / "Dockerfile").read_text())


def _all(instructions, keyword: str) -> list[str]:
    return [args for kw, args in instructions if kw == keyword]


def _env_settings(instructions) -> dict[str, str]:
    settings = {}
    for args in _all(instructions, "ENV"):
        for token in shlex.split(args):
            name, _, value = token.partition("=")
            settings[name] = value
    return settings


def _arg_default(instructions, name: str) -> str:
    return next(a.split("=", 1)[1] for a in _all(instructions, "ARG") if a.startswith(name + "="))


def test_dockerfile_builds_on_slim_python_3_11(instructions):
    froms = _all(instructions, "FROM")
    assert froms[-1].startswith("python:3.11-slim")


def test_dockerfile_runs_as_uid_1000_and_never_as_root(instructions):
    users = _all(instructions, "USER")
    assert users and users[-1] in ("1000", "1000:1000")
    assert not any(u.split(":")[0] in ("0", "root") for u in users)
    keywords = [kw for kw, _ in instructions]
    # Nothing runs as root after the switch (the last RUN comes before the last USER).
    last_run = max(i for i, kw in enumerate(keywords) if kw == "RUN")
    assert last_run < max(i for i, kw in enumerate(keywords) if kw == "USER")
    runs = " ".join(_all(instructions, "RUN"))
    assert re.search(r"useradd [^&]*--uid 1000", runs) and re.search(r"groupadd [^&]*--gid 1000", runs)


def test_dockerfile_code_belongs_to_root_and_is_read_only_to_the_user(instructions):
    copies = _all(instructions, "COPY")
    assert copies and not any("--chown" in c or "--chmod" in c for c in copies)
    runs = " ".join(_all(instructions, "RUN"))
    assert "chmod -R u=rwX,go=rX /app /opt/venv" in runs   # no group/other write bit survives the COPY
    chowned = set(re.findall(r"chown 1000:1000 ([^&]+)", runs)[0].split())
    assert chowned == {"/data", "/logs", "/backups", "/run/portal"}  # the only places the user owns


def test_dockerfile_installs_requirements_txt_only(instructions):
    text = " ".join(args for _, args in instructions)
    assert "requirements-embedded" not in text and "requirements-dev" not in text
    installs = [r for r in _all(instructions, "RUN") if "pip install" in r]
    assert len(installs) == 1 and re.findall(r"-r (\S+)", installs[0]) == ["/app/requirements.txt"]
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for entry in ("requirements-dev.txt", "requirements-embedded.txt", ".venv", "instance", ".git", "tests", ".env"):
        assert entry in ignored


def test_dockerfile_installs_the_pg_dump_of_the_composed_postgres(instructions):
    import yaml

    major = int(_arg_default(instructions, "PG_MAJOR"))
    runs = " ".join(_all(instructions, "RUN"))
    assert '"postgresql-client-${PG_MAJOR}"' in runs and "--no-install-recommends" in runs
    suite = _all(instructions, "FROM")[-1].rsplit("-", 1)[1]
    assert DEBIAN_POSTGRES[suite] == major, f"Debian {suite} ships postgresql-client-{DEBIAN_POSTGRES[suite]}"
    compose = yaml.safe_load((ROOT / "docker-compose.production.yml").read_text())
    image = compose["services"]["postgres"]["image"]
    assert int(image.split(":")[1].split("-")[0].split(".")[0]) == major
    assert _env_settings(instructions)["PG_DUMP"] == "/usr/lib/postgresql/${PG_MAJOR}/bin/pg_dump"


def test_dockerfile_writes_only_to_volumes_and_runtime_directories(instructions):
    volumes = set(json.loads(_all(instructions, "VOLUME")[0]))
    assert volumes == {"/data", "/logs", "/backups"}
    env = _env_settings(instructions)
    assert env["APP_ENV"] == "production"
    assert env["INSTANCE_DIR"] == "/data"
    for name in ("UPLOAD_DIR", "EXPORT_DIR", "MAIL_DIR"):
        assert env[name].startswith("/data/"), name
    assert env["LOG_DIR"] == "/logs" and env["BACKUP_DIR"] == "/backups"
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith(("/run/", "/tmp/"))
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"  # the code is read-only: no __pycache__ at run time


def test_dockerfile_healthcheck_asks_health_with_urllib_and_a_short_timeout(instructions):
    (check,) = _all(instructions, "HEALTHCHECK")
    options, _, command = check.partition("CMD ")
    timeout = re.search(r"--timeout=(\d+)s", options)
    assert timeout and int(timeout.group(1)) <= 10
    assert json.loads(command) == ["python", "/app/deploy/healthcheck.py", "web", "/health"]
    script = (ROOT / "deploy" / "healthcheck.py").read_text()
    assert "urllib.request.urlopen(" in script and "timeout=TIMEOUT" in script
    assert "curl" not in command


def test_dockerfile_starts_gunicorn_through_the_entry_point(instructions):
    assert json.loads(_all(instructions, "ENTRYPOINT")[0]) == ["/app/deploy/entrypoint.sh"]
    assert json.loads(_all(instructions, "CMD")[-1]) == ["web"]
    script = ENTRYPOINT_SCRIPT.read_text()
    assert "exec gunicorn --config gunicorn.conf.py" in script and "wsgi:app" in script
    assert ENTRYPOINT_SCRIPT.stat().st_mode & 0o111
    assert "EXPOSE" in dict(instructions) and _all(instructions, "EXPOSE") == ["5000"]
    assert _env_settings(instructions)["PORT"] == "5000"


# ---------------------------------------------------------------- deploy/entrypoint.sh, run with bash

@pytest.fixture()
def entry_env(app, tmp_path):
    env = venv_path({**_env(app), "LOG_DIR": "", "LOG_STDOUT": "false", "DB_POOL_SIZE": "2",
                     "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"), "HOST": "127.0.0.1",
                     "PORT": str(free_port()), "WEB_CONCURRENCY": "1"})
    env.pop("SSL_CERT_FILE", None)
    env.pop("SSL_KEY_FILE", None)
    return env


def _entrypoint(*args: str) -> list[str]:
    return ["bash", str(ENTRYPOINT_SCRIPT), *args]


def test_entrypoint_web_empties_the_metrics_directory_and_serves_health(entry_env, tmp_path):
    metrics = tmp_path / "prometheus"
    metrics.mkdir()
    stale = metrics / "counter_999999.db"  # left by a process of an earlier start
    stale.write_bytes(b"old")
    proc = subprocess.Popen(_entrypoint("web"), cwd=tmp_path, env=entry_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def healthy():
            if proc.poll() is not None:
                pytest.fail(f"entrypoint web exited: {proc.stdout.read()} {proc.stderr.read()}")
            return healthcheck(entry_env, "web", "/health").returncode == 0
        wait_for(healthy, timeout=60, what="the web to pass its health check")
        assert not stale.exists()
        with urllib.request.urlopen(f"http://127.0.0.1:{entry_env['PORT']}/health", timeout=5) as response:  # noqa: S310
            assert json.load(response)["components"]["database"] == "healthy"
    finally:
        stop(proc)
    assert proc.returncode == 0  # gunicorn was exec'd: it got the SIGTERM itself and stopped cleanly


def test_entrypoint_worker_runs_a_queued_job(app, ctx, entry_env, tmp_path):
    from rq.job import Job

    from portal.queueing import push, redis_connection

    job = push("tests.jobs.sample_jobs.nap", 0, queue="default")
    result = subprocess.run(_entrypoint("worker", "--burst", "--queues", "default"), cwd=tmp_path, env=entry_env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Emptied" in result.stdout  # the metrics directory was cleared first
    assert Job.fetch(job.id, connection=redis_connection()).get_status() == "finished"


def test_entrypoint_migrate_and_any_other_command(entry_env, tmp_path):
    migrated = subprocess.run(_entrypoint("migrate"), cwd=tmp_path, env=entry_env, capture_output=True, text=True,
                              timeout=120)
    assert migrated.returncode == 0, migrated.stderr  # the test database is at head already: nothing to do
    other = subprocess.run(_entrypoint("flask", "--app", "wsgi", "services", "status"), cwd=tmp_path, env=entry_env,
                           capture_output=True, text=True, timeout=120)
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip()
