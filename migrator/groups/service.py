"""Source group queries used by several features: scoped look-up, member states, coverage."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from types import SimpleNamespace

import sqlalchemy as sa
from flask import abort
from sqlmodel import select

from migrator.auth.service import scoped
from migrator.db import get_session
from migrator.groups import states
from migrator.groups.models import GroupMember, SourceGroup
from migrator.people.models import Employee

IN_CHAT_STATUSES = states.IN_CHAT

# What a page shows of a member's way to the Max chat (migrator.groups.states), most
# advanced first; ``not_linked`` members are told apart by their invitation.
MEMBER_STATES = ("in_chat", "left", "unaddable", "invited_by_link", "retrying", "linked",
                 "reminded", "invited", "not_invited")


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
    in_chat = sa.func.count().filter(states.in_chat_condition())
    rows = get_session().execute(
        sa.select(GroupMember.group_id, in_chat, sa.func.count())
        .where(GroupMember.group_id.in_(ids)).group_by(GroupMember.group_id)
    ).all()
    return {gid: (int(n_in), int(n)) for gid, n_in, n in rows}


def member_state(member: GroupMember, employee: Employee | None = None) -> str:
    """One of :data:`MEMBER_STATES` for a member row."""
    if member.state in states.IN_CHAT:
        return "in_chat"
    if member.state == states.ADDING:
        return "retrying" if member.attempts > 1 else "linked"
    if member.state != states.NOT_LINKED:
        return member.state
    if member.reminded_at is not None:
        return "reminded"
    if member.invited_at is not None:
        return "invited"
    return "not_invited"


def member_state_condition(state: str):
    """A WHERE clause selecting members in the displayed ``state``."""
    waiting = GroupMember.state == states.NOT_LINKED
    adding = GroupMember.state == states.ADDING
    conditions = {
        "in_chat": states.in_chat_condition(),
        "left": GroupMember.state == states.LEFT,
        "unaddable": GroupMember.state == states.UNADDABLE,
        "invited_by_link": GroupMember.state == states.INVITED_BY_LINK,
        "retrying": sa.or_(GroupMember.state == states.RETRYING,
                           sa.and_(adding, GroupMember.attempts > 1)),
        "linked": sa.or_(GroupMember.state == states.LINKED,
                         sa.and_(adding, GroupMember.attempts <= 1)),
        "reminded": sa.and_(waiting, GroupMember.reminded_at.is_not(None)),
        "invited": sa.and_(waiting, GroupMember.reminded_at.is_(None),
                           GroupMember.invited_at.is_not(None)),
        "not_invited": sa.and_(waiting, GroupMember.reminded_at.is_(None),
                               GroupMember.invited_at.is_(None)),
    }
    return conditions[state]


def member_state_counts(group: SourceGroup) -> dict[str, int]:
    """How many members of ``group`` are in each of :data:`MEMBER_STATES` (one query).

    The members are counted by the columns :func:`member_state` reads, and each bucket is
    labelled by :func:`member_state` itself: the counts and the labels of the rows agree
    (:func:`member_state_condition` is the same rule in SQL, for filtering)."""
    counts = dict.fromkeys(MEMBER_STATES, 0)
    q = (sa.select(GroupMember.state, GroupMember.attempts,
                   GroupMember.reminded_at.is_not(None), GroupMember.invited_at.is_not(None),
                   sa.func.count())
         .where(GroupMember.group_id == group.id)
         .group_by(GroupMember.state, GroupMember.attempts,
                   GroupMember.reminded_at.is_not(None), GroupMember.invited_at.is_not(None)))
    for state, attempts, reminded, invited, n in get_session().execute(q):
        probe = SimpleNamespace(state=state, attempts=attempts or 0,
                                reminded_at=_SOME_TIME if reminded else None,
                                invited_at=_SOME_TIME if invited else None)
        counts[member_state(probe)] += n
    return counts


_SOME_TIME = datetime(2000, 1, 1, tzinfo=UTC)  # a stand-in: member_state reads only "is set"


# People Max refused (for good, or for now): the add step's failures, by reason.
REFUSED_STATES = (states.UNADDABLE, states.INVITED_BY_LINK, states.RETRYING)
UNKNOWN_REASON = "unknown"  # a refused member whose row holds no reason code


def refused_condition(reason: str | None = None):
    """A WHERE clause: members Max refused (``reason``: only those refused with that code;
    :data:`UNKNOWN_REASON` for the ones without a code)."""
    cond = GroupMember.state.in_(REFUSED_STATES)
    if reason is None:
        return cond
    if reason == UNKNOWN_REASON:
        return sa.and_(cond, GroupMember.reason.is_(None))
    return sa.and_(cond, GroupMember.reason == reason)


def refused_reason_counts(group: SourceGroup) -> dict[str, int]:
    """``{reason code: members}`` of the members Max refused, most frequent first."""
    code = sa.func.coalesce(GroupMember.reason, UNKNOWN_REASON)
    rows = get_session().execute(
        sa.select(code, sa.func.count()).where(GroupMember.group_id == group.id,
                                               refused_condition())
        .group_by(code).order_by(sa.func.count().desc(), code)).all()
    return {str(c): int(n) for c, n in rows}
