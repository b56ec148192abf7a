"""Organisation tree, employee and group pages: content, filters, member states, scope."""

from __future__ import annotations

from datetime import timedelta

from flask import g
from sqlmodel import select

from migrator.db import utcnow
from migrator.groups.models import GroupMember
from migrator.groups.service import (
    coverage,
    find_group_by_key,
    get_group_by_key,
    member_state_counts,
)
from migrator.max.models import MaxChat
from migrator.waves.models import Wave


def html(client, url, status=200):
    resp = client.get(url)
    assert resp.status_code == status, (url, resp.status_code)
    return resp.get_data(as_text=True)


def setup_two_departments(make_org, make_employee, make_group):
    region = make_org(code="REG", name="Регион")
    a = make_org(code="A", name="Департамент Альфа", parent=region)
    a1 = make_org(code="A1", name="Школа Альфа-1", parent=a)
    b = make_org(code="B", name="Департамент Бета", parent=region)
    alice = make_employee(a1, email="alice@example.ru", full_name="Алиса Альфова")
    bob = make_employee(b, email="bob@example.ru", full_name="Борис Бетов", max_user_id=501)
    ga = make_group(a1, key="alpha-teachers", name="Учителя Альфа", members=[alice])
    gb = make_group(b, key="beta-staff", name="Сотрудники Бета", platform="telegram",
                    members=[bob])
    return {"region": region, "a": a, "a1": a1, "b": b, "alice": alice, "bob": bob,
            "ga": ga, "gb": gb}


def test_coordinator_sees_only_their_subtree(client, make_org, make_employee, make_group,
                                             make_user, login):
    w = setup_two_departments(make_org, make_employee, make_group)
    login(client, make_user("coordinator", orgs=[w["a"]]))

    tree = html(client, "/orgs/")
    assert "Департамент Альфа" in tree and "Школа Альфа-1" in tree
    assert "Департамент Бета" not in tree and "Регион" not in tree
    html(client, "/orgs/A1")
    html(client, "/orgs/B", 404)
    html(client, "/orgs/REG", 404)

    people = html(client, "/employees/")
    assert "Алиса Альфова" in people and "Борис Бетов" not in people
    assert "Департамент Бета" not in people  # not even in the organisation filter
    html(client, f"/employees/{w['alice'].id}")
    html(client, f"/employees/{w['bob'].id}", 404)
    html(client, "/employees/?org=B", 404)

    groups = html(client, "/groups/")
    assert "Учителя Альфа" in groups and "Сотрудники Бета" not in groups
    html(client, "/groups/alpha-teachers")
    html(client, "/groups/beta-staff", 404)
    html(client, "/groups/no-such-group", 404)
    assert "Сотрудники Бета" not in html(client, "/groups/?q=Бета")


def test_auditor_reads_everything(client, make_org, make_employee, make_group, make_user, login):
    w = setup_two_departments(make_org, make_employee, make_group)
    login(client, make_user("auditor"))
    assert "Департамент Бета" in html(client, "/orgs/")
    html(client, f"/employees/{w['bob'].id}")
    assert "Сотрудники Бета" in html(client, "/groups/beta-staff")


def test_tree_and_organisation_counts(client, make_org, make_employee, make_group, make_user,
                                      login):
    setup_two_departments(make_org, make_employee, make_group)
    login(client, make_user("admin"))
    tree = html(client, "/orgs/")
    assert "<details open>" in tree
    # Department A has no employees itself, one in its school.
    assert "сотрудники: 0 / 1" in tree and "сотрудники: 1 / 1" in tree
    detail = html(client, "/orgs/A")
    assert "Школа Альфа-1" in detail and "с подведомственными: 1" in detail
    assert "/employees/?org=A" in detail and "/groups/?org=A" in detail
    assert "Департамент Бета" not in detail


def test_employee_filters_and_sorting(app, client, make_org, make_employee, make_group,
                                      make_user, login):
    w = setup_two_departments(make_org, make_employee, make_group)
    make_employee(w["a"], email="zoya@example.ru", full_name="Зоя Альфова")
    login(client, make_user("admin"))
    assert "Борис Бетов" in html(client, "/employees/?q=BOB@")
    found = html(client, "/employees/?q=alice")
    assert "Алиса Альфова" in found and "Борис Бетов" not in found
    found = html(client, "/employees/?q=альфова")  # Cyrillic, any case
    assert "Алиса Альфова" in found and "Зоя Альфова" in found and "Борис" not in found
    assert "Сотрудники Бета" in html(client, "/groups/?q=сотрудники")
    assert "Борис" not in html(client, "/employees/?q=100%25")  # % is literal
    linked = html(client, "/employees/?linked=yes")
    assert "Борис Бетов" in linked and "Алиса Альфова" not in linked
    unlinked = html(client, "/employees/?linked=no")
    assert "Борис Бетов" not in unlinked and "Алиса Альфова" in unlinked
    subtree = html(client, "/employees/?org=A")
    assert "Алиса Альфова" in subtree and "Зоя Альфова" in subtree and "Борис" not in subtree
    only = html(client, "/employees/?org=A&sub=0")
    assert "Зоя Альфова" in only and "Алиса Альфова" not in only
    desc = html(client, "/employees/?sort=name&desc=1")
    assert desc.index("Зоя Альфова") < desc.index("Алиса Альфова")
    app.config["PER_PAGE"] = 2
    first = html(client, "/employees/?sort=email")
    assert "alice@example.ru" in first and "zoya@example.ru" not in first
    assert "zoya@example.ru" in html(client, "/employees/?sort=email&page=2")


