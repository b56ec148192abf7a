"""Periodic jobs: reminders, the daily snapshot hook, the coordinators' digest, heartbeat."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import select

from migrator.audit.service import Actor, acting_as, record
from migrator.auth.models import User
from migrator.auth.service import scoped
from migrator.db import get_session, utcnow
from migrator.engine.models import Heartbeat, Step
from migrator.engine.notify import escalate_step, queue, render
from migrator.groups.models import SourceGroup
from migrator.people.invites import issue_invitations
from migrator.progress.service import digest_rows, step_overdue_condition
from migrator.progress.service import take_snapshots as snap
from migrator.waves.models import Wave
from migrator.waves.settings import get_setting

log = logging.getLogger("migrator.engine")


def beat(name: str, info: str = "") -> None:
    """Record that ``name`` is alive: one upsert, so that two processes beating under the
    same name at once (two ``run-due`` workers) never collide on the key."""
    session = get_session()
    values = {"name": name, "seen_at": utcnow(), "info": info[:500]}
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(Heartbeat).values(**values)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[Heartbeat.name],
        set_={"seen_at": stmt.excluded.seen_at, "info": stmt.excluded.info}))
    session.commit()
    session.expire_all()


def send_reminders(now: datetime | None = None) -> int:
    """Re-run the invitation logic (reminders, late joiners) for groups before cutover."""
    session = get_session()
    now = now or utcnow()
    groups = session.exec(
        select(SourceGroup)
        .join(Step, (Step.group_id == SourceGroup.id) & (Step.kind == "invite"))
        .join(Wave, Wave.id == Step.wave_id)
        .where(Wave.status.in_(("planned", "active")),
               Step.status.in_(("succeeded", "due", "pending")), Step.due_at <= now,
               SourceGroup.id.in_(select(Step.group_id).where(
                   Step.kind == "cutover", Step.status.not_in(("succeeded", "skipped")))))
    ).all()
    n = 0
    with acting_as(Actor("job", "reminders", "reminders")):
        for group in groups:
            session.commit()
            issue_invitations(group, now=now,
                              reminder_every_days=get_setting("reminder_interval_days"),
                              max_reminders=get_setting("max_reminders"))
            session.commit()
            n += 1
    return n


def take_snapshots() -> int | None:
    return snap()


def overdue_steps(user, now: datetime | None = None, limit: int = 50) -> list[dict]:
    """The user's overdue steps (the one definition: ``progress.service``)."""

    now = now or utcnow()
    q = (select(Step, SourceGroup).join(SourceGroup, SourceGroup.id == Step.group_id)
         .where(step_overdue_condition(now))
         .order_by(Step.due_at).limit(limit))
    rows = get_session().exec(scoped(q, SourceGroup.org_id, user)).all()
    return [{"group_name": g.name, "step": s.kind, "due_at": s.due_at} for s, g in rows]


def send_digest(now: datetime | None = None) -> int:
    """The daily digest e-mail to every active coordinator (once per local day)."""
    now = now or utcnow()
    day = now.astimezone(ZoneInfo(current_app.config["MIGRATOR_TZ"])).date()
    session = get_session()
    users = session.exec(select(User).where(User.role == "coordinator",
                                            User.is_active.is_(True))).all()
    n = 0
    with acting_as(Actor("job", "digest", "digest")):
        for user in users:
            rows = []
            try:
                rows = digest_rows(user, now)
            except Exception:  # progress not there or failing: a short digest still goes
                log.warning("digest rows unavailable for %s", user.email, exc_info=True)
            overdue = overdue_steps(user, now)
            subject, text, html = render(
                "digest", f"Migrator: сводка за {day:%d.%m.%Y}",
                f"Сводка о переходе в Max на {day:%d.%m.%Y}.\n"
                f"Просроченных шагов: {len(overdue)}.\n"
                f"Подробности — на странице «Обзор» в Migrator.",
                full_name=user.full_name, day=day, rows=rows, overdue=overdue,
                url=current_app.config["MIGRATOR_BASE_URL"] + "/")
            queue(f"digest:{user.id}:{day.isoformat()}", user.email, subject, text, html,
                  kind="digest", org_id=None)
            n += 1
        session.commit()
    return n


def escalate_overdue(now: datetime | None = None) -> int:
    """One e-mail per overdue step of a running wave (failed steps are escalated when they
    fail) to the group's coordinators and the organisation's head; the step is marked
    escalated."""

    now = now or utcnow()
    session = get_session()
    rows = session.exec(
        select(Step, SourceGroup).join(SourceGroup, SourceGroup.id == Step.group_id)
        .join(Wave, Wave.id == Step.wave_id)
        .where(Wave.status.in_(("planned", "active")),
               Step.status.in_(("pending", "due", "waiting", "running")),
               step_overdue_condition(now), Step.escalated_at.is_(None))
        .limit(500)
    ).all()
    with acting_as(Actor("job", "escalations", "escalations")):
        for step, group in rows:
            reason = step.last_error or "overdue"
            escalate_step(step, group, f"просрочено: {reason}",
                          marker=f"overdue{now:%Y%m%d}")
            step.escalated_at = now
            session.add(step)
            record("step.escalated", object_type="step", object_id=step.id,
                   org_id=group.org_id, summary={"kind": step.kind, "reason": "overdue"})
        session.commit()
    return len(rows)
