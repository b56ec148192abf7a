"""Coordinator control of steps: the group API, confirmations, skip/retry/pause, override,
admin reset, the dry-run preview and the steps panel on the group page."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from enginetest import link, linked_chat_row, past_wave, set_status, step

from migrator.audit.models import AuditEvent
from migrator.db import get_session
from migrator.engine.runner import run_due


@pytest.fixture
def planned(sandbox, ctx, make_org, make_employee, make_group, make_user):
    org = make_org(head_email="head@example.org")
    emps = [make_employee(org, max_user_id=sandbox.user()) for _ in range(4)]
    emps.append(make_employee(org))  # never links: coverage 80%
    group = make_group(org, members=emps)
    chat_id = sandbox.chat_with_bot()
    link(group, linked_chat_row(chat_id, org))
    coord = make_user("coordinator", orgs=[org])
    past_wave([group], coord)
    set_status(group, "invite", "skipped")
    return org, group, coord, chat_id


def test_group_api_shows_mapping_steps_coverage(planned, client, api_token, make_user,
                                               make_org, app):
    org, group, coord, chat_id = planned
    run_due(send_mail=False)
    data = client.get(f"/api/v1/groups/{group.key}", headers=api_token(coord)).json
    assert data["mapping"]["chat_id"] == chat_id and data["mapping"]["preflight_ok"]
    kinds = {s["kind"]: s for s in data["steps"]}
    assert list(kinds) == ["invite", "add_members", "announce", "parallel_run", "cutover"]
    assert kinds["add_members"]["status"] == "succeeded"
    assert kinds["announce"]["status"] == "waiting"
    assert data["coverage"] == {"in_chat": 4, "members": 5, "percent": 80.0, "threshold": 90}


def test_group_api_outside_scope_404(planned, client, api_token, make_user, make_org):
    org, group, coord, chat_id = planned
    stranger = make_user("coordinator", orgs=[make_org()])
    assert client.get(f"/api/v1/groups/{group.key}",
                      headers=api_token(stranger)).status_code == 404


def test_confirm_api_409_unless_waiting(planned, client, api_token, app):
    org, group, coord, chat_id = planned
    headers = api_token(coord)
    url = f"/api/v1/groups/{group.key}/steps/announce/confirm"
    resp = client.post(url, json={"note": "posted"}, headers=headers)
    assert resp.status_code == 409
    run_due(send_mail=False)
    resp = client.post(url, json={"note": "Объявление размещено в WhatsApp"}, headers=headers)
    assert resp.status_code == 200 and resp.json["status"] == "succeeded"
    assert client.post(url, json={}, headers=headers).status_code == 409
    ev = get_session().scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "step.confirmed")).one()
    assert ev.actor_label == coord.email
    assert client.post(f"/api/v1/groups/{group.key}/steps/cutover/confirm", json={},
                       headers=headers).status_code == 409


def test_cutover_waits_for_threshold_then_override(planned, client, login, app):
    org, group, coord, chat_id = planned
    run_due(send_mail=False)
    login(client, coord)
    client.post(f"/engine/groups/{group.key}/steps/announce/confirm", data={"text": "ok"})
    run_due(send_mail=False)
    cut = step(group, "cutover")
    assert cut.status == "due" and "below 90%" in cut.last_error
    # an override needs a written reason
    client.post(f"/engine/groups/{group.key}/steps/cutover/override", data={"text": " "})
    assert step(group, "cutover").override_at is None
    client.post(f"/engine/groups/{group.key}/steps/cutover/override",
                data={"text": "Последний сотрудник в отпуске"})
    cut = step(group, "cutover")
    assert cut.status == "waiting" and cut.override_reason.startswith("Последний")
    actions = get_session().scalars(sa.select(AuditEvent.action)).all()
    assert "step.override" in actions


def test_skip_retry_pause_and_admin_reset(planned, client, login, make_user, app):
    org, group, coord, chat_id = planned
    login(client, coord)
    base = f"/engine/groups/{group.key}/steps/parallel_run"
    client.post(f"{base}/skip", data={"text": ""})
    assert step(group, "parallel_run").status != "skipped"
    client.post(f"{base}/pause")
    assert step(group, "parallel_run").status == "paused"
    client.post(f"{base}/resume")
    assert step(group, "parallel_run").status == "due"
    client.post(f"{base}/skip", data={"text": "Группа не нужна"})
    s = step(group, "parallel_run")
    assert s.status == "skipped" and s.note == "Группа не нужна" and s.changed_by == coord.email
    # reset is for admins only
    assert client.post(f"{base}/reset").status_code == 403
    set_status(group, "add_members", "failed")
    client.post(f"/engine/groups/{group.key}/steps/add_members/retry")
    assert step(group, "add_members").status == "due"


def test_group_page_panel_and_dry_run(planned, client, login, app):
    org, group, coord, chat_id = planned
    login(client, coord)
    page = client.get(f"/groups/{group.key}").get_data(as_text=True)
    assert "Шаги перехода" in page
    assert "Что сделает следующий запуск" in page
    # 4 linked members to add: one add call; announce: count, post and pin
    assert "вызовов API Max: 1" in page and "вызовов API Max: 3" in page


def test_cutover_confirm_sends_report_once_and_completes_wave(planned, client, login, app):
    from migrator.mail.models import OutboxMessage
    from migrator.waves.models import Wave

    org, group, coord, chat_id = planned
    run_due(send_mail=False)
    login(client, coord)
    client.post(f"/engine/groups/{group.key}/steps/announce/confirm", data={"text": "ok"})
    client.post(f"/engine/groups/{group.key}/steps/cutover/override",
                data={"text": "Один сотрудник уволился"})
    client.post(f"/engine/groups/{group.key}/steps/cutover/confirm",
                data={"text": "Группа WhatsApp закрыта"})
    client.post(f"/engine/groups/{group.key}/steps/cutover/confirm", data={"text": "again"})
    session = get_session()
    session.expire_all()
    reports = session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "report")).all()
    assert [r.to_addr for r in reports] == ["head@example.org"]
    assert group.name in reports[0].body_text and reports[0].body_html  # the shared template
    assert {s.status for s in [step(group, k) for k in ("add_members", "parallel_run",
                                                          "cutover")]} == {"succeeded"}
    assert session.get(Wave, step(group, "cutover").wave_id).status == "completed"


def test_failure_escalates_once_to_coordinators_and_head(planned, app):
    from migrator.mail.models import OutboxMessage
    from migrator.waves.settings import save_settings

    org, group, coord, chat_id = planned
    save_settings({"footer": ""})
    get_session().commit()
    run_due(send_mail=False)
    run_due(send_mail=False)
    assert step(group, "announce").status == "failed"
    to = sorted(get_session().scalars(sa.select(OutboxMessage.to_addr).where(
        OutboxMessage.kind == "escalation")).all())
    assert to == sorted([coord.email, "head@example.org"])


def test_digest_once_per_day(planned, app):
    from migrator.engine.jobs import send_digest
    from migrator.mail.models import OutboxMessage

    org, group, coord, chat_id = planned
    assert send_digest() == 1
    send_digest()
    rows = get_session().scalars(sa.select(OutboxMessage).where(
        OutboxMessage.kind == "digest")).all()
    assert [r.to_addr for r in rows] == [coord.email]


def test_overdue_steps_escalated_once(sandbox, ctx, app, make_org, make_employee, make_group,
                                      make_user):
    from datetime import timedelta

    from migrator.db import utcnow
    from migrator.engine.jobs import escalate_overdue
    from migrator.mail.models import OutboxMessage

    org = make_org(head_email="chief@example.org")
    group = make_group(org, members=[make_employee(org)])  # never links: cutover stays due
    coord = make_user("coordinator", orgs=[org])
    start = utcnow() - timedelta(days=5)
    past_wave([group], coord, invite_at=start, add_members_at=start, announce_at=start,
              cutover_at=start + timedelta(days=1), deadline=utcnow() + timedelta(days=1))
    set_status(group, "invite", "skipped")
    run_due(send_mail=False)  # not linked: add/announce/parallel postponed, cutover blocked
    assert escalate_overdue() >= 1
    assert escalate_overdue() == 0
    to = set(get_session().scalars(sa.select(OutboxMessage.to_addr).where(
        OutboxMessage.kind == "escalation")).all())
    assert to == {coord.email, "chief@example.org"}


def test_hourly_reminders_until_cutover(sandbox, ctx, app, make_org, make_employee, make_group,
                                        make_user):
    from datetime import timedelta

    from migrator.db import utcnow
    from migrator.engine.jobs import send_reminders
    from migrator.mail.models import OutboxMessage

    org = make_org()
    person = make_employee(org)
    group = make_group(org, members=[person])
    coord = make_user("coordinator", orgs=[org])
    past_wave([group], coord)
    run_due(send_mail=False)
    assert step(group, "invite").status == "succeeded"
    kinds = lambda: sorted(get_session().scalars(  # noqa: E731
        sa.select(OutboxMessage.kind).where(OutboxMessage.to_addr == person.email)).all())
    assert kinds() == ["invite"]
    send_reminders(now=utcnow() + timedelta(days=4))  # the default interval is 3 days
    assert kinds() == ["invite", "reminder"]
    send_reminders(now=utcnow() + timedelta(days=4, hours=1))
    assert kinds() == ["invite", "reminder"]


@pytest.mark.parametrize("target", ["/\\evil.example", "//evil.example", "https://evil.example",
                                    "/\tevil", "/ok/../\\\\evil.example"])
def test_step_actions_never_send_the_browser_off_site(planned, client, login, target):
    org, group, coord, chat_id = planned
    login(client, coord)
    resp = client.post(f"/engine/groups/{group.key}/steps/parallel_run/pause",
                       data={"next": target})
    assert resp.status_code == 302
    assert resp.headers["Location"] != target and "evil" not in resp.headers["Location"]
    resp = client.post(f"/engine/groups/{group.key}/steps/parallel_run/resume",
                       data={"next": "/groups/"})
    assert resp.headers["Location"] == "/groups/"
