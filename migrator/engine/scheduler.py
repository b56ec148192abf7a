"""The scheduler process: APScheduler 3 with its job store in the app's database.

Due work is data (step rows); the scheduler only runs a few periodic jobs. Job ids are
fixed and ``replace_existing`` is set, so restarts never duplicate jobs; ``coalesce`` and
``max_instances=1`` keep a slow run from piling up.
"""

from __future__ import annotations

import logging
import signal
import time
from datetime import timedelta

from flask import Flask, current_app

from migrator.audit.service import Actor, acting_as
from migrator.db import close_session, make_engine, utcnow
from migrator.directives.service import check_escalations
from migrator.engine.jobs import beat, escalate_overdue, send_digest, send_reminders, take_snapshots
from migrator.engine.maxclient import client_factory
from migrator.engine.runner import run_due, runner_id, send_outboxes
from migrator.max.health import check_subscription_job
from migrator.max.service import get_client, refresh_all
from migrator.max.updates import catch_up
from migrator.ops.logs import run_context

log = logging.getLogger("migrator.engine")

_APP: Flask | None = None  # the app the jobs run in (set by run_scheduler)


def _in_app(fn, *args):
    assert _APP is not None, "the scheduler's app is not set"
    name = getattr(fn, "__qualname__", str(fn))
    with _APP.app_context(), run_context():
        started = time.monotonic()
        try:
            result = fn(*args)
            log.info("job %s done in %.0fms", name, (time.monotonic() - started) * 1000)
            return result
        except Exception:
            log.exception("scheduled job %s failed", name)
        finally:
            close_session()


def job_run_due() -> None:
    def work():
        # pending Max updates and unchecked chats: the max_catch_up job
        summary = run_due(runner_id(), send_mail=False, max_backlog=False)
        beat("scheduler", f"{runner_id()} {summary.line()}")
        if summary.claimed:
            log.info("run-due: %s", summary.line())

    _in_app(work)


def job_max_catch_up() -> None:
    """Stored Max updates not applied yet (deferred, failed) and chats whose title and rights
    were never fetched (``migrator.max.updates.catch_up``)."""
    def work():
        done, left, refreshed = catch_up()
        if done or refreshed:
            log.info("max catch-up: %d update(s) applied, %d pending, %d chat(s) checked",
                     done, left, refreshed)

    _in_app(work)


def job_max_subscription() -> None:
    """Max drops a webhook after 8 h of failed deliveries: notice it (migrator.max.health)."""
    def work():
        with acting_as(Actor("job", "max_subscription", "max subscription check")):
            check_subscription_job()

    _in_app(work)


def job_max_rights_daily() -> None:
    """Max sends no update when the bot is promoted or demoted: re-check every chat daily."""
    def work():
        if not current_app.config.get("MAX_BOT_TOKEN"):
            return
        with acting_as(Actor("job", "max_rights_daily", "daily rights re-check")), \
                get_client() as client:
            checked, problems = refresh_all(client)
        log.info("daily rights re-check: %d chat(s), %d not ready", checked, problems)

    _in_app(work)


def job_outboxes() -> None:
    _in_app(lambda: send_outboxes(client_factory()))


def job_reminders() -> None:
    _in_app(send_reminders)


def job_snapshots() -> None:
    _in_app(take_snapshots)


def job_digest() -> None:
    _in_app(send_digest)
    _in_app(escalate_overdue)


def job_directive_escalations() -> None:
    _in_app(check_escalations)


def runner_interval(app: Flask) -> float:
    return float(app.config["RUNNER_INTERVAL_SECONDS"])


def build_scheduler(app: Flask, blocking: bool = True):
    """A configured (not started) APScheduler with the jobs registered."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    global _APP
    _APP = app
    tz = app.config["MIGRATOR_TZ"]
    store = SQLAlchemyJobStore(engine=make_engine(app.config["DATABASE_URL"]),
                               tablename="apscheduler_jobs")
    cls = BlockingScheduler if blocking else BackgroundScheduler
    sched = cls(jobstores={"default": store}, timezone=tz,
                job_defaults={"coalesce": True, "max_instances": 1,
                              "misfire_grace_time": 300})
    interval = runner_interval(app)
    common = {"replace_existing": True}
    sched.add_job("migrator.engine.scheduler:job_run_due", "interval", seconds=interval,
                  id="run_due", **common)
    sched.add_job("migrator.engine.scheduler:job_max_catch_up", "interval",
                  seconds=max(interval, 5), id="max_catch_up", **common)
    sched.add_job("migrator.engine.scheduler:job_max_subscription", "interval", minutes=10,
                  id="max_subscription", next_run_time=utcnow() + timedelta(seconds=60),
                  **common)
    sched.add_job("migrator.engine.scheduler:job_max_rights_daily", "cron", hour=3, minute=30,
                  id="max_rights_daily", **common)
    sched.add_job("migrator.engine.scheduler:job_outboxes", "interval",
                  seconds=max(interval, 5), id="outboxes", **common)
    # Jobs are replaced at every start (their next run would move an hour away each time):
    # reminders are idempotent, so the first run comes shortly after start.
    sched.add_job("migrator.engine.scheduler:job_reminders", "interval", hours=1,
                  id="reminders", next_run_time=utcnow() + timedelta(seconds=30), **common)
    sched.add_job("migrator.engine.scheduler:job_snapshots", "cron", hour=0, minute=15,
                  id="snapshots", **common)
    sched.add_job("migrator.engine.scheduler:job_digest", "cron", hour=8, minute=0,
                  id="digest", **common)
    sched.add_job("migrator.engine.scheduler:job_directive_escalations", "cron", hour=8,
                  minute=20, id="directive_escalations", **common)
    return sched


def run_scheduler(app: Flask) -> None:
    sched = build_scheduler(app, blocking=True)
    log.info("scheduler %s starting (runner every %ss)", runner_id(),
             runner_interval(app))
    def _stop(_signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)  # supervisors stop us with SIGTERM
    try:
        sched.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("scheduler stopping")
    finally:
        if sched.running:
            sched.shutdown(wait=False)
