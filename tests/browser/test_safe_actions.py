"""Safe actions in a real browser: unlinking a group in an active wave goes through a
confirmation page that wants a reason, and a failed step is retried straight from
«Требует внимания». Screenshots at 1366 px and 768 px go to the test's temporary folder."""

from __future__ import annotations

import re

import pytest
from enginetest import link, linked_chat_row, past_wave, set_status, step
from playwright.sync_api import expect

from migrator.db import get_session
from migrator.groups.models import SourceGroup


@pytest.fixture
def planned(ctx, make_org, make_employee, make_group, make_user):
    org = make_org(code="SCH3", name="Школа № 3")
    group = make_group(org, key="sch3-teachers", name="Учителя школы № 3",
                       members=[make_employee(org)])
    link(group, linked_chat_row(-3003, org, title="Учителя школы № 3 (Max)"))
    coord = make_user("coordinator", orgs=[org])
    past_wave([group], coord, name="Первая волна")
    set_status(group, "add_members", "failed")
    _ = (group.id, group.key, coord.email)  # loaded now: no read later holds SQLite's lock
    get_session().commit()
    return group, coord


def _done_reading() -> None:
    """End the test's read transaction (on SQLite it would block the live server's writes)."""
    get_session().commit()


@pytest.mark.parametrize("width", [1366, 768])
def test_unlink_asks_for_a_reason_and_attention_rows_fix_things(
        page, live_server, signed_in, planned, tmp_path, width):
    group, coord = planned
    page.set_viewport_size({"width": width, "height": 900})
    signed_in(coord)

    # -- «Требует внимания»: the failed step is retried from its row -----------------------
    page.goto(live_server.url + "/attention")
    failed = page.locator("section#failed")
    row = failed.get_by_role("row", name=re.compile("Учителя школы № 3"))
    expect(row.get_by_role("link", name=re.compile("Открыть шаг"))).to_be_visible()
    page.screenshot(path=str(tmp_path / f"attention-{width}.png"), full_page=True)
    row.get_by_role("button", name=re.compile("Повторить шаг")).click()
    expect(page).to_have_url(re.compile(r"/attention"))
    expect(page.locator("section#failed")).to_have_count(0)
    assert step(group, "add_members").status == "due"
    _done_reading()

    # -- unlinking asks first, and wants a reason while the wave runs ---------------------
    page.goto(f"{live_server.url}/groups/{group.key}")
    page.get_by_role("region", name="Чат Max").get_by_role(
        "button", name="Отменить сопоставление…").click()
    expect(page.get_by_role("heading", name=re.compile("Отмена сопоставления"))).to_be_visible()
    expect(page.get_by_role("note")).to_contain_text("незавершённую волну «Первая волна»")
    page.get_by_role("button", name="Отменить сопоставление группы с чатом").click()
    expect(page.get_by_role("alert")).to_contain_text("Исправьте ошибки")
    expect(page.get_by_text("Укажите причину.")).to_be_visible()
    page.screenshot(path=str(tmp_path / f"unlink-{width}.png"), full_page=True)
    get_session().expire_all()
    assert get_session().get(SourceGroup, group.id).max_chat_id is not None
    _done_reading()

    page.get_by_label("Причина (обязательно)").fill("Создан новый чат для учителей")
    page.get_by_role("button", name="Отменить сопоставление группы с чатом").click()
    expect(page.get_by_role("status").first).to_contain_text("Сопоставление группы")
    expect(page.get_by_role("region", name="Чат Max")).to_contain_text(
        "Группа пока не сопоставлена с чатом Max.")
    get_session().expire_all()
    assert get_session().get(SourceGroup, group.id).max_chat_id is None
