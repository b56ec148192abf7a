"""Adding members: every membership on its own clock, ≤100 ids per call per chat."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import select

from migrator.attention.service import raise_item, sync_unaddable
from migrator.audit.service import record
from migrator.db import get_session, utcnow
from migrator.engine import fallback, leases
from migrator.engine.kinds.base import BATCH, backoff, linked_chat
from migrator.engine.models import Step
from migrator.engine.outcomes import Outcome, cfg
from migrator.groups import attention, states
from migrator.groups.models import GroupMember, SourceGroup
from migrator.max.errors import MaxError, MaxRateLimited, MaxSoftFailure
from migrator.max.models import MaxChat, MaxChatMember
from migrator.people.models import Employee

log = logging.getLogger("migrator.engine")


# -- add_members -------------------------------------------------------------------------
#
# The step is *open* from its due time until cutover: every run adds each linked member
# whose own time has come (``GroupMember.next_attempt_at``), in calls of at most 100 ids
# per Max chat; one call serves every group linked to that chat. A member's failure only
# moves that member's own clock: it never holds back another member or the announcement.


def _chat_groups(chat: MaxChat) -> list[int]:
    """Groups linked to ``chat`` whose add step is open (due time passed, before cutover)."""
    session = get_session()
    closed = select(Step.group_id).where(Step.kind == "cutover",
                                         Step.status.in_(("succeeded", "skipped")))
    return list(session.exec(
        select(Step.group_id)
        .join(SourceGroup, SourceGroup.id == Step.group_id)
        .where(SourceGroup.max_chat_id == chat.id, Step.kind == "add_members",
               Step.status.in_(("due", "running", "succeeded")),
               Step.group_id.not_in(closed))).all())


def _due_members(group_ids: list[int], now: datetime, where) -> dict[int, list[GroupMember]]:
    """``{max_user_id: [memberships]}`` of members matching ``where`` whose time has come."""
    rows = get_session().exec(
        select(GroupMember, Employee.max_user_id)
        .join(Employee, Employee.id == GroupMember.employee_id)
        .where(GroupMember.group_id.in_(group_ids), Employee.max_user_id.is_not(None), where,
               sa.or_(GroupMember.next_attempt_at.is_(None),
                      GroupMember.next_attempt_at <= now))
        .order_by(Employee.max_user_id)).all()
    by_user: dict[int, list[GroupMember]] = {}
    for member, uid in rows:
        by_user.setdefault(uid, []).append(member)
    return by_user


def members_due(group_id: int, now: datetime | None = None) -> int:
    """How many members of the group the next run would try to add."""
    return sum(len(m) for m in _due_members(
        [group_id], now or utcnow(),
        GroupMember.state.in_((*states.TO_ADD, states.ADDING))).values())


def _recover_in_flight(chat: MaxChat, group_ids: list[int], client, now: datetime) -> None:
    """Members left ``adding`` by a run that died or got no answer: ask the chat once."""
    in_flight = _due_members(group_ids, now, GroupMember.state == states.ADDING)
    if not in_flight:
        return
    get_session().commit()
    present = {m["user_id"] for m in client.iter_members(chat.chat_id)}
    for uid, members in in_flight.items():
        for member in members:
            if uid in present:
                states.move(member, states.ADDED, now=now)
            else:  # the call never reached Max: due again at once
                states.move(member, states.RETRYING, reason=member.reason or "max.unavailable",
                            next_attempt_at=now, now=now)
    get_session().commit()


def _known_present(chat: MaxChat, by_user: dict[int, list[GroupMember]], now) -> None:
    """Members the app already knows to be in the chat (updates, syncs): no call."""
    known = set(get_session().exec(
        select(MaxChatMember.max_user_id).where(MaxChatMember.chat_id == chat.id,
                                                MaxChatMember.is_present.is_(True))).all())
    for uid in [u for u in by_user if u in known]:
        for member in by_user.pop(uid):
            states.move(member, states.JOINED, now=now)


def _apply_result(members: list[GroupMember], code: str | None, now: datetime,
                  newly_unaddable: list[GroupMember]) -> None:
    """One person's answer from Max, applied to each of their memberships."""
    for member in members:
        if code is None:
            states.move(member, states.ADDED, now=now)
        elif code in attention.PERMANENT_ADD_CODES:
            if member.attempts >= cfg("MEMBER_MAX_ATTEMPTS"):
                states.move(member, states.UNADDABLE, reason=code, now=now)
                newly_unaddable.append(member)
            else:
                delay = backoff(member.attempts, cfg("MEMBER_RETRY_SECONDS"),
                                 cfg("MEMBER_RETRY_MAX_SECONDS"))
                states.move(member, states.RETRYING, reason=code, now=now,
                            next_attempt_at=now + timedelta(seconds=delay))
        else:
            _transient(member, code, now)


def _transient(member: GroupMember, code: str, now: datetime,
               at_least: float = 0) -> None:
    delay = max(at_least, backoff(member.attempts, cfg("MEMBER_BACKOFF_SECONDS"),
                                   cfg("MEMBER_RETRY_MAX_SECONDS")))
    states.move(member, states.RETRYING, reason=code, now=now,
                next_attempt_at=now + timedelta(seconds=delay))


