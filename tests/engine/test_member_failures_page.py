"""The add step's outcome on the group page: «выполнен с ошибками» while Max refused
members, their reasons as filters, and a retry of one member, of one reason, or of all."""

from __future__ import annotations

import re

import pytest
from enginetest import link, linked_chat_row, past_wave, set_status
from sqlmodel import select

from migrator.db import get_session
from migrator.groups.models import GroupMember

PRIVACY = "add.participant.privacy"
GONE = "add.participant.not.found"


@pytest.fixture
def refused(ctx, make_org, make_employee, make_group, make_user):
    org = make_org()
    emps = [make_employee(org, full_name=name, max_user_id=1000 + n) for n, name in enumerate(
        ["Алексеева Анна", "Борисов Борис", "Васильев Василий", "Григорьева Галина"])]
    group = make_group(org, key="sch-refused", name="Учителя", members=emps)
    link(group, linked_chat_row(-4242, org))
    coord = make_user("coordinator", orgs=[org])
    past_wave([group], coord)
    session = get_session()
    for emp, (state, reason) in zip(emps, [("unaddable", PRIVACY), ("unaddable", PRIVACY),
                                           ("unaddable", GONE), ("added", None)], strict=True):
        gm = session.exec(select(GroupMember).where(GroupMember.group_id == group.id,
                                                    GroupMember.employee_id == emp.id)).one()
        gm.state, gm.reason, gm.attempts = state, reason, 5 if reason else 1
        session.add(gm)
    session.commit()
    set_status(group, "add_members", "succeeded")
    return group, emps, coord


def _names(html: str) -> list[str]:
    table = html.split('id="members"', 1)[1]
    return re.findall(r'<a href="/employees/\d+">([^<]+)</a>', table)


def _states(group) -> dict[int, str]:
    session = get_session()
    session.expire_all()
    return {m.employee_id: m.state for m in session.exec(
        select(GroupMember).where(GroupMember.group_id == group.id))}


def test_the_add_step_is_done_with_errors_and_lists_the_reasons(refused, client, login):
    group, emps, coord = refused
    login(client, coord)
    html = client.get(f"/groups/{group.key}").get_data(as_text=True)
    steps = html.split('id="step-add_members"', 1)[1].split("</tbody>", 1)[0]
    assert "выполнен с ошибками" in steps
    assert "не добавлены 3 участника" in steps
    assert f"/groups/{group.key}?state=unaddable#members" in steps
    reasons = html.split('class="members-summary refused-reasons"', 1)[1].split("</nav>")[0]
    assert "все причины: 3" in reasons
    assert "настройки приватности в Max не разрешают добавлять этого человека в чаты: 2" in reasons
    assert "Max не знает такой учётной записи (возможно, она удалена): 1" in reasons

    html = client.get(f"/groups/{group.key}?reason={PRIVACY}").get_data(as_text=True)
    assert _names(html) == ["Алексеева Анна", "Борисов Борис"]
    assert "Повторить добавление всех, кому отказано по этой причине (2)" in html
    html = client.get(f"/groups/{group.key}?reason=any").get_data(as_text=True)
    assert _names(html) == ["Алексеева Анна", "Борисов Борис", "Васильев Василий"]
    # an unknown reason is no filter
    assert len(_names(client.get(f"/groups/{group.key}?reason=x").get_data(as_text=True))) == 4


def test_retry_one_member_or_everyone_refused_for_one_reason(refused, client, login):
    group, emps, coord = refused
    login(client, coord)
    resp = client.post(f"/engine/groups/{group.key}/members/retry",
                       data={"reason": PRIVACY, "next": f"/groups/{group.key}?reason={PRIVACY}"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"reason={PRIVACY}")
    states = _states(group)
    assert [states[e.id] for e in emps] == ["linked", "linked", "unaddable", "added"]
    # the last refused one, alone
    client.post(f"/engine/groups/{group.key}/members/retry", data={"employee_id": emps[2].id})
    assert _states(group)[emps[2].id] == "linked"
    html = client.get(f"/groups/{group.key}").get_data(as_text=True)
    assert "выполнен с ошибками" not in html and "refused-reasons" not in html
    # nobody left for a reason: nothing moves, and the page says so
    page = client.post(f"/engine/groups/{group.key}/members/retry", data={"reason": GONE},
                       follow_redirects=True).get_data(as_text=True)
    assert "Повторять некого" in page
