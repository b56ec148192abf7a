"""What coordinators and admins do to steps: retry, skip, pause, confirm, override, reset;
and the dry-run preview of the next run. Every action is audited; nothing is committed."""

from __future__ import annotations

import math

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlmodel import select

from migrator.attention.service import resolve, sync_unaddable
from migrator.audit.service import record
from migrator.db import get_session, utcnow
from migrator.engine import lifecycle
from migrator.engine.kinds.add_members import members_due
from migrator.engine.kinds.announce import PENDING
from migrator.engine.kinds.base import BATCH, linked_chat
from migrator.engine.kinds.cutover import cutover_blocker
from migrator.engine.models import STEP_KINDS, Step
from migrator.engine.notify import queue_report
from migrator.groups import states
from migrator.groups.attention import MEMBER_UNADDABLE
from migrator.groups.models import GroupMember, SourceGroup
from migrator.groups.service import coverage
from migrator.people.invites import preview_invitations
from migrator.people.models import Employee
from migrator.waves.models import Wave
from migrator.waves.settings import get_setting

MANUAL_KINDS = ("announce", "cutover")  # steps that wait for a coordinator's confirmation


class ControlError(Exception):
    """The action does not fit the step's state (409 in the API)."""


def group_steps(group: SourceGroup) -> list[Step]:
    steps = get_session().exec(select(Step).where(Step.group_id == group.id)).all()
    order = {k: i for i, k in enumerate(STEP_KINDS)}
    return sorted(steps, key=lambda s: order[s.kind])


def get_step(group: SourceGroup, kind: str) -> Step | None:
    return get_session().exec(
        select(Step).where(Step.group_id == group.id, Step.kind == kind)).first()


def _change(step: Step, action: str, user, before: str, **summary) -> None:
    step.changed_by = user.email
    step.updated_at = utcnow()
    get_session().add(step)
    group = get_session().get(SourceGroup, step.group_id)
    record(action, object_type="step", object_id=step.id, org_id=group.org_id if group else None,
           summary={"kind": step.kind, "group": group.key if group else None,
                    "before": before, "after": step.status, **summary})


def _due_now(step: Step) -> None:
    now = utcnow()
    step.next_attempt_at = max(now, step.due_at) if step.due_at > now else now
    lifecycle.move(step, "due" if step.next_attempt_at <= now else "pending")
    step.claimed_by = step.claimed_until = None


RETRYABLE_MEMBERS = (states.UNADDABLE, states.RETRYING, states.INVITED_BY_LINK)


def retry_members(group: SourceGroup, user, employee_ids: list[int] | None = None) -> int:
    """Try again to add members Max refused (one, some, or all of the group's): back to
    ``linked`` with their attempts cleared, due at the next run. Returns how many."""
    session = get_session()
    linked = select(Employee.id).where(Employee.max_user_id.is_not(None))
    where = [GroupMember.group_id == group.id, GroupMember.state.in_(RETRYABLE_MEMBERS),
             GroupMember.employee_id.in_(linked)]
    if employee_ids is not None:
        where.append(GroupMember.employee_id.in_(employee_ids))
    chosen = list(session.scalars(select(GroupMember.employee_id).where(*where)))
    if not chosen:
        raise ControlError(str(_l("Nobody to retry: these members are not waiting for a "
                                  "retry.")))
    now = utcnow()
    moved = states.move_where(states.LINKED, *where, now=now, next_attempt_at=now,
                              attempts=0, reason=None)
    for employee_id in chosen:
        resolve("member", employee_id, MEMBER_UNADDABLE, group_id=group.id)
    sync_unaddable(group)
    record("members.retry", object_type="group", object_id=group.id, org_id=group.org_id,
           summary={"group": group.key, "members": moved,
                    "employee_ids": chosen[:50], "by": user.email})
    return moved


def retry(step: Step, user) -> None:
    if step.status != "failed":
        raise ControlError(str(_l("Only a failed step can be retried.")))
    before = step.status
    step.attempts = 0
    step.last_error = None
    step.escalated_at = None
    step.finished_at = None
    step.next_attempt_at = utcnow()
    lifecycle.move(step, "due")
    _forget_unsure_post(step)
    _change(step, "step.retry", user, before)


