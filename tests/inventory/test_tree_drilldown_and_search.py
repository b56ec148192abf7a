"""Organisation tree at scale (two levels, drill-down, search) and the employee search's
capped count."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from migrator.db import get_engine


def html(client, url, status=200):
    resp = client.get(url)
    assert resp.status_code == status, (url, resp.status_code)
    return resp.get_data(as_text=True)


@pytest.fixture
def region(make_org, make_employee, make_group):
    """REG → A → A1 → A1x (three levels below the top), REG → B."""
    reg = make_org(code="REG", name="Регион")
    a = make_org(code="A", name="Департамент Альфа", parent=reg)
    a1 = make_org(code="A1", name="Школа Альфа-1", parent=a)
    a1x = make_org(code="A1X", name="Филиал Гамма", parent=a1)
    b = make_org(code="B", name="Департамент Бета", parent=reg)
    make_employee(a1x, full_name="Глубокий Глеб", max_user_id=11)
    make_employee(a1, full_name="Средний Семён")
    make_employee(b, full_name="Борис Бетов")
    make_group(a1x, key="g-deep")
    return {"reg": reg, "a": a, "a1": a1, "a1x": a1x, "b": b}


def test_top_shows_two_levels_with_subtree_counts_and_drill_links(client, region, make_user,
                                                                   login):
    login(client, make_user("admin"))
    page = html(client, "/orgs/")
    assert "Регион" in page and "Департамент Альфа" in page and "Департамент Бета" in page
    # The third level and below are reached by drilling down, not rendered.
    assert "Школа Альфа-1" not in page and "Филиал Гамма" not in page
    assert "/orgs/?root=A" in page and "2 подведомственные" in page
    assert "/orgs/?root=B" not in page  # B has nothing below it
    # Subtree totals still include the organisations that are not shown.
    assert "сотрудники: 0 / 3" in page  # the region
    assert "сотрудники: 0 / 2" in page and "подключены: 0 / 1" in page  # department A
    assert "группы: 0 / 1" in page
    assert "5 организаций" in page


def test_drill_down_shows_the_subtree_and_where_it_is(client, region, make_user, login):
    login(client, make_user("admin"))
    page = html(client, "/orgs/?root=A1")
    assert "Школа Альфа-1" in page and "Филиал Гамма" in page
    assert "Департамент Бета" not in page
    crumbs = re.search(r'<nav class="muted crumbs".*?</nav>', page, re.S).group(0)
    assert "Регион" in crumbs and "Департамент Альфа" in crumbs and "Школа" not in crumbs
    assert "сотрудники: 1 / 2" in page and "сотрудники: 1 / 1" in page
    html(client, "/orgs/?root=NOPE", 404)


def test_coordinator_drill_down_and_search_stay_in_scope(client, region, make_user, login):
    login(client, make_user("coordinator", orgs=[region["a"]]))
    top = html(client, "/orgs/")
    assert "Департамент Альфа" in top and "Школа Альфа-1" in top
    assert "Регион" not in top and "Бета" not in top
    html(client, "/orgs/?root=B", 404)
    html(client, "/orgs/?root=REG", 404)
    deep = html(client, "/orgs/?root=A1")
    assert "Филиал Гамма" in deep and "Регион" not in deep  # no crumb outside the scope
    found = html(client, "/orgs/?q=департамент")
    assert "Департамент Альфа" in found and "Бета" not in found


def test_search_finds_deep_organisations_by_name_or_code(client, region, make_user, login):
    login(client, make_user("admin"))
    found = html(client, "/orgs/?q=гамма")
    assert "Филиал Гамма" in found and "Школа Альфа-1" in found  # with its parent
    assert "Департамент Бета" not in found
    assert "сотрудники: 1 / 1" in found and "группы: 1 / 1" in found
    assert "Департамент Бета" in html(client, "/orgs/?q=b")  # code, any case
    assert "Подходящих организаций нет" in html(client, "/orgs/?q=нет-такой")


def test_search_counts_each_match_with_its_whole_subtree(client, region, make_user, login):
    login(client, make_user("admin"))
    found = html(client, "/orgs/?q=альфа")
    department = found[found.index(">Департамент Альфа<"):found.index(">Школа Альфа-1<")]
    school = found[found.index(">Школа Альфа-1<"):]
    assert "сотрудники: 0 / 2" in department and "подключены: 0 / 1" in department
    assert "группы: 0 / 1" in department and "2 подведомственные" in department
    assert "сотрудники: 1 / 2" in school and "подключены: 0 / 1" in school
    assert "группы: 0 / 1" in school and "1 подведомственная" in school
    assert "Бета" not in found and "Глубокий" not in found


def test_tree_queries_do_not_grow_with_the_number_of_organisations(app, client, make_org,
                                                                   make_employee, make_user,
                                                                   login):
    login(client, make_user("admin"))
    reg = make_org(code="REG", name="Регион")

    def statements(url):
        seen = []
        with app.app_context():
            engine = get_engine()

        def count(*_args):
            seen.append(1)

        event.listen(engine, "before_cursor_execute", count)
        try:
            html(client, url)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(seen)

    dept = make_org(code="D0", name="Отдел 0", parent=reg)
    make_employee(make_org(code="S0", name="Школа 0", parent=dept))
    # the first page after a commit reloads the signed-in user: warm up before each series
    html(client, "/orgs/")
    few = statements("/orgs/"), statements("/orgs/?root=D0"), statements("/orgs/?q=отдел")
    for i in range(1, 12):
        d = make_org(code=f"D{i}", name=f"Отдел {i}", parent=reg)
        make_employee(make_org(code=f"S{i}", name=f"Школа {i}", parent=d))
    html(client, "/orgs/")
    many = statements("/orgs/"), statements("/orgs/?root=D0"), statements("/orgs/?q=отдел")
    assert many == few
    page = html(client, "/orgs/")
    assert page.index("Отдел 2<") < page.index("Отдел 10<")  # natural order


def test_employee_count_is_capped(app, client, make_org, make_employee, make_user, login):
    org = make_org(code="A", name="Отдел")
    for i in range(5):
        make_employee(org, email=f"ivanov{i}@example.ru", full_name=f"Иванов {i}")
    make_employee(org, email="petrov@example.ru", full_name="Петров Пётр")
    login(client, make_user("admin"))
    app.config["PER_PAGE"] = 2
    app.config["EMPLOYEE_COUNT_LIMIT"] = 3

    first = html(client, "/employees/?q=иванов")
    assert "Всего: 3+" in first and "Страница 1 из 2+" in first
    assert 'rel="next"' in first and "Петров" not in first
    third = html(client, "/employees/?q=иванов&page=3")  # past the counted rows
    assert "Иванов 4" in third and 'rel="next"' not in third and 'rel="prev"' in third
    assert "Страница 3 из 3+" in third

    app.config["EMPLOYEE_COUNT_LIMIT"] = 5  # exactly at the limit: an exact total
    exact = html(client, "/employees/?q=иванов")
    assert "Всего: 5<" in exact and "Всего: 5+" not in exact and "Страница 1 из 3<" in exact
    assert "Всего: 1<" in html(client, "/employees/?q=Петров")


def test_employee_search_matches_the_beginning_of_the_e_mail(client, make_org, make_employee,
                                                             make_user, login):
    org = make_org(code="A")
    make_employee(org, email="alice@example.ru", full_name="Алиса Альфова")
    login(client, make_user("admin"))
    assert "Алиса Альфова" in html(client, "/employees/?q=ALI")
    assert "Алиса Альфова" not in html(client, "/employees/?q=lice@")
    assert "Алиса Альфова" in html(client, "/employees/?q=ЛИСА")  # inside the name, any case
    assert "Алиса Альфова" not in html(client, "/employees/?q=a_ice")  # _ is literal


@pytest.mark.postgres_only
def test_trigram_indexes_serve_the_search_on_postgresql(ctx):
    names = set(ctx.scalars(sa.text(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'employee' "
        "AND indexdef LIKE '%gin_trgm_ops%'")))
    assert names == {"ix_employee_full_name_trgm", "ix_employee_email_trgm"}
