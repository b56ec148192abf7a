"""The employee search on SQLite through the trigram full-text index (migration 0039): the
same matches, order and count as the plain ``LIKE`` conditions, and an index kept right by
every write path (ORM, the imports' bulk writes, the demo seeder)."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from migrator.db import get_engine, utcnow
from migrator.people.models import Employee
from migrator.people.search import FTS_TABLE, fts_candidates, like_filter, search_filter

PEOPLE = [
    ("ivanov@example.ru", "Иванов Иван Иванович"),
    ("ivanova@example.ru", "ИВАНОВА Мария"),
    ("ivanchenko@example.ru", "иванченко пётр"),
    ("mixed@example.ru", "иВаН пЕтРоВ"),  # no capitalisation variant of "иван" matches it
    ("fedorov@example.ru", "Фёдоров Семён"),
    ("fedorova@example.ru", "Федорова Алёна"),  # е, not ё
    ("yolkin@example.ru", "ЁЛКИН Ёжик"),
    ("smith@example.com", "John SMITH"),
    ("obrien@example.com", "McDonald o'Brien"),
    ("percent@example.ru", "Скидка 100% Процентов"),
    ("snake@example.ru", "snake_case_name"),
    ("slash@example.ru", "Отдел А/Б и/или"),
    ("quote@example.ru", 'Кавычки "ёлочки"'),
    ("greek@example.ru", "Σίσυφος ΣΊΣΥΦΟΣ"),
    ("strasse@example.de", "Straße STRASSE"),
    ("turk@example.tr", "İstanbul Ignatius"),
    ("a_b@example.ru", "Ivanov Ivan"),
    ("twin1@example.ru", "Петров Пётр"),  # the same name twice: ordered by e-mail
    ("twin0@example.ru", "Петров Пётр"),
]
QUERIES = [
    "иван", "Иван", "ИВАН", "иВаН", "ван", "ива", "ivan", "IVANOV", "Ivanov Iv", "фёдор",
    "федор", "Фёдоров", "ёлк", "ЁЛК", "алё", "smith", "SMITH", "Smi", "mcd", "o'b", "100%",
    "0% п", "%", "%%%", "_", "e_c", "a_b", "/", "А/Б", "и/или", '"ёл', 'ки"', '"', "σίσ", "ΣΊΣ",
    "ss", "ße", "STRASSE", "ist", "İst", "петров", "Пётр", "ab", "и", "iv", "x",
    "нет такого", "twin", "turk@", "пёт\x00р",
]


def _ids(ctx, where) -> list[int]:
    """The matches in the list's default order (name, then e-mail)."""
    return list(ctx.scalars(sa.select(Employee.id).where(where)
                            .order_by(Employee.full_name, Employee.email)))


def _check_index(ctx) -> None:
    """FTS5's own check of the index against the employee table (fails on any difference)."""
    ctx.execute(sa.text(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) "
                        "VALUES ('integrity-check', 1)"))


@pytest.fixture
def sqlite_only(db_kind):
    if db_kind != "sqlite":
        pytest.skip("the full-text index is SQLite's (PostgreSQL has trigram GIN indexes)")


@pytest.fixture
def people(ctx, make_org, make_employee):
    org = make_org(code="S", name="Отдел поиска")
    return [make_employee(org, email=email, full_name=name) for email, name in PEOPLE]


def test_the_index_finds_exactly_what_the_like_conditions_find(sqlite_only, ctx, people):
    _check_index(ctx)
    for text in QUERIES:
        assert _ids(ctx, search_filter(text)) == _ids(ctx, like_filter(text)), text
        served = fts_candidates(text) is not None
        assert served == (len(text) >= 3 and "\x00" not in text), text
    # The index folds every case; the LIKE conditions decide, as before: "иВаН пЕтРоВ" is
    # found by its own casing only.
    assert people[3].id in _ids(ctx, search_filter("иВаН"))
    assert people[3].id not in _ids(ctx, search_filter("иван"))
    assert people[3].id in fts_candidates("иван")
    assert fts_candidates("иван") is not None and len(fts_candidates("иван")) >= 4
    # Dense matches are left to the plain scan (it finds a page of them at once).
    assert fts_candidates("иван", limit=2) is None


