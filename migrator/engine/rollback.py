"""Undo a group's move: remove from the Max chat exactly the members the tool brought in,
unpin the announcement it pinned, unlink the group, cancel its remaining steps.

:func:`request_rollback` writes a :class:`GroupRollback` row and cancels the steps in the
transaction of the decision. :func:`process_due` (called by every ``run-due``, and by the CLI
at once) carries it out; each side effect is audited and crash-safe:

* every person the rollback may remove is listed first (``RollbackMember``), from the
  memberships the tool brought in (``GroupMember.by_tool``) and those whose add call was in
  flight (``adding``: removed only if they are in the chat);
* before each ``DELETE /chats/{chatId}/members`` the intent (``removing``) is committed;
  every run reads the chat's member list first, so a person no longer there counts as
  removed without a call and nobody is removed twice;
* the chat owner, its admins, people who were there before (Max's ``join_time`` earlier than
  the tool's add), joined on their own, were added by someone else, or are needed by another
  group linked to the same chat stay;
* the announcement is unpinned only while it is still the pinned message.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlmodel import select

from migrator.attention.service import clear_group, resolve
from migrator.audit.service import Actor, acting_as, record
from migrator.db import get_session, utcnow
from migrator.engine import leases, lifecycle, removal
from migrator.engine.models import GroupRollback, RollbackMember, Step
from migrator.groups import states
from migrator.groups.models import GroupMember, SourceGroup
from migrator.max import service as max_service
from migrator.max.errors import MaxError
from migrator.max.models import MaxChat, MaxChatMember
from migrator.people.models import Employee

log = logging.getLogger("migrator.engine")

NOTE = "откат"  # the note of the steps a rollback cancels (shown as it is)
FINISHED_STEPS = ("succeeded", "skipped")
MAX_ATTEMPTS = 5
CLOCK_SLACK_SECONDS = 120  # between Max's join time and our record of the add


class RollbackRefused(Exception):
    """The rollback may not be started: ``code`` is ``invalid`` (400), ``forbidden`` (403)
    or ``conflict`` (409); the message is for people."""

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


# -- asking for it -----------------------------------------------------------------------


def _step(group_id: int, kind: str) -> Step | None:
    return get_session().exec(select(Step).where(Step.group_id == group_id,
                                                 Step.kind == kind)).first()


def after_cutover(group: SourceGroup) -> bool:
    """The group's cutover succeeded: its move is complete."""
    cut = _step(group.id, "cutover")
    return cut is not None and cut.status == "succeeded"


def open_rollback(group: SourceGroup) -> GroupRollback | None:
    return get_session().exec(select(GroupRollback).where(
        GroupRollback.open_group_id == group.id)).first()


def latest(group: SourceGroup) -> GroupRollback | None:
    return get_session().exec(select(GroupRollback).where(GroupRollback.group_id == group.id)
                              .order_by(GroupRollback.id.desc())).first()


def _unfinished_steps(group_id: int) -> list[Step]:
    return list(get_session().exec(select(Step).where(
        Step.group_id == group_id, Step.status.not_in(FINISHED_STEPS))).all())


def brought_in_count(group: SourceGroup) -> int:
    """Members the tool brought into the chat (what a rollback would remove at most)."""
    return get_session().scalar(
        select(sa.func.count()).select_from(GroupMember).where(*_candidates(group.id))) or 0


def _candidates(group_id: int):
    return (GroupMember.group_id == group_id,
            sa.or_(sa.and_(GroupMember.by_tool.is_(True),
                           GroupMember.state.in_(states.IN_CHAT)),
                   GroupMember.state == states.ADDING))


def check(group: SourceGroup, user) -> None:
    """Raise :class:`RollbackRefused` unless ``user`` (None: the command line, an operator)
    may roll the group back now."""
    role = getattr(user, "role", "admin") if user is not None else "admin"
    if role not in ("admin", "coordinator"):
        raise RollbackRefused("forbidden", str(_l("This role may not undo a group's move.")))
    if open_rollback(group) is not None:
        raise RollbackRefused("conflict", str(_l("The group's move is already being undone.")))
    if group.max_chat_id is None and not _unfinished_steps(group.id):
        raise RollbackRefused("conflict", str(_l("There is nothing to undo: the group is not "
                                                 "linked to a Max chat and has no open "
                                                 "steps.")))
    if after_cutover(group) and role != "admin":
        raise RollbackRefused("forbidden", str(_l("The group's cutover is done: only an "
                                                  "administrator may undo its move.")))


