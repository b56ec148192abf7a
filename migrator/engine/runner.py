"""The due-step runner: claim due steps with a lease, execute them, record the outcome.

Claiming: PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED`` then ``status=running`` with
``claimed_by``/``claimed_until`` and COMMIT; on SQLite every transaction holds the single
write lock (``BEGIN IMMEDIATE``), which serialises claims the same way. A step whose lease
expired (its runner was killed) is claimable again; every executor is idempotent.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlmodel import select

from migrator.attention.service import clear_group, flag_group
from migrator.audit.service import Actor, acting_as, record
from migrator.db import claim, get_session, utcnow
from migrator.engine import leases, lifecycle
from migrator.engine.kinds import add_members, announce, cutover, invite, parallel_run
from migrator.engine.kinds.base import linked_chat
from migrator.engine.maxclient import client_factory as default_factory
from migrator.engine.models import STEP_KINDS, Step
from migrator.engine.notify import escalate_step
from migrator.engine.outcomes import Outcome, Postpone, StepFailed, cfg
from migrator.engine.rollback import process_due as process_rollbacks
from migrator.engine.unlink import process_due as process_unlinks
from migrator.groups import attention, states
from migrator.groups.models import GroupMember, SourceGroup
from migrator.mail.service import send_due
from migrator.max import breaker
from migrator.max import service as max_service
from migrator.max.errors import MaxAuthError, MaxError, MaxForbidden, MaxRateLimited
from migrator.max.models import MaxChat
from migrator.max.service import refresh_pending
from migrator.max.updates import process_pending
from migrator.people.invites import send_bot_messages
from migrator.waves.models import Wave

log = logging.getLogger("migrator.engine")

RUNNABLE_WAVES = ("planned", "active")
KIND_ORDER = {k: i for i, k in enumerate(STEP_KINDS)}


def runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def runner_actor(rid: str | None = None) -> Actor:
    return Actor("job", "runner", rid or runner_id())


@dataclass
class RunSummary:
    claimed: int = 0
    succeeded: int = 0
    waiting: int = 0
    rescheduled: int = 0
    retried: int = 0
    failed: int = 0
    reopened: int = 0
    emails_sent: int = 0
    bot_messages: int = 0
    details: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        """The pass found work: steps to run, messages to send (more may be waiting)."""
        return bool(self.claimed or self.emails_sent or self.bot_messages)

    def line(self) -> str:
        return (f"claimed {self.claimed}, succeeded {self.succeeded}, waiting {self.waiting}, "
                f"re-run later {self.rescheduled}, retried {self.retried}, "
                f"failed {self.failed}, reopened {self.reopened}, "
                f"e-mails sent {self.emails_sent}, bot messages {self.bot_messages}")


# -- claiming ----------------------------------------------------------------------------


def promote_due(now: datetime | None = None) -> int:
    """pending → due for steps whose time has come (display only; claims take both)."""
    now = now or utcnow()
    session = get_session()
    runnable = select(Wave.id).where(Wave.status.in_(RUNNABLE_WAVES))
    res = session.execute(
        sa.update(Step).where(Step.status == "pending", Step.next_attempt_at <= now,
                              Step.wave_id.in_(runnable))
        .values(status="due", updated_at=now).execution_options(synchronize_session=False))
    session.commit()
    return res.rowcount or 0


def claim_steps(rid: str, limit: int = 20, now: datetime | None = None,
                lease_seconds: int | None = None, exclude=()) -> list[Step]:
    """Claim up to ``limit`` due steps for runner ``rid`` and commit the claim."""
    now = now or utcnow()
    lease = lease_seconds or cfg("RUNNER_LEASE_SECONDS")
    session = get_session()
    runnable = select(Wave.id).where(Wave.status.in_(RUNNABLE_WAVES))
    q = (
        select(Step)
        .where(Step.wave_id.in_(runnable), Step.next_attempt_at <= now,
               leases.claimable(Step, now, waiting=("pending", "due")))
        .order_by(Step.next_attempt_at, Step.group_id, Step.id)
        .limit(limit)
    )
    if exclude:  # steps this pass already ran (a retry waits for the next pass)
        q = q.where(Step.id.not_in(list(exclude)))
    until = now + timedelta(seconds=lease)

    def take(step: Step) -> None:
        reclaimed = step.status == "running"
        lifecycle.move(step, "running")
        step.claimed_by = rid
        step.claimed_until = until
        step.started_at = now
        step.changed_by = f"job:runner:{rid}"
        step.updated_at = now
        session.add(step)
        record("step.started", object_type="step", object_id=step.id, org_id=_org_id(step),
               summary={"kind": step.kind, "group_id": step.group_id,
                        "attempt": step.attempts + 1, "reclaimed": reclaimed})

    with acting_as(runner_actor(rid)):
        claimed = claim(session, q, take, of=Step)
    claimed.sort(key=lambda s: (s.group_id, KIND_ORDER[s.kind]))
    return claimed


def take_turn(step: Step, rid: str) -> bool:
    """Renew the lease of a claimed step just before running it; False if it is no longer
    ours (the lease ran out while this runner worked on the claim's earlier steps)."""
    session = get_session()
    until = utcnow() + timedelta(seconds=cfg("RUNNER_LEASE_SECONDS"))
    res = session.execute(
        sa.update(Step).where(Step.id == step.id, Step.status == "running",
                              Step.claimed_by == rid)
        .values(claimed_until=until).execution_options(synchronize_session=False))
    session.commit()
    if not res.rowcount:
        return False
    session.refresh(step)
    return True


def _org_id(step: Step) -> int | None:
    group = get_session().get(SourceGroup, step.group_id)
    return group.org_id if group else None


EXECUTORS = {"invite": invite.run_invite, "add_members": add_members.run_add_members,
             "announce": announce.run_announce, "parallel_run": parallel_run.run_parallel,
             "cutover": cutover.run_cutover}


def run_kind(step: Step, client_factory, rid: str) -> Outcome:
    """Run one step with its kind's executor; a 403 re-checks the chat's rights first."""
    session = get_session()
    group = session.get(SourceGroup, step.group_id)
    executor = EXECUTORS[step.kind]
    try:
        return executor(step, group, client_factory, rid)
    except MaxForbidden as forbidden:
        # Max sends no update when the bot is demoted: every 403 re-checks the chat's rights,
        # and a chat now lacking some postpones the step (with attention) instead of failing
        chat = session.get(MaxChat, group.max_chat_id) if group and group.max_chat_id else None
        if chat is None:
            raise
        try:
            max_service.refresh_chat(chat.chat_id, client_factory())  # commits
            session.refresh(chat)
        except Exception:
            log.exception("re-checking the rights in chat %s after a 403 failed", chat.chat_id)
            raise forbidden from None
        if chat.preflight_ok:
            raise
        linked_chat(group)  # raises Postpone with the missing rights
        raise


# -- executing ---------------------------------------------------------------------------


def execute(step: Step, rid: str, summary: RunSummary, client_factory) -> None:
    """Run one claimed step and record its outcome in the same transaction as its state."""
    session = get_session()
    step_id, kind, group_id = step.id, step.kind, step.group_id
    with acting_as(runner_actor(rid)):
        try:
            outcome = run_kind(step, client_factory, rid)
        except MaxAuthError as exc:
            # the token is refused: not this step's failure; every Max work stops
            session.rollback()
            breaker.trip(exc)
            step = session.get(Step, step.id)
            _postpone(step, Postpone(f"Max refuses the bot token: {exc}", 60))
            summary.rescheduled += 1
        except Postpone as p:
            session.rollback()
            step = session.get(Step, step.id)
            _postpone(step, p)
            summary.rescheduled += 1
        except MaxRateLimited as exc:
            # Not a failure of the wave: simply later (server hint honoured).
            session.rollback()
            step = session.get(Step, step.id)
            _postpone(step, Postpone(f"rate limited: {exc}", max(exc.retry_after or 5, 5)))
            summary.rescheduled += 1
        except StepFailed as exc:
            session.rollback()
            step = session.get(Step, step.id)
            fail_step(step, str(exc))
            summary.failed += 1
        except MaxError as exc:
            session.rollback()
            step = session.get(Step, step.id)
            if exc.retryable:
                if _retry_or_fail(step, str(exc)):
                    summary.retried += 1
                else:
                    summary.failed += 1
            else:
                fail_step(step, str(exc))
                summary.failed += 1
        except Exception as exc:  # a bug or an outage of ours: retried, bounded
            session.rollback()  # first: the failed transaction cannot even read the step
            log.exception("step %s (%s, group %s) failed", step_id, kind, group_id)
            step = session.get(Step, step_id)
            if _retry_or_fail(step, f"{type(exc).__name__}: {exc}"):
                summary.retried += 1
            else:
                summary.failed += 1
        else:
            _finish(step, outcome, summary)
        session.commit()
        summary.details.append(f"{step.kind} group={step.group_id}: {step.status}")


def _release(step: Step) -> None:
    step.claimed_by = None
    step.claimed_until = None
    step.updated_at = utcnow()


def _finish(step: Step, outcome: Outcome, summary: RunSummary) -> None:
    now = utcnow()
    _release(step)
    group = get_session().get(SourceGroup, step.group_id)
    if group is not None:  # it ran: the chat is linked and the bot has its rights
        clear_group(group, (attention.NOT_LINKED, attention.BOT_RIGHTS))
    step.last_error = None
    if outcome.status == "due":
        lifecycle.move(step, "due")
        again = 600 if outcome.again_in is None else outcome.again_in
        step.next_attempt_at = now + timedelta(seconds=again)
        summary.rescheduled += 1
        action = "step.ran"
    else:
        lifecycle.move(step, outcome.status)
        if outcome.status == "succeeded":
            step.finished_at = now
            summary.succeeded += 1
            action = "step.succeeded"
        else:
            summary.waiting += 1
            action = "step.waiting"
    step.attempts = 0 if outcome.status != "due" else step.attempts
    get_session().add(step)
    record(action, object_type="step", object_id=step.id, org_id=_org_id(step),
           summary={"kind": step.kind, "group_id": step.group_id, **outcome.info})


def _postpone(step: Step, p: Postpone) -> None:
    _release(step)
    lifecycle.move(step, "due")
    # RUNNER_RECHECK_SECONDS caps every re-check delay (tests and demos use 0 or a few).
    cap = cfg("RUNNER_RECHECK_SECONDS")
    seconds = p.seconds if cap is None else min(p.seconds, cap)
    step.next_attempt_at = utcnow() + timedelta(seconds=seconds)
    changed = step.last_error != p.reason
    step.last_error = p.reason[:2000]
    get_session().add(step)
    if p.attention:
        group = get_session().get(SourceGroup, step.group_id)
        parsed = attention.parse(p.attention)
        if group is not None and parsed is not None:
            flag_group(group, parsed[0], **parsed[1])
    if changed:  # audit a new reason once, not every poll
        record("step.postponed", object_type="step", object_id=step.id, org_id=_org_id(step),
               summary={"kind": step.kind, "reason": p.reason[:200]})


def backoff_seconds(attempts: int) -> float:
    base = cfg("RUNNER_BACKOFF_SECONDS")
    return min(cfg("RUNNER_BACKOFF_MAX_SECONDS"), base * (2 ** max(attempts - 1, 0)))


def _retry_or_fail(step: Step, error: str) -> bool:
    """attempts+1 and a backoff, or ``failed`` after the last attempt. True if retried."""
    step.attempts += 1
    if step.attempts >= cfg("STEP_MAX_ATTEMPTS"):
        fail_step(step, error)
        return False
    _release(step)
    lifecycle.move(step, "due")
    step.last_error = error[:2000]
    step.next_attempt_at = utcnow() + timedelta(seconds=backoff_seconds(step.attempts))
    get_session().add(step)
    record("step.retried", object_type="step", object_id=step.id, org_id=_org_id(step),
           summary={"kind": step.kind, "attempts": step.attempts,
                    "next_attempt_at": step.next_attempt_at.isoformat(),
                    "error": error[:200]})
    return True


def fail_step(step: Step, error: str) -> None:
    """``failed``: the group needs attention and coordinators and the head get one e-mail."""
    now = utcnow()
    _release(step)
    lifecycle.move(step, "failed")
    step.last_error = error[:2000]
    step.finished_at = now
    session = get_session()
    session.add(step)
    group = session.get(SourceGroup, step.group_id)
    if group is not None:
        flag_group(group, attention.STEP_FAILED, kind=step.kind, error=error[:300])
    record("step.failed", object_type="step", object_id=step.id,
           org_id=group.org_id if group else None,
           summary={"kind": step.kind, "attempts": step.attempts, "error": error[:200]})
    if step.escalated_at is None:
        escalate_step(step, group, error)
        step.escalated_at = now


# -- delta sync --------------------------------------------------------------------------


def reopen_delta(now: datetime | None = None) -> int:
    """Bring forward the open ``add_members`` steps (done for now, or waiting for a later
    retry) of groups before cutover that have a member whose own time has come: someone
    pressed Start, or a retry is due. So a Start press is served by the next tick."""
    now = now or utcnow()
    session = get_session()
    cutover_open = select(Step.group_id).where(
        Step.kind == "cutover", Step.status.not_in(("succeeded", "skipped")))
    waiting_people = (
        select(GroupMember.group_id)
        .where(GroupMember.state.in_((*states.TO_ADD, states.ADDING)),
               sa.or_(GroupMember.next_attempt_at.is_(None),
                      GroupMember.next_attempt_at <= now))
    )
    runnable = select(Wave.id).where(Wave.status.in_(RUNNABLE_WAVES))
    steps = session.exec(
        select(Step).where(Step.kind == "add_members",
                           sa.or_(Step.status == "succeeded",
                                  sa.and_(Step.status == "due", Step.next_attempt_at > now)),
                           Step.wave_id.in_(runnable), Step.group_id.in_(cutover_open),
                           Step.group_id.in_(waiting_people))
    ).all()
    with acting_as(runner_actor()):
        for step in steps:
            reopened = step.status == "succeeded"
            lifecycle.move(step, "due")
            step.next_attempt_at = now
            step.updated_at = now
            step.changed_by = "job:runner"
            session.add(step)
            if reopened:  # a brought-forward retry is not news for the trail
                record("step.reopened", object_type="step", object_id=step.id,
                       org_id=_org_id(step), summary={"kind": step.kind,
                                                      "reason": "delta sync"})
    session.commit()
    return len(steps)


# -- one pass ----------------------------------------------------------------------------


def run_due(rid: str | None = None, *, limit: int = 5, max_rounds: int = 200,
            send_mail: bool = True, client_factory=None,
            max_backlog: bool = True) -> RunSummary:
    """Run everything due now once: promote, claim in batches, execute, send outboxes.

    ``max_backlog=False`` leaves pending Max updates and unchecked chats to the caller (the
    scheduler runs :func:`migrator.max.updates.catch_up` as its own job).
    """
    rid = rid or runner_id()
    client_factory = client_factory or default_factory()
    summary = RunSummary()
    max_ok = _max_allowed(client_factory)
    if max_backlog and max_ok:
        process_max_backlog(client_factory)
    if max_ok:  # undoing groups' moves first: their steps are cancelled, nothing races
        process_rollbacks(rid, client_factory)
        process_unlinks(rid, client_factory)  # unbound Max accounts out of their chats
    summary.reopened = reopen_delta()
    promote_due()
    seen: set[int] = set()
    for _ in range(max_rounds if max_ok else 0):
        steps = claim_steps(rid, limit=limit, exclude=seen)
        if not steps:
            break
        summary.claimed += len(steps)
        for index, step in enumerate(steps):
            seen.add(step.id)
            if not take_turn(step, rid):
                continue  # the lease ran out while earlier steps ran: another runner has it
            execute(step, rid, summary, client_factory)
            if not _max_allowed(None):  # a 401 opened the breaker: stop at once
                _hold_back(steps[index + 1:], summary)
                break
        if not _max_allowed(None):
            break
    if send_mail:
        summary.emails_sent, summary.bot_messages = send_outboxes(client_factory)
    return summary


def _hold_back(steps: list[Step], summary: RunSummary) -> None:
    """Claimed steps left unrun because the 401 breaker opened: due again, unchanged."""
    session = get_session()
    for claimed in steps:
        step = session.get(Step, claimed.id)
        _postpone(step, Postpone("Max refuses the bot token: all Max work is stopped", 60))
        summary.rescheduled += 1
    session.commit()


def _max_allowed(client_factory) -> bool:
    """False while the 401 breaker is open (``client_factory`` None: do not probe Max)."""
    if client_factory is None:
        return breaker.tripped_at() is None
    if not current_app.config.get("MAX_BOT_TOKEN"):
        return True
    return breaker.allow_max_work(client_factory)


def process_max_backlog(client_factory) -> None:
    """Updates stored but not applied yet (deferred, failed) and chats whose rights are
    unknown: before steps run, so links and memberships are current."""
    if not current_app.config.get("MAX_BOT_TOKEN"):
        return
    try:
        process_pending()
        refresh_pending(client_factory())
        get_session().commit()
    except Exception:
        log.exception("processing pending Max updates failed")
        get_session().rollback()


def send_outboxes(client_factory) -> tuple[int, int]:
    """Send due e-mails (outbox) and bot dialog messages; failures there are logged only."""
    sent = bot = 0
    budget = float(current_app.config["OUTBOX_PASS_SECONDS"])
    try:
        sent = send_due(deadline=time.monotonic() + budget) or 0
    except Exception:
        log.exception("sending the e-mail outbox failed")
        get_session().rollback()
    try:
        # nothing goes to Max while it refuses the token (the 401 breaker)
        if current_app.config.get("MAX_BOT_TOKEN") and _max_allowed(None):
            # no more claimed than the limiter lets out in that time
            rps = int(current_app.config["MAX_RPS"])
            bot = send_bot_messages(client_factory(), limit=min(100, int(budget * rps) + 1),
                                    deadline=time.monotonic() + budget) or 0
    except Exception:
        log.exception("sending bot messages failed")
        get_session().rollback()
    return _count(sent), _count(bot)


def _count(value) -> int:
    if isinstance(value, int):
        return value
    for name in ("sent", "count"):
        if hasattr(value, name):
            return int(getattr(value, name))
    if isinstance(value, dict):
        return int(value.get("sent", 0))
    return 0
