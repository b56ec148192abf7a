"""The register of transition orders (form, import, API, scans), public channels (import,
pages, attention) and the escalation of lagging organisations."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import g

from migrator.audit.models import AuditEvent
from migrator.directives.models import Escalation, PublicChannel, TransitionAct
from migrator.directives.service import check_escalations
from migrator.imports.service import import_file
from migrator.mail.models import OutboxMessage
from migrator.people.models import Employee

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


def test_act_through_the_form_with_a_scan_checked_by_content(
        ctx, client, login, region, make_user, tmp_path):
    login(client, make_user("coordinator", orgs=[region.A]))
    page = client.get("/orgs/A").get_data(as_text=True)
    assert "Акт о переходе в Max" in page and "Сохранить запись реестра" in page
    # A text file named .pdf is refused, nothing is written.
    resp = client.post("/orgs/A/transition-act", data={
        "act_number": "15-од", "act_date": "2025-11-28",
        "scan": (__import__("io").BytesIO(b"just text"), "act.pdf")},
        content_type="multipart/form-data")
    assert resp.status_code == 422
    assert "скан должен быть файлом PDF, PNG или JPEG" in resp.get_data(as_text=True)
    assert ctx.get(TransitionAct, region.A.id) is None
    # Both an act and an exemption: refused with the field named.
    resp = client.post("/orgs/A/transition-act", data={
        "act_number": "15-од", "act_date": "2025-11-28", "exemption": "arm_gs"})
    assert resp.status_code == 422 and "либо акт, либо освобождение" in resp.get_data(
        as_text=True)
    resp = client.post("/orgs/A/transition-act", data={
        "act_number": "15-од", "act_date": "2025-11-28",
        "scan": (__import__("io").BytesIO(PDF), "scan.bin")},
        content_type="multipart/form-data")
    assert resp.status_code == 302
    ctx.expire_all()
    act = ctx.get(TransitionAct, region.A.id)
    assert (act.act_number, act.act_date.isoformat(), act.scan_type) == (
        "15-од", "2025-11-28", "pdf")
    assert client.get("/orgs/A/transition-act/scan").data == PDF
    page = client.get("/orgs/A").get_data(as_text=True)
    assert "№ 15-од от 28.11.2025" in page
    # Another organisation's register is out of reach.
    assert client.post("/orgs/B/transition-act", data={"exemption": "arm_gs"}).status_code \
        == 404
    assert client.get("/orgs/B/transition-act/scan").status_code == 404


def test_a_scan_over_10_mb_is_refused(ctx, client, login, region, make_user):
    login(client, make_user("admin"))
    big = PDF + b"0" * (10 * 1024 * 1024)
    resp = client.post("/orgs/A/transition-act", data={
        "act_number": "1", "act_date": "2025-11-28",
        "scan": (__import__("io").BytesIO(big), "big.pdf")},
        content_type="multipart/form-data")
    assert resp.status_code == 422 and "больше 10 МБ" in resp.get_data(as_text=True)
    assert ctx.get(TransitionAct, region.A.id) is None


def test_put_transition_act_api(ctx, call, region, make_user, api_token):
    headers = api_token(make_user("coordinator", orgs=[region.A]))
    resp = call("PUT", "/api/v1/orgs/A1/transition-act", headers=headers,
                json={"exemption": "other"})
    assert resp.status_code == 422 and "exemption_reason" in resp.get_json()["details"]
    resp = call("PUT", "/api/v1/orgs/A1/transition-act", headers=headers,
                json={"exemption": "departmental", "exemption_reason": "СЭД «Дело»"})
    assert resp.status_code == 200
    assert resp.get_json()["exemption"] == "departmental"
    assert call("PUT", "/api/v1/orgs/B/transition-act", headers=headers,
                json={"exemption": "arm_gs"}).status_code == 404
    ctx.expire_all()
    assert ctx.get(TransitionAct, region.A1.id).exemption_reason == "СЭД «Дело»"
    assert ctx.get(TransitionAct, region.B.id) is None


def test_import_of_acts_is_all_or_nothing(ctx, region, make_user):
    coordinator = make_user("coordinator", orgs=[region.A])
    text = ("org_code,act_number,act_date,exemption,exemption_reason\n"
            "A,12-од,20.11.2025,,\n"
            "B,13-од,2025-11-20,,\n"
            "A1,,,помидор,\n")
    result = import_file("transition_acts", "acts.csv", text.encode(), dry_run=False,
                         user=coordinator)
    assert not result.ok
    assert {(e.line, e.column) for e in result.errors} == {(3, "org_code"), (4, "exemption")}
    assert ctx.scalar(sa.select(sa.func.count()).select_from(TransitionAct)) == 0
    text = ("org_code,act_number,act_date,exemption,exemption_reason\n"
            "A,12-од,20.11.2025,,\n"
            "A1,,,АРМ ГС,\n")
    result = import_file("transition_acts", "acts.csv", text.encode(), dry_run=False,
                         user=coordinator)
    assert result.ok and result.created == 2
    ctx.expire_all()
    assert ctx.get(TransitionAct, region.A1.id).exemption == "arm_gs"


def test_channels_import_pages_and_attention(ctx, client, login, region, make_user, imported):
    imported("channels", (
        "org_code,platform,url,title,max_url,status\n"
        "A,telegram,https://t.me/a_news,Новости А,https://max.ru/a_news,moved\n"
        "A1,telegram,https://t.me/a1,Школа А1 в Telegram,,active\n"
        "B,whatsapp,https://wa.me/b,Канал Б,,duplicated\n"))
    moved = ctx.scalar(sa.select(PublicChannel).where(PublicChannel.url == "https://t.me/a_news"))
    assert moved.stopped_at is not None  # when the old one stopped is recorded
    bad = import_file("channels", "c.csv", (
        b"org_code,platform,url,title,max_url,status\n"
        b"A,icq,t.me/x,X,,gone\n"), dry_run=True)
    assert {e.column for e in bad.errors} == {"platform", "url", "status"}

    login(client, make_user("coordinator", orgs=[region.A]))
    summary = client.get("/channels/").get_data(as_text=True)
    assert "Школа А1 в Telegram" in summary  # no Max counterpart: attention
    assert "Канал Б" not in summary  # outside the scope
    page = client.get("/orgs/A/channels").get_data(as_text=True)
    assert "Новости А" in page and "только ссылка на Max" in page
    page = client.get("/orgs/A1/channels").get_data(as_text=True)
    assert "действует" in page and "активна" not in page  # a channel, not a wave
    assert client.get("/orgs/B/channels").status_code == 404


def test_escalation_raises_attention_and_one_email_a_week(
        ctx, call, region, make_user, api_token, directive_payload, app):
    app.config["DIRECTIVE_LAG_POINTS"] = 20
    headers = api_token(make_user("admin"))
    call("POST", "/api/v1/directives", json=directive_payload(started_days_ago=10,
                                                              due_in_days=10),
         headers=headers)  # plan today: 50 %, fact 0 %: lag 50 > 20
    ctx.rollback()
    stats = check_escalations()
    assert stats["raised"] == 4 and stats["emailed"] == 4
    mails = ctx.scalars(sa.select(OutboxMessage).where(
        OutboxMessage.kind == "directive_lag")).all()
    assert sorted(m.to_addr for m in mails) == sorted(
        ["gov@example.org", "a-head@example.org", "a1-head@example.org",
         "b-head@example.org"])
    assert "отстаёт от графика" in mails[0].body_text

    # The next days: still lagging, no second e-mail within the week.
    from migrator.db import utcnow

    later = utcnow() + timedelta(days=3)
    stats = check_escalations(now=later)
    assert stats == {"raised": 0, "resolved": 0, "emailed": 0}
    assert ctx.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 4

    # B's head links and B has no other heads: B's escalation resolves.
    emp = ctx.scalar(sa.select(Employee).where(Employee.email == "b-head@example.org"))
    emp.max_user_id, emp.linked_at = 5555, utcnow()
    ctx.commit()
    stats = check_escalations(now=later)
    assert stats["resolved"] == 1
    open_orgs = set(ctx.scalars(sa.select(Escalation.org_id).where(
        Escalation.resolved_at.is_(None))))
    assert region.B.id not in open_orgs and region.A.id in open_orgs
    # A week after the first e-mail the lagging heads hear again, once.
    stats = check_escalations(now=utcnow() + timedelta(days=8))
    assert stats["emailed"] == 3
    assert ctx.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "directive.head_emailed")) == 7
    g.pop("_login_user", None)


def test_attention_page_lists_lag_and_channels_in_scope(
        ctx, call, client, login, region, make_user, api_token, directive_payload, imported):
    imported("channels", ("org_code,platform,url,title,max_url,status\n"
                          "A1,telegram,https://t.me/a1,Школа А1 в Telegram,,active\n"
                          "B,whatsapp,https://wa.me/b,Канал Б,,active\n"))
    call("POST", "/api/v1/directives", json=directive_payload(),
         headers=api_token(make_user("admin")))
    ctx.rollback()
    check_escalations()
    g.pop("_login_user", None)
    login(client, make_user("coordinator", orgs=[region.A]))
    page = client.get("/attention").get_data(as_text=True)
    assert "Отставание от графика поручения" in page
    assert "Школа А1 в Telegram" in page and "Канал Б" not in page
    assert "Ведомство Б" not in page
    single = client.get("/attention?section=directive_lag").get_data(as_text=True)
    assert "Поручение губернатора № 12" in single and "Школа А1" in single