def request_rollback(group: SourceGroup, user, reason: str,
                     now: datetime | None = None) -> GroupRollback:
    """Decide to undo the group's move (not committed): the request row, the remaining steps
    cancelled, audited. Raises :class:`RollbackRefused`."""
    reason = (reason or "").strip()
    if not reason:
        raise RollbackRefused("invalid", str(_l("A reason is required.")),
                              {"reason": str(_l("A reason is required."))})
    check(group, user)
    session = get_session()
    now = now or utcnow()
    chat = session.get(MaxChat, group.max_chat_id) if group.max_chat_id else None
    announce = _step(group.id, "announce")
    message_id = None
    if (announce is not None and announce.pinned_at is not None and announce.message_id
            and not announce.message_id.startswith("pending:")):
        message_id = announce.message_id
    who = getattr(user, "email", None) or "system:cli"
    rb = GroupRollback(group_id=group.id, open_group_id=group.id,
                       chat_pk=chat.id if chat else None, chat_id=chat.chat_id if chat else None,
                       message_id=message_id, reason=reason[:2000],
                       requested_by_id=getattr(user, "id", None), requested_by=who[:200],
                       requested_at=now, after_cutover=after_cutover(group),
                       next_attempt_at=now)
    session.add(rb)
    session.flush()
    record("group.rollback_requested", object_type="group", object_id=group.key,
           org_id=group.org_id,
           summary={"rollback_id": rb.id, "reason": reason[:200], "chat_id": rb.chat_id,
                    "after_cutover": rb.after_cutover,
                    "brought_in": brought_in_count(group)})
    rb.steps_skipped = cancel_steps(group, who, now)
    session.add(rb)
    log.info("rollback of group %r requested by %s", group, who)
    return rb


def cancel_steps(group: SourceGroup, who: str, now: datetime | None = None) -> int:
    """The group's unfinished steps become ``skipped`` «откат»; a step a runner is working
    on keeps its claim, so :func:`process` waits for the runner to let go."""
    session = get_session()
    now = now or utcnow()
    steps = _unfinished_steps(group.id)
    for step in steps:
        before = step.status
        lifecycle.move(step, "skipped", at=now)
        step.note = NOTE
        step.finished_at = now
        step.changed_by = who[:200]
        step.updated_at = now
        session.add(step)
        record("step.skipped", object_type="step", object_id=step.id, org_id=group.org_id,
               summary={"kind": step.kind, "group": group.key, "before": before,
                        "after": "skipped", "reason": NOTE})
    return len(steps)


# -- carrying it out ---------------------------------------------------------------------


class _Wait(Exception):  # noqa: N818 (a control-flow signal)
    """Not now: a runner still works on one of the group's steps."""

    def __init__(self, until: datetime):
        super().__init__(str(until))
        self.until = until


def process_due(rid: str, client_factory, now: datetime | None = None,
                only: int | None = None, actor: Actor | None = None) -> int:
    """Carry out the rollbacks that are due (pending, or running with an expired lease);
    returns how many finished. ``only``: just that rollback (the CLI)."""
    done = 0
    for rb in leases.claimed(GroupRollback, rid, now or utcnow(), only=only):
        with acting_as(actor or Actor("job", "runner", rid)):
            done += process(rb, client_factory, rid)
    return done


def process(rb: GroupRollback, client_factory, rid: str) -> int:
    """Run one claimed rollback to its end (1), or leave it for a later run (0)."""
    session = get_session()
    session.refresh(rb)
    rollback_id = rb.id
    group = session.get(SourceGroup, rb.group_id)
    try:
        _settle_steps(rb, group)
        _plan(rb, group)
        if rb.chat_id is not None:
            client = client_factory()
            _remove_members(rb, group, client)
            _unpin(rb, group, client)
        _finish(rb, group)
        session.commit()
        return 1
    except _Wait as wait:
        session.rollback()
        rb = session.get(GroupRollback, rb.id)
        leases.release(rb, "pending", wait.until)
    except MaxError as exc:
        session.rollback()
        rb = session.get(GroupRollback, rb.id)
        rb.attempts += 1
        rb.last_error = str(exc)[:2000]
        if exc.retryable and rb.attempts < MAX_ATTEMPTS:
            delay = min(300, 5 * 2 ** (rb.attempts - 1))
            retry_after = getattr(exc, "retry_after", None) or 0
            leases.release(rb, "pending", utcnow() + timedelta(seconds=max(delay, retry_after)))
        else:
            _fail(rb, group, str(exc))
    except Exception as exc:  # a bug or an outage of ours (a deadlock): tried again later
        # roll back first: rb's attributes cannot be read in a failed transaction
        session.rollback()
        log.exception("rollback %s of group %s failed", rollback_id, group.key)
        rb = session.get(GroupRollback, rollback_id)
        rb.attempts += 1
        rb.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if rb.attempts < MAX_ATTEMPTS:
            leases.release(rb, "pending", utcnow() + timedelta(seconds=60))
        else:
            _fail(rb, group, rb.last_error)
    session.commit()
    return 0


