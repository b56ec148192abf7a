"""Dashboard, needs-attention page, reports and the progress API: content and scope."""

from __future__ import annotations

import io
import json
import re
from datetime import date, timedelta

from openpyxl import load_workbook
from sqlmodel import select

from migrator.audit.models import AuditEvent
from migrator.engine.models import Step
from migrator.progress import service


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def test_dashboard_drills_down_from_the_region(tree, make_user, login, client):
    service.take_snapshots(service.local_today() - timedelta(days=1))
    service.take_snapshots()
    login(client, make_user("admin"))
    html = _text(client.get("/"))
    assert "Сводка: Регион" in html
    assert 'href="/?org=A"' in html and 'href="/?org=B"' in html
    assert "33.3%" in html  # 3 of 9 employees linked
    assert "<svg" in html and "<title" in html and "<desc" in html
    assert "Данные графика в виде таблицы" in html
    assert "осталось 5 дней" in html  # the nearest deadline, Russian plural
    html = _text(client.get("/?org=A"))
    assert "Школа А1" in html and "Ведомство Б" not in html
    assert client.get("/?org=NOPE").status_code == 404


def test_dashboard_empty_state(make_user, login, client):
    login(client, make_user("admin"))
    html = _text(client.get("/"))
    assert "Организаций пока нет" in html


def test_coordinator_sees_only_their_scope(tree, make_user, login, client):
    service.take_snapshots()
    login(client, make_user("coordinator", orgs=[tree.a]))
    html = _text(client.get("/"))
    assert "Ведомство А" in html and "Школа А1" in html
    assert "Ведомство Б" not in html and "Регион" not in html
    assert client.get("/?org=B").status_code == 404
    assert client.get("/?org=R").status_code == 404
    assert client.get("/progress/report?org=B").status_code == 404
    assert client.get("/progress/report.xlsx?org=B").status_code == 404


def test_attention_lists_every_kind_of_problem_for_admin(tree, make_user, login, client):
    login(client, make_user("admin"))
    html = _text(client.get("/attention"))
    assert "SMTP refused" in html  # the failed step
    assert "Ждут вашего подтверждения" in html  # the waiting announce step
    assert "настройки приватности в Max" in html and "Max не знает такой учётной записи" in html
    assert "b1@example.org" in html  # B's head has no Max account
    assert "Чат Б" in html and "Бот удалён из чата" in html  # the removed chat
    assert "Чат А" in html
    assert ("Не хватает прав: читать все сообщения, добавлять и удалять участников, "
            "закреплять сообщения") in html
    assert "Бот удалён из чата Б" in html  # the flagged group
    assert "Волна Б" in html  # overdue wave
    assert "a1@example.org" not in html.split('id="heads"')[1].split("</section>")[0]


def test_attention_is_scoped_for_a_coordinator(tree, make_user, login, client):
    login(client, make_user("coordinator", orgs=[tree.a]))
    html = _text(client.get("/attention"))
    assert "настройки приватности в Max" in html
    assert "Max не знает такой учётной записи" not in html and "SMTP refused" not in html
    assert "Чат Б" not in html and "Волна Б" not in html and "b1@example.org" not in html
    html = _text(client.get("/attention?section=members"))
    assert "настройки приватности в Max" in html and "Max не знает такой учётной записи" not in html
    assert client.get("/attention?section=nope").status_code == 404


def test_attention_links_to_the_group_page_when_it_exists(tree, make_user, login, client, app):
    login(client, make_user("admin"))
    html = _text(client.get("/attention?section=failed"))
    if "groups.detail" in app.view_functions:
        assert 'href="/groups/gB"' in html
    else:
        assert "Группа Б" in html


