"""A coordinator's day in a real browser, against the Max sandbox over HTTP:

link the Max chat the bot was added to, plan a wave, watch its progress, confirm the
announcement step the runner left waiting, and export the region's report to Excel.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from enginetest import wait_for
from openpyxl import load_workbook
from playwright.sync_api import expect
from sqlmodel import select

from migrator.max.client import MaxClient
from migrator.max.models import MaxChat

PERMS = ["read_all_messages", "add_remove_members", "pin_message"]
CHAT_TITLE = "Учителя школы №1 (Max)"




def local_input(dt: datetime, tz: str) -> str:
    """A value for <input type="datetime-local"> in the configured time zone."""
    return dt.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")


def test_link_chat_plan_wave_confirm_step_watch_progress_export_report(
        sandbox, page, live_server, signed_in, app, ctx, make_org, make_employee, make_group,
        make_user, tmp_path):
    region = make_org(code="EDU", name="Министерство образования")
    school = make_org(code="SCH1", name="Школа №1", parent=region)
    make_org(code="SCH2", name="Школа №2", parent=region)
    director_max = sandbox.ctl("POST", "/users", {"first_name": "Ольга",
                                                  "last_name": "Директорова"})["user_id"]
    director = make_employee(school, email="director@school1.example",
                             full_name="Директорова Ольга", max_user_id=director_max)
    teacher = make_employee(school, email="teacher@school1.example", full_name="Учителев Пётр")
    make_group(school, key="sch1-teachers", name="Учителя школы №1", platform="whatsapp",
               members=[director, teacher])
    coordinator = make_user("coordinator", orgs=[region])

    # The director creates the chat in Max and adds the bot as an administrator.
    with MaxClient(sandbox.url, app.config["MAX_BOT_TOKEN"]) as client:
        client.subscribe(f"{live_server.url}/max/webhook",
                         secret=app.config["MAX_WEBHOOK_SECRET"])
    chat_id = sandbox.ctl("POST", "/chats", {"title": CHAT_TITLE,
                                             "owner_id": director_max})["chat_id"]
    sandbox.ctl("POST", f"/chats/{chat_id}/bot", {"permissions": PERMS,
                                                  "by_user_id": director_max})
    wait_for(ctx, lambda: ctx.exec(select(MaxChat.checked_at).where(
        MaxChat.chat_id == chat_id)).first(), "the chat's pre-flight check")

    # -- the discovered chat is listed ---------------------------------------------------
    signed_in(coordinator)
    nav = page.get_by_role("navigation", name="Основная навигация")
    nav.get_by_role("link", name="Чаты Max").click()
    row = page.get_by_role("row", name=re.compile(re.escape(CHAT_TITLE)))
    expect(row).to_contain_text("обнаружен")
    expect(row).to_contain_text("готов")
    expect(row).to_contain_text("Школа №1")

    # -- link it from the group's page ---------------------------------------------------
    nav.get_by_role("link", name="Группы").click()
    page.get_by_role("link", name="Учителя школы №1").click()
    expect(page.get_by_role("heading", name="Учителя школы №1")).to_be_visible()
    panel = page.get_by_role("region", name="Чат Max")
    expect(panel).to_contain_text("Группа пока не сопоставлена с чатом Max.")
    panel.get_by_role("combobox", name="Чат Max").select_option(
        label=f"{CHAT_TITLE} ({chat_id})")
    panel.get_by_role("button", name="Сопоставить").click()
    expect(page.get_by_role("status")).to_have_text(
        f"Группа «Учителя школы №1» сопоставлена с чатом Max «{CHAT_TITLE}».")
    expect(panel.get_by_role("link", name=CHAT_TITLE)).to_be_visible()
    expect(panel).to_contain_text("готов")
    expect(panel.get_by_role("button", name="Отменить сопоставление")).to_be_visible()
    nav.get_by_role("link", name="Чаты Max").click()
    row = page.get_by_role("row", name=re.compile(re.escape(CHAT_TITLE)))
    expect(row).to_contain_text("сопоставлен")
    expect(row.get_by_role("link", name="sch1-teachers")).to_be_visible()

    # -- plan a wave: the first three steps already due, the cutover in two days -----------
    nav.get_by_role("link", name="Волны").click()
    page.get_by_role("link", name="Запланировать волну").click()
    tz = app.config["MIGRATOR_TZ"]
    now = datetime.now(ZoneInfo(tz))
    page.get_by_label("Название", exact=True).fill("Школа №1 — первая волна")
    for label, when in (("Приглашения", now - timedelta(hours=3)),
                        ("Добавление участников", now - timedelta(hours=2)),
                        ("Объявление", now - timedelta(hours=1)),
                        ("Переключение", now + timedelta(days=2)),
                        ("Срок", now + timedelta(days=10))):
        page.get_by_label(label, exact=True).fill(local_input(when, tz))
    page.get_by_label("Организация (вместе с подведомственными)").select_option(
        label="· Школа №1")
    platforms = page.get_by_role("group", name="Платформы")
    platforms.get_by_role("checkbox", name="WhatsApp").check()
    page.get_by_role("button", name="Найти группы").click()
    page.get_by_role("checkbox", name="Учителя школы №1").check()
    page.get_by_role("button", name="Проверить").click()
    expect(page.get_by_label("Название", exact=True)).to_have_value("Школа №1 — первая волна")
    preflight = page.locator("table.preview").get_by_role(
        "row", name=re.compile("Учителя школы №1"))
    expect(preflight).to_contain_text(CHAT_TITLE)
    expect(preflight).to_contain_text("готово")
    page.get_by_role("button", name="Создать волну").click()
    expect(page.get_by_role("status")).to_have_text(
        "Волна «Школа №1 — первая волна» запланирована: 1 группа.")
    expect(page.get_by_role("heading", name=re.compile("Волна: Школа №1 — первая волна"))
           ).to_be_visible()
    wave_row = page.get_by_role("row", name=re.compile("sch1-teachers"))
    expect(wave_row.get_by_role("link", name="sch1-teachers")).to_be_visible()
    expect(wave_row).to_contain_text("запланирован")

    # -- the runner invites, adds the members it can and posts the announcement ------------
    from migrator.engine.runner import run_due

    summary = run_due(send_mail=False)
    ctx.commit()
    assert summary.waiting == 1, summary.line()
    pinned = sandbox.ctl("GET", f"/chats/{chat_id}")["pinned_message"]
    assert pinned and pinned["sender"]["is_bot"]

    # -- watch progress on the dashboard ---------------------------------------------------
    nav.get_by_role("link", name="Сводка").click()
    expect(page.get_by_role("heading", name="Сводка: Министерство образования")).to_be_visible()
    figures = page.get_by_role("region", name="Основные показатели")
    linked = figures.locator(".card").filter(
        has=page.get_by_role("heading", name="Сотрудники, подключённые к Max"))
    expect(linked.locator(".big")).to_have_text("1 / 2")
    in_chats = figures.locator(".card").filter(
        has=page.get_by_role("heading", name="Участники в чатах Max"))
    expect(in_chats.locator(".big")).to_have_text("1 / 2")
    nearest = figures.locator(".card").filter(
        has=page.get_by_role("heading", name="Ближайший срок"))
    expect(nearest).to_contain_text("Школа №1 — первая волна")
    expect(nearest).to_contain_text(re.compile(r"(9|10) дней"))
    by_org = page.get_by_role("region", name="По организациям")
    expect(by_org.get_by_role("row", name=re.compile("Школа №1"))).to_be_visible()

    # -- confirm the announcement on the group's page ---------------------------------------
    nav.get_by_role("link", name="Волны").click()
    page.get_by_role("link", name="Школа №1 — первая волна").click()
    page.get_by_role("link", name="sch1-teachers").click()
    steps = page.get_by_role("region", name="Шаги перехода")
    announce = steps.get_by_role("row", name=re.compile("^Объявление"))
    expect(announce).to_contain_text("ждёт подтверждения")
    expect(steps.get_by_role("row", name=re.compile("^Приглашения"))).to_contain_text(
        "выполнен")
    actions = steps.get_by_role("group", name="Действия: Объявление")  # under the step's row
    actions.get_by_label("Примечание").fill("Объявление в WhatsApp размещено")
    actions.get_by_role(
        "button", name="Подтвердить: объявление о переходе размещено в старой группе").click()
    expect(page.get_by_role("status")).to_have_text(
        "Подтверждён шаг «Объявление», группа «Учителя школы №1».")
    announce = page.get_by_role("region", name="Шаги перехода").get_by_role(
        "row", name=re.compile("^Объявление"))
    expect(announce).to_contain_text("выполнен")
    expect(announce).to_contain_text("Объявление в WhatsApp размещено")
    expect(page.get_by_role("region", name="Шаги перехода").get_by_role(
        "button", name=re.compile("^Подтвердить"))).to_have_count(0)

    # -- export the report -------------------------------------------------------------
    nav.get_by_role("link", name="Сводка").click()
    page.get_by_role("link", name="Отчёт для печати").click()
    expect(page.get_by_role("heading", name=re.compile(
        "Министерство образования"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Школа №2"))).to_be_visible()
    with page.expect_download() as info:
        page.get_by_role("link", name="Выгрузить в Excel").click()
    download = info.value
    assert re.fullmatch(r"ход-перехода-EDU-\d{4}-\d{2}-\d{2}\.xlsx", download.suggested_filename)
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    sheet = load_workbook(path).worksheets[0]
    rows = {r[0]: r for r in sheet.iter_rows(values_only=True) if r and r[0]}
    assert "Министерство образования" in str(sheet["A1"].value)
    sch1 = rows["SCH1"]
    assert sch1[1].strip() == "Школа №1"
    assert sch1[2:4] == (2, 1)  # employees, linked to Max
    assert rows["SCH2"][2] == 0