def _forget_unsure_post(step: Step) -> None:
    """A coordinator who retries the announcement checked the chat: post it."""
    if step.message_id and step.message_id.startswith(PENDING):
        step.message_id = None


def skip(step: Step, user, reason: str) -> None:
    reason = (reason or "").strip()
    if not reason:
        raise ControlError(str(_l("A reason is required.")))
    if step.status in ("succeeded", "skipped", "running"):
        raise ControlError(str(_l("This step cannot be skipped now.")))
    before = step.status
    lifecycle.move(step, "skipped")
    step.note = reason[:2000]
    step.finished_at = utcnow()
    _change(step, "step.skipped", user, before, reason=reason[:200])


def pause(step: Step, user) -> None:
    if step.status not in ("pending", "due", "failed"):
        raise ControlError(str(_l("Only a pending, due or failed step can be paused.")))
    before = step.status
    lifecycle.move(step, "paused")
    _change(step, "step.pause", user, before)


def resume(step: Step, user) -> None:
    if step.status != "paused":
        raise ControlError(str(_l("The step is not paused.")))
    _due_now(step)
    _change(step, "step.resume", user, "paused")


def confirm(step: Step, user, note: str) -> None:
    """Confirm a manual step waiting for it (announce: move notice posted; cutover: old group
    closed — then the completion report e-mail goes to the head)."""
    if step.kind not in MANUAL_KINDS or step.status != "waiting":
        raise ControlError(str(_l("This step is not waiting for a confirmation.")))
    session = get_session()
    now = utcnow()
    before = step.status
    lifecycle.move(step, "succeeded")
    step.confirmed_at = now
    step.confirmed_by_id = user.id
    step.note = (note or "").strip()[:2000] or step.note
    step.finished_at = now
    _change(step, "step.confirmed", user, before, note=(note or "")[:200])
    if step.kind == "announce":  # the cutover waited for this: let it check again now
        cut = get_step(session.get(SourceGroup, step.group_id), "cutover")
        if cut is not None and cut.status == "due":
            cut.next_attempt_at = now
            session.add(cut)
    if step.kind == "cutover":
        group = session.get(SourceGroup, step.group_id)
        in_chat, total = coverage(group)
        queue_report(group, step, in_chat, total)
        for other in group_steps(group):  # the delta sync and the daily sync stop here
            if other.kind != "cutover" and other.status not in ("succeeded", "skipped"):
                other_before = other.status
                lifecycle.move(other, "succeeded")
                other.finished_at = now
                _change(other, "step.succeeded", user, other_before, reason="cutover")
        _maybe_complete_wave(step.wave_id)


def _maybe_complete_wave(wave_id: int) -> None:
    session = get_session()
    session.flush()
    open_ = session.scalar(select(sa.func.count()).select_from(Step).where(
        Step.wave_id == wave_id, Step.kind == "cutover",
        Step.status.not_in(("succeeded", "skipped"))))
    wave = session.get(Wave, wave_id)
    if not open_ and wave is not None and wave.status != "completed":
        before = wave.status
        wave.status = "completed"
        wave.updated_at = utcnow()
        session.add(wave)
        record("wave.complete", object_type="wave", object_id=wave.id, org_id=wave.org_id,
               summary={"before": before, "after": "completed"})


def override(step: Step, user, reason: str) -> None:
    """Cutover below the coverage threshold, with a written reason."""
    reason = (reason or "").strip()
    if step.kind != "cutover":
        raise ControlError(str(_l("Only the cutover can be overridden.")))
    if not reason:
        raise ControlError(str(_l("A reason is required.")))
    if step.status in ("succeeded", "skipped"):
        raise ControlError(str(_l("The cutover is already finished.")))
    before = step.status
    now = utcnow()
    step.override_at = now
    step.override_reason = reason[:2000]
    group = get_session().get(SourceGroup, step.group_id)
    if step.status != "waiting":
        if step.due_at <= now and cutover_blocker(step, group) is None:
            lifecycle.move(step, "waiting")
            step.last_error = None
            step.claimed_by = step.claimed_until = None
        elif step.status in ("due", "failed"):
            _due_now(step)
    _change(step, "step.override", user, before, reason=reason[:200])