def test_attention_caps_sections_and_pages_the_rest(tree, make_user, login, client, ctx,
                                                    make_employee, make_group):
    from sqlmodel import select

    from migrator.groups.models import GroupMember

    emps = [make_employee(tree.b) for _ in range(13)]
    group = make_group(tree.b, key="big", members=emps)
    for m in ctx.exec(select(GroupMember).where(GroupMember.group_id == group.id)):
        m.state, m.reason = "unaddable", "add.participant.privacy"
    ctx.commit()
    login(client, make_user("admin"))
    html = _text(client.get("/attention"))
    assert "Показать все (15)" in html
    section = html.split('id="members"')[1].split("</section>")[0]
    assert section.count("<tr>") == 10 + 1  # the cap plus the header row
    page = _text(client.get("/attention?section=members"))
    assert page.count("<tr>") == 15 + 1


def test_attention_pages_keep_rows_with_equal_sort_values_in_one_order(
        tree, make_user, login, client, ctx, app, make_employee, make_group):
    """Rows sorting equal (one group's members) come in one order on every page: by their
    key, so no row shows on two pages or on none."""
    from migrator.groups.models import GroupMember

    emps = [make_employee(tree.b) for _ in range(12)]
    group = make_group(tree.b, key="ties", members=emps[::-1])  # stored newest first
    for m in ctx.exec(select(GroupMember).where(GroupMember.group_id == group.id)):
        m.state, m.reason = "unaddable", "add.participant.privacy"
    ctx.commit()
    app.config["PER_PAGE"] = 5
    login(client, make_user("admin"))
    ours = {str(e.id) for e in emps}

    def shown(url):
        return [i for i in re.findall(r'name="employee_id" value="(\d+)"', _text(client.get(url)))
                if i in ours]

    paged = [i for n in (1, 2, 3, 4) for i in shown(f"/attention?section=members&page={n}")]
    assert paged == sorted(ours, key=int)
    assert shown("/attention") == sorted(ours, key=int)[:len(shown("/attention"))]


def test_xlsx_report_is_scoped_and_audited(tree, make_user, login, client, ctx):
    login(client, make_user("coordinator", orgs=[tree.a]))
    resp = client.get("/progress/report.xlsx")
    assert resp.status_code == 200
    assert resp.mimetype.endswith("spreadsheetml.sheet")
    ws = load_workbook(io.BytesIO(resp.data)).active
    values = [[c.value for c in row] for row in ws.iter_rows()]
    codes = [row[0] for row in values[4:]]
    assert codes == ["A", "A1", "A"]  # A's own row, the tree below, the total last
    assert values[3][2] == "Сотрудники"
    own, a1, total = values[4], values[5], values[6]
    assert "собственные" in own[1] and own[2:5] == [3, 2, 66.7]
    assert total[1] == "Итого" and total[2:5] == [5, 3, 60.0]
    assert a1[1].strip() == "Школа А1" and a1[2:4] == [2, 1]
    flat = str(values)
    assert "Ведомство Б" not in flat and "'B'" not in flat
    assert client.get("/progress/report.xlsx?org=A1&levels=all").status_code == 200
    events = ctx.exec(select(AuditEvent).where(AuditEvent.action == "progress.export")
                      .order_by(AuditEvent.seq)).all()
    assert [(e.org_id, json.loads(e.summary)["filters"]) for e in events] == [
        (tree.a.id, {}), (tree.a1.id, {"org": "A1", "levels": "all"})]
    assert {e.actor_type for e in events} == {"user"}


def test_xlsx_report_for_admin_has_every_organisation(tree, make_user, login, client):
    login(client, make_user("admin"))
    ws = load_workbook(io.BytesIO(client.get("/progress/report.xlsx").data)).active
    codes = [row[0].value for row in ws.iter_rows(min_row=5)]
    assert codes == ["R", "A", "A1", "B", "R"]  # R's own row, the tree, the total
    deadline = [row[11].value for row in ws.iter_rows(min_row=7, max_row=7)][0]
    assert deadline.date() == tree.wave.deadline.astimezone(service.tz()).date()


def test_printable_report(tree, make_user, login, client):
    login(client, make_user("admin"))
    html = _text(client.get("/progress/report?org=A"))
    assert "Ход перехода в Max: Ведомство А" in html
    assert "Школа А1" in html and "Ведомство Б" not in html
    assert "progress.css" in html


