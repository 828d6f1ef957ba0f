"""`flask doctor`: every troubleshooting check, its OK and its not-OK case, exit codes and --json."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta

from rq.registry import FailedJobRegistry

from portal.queueing import get_queue, push, redis_connection
from portal.services import health
from tests.factories import make_verified_backup
from tests.health.conftest import cover_every_sla_pair
from tests.jobs.test_worker import ROOT, _env, _flask

CHECKS = ["database", "migrations", "redis", "workers", "scheduler", "periodic_jobs", "sla_check", "queue_depths",
          "dead_letters", "sla_definitions", "backup_dir", "pg_dump", "disk_space", "verified_backup"]


def doctor(app, *args: str):
    """Run `flask doctor` in-process; returns (exit code, stdout)."""
    result = app.test_cli_runner().invoke(args=["doctor", *args])
    return result.exit_code, result.stdout


def checks_by_name(app) -> dict[str, dict]:
    code, out = doctor(app, "--json")
    return {c["name"]: c for c in json.loads(out)}


def line(out: str, title: str) -> str:
    """The line of one check: its status word and summary."""
    found = [row for row in out.splitlines() if row[6:].startswith(title)]
    assert found, f"no line for {title} in\n{out}"
    return found[0]


def test_doctor_all_ok_exits_0(app, processes, backup_dir):
    processes.worker()
    processes.scheduler()
    cover_every_sla_pair(app)
    assert app.test_cli_runner().invoke(args=["sla", "check"]).exit_code == 0
    with app.app_context():
        make_verified_backup("backup_20261202_020000.sql.gz.enc")

    code, out = doctor(app)
    assert code == 0, out
    for title in ("Database", "Migrations", "Redis", "Workers", "Scheduler", "Periodic jobs", "Last SLA check",
                  "Queue depths", "Dead letters", "SLA definitions", "Backup directory", "pg_dump", "Disk space",
                  "Last verified backup"):
        assert line(out, title).startswith("OK    "), line(out, title)
    assert "14 OK, 0 warning(s), 0 failure(s)." in out
    assert "->" not in out  # nothing to do
    # each periodic job is listed with its next run
    assert "check-sla-breaches: */5 * * * *, next " in out
    assert "purge-expired-tokens: 17 3 * * *, next " in out


def test_doctor_with_only_warnings_exits_1(app, processes, backup_dir):
    processes.worker()
    processes.scheduler()
    cover_every_sla_pair(app)
    app.test_cli_runner().invoke(args=["sla", "check"])

    code, out = doctor(app)
    assert code == 1, out
    assert line(out, "Last verified backup").startswith("WARN  ")
    assert "No verified backup yet." in line(out, "Last verified backup")
    assert "-> Set BACKUP_PASSPHRASE and run one now" in out


def test_doctor_without_workers_and_scheduler_exits_2_and_says_what_to_do(app, backup_dir):
    code, out = doctor(app)
    assert code == 2
    assert line(out, "Database").startswith("OK    ")
    assert line(out, "Workers").startswith("FAIL  ")
    assert "-> Start one: flask --app wsgi jobs worker" in out
    assert line(out, "Scheduler").startswith("FAIL  ")
    assert "-> Start exactly one: flask --app wsgi jobs scheduler" in out
    assert line(out, "Periodic jobs").startswith("FAIL  ")
    assert "check-sla-breaches: not registered (*/5 * * * *)" in out


def test_doctor_json_lists_every_check_for_machines(app, backup_dir):
    code, out = doctor(app, "--json")
    found = json.loads(out)
    assert code == 2
    assert [c["name"] for c in found] == CHECKS
    for check in found:
        assert set(check) == {"name", "title", "status", "summary", "action", "details"}
        assert check["status"] in ("ok", "warn", "fail")
        assert (check["action"] is None) == (check["status"] == "ok"), check


def test_doctor_from_the_command_line(app, backup_dir):
    env = _env(app) | {"BACKUP_DIR": str(backup_dir), "LOG_STDOUT": "false", "LOG_DIR": str(backup_dir.parent)}
    result = subprocess.run(_flask("doctor", "--json"), cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stderr
    assert [c["name"] for c in json.loads(result.stdout)] == CHECKS


# ---------------------------------------------------------------- database and migrations

def test_doctor_database_down_fails_what_needs_it(dead_database_app):
    code, out = doctor(dead_database_app)
    assert code == 2
    assert line(out, "Database").startswith("FAIL  Database              Cannot reach PostgreSQL:")
    assert "-> Start PostgreSQL and check DATABASE_URL" in out
    assert "FAIL  Migrations            Unknown: the database cannot be reached." in out
    assert line(out, "SLA definitions").startswith("FAIL  ")
    assert line(out, "Redis").startswith("OK    ")  # the others still report
    assert "secret-pw" not in out


def test_doctor_database_that_hangs_is_a_failure_not_a_wait(silent_database_app):
    started = time.monotonic()
    code, out = doctor(silent_database_app)
    assert time.monotonic() - started < health.DOCTOR_DB_TIMEOUT + 3
    assert code == 2
    assert line(out, "Database").startswith("FAIL  ")
    assert "PostgreSQL did not answer in time" in line(out, "Database")


def test_doctor_migrations_behind(app, backup_dir, behind_migrations):
    checks = checks_by_name(app)
    assert checks["migrations"]["status"] == "fail"
    assert behind_migrations in checks["migrations"]["summary"]
    assert "flask --app wsgi db upgrade" in checks["migrations"]["action"]
    assert checks["database"]["status"] == "ok"


# ---------------------------------------------------------------- Redis

def test_doctor_redis_down(app, own_redis, backup_dir):
    own_redis.stop()
    code, out = doctor(app)
    assert code == 2
    assert line(out, "Redis").startswith("FAIL  Redis")
    assert "-> Start Redis (redis-cli ping should answer PONG)" in out
    for title in ("Workers", "Scheduler", "Periodic jobs", "Last SLA check", "Queue depths", "Dead letters"):
        assert "Unknown: Redis cannot be reached." in line(out, title)
    assert line(out, "Database").startswith("OK    ")


def test_doctor_redis_password(app, configured_redis, backup_dir):
    configured_redis("--requirepass", "s3cret-redis", password="s3cret-redis")
    checks = checks_by_name(app)
    assert checks["redis"]["status"] == "fail"
    assert "Redis wants a password: add it to REDIS_URL" in checks["redis"]["action"]

    app.config["REDIS_URL"] = app.config["REDIS_URL"].replace("redis://", "redis://:wrong-one@")
    checks = checks_by_name(app)
    assert checks["redis"]["status"] == "fail"
    assert "Redis refused the password" in checks["redis"]["action"]

    app.config["REDIS_URL"] = app.config["REDIS_URL"].replace("wrong-one", "s3cret-redis")
    checks = checks_by_name(app)
    assert checks["redis"]["status"] == "ok"
    assert "s3cret-redis" not in json.dumps(checks)


def test_doctor_redis_hardened_as_the_guide_says_is_ok(app, configured_redis, backup_dir):
    configured_redis("--rename-command", "CONFIG", "CONFIG_b1f0", "--rename-command", "FLUSHDB", "",
                     "--rename-command", "FLUSHALL", "")
    assert checks_by_name(app)["redis"]["status"] == "ok"


def test_doctor_redis_with_a_needed_command_renamed(app, configured_redis, backup_dir):
    configured_redis("--rename-command", "SET", "SET_9a7c")
    check = checks_by_name(app)["redis"]
    assert check["status"] == "fail"
    assert "renamed or disabled in redis.conf" in check["action"]


# ---------------------------------------------------------------- workers, scheduler, schedule

def test_doctor_workers_per_queue(app, processes, backup_dir):
    processes.worker(queues="email,default")
    check = checks_by_name(app)["workers"]
    assert check["status"] == "fail"
    assert check["summary"] == "No live worker serves analytics, reports, exports, backup: their jobs wait."
    assert check["action"] == ("Start a worker for them: flask --app wsgi jobs worker "
                               "--queues analytics,reports,exports,backup")
    assert check["details"] == ["live workers per queue: email 1, default 1, analytics 0, reports 0, exports 0, "
                                "backup 0"]

    processes.worker(queues="analytics,reports,exports,backup")
    check = checks_by_name(app)["workers"]
    assert check["status"] == "ok"
    assert check["summary"] == "2 live worker(s); every queue is served."


def test_doctor_periodic_job_past_its_time_warns(app, backup_dir):
    """Registered (as the scheduler does at start) but nobody moves them: the next run lies in the past."""
    import warnings

    from rq_scheduler import Scheduler

    from portal.services import jobs

    with app.app_context():
        connection = redis_connection()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            jobs.register_schedule(Scheduler(connection=connection), jobs.schedule())
        past = (datetime.now(UTC) - timedelta(minutes=10)).timestamp()
        connection.zadd("rq:scheduler:scheduled_jobs", {"relay-outbox": past})
    checks = checks_by_name(app)
    assert checks["periodic_jobs"]["status"] == "warn"
    assert checks["periodic_jobs"]["summary"] == "1 periodic job(s) are past their run time: relay-outbox."
    assert checks["scheduler"]["status"] == "fail"  # no process is running


# ---------------------------------------------------------------- the SLA check's trace

def test_doctor_last_sla_check(app, backup_dir):
    assert checks_by_name(app)["sla_check"]["summary"] == "The SLA breach check has not run yet."
    with app.app_context():
        assert health.last_sla_check() is None
        health.record_sla_check(datetime.now(UTC) - timedelta(minutes=20))
    check = checks_by_name(app)["sla_check"]
    assert check["status"] == "warn"
    assert check["summary"].startswith("Last ran 20 min ago")
    assert "flask --app wsgi sla check" in check["action"]

    result = app.test_cli_runner().invoke(args=["sla", "check"])
    assert result.exit_code == 0
    check = checks_by_name(app)["sla_check"]
    assert check["status"] == "ok"
    with app.app_context():
        assert datetime.now(UTC) - health.last_sla_check() < timedelta(seconds=30)


def test_the_periodic_sla_job_records_when_it_ran(app):
    with app.app_context():
        before = datetime.now(UTC)
        push("jobs.analytics.check_sla_breaches")
    ran = subprocess.run(_flask("jobs", "worker", "--burst", "--queues", "analytics"), cwd=ROOT, env=_env(app),
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    with app.app_context():
        last = health.last_sla_check()
    assert last is not None and before <= last <= datetime.now(UTC)


def test_last_sla_check_is_none_when_redis_is_down(app, own_redis):
    with app.app_context():
        health.record_sla_check()
        assert health.last_sla_check() is not None
        own_redis.stop()
        assert health.last_sla_check() is None


# ---------------------------------------------------------------- SLA definitions

def test_doctor_sla_definitions(app, backup_dir):
    check = checks_by_name(app)["sla_definitions"]
    assert check["status"] == "warn"
    assert check["summary"] == "20 of 20 category/priority pairs have no active SLA definition."
    assert "hardware: no SLA for low, medium, high, critical" in check["details"]

    assert cover_every_sla_pair(app) == 20
    check = checks_by_name(app)["sla_definitions"]
    assert check["status"] == "ok"
    assert check["summary"] == "Every active category and priority has an active definition (20 pairs)."


# ---------------------------------------------------------------- queues and dead letters

def test_doctor_queue_backlog_warns(app, backup_dir):
    with app.app_context():
        for _ in range(health.QUEUE_BACKLOG_WARN + 1):
            push("tests.jobs.sample_jobs.nap", 0, queue="exports")
    check = checks_by_name(app)["queue_depths"]
    assert check["status"] == "warn"
    assert check["summary"] == "Backlog over 100 jobs: exports (101)."
    assert "exports: 101 waiting, 0 running, 0 retry later" in check["details"]


def test_doctor_dead_letters_warn(app, backup_dir):
    assert checks_by_name(app)["dead_letters"]["status"] == "ok"
    with app.app_context():
        queue = get_queue("email")
        job = push("tests.jobs.sample_jobs.fail", "mail server gone", queue="email")
        queue.remove(job)
        job.set_status("failed")
        FailedJobRegistry(queue=queue).add(job, exc_string="RuntimeError: mail server gone")
    check = checks_by_name(app)["dead_letters"]
    assert check["status"] == "warn"
    assert check["summary"] == "1 job(s) failed after their last retry: email (1)."
    assert "Failed jobs" in check["action"]


# ---------------------------------------------------------------- backups

def test_doctor_backup_dir(app, backup_dir):
    assert checks_by_name(app)["backup_dir"]["status"] == "ok"

    app.config["BACKUP_DIR"] = str(backup_dir / "later")
    check = checks_by_name(app)["backup_dir"]
    assert check["status"] == "ok" and "does not exist yet" in check["summary"]

    blocker = backup_dir / "a-file"
    blocker.write_text("not a directory")
    app.config["BACKUP_DIR"] = str(blocker)
    check = checks_by_name(app)["backup_dir"]
    assert check["status"] == "fail" and "is not a directory" in check["summary"]

    app.config["BACKUP_DIR"] = str(blocker / "backups")
    check = checks_by_name(app)["backup_dir"]
    assert check["status"] == "fail" and "cannot be created" in check["summary"]
    assert "mkdir -p" in check["action"]


def test_doctor_verified_backup_age(app, backup_dir):
    check = checks_by_name(app)["verified_backup"]
    assert (check["status"], check["summary"]) == ("warn", "No verified backup yet.")

    now = datetime.now(UTC)
    for day, (age, status) in enumerate(((timedelta(days=8), "fail"), (timedelta(hours=30), "warn"),
                                         (timedelta(hours=2), "ok")), start=1):
        name = f"backup_2026110{day}_020000.sql.gz.enc"
        with app.app_context():
            make_verified_backup(name, now - age)  # each newer than the last: the newest one is judged
        check = checks_by_name(app)["verified_backup"]
        assert check["status"] == status, (age, check)
        assert check["summary"].startswith(f"{name} verified")


def test_doctor_pg_dump(app, backup_dir, tmp_path):
    check = checks_by_name(app)["pg_dump"]
    assert check["status"] == "ok", check  # a pg_dump of the server's major version is found
    assert "as the server" in check["summary"]

    app.config["PG_DUMP"] = str(tmp_path / "no-such-pg_dump")
    try:
        check = checks_by_name(app)["pg_dump"]
        assert check["status"] == "fail"
        assert "No working pg_dump found" in check["summary"]
        assert "set PG_DUMP" in check["action"]

        old = tmp_path / "pg_dump"
        old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
        old.chmod(0o755)
        app.config["PG_DUMP"] = str(old)
        check = checks_by_name(app)["pg_dump"]
        assert check["status"] == "fail"
        assert "is version 9, older than the server" in check["summary"]
    finally:
        app.config["PG_DUMP"] = None


def test_disk_space_judgement():
    gib = 1024**3
    assert health.judge_disk(50 * gib, 100 * gib) == "ok"
    assert health.judge_disk(8 * gib, 100 * gib) == "warn"       # under 10%
    assert health.judge_disk(int(1.5 * gib), 10 * gib) == "warn"  # 15%, but under 2 GiB
    assert health.judge_disk(4 * gib, 100 * gib) == "fail"       # under 5%
    assert health.judge_disk(400 * 1024**2, 2 * gib) == "fail"   # under 512 MiB


def test_doctor_disk_space_names_each_place(app, backup_dir):
    check = checks_by_name(app)["disk_space"]
    assert check["status"] == "ok"  # this machine has room
    listed = " ".join(check["details"])
    for setting in ("INSTANCE_DIR", "UPLOAD_DIR", "EXPORT_DIR", "BACKUP_DIR"):
        assert setting in listed
    assert "free of" in listed
