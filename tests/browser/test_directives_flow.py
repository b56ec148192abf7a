"""Directives in the browser: recording a directive, filling the register of transition
orders, importing public channels, producing and signing off the ministry report."""

import hashlib
import json
import re
from datetime import timedelta

import sqlalchemy as sa
from playwright.sync_api import expect

from migrator.audit.models import AuditEvent
from migrator.directives.models import Directive, TransitionAct
from migrator.progress.service import local_today

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
CHANNELS = ("org_code,platform,url,title,max_url,status\n"
            "SCH1,telegram,https://t.me/school1,Новости школы № 1,,active\n"
            "SCH1,telegram,https://t.me/school1_old,Старый канал школы,https://max.ru/s1,moved\n")


def _fresh(ctx):
    ctx.commit()  # never hold the SQLite write lock while the live server works


def _region(make_org, make_employee):
    region = make_org(code="REG", name="Регион", head_email="gov@example.org")
    school = make_org(code="SCH1", name="Школа № 1", parent=region,
                      head_email="director@example.org")
    make_employee(region, email="gov@example.org", full_name="Губернатор")
    make_employee(school, email="director@example.org", full_name="Директор школы")
    return region, school


def test_record_a_directive_and_see_who_is_behind(
        page, live_server, signed_in, make_org, make_employee, make_user, ctx, app,
        tmp_path):
    app.config["DIRECTIVE_FILES_DIR"] = str(tmp_path / "files")
    _region(make_org, make_employee)
    signed_in(make_user("admin"))
    page.get_by_role("link", name="Поручения").click()
    page.get_by_role("link", name="Записать поручение").click()
    page.get_by_label("Название").fill("Поручение губернатора № 12")
    page.get_by_label("Кем выдано").fill("Губернатор")
    start = local_today() - timedelta(days=10)
    page.get_by_label("Дата поручения").fill(start.isoformat())
    page.get_by_label("Охват: организация и все подведомственные").select_option("REG")
    first = page.get_by_role("group", name="Контрольный срок 1")
    first.get_by_label("Показатель").select_option(
        label="Руководители организаций, подключённые к Max")
    first.get_by_label("Цель, %").fill("100")
    first.get_by_label("Срок").fill((local_today() + timedelta(days=10)).isoformat())
    # A target above 100 is refused next to its field.
    second = page.get_by_role("group", name="Контрольный срок 2")
    second.get_by_label("Показатель").select_option(label="Сотрудники, подключённые к Max")
    second.get_by_label("Цель, %").fill("140")
    second.get_by_label("Срок").fill((local_today() + timedelta(days=30)).isoformat())
    page.get_by_role("button", name="Записать").click()
    expect(page.get_by_text("число больше 0 и не больше 100")).to_be_visible()
    _fresh(ctx)
    assert ctx.scalar(sa.select(sa.func.count()).select_from(Directive)) == 0
    _fresh(ctx)
    page.get_by_role("group", name="Контрольный срок 2").get_by_label("Цель, %").fill("40")
    page.get_by_role("button", name="Записать").click()

    expect(page.get_by_role("heading", name="Поручение губернатора № 12")).to_be_visible()
    expect(page.get_by_text("Поручение «Поручение губернатора № 12» записано.")).to_be_visible()
    row = page.get_by_role("row", name=re.compile("Школа № 1"))
    expect(row).to_contain_text("отстаёт")
    expect(row).to_contain_text("0% / план 50%")
    expect(page.locator("svg.chart").first).to_be_visible()

    # The dashboard shows the directive's trajectory against the actual curve.
    page.get_by_role("link", name="Сводка").click()
    section = page.get_by_role("region", name="Поручения")
    expect(section.get_by_role("link", name="Поручение губернатора № 12")).to_be_visible()
    expect(section.get_by_role("img", name=re.compile(
        "Руководители организаций, подключённые к Max: 100% к .* — Регион"))).to_be_visible()
    expect(section.get_by_role("row", name=re.compile("Руководители организаций"))
           ).to_contain_text("отстаёт")
    expect(section.locator("svg.chart")).to_have_count(2)  # one chart per milestone
    page.set_viewport_size({"width": 768, "height": 1024})  # a tablet: no sideways scrolling
    assert page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0


