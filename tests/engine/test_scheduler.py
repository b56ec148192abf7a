"""The scheduler process: jobs stored in the app's database, restarts do not duplicate them,
the due-step runner beats its heartbeat."""

from __future__ import annotations

import time

import sqlalchemy as sa

from migrator.db import get_engine, get_session
from migrator.engine.models import Heartbeat
from migrator.engine.scheduler import build_scheduler

JOB_IDS = {"run_due", "outboxes", "reminders", "snapshots", "digest"}


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
