"""Destructive actions ask first: resetting a step, marking it failed and unlinking a group
from its Max chat each have a confirmation page; a POST without the confirmation or the
required reason changes nothing and says why inline; a confirmed one is done and audited
with its reason."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from enginetest import link, linked_chat_row, past_wave, set_status, step

from migrator.audit.models import AuditEvent
from migrator.db import get_session
from migrator.groups.models import SourceGroup
from migrator.max.models import MaxChat


@pytest.fixture
def world(ctx, make_org, make_employee, make_group, make_user):
    org = make_org(name="Школа № 3")
    group = make_group(org, key="sch3-teachers", name="Учителя школы № 3",
                       members=[make_employee(org) for _ in range(2)])
    link(group, linked_chat_row(-555, org, title="Учителя (Max)"))
    admin = make_user("admin")
    coord = make_user("coordinator", orgs=[org])
    past_wave([group], admin, name="Волна 1")
    return group, admin, coord


def _events(action: str) -> list[AuditEvent]:
    session = get_session()
    session.expire_all()
    return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def test_reset_asks_for_a_reason_then_resets_and_audits_it(world, client, login):
    group, admin, coord = world
    set_status(group, "add_members", "failed")
    url = f"/engine/groups/{group.key}/steps/add_members/reset"
    login(client, admin)

    page = client.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Сброс шага «Добавление участников» группы «Учителя школы № 3»" in html
    assert 'name="reason"' in html and "Сбросить шаг" in html

    for data in ({}, {"reason": "   "}):  # a one-click POST, a blank reason
        resp = client.post(url, data=data)
        assert resp.status_code == 400
        assert "Укажите причину." in resp.get_data(as_text=True)
        assert step(group, "add_members").status == "failed"
    assert _events("step.reset") == []

    done = client.post(url, data={"reason": "Сотрудники вернулись из отпуска"})
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/groups/{group.key}")
    assert step(group, "add_members").status in ("due", "pending")
    [ev] = _events("step.reset")
    assert json.loads(ev.summary)["reason"] == "Сотрудники вернулись из отпуска"
    assert json.loads(ev.summary)["before"] == "failed" and ev.actor_label == admin.email
    html = client.get(f"/groups/{group.key}").get_data(as_text=True)
    assert "Шаг «Добавление участников» группы «Учителя школы № 3» сброшен." in html


def test_mark_failed_needs_a_reason_shown_as_the_error(world, client, login):
    group, admin, coord = world
    url = f"/engine/groups/{group.key}/steps/parallel_run/mark-failed"
    login(client, admin)
    before = step(group, "parallel_run").status
    resp = client.post(url, data={"reason": ""})
    assert resp.status_code == 400 and "Укажите причину." in resp.get_data(as_text=True)
    assert step(group, "parallel_run").status == before

    assert client.post(url, data={"reason": "Чат закрыт владельцем"}).status_code == 302
    s = step(group, "parallel_run")
    assert s.status == "failed" and s.last_error == "Чат закрыт владельцем"
    [ev] = _events("step.mark_failed")
    assert json.loads(ev.summary)["reason"] == "Чат закрыт владельцем"
    # a failed step cannot be marked failed again: the page says so instead of the form
    again = client.get(url)
    assert again.status_code == 200
    assert "Шаг уже завершился ошибкой." in again.get_data(as_text=True)
    assert client.post(url, data={"reason": "ещё раз"}).status_code == 409
    assert len(_events("step.mark_failed")) == 1


def test_reset_and_mark_failed_are_for_administrators(world, app, client, login):
    group, admin, coord = world
    set_status(group, "add_members", "failed")
    login(client, coord)
    for action in ("reset", "mark-failed"):
        url = f"/engine/groups/{group.key}/steps/add_members/{action}"
        assert client.get(url).status_code == 403
        assert client.post(url, data={"reason": "x"}).status_code == 403
    assert step(group, "add_members").status == "failed"
    # the group page offers them to administrators only, as links to the confirmation pages
    html = client.get(f"/groups/{group.key}").get_data(as_text=True)
    assert "/steps/add_members/reset" not in html
    html = login(app.test_client(), admin).get(f"/groups/{group.key}").get_data(as_text=True)
    assert f'href="/engine/groups/{group.key}/steps/add_members/reset"' in html
    assert 'method="post" action="/engine/groups/sch3-teachers/steps/add_members/reset"' \
        not in html


def test_unlinking_a_group_in_an_active_wave_needs_a_reason(world, client, login):
    group, admin, coord = world
    login(client, coord)
    url = f"/max/groups/{group.key}/unlink"
    html = client.get(url).get_data(as_text=True)
    assert "Отмена сопоставления группы «Учителя школы № 3» с чатом Max" in html
    assert "Группа входит в незавершённую волну «Волна 1»" in html
    assert "Причина (обязательно)" in html

    for data in ({}, {"confirmed": "1"}, {"confirmed": "1", "reason": " "}):
        resp = client.post(url, data=data)
        assert resp.status_code == 400
        assert "Укажите причину." in resp.get_data(as_text=True)
        get_session().expire_all()
        assert get_session().get(SourceGroup, group.id).max_chat_id is not None
    assert _events("group.unlink") == []

    resp = client.post(url, data={"confirmed": "1", "reason": "Создан новый чат в Max"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("#max-link")
    get_session().expire_all()
    assert get_session().get(SourceGroup, group.id).max_chat_id is None
    [ev] = _events("group.unlink")
    assert json.loads(ev.summary)["reason"] == "Создан новый чат в Max"
    # nothing left to unlink: the page says so
    again = client.get(url).get_data(as_text=True)
    assert "Группа не сопоставлена с чатом Max." in again
    assert client.post(url, data={"confirmed": "1", "reason": "x"}).status_code == 409


def test_unlinking_outside_a_wave_needs_only_the_confirmation(ctx, client, login, make_org,
                                                              make_group, make_user):
    org = make_org()
    group = make_group(org, name="Завхозы")
    chat = linked_chat_row(-777, org, title="Завхозы (Max)")
    link(group, chat)
    login(client, make_user("coordinator", orgs=[org]))
    url = f"/max/groups/{group.key}/unlink"
    html = client.get(url).get_data(as_text=True)
    assert "незавершённую волну" not in html and "Причина (обязательно)" not in html
    assert 'name="confirmed" type="hidden" value="1"' in html
    # the old one-click form (no marker) changes nothing and says what is missing
    resp = client.post(url)
    assert resp.status_code == 400
    assert "Подтвердите действие на этой странице." in resp.get_data(as_text=True)
    get_session().expire_all()
    assert get_session().get(SourceGroup, group.id).max_chat_id == chat.id
    assert client.post(url, data={"confirmed": "1"}).status_code == 302
    get_session().expire_all()
    assert get_session().get(SourceGroup, group.id).max_chat_id is None
    assert get_session().get(MaxChat, chat.id).status == "discovered"
    [ev] = _events("group.unlink")
    assert "reason" not in json.loads(ev.summary)
    # the group page's unlink control opens the confirmation page (a GET form)
    link(get_session().get(SourceGroup, group.id), get_session().get(MaxChat, chat.id))
    page = client.get(f"/groups/{group.key}").get_data(as_text=True)
    assert f'<form method="get" action="/max/groups/{group.key}/unlink">' in page


def test_a_coordinator_of_another_organisation_sees_no_confirmation_page(
        world, client, login, make_org, make_user):
    group, admin, coord = world
    login(client, make_user("coordinator", orgs=[make_org()]))
    assert client.get(f"/max/groups/{group.key}/unlink").status_code == 404
    assert client.post(f"/max/groups/{group.key}/unlink",
                       data={"confirmed": "1", "reason": "x"}).status_code == 404
    get_session().expire_all()
    assert get_session().get(SourceGroup, group.id).max_chat_id is not None