def _fail(rb: GroupRollback, group: SourceGroup, error: str) -> None:
    rb.status = "failed"
    rb.open_group_id = None
    rb.claimed_by = rb.claimed_until = None
    rb.finished_at = utcnow()
    get_session().add(rb)
    record("group.rollback_failed", object_type="group", object_id=group.key,
           org_id=group.org_id, summary={"rollback_id": rb.id, "error": error[:200]})
    log.warning("rollback of group %r failed: %s", group, error)


def _settle_steps(rb: GroupRollback, group: SourceGroup) -> None:
    """Wait while a runner holds one of the group's steps; then cancel again whatever that
    runner set going (its outcome overwrote the cancellation)."""
    session = get_session()
    now = utcnow()
    held = session.scalar(select(sa.func.max(Step.claimed_until)).where(
        Step.group_id == group.id, Step.claimed_by.is_not(None), Step.claimed_until > now))
    if held is not None:
        raise _Wait(held)
    for step in session.exec(select(Step).where(Step.group_id == group.id,
                                                Step.claimed_by.is_not(None))).all():
        step.claimed_by = step.claimed_until = None  # a dead runner's claim
        session.add(step)
    rb.steps_skipped += cancel_steps(group, rb.requested_by)
    session.add(rb)
    session.commit()


def _plan(rb: GroupRollback, group: SourceGroup) -> None:
    """List everyone the rollback may remove (once)."""
    if rb.planned_at is not None:
        return
    session = get_session()
    rows = session.exec(
        select(GroupMember.employee_id, Employee.max_user_id)
        .join(Employee, Employee.id == GroupMember.employee_id)
        .where(*_candidates(group.id), Employee.max_user_id.is_not(None))).all()
    for employee_id, max_user_id in rows:
        session.add(RollbackMember(rollback_id=rb.id, employee_id=employee_id,
                                   max_user_id=max_user_id))
    rb.planned_at = utcnow()
    leases.renew(rb)
    session.commit()


def _there_before(rb: GroupRollback, row: RollbackMember, there: dict) -> bool:
    """Max says they joined the chat well before the tool brought them in (an add call for
    someone already there succeeds too): not the tool's doing."""
    member = get_session().get(GroupMember, (rb.group_id, row.employee_id))
    joined = there.get("join_time")
    if member is None or member.added_at is None or not isinstance(joined, int | float):
        return False
    seconds = joined / 1000 if joined > 10**11 else joined  # Max's times are milliseconds
    return seconds < member.added_at.timestamp() - CLOCK_SLACK_SECONDS


def _shared(rb: GroupRollback, row: RollbackMember) -> bool:
    """The person belongs in the chat through another group linked to it (as this employee,
    or as another record linked to the same Max account)."""
    if rb.chat_pk is None:
        return False
    return removal.needed_in_chat(rb.chat_pk, row.max_user_id, employee_id=row.employee_id,
                                  not_group=rb.group_id)


def _membership_out(rb: GroupRollback, employee_id: int, max_user_id: int,
                    now: datetime) -> None:
    """The membership follows: out of the chat (``left``, re-addable by a new wave), or
    back to ``linked`` when their add call never landed; their attention items resolved."""
    session = get_session()
    member = session.get(GroupMember, (rb.group_id, employee_id))
    if member is None:
        return
    if member.state == states.ADDING:
        states.move(member, states.LINKED, now=now)
    elif member.state in (*states.IN_CHAT, states.LEFT):  # the user_removed may be first
        states.move(member, states.LEFT, now=now)
        member.reason = states.ROLLED_BACK
        session.add(member)
    resolve("member", employee_id, group_id=rb.group_id, now=now)
    if rb.chat_pk is not None:
        # the account listed when planned (the employee may have been unlinked since)
        row = session.get(MaxChatMember, (rb.chat_pk, max_user_id))
        if row is not None and row.is_present:
            row.is_present = False
            row.updated_at = now
            session.add(row)


