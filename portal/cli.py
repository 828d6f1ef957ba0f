"""flask commands: users, demo data, jobs (worker, scheduler) and the embedded services."""

from __future__ import annotations

import os

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from portal.domain.workflow import ROLES
from portal.policy import SYSTEM
from portal.services.errors import ServiceError

users_cli = AppGroup("users", help="Create, list and deactivate accounts.")
jobs_cli = AppGroup("jobs", help="Run the RQ worker and scheduler.")
services_cli = AppGroup("services", help="The embedded PostgreSQL and Redis (development only).")
sla_cli = AppGroup("sla", help="SLA clocks: breach checks and rebuilds.")


def _fail(exc: ServiceError) -> None:
    details = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
    raise click.ClickException(f"{exc.message}{' (' + details + ')' if details else ''}")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(ROLES), default="requester", show_default=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Prompted for when omitted.")
def create_user_command(email: str, name: str, role: str, password: str) -> None:
    """Create an account."""
    from portal.services import users

    try:
        user = users.create_user(SYSTEM, email, name, role, password)
    except ServiceError as exc:
        _fail(exc)
    click.echo(f"Created {user.role} {user.email} (id {user.id}).")


@users_cli.command("list")
def list_users_command() -> None:
    """List every account."""
    from portal.services import users

    for user in users.list_users():
        state = "active" if user.active else "inactive"
        last = user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "never"
        click.echo(f"{user.id:>5}  {user.email:<36} {user.role:<10} {state:<9} last sign-in {last}  {user.name}")


@users_cli.command("deactivate")
@click.argument("email")
def deactivate_user_command(email: str) -> None:
    """Deactivate an account: its sessions and API tokens stop working."""
    from portal.services import users

    user = users.find_by_email(email)
    if user is None:
        raise click.ClickException(f"No user with email {email}.")
    try:
        users.set_active(SYSTEM, user.id, False)
    except ServiceError as exc:
        _fail(exc)
    click.echo(f"Deactivated {user.email}.")


@click.command("demo-data")
@click.option("--if-empty", is_flag=True, help="Do nothing when any user exists (used by make run).")
@click.option("--seed", default=7, show_default=True, help="Random seed, for repeatable data.")
def demo_data_command(if_empty: bool, seed: int) -> None:
    """Create demo accounts and about 300 requests over the last 60 days."""
    from portal.services import demo

    result = demo.create_demo_data(seed=seed, only_if_empty=if_empty)
    if result is None:
        click.echo("Demo data already present; nothing created.")
        return
    click.echo(f"Created {result.users} users and {result.requests} requests.")


@click.command("welcome")
def welcome_command() -> None:
    """Print the URL and the demo sign-ins (make run shows this)."""
    from portal.services import demo

    port = os.environ.get("PORT", "5000")
    host = os.environ.get("HOST", "127.0.0.1")
    click.echo("")
    click.echo(f"  Service Portal is starting at http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}")
    if demo.demo_accounts_exist():
        click.echo("  Demo sign-ins (password for all: " + demo.DEMO_PASSWORD + "):")
        for email, role in demo.DEMO_SIGN_INS:
            click.echo(f"    {role:<9} {email}")
    click.echo("  Press Ctrl-C to stop web, worker and scheduler.")
    click.echo("")


