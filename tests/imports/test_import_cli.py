"""``flask import``: encodings, delimiters, XLSX, all-or-nothing, every error reported."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook
from sqlmodel import select

from migrator.audit.models import AuditEvent
from migrator.groups.models import GroupMember, SourceGroup
from migrator.org.models import Organisation
from migrator.people.models import Employee


def employees(ctx):
    return {e.email: e for e in ctx.exec(select(Employee)).all()}


def test_cp1251_semicolon_employees_with_cyrillic_names(make_org, write_file, run_import, ctx):
    org = make_org(code="МИН-1", name="Министерство")
    text = ("EMAIL; Full_Name ;org_code;position;phone\r\n"
            "Ivanova@Example.ru;Иванова Анна Петровна;МИН-1;Директор;+7 900 000-00-01\r\n"
            "petrov@example.ru;Пётр Щукин;МИН-1;;\r\n")
    path = write_file("staff.csv", text, "cp1251")
    result = run_import("employees", path)
    assert result.exit_code == 0, result.output
    assert "2 were created" in result.output
    people = employees(ctx)
    assert set(people) == {"ivanova@example.ru", "petrov@example.ru"}
    anna = people["ivanova@example.ru"]
    assert (anna.full_name, anna.position, anna.phone, anna.org_id) == (
        "Иванова Анна Петровна", "Директор", "+7 900 000-00-01", org.id)
    assert people["petrov@example.ru"].position is None
    event = ctx.exec(select(AuditEvent).where(AuditEvent.action == "import.employees")).one()
    assert event.org_id is None and '"created":2' in event.summary and "staff.csv" in event.summary


def test_utf8_bom_comma_and_xlsx(make_org, write_file, run_import, ctx):
    make_org(code="A")
    path = write_file("e.csv", "\ufeffemail,full_name,org_code\nsemyonov@example.ru,Семёнов Ёж,A\n")
    assert run_import("employees", path).exit_code == 0
    assert employees(ctx)["semyonov@example.ru"].full_name == "Семёнов Ёж"

    wb = Workbook()
    ws = wb.active
    ws.append(["email", "full_name", "org_code", "phone"])
    ws.append(["xlsx@example.ru", "Жанна Эксель", "A", 79000000002])
    ws.append([None, None, None, None])  # an empty row Excel leaves behind
    buf = io.BytesIO()
    wb.save(buf)
    result = run_import("employees", write_file("e.xlsx", buf.getvalue()))
    assert result.exit_code == 0, result.output
    person = employees(ctx)["xlsx@example.ru"]
    assert (person.full_name, person.phone) == ("Жанна Эксель", "79000000002")


def test_one_bad_row_imports_nothing_and_names_the_row(make_org, write_file, run_import, ctx):
    make_org(code="A")
    path = write_file("e.csv", "email,full_name,org_code\n"
                               "good@example.ru,Хороший,A\n"
                               "not-an-email,Плохой,A\n"
                               "fine@example.ru,Тоже хороший,A\n")
    result = run_import("employees", path)
    assert result.exit_code == 1
    assert "line 3, column email: not a valid e-mail address" in result.stderr
    assert "nothing was imported" in result.stderr
    assert employees(ctx) == {}
    assert ctx.exec(select(AuditEvent).where(AuditEvent.action.startswith("import"))).all() == []


def test_every_bad_row_is_reported(make_org, write_file, run_import, ctx):
    make_org(code="A")
    text = ("email;full_name;org_code;position\n"
            "a@example.ru;Анна;A;\n"              # 2: fine
            "A@example.ru;Анна снова;A;\n"       # 3: duplicate e-mail (case-insensitive)
            "b@example.ru;;A;\n"                  # 4: empty name
            "c@example.ru;Вера;NOPE;\n"           # 5: unknown organisation
            "d@example.ru;Дина;A;" + "x" * 301 + "\n"  # 6: too long
            ";Без почты;A;\n"                     # 7: empty e-mail
            "e@example.ru;Ева;A;;лишнее\n")       # 8: a value without a column
    result = run_import("employees", write_file("e.csv", text))
    assert result.exit_code == 1
    err = result.stderr
    assert "line 3, column email: duplicate of line 2" in err
    assert "line 4, column full_name: a value is required" in err
    assert "line 5, column org_code: unknown organisation code" in err
    assert "line 6, column position: the value is longer than 300 characters" in err
    assert "line 7, column email: a value is required" in err
    assert "line 8, column 5: a value in a column without a header" in err
    assert employees(ctx) == {}


def test_header_problems(write_file, run_import):
    result = run_import("employees", write_file("e.csv", "email,name,org_code,extra\nx@y.ru,n,A\n"))
    assert result.exit_code == 1
    assert "line 1, column name: unknown column" in result.stderr
    assert "line 1, column extra: unknown column" in result.stderr
    assert "line 1, column full_name: required column is missing" in result.stderr


@pytest.mark.parametrize("content, message", [
    (b"", "file: the file is empty"),
    (b"\r\n \r\n", "file: the file is empty"),
    (b"email,full_name,org_code\r\n", "file: the file has a header but no data rows"),
    (b"email,full_name,org_code\nx@example.ru,\xc8\xec\x98,A\n",
     "file: the file is neither UTF-8 nor Windows-1251 text"),
    (b"PK\x03\x04garbage", "file: the file is not a readable XLSX workbook"),
])
def test_unreadable_files(write_file, run_import, content, message):
    result = run_import("employees", write_file("e.csv", content))
    assert result.exit_code == 1
    assert message in result.stderr


def test_oversized_file(app, make_org, write_file, run_import, ctx):
    app.config["IMPORT_MAX_BYTES"] = 100
    make_org(code="A")
    rows = "".join(f"p{i}@example.ru,Имя,A\n" for i in range(10))
    result = run_import("employees", write_file("e.csv", "email,full_name,org_code\n" + rows))
    assert result.exit_code == 1
    assert "file: the file is larger than 100 bytes" in result.stderr
    assert employees(ctx) == {}


def test_reimport_updates_without_duplicates_and_dry_run_writes_nothing(
        make_org, write_file, run_import, ctx):
    a, b = make_org(code="A"), make_org(code="B")
    first = write_file("1.csv", "email,full_name,org_code,position\n"
                                "a@example.ru,Анна,A,Инженер\nb@example.ru,Борис,A,\n")
    assert run_import("employees", first).exit_code == 0
    second = write_file("2.csv", "email,full_name,org_code\n"  # no position column: kept
                                 "A@EXAMPLE.RU,Анна Иванова,B\nb@example.ru,Борис,A\n"
                                 "c@example.ru,Вера,B\n")
    dry = run_import("employees", second, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "1 would be created, 1 would be updated, 1 unchanged" in dry.output
    assert len(employees(ctx)) == 2 and employees(ctx)["a@example.ru"].full_name == "Анна"
    assert len(ctx.exec(select(AuditEvent)).all()) == 1  # the first import only

    result = run_import("employees", second)
    assert result.exit_code == 0
    people = employees(ctx)
    assert len(people) == 3
    anna = people["a@example.ru"]
    assert (anna.full_name, anna.org_id, anna.position) == ("Анна Иванова", b.id, "Инженер")
    actions = [e.action for e in ctx.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()]
    assert actions.count("import.employees") == 2
    assert a.id != b.id


def test_organisation_tree_parents_in_the_same_file_and_cycles(write_file, run_import, ctx):
    # Children before parents in the file: still imported parents first.
    path = write_file("o.csv", "code,name,parent_code,head_email\n"
                               "SCH,Школа,DEP,\nDEP,Департамент,REG,dep@example.ru\n"
                               "REG,Регион,,head@example.ru\n")
    assert run_import("organisations", path).exit_code == 0
    orgs = {o.code: o for o in ctx.exec(select(Organisation)).all()}
    assert orgs["SCH"].path == f"/{orgs['REG'].id}/{orgs['DEP'].id}/{orgs['SCH'].id}/"
    assert orgs["SCH"].depth == 2

    cycle = write_file("c.csv", "code,name,parent_code\nX,Икс,Y\nY,Игрек,X\nZ,Зет,Z\n")
    result = run_import("organisations", cycle)
    assert result.exit_code == 1
    for line in (2, 3, 4):
        assert f"line {line}, column parent_code: this parent makes a cycle" in result.stderr

    # A cycle through existing rows: REG placed under its own grandchild.
    with_db = write_file("d.csv", "code,name,parent_code\nREG,Регион,SCH\n")
    result = run_import("organisations", with_db)
    assert result.exit_code == 1
    assert "line 2, column parent_code: this parent makes a cycle" in result.stderr

    unknown = write_file("u.csv", "code;name;parent_code\nNEW;Новая;NOWHERE\n")
    result = run_import("organisations", unknown)
    assert "line 2, column parent_code: unknown organisation code" in result.stderr

    # Moving a subtree: DEP becomes a root, SCH follows it.
    move = write_file("m.csv", "code,name,parent_code\nDEP,Департамент,\n")
    assert run_import("organisations", move).exit_code == 0
    orgs = {o.code: o for o in ctx.exec(select(Organisation)).all()}
    assert orgs["SCH"].path == f"/{orgs['DEP'].id}/{orgs['SCH'].id}/"
    assert orgs["DEP"].head_email == "dep@example.ru"  # head_email column absent: kept


def test_groups_and_members(make_org, make_employee, write_file, run_import, ctx):
    org = make_org(code="A")
    ann = make_employee(org, email="ann@example.ru")
    bob = make_employee(org, email="bob@example.ru")
    bad = write_file("g.csv", "key,name,platform,org_code,owner_email\n"
                              "g1,Учителя,WhatsApp,A,ann@example.ru\ng2,Завхозы,icq,A,\n")
    result = run_import("groups", bad)
    assert result.exit_code == 1
    assert "line 3, column platform: unknown platform" in result.stderr
    good = write_file("g2.csv", "key,name,platform,org_code\ng1,Учителя,WhatsApp,A\n"
                                "g2,Завхозы,telegram,A\n")
    assert run_import("groups", good).exit_code == 0
    groups = {g.key: g for g in ctx.exec(select(SourceGroup)).all()}
    assert groups["g1"].platform == "whatsapp" and groups["g1"].member_count == 0

    members = write_file("m.csv", "group_key,email\ng1,ann@example.ru\ng1,BOB@example.ru\n"
                                  "g2,ann@example.ru\n")
    result = run_import("members", members)
    assert result.exit_code == 0
    assert "3 new memberships were added, 0 already present" in result.output
    again = write_file("m2.csv", "group_key,email\ng1,ann@example.ru\ng2,bob@example.ru\n")
    result = run_import("members", again)
    assert "1 new memberships were added, 1 already present" in result.output
    ctx.expire_all()
    groups = {g.key: g for g in ctx.exec(select(SourceGroup)).all()}
    assert (groups["g1"].member_count, groups["g2"].member_count) == (2, 2)
    assert len(ctx.exec(select(GroupMember)).all()) == 4

    broken = write_file("m3.csv", "group_key,email\nnope,ann@example.ru\ng1,who@example.ru\n"
                                  "g1,ann@example.ru\ng1,ann@example.ru\n")
    result = run_import("members", broken)
    assert result.exit_code == 1
    assert "line 2, column group_key: unknown group key" in result.stderr
    assert "line 3, column email: unknown employee e-mail" in result.stderr
    assert "line 5, column email: duplicate of line 4" in result.stderr
    assert {ann.id, bob.id} == {m.employee_id for m in ctx.exec(select(GroupMember)).all()}


def test_service_scope_for_a_coordinator(ctx, make_org, make_employee, make_group, make_user):
    from flask_babel import force_locale

    from migrator.imports.service import import_file

    a, b = make_org(code="A"), make_org(code="B")
    make_employee(b, email="b-person@example.ru")
    make_employee(a, email="a-person@example.ru")
    make_group(b, key="gb")
    make_group(a, key="ga")
    coordinator = make_user("coordinator", orgs=[a])

    def errors(kind, text):
        result = import_file(kind, "f.csv", text.encode(), dry_run=False, user=coordinator)
        assert not result.ok
        with force_locale("en"):
            return [str(e) for e in result.errors]

    assert errors("employees", "email,full_name,org_code\nb-person@example.ru,Захват,A\n") == [
        "line 2, column email: this e-mail belongs to an employee outside your scope "
        "(value: \"b-person@example.ru\")"]
    assert errors("groups", "key,name,platform,org_code\ngb,Чужая,vk,A\nnew,Новая,vk,B\n") == [
        "line 2, column key: this key belongs to a group outside your scope (value: \"gb\")",
        "line 3, column org_code: organisation outside your scope (value: \"B\")"]
    assert errors("members", "group_key,email\ngb,a-person@example.ru\nga,b-person@example.ru\n") \
        == ["line 2, column group_key: organisation outside your scope (value: \"gb\")",
            "line 3, column email: no employee with this e-mail in your organisations "
            "(value: \"b-person@example.ru\")"]
    assert errors("organisations", "code,name\nC,Це\n") == [
        "file: only administrators may import organisations"]
    ok = import_file("members", "f.csv", b"group_key,email\nga,a-person@example.ru\n",
                     dry_run=False, user=coordinator)
    assert ok.ok and ok.created == 1
    bad = import_file("members", "f.csv", b"group_key,email\nga,nobody\n", dry_run=True,
                      user=coordinator)
    [(line, column, _reason, value)] = bad.errors  # (line, column, reason, value) tuples
    assert (line, column, value) == (2, "email", "nobody")
