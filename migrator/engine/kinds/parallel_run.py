"""The parallel run: the chat's member list followed, people who joined by themselves."""

from __future__ import annotations

import logging

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import select

from migrator.attention.service import resolve, sync_unaddable
from migrator.db import get_session, utcnow
from migrator.engine.kinds.base import linked_chat
from migrator.engine.outcomes import Outcome, cfg
from migrator.groups import attention, states
from migrator.groups.models import GroupMember, SourceGroup
from migrator.max.models import MaxChat, MaxChatMember
from migrator.people.models import Employee

log = logging.getLogger("migrator.engine")


# -- parallel_run ------------------------------------------------------------------------


def sync_members(group: SourceGroup, chat: MaxChat, client) -> dict:
    """The chat's member list → MaxChatMember, and people who joined by themselves.

    The list is a picture of the moment it was read: a row changed since then (an add call
    that landed, a webhook) knows better, and the list does not overwrite it."""
    session = get_session()
    session.commit()
    read_at = utcnow()
    present = {m["user_id"] for m in client.iter_members(chat.chat_id)}
    rows = {r.max_user_id: r for r in session.exec(
        select(MaxChatMember).where(MaxChatMember.chat_id == chat.id)).all()}
    now = utcnow()
    new = [uid for uid in present if uid not in rows]
    if new:  # a webhook may insert the same person meanwhile: that row stands
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(dialect.insert(MaxChatMember).values([
            {"chat_id": chat.id, "max_user_id": uid, "is_present": True, "last_event_ts": 0,
             "updated_at": now} for uid in new]).on_conflict_do_nothing())
    rows = {uid: row for uid, row in rows.items() if row.updated_at <= read_at}
    for uid in present:
        row = rows.get(uid)
        if row is not None and not row.is_present:
            row.is_present = True
            row.updated_at = now
            session.add(row)
    for uid, row in rows.items():
        if uid not in present and row.is_present:
            row.is_present = False
            row.updated_at = now
            session.add(row)
    joined = left = 0
    for member, uid in session.exec(
        select(GroupMember, Employee.max_user_id)
        .join(Employee, Employee.id == GroupMember.employee_id)
        .where(GroupMember.group_id == group.id, Employee.max_user_id.is_not(None))
    ).all():
        if member.state_at is not None and member.state_at > read_at:
            continue  # changed after the list was read
        if uid in present and member.state not in states.IN_CHAT:
            was = member.state
            if was == states.ADDING:  # our call went through before a run died
                states.move(member, states.ADDED, now=now)
            else:
                states.move(member, states.JOINED, now=now)
                joined += 1
            if was in states.STUCK:
                resolve("member", member.employee_id, attention.MEMBER_UNADDABLE,
                        group_id=group.id)
        elif uid not in present and member.state in states.IN_CHAT:
            states.move(member, states.LEFT, now=now)
            left += 1
    sync_unaddable(group)
    session.commit()
    return {"in_chat": len(present), "joined_by_themselves": joined, "left": left}


def run_parallel(step, group, client_factory, rid) -> Outcome:
    chat = linked_chat(group, client_factory)
    info = sync_members(group, chat, client_factory())
    return Outcome("due", again_in=cfg("PARALLEL_SYNC_SECONDS"), info=info)
