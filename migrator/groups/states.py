"""A membership's way into the Max chat: the one definition of member states.

| state             | meaning                                              | set by          |
| ----------------- | ---------------------------------------------------- | --------------- |
| ``not_linked``    | no Max account linked yet                            | import          |
| ``linked``        | pressed Start, not in the chat yet                   | ``bot_started`` |
| ``adding``        | an add call is in flight (intent written first)      | engine          |
| ``added``         | in the chat through the tool's add call              | engine          |
| ``retrying``      | a failure; waits for its own ``next_attempt_at``     | engine          |
| ``unaddable``     | a permanent failure, with its reason                 | engine          |
| ``invited_by_link`` | sent the chat's join link (the fallback)           | engine          |
| ``joined``        | in the chat on their own, or through the link        | ``user_added``  |
| ``left``          | left or was removed from the chat                    | ``user_removed`` |

"Brought in by the tool" (``by_tool``) means ``added``, or ``joined`` after
``invited_by_link``: exactly the people a rollback may remove again.

Every change of state goes through :func:`move` (one row) or :func:`move_where` (a set of
rows in one UPDATE); both refuse a transition the table below does not allow.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from migrator.db import get_session, utcnow
from migrator.groups.models import GroupMember
from migrator.people.models import Employee

NOT_LINKED = "not_linked"
LINKED = "linked"
ADDING = "adding"
ADDED = "added"
RETRYING = "retrying"
UNADDABLE = "unaddable"
INVITED_BY_LINK = "invited_by_link"
JOINED = "joined"
LEFT = "left"

STATES = (NOT_LINKED, LINKED, ADDING, ADDED, RETRYING, UNADDABLE, INVITED_BY_LINK, JOINED,
          LEFT)
IN_CHAT = (ADDED, JOINED)
# Waiting for the tool to add them (once their own next_attempt_at has come).
TO_ADD = (LINKED, RETRYING)
# Not in the chat and not expected to get there without someone doing something.
STUCK = (UNADDABLE, INVITED_BY_LINK)

# GroupMember.reason of a ``left`` member whom a rollback of the group's move took out
ROLLED_BACK = "rollback"
# GroupMember.reason of a ``left`` member whose Max account was unbound by a coordinator
# (and removed from the chat): added again once the employee links their own account
UNLINKED = "unlinked"

_OUT_OF_CHAT = (NOT_LINKED, LINKED, RETRYING, UNADDABLE, INVITED_BY_LINK, LEFT)

# state -> the states it may move to
TRANSITIONS: dict[str, frozenset[str]] = {
    NOT_LINKED: frozenset({LINKED, JOINED}),
    LINKED: frozenset({ADDING, JOINED, NOT_LINKED, UNADDABLE}),
    ADDING: frozenset({ADDED, RETRYING, UNADDABLE, LINKED, JOINED}),
    RETRYING: frozenset({ADDING, JOINED, LINKED, NOT_LINKED, UNADDABLE}),
    UNADDABLE: frozenset({INVITED_BY_LINK, JOINED, LINKED, NOT_LINKED}),
    INVITED_BY_LINK: frozenset({JOINED, LINKED, NOT_LINKED, UNADDABLE}),
    ADDED: frozenset({LEFT}),
    JOINED: frozenset({LEFT}),
    LEFT: frozenset({JOINED, LINKED, NOT_LINKED}),
}


class IllegalTransition(ValueError):
    """A member state change that the transition table does not allow."""

    def __init__(self, before: str, after: str):
        super().__init__(f"a member cannot move from {before!r} to {after!r}")
        self.before, self.after = before, after


def allowed(before: str, after: str) -> bool:
    return after in TRANSITIONS.get(before, frozenset())


def move(member: GroupMember, after: str, *, reason: str | None = None,
         next_attempt_at: datetime | None = None, now: datetime | None = None) -> None:
    """Move one membership to ``after`` (not committed); raises :class:`IllegalTransition`."""
    before = member.state
    if before == after:
        return
    if not allowed(before, after):
        raise IllegalTransition(before, after)
    now = now or utcnow()
    member.state = after
    member.state_at = now
    member.next_attempt_at = next_attempt_at
    if after in (RETRYING, UNADDABLE):
        member.reason = (reason or "")[:500] or None
    elif after in (ADDED, JOINED, LINKED, NOT_LINKED):
        member.reason = None
    if after == ADDED:
        member.by_tool = True
        member.added_at = member.added_at or now
    elif after == JOINED:
        # through the chat's join link the tool sent: still brought in by the tool
        member.by_tool = before == INVITED_BY_LINK
        member.added_at = member.added_at or now
    elif after == LEFT:
        member.by_tool = False
    if after == LINKED:
        member.attempts = 0 if before in (UNADDABLE, INVITED_BY_LINK, LEFT) else member.attempts
    get_session().add(member)


def move_where(after: str, *where, now: datetime | None = None, **values) -> int:
    """Move every membership matching ``where`` from any state allowed to reach ``after``
    (one UPDATE, not committed); returns how many moved. Rows in other states stay."""
    now = now or utcnow()
    sources = [s for s in STATES if allowed(s, after)]
    session = get_session()
    result = session.execute(
        sa.update(GroupMember)
        .where(GroupMember.state.in_(sources), *where)
        .values(state=after, state_at=now, **values)
        .execution_options(synchronize_session=False))
    if result.rowcount:  # rows loaded earlier in this session are read afresh
        for obj in list(session.identity_map.values()):
            if isinstance(obj, GroupMember):
                session.expire(obj)
    return result.rowcount or 0


def link_employee(employee_id: int, now: datetime | None = None) -> int:
    """The employee pressed Start: their memberships waiting for a Max account (and those
    whose previous, unbound account was taken out of the chat) can be added now (each at
    once: ``next_attempt_at`` is now)."""
    now = now or utcnow()
    return move_where(LINKED, GroupMember.employee_id == employee_id,
                      sa.or_(GroupMember.state == NOT_LINKED,
                             sa.and_(GroupMember.state == LEFT, GroupMember.reason == UNLINKED)),
                      now=now, next_attempt_at=now, reason=None, attempts=0)


def unlink_employee(employee_id: int, now: datetime | None = None) -> int:
    """The employee's Max account was unbound: memberships not in the chat wait again."""
    return move_where(NOT_LINKED, GroupMember.employee_id == employee_id,
                      GroupMember.state.in_(_OUT_OF_CHAT), now=now, next_attempt_at=None,
                      reason=None)


def readmit_rolled_back(group_ids, now: datetime | None = None) -> int:
    """Members a rollback took out wait to be added again (their group planned anew)."""
    with_max = sa.select(Employee.id).where(Employee.max_user_id.is_not(None))
    return move_where(LINKED, GroupMember.group_id.in_(list(group_ids)),
                      GroupMember.state == LEFT, GroupMember.reason == ROLLED_BACK,
                      GroupMember.employee_id.in_(with_max), now=now,
                      next_attempt_at=None, reason=None)


def linked_state_for(max_user_id) -> str:
    """The state of a new membership: ``linked`` when the employee already has Max."""
    return LINKED if max_user_id is not None else NOT_LINKED


def in_chat_condition():
    """SQL: the membership is in the Max chat (what coverage counts)."""
    return GroupMember.state.in_(IN_CHAT)
