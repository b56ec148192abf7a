"""The group page's link picker: only chats in the user's scope that the group may join,
a server-side search, a warning naming the bot's missing rights in Russian; a forged POST
cannot link another organisation's chat."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from migrator.db import get_session, utcnow
from migrator.groups.models import SourceGroup
from migrator.max.models import MaxChat

FULL = "read_all_messages,add_remove_members,pin_message"


def _chat(org, chat_id: int, title: str, *, admin=True, perms=FULL, status="discovered"):
    session = get_session()
    chat = MaxChat(chat_id=chat_id, title=title, status=status, org_id=org.id if org else None,
                   bot_is_admin=admin, bot_permissions=perms, added_at=utcnow(),
                   checked_at=utcnow())
    session.add(chat)
    session.commit()
    return chat


def _options(html: str) -> list[str]:
    select_html = html.split('id="max-chat-select"', 1)[1].split("</select>", 1)[0]
    return [o for o in re.findall(r"<option[^>]*>([^<]*)</option>", select_html) if o != "—"]


@pytest.fixture
def region(ctx, make_org, make_group, make_user):
    edu = make_org(code="EDU", name="Образование")
    school = make_org(code="SCH1", name="Школа № 1", parent=edu)
    other = make_org(code="HLT", name="Здравоохранение")
    group = make_group(school, key="sch1-staff", name="Сотрудники школы № 1")
    return {"edu": edu, "school": school, "other": other, "group": group,
            "coord": make_user("coordinator", orgs=[school]), "admin": make_user("admin")}


def test_a_coordinator_never_sees_nor_links_another_organisations_chat(region, client, login,
                                                                       api_token):
    own = _chat(region["school"], -1001, "Школа 1 — учителя")
    foreign = _chat(region["other"], -2001, "Поликлиника 5")
    unknown = _chat(None, -3001, "Чат без организации")
    login(client, region["coord"])
    html = client.get("/groups/sch1-staff").get_data(as_text=True)
    assert _options(html) == ["Школа 1 — учителя (-1001)"]
    assert "Поликлиника" not in html and "Чат без организации" not in html
    # a forged POST with the other organisation's (or an unassigned) chat links nothing
    for chat in (foreign, unknown):
        assert client.post("/max/groups/sch1-staff/link",
                           data={"chat": str(chat.id)}).status_code == 404
        get_session().expire_all()
        assert get_session().get(SourceGroup, region["group"].id).max_chat_id is None
    # nor through the API with the coordinator's token
    headers = api_token(region["coord"])
    for chat in (foreign, unknown):
        assert client.post("/api/v1/groups/sch1-staff/link", json={"chat_id": chat.chat_id},
                           headers=headers).status_code == 404
    get_session().expire_all()
    assert get_session().get(SourceGroup, region["group"].id).max_chat_id is None
    assert client.post("/max/groups/sch1-staff/link",
                       data={"chat": str(own.id)}).status_code == 302
    get_session().expire_all()
    assert get_session().get(SourceGroup, region["group"].id).max_chat_id == own.id


def test_a_chat_serving_another_subtree_is_not_offered(region, client, login, make_org,
                                                       make_group):
    # the admin sees every chat, but a chat already serving a group of health care cannot
    # serve a school group; one serving the region's education groups can (its subtree)
    health_group = make_group(region["other"], key="hlt-1")
    edu_group = make_group(region["edu"], key="edu-1")
    health = _chat(region["other"], -2001, "Поликлиника 5")
    shared = _chat(region["edu"], -1002, "Образование — общий")
    session = get_session()
    for g, c in ((health_group, health), (edu_group, shared)):
        g = session.get(SourceGroup, g.id)
        g.max_chat_id, c.status = c.id, "linked"
        session.add_all([g, c])
    session.commit()
    free = _chat(region["other"], -2002, "Свободный чат")
    login(client, region["admin"])
    html = client.get("/groups/sch1-staff").get_data(as_text=True)
    assert _options(html) == ["Образование — общий (-1002)", "Свободный чат (-2002)"]
    assert free.id and "Поликлиника 5" not in html


def test_the_picker_searches_on_the_server(region, client, login):
    for n in range(3):
        _chat(region["school"], -1100 - n, f"Учителя {n + 1}-х классов")
    _chat(region["school"], -1200, "Завхозы")
    login(client, region["coord"])
    html = client.get("/groups/sch1-staff?chat_q=завхоз").get_data(as_text=True)
    assert _options(html) == ["Завхозы (-1200)"]
    assert 'name="chat_q"' in html and 'value="завхоз"' in html
    html = client.get("/groups/sch1-staff?chat_q=-1101").get_data(as_text=True)
    assert _options(html) == ["Учителя 2-х классов (-1101)"]
    html = client.get("/groups/sch1-staff?chat_q=нет такого").get_data(as_text=True)
    assert "Подходящих чатов Max не найдено." in html


def test_linking_warns_about_the_bots_missing_rights_in_russian(region, client, login):
    chat = _chat(region["school"], -1300, "Без прав", perms="read_all_messages")
    not_admin = _chat(region["school"], -1301, "Бот не админ", admin=False, perms="")
    login(client, region["coord"])
    html = client.get("/groups/sch1-staff").get_data(as_text=True)
    assert ("Без прав (-1300) — у бота нет прав: добавлять и удалять участников, "
            "закреплять сообщения") in _options(html)
    resp = client.post("/max/groups/sch1-staff/link", data={"chat": str(chat.id)},
                       follow_redirects=True)
    page = resp.get_data(as_text=True)
    assert "Внимание: у бота нет прав: добавлять и удалять участников, закреплять " \
           "сообщения." in page
    assert "add_remove_members" not in page and "pin_message" not in page
    # the panel keeps saying it while the group is linked to that chat
    assert "Бот пока не может работать в этом чате: у бота нет прав" in page

    group = get_session().get(SourceGroup, region["group"].id)
    group.max_chat_id = None
    get_session().add(group)
    get_session().commit()
    page = client.post("/max/groups/sch1-staff/link", data={"chat": str(not_admin.id)},
                       follow_redirects=True).get_data(as_text=True)
    assert ("бот не администратор чата (нужны права: читать все сообщения, добавлять и "
            "удалять участников, закреплять сообщения)") in page
    # a chat with every right links without a warning
    group = get_session().get(SourceGroup, region["group"].id)
    group.max_chat_id = None
    get_session().add(group)
    get_session().commit()
    ready = _chat(region["school"], -1302, "Готовый")
    page = client.post("/max/groups/sch1-staff/link", data={"chat": str(ready.id)},
                       follow_redirects=True).get_data(as_text=True)
    assert "Внимание:" not in page
    assert get_session().exec(select(SourceGroup.max_chat_id).where(
        SourceGroup.key == "sch1-staff")).one() == ready.id