def test_group_filters(ctx, client, make_org, make_employee, make_group, make_user, login):
    w = setup_two_departments(make_org, make_employee, make_group)
    chat = MaxChat(chat_id=-7001, title="Бета в Max", status="linked")
    ctx.add(chat)
    ctx.flush()
    now = utcnow()
    wave = Wave(name="Первая волна", invite_at=now, add_members_at=now, announce_at=now,
                cutover_at=now, deadline=now + timedelta(days=9))
    ctx.add(wave)
    ctx.flush()
    gb = w["gb"]
    gb.max_chat_id, gb.linked_at, gb.wave_id = chat.id, now, wave.id
    w["ga"].needs_attention, w["ga"].attention_reason = True, "бот удалён из чата"
    ctx.add_all([gb, w["ga"]])
    ctx.commit()
    login(client, make_user("admin"))

    def names(query):
        page = html(client, "/groups/" + query)
        return {n for n in ("Учителя Альфа", "Сотрудники Бета") if n in page}

    assert names("") == {"Учителя Альфа", "Сотрудники Бета"}
    assert "Бета в Max" in html(client, "/groups/")
    assert names("?platform=telegram") == {"Сотрудники Бета"}
    assert names("?mapping=linked") == {"Сотрудники Бета"}
    assert names("?mapping=unlinked") == {"Учителя Альфа"}
    assert names(f"?wave={wave.id}") == {"Сотрудники Бета"}
    assert names("?wave=none") == {"Учителя Альфа"}
    assert names("?attention=1") == {"Учителя Альфа"}
    assert names("?org=A") == {"Учителя Альфа"}
    assert names("?org=A&sub=0") == set()
    assert names("?q=beta-") == {"Сотрудники Бета"}


def test_group_page_member_states_and_coverage(app, ctx, client, make_org, make_employee,
                                               make_group, make_user, login):
    org = make_org(code="A", name="Департамент")
    now = utcnow()
    people = {
        "added": make_employee(org, full_name="Добавлен Давид", max_user_id=1),
        "already": make_employee(org, full_name="Уже Ульяна", max_user_id=2),
        "failed": make_employee(org, full_name="Ошибка Олег", max_user_id=3),
        "linked": make_employee(org, full_name="Связан Семён", max_user_id=4),
        "reminded": make_employee(org, full_name="Напомнили Нина"),
        "invited": make_employee(org, full_name="Приглашён Пётр"),
        "new": make_employee(org, full_name="Новый Никита"),
    }
    group = make_group(org, key="k1", name="Группа К", members=list(people.values()))
    members = {m.employee_id: m for m in
               ctx.exec(select(GroupMember).where(GroupMember.group_id == group.id))}

    def member(key):
        return members[people[key].id]

    member("added").state, member("added").added_at = "added", now
    member("already").state = "joined"
    member("failed").state = "unaddable"
    member("failed").reason = "add.participant.privacy"
    member("reminded").invited_at, member("reminded").reminded_at = now, now
    member("reminded").reminder_count = 2
    member("invited").invited_at = now
    ctx.add_all(members.values())
    ctx.commit()

    assert coverage(group) == (2, 7)
    assert member_state_counts(group) == {"in_chat": 2, "left": 0, "unaddable": 1,
                                          "invited_by_link": 0, "retrying": 0, "linked": 1,
                                          "reminded": 1, "invited": 1, "not_invited": 1}
    login(client, make_user("admin"))
    page = html(client, "/groups/k1")
    assert "2 из 7 участников" in page
    assert "настройки приватности в Max не разрешают" in page
    assert "2 напоминания" in page
    assert "подключён к Max, ещё не добавлен" in page and "ещё не приглашён" in page
    failed_only = html(client, "/groups/k1?state=unaddable")
    assert "Ошибка Олег" in failed_only and "Новый Никита" not in failed_only
    app.config["PER_PAGE"] = 3
    paged = html(client, "/groups/k1?sort=name")
    assert "Добавлен Давид" in paged and "Уже Ульяна" not in paged
    person = html(client, f"/employees/{people['failed'].id}")
    assert "Группа К" in person and "нельзя добавить" in person


def test_get_group_by_key_respects_scope(app, ctx, make_org, make_group, make_user):
    a, b = make_org(code="A"), make_org(code="B")
    make_group(a, key="ga")
    make_group(b, key="gb")
    coordinator = make_user("coordinator", orgs=[a])
    assert get_group_by_key("ga", coordinator).key == "ga"
    assert find_group_by_key("gb", coordinator) is None
    assert find_group_by_key("gb", make_user("admin")).key == "gb"
    try:
        get_group_by_key("gb", coordinator)
    except Exception as exc:  # werkzeug's NotFound
        assert getattr(exc, "code", None) == 404
    else:
        raise AssertionError("a group outside the scope must be a 404")
    g.pop("_login_user", None)