def _remove_members(rb: GroupRollback, group: SourceGroup, client) -> None:
    todo = get_session().exec(select(RollbackMember).where(
        RollbackMember.rollback_id == rb.id, RollbackMember.status.in_(removal.TODO))
        .order_by(RollbackMember.max_user_id)).all()

    def keep(row: RollbackMember, there: dict) -> bool:
        return _there_before(rb, row, there) or _shared(rb, row)

    def out(row: RollbackMember) -> None:
        _membership_out(rb, row.employee_id, row.max_user_id, utcnow())
        if row.status == "removed":
            _recorded_removal(rb, group, row)

    removal.remove_listed(rb.chat_id, todo, client, keep=keep, out=out,
                          renew=lambda: leases.renew(rb))


def _recorded_removal(rb: GroupRollback, group: SourceGroup, row: RollbackMember) -> None:
    record("member.removed", object_type="group", object_id=group.key, org_id=group.org_id,
           summary={"rollback_id": rb.id, "chat_id": rb.chat_id,
                    "max_user_id": row.max_user_id, "employee_id": row.employee_id})


def _unpin(rb: GroupRollback, group: SourceGroup, client) -> None:
    """Unpin the announcement while it is still the chat's pinned message."""
    if rb.message_id is None or rb.unpinned_at is not None:
        return
    session = get_session()
    rb.unpin_started_at = rb.unpin_started_at or utcnow()  # the intent
    leases.renew(rb)
    session.add(rb)
    session.commit()
    pinned = client.get_pinned(rb.chat_id)
    if pinned and (pinned.get("body") or {}).get("mid") == rb.message_id:
        client.unpin(rb.chat_id)
        rb.unpinned = True
        record("chat.unpin", object_type="group", object_id=group.key, org_id=group.org_id,
               summary={"rollback_id": rb.id, "chat_id": rb.chat_id,
                        "message_id": rb.message_id})
    rb.unpinned_at = utcnow()
    session.add(rb)
    session.commit()


def _finish(rb: GroupRollback, group: SourceGroup) -> None:
    """Unlink the group, let it leave its wave, count, close the request."""
    session = get_session()
    counts = dict(session.exec(
        select(RollbackMember.status, sa.func.count()).where(
            RollbackMember.rollback_id == rb.id).group_by(RollbackMember.status)).all())
    wave_id = group.wave_id
    if group.max_chat_id is not None and group.max_chat_id == rb.chat_pk:
        max_service.unlink_group(group, rb.requested_by)  # audited: group.unlink
    group.wave_id = None
    group.updated_at = utcnow()
    session.add(group)
    resolve("member", None, group_id=group.id)
    clear_group(group)
    rb.removed = counts.get("removed", 0)
    rb.absent = counts.get("absent", 0)
    rb.kept = counts.get("kept", 0)
    rb.status = "done"
    rb.open_group_id = None
    rb.claimed_by = rb.claimed_until = None
    rb.last_error = None
    rb.finished_at = utcnow()
    session.add(rb)
    record("group.rollback_done", object_type="group", object_id=group.key,
           org_id=group.org_id,
           summary={"rollback_id": rb.id, "removed": rb.removed, "absent": rb.absent,
                    "kept": rb.kept, "unpinned": rb.unpinned, "wave_id": wave_id,
                    "steps_skipped": rb.steps_skipped})
    log.info("rollback of group %r done: %d removed, %d gone already, %d kept", group,
             rb.removed, rb.absent, rb.kept)


def progress(rb: GroupRollback) -> tuple[int, int]:
    """``(people listed, people handled)`` of a rollback."""
    counts = dict(get_session().exec(
        select(RollbackMember.status, sa.func.count()).where(
            RollbackMember.rollback_id == rb.id).group_by(RollbackMember.status)).all())
    total = sum(counts.values())
    return total, total - counts.get("planned", 0) - counts.get("removing", 0)


def rollback_json(rb: GroupRollback | None) -> dict | None:
    if rb is None:
        return None

    def iso(value):
        return value.isoformat() if value else None

    return {"id": rb.id, "status": rb.status, "reason": rb.reason,
            "requested_by": rb.requested_by, "requested_at": iso(rb.requested_at),
            "after_cutover": rb.after_cutover, "chat_id": rb.chat_id,
            "removed": rb.removed, "absent": rb.absent, "kept": rb.kept,
            "unpinned": rb.unpinned, "steps_skipped": rb.steps_skipped,
            "last_error": rb.last_error, "finished_at": iso(rb.finished_at)}
