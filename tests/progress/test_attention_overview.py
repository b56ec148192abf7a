"""The «Needs attention» overview reads each section's first rows and its total in one
query: they must be the first rows and the count of the section's full list."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import select

from migrator.attention.models import AttentionItem
from migrator.db import utcnow
from migrator.directives.models import Directive, Escalation, Milestone, PublicChannel
from migrator.engine.models import Step
from migrator.groups.attention import CHAT_LINK_MISSING, IDENTITY_CONFLICT, MAX_AUTH_FAILED
from migrator.max.models import MaxChat
from migrator.progress.attention import SECTIONS, overview
from migrator.waves.models import Wave


@pytest.fixture
def everything(tree, ctx, make_employee, make_group):
    """The progress tree with at least two rows in every section."""
    now = utcnow()
    chat = ctx.exec(select(MaxChat).where(MaxChat.title == "Чат А")).one()
    people = [make_employee(tree.a, email=f"e{i}@example.org") for i in range(3)]
    items = [AttentionItem(subject_type="system", subject_id=0, code=MAX_AUTH_FAILED,
                           raised_at=now - timedelta(hours=i), open_key=f"system:{i}")
             for i in range(2)]
    items += [AttentionItem(subject_type="member", subject_id=e.id, code=IDENTITY_CONFLICT,
                            org_id=tree.a.id, raised_at=now - timedelta(hours=1),  # equal
                            open_key=f"member:{e.id}") for e in people]
    items += [AttentionItem(subject_type="chat", subject_id=chat.id, code=CHAT_LINK_MISSING,
                            params='{"count": 2}', org_id=tree.a.id, raised_at=now,
                            open_key=f"chat:{chat.id}:{i}") for i in range(2)]
    directive = Directive(title="Указ", issued_by="Губернатор", issued_at=date(2026, 1, 1),
                          scope_org_id=tree.r.id)
    ctx.add(directive)
    ctx.flush()
    milestone = Milestone(directive_id=directive.id, metric="heads", target_percent=100,
                          due=date(2026, 12, 1))
    ctx.add(milestone)
    ctx.flush()
    ctx.add_all(Escalation(milestone_id=milestone.id, org_id=org.id, plan_percent=50,
                           fact_percent=0, raised_at=now) for org in (tree.a, tree.a1, tree.b))
    ctx.add_all(PublicChannel(org_id=org.id, platform="telegram", url=f"https://t.me/{org.code}",
                              title=f"Канал {org.code}", status="active")
                for org in (tree.a, tree.a1, tree.b))
    ctx.add_all(items)
    wave = Wave(name="Волна А", org_id=tree.a.id, status="active", invite_at=now - _days(30),
                add_members_at=now - _days(29), announce_at=now - _days(28),
                cutover_at=now - _days(27), deadline=now - _days(3))  # as Б's: equal
    ctx.add(wave)
    ctx.flush()
    group = make_group(tree.a1, key="gA1-2", members=people[:1], name="Группа Б")  # equal
    group.wave_id, group.needs_attention, group.attention_reason = wave.id, True, "not_linked"
    for kind, status in (("invite", "failed"), ("announce", "waiting")):
        ctx.add(Step(group_id=group.id, wave_id=wave.id, kind=kind, status=status,
                     due_at=now - _days(20), next_attempt_at=now))  # as Б's invite: equal
    ctx.commit()
    return tree


def _days(n: int) -> timedelta:
    return timedelta(days=n)


@pytest.mark.parametrize("who", ["admin", "coordinator"])
def test_overview_shows_the_first_rows_and_the_total_of_every_full_list(
        everything, make_user, ctx, app, who, count_rows):
    user = make_user(who, orgs=[everything.a] if who == "coordinator" else [])
    now = utcnow()
    with app.test_request_context("/attention"):
        blocks = overview(user, now, cap=2)
        assert [section.key for section, _items, _total in blocks] == [s.key for s in SECTIONS]
        for section, items, total in blocks:
            default = section.sorts[section.default_sort]
            full = [r[0] if len(r) == 1 else tuple(r) for r in ctx.execute(
                section.query(user, now).order_by(default, *section.keys)).all()]
            assert total == len(full) == count_rows(section.query(user, now)), section.key
            assert items == full[:2], section.key
            assert ctx.scalar(section.total(user, now)) == total, section.key
            if who == "admin":
                assert total >= 2, section.key  # every section is exercised
