"""The parallel run follows the chat's member list, and the list is a picture of the moment
it was read: what happened after (an add call of another runner, a webhook) stands."""

from __future__ import annotations

import sqlalchemy as sa
from enginetest import member

from migrator.db import get_session, utcnow
from migrator.engine.kinds.parallel_run import sync_members
from migrator.engine.maxclient import client_factory
from migrator.groups import states
from migrator.groups.models import GroupMember
from migrator.max.models import MaxChat


def _meanwhile(action):
    """A client whose member list is read first, then ``action`` happens (another process)."""
    client = client_factory()()
    read = client.iter_members

    def iter_members(chat_id, **kw):
        members = list(read(chat_id, **kw))
        action()
        return iter(members)

    client.iter_members = iter_members
    return client


def _set_state(group, emp, state: str) -> None:
    """Another process moves the membership and commits."""
    session = get_session()
    session.execute(sa.update(GroupMember).where(
        GroupMember.group_id == group.id, GroupMember.employee_id == emp.id)
        .values(state=state, state_at=utcnow()).execution_options(synchronize_session=False))
    session.commit()


def test_an_add_landing_after_the_list_was_read_is_not_undone(world, sandbox):
    org, group, emps, chat_id, admin = world(n=3)
    for emp in emps:
        states.move(member(group, emp), states.LINKED)
    get_session().commit()
    late = emps[0]

    def added_meanwhile():
        sandbox.join(chat_id, late.max_user_id)
        _set_state(group, late, states.ADDED)

    chat = get_session().scalar(sa.select(MaxChat).where(MaxChat.chat_id == chat_id))
    info = sync_members(group, chat, _meanwhile(added_meanwhile))
    assert member(group, late).state == states.ADDED
    assert info["left"] == 0
    # the next sync reads a list that has them, and agrees
    sandbox.join(chat_id, emps[1].max_user_id)
    info = sync_members(group, chat, client_factory()())
    assert member(group, late).state == states.ADDED
    assert member(group, emps[1]).state == states.JOINED
    assert info == {"in_chat": len(sandbox.members(chat_id)), "joined_by_themselves": 1,
                    "left": 0}


def test_a_leave_after_the_list_was_read_is_not_undone(world, sandbox):
    org, group, emps, chat_id, admin = world(n=2)
    gone = emps[0]
    sandbox.join(chat_id, gone.max_user_id)
    chat = get_session().scalar(sa.select(MaxChat).where(MaxChat.chat_id == chat_id))
    sync_members(group, chat, client_factory()())
    assert member(group, gone).state == states.JOINED

    def left_meanwhile():
        sandbox.leave(chat_id, gone.max_user_id)
        _set_state(group, gone, states.LEFT)

    info = sync_members(group, chat, _meanwhile(left_meanwhile))
    assert member(group, gone).state == states.LEFT
    assert info["joined_by_themselves"] == 0
