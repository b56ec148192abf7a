"""Source group queries used by several features: scoped look-up, member states, coverage."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from flask import abort
from sqlmodel import select

from migrator.auth.service import scoped
from migrator.db import get_session
from migrator.groups.models import GroupMember, SourceGroup
from migrator.people.models import Employee

IN_CHAT_STATUSES = ("added", "already")

# The state of a member on the way to the Max chat, most advanced first.
MEMBER_STATES = ("in_chat", "failed", "linked", "reminded", "invited", "not_invited")


def find_group_by_key(key: str, user=None) -> SourceGroup | None:
    """The group with ``key`` if the (current) user may see it, else ``None`` (for the API)."""
    query = scoped(select(SourceGroup).where(SourceGroup.key == key), SourceGroup.org_id, user)
    return get_session().exec(query).first()


def get_group_by_key(key: str, user=None) -> SourceGroup:
    """The group with ``key`` if the (current) user may see it; 404 otherwise."""
    group = find_group_by_key(key, user)
    if group is None:
        abort(404)
    return group


def coverage(group: SourceGroup) -> tuple[int, int]:
    """``(members in the Max chat, all members)`` of one group."""
    return coverage_for([group.id]).get(group.id, (0, 0))


def coverage_for(group_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """``{group_id: (in_chat, total)}`` for several groups in one query."""
    ids = list(group_ids)
    if not ids:
        return {}
    in_chat = sa.func.count().filter(GroupMember.add_status.in_(IN_CHAT_STATUSES))
    rows = get_session().execute(
        sa.select(GroupMember.group_id, in_chat, sa.func.count())
        .where(GroupMember.group_id.in_(ids)).group_by(GroupMember.group_id)
    ).all()
    return {gid: (int(n_in), int(n)) for gid, n_in, n in rows}


def member_state(member: GroupMember, employee: Employee) -> str:
    """One of :data:`MEMBER_STATES` for a member row and its employee."""
    if member.add_status in IN_CHAT_STATUSES:
        return "in_chat"
    if member.add_status == "failed":
        return "failed"
    if employee.max_user_id is not None:
        return "linked"
    if member.reminded_at is not None:
        return "reminded"
    if member.invited_at is not None:
        return "invited"
    return "not_invited"


def member_state_condition(state: str):
    """A WHERE clause selecting members (joined with their employee) in ``state``."""
    in_chat = GroupMember.add_status.in_(IN_CHAT_STATUSES)
    failed = GroupMember.add_status == "failed"
    open_ = sa.and_(~in_chat, ~failed)
    linked = Employee.max_user_id.is_not(None)
    conditions = {
        "in_chat": in_chat,
        "failed": failed,
        "linked": sa.and_(open_, linked),
        "reminded": sa.and_(open_, ~linked, GroupMember.reminded_at.is_not(None)),
        "invited": sa.and_(open_, ~linked, GroupMember.reminded_at.is_(None),
                           GroupMember.invited_at.is_not(None)),
        "not_invited": sa.and_(open_, ~linked, GroupMember.reminded_at.is_(None),
                               GroupMember.invited_at.is_(None)),
    }
    return conditions[state]


def member_state_counts(group: SourceGroup) -> dict[str, int]:
    """How many members of ``group`` are in each of :data:`MEMBER_STATES` (one query)."""
    columns = [sa.func.count().filter(member_state_condition(s)) for s in MEMBER_STATES]
    row = get_session().execute(
        sa.select(*columns).select_from(GroupMember)
        .join(Employee, Employee.id == GroupMember.employee_id)
        .where(GroupMember.group_id == group.id)
    ).one()
    return {s: int(n or 0) for s, n in zip(MEMBER_STATES, row, strict=True)}
