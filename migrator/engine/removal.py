"""Removing people from a Max chat, crash-safe: the one loop behind undoing a group's move
(:mod:`migrator.engine.rollback`) and unbinding an employee's Max account
(:mod:`migrator.engine.unlink`).

Each row to handle has ``max_user_id``, ``status`` (``planned`` → ``removing`` → ``removed``,
or ``absent``/``kept``) and ``updated_at``. The chat's member list is read first, so a person
no longer there counts as removed (after our earlier call: ``removing``) or ``absent``
without a call; before each ``DELETE /chats/{chatId}/members`` the intent (``removing``) is
committed, so nobody is removed twice. The chat's owner and admins always stay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import sqlalchemy as sa
from sqlmodel import select

from migrator.db import get_session, utcnow
from migrator.groups import states
from migrator.groups.models import GroupMember, SourceGroup
from migrator.max.models import MaxChat
from migrator.people.models import Employee

TODO = ("planned", "removing")


def remove_listed(chat_id: int, rows: Iterable, client, *,
                  keep: Callable[[object, dict], bool], out: Callable[[object], None],
                  renew: Callable[[], None]) -> None:
    """Handle each row (``planned`` or ``removing``) of one chat, committing after each.

    ``keep(row, there)``: the person stays (besides owners and admins); ``out(row)``: the
    person is out of the chat (``row.status`` is ``removed`` or ``absent``), in the row's
    transaction; ``renew()``: extend the caller's lease before a call."""
    session = get_session()
    rows = list(rows)
    if not rows:
        return
    session.commit()
    present = {m["user_id"]: m for m in client.iter_members(chat_id)}
    for row in rows:
        _lock_chat(chat_id)
        there = present.get(row.max_user_id)
        if there is None:  # gone already: by our earlier call, or by themselves
            row.status = "removed" if row.status == "removing" else "absent"
            out(row)
        elif there.get("is_owner") or there.get("is_admin") or keep(row, there):
            row.status = "kept"
        else:
            row.status = "removing"  # the intent, committed before the call
            row.updated_at = utcnow()
            session.add(row)
            renew()
            session.commit()
            client.remove_member(chat_id, row.max_user_id)
            _lock_chat(chat_id)
            row.status = "removed"
            out(row)
        row.updated_at = utcnow()
        session.add(row)
        session.commit()


def _lock_chat(chat_id: int) -> None:
    """Take the chat's row lock first, as the membership webhooks do (``user_removed`` for
    the very person being removed may be applied at the same moment): the same order, so
    the two wait for each other instead of deadlocking over the member rows."""
    get_session().exec(select(MaxChat.id).where(MaxChat.chat_id == chat_id)
                       .with_for_update()).first()


def needed_in_chat(chat_pk: int, max_user_id: int, *, employee_id: int | None = None,
                   not_group: int | None = None, not_employee: int | None = None) -> bool:
    """The account belongs in the chat through a membership other than the one being undone:
    of this employee (``employee_id``) or of any record linked to the same Max account (one
    person, two records), in a group linked to the chat, in it or being added."""
    whose = Employee.max_user_id == max_user_id
    if employee_id is not None:
        whose = sa.or_(whose, GroupMember.employee_id == employee_id)
    where = [whose, GroupMember.state.in_((*states.IN_CHAT, states.ADDING)),
             GroupMember.group_id.in_(select(SourceGroup.id).where(
                 SourceGroup.max_chat_id == chat_pk))]
    if not_group is not None:
        where.append(GroupMember.group_id != not_group)
    if not_employee is not None:
        where.append(GroupMember.employee_id != not_employee)
    return bool(get_session().scalar(select(sa.exists().where(
        GroupMember.employee_id == Employee.id, *where))))