def test_the_page_is_the_same_without_the_index(sqlite_only, app, client, ctx, people,
                                                make_user, login):
    login(client, make_user("admin"))
    app.config["PER_PAGE"] = 2
    app.config["EMPLOYEE_COUNT_LIMIT"] = 2
    urls = [f"/employees/?q={quote(q)}&sort={sort}&desc={desc}&page={page}"
            for q in ("иван", "ИВАН", "петров", "ёлк", "100%", "a_b", "и/или", "нет такого")
            for sort in ("name", "email", "org", "linked") for desc in (0, 1)
            for page in (1, 2, 3)]

    def pages():
        out = {}
        for url in urls:
            resp = client.get(url)
            assert resp.status_code == 200, url
            text = resp.get_data(as_text=True)
            out[url] = (re.findall(r'href="/employees/(\d+)"', text),
                        re.search(r"Всего: [^<]*", text).group(0))
        return out

    statements = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with_index = pages()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert any("MATCH" in s for s in statements)  # the index served the searches
    ctx.execute(sa.text(f"DROP TABLE {FTS_TABLE}"))
    ctx.commit()
    assert pages() == with_index
    assert with_index[f"/employees/?q={quote('иван')}&sort=name&desc=0&page=1"][1] == "Всего: 2+"
    assert with_index[f"/employees/?q={quote('петров')}&sort=name&desc=0&page=1"][0] == [
        str(people[-1].id), str(people[-2].id)]  # twin0 before twin1


def test_every_write_keeps_the_index_right(sqlite_only, app, ctx, runner, people, tmp_path):
    fedorov = people[4]
    fedorov.full_name = "Фролов Семён"
    ctx.commit()
    assert _ids(ctx, search_filter("Фёдоров")) == []
    assert _ids(ctx, search_filter("фролов")) == [fedorov.id]
    ctx.execute(sa.update(Employee).where(Employee.id == people[0].id)
                .values(position="Инженер"))  # no name change
    ctx.delete(people[1])
    ctx.commit()
    assert _ids(ctx, search_filter("ИВАНОВА")) == []
    _check_index(ctx)

    # The import: one bulk append of new rows and bulk updates of changed ones.
    rows = ["email,full_name,org_code", "smith@example.com,Джон Смитов,S",
            "new1@example.ru,Новикова Анна,S", "new2@example.ru,Новиков Олег,S"]
    csv = tmp_path / "employees.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    ctx.rollback()
    result = runner.invoke(args=["import", "employees", str(csv)])
    assert result.exit_code == 0, result.output
    ctx.rollback()
    _check_index(ctx)
    assert len(_ids(ctx, search_filter("новиков"))) == 2
    smith = ctx.get(Employee, people[7].id)
    ctx.refresh(smith)
    assert smith.full_name == "Джон Смитов" and smith.updated_at >= smith.created_at
    assert _ids(ctx, search_filter("smith")) == _ids(ctx, search_filter("смитов")) == [smith.id]

    # The demo seeder: ORM objects for the demo region, bulk appends at region scale.
    result = runner.invoke(args=[
        "demo", "seed", "--scale", "region", "--orgs", "20", "--groups", "10",
        "--employees", "300", "--memberships", "100", "--audit-events", "10", "--waves", "1"])
    assert result.exit_code == 0, result.output
    ctx.rollback()
    _check_index(ctx)
    assert ctx.scalar(sa.select(sa.func.count()).select_from(Employee)) > 300
    for text in ("ова", "Иван", "ИВАНОВ", "rs.example"):
        assert _ids(ctx, search_filter(text)) == _ids(ctx, like_filter(text)), text


ALPHABET = "аАбБеЕёЁиИвВнНaAbBsSßİiΣσς %_/\"'-"
# Names drawn from a small alphabet so that queries hit them, cased many ways.
names_strategy = st.lists(st.text(ALPHABET, min_size=1, max_size=12), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=names_strategy, data=st.data())
def test_property_index_and_like_agree(sqlite_only, ctx, make_org, names, data):
    org = make_org()
    now = utcnow()
    ctx.execute(sa.insert(Employee), [
        {"email": f"p{i}-{org.id}@example.ru", "full_name": name, "org_id": org.id,
         "created_at": now, "updated_at": now} for i, name in enumerate(names)])
    ctx.commit()
    ids = list(ctx.scalars(sa.select(Employee.id).where(Employee.org_id == org.id)))
    try:
        name = data.draw(st.sampled_from(names))
        start = data.draw(st.integers(0, len(name)))
        end = data.draw(st.integers(start, len(name)))
        case = data.draw(st.sampled_from([str, str.lower, str.upper, str.swapcase,
                                          str.title]))
        text = data.draw(st.one_of(st.just(case(name[start:end])),
                                   st.text(ALPHABET, min_size=1, max_size=5))).strip()
        if text:
            assert _ids(ctx, search_filter(text)) == _ids(ctx, like_filter(text))
    finally:
        ctx.rollback()
        ctx.execute(sa.delete(Employee).where(Employee.id.in_(ids)))
        ctx.commit()
    _check_index(ctx)
