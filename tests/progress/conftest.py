"""A small hand-made region with known figures, shared by the progress tests.

    R (region)
    ├── A  3 employees (2 linked)          group gA: a1, a2 (a1 added to the chat)
    │   └── A1  2 employees (1 linked)     group gA1: x1, x2 (x1 failed), wave W, cut over
    └── B  4 employees (none linked)       group gB: b1, b2, b3 (no chat), its head not in Max
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlmodel import select

from migrator.db import get_session, utcnow
from migrator.engine.models import Step
from migrator.groups.models import GroupMember
from migrator.max.models import MaxChat
from migrator.waves.models import Wave


@pytest.fixture
def tree(ctx, make_org, make_employee, make_group):
    now = utcnow()
    r = make_org(code="R", name="Регион", head_email="gov@example.org")
    a = make_org(code="A", name="Ведомство А", parent=r, head_email="a1@example.org")
    a1 = make_org(code="A1", name="Школа А1", parent=a, head_email="x1@example.org")
    b = make_org(code="B", name="Ведомство Б", parent=r, head_email="b1@example.org")
    a_emps = [make_employee(a, email="a1@example.org", max_user_id=101,
                            linked_at=now - timedelta(days=3)),
              make_employee(a, email="a2@example.org", max_user_id=102,
                            linked_at=now - timedelta(hours=1)),
              make_employee(a, email="a3@example.org")]
    x_emps = [make_employee(a1, email="x1@example.org", max_user_id=201,
                            linked_at=now - timedelta(days=2)),
              make_employee(a1, email="x2@example.org")]
    b_emps = [make_employee(b, email=f"b{i}@example.org") for i in (1, 2, 3, 4)]
    for e in a_emps + x_emps + b_emps:
        e.created_at = now - timedelta(days=10)
    chat = MaxChat(chat_id=-1001, title="Чат А1", status="linked", org_id=a1.id,
                   bot_is_admin=True,
                   bot_permissions="read_all_messages,add_remove_members,pin_message")
    chat_a = MaxChat(chat_id=-1002, title="Чат А", status="linked", org_id=a.id,
                     bot_is_admin=True, bot_permissions="write")  # lacks rights
    chat_b = MaxChat(chat_id=-1003, title="Чат Б", status="removed", org_id=b.id,
                     bot_is_admin=False)
    ctx.add_all([chat, chat_a, chat_b])
    ctx.commit()
    g_a = make_group(a, key="gA", members=a_emps[:2], name="Группа А")
    g_a1 = make_group(a1, key="gA1", members=x_emps, name="Группа А1")
    g_b = make_group(b, key="gB", members=b_emps[:3], name="Группа Б")
    g_a.max_chat_id, g_a.linked_at = chat_a.id, now - timedelta(days=5)
    g_a1.max_chat_id, g_a1.linked_at = chat.id, now - timedelta(days=5)
    g_b.needs_attention, g_b.attention_reason = True, "Бот удалён из чата Б"
    wave = Wave(name="Волна W", org_id=a.id, status="active", invite_at=now - timedelta(days=6),
                add_members_at=now - timedelta(days=5), announce_at=now - timedelta(days=4),
                cutover_at=now - timedelta(days=1), deadline=now + timedelta(days=5))
    wave_b = Wave(name="Волна Б", org_id=b.id, status="active",
                  invite_at=now - timedelta(days=20), add_members_at=now - timedelta(days=19),
                  announce_at=now - timedelta(days=18), cutover_at=now - timedelta(days=12),
                  deadline=now - timedelta(days=3))
    ctx.add_all([wave, wave_b])
    ctx.flush()
    g_a1.wave_id, g_b.wave_id = wave.id, wave_b.id
    ctx.add(Step(group_id=g_a1.id, wave_id=wave.id, kind="cutover", status="succeeded",
                 due_at=now - timedelta(days=1), next_attempt_at=now - timedelta(days=1),
                 finished_at=now - timedelta(hours=20)))
    ctx.add(Step(group_id=g_a1.id, wave_id=wave.id, kind="announce", status="waiting",
                 due_at=now - timedelta(hours=2), next_attempt_at=now - timedelta(hours=2)))
    ctx.add(Step(group_id=g_b.id, wave_id=wave_b.id, kind="invite", status="failed",
                 due_at=now - timedelta(days=20), next_attempt_at=now - timedelta(days=20),
                 attempts=5, last_error="SMTP refused"))
    members = {(m.group_id, m.employee_id): m for m in ctx.exec(select(GroupMember)).all()}
    m = members[(g_a.id, a_emps[0].id)]
    m.state, m.added_at = "added", now - timedelta(days=2)
    m = members[(g_a1.id, x_emps[0].id)]
    m.state, m.reason, m.attempts = "unaddable", "add.participant.privacy", 2
    m = members[(g_b.id, b_emps[0].id)]
    m.state, m.reason = "unaddable", "add.participant.not.found"
    ctx.commit()
    return SimpleNamespace(r=r, a=a, a1=a1, b=b, groups=(g_a, g_a1, g_b), wave=wave,
                           wave_b=wave_b, now=now)


@pytest.fixture
def count_rows(ctx):
    """The number of rows ``query`` returns, counted plainly: the reference the pages'
    own totals are checked against."""
    def count(query) -> int:
        return get_session().scalar(
            sa.select(sa.func.count()).select_from(query.order_by(None).subquery())) or 0
    return count
