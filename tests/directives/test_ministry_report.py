"""The report to the ministry: one row per organisation in scope, the register's act or
exemption, the dashboard's figures, text never formulas, and a sign-off whose audited hash
is the SHA-256 of the exact file."""

from __future__ import annotations

import hashlib
import io
import json

import sqlalchemy as sa
from flask import g
from openpyxl import load_workbook

from migrator.audit.models import AuditEvent
from migrator.directives.models import ReportRun
from migrator.people.models import Employee

ACTS = ("org_code,act_number,act_date,exemption,exemption_reason\n"
        "R,1-р,2025-11-20,,\n"
        "A,,,arm_gs,\n"
        "A1,=HYPERLINK(\"http://x\"),01.12.2025,,\n")
CHANNELS = ("org_code,platform,url,title,max_url,status\n"
            "A,telegram,https://t.me/a_news,Новости А,https://max.ru/a_news,duplicated\n"
            "A1,telegram,https://t.me/a1,Школа А1,,active\n"
            "B,whatsapp,https://wa.me/b,+Канал Б,https://max.ru/b,moved\n")
HEADER_ROW = 4


def _sheet(data: bytes):
    ws = load_workbook(io.BytesIO(data)).active
    rows = list(ws.iter_rows(min_row=HEADER_ROW, values_only=False))
    header = [c.value for c in rows[0]]
    return header, rows[1:]


def _link(ctx, *emails):
    for n, email in enumerate(emails, 1):
        emp = ctx.scalar(sa.select(Employee).where(Employee.email == email))
        emp.max_user_id = 7000 + n
        emp.linked_at = emp.created_at
    ctx.commit()


def test_cli_report_has_a_row_per_organisation_with_register_and_dashboard_figures(
        ctx, runner, region, imported, tmp_path, call, make_user, api_token,
        directive_payload):
    imported("transition_acts", ACTS)
    imported("channels", CHANNELS)
    _link(ctx, "a-head@example.org", "a1@example.org", "x1@example.org")
    admin = api_token(make_user("admin"))
    call("POST", "/api/v1/directives", json=directive_payload(), headers=admin)
    ctx.rollback()
    out = tmp_path / "ministry.xlsx"
    result = runner.invoke(args=["report", "ministry", "--org", "A", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    header, rows = _sheet(data)
    assert header[:3] == ["Код организации", "Организация", "Акт о переходе"]
    by_code = {r[0].value: r for r in rows}
    assert list(by_code) == ["A", "A1"]  # A's subtree only, one row each
    assert by_code["A"][2].value == "Освобождена: АРМ ГС (VK Teams)"
    # A text that looks like a formula stays text.
    act_cell = by_code["A1"][2]
    assert act_cell.data_type == "s" and act_cell.value.startswith("№ =HYPERLINK")
    # The same figures as the dashboard's API for the same subtree.
    g.pop("_login_user", None)
    dash = call("GET", "/api/v1/progress?org=A", headers=admin).get_json()
    a = by_code["A"]
    assert [a[i].value for i in (3, 4, 5)] == [dash["employees"], dash["linked"],
                                               dash["linked_pct"]]
    assert [a[i].value for i in (8, 9)] == [dash["groups_total"], dash["groups_done"]]
    assert [a[i].value for i in (6, 7)] == [2, 1]  # heads of A and A1; A's is linked
    assert [a[i].value for i in (10, 11)] == [2, 1]  # channels: A's has Max, A1's not
    assert "отстаёт" in by_code["A1"][13].value  # the directive's heads milestone
    # The command recorded the produced file's hash.
    ev = ctx.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "report.ministry.produced")).one()
    assert json.loads(ev.summary)["sha256"] == hashlib.sha256(data).hexdigest()


def test_produce_download_and_sign_off_on_the_report_page(
        ctx, client, login, region, imported, make_user):
    imported("transition_acts", ACTS)
    coordinator = make_user("coordinator", orgs=[region.A])
    login(client, coordinator)
    page = client.get("/reports/ministry").get_data(as_text=True)
    assert "Школа А1" in page and "Ведомство Б" not in page
    assert client.get("/reports/ministry?org=B").status_code == 404
    assert client.post("/reports/ministry?org=B").status_code == 404
    resp = client.post("/reports/ministry?org=A")
    assert resp.status_code == 302
    run = ctx.scalars(sa.select(ReportRun)).one()
    ctx.commit()
    data = client.get(f"/reports/ministry/{run.id}.xlsx").data
    _header, rows = _sheet(data)
    assert [r[0].value for r in rows] == ["A", "A1"]

    assert client.post(f"/reports/ministry/{run.id}/sign-off").status_code == 302
    ctx.expire_all()
    ev = ctx.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "report.ministry.signed")).one()
    summary = json.loads(ev.summary)
    assert summary["sha256"] == hashlib.sha256(data).hexdigest()
    assert summary["signed_by"] == coordinator.email and ev.actor_id == str(coordinator.id)
    run = ctx.get(ReportRun, run.id)
    assert run.signed_by_id == coordinator.id and run.signed_at is not None
    # Signing twice is refused; the trail keeps one sign-off.
    client.post(f"/reports/ministry/{run.id}/sign-off")
    assert ctx.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "report.ministry.signed")) == 1


def test_another_scope_cannot_fetch_or_sign_a_report(ctx, client, login, region, make_user,
                                                     runner, tmp_path):
    result = runner.invoke(args=["report", "ministry", "--org", "B", "--out",
                                 str(tmp_path / "b.xlsx")])
    assert result.exit_code == 0, result.output
    run = ctx.scalars(sa.select(ReportRun)).one()
    ctx.commit()
    login(client, make_user("coordinator", orgs=[region.A]))
    assert client.get(f"/reports/ministry/{run.id}.xlsx").status_code == 404
    assert client.post(f"/reports/ministry/{run.id}/sign-off").status_code == 404
