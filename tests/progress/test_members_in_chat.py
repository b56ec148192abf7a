"""``source_group.members_in_chat`` is kept exact by the database on every write path.

The region-wide figures read the counter instead of counting memberships, so it must equal
a recount after any mix of writes: ORM inserts, updates and deletes, bulk ``executemany``
inserts (the imports and the seeder), set-based ``UPDATE ... WHERE`` (the engine's
``move_where``), moves between groups and deletes of whole groups' members.
"""

from __future__ import annotations

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.db import get_session
from migrator.groups import states
from migrator.groups.models import GroupMember, SourceGroup
from migrator.progress import service

STATES = (states.NOT_LINKED, states.LINKED, states.ADDING, states.ADDED, states.RETRYING,
          states.UNADDABLE, states.INVITED_BY_LINK, states.JOINED, states.LEFT)
GROUPS, PEOPLE = 3, 5

ops = st.lists(st.one_of(
    st.tuples(st.just("insert"), st.integers(0, GROUPS - 1), st.integers(0, PEOPLE - 1),
              st.sampled_from(STATES)),
    st.tuples(st.just("bulk_insert"), st.integers(0, GROUPS - 1),
              st.lists(st.sampled_from(STATES), min_size=1, max_size=PEOPLE)),
    st.tuples(st.just("set"), st.integers(0, GROUPS - 1), st.integers(0, PEOPLE - 1),
              st.sampled_from(STATES)),
    st.tuples(st.just("set_where"), st.integers(0, GROUPS - 1), st.sampled_from(STATES),
              st.sampled_from(STATES)),
    st.tuples(st.just("move"), st.integers(0, GROUPS - 1), st.integers(0, PEOPLE - 1),
              st.integers(0, GROUPS - 1)),
    st.tuples(st.just("delete"), st.integers(0, GROUPS - 1), st.integers(0, PEOPLE - 1)),
    st.tuples(st.just("delete_group"), st.integers(0, GROUPS - 1)),
    st.tuples(st.just("rollback"), st.integers(0, GROUPS - 1), st.sampled_from(STATES)),
), max_size=25)


def _recount(session, group_ids) -> dict[int, tuple[int, int]]:
    kept = dict(session.execute(sa.select(SourceGroup.id, SourceGroup.members_in_chat)
                                .where(SourceGroup.id.in_(group_ids))).all())
    counted = dict(session.execute(
        sa.select(GroupMember.group_id, sa.func.count())
        .where(GroupMember.group_id.in_(group_ids), states.in_chat_condition())
        .group_by(GroupMember.group_id)).all())
    return {g: (kept[g], counted.get(g, 0)) for g in group_ids}


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops)
def test_counter_equals_a_recount_after_any_writes(ctx, make_org, make_employee, make_group,
                                                   ops):
    session = get_session()
    org = make_org()
    people = [make_employee(org) for _ in range(PEOPLE)]
    groups = [make_group(org) for _ in range(GROUPS)]
    gid = [g.id for g in groups]
    table = GroupMember.__table__

    def exists(g, p):
        return session.get(GroupMember, (gid[g], people[p].id)) is not None

    for op in ops:
        kind = op[0]
        if kind == "insert" and not exists(op[1], op[2]):
            session.add(GroupMember(group_id=gid[op[1]], employee_id=people[op[2]].id,
                                    state=op[3]))
        elif kind == "bulk_insert":
            rows = [{"group_id": gid[op[1]], "employee_id": people[p].id, "state": s,
                     "reminder_count": 0, "attempts": 0, "by_tool": False,
                     "created_at": service.utcnow()}
                    for p, s in enumerate(op[2]) if not exists(op[1], p)]
            if rows:
                session.execute(table.insert(), rows)
        elif kind == "set" and exists(op[1], op[2]):
            session.get(GroupMember, (gid[op[1]], people[op[2]].id)).state = op[3]
        elif kind == "set_where":
            session.execute(sa.update(GroupMember)
                            .where(GroupMember.group_id == gid[op[1]],
                                   GroupMember.state == op[2])
                            .values(state=op[3]).execution_options(synchronize_session=False))
        elif kind == "move" and exists(op[1], op[2]) and not exists(op[3], op[2]):
            session.execute(sa.update(GroupMember)
                            .where(GroupMember.group_id == gid[op[1]],
                                   GroupMember.employee_id == people[op[2]].id)
                            .values(group_id=gid[op[3]])
                            .execution_options(synchronize_session=False))
        elif kind == "delete" and exists(op[1], op[2]):
            session.delete(session.get(GroupMember, (gid[op[1]], people[op[2]].id)))
        elif kind == "delete_group":
            session.execute(sa.delete(GroupMember).where(GroupMember.group_id == gid[op[1]])
                            .execution_options(synchronize_session=False))
        elif kind == "rollback":  # the writes of a transaction that fails leave no trace
            before = _recount(session, gid)
            session.commit()
            session.execute(sa.update(GroupMember).where(GroupMember.group_id == gid[op[1]])
                            .values(state=op[2]).execution_options(synchronize_session=False))
            session.rollback()
            assert _recount(session, gid) == before
        session.flush()
        session.expire_all()
        for g, (kept, counted) in _recount(session, gid).items():
            assert kept == counted, (op, g)
    session.commit()


def test_figures_count_members_in_chat_from_the_counter(ctx, make_org, make_employee,
                                                        make_group, make_user):
    """The dashboard's figures read the counter: a membership entering and leaving the chat
    by a set-based update (as the engine does) moves the figure at once."""
    session = get_session()
    region = make_org()
    child = make_org(parent=region)
    people = [make_employee(child) for _ in range(4)]
    group = make_group(child, members=people)
    admin = make_user(role="admin")

    def in_chat() -> int:
        return service.figures(region, admin).members_in_chat

    assert in_chat() == 0
    session.execute(sa.update(GroupMember).where(GroupMember.group_id == group.id)
                    .values(state=states.ADDED))
    session.commit()
    assert in_chat() == 4
    assert service.figures(region, admin).children[0].members_in_chat == 4
    session.execute(sa.update(GroupMember).where(GroupMember.group_id == group.id,
                                                 GroupMember.employee_id == people[0].id)
                    .values(state=states.LEFT))
    session.commit()
    assert in_chat() == 3
