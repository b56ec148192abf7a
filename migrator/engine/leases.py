"""Work claimed under a lease: the engine's steps, and the tasks a runner carries out
(:class:`~migrator.engine.models.LeasedTask`: a group's rollback, an account's unlink).

A row is claimable when it waits (``pending``; a step also ``due``), or is ``running`` with
a lease that ran out (its runner died). The claim is :func:`migrator.db.claim`, as for the
outboxes: committed before any work starts, and never given to two runners. The runner
renews the lease as it goes and releases a task when it must wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlmodel import select

from migrator.db import claim, get_session, utcnow


def lease() -> timedelta:
    return timedelta(seconds=current_app.config["RUNNER_LEASE_SECONDS"])


def claimable(model, now: datetime, waiting: tuple[str, ...] = ("pending",)):
    """SQL: a row of ``model`` that is free to claim at ``now``."""
    return sa.or_(model.status.in_(waiting),
                  sa.and_(model.status == "running",
                          sa.or_(model.claimed_until.is_(None), model.claimed_until < now)))


def claimed(model, rid: str, now: datetime, *, only: int | None = None,
            limit: int = 20) -> Iterator:
    """The due tasks of ``model`` (at most ``limit``), each claimed by ``rid`` just before it
    is yielded, so a long task holds no lease on the ones after it."""
    session = get_session()
    query = select(model).where(model.next_attempt_at <= now, claimable(model, now))
    if only is not None:
        query = query.where(model.id == only)

    def take(task) -> None:
        task.status = "running"
        task.claimed_by = rid
        task.claimed_until = utcnow() + lease()

    seen: list[int] = []  # a task released as due again waits for the next pass
    while len(seen) < limit:
        rows = claim(session, query.where(model.id.not_in(seen)).order_by(model.id).limit(1),
                     take)
        if not rows:
            return
        seen.append(rows[0].id)
        yield rows[0]


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