def run_add_members(step, group, client_factory, rid) -> Outcome:
    session = get_session()
    chat = linked_chat(group, client_factory)
    now = utcnow()
    group_ids = sorted(set(_chat_groups(chat)) | {group.id})
    # a Max account bound without a Start press through us (e.g. registered by an admin)
    states.move_where(states.LINKED, GroupMember.group_id.in_(group_ids),
                      GroupMember.state == states.NOT_LINKED,
                      GroupMember.employee_id.in_(select(Employee.id).where(
                          Employee.max_user_id.is_not(None))), now=now, next_attempt_at=now)
    client = client_factory()
    _recover_in_flight(chat, group_ids, client, now)
    by_user = _due_members(group_ids, now, GroupMember.state.in_(states.TO_ADD))
    _known_present(chat, by_user, now)
    session.commit()
    users = list(by_user)
    added = failed = 0
    newly_unaddable: list[GroupMember] = []
    for i in range(0, len(users), BATCH):
        batch = users[i:i + BATCH]
        now = utcnow()
        for uid in batch:  # the intent, committed before the call
            for member in by_user[uid]:
                member.attempts += 1
                states.move(member, states.ADDING, reason=member.reason, now=now)
        leases.renew(step)  # a long step: at each chunk's commit
        session.commit()
        try:
            result = client.add_members(chat.chat_id, batch)
        except MaxError as exc:
            _batch_failed(exc, [m for uid in batch for m in by_user[uid]])
            session.commit()
            if not exc.retryable:
                raise  # 401, 403, 404: the chat or the token, not these members
            if isinstance(exc, MaxRateLimited):
                break  # the rest keep their turn; the step comes back when Max allows
            continue
        now = utcnow()
        for uid in batch:
            code = result.reason_for(uid)
            _apply_result(by_user[uid], code, now, newly_unaddable)
            added += code is None
            failed += code is not None
        record("members.add", object_type="group", object_id=group.id, org_id=group.org_id,
               summary={"chat_id": chat.chat_id, "requested": len(batch),
                        "failed": len(result.failed_user_ids),
                        "groups": [g for g in group_ids if g != group.id] or None})
        session.commit()
    for member in newly_unaddable:
        flag_member(member)
    fallback.offer_links(chat, newly_unaddable, client)  # the chat's join link, or ask for one
    sync_unaddable(group)
    session.commit()
    return _add_outcome(step, group, {"added": added, "failed": failed})


def _batch_failed(exc: MaxError, members: list[GroupMember]) -> None:
    """A whole add call failed: nobody in it is added, each waits on their own clock."""
    now = utcnow()
    for member in members:
        if not exc.retryable:  # refused as a whole (rights, token): not a member's failure
            member.attempts = max(member.attempts - 1, 0)
            states.move(member, states.RETRYING, reason=member.reason, now=now,
                        next_attempt_at=now)
        elif isinstance(exc, MaxRateLimited):
            member.attempts = max(member.attempts - 1, 0)
            _transient(member, "max.rate_limited", now, at_least=exc.retry_after or 1)
        elif isinstance(exc, MaxSoftFailure):
            _transient(member, "max.soft_failure", now)
        else:
            # No answer or a 5xx: Max may have added them. They stay ``adding`` and the
            # next run asks the chat before calling again (never a second add).
            delay = backoff(member.attempts, cfg("MEMBER_BACKOFF_SECONDS"),
                             cfg("MEMBER_RETRY_MAX_SECONDS"))
            member.reason = "max.unavailable"
            member.next_attempt_at = now + timedelta(seconds=delay)
            get_session().add(member)
    record("members.add_failed", object_type="group",
           object_id=members[0].group_id if members else None,
           summary={"requested": len(members), "error": str(exc)[:200],
                    "retryable": exc.retryable})


def flag_member(member: GroupMember) -> None:
    """An attention item for a member Max will not add (resolved once they are in)."""
    group = get_session().get(SourceGroup, member.group_id)
    raise_item("member", member.employee_id, attention.MEMBER_UNADDABLE,
               org_id=group.org_id if group else None, group_id=member.group_id,
               reason=member.reason or "unknown")


def _add_outcome(step: Step, group: SourceGroup, info: dict) -> Outcome:
    """Due again when the earliest waiting member's time comes; else done (for now)."""
    session = get_session()
    step.finished_at = utcnow()  # a pass completed: the announcement need not wait
    waiting = (GroupMember.group_id == group.id,
               GroupMember.state.in_((*states.TO_ADD, states.ADDING)))
    linked = select(Employee.id).where(Employee.max_user_id.is_not(None))
    next_at = session.scalar(select(sa.func.min(sa.func.coalesce(
        GroupMember.next_attempt_at, utcnow()))).where(*waiting,
                                                       GroupMember.employee_id.in_(linked)))
    counts = dict(session.exec(
        select(GroupMember.state, sa.func.count()).where(GroupMember.group_id == group.id)
        .group_by(GroupMember.state)).all())
    info = {**info, "unaddable": counts.get(states.UNADDABLE, 0),
            "retrying": counts.get(states.RETRYING, 0) + counts.get(states.ADDING, 0)}
    if next_at is not None:
        again = max((next_at - utcnow()).total_seconds(), 0)
        return Outcome("due", again_in=again, info=info)
    return Outcome("succeeded", info=info)
