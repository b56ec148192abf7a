"""Flashes say what was done to what, the group's name always quoted «…»."""

from __future__ import annotations

import re

import pytest
from enginetest import past_wave, set_status

from migrator.groups import states
from migrator.groups.models import GroupMember
from migrator.max.models import MaxChat

GROUP = "Школа № 3 — учителя"


@pytest.fixture
def setting(ctx, make_org, make_employee, make_group, make_user, client, login):
    org = make_org()
    people = [make_employee(org, max_user_id=1000 + i) for i in range(3)]
    group = make_group(org, members=people, name=GROUP)
    coord = make_user("coordinator", orgs=[org])
    wave = past_wave([group], coord, name="Волна школ")
    login(client, coord)
    return org, group, wave, people


def _flash(client, url, data=None) -> str:
    resp = client.post(url, data=data or {}, follow_redirects=True)
    assert resp.status_code == 200
    found = re.findall(r'<div class="flash \w+" role="\w+">([^<]*)</div>',
                       resp.get_data(as_text=True))
    assert len(found) == 1, found
    return found[0].replace("&#34;", '"')


def test_step_actions_name_the_step_and_the_group(setting, client):
    _org, group, _wave, _people = setting
    base = f"/engine/groups/{group.key}/steps"
    assert _flash(client, f"{base}/parallel_run/pause") == (
        f"Приостановлен шаг «Параллельная работа», группа «{GROUP}».")
    assert _flash(client, f"{base}/parallel_run/resume") == (
        f"Возобновлён шаг «Параллельная работа», группа «{GROUP}».")
    set_status(group, "add_members", "failed")
    assert _flash(client, f"{base}/add_members/retry") == (
        f"Повторный запуск запланирован: шаг «Добавление участников», группа «{GROUP}».")
    assert "Готово" not in _flash(client, f"{base}/invite/skip", {"text": "Не нужно"})


def test_member_retry_counts_the_members_with_the_right_plural(setting, client, ctx):
    _org, group, _wave, people = setting
    for emp in people[:2]:
        member = ctx.get(GroupMember, (group.id, emp.id))
        member.state = states.UNADDABLE
        ctx.add(member)
    ctx.commit()
    assert _flash(client, f"/engine/groups/{group.key}/members/retry") == (
        f"Повторное добавление запланировано: 2 участника, группа «{GROUP}».")
    member = ctx.get(GroupMember, (group.id, people[2].id))
    member.state = states.UNADDABLE
    ctx.add(member)
    ctx.commit()
    assert _flash(client, f"/engine/groups/{group.key}/members/retry",
                  {"employee_id": str(people[2].id)}) == (
        f"Повторное добавление запланировано: 1 участник, группа «{GROUP}».")


def test_wave_and_chat_flashes_quote_names(setting, client, ctx):
    org, group, wave, _people = setting
    assert _flash(client, f"/waves/{wave.id}/pause") == "Волна «Волна школ» приостановлена."
    assert _flash(client, f"/waves/{wave.id}/resume") == "Волна «Волна школ» возобновлена."
    chat = MaxChat(chat_id=-555, title="Учителя (Max)", status="discovered", org_id=org.id)
    ctx.add(chat)
    ctx.commit()
    group.max_chat_id = chat.id
    ctx.add(group)
    ctx.commit()
    assert _flash(client, f"/max/groups/{group.key}/unlink",
                  {"confirmed": "1", "reason": "Чат создан заново"}) == (
        f"Сопоставление группы «{GROUP}» с чатом Max «Учителя (Max)» отменено.")
