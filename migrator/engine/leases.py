"""Tasks a runner carries out under a lease (:class:`~migrator.engine.models.LeasedTask`):
a group's rollback, an account's unlink.

A task is claimable when it is ``pending``, or ``running`` with a lease that ran out (its
runner died). One runner at a time holds it: the claim is a conditional UPDATE, committed;
the runner renews the lease as it goes and releases it when it must wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlmodel import select

from migrator.db import get_session, utcnow


def lease() -> timedelta:
    return timedelta(seconds=current_app.config["RUNNER_LEASE_SECONDS"])


def claimable(model, now: datetime):
    return sa.or_(model.status == "pending",
                  sa.and_(model.status == "running",
                          sa.or_(model.claimed_until.is_(None), model.claimed_until < now)))


def claim(model, task_id: int, rid: str) -> bool:
    """Take the task for runner ``rid`` (committed); False when another runner holds it."""
    session = get_session()
    now = utcnow()
    res = session.execute(
        sa.update(model).where(model.id == task_id, claimable(model, now))
        .values(status="running", claimed_by=rid, claimed_until=now + lease())
        .execution_options(synchronize_session=False))
    session.commit()
    return bool(res.rowcount)


def claimed(model, rid: str, now: datetime, *, only: int | None = None,
            limit: int = 20) -> Iterator:
    """The due tasks of ``model``, each claimed by ``rid`` just before it is yielded."""
    session = get_session()
    query = select(model.id).where(model.next_attempt_at <= now, claimable(model, now))
    if only is not None:
        query = query.where(model.id == only)
    ids = list(session.exec(query.order_by(model.id).limit(limit)).all())
    session.commit()
    for task_id in ids:
        if claim(model, task_id, rid):
            yield session.get(model, task_id)


def renew(task) -> None:
    """A longer lease, written with the caller's next commit."""
    task.claimed_until = utcnow() + lease()
    get_session().add(task)


def release(task, status: str, next_at: datetime) -> None:
    """Give the task back (``pending`` again later, or finished), not committed."""
    task.status = status
    task.claimed_by = task.claimed_until = None
    task.next_attempt_at = next_at
    get_session().add(task)
