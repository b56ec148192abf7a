"""The scheduler process: jobs stored in the app's database, restarts do not duplicate them,
the due-step runner beats its heartbeat."""

from __future__ import annotations

import time

import sqlalchemy as sa

from migrator.db import get_engine, get_session
from migrator.engine.models import Heartbeat
from migrator.engine.scheduler import build_scheduler

JOB_IDS = {"run_due", "max_catch_up", "max_subscription", "max_rights_daily", "outboxes",
           "reminders", "snapshots", "digest", "directive_escalations"}


def _job_ids(app) -> list[str]:
    with get_engine(app).connect() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT id FROM apscheduler_jobs"))]


def test_jobs_persist_once_and_heartbeat(app, ctx):
    app.config["RUNNER_INTERVAL_SECONDS"] = 0.2
    ctx.commit()
    for _ in range(2):  # a restart replaces the jobs instead of adding more
        sched = build_scheduler(app, blocking=False)
        sched.start()
        deadline = time.monotonic() + 10
        while True:
            get_session().rollback()
            hb = get_session().get(Heartbeat, "scheduler")
            get_session().commit()
            if hb is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        sched.shutdown(wait=True)
        assert hb is not None and "claimed" in hb.info
        ids = _job_ids(app)
        assert sorted(ids) == sorted(JOB_IDS)
        get_session().execute(sa.delete(Heartbeat))
        get_session().commit()


def test_the_max_catch_up_job_applies_stored_updates(app, ctx):
    from migrator.max.models import MaxChatMember, MaxUpdate
    from migrator.max.updates import canonical_json, dedup_key

    sched = build_scheduler(app, blocking=False)  # not started: only the job list
    job = sched.get_job("max_catch_up")
    assert job is not None and job.func_ref == "migrator.engine.scheduler:job_max_catch_up"
    update = {"update_type": "user_added", "timestamp": 1_760_000_000_000, "chat_id": -900,
              "user": {"user_id": 4242, "name": "Мария"}}
    ctx.add(MaxUpdate(dedup_key=dedup_key(update), update_type="user_added", chat_id=-900,
                      max_user_id=4242, timestamp=update["timestamp"],
                      payload=canonical_json(update)))
    ctx.commit()
    job.func()  # what the scheduler runs every few seconds
    row = ctx.exec(sa.select(MaxUpdate)).scalar_one()
    assert row.processed_at is not None and row.error is None
    assert ctx.exec(sa.select(MaxChatMember.max_user_id)).scalars().all() == [4242]


def test_reminders_run_soon_after_every_start(app, ctx):
    """A restart replaces the jobs; reminders must not be pushed an hour away each time."""
    from datetime import timedelta

    from migrator.db import utcnow

    sched = build_scheduler(app, blocking=False)
    job = sched.get_job("reminders")
    assert job.next_run_time <= utcnow() + timedelta(minutes=1)