def check(step: Step, action: str) -> None:
    """Refuse an administrator's ``reset``/``mark-failed`` that cannot apply to the step
    (shown on its confirmation page instead of the form)."""
    if action == "mark-failed" and step.status == "failed":
        raise ControlError(str(_l("The step has already failed.")))


def reset(step: Step, user, reason: str = "") -> None:
    """Admin: back to a fresh pending/due step (a stuck state anybody can clear); the reason
    is kept in the audit trail."""
    reason = (reason or "").strip()
    before = step.status
    step.attempts = 0
    step.last_error = None
    step.finished_at = None
    step.escalated_at = None
    step.confirmed_at = None
    step.next_attempt_at = step.due_at
    _forget_unsure_post(step)
    _due_now(step)
    _change(step, "step.reset", user, before, **({"reason": reason[:500]} if reason else {}))


def mark_failed(step: Step, user, reason: str) -> None:
    reason = (reason or "").strip() or "marked failed by an administrator"
    check(step, "mark-failed")
    before = step.status
    lifecycle.move(step, "failed")
    step.last_error = reason[:2000]
    step.finished_at = utcnow()
    step.claimed_by = step.claimed_until = None
    _change(step, "step.mark_failed", user, before, reason=reason[:500])


# -- dry run ----------------------------------------------------------------------------


def preview(group: SourceGroup) -> list[dict]:
    """What the next run would do for each open step: e-mails and Max API calls."""
    session = get_session()
    out = []
    for step in group_steps(group):
        if step.status in ("succeeded", "skipped", "failed", "paused"):
            continue
        item = {"kind": step.kind, "status": step.status, "due_at": step.next_attempt_at,
                "emails": 0, "api_calls": 0, "note": ""}
        if step.status == "waiting":  # nothing runs until the coordinator confirms
            item["note"] = str(_l("waits for the coordinator's confirmation"))
            item["emails"] = 1 if step.kind == "cutover" else 0  # then: the report
            out.append(item)
            continue
        if step.kind == "invite":
            unlinked = session.scalar(
                select(sa.func.count()).select_from(GroupMember)
                .join(Employee, Employee.id == GroupMember.employee_id)
                .where(GroupMember.group_id == group.id, Employee.max_user_id.is_(None),
                       GroupMember.invited_at.is_(None)))
            item["emails"] = unlinked or 0
            try:
                p = preview_invitations(
                    group, reminder_every_days=get_setting("reminder_interval_days"),
                    max_reminders=get_setting("max_reminders"))
                item["emails"] = p.invites + p.reminders
            except Exception:  # noqa: S110 (the plain count above stands)
                pass
        elif step.kind == "add_members":
            n = members_due(group.id)
            item["api_calls"] = math.ceil(n / BATCH)
            item["note"] = str(_l("%(n)d member(s) to add", n=n))
        elif step.kind == "announce":
            posted = step.message_id and not step.message_id.startswith("pending:")
            item["api_calls"] = 0 if step.pinned_at else (1 if posted else 3)
        elif step.kind == "parallel_run":
            item["api_calls"] = max(1, math.ceil(group.member_count / 100))
        elif step.kind == "cutover":
            blocker = cutover_blocker(step, group)
            if blocker is None:
                item["note"] = str(_l("ready for the coordinator's confirmation"))
            elif blocker.startswith("coverage"):
                item["note"] = str(_l("coverage below the threshold"))
            else:
                item["note"] = str(_l("waiting for the announcement to be confirmed"))
        if step.kind in ("add_members", "announce", "parallel_run"):
            try:
                linked_chat(group)
            except Exception:  # Postpone: say why nothing would happen
                item["note"] = str(_l("the group's Max chat is not ready (link or bot rights)"))
                item["api_calls"] = 0
        out.append(item)
    return out
