"""The wave planner (pick by organisation subtree, preview by name, create) and the training
sandbox (create a chat, add the bot, press Start as an invited employee) in Chromium, at
1366 px and 768 px."""

from __future__ import annotations

import re

from enginetest import wait_for
from playwright.sync_api import expect
from sqlmodel import select

from migrator.mail.service import send_due
from migrator.max.client import MaxClient
from migrator.max.models import MaxChat
from migrator.people.invites import issue_invitations
from migrator.people.models import Employee
from migrator.waves.models import Wave


def _no_sideways_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_plan_a_wave_by_organisation_subtree(page, live_server, signed_in, ctx, make_org,
                                             make_group, make_employee, make_user, tmp_path):
    region = make_org(code="EDU", name="Министерство образования")
    school = make_org(code="SCH3", name="Школа № 3", parent=region)
    clinic = make_org(code="HOSP", name="Городская больница")
    make_group(school, key="sch3-teachers", name="Учителя школы № 3", platform="telegram",
               members=[make_employee(school)])
    make_group(school, key="sch3-parents", name="Родители 5А", platform="whatsapp")
    make_group(clinic, key="hosp-doctors", name="Врачи больницы")
    page.set_viewport_size({"width": 1366, "height": 900})
    signed_in(make_user("coordinator", orgs=[region, clinic]))
    page.goto(live_server.url + "/waves/new")
    page.get_by_label("Название", exact=True).fill("Школа № 3 — первая волна")
    page.get_by_label("Организация (вместе с подведомственными)").select_option(
        label="· Школа № 3")
    page.get_by_role("button", name="Найти группы").click()
    found = page.locator("table.planner-groups")
    expect(page.get_by_role("heading", name="Найдено 2 группы")).to_be_visible()
    expect(found).not_to_contain_text("Врачи больницы")
    found.get_by_role("checkbox", name="Учителя школы № 3").check()
    found.get_by_role("checkbox", name="Родители 5А").check()
    page.get_by_role("button", name="Проверить").click()
    expect(page.get_by_role("heading", name="Выбрано 2 группы")).to_be_visible()
    preview = page.locator("table.preview")
    row = preview.get_by_role("row", name=re.compile("Учителя школы № 3"))
    expect(row).to_contain_text("Школа № 3")
    expect(row).to_contain_text("Telegram")
    expect(row).to_contain_text("ещё не сопоставлена с чатом Max")
    expect(preview.get_by_role("row", name=re.compile("Родители 5А"))).to_contain_text(
        "участники не загружены")
    expect(preview).not_to_contain_text("telegram")
    expect(preview).not_to_contain_text("sch3-")
    assert _no_sideways_scroll(page)
    page.screenshot(path=str(tmp_path / "planner-1366.png"), full_page=True)
    page.set_viewport_size({"width": 768, "height": 1000})
    expect(page.get_by_role("button", name="Создать волну")).to_be_visible()
    page.screenshot(path=str(tmp_path / "planner-768.png"), full_page=True)

    page.get_by_role("button", name="Создать волну").click()
    expect(page.get_by_role("status")).to_have_text(
        "Волна «Школа № 3 — первая волна» запланирована: 2 группы.")
    expect(page.get_by_role("heading", name=re.compile("Школа № 3 — первая волна"))
           ).to_be_visible()
    wave = ctx.exec(select(Wave)).one()
    ctx.commit()
    assert page.url.endswith(f"/waves/{wave.id}")
    expect(page.get_by_role("row", name=re.compile("Родители 5А"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Врачи больницы"))).to_have_count(0)


def test_training_sandbox_chat_bot_and_start(sandbox, app, page, live_server, signed_in, ctx,
                                            make_org, make_employee, make_group, make_user,
                                            smtp_server, tmp_path):
    school = make_org(code="SCH5", name="Школа № 5")
    emp = make_employee(school, full_name="Петрова Анна Сергеевна",
                        email="petrova@school5.example")
    group = make_group(school, name="Учителя школы № 5", members=[emp])
    issue_invitations(group)
    ctx.commit()
    assert send_due().sent == 1
    ctx.commit()
    with MaxClient(sandbox.url, app.config["MAX_BOT_TOKEN"]) as max_client:
        max_client.subscribe(f"{live_server.url}/max/webhook",
                             secret=app.config["MAX_WEBHOOK_SECRET"])

    page.set_viewport_size({"width": 1366, "height": 900})
    signed_in(make_user("coordinator", orgs=[school]))
    page.get_by_role("navigation", name="Основная навигация").get_by_role(
        "link", name="Учебная песочница").click()
    expect(page.get_by_role("heading", name="Учебная песочница", exact=True)).to_be_visible()

    # the chat owner: a person in Max, then their chat with the bot as administrator
    person = page.get_by_role("region", name="Создать человека")
    person.get_by_label("Имя").fill("Ольга")
    person.get_by_label("Фамилия").fill("Директорова")
    person.get_by_role("button", name="Создать человека").click()
    expect(page.get_by_role("status")).to_contain_text("Ольга Директорова")
    chat_form = page.get_by_role("region", name="Создать чат")
    chat_form.get_by_role("button", name="Создать чат").click()  # no title: refused inline
    expect(chat_form.locator("p.error")).to_be_visible()
    expect(chat_form.get_by_label("Название чата")).to_have_attribute("aria-invalid", "true")
    chat_form.get_by_label("Название чата").fill("Учителя школы № 5 (Max)")
    chat_form.get_by_role("button", name="Создать чат").click()
    expect(page.get_by_role("status")).to_contain_text("Учителя школы № 5 (Max)")
    bot_form = page.get_by_role("region", name="Бот в чате")
    (chat,) = sandbox.chats()
    bot_form.get_by_label("Чат").select_option(label=f"Учителя школы № 5 (Max) ({chat['chat_id']})")
    bot_form.get_by_role("button", name="Добавить бота").click()
    expect(page.get_by_role("status")).to_have_text("Бот добавлен в чат «Учителя школы № 5 (Max)».")
    chats = page.locator("table.sandbox-chats")
    expect(chats.get_by_role("row", name=re.compile("Учителя школы № 5"))).to_contain_text(
        "в чате")
    wait_for(ctx, lambda: ctx.exec(select(MaxChat).where(
        MaxChat.title == "Учителя школы № 5 (Max)")).first(), "the chat's discovery")

    # the invited employee presses Start on their invitation: the app links them
    start = page.get_by_role("region", name="Нажать «Старт» от имени человека")
    start.get_by_label("Приглашение сотрудника").select_option(
        label="Петрова Анна Сергеевна <petrova@school5.example>")
    start.get_by_role("button", name="Нажать «Старт»").click()
    expect(page.get_by_role("status")).to_contain_text("по своему приглашению")
    wait_for(ctx, lambda: ctx.scalar(select(Employee.max_user_id).where(
        Employee.id == emp.id)), "the employee's link")
    assert _no_sideways_scroll(page)
    page.screenshot(path=str(tmp_path / "training-1366.png"), full_page=True)
    page.goto(live_server.url + f"/employees/{emp.id}")
    expect(page.get_by_role("main")).to_contain_text("подключён к Max")

    page.set_viewport_size({"width": 768, "height": 1000})
    page.goto(live_server.url + "/sandbox/")
    expect(page.locator("table.sandbox-people")).to_contain_text("Петрова")
    expect(page.get_by_role("button", name="Нажать «Старт»")).to_be_visible()
    page.screenshot(path=str(tmp_path / "training-768.png"), full_page=True)
