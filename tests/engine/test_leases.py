"""Claiming leased tasks (``migrator.engine.leases``): one task at a time, each at most once
per pass, never one another runner holds, and a dead runner's task once its lease ran out."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from migrator.db import get_session, utcnow
from migrator.engine import leases
from migrator.engine.models import GroupRollback


def _tasks(groups, **kw) -> list[int]:
    session = get_session()
    rows = [GroupRollback(group_id=g.id, reason="test", requested_by="system:test", **kw)
            for g in groups]
    session.add_all(rows)
    session.commit()
    return [r.id for r in rows]


def test_claims_each_due_task_once_per_pass_one_at_a_time(ctx, make_org, make_group):
    org = make_org()
    ids = _tasks([make_group(org) for _ in range(3)])
    session = get_session()
    now = utcnow()
    got = []
    for task in leases.claimed(GroupRollback, "runner-a", now):
        # claimed (and committed) just before it is handed out; the next one is still free
        assert (task.status, task.claimed_by) == ("running", "runner-a")
        running = session.scalars(select(GroupRollback.id).where(
            GroupRollback.status == "running").execution_options(populate_existing=True)).all()
        assert running == [task.id]
        got.append(task.id)
        leases.release(task, "pending", now - timedelta(seconds=1))  # due again at once
        session.commit()
    assert got == ids  # in id order, and the released task is not taken twice in one pass


def test_limit_and_only(ctx, make_org, make_group):
    org = make_org()
    ids = _tasks([make_group(org) for _ in range(3)])
    now = utcnow()
    assert [t.id for t in leases.claimed(GroupRollback, "r", now, only=ids[2])] == [ids[2]]
    assert [t.id for t in leases.claimed(GroupRollback, "r", now, limit=1)] == [ids[0]]


def test_a_held_lease_is_left_alone_and_a_lapsed_one_is_taken_over(ctx, make_org, make_group):
    org = make_org()
    now = utcnow()
    held, lapsed = _tasks([make_group(org)], status="running", claimed_by="other",
                          claimed_until=now + timedelta(minutes=5)) + _tasks(
        [make_group(org)], status="running", claimed_by="dead",
        claimed_until=now - timedelta(seconds=1))
    later, done = _tasks([make_group(org)], next_attempt_at=now + timedelta(minutes=1)) + \
        _tasks([make_group(org)], status="done")
    taken = list(leases.claimed(GroupRollback, "runner-b", utcnow()))
    assert [t.id for t in taken] == [lapsed]
    session = get_session()
    session.expire_all()
    assert session.get(GroupRollback, held).claimed_by == "other"
    assert session.get(GroupRollback, lapsed).claimed_by == "runner-b"
    assert session.get(GroupRollback, later).status == "pending"
    assert session.get(GroupRollback, done).status == "done"
