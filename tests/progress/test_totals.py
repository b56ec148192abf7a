"""The figures add up: over random organisation trees the own row plus the children's rows
make the card totals, and the XLSX, the printable page and the API show the same numbers."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from migrator.auth.models import UserOrgScope
from migrator.db import utcnow
from migrator.engine.models import Step
from migrator.groups.models import GroupMember, SourceGroup
from migrator.max.models import MaxChat
from migrator.people.models import Employee
from migrator.progress import service
from migrator.waves.models import Wave

COUNTS = service.COUNTERS
IN_CHAT = "added"
STATUSES = ("pending", "due", "running", "waiting", "succeeded", "failed", "skipped", "paused")

org_spec = st.fixed_dictionaries({
    "employees": st.lists(st.booleans(), max_size=3),  # linked to Max or not
    "groups": st.lists(st.fixed_dictionaries({
        "members": st.integers(0, 3),  # how many of the org's employees are members
        "in_chat": st.integers(0, 3),
        "chat": st.sampled_from([None, "linked", "removed"]),
        "wave": st.sampled_from([None, 0, 1]),
        "steps": st.lists(st.tuples(st.sampled_from(("invite", "cutover")),
                                    st.sampled_from(STATUSES), st.integers(-72, 72)),
                          max_size=2, unique_by=lambda s: s[0]),
    }), max_size=2),
})
tree_spec = st.lists(st.tuples(st.integers(0, 100), org_spec), min_size=1, max_size=6)
waves_spec = st.lists(st.tuples(st.sampled_from(("planned", "active", "completed")),
                                st.integers(-80, 80)), min_size=2, max_size=2)


def _build(ctx, make_org, spec, waves_spec_value, now):
    """A new region root with a random tree under it; returns its organisations."""
    waves = []
    for i, (status, hours) in enumerate(waves_spec_value):
        w = Wave(name=f"Волна {i}", status=status, invite_at=now, add_members_at=now,
                 announce_at=now, cutover_at=now, deadline=now + timedelta(hours=hours))
        ctx.add(w)
        waves.append(w)
    orgs = []
    for parent_pick, o in spec:
        org = make_org(parent=orgs[parent_pick % len(orgs)] if orgs else None)
        orgs.append(org)
        emps = [Employee(email=f"e{org.id}-{n}@example.org", full_name=f"Сотрудник {n}",
                         org_id=org.id, max_user_id=(org.id * 10 + n) if linked else None,
                         linked_at=now if linked else None)
                for n, linked in enumerate(o["employees"])]
        ctx.add_all(emps)
        ctx.flush()
        for n, g in enumerate(o["groups"]):
            members = emps[:g["members"]]
            group = SourceGroup(key=f"g{org.id}-{n}", name=f"Группа {org.id}-{n}",
                                platform="whatsapp", org_id=org.id, member_count=len(members))
            ctx.add(group)
            ctx.flush()
            for i, emp in enumerate(members):
                in_chat = i < g["in_chat"]
                ctx.add(GroupMember(group_id=group.id, employee_id=emp.id,
                                    added_at=now if in_chat else None,
                                    **({"state": IN_CHAT} if in_chat else {})))
            if g["chat"]:
                chat = MaxChat(chat_id=-(group.id * 7 + 1), title=f"Чат {group.id}",
                               status=g["chat"], org_id=org.id, bot_is_admin=True,
                               bot_permissions="add_remove_members,pin_message,write")
                ctx.add(chat)
                ctx.flush()
                if g["chat"] == "linked":
                    group.max_chat_id, group.linked_at = chat.id, now
            if g["wave"] is not None:
                group.wave_id = waves[g["wave"]].id
                for kind, status, hours in g["steps"]:
                    due = now + timedelta(hours=hours)
                    ctx.add(Step(group_id=group.id, wave_id=group.wave_id, kind=kind,
                                 status=status, due_at=due, next_attempt_at=due,
                                 finished_at=now if status == "succeeded" else None))
        ctx.commit()
    return orgs


def _counts(row) -> dict:
    return {name: getattr(row, name) for name in COUNTS}


def _assert_adds_up(fig) -> None:
    parts = fig.table
    for name in COUNTS:
        assert sum(getattr(r, name) for r in parts) == getattr(fig, name), name
    deadlines = [r.deadline for r in parts if r.deadline is not None]
    assert fig.deadline == (min(deadlines) if deadlines else None)


def test_rows_and_own_row_add_up_to_the_totals(ctx, make_org, make_user):
    admin = make_user("admin")
    coord = make_user("coordinator", orgs=[make_org()])  # re-scoped in every example

    @settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(spec=tree_spec, waves=waves_spec, pick=st.integers(0, 100))
    def check(spec, waves, pick):
        now = utcnow()
        orgs = _build(ctx, make_org, spec, waves, now)
        root, picked = orgs[0], orgs[pick % len(orgs)]
        for org in (root, picked):
            fig = service.figures(org, admin, now=now)
            assert fig.own_row is not None and fig.own_row.org.id == org.id
            _assert_adds_up(fig)
            # The report: the same total, the same own row, each child's subtree the same.
            rows = service.report_rows(org, admin, now=now, own=True)
            assert _counts(rows[0]) == _counts(fig)
            assert rows[1].own and _counts(rows[1]) == _counts(fig.own_row)
            by_id = {r.org.id: r for r in rows[2:]}
            for child in fig.children:
                assert _counts(by_id[child.org.id]) == _counts(child)
            # The nearest deadline card names a wave with the deadline the table shows.
            assert (fig.nearest_wave["deadline"] if fig.nearest_wave else None) == fig.deadline
            assert fig.overdue_waves == sum(1 for w in fig.waves if w["overdue"])

        # A coordinator of one organisation: their whole scope is that subtree.
        ctx.execute(sa.delete(UserOrgScope).where(UserOrgScope.user_id == coord.id))
        ctx.add(UserOrgScope(user_id=coord.id, org_id=picked.id))
        ctx.commit()
        mine = service.figures(None, coord, now=now)
        _assert_adds_up(mine)
        assert _counts(mine) == _counts(service.figures(picked, admin, now=now))

    check()


def _html_total(html: str) -> list[str]:
    row = re.search(r'<tr class="total">(.*?)</tr>', html, re.S).group(1)
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row,
                                                                  re.S)]


def test_xlsx_page_and_api_show_the_same_figures(tree, make_user, login, client, api_token):
    admin = make_user("admin")
    fig = service.figures(tree.r, admin)
    _assert_adds_up(fig)
    assert (fig.own_row.employees, [c.employees for c in fig.children]) == (0, [5, 4])

    api = client.get("/api/v1/progress?org=R", headers=api_token(admin)).get_json()
    assert {n: api[n] for n in COUNTS} == _counts(fig)
    assert api["own_row"]["own"] is True
    assert sum(c["employees"] for c in api["children"]) + api["own_row"]["employees"] == (
        api["employees"])

    login(client, admin)
    ws = load_workbook(io.BytesIO(client.get("/progress/report.xlsx?org=R").data)).active
    values = [[c.value for c in row] for row in ws.iter_rows(min_row=5)]
    total = values[-1]
    assert total[1] == "Итого"
    assert total[2:4] == [fig.employees, fig.linked]
    assert total[5:10] == [fig.groups_total, fig.groups_linked, fig.groups_done,
                           fig.members_total, fig.members_in_chat]
    assert total[13] == fig.overdue_steps
    level1 = [v for v in values[:-1] if not v[1].startswith("        ")]
    assert sum(v[2] for v in level1) == fig.employees  # own row + children = total

    for page in ("/?org=R", "/progress/report?org=R"):
        cells = _html_total(client.get(page).get_data(as_text=True))
        assert cells[:2] == [str(fig.employees), str(fig.linked)], page
        assert cells[3:6] == [str(fig.groups_total), str(fig.groups_linked),
                              str(fig.groups_done)], page

    # The dashboard's cards: the chats card counts every chat the chat list shows.
    html = client.get("/?org=R").get_data(as_text=True)
    assert fig.chats_total == 3
    assert re.search(r'Чаты Max</h2>\s*<div class="big">3</div>', html)


def test_overdue_counts_agree_with_the_attention_page(tree, make_user, app, count_rows):
    from migrator.progress.attention import SECTION_BY_KEY

    count = count_rows

    admin = make_user("admin")
    now = utcnow()
    fig = service.figures(tree.r, admin, now=now)
    assert fig.overdue_steps == count(SECTION_BY_KEY["overdue"].query(admin, now))
    assert fig.overdue_waves == count(SECTION_BY_KEY["waves"].query(admin, now))
    # The grace is a setting: without it, a step is overdue as soon as it is due.
    app.config["OVERDUE_GRACE_HOURS"] = 0
    waiting = service.figures(tree.r, admin, now=now)
    assert waiting.overdue_steps == fig.overdue_steps + 1  # A1's announce, due 2 h ago
    assert waiting.overdue_steps == count(SECTION_BY_KEY["overdue"].query(admin, now))
