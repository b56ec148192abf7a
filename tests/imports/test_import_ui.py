"""The import page: upload → preview → confirm; errors inline; roles and scope."""

from __future__ import annotations

import io
import re
from pathlib import Path

from flask import g
from sqlmodel import select

from migrator.audit.models import AuditEvent
from migrator.people.models import Employee

EMPLOYEES = "email;full_name;org_code\nanna@example.ru;Анна Иванова;A\nboris@example.ru;Борис;A\n"


def as_other_user(app, login, user):
    """A second signed-in client. Requests share the test's app context (and so Flask-Login's
    cached user in ``g``), which is cleared first."""
    g.pop("_login_user", None)
    return login(app.test_client(), user)


def upload(client, kind, content: bytes | str, name="file.csv"):
    if isinstance(content, str):
        content = content.encode("cp1251")
    return client.post("/imports/", data={"kind": kind, "file": (io.BytesIO(content), name)},
                       content_type="multipart/form-data")


def upload_id(html: str) -> str:
    return re.search(r'name="upload" type="hidden" value="([^"]+)"', html).group(1)


def emails(ctx):
    ctx.rollback()
    return {e.email for e in ctx.exec(select(Employee)).all()}


def test_upload_preview_then_confirm(app, client, ctx, make_org, make_user, login):
    make_org(code="A", name="Орг А")
    login(client, make_user("admin"))
    resp = upload(client, "employees", EMPLOYEES)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, html
    assert "Анна Иванова" in html and "новая" in html
    assert emails(ctx) == set()  # the preview writes nothing
    uid = upload_id(html)
    stored = Path(app.config["IMPORT_UPLOAD_DIR"]) / f"{uid}.bin"
    assert stored.exists()

    resp = client.post("/imports/confirm", data={"upload": uid})
    assert resp.status_code == 302
    assert emails(ctx) == {"anna@example.ru", "boris@example.ru"}
    assert not stored.exists()
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "создано 2" in page
    event = ctx.exec(select(AuditEvent).where(AuditEvent.action == "import.employees")).one()
    assert event.actor_type == "user"
    # The same upload cannot be applied twice.
    again = client.post("/imports/confirm", data={"upload": uid}, follow_redirects=True)
    assert "Загрузите файл заново" in again.get_data(as_text=True)
    assert len(ctx.exec(select(AuditEvent).where(AuditEvent.action == "import.employees"))
               .all()) == 1


def test_broken_upload_shows_every_error_and_writes_nothing(client, ctx, make_org, make_user,
                                                           login):
    make_org(code="A")
    login(client, make_user("admin"))
    text = ("email;full_name;org_code\nanna@example.ru;Анна;A\nbad-address;Борис;A\n"
            "c@example.ru;;ZZ\n;Вера;A\nv@example.ru;Вера;A;лишнее\n")
    resp = upload(client, "employees", text)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'role="alert"' in html and "5 ошибок" in html
    assert "<th scope=\"col\">Значение</th>" in html
    rows = re.findall(r"<tr><td class=\"num\">(\d+)</td><td><code>(\w+)</code></td>"
                      r"<td class=\"value\">([^<]+)</td><td>([^<]+)</td>", html)
    # each error echoes the offending value as read from the file
    assert ("3", "email", "«bad-address»", "некорректный адрес электронной почты") in rows
    assert ("4", "full_name", "—", "значение обязательно") in rows  # an empty cell
    assert ("4", "org_code", "«ZZ»", "неизвестный код организации") in rows
    assert ("5", "email", "—", "значение обязательно") in rows
    assert ("6", "4", "«лишнее»", "значение в столбце без названия") in rows
    assert 'name="upload"' not in html  # nothing to confirm
    assert emails(ctx) == set()


def test_confirm_revalidates_and_rejects_foreign_or_forged_ids(client, ctx, make_org, make_user,
                                                              login, app):
    make_org(code="A")
    admin, other = make_user("admin"), make_user("admin")
    login(client, admin)
    uid = upload_id(upload(client, "employees", EMPLOYEES).get_data(as_text=True))
    assert client.post("/imports/confirm", data={"upload": "../../etc/passwd"}).status_code == 302

    other_client = as_other_user(app, login, other)
    assert other_client.post("/imports/confirm", data={"upload": uid}).status_code == 302
    assert emails(ctx) == set()


