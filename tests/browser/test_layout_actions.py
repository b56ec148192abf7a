"""Layout at a laptop (1366×768) and a tablet (768×1024) width: the group page's step
actions are on screen without scrolling sideways, and neither the group page nor the
dashboard's organisation table makes the page scroll sideways. Screenshots go to the test's
temporary folder."""

from __future__ import annotations

import pytest
from enginetest import link, linked_chat_row, past_wave, step
from playwright.sync_api import expect

from migrator.db import get_session

WIDTHS = [(1366, 768), (768, 1024)]
LONG_ERROR = ("Max ответил ошибкой при добавлении участников: слишком много запросов, "
              "попытка будет повторена автоматически через несколько минут")


@pytest.fixture
def busy_group(ctx, make_org, make_employee, make_group, make_user):
    region = make_org(code="EDU", name="Министерство образования и науки Свердловской области")
    for n in range(4):
        make_org(code=f"MUN{n}", parent=region,
                 name=f"Управление образования муниципального округа «Очень длинное название "
                      f"№ {n + 1}»")
    school = make_org(code="SCH", parent=region,
                      name="Муниципальное автономное общеобразовательное учреждение "
                           "«Средняя общеобразовательная школа № 3 с углублённым изучением "
                           "отдельных предметов»")
    emps = [make_employee(school, full_name=f"Сотрудникова Мария {n}",
                          email=f"very.long.employee.address.{n}@school3.education.example.org",
                          max_user_id=500 + n) for n in range(3)]
    group = make_group(school, key="sch3-teachers-and-administration-staff",
                       name="Учителя и администрация школы № 3 — рабочая группа", members=emps)
    link(group, linked_chat_row(-9001, school, title="Учителя и администрация школы № 3"))
    coord = make_user("coordinator", orgs=[region],
                      email="coordinator.of.the.education.ministry@region.example.org")
    past_wave([group], coord, name="Первая волна образования")
    session = get_session()
    for kind, status, error in (("invite", "succeeded", None),
                                ("add_members", "due", LONG_ERROR),
                                ("announce", "waiting", None)):
        s = step(group, kind)
        s.status, s.last_error, s.attempts = status, error, 3 if error else 1
        s.changed_by = coord.email
        session.add(s)
    _ = (group.key, coord.email)  # loaded now: no read later holds SQLite's lock
    session.commit()
    return group, coord


def _visible_unclipped(page, locator) -> dict:
    """The control's box, and whether the point at its centre is the control itself (so no
    scrolling wrapper clips it and nothing covers it)."""
    locator.scroll_into_view_if_needed()
    return locator.evaluate("""el => {
        const r = el.getBoundingClientRect();
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return {left: r.left, right: r.right, top: r.top, bottom: r.bottom,
                hit: !!hit && (hit === el || el.contains(hit)),
                vw: document.documentElement.clientWidth, vh: window.innerHeight};
    }""")


def _sideways(page) -> int:
    return page.evaluate("document.scrollingElement.scrollWidth - "
                         "document.scrollingElement.clientWidth")


@pytest.mark.parametrize(("width", "height"), WIDTHS)
def test_step_actions_are_on_screen_and_nothing_scrolls_sideways(
        page, live_server, signed_in, busy_group, tmp_path, width, height):
    group, coord = busy_group
    page.set_viewport_size({"width": width, "height": height})
    signed_in(coord)

    page.goto(f"{live_server.url}/groups/{group.key}")
    panel = page.get_by_role("region", name="Шаги перехода")
    expect(panel).to_be_visible()
    controls = [
        panel.get_by_role("button", name="Подтвердить: объявление о переходе размещено"),
        panel.get_by_role("group", name="Действия: Добавление участников").get_by_role(
            "button", name="Приостановить"),
        panel.get_by_role("group", name="Действия: Добавление участников").get_by_text(
            "Другие действия"),
    ]
    for control in controls:
        expect(control).to_be_visible()
        box = _visible_unclipped(page, control)
        assert box["left"] >= 0 and box["right"] <= box["vw"], (width, box)
        assert box["top"] >= 0 and box["bottom"] <= box["vh"], (width, box)
        assert box["hit"], f"clipped or covered at {width}px: {box}"
    page.screenshot(path=str(tmp_path / f"group-{width}.png"), full_page=True)
    assert _sideways(page) <= 0, f"the group page scrolls sideways at {width}px"

    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("main")).to_be_visible()
    if width >= 1366:  # the organisation table is whole, not scrolled inside its wrapper
        orgs = page.locator("table.orgs")
        expect(orgs).to_be_visible()
        cut = orgs.evaluate("t => t.scrollWidth - t.parentElement.clientWidth")
        assert cut <= 0, f"the organisation table is cut off by {cut}px at {width}px"
    page.screenshot(path=str(tmp_path / f"dashboard-{width}.png"), full_page=True)
    assert _sideways(page) <= 0, f"the dashboard scrolls sideways at {width}px"
