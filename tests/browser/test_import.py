"""A coordinator imports employees: a file with errors is refused with every bad cell listed,
the corrected file is previewed and imported."""

import re

import sqlalchemy as sa
from playwright.sync_api import expect

from migrator.people.models import Employee

BAD = ("email,full_name,org_code,position,phone\n"
       "ivanova@school1.example,Иванова Анна Петровна,SCH1,Директор,\n"
       "not-an-address,Петров Пётр,SCH1,Учитель,\n"
       "sidorova@school1.example,,SCH1,Учитель,\n")
GOOD = ("email,full_name,org_code,position,phone\n"
        "ivanova@school1.example,Иванова Анна Петровна,SCH1,Директор,\n"
        "petrov@school1.example,Петров Пётр,SCH1,Учитель,\n"
        "sidorova@school1.example,Сидорова Мария,SCH1,Учитель,\n")


def _file(name: str, text: str) -> dict:
    return {"name": name, "mimeType": "text/csv", "buffer": text.encode("utf-8")}


def _emails(ctx) -> list[str]:
    emails = list(ctx.scalars(sa.select(Employee.email).order_by(Employee.email)))
    ctx.commit()  # never hold the SQLite write lock while the live server works
    return emails


def test_import_a_file_with_errors_then_the_corrected_one(
        page, live_server, signed_in, make_org, make_user, ctx):
    school = make_org(code="SCH1", name="Школа №1")
    signed_in(make_user("coordinator", orgs=[school]))

    page.get_by_role("link", name="Импорт").click()
    expect(page.get_by_role("heading", name="Импорт", exact=True)).to_be_visible()
    page.get_by_label("Что импортировать").select_option(label="Сотрудники")
    page.get_by_label("Файл (CSV или XLSX)").set_input_files(_file("staff.csv", BAD))
    page.get_by_role("button", name="Проверить файл").click()

    expect(page.get_by_role("alert")).to_contain_text(
        "В файле 2 ошибки. Ничего не импортировано")
    errors = page.get_by_role("table", name="Ошибки")
    rows = errors.get_by_role("row")
    expect(rows).to_have_count(3)  # the header and one row per bad cell
    expect(rows.nth(1).get_by_role("cell")).to_have_text(
        ["3", "email", "«not-an-address»", "некорректный адрес электронной почты"])
    expect(rows.nth(2).get_by_role("cell")).to_have_text(
        ["4", "full_name", "—", "значение обязательно"])
    assert _emails(ctx) == []  # all or nothing: the good line was not written either

    # The form to upload the corrected file is right under the errors, kind kept.
    expect(page.get_by_role("heading", name="Загрузите исправленный файл")).to_be_visible()
    expect(page.get_by_label("Что импортировать")).to_have_value("employees")
    page.get_by_label("Файл (CSV или XLSX)").set_input_files(_file("staff.csv", GOOD))
    page.get_by_role("button", name="Проверить файл").click()

    expect(page.get_by_role("heading", name="Импорт: Сотрудники")).to_be_visible()
    expect(page.get_by_text("3 строки данных")).to_be_visible()
    preview = page.get_by_role("table", name="Первые строки в том виде, как они прочитаны из файла")
    expect(preview.get_by_role("row", name=re.compile("petrov@school1.example"))).to_contain_text(
        "новая")
    assert _emails(ctx) == []  # the preview writes nothing

    page.get_by_role("button", name="Импорт", exact=True).click()
    expect(page.get_by_text("Импортировано: создано 3, обновлено 0, без изменений 0.")
           ).to_be_visible()
    assert _emails(ctx) == ["ivanova@school1.example", "petrov@school1.example",
                            "sidorova@school1.example"]

    page.get_by_role("link", name="Сотрудники").click()
    expect(page.get_by_role("link", name="Сидорова Мария")).to_be_visible()