@jobs_cli.command("worker")
@click.option("--queues", default=None, help="Comma-separated queue names (default: all, in priority order).")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (RQ's worker pool) serving these queues.")
def worker_command(queues: str | None, burst: bool, concurrency: int) -> None:
    """Run an RQ worker, or a pool of them (each with its scheduler, so retries with delays fire)."""
    from rq.worker_pool import WorkerPool

    from portal.extensions import db
    from portal.queueing import QUEUES, WORKER_QUEUE_ORDER, get_queue, redis_connection, relay_outbox
    from portal.worker import PortalWorker  # logs, times and counts every job; see portal/worker.py

    names = [q.strip() for q in queues.split(",")] if queues else list(WORKER_QUEUE_ORDER)
    unknown = [n for n in names if n not in QUEUES]
    if unknown:
        raise click.ClickException(f"Unknown queue(s): {', '.join(unknown)}. Known: {', '.join(QUEUES)}.")
    relayed = relay_outbox()  # jobs written while Redis was down go out before the first one runs
    if relayed:
        click.echo(f"relayed {relayed} waiting job(s) from the outbox")
    connection = redis_connection()
    # Workers fork a process per job (and the pool forks workers): leave them no database
    # connections of ours to share.
    db.session.remove()
    for engine in db.engines.values():  # the primary's, and the read replica's when there is one
        engine.dispose()
    if concurrency > 1:
        WorkerPool(names, connection=connection, num_workers=concurrency,
                   worker_class=PortalWorker).start(burst=burst)
        return
    worker = PortalWorker([get_queue(n, connection) for n in names], connection=connection)
    worker.work(with_scheduler=True, burst=burst)


@jobs_cli.command("scheduler")
@click.option("--interval", default=30, show_default=True, help="Seconds between schedule checks.")
def scheduler_command(interval: int) -> None:
    """Register the periodic jobs and run rq-scheduler."""
    import warnings

    from rq_scheduler import Scheduler

    from portal.queueing import redis_connection
    from portal.services import jobs

    os.environ.setdefault("TZ", "UTC")
    # rq-scheduler's crontab dependency warns about a future default; our cron lines are UTC already.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"rq_scheduler\..*")
    try:
        entries = jobs.schedule()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    scheduler = Scheduler(connection=redis_connection(), interval=interval)
    for item in jobs.register_schedule(scheduler, entries):
        click.echo(f"scheduled {item.id}: {item.cron} (UTC) -> {item.func} on {item.queue}")
    scheduler.run()


def _job_lines(place: str, queue: str | None) -> None:
    from portal.services import jobs

    try:
        found = jobs.jobs(place, queue)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    for job in found:
        when = (job.ended_at or job.enqueued_at)
        stamp = when.strftime("%Y-%m-%d %H:%M:%S") if when else "-"
        click.echo(f"{job.id:<40} {job.queue:<10} {stamp}  {job.func}"
                   + (f"  [{job.error}]" if job.error else "")
                   + (f"  correlation {job.correlation_id}" if job.correlation_id else ""))
    click.echo(f"{len(found)} {place} job(s)" + (f" on {queue}" if queue else ""))


QUEUE_OPTION = click.option("--queue", default=None, help="Only this queue (default: all).")


@jobs_cli.command("queues")
def jobs_queues_command() -> None:
    """Jobs per queue: waiting, running, scheduled (delayed retries) and failed."""
    from portal.services import jobs

    click.echo(f"{'queue':<10} {'queued':>7} {'active':>7} {'scheduled':>9} {'failed':>7}")
    for row in jobs.queue_counts():
        click.echo(f"{row.queue:<10} {row.queued:>7} {row.started:>7} {row.scheduled:>9} {row.failed:>7}")


@jobs_cli.command("active")
@QUEUE_OPTION
def jobs_active_command(queue: str | None) -> None:
    """Jobs running now."""
    _job_lines("started", queue)


@jobs_cli.command("reserved")
@QUEUE_OPTION
def jobs_reserved_command(queue: str | None) -> None:
    """Jobs waiting on their queue for a worker."""
    _job_lines("queued", queue)


@jobs_cli.command("scheduled")
@QUEUE_OPTION
def jobs_scheduled_command(queue: str | None) -> None:
    """The periodic schedule, then jobs waiting for a time (delayed retries)."""
    from portal.services import jobs

    for job_id, cron, func, when in jobs.periodic():
        click.echo(f"{job_id:<28} {cron:<14} next {when:%Y-%m-%d %H:%M} UTC  {func}" if when else
                   f"{job_id:<28} {cron:<14} {func}")
    _job_lines("scheduled", queue)


@jobs_cli.command("failed")
@QUEUE_OPTION
def jobs_failed_command(queue: str | None) -> None:
    """Jobs that failed after their last retry (the dead-letter queue)."""
    _job_lines("failed", queue)


@jobs_cli.command("requeue")
@click.argument("job_id", required=False)
@click.option("--all", "all_jobs", is_flag=True, help="Every failed job (of --queue, or of all queues).")
@QUEUE_OPTION
def jobs_requeue_command(job_id: str | None, all_jobs: bool, queue: str | None) -> None:
    """Put a failed job (or --all of them) back on its queue."""
    from portal.services import jobs

    if bool(job_id) == all_jobs:
        raise click.ClickException("Name one failed job id, or pass --all.")
    try:
        count = jobs.requeue_failed(job_id, queue)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if job_id and not count:
        raise click.ClickException(f"No failed job {job_id}" + (f" on {queue}." if queue else "."))
    click.echo(f"Requeued {count} job(s).")


@jobs_cli.command("purge")
@QUEUE_OPTION
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def jobs_purge_command(queue: str | None, yes: bool) -> None:
    """Delete the jobs waiting on a queue (or on all queues); running and failed jobs stay."""
    from portal.services import jobs

    where = f"queue {queue}" if queue else "every queue"
    if not yes:
        click.confirm(f"Delete every waiting job on {where}?", abort=True)
    try:
        count = jobs.purge(queue)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Deleted {count} waiting job(s) from {where}.")


@sla_cli.command("check")
def sla_check_command() -> None:
    """Mark new breaches and at-risk targets now (the scheduler does this every 5 minutes)."""
    from portal.services import sla

    run = sla.run_check()
    _record_sla_check()
    for item in run.breaches:
        detail = ", ".join(f"{b['type']} {b['hours_overdue']} h overdue" for b in item["breaches"])
        click.echo(f"#{item['request_id']:<7} {item['priority']:<8} {item['title'][:60]:<60} {detail}")
    click.echo(f"{sum(len(b['breaches']) for b in run.breaches)} new breach(es) on {len(run.breaches)} request(s); "
               f"{run.at_risk} target(s) newly at risk; alert mails written for {run.alerts} event(s).")


def _record_sla_check() -> None:
    """Leave the trace `flask doctor` reads; the check itself already ran, so Redis down only warns."""
    from redis.exceptions import RedisError

    from portal.services.health import record_sla_check

    try:
        record_sla_check()
    except RedisError as exc:
        click.echo(f"warning: could not record the check's time in Redis ({exc})", err=True)


@sla_cli.command("rebuild")
@click.option("--definition", "definition_id", type=int, default=None, help="Only clocks of this definition.")
@click.option("--calendar", "calendar_id", type=int, default=None, help="Only clocks using this calendar.")
def sla_rebuild_command(definition_id: int | None, calendar_id: int | None) -> None:
    """Recompute open clocks under the current definitions and calendars."""
    from portal.services import sla_admin

    count = sla_admin.rebuild_open_clocks(definition_id=definition_id, calendar_id=calendar_id)
    click.echo(f"Recalculated {count} open clock(s).")


@services_cli.command("status")
def services_status_command() -> None:
    """Say which database and Redis this portal uses."""
    from sqlalchemy.engine import make_url

    cfg = current_app.config
    database = make_url(cfg["DATABASE_URL"]).render_as_string(hide_password=True)
    click.echo(f"database: {'embedded' if cfg.get('EMBEDDED_POSTGRES') else 'external'} {database}")
    redis_url = _mask_password(cfg["REDIS_URL"])
    click.echo(f"redis:    {'embedded' if cfg.get('EMBEDDED_REDIS') else 'external'} {redis_url}")


def _mask_password(url: str) -> str:
    """A URL with its password replaced by ***."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def register_cli(app: Flask) -> None:
    """Attach the command groups to the app."""
    app.cli.add_command(users_cli)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(services_cli)
    app.cli.add_command(sla_cli)
    app.cli.add_command(demo_data_command)
    app.cli.add_command(welcome_command)
    app.cli.add_command(doctor_command)
    from portal.backup_cli import backup_cli

    app.cli.add_command(backup_cli)


STATUS_WORDS = {"ok": "OK", "warn": "WARN", "fail": "FAIL"}


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as a JSON list, for machines.")
@with_appcontext
def doctor_command(as_json: bool) -> None:
    """Run every troubleshooting check; exit 0 when all pass, 1 with warnings, 2 with failures."""
    import json

    from portal.services import health

    checks = health.run_checks()
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in checks], indent=2))
    else:
        width = max(len(c.title) for c in checks)
        for check in checks:
            click.echo(f"{STATUS_WORDS[check.status]:<5} {check.title:<{width}}  {check.summary}")
            # Details under anything not OK, and always each periodic job's next run.
            if check.status != "ok" or check.name == "periodic_jobs":
                for line in check.details:
                    click.echo(f"{'':<5} {'':<{width}}    {line}")
            if check.action:
                click.echo(f"{'':<5} {'':<{width}}  -> {check.action}")
        counts = {s: sum(1 for c in checks if c.status == s) for s in STATUS_WORDS}
        click.echo(f"\n{counts['ok']} OK, {counts['warn']} warning(s), {counts['fail']} failure(s).")
    raise SystemExit(health.SEVERITY[health.worst(checks)])