def test_fill_the_register_on_the_organisation_page(
        page, live_server, signed_in, make_org, make_employee, make_user, ctx, app,
        tmp_path):
    app.config["DIRECTIVE_FILES_DIR"] = str(tmp_path / "files")
    _reg, school = _region(make_org, make_employee)
    signed_in(make_user("coordinator", orgs=[school]))
    page.goto(live_server.url + "/orgs/SCH1")
    section = page.get_by_role("region", name="Акт о переходе в Max")
    expect(section).to_contain_text("Акт или освобождение ещё не внесены.")
    section.get_by_label("Номер акта").fill("15-од")
    section.get_by_label("Дата акта").fill("2025-11-28")
    section.get_by_label("Скан (PDF или изображение, до 10 МБ)").set_input_files(
        {"name": "act.pdf", "mimeType": "application/pdf", "buffer": b"not a pdf"})
    section.get_by_role("button", name="Сохранить запись реестра").click()
    expect(page.get_by_text("скан должен быть файлом PDF, PNG или JPEG")).to_be_visible()
    page.get_by_label("Скан (PDF или изображение, до 10 МБ)").set_input_files(
        {"name": "act.pdf", "mimeType": "application/pdf", "buffer": PDF})
    page.get_by_role("button", name="Сохранить запись реестра").click()
    expect(page.get_by_text("Запись реестра для «Школа № 1» сохранена.")).to_be_visible()
    expect(page.get_by_role("region", name="Акт о переходе в Max")).to_contain_text(
        "№ 15-од от 28.11.2025")
    _fresh(ctx)
    act = ctx.get(TransitionAct, school.id)
    assert act.scan_sha256 == hashlib.sha256(PDF).hexdigest()


def test_import_channels_and_see_the_one_without_max(
        page, live_server, signed_in, make_org, make_employee, make_user, ctx, app,
        tmp_path):
    app.config["IMPORT_UPLOAD_DIR"] = str(tmp_path / "uploads")
    _reg, school = _region(make_org, make_employee)
    signed_in(make_user("coordinator", orgs=[school]))
    page.get_by_role("link", name="Импорт").click()
    page.get_by_label("Что импортировать").select_option(label="Публичные каналы")
    page.get_by_label("Файл (CSV или XLSX)").set_input_files(
        {"name": "channels.csv", "mimeType": "text/csv", "buffer": CHANNELS.encode()})
    page.get_by_role("button", name="Проверить файл").click()
    expect(page.get_by_role("heading", name="Импорт: Публичные каналы")).to_be_visible()
    page.get_by_role("button", name="Импорт", exact=True).click()
    expect(page.get_by_text("Импортировано: создано 2, обновлено 0, без изменений 0.")
           ).to_be_visible()
    page.goto(live_server.url + "/channels/")
    attention = page.locator("#without-max ~ div table")
    expect(attention).to_contain_text("Новости школы № 1")
    expect(attention).not_to_contain_text("Старый канал школы")
    page.get_by_role("link", name="Школа № 1").first.click()
    expect(page.get_by_role("heading", name="Публичные каналы: Школа № 1")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Старый канал школы"))).to_contain_text(
        "только ссылка на Max")


def test_produce_and_sign_off_the_ministry_report(
        page, live_server, signed_in, make_org, make_employee, make_user, ctx, app,
        tmp_path):
    app.config["DIRECTIVE_FILES_DIR"] = str(tmp_path / "files")
    region, school = _region(make_org, make_employee)
    ctx.add(TransitionAct(org_id=school.id, exemption="arm_gs"))
    _fresh(ctx)
    coordinator = make_user("coordinator", orgs=[region])
    signed_in(coordinator)
    page.get_by_role("link", name="Поручения").click()
    page.get_by_role("link", name="Отчёт в министерство").click()
    expect(page.get_by_role("heading", name="Отчёт в министерство: Регион")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Школа № 1"))).to_contain_text(
        "Освобождена: АРМ ГС (VK Teams)")
    page.get_by_role("button", name="Сформировать отчёт (XLSX)").click()
    expect(page.get_by_text("Отчёт сформирован, организаций в нём: 2.")).to_be_visible()
    with page.expect_download() as info:
        page.get_by_role("link", name="Скачать").click()
    data = info.value.path().read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    expect(page.locator("code.hash")).to_have_text(digest)
    page.get_by_role("button", name="Подписать").click()
    expect(page.get_by_text("Отчёт подписан.")).to_be_visible()
    expect(page.get_by_role("button", name="Подписать")).to_have_count(0)
    _fresh(ctx)
    ev = ctx.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "report.ministry.signed")).one()
    assert json.loads(ev.summary)["sha256"] == digest
    _fresh(ctx)