def test_templates_download(client, make_user, login):
    login(client, make_user("admin"))
    resp = client.get("/imports/template/groups.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    body = resp.data.decode("utf-8-sig")
    assert body.startswith("key;name;platform;org_code;owner_email\r\n")


def test_coordinator_scope_and_auditor_cannot_import(app, client, ctx, make_org, make_user,
                                                     login):
    a, b = make_org(code="A"), make_org(code="B")
    login(client, make_user("coordinator", orgs=[a]))
    page = client.get("/imports/").get_data(as_text=True)
    assert 'value="organisations"' not in page
    resp = upload(client, "employees", "email,full_name,org_code\nx@example.ru,Икс,A\n"
                                       "y@example.ru,Игрек,B\n")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "организация вне вашей зоны ответственности" in html
    assert upload(client, "organisations", "code,name\nC,Це\n").status_code == 400
    assert client.get("/imports/template/organisations.csv").status_code == 404
    assert emails(ctx) == set()
    assert b.code == "B"

    auditor_client = as_other_user(app, login, make_user("auditor"))
    assert auditor_client.get("/imports/").status_code == 403
    assert upload(auditor_client, "employees", EMPLOYEES).status_code == 403
    assert auditor_client.post("/imports/confirm", data={"upload": "x" * 32}).status_code == 403


def test_confirm_validates_again(client, ctx, make_org, make_employee, make_user, login):
    a, b = make_org(code="A"), make_org(code="B")
    login(client, make_user("coordinator", orgs=[a]))
    uid = upload_id(upload(client, "employees", "email,full_name,org_code\nx@example.ru,Икс,A\n")
                    .get_data(as_text=True))
    make_employee(b, email="x@example.ru", full_name="Икс из Б")  # arrives meanwhile
    ctx.rollback()
    resp = client.post("/imports/confirm", data={"upload": uid})
    assert resp.status_code == 422
    assert "этот адрес принадлежит сотруднику вне вашей зоны ответственности" in resp.get_data(
        as_text=True)
    ctx.rollback()
    person = ctx.exec(select(Employee)).one()
    assert (person.org_id, person.full_name) == (b.id, "Икс из Б")


def test_import_events_carry_the_coordinators_single_scope_root(ctx, make_org, make_user):
    from migrator.imports.service import import_file

    a, b = make_org(code="A"), make_org(code="B")
    importers = [(make_user("coordinator", orgs=[a]), a.id),
                 (make_user("coordinator", orgs=[a, b]), None),
                 (make_user("admin"), None), (None, None)]  # None: the command line
    for n, (user, _org_id) in enumerate(importers):
        data = f"email,full_name,org_code\nperson{n}@example.ru,Сотрудник {n},A\n".encode()
        assert import_file("employees", "e.csv", data, dry_run=False, user=user).ok
    events = ctx.exec(select(AuditEvent).where(AuditEvent.action == "import.employees")
                      .order_by(AuditEvent.seq)).all()
    assert [e.org_id for e in events] == [org_id for _user, org_id in importers]


def test_a_request_over_the_size_limit_is_refused_with_a_russian_page(
        app, client, ctx, make_org, make_user, login):
    from migrator.config import load_config

    assert load_config(app.instance_path, {"MAX_CONTENT_LENGTH": "5000"})["MAX_CONTENT_LENGTH"] \
        == 5000
    default = app.config["IMPORT_MAX_BYTES"] + 1024 * 1024
    assert app.config["MAX_CONTENT_LENGTH"] == default
    app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024  # keep the test's upload small
    make_org(code="A")
    login(client, make_user("admin"))
    huge = EMPLOYEES + "x" * (2 * 1024 * 1024)
    resp = upload(client, "employees", huge)
    assert resp.status_code == 413
    html = resp.get_data(as_text=True)
    assert "Слишком большой файл" in html and "не более 2 МБ" in html
    assert emails(ctx) == set()
    assert upload(client, "employees", EMPLOYEES).status_code == 200  # below the limit