def test_progress_api_is_scoped(tree, make_user, api_token, client):
    headers = api_token(make_user("coordinator", orgs=[tree.a]))
    resp = client.get("/api/v1/progress?org=A", headers=headers)
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["employees"], body["linked"], body["groups_done"]) == (5, 3, 1)
    assert [c["org_code"] for c in body["children"]] == ["A1"]
    assert client.get("/api/v1/progress?org=B", headers=headers).status_code == 404
    assert client.get("/api/v1/progress?org=NOPE", headers=headers).status_code == 404
    body = client.get("/api/v1/progress", headers=headers).get_json()
    assert body["employees"] == 5


def test_progress_api_requires_a_token(client):
    assert client.get("/api/v1/progress").status_code == 401


def test_progress_api_is_described(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    op = doc["paths"]["/progress"]["get"]
    assert op["parameters"][0]["name"] == "org" and "404" in op["responses"]
    assert "Progress" in doc["components"]["schemas"]


def test_chart_points_follow_the_snapshots(app):
    from migrator.progress.charts import LEFT, RIGHT, WIDTH, progress_chart

    d0 = date(2026, 11, 1)
    history = [{"day": d0 + timedelta(days=i), "linked_pct": p, "coverage_pct": c}
               for i, (p, c) in enumerate([(0.0, 0.0), (50.0, 25.0), (100.0, 50.0)])]
    with app.test_request_context("/"):
        svg = str(progress_chart(history, d0 + timedelta(days=4), "Регион"))
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert "<title id=\"progress-chart-title\">Динамика перехода: Регион</title>" in svg
    assert "с 0.0% до 100.0%" in svg  # the description tells the same story
    plot_w = WIDTH - LEFT - RIGHT  # 4 days span the plot width
    xs = [LEFT + plot_w * i / 4 for i in range(3)]
    linked = re.search(r'class="s-linked"[^>]*points="([^"]+)"', svg).group(1)
    assert linked == f"{xs[0]:.1f},226.0 {xs[1]:.1f},120.0 {xs[2]:.1f},14.0"
    coverage = re.search(r'class="s-coverage"[^>]*points="([^"]+)"', svg).group(1)
    assert coverage == f"{xs[0]:.1f},226.0 {xs[1]:.1f},173.0 {xs[2]:.1f},120.0"
    assert f'class="deadline" x1="{float(WIDTH - RIGHT)}"' in svg  # the deadline at the end


def test_chart_is_empty_without_snapshots(app):
    from migrator.progress.charts import progress_chart

    with app.test_request_context("/"):
        assert str(progress_chart([], None, "x")) == ""


def test_attention_links_to_the_places_to_fix(tree, make_user, login, client, app, ctx):
    from sqlmodel import select

    from migrator.max.models import MaxChat
    from migrator.people.models import Employee

    login(client, make_user("admin"))
    html = _text(client.get("/attention"))
    views = app.view_functions
    if "max.chat" in views:
        chat = ctx.exec(select(MaxChat).where(MaxChat.title == "Чат Б")).one()
        assert f'href="/max/chats/{chat.id}"' in html
    if "people.detail" in views:
        emp = ctx.exec(select(Employee).where(Employee.email == "b1@example.org")).one()
        assert f'href="/employees/{emp.id}"' in html
    if "org.detail" in views:
        assert 'href="/orgs/B"' in html
    else:
        assert 'href="/?org=B"' in html


def test_xlsx_text_cells_are_never_formulas(tree, make_org, make_user, login, client):
    make_org(code="=1+1", name='=HYPERLINK("http://example.org","x")', parent=tree.a)
    login(client, make_user("admin"))
    data = client.get("/progress/report.xlsx").data
    ws = load_workbook(io.BytesIO(data)).active
    cells = {c.value: c.data_type for row in ws.iter_rows() for c in row
             if isinstance(c.value, str) and c.value.lstrip().startswith("=")}
    assert set(cells) == {"=1+1", '        =HYPERLINK("http://example.org","x")'}
    assert set(cells.values()) == {"s"}
    import zipfile

    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet


def test_progress_pages_take_a_fixed_number_of_queries(app, tree, make_org, make_employee,
                                                       make_group, make_user, login, client,
                                                       ctx, api_token):
    """The dashboard, the API, both reports, the XLSX, the attention page and the wave list
    run the same number of queries however many organisations, groups and steps there are
    (grouped queries and plain columns, never a query per row)."""
    import sqlalchemy as sa

    from migrator.db import get_engine

    admin = make_user("admin")
    token = api_token(admin)
    login(client, admin)
    pages = ["/", "/?org=A", "/progress/report", "/progress/report?levels=all",
             "/progress/report.xlsx", "/attention", "/waves/", f"/waves/{tree.wave.id}",
             "/api/v1/progress"]

    def queries() -> dict:
        counts = {}
        for url in pages:
            seen: list = []
            engine = get_engine(app)

            def listener(conn, cursor, statement, *args, seen=seen):
                if statement.lstrip().upper().startswith("SELECT"):  # reads, not a touch
                    seen.append(statement)

            sa.event.listen(engine, "before_cursor_execute", listener)
            try:
                resp = client.get(url, headers=token if url.startswith("/api/") else None)
                resp.get_data()  # a streamed body is written while it is read
            finally:
                sa.event.remove(engine, "before_cursor_execute", listener)
            assert resp.status_code == 200, url
            counts[url] = len(seen)
        return counts

    def grow(numbers) -> None:  # organisations with people, a group and its steps
        for i in numbers:
            org = make_org(code=f"N{i}", name=f"Школа № {i}",
                           parent=tree.a if i % 2 else tree.a1)
            people = [make_employee(org, email=f"n{i}-{j}@example.org") for j in range(3)]
            group = make_group(org, key=f"gN{i}", members=people, name=f"Группа {i}")
            group.wave_id = tree.wave.id
            for kind, status in (("invite", "failed"), ("cutover", "pending")):
                ctx.add(Step(group_id=group.id, wave_id=tree.wave.id, kind=kind,
                             status=status, due_at=tree.now - timedelta(days=3),
                             next_attempt_at=tree.now))
        ctx.commit()

    grow(range(12))  # more than a section of the attention page shows: it counts the rest
    queries()  # the token's first use is recorded once
    before = queries()
    grow(range(12, 36))
    assert queries() == before
    ws = load_workbook(io.BytesIO(client.get("/progress/report.xlsx").data)).active
    codes = {row[0].value for row in ws.iter_rows(min_row=5)}
    assert {f"N{i}" for i in range(36)} <= codes


def test_streamed_xlsx_writes_every_kind_of_cell():
    from migrator.progress import xlsx

    sheet = xlsx.Sheet("Лист", widths=(20, 10), freeze_rows=1, freeze_cols=1)
    rows = [(0, ["Название", "Число"], [xlsx.BOLD, xlsx.BOLD])]
    day = date(2026, 1, 1)
    rows += [(r, [f"=A{r}+1 «{r}»", r * 1.5, day + timedelta(days=r - 1), r % 2 == 0, None,
                  "ctl\x07x _x0041_ "], [xlsx.PLAIN, xlsx.PLAIN, xlsx.DATE])
             for r in range(1, 451)]
    data = b"".join(xlsx.stream(sheet, iter(rows)))
    ws = load_workbook(io.BytesIO(data)).active
    assert ws.title == "Лист" and ws.freeze_panes == "B2"
    values = [[c.value for c in row] for row in ws.iter_rows()]
    assert values[0][:2] == ["Название", "Число"]
    assert len(values) == 451
    first = values[1]
    assert first[0] == "=A1+1 «1»" and first[1] == 1.5 and first[3] is False
    assert first[2].date() == date(2026, 1, 1) and first[4] is None
    # a control character XML cannot carry is escaped; the well-formed text is kept as is
    assert first[5].startswith("ctl") and first[5].endswith("x _x0041_ ")
    assert values[450][0] == "=A450+1 «450»" and values[450][3] is True
    assert not [c for row in ws.iter_rows() for c in row if c.data_type == "f"]
