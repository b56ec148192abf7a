"""Every kind of action leaves an event: drive the real services and read the trail.

This walks what exists through its real entry points (CLI, sign-in form, pages, API, the
Max webhook, the step runner with a real SMTP server and the Max sandbox) and asserts the
events — actor, object, organisation, request data — not just their names.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from enginetest import SANDBOX_BOT
from enginetest import SANDBOX_TOKEN as BOT_TOKEN
from smtp_helpers import SmtpSink
from sqlmodel import select

from migrator.audit.models import AuditEvent
from migrator.audit.service import verify
from migrator.db import get_session
from migrator.org.models import Organisation

PASSWORD = "trail-password-123"
SECRET = "trail-webhook-secret"  # noqa: S105


@pytest.fixture
def smtp():
    sink = SmtpSink().start()
    sink.reject.add("petrova@example.org")  # a permanent refusal: the e-mail fails
    yield sink
    sink.stop()


@pytest.fixture
def app_config(app_config, shared_sandbox, smtp):
    app_config.update(MAX_API_URL=shared_sandbox.url, MAX_BOT_TOKEN=BOT_TOKEN,
                      MAX_WEBHOOK_SECRET=SECRET, MAX_BOT_USERNAME=SANDBOX_BOT,
                      SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port)
    return app_config


def _events(app, action: str) -> list[AuditEvent]:
    # A fresh app context per read: one shared with the requests would keep their user.
    with app.app_context():
        return list(get_session().exec(select(AuditEvent).where(AuditEvent.action == action)
                                       .order_by(AuditEvent.seq)))


def _import(runner, tmp_path, kind: str, text: str) -> None:
    path = tmp_path / f"{kind}.csv"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(args=["import", kind, str(path)])
    assert result.exit_code == 0, result.output


def test_a_campaign_leaves_a_complete_verifiable_trail(app, runner, client, tmp_path,
                                                       sandbox, smtp):
    # --- inventory through the import command -----------------------------------------
    _import(runner, tmp_path, "organisations",
            "code,name,parent_code,head_email\nREG,Регион,,head@example.org\n"
            "EDU,Минобразования,REG,edu@example.org\n")
    _import(runner, tmp_path, "employees",
            "email,full_name,org_code,position,phone\n"
            "ivanov@example.org,Иванов И. И.,EDU,Специалист,\n"
            "petrova@example.org,Петрова А. А.,EDU,Начальник,\n")
    _import(runner, tmp_path, "groups",
            "key,name,platform,org_code,owner_email\n"
            "edu-main,Отдел образования,whatsapp,EDU,petrova@example.org\n")
    _import(runner, tmp_path, "members",
            "group_key,email\nedu-main,ivanov@example.org\nedu-main,petrova@example.org\n")
    for kind, rows in (("organisations", 2), ("employees", 2), ("groups", 1), ("members", 2)):
        (ev,) = _events(app, f"import.{kind}")
        assert ev.actor_type == "system" and ev.actor_id == "cli"
        assert json.loads(ev.summary)["rows"] == rows

    # --- users and tokens through the users command -----------------------------------
    result = runner.invoke(args=["users", "create", "coord@example.org", "--role", "coordinator",
                                 "--org", "EDU", "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["users", "create", "admin@example.org", "--role", "admin",
                                 "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    created = _events(app, "user.create")
    assert [json.loads(e.summary)["email"] for e in created] == ["coord@example.org",
                                                                 "admin@example.org"]
    assert json.loads(created[0].summary)["orgs"] == ["EDU"]
    result = runner.invoke(args=["users", "token", "coord@example.org"])
    assert result.exit_code == 0
    token = result.output.strip().splitlines()[-1]
    (tok,) = _events(app, "token.create")
    assert token[:10] == json.loads(tok.summary)["prefix"] and token not in tok.summary

    # --- sign-in, a failed sign-in, sign-out ------------------------------------------
    resp = client.post("/login", data={"email": "coord@example.org", "password": "wrong-one!"})
    assert resp.status_code == 401
    (failed,) = _events(app, "auth.login_failed")
    assert failed.actor_label == "coord@example.org" and failed.client_ip == "127.0.0.1"
    assert "wrong-one" not in failed.summary
    resp = client.post("/login", data={"email": "coord@example.org", "password": PASSWORD},
                       headers={"X-Request-Id": "req-trail-1"})
    assert resp.status_code == 302
    (login,) = _events(app, "auth.login")
    assert login.actor_label == "coord@example.org" and login.request_id == "req-trail-1"
    assert login.client_ip == "127.0.0.1"

    # --- an export of the trail is itself audited -------------------------------------
    resp = client.get("/audit/export.jsonl?action=import.")
    assert resp.status_code == 200
    (export,) = _events(app, "audit.export")
    assert export.actor_label == "coord@example.org"
    assert json.loads(export.summary) == {"format": "jsonl", "filters": {"action": "import."}}

    # --- reading through the API (not audited: reads change nothing) -----------------
    admin_token = runner.invoke(args=["users", "token", "admin@example.org"]).output.split()[-1]
    api = app.test_client()  # no session cookie: the Bearer token decides
    everything = api.get("/api/v1/audit?since=0&limit=1000",
                            headers={"Authorization": f"Bearer {admin_token}"}).get_json()
    actions = {e["action"] for e in everything["events"]}
    assert {"import.organisations", "user.create", "auth.login", "audit.export"} <= actions
    scoped = api.get("/api/v1/audit?since=0&limit=1000",
                        headers={"Authorization": f"Bearer {token}"}).get_json()
    with app.app_context():
        edu = get_session().exec(select(Organisation).where(Organisation.code == "EDU")).one()
    # the coordinator sees only events of EDU (and below), none of the region-wide ones
    assert all(e["org_id"] == edu.id for e in scoped["events"])
    assert not {"import.organisations", "user.create"} & {e["action"] for e in scoped["events"]}

    # --- Max: the bot is added to a chat (webhook), an admin links the group (API) ------
    chat_id = sandbox.chat_with_bot("Отдел образования")
    update = {"update_type": "bot_added", "timestamp": int(time.time() * 1000),
              "chat_id": chat_id, "is_channel": False,
              "user": {"user_id": 1, "first_name": "Owner", "name": "Owner", "is_bot": False,
                       "last_activity_time": 1}}
    resp = api.post("/max/webhook", json=update, headers={"X-Max-Bot-Api-Secret": SECRET})
    assert resp.status_code == 200
    (found,) = _events(app, "max.chat_discovered")
    assert found.actor_type == "max" and found.object_id == str(chat_id)
    (taken_in,) = _events(app, "max.update")  # every update taken in, whatever its type
    assert taken_in.actor_type == "max"
    assert json.loads(taken_in.summary)["update_type"] == "bot_added"
    assert json.loads(taken_in.summary)["chat_id"] == chat_id
    calls = _events(app, "max.call")  # the immediate re-check of the new chat's rights
    assert calls and all(BOT_TOKEN not in c.summary for c in calls)
    assert {json.loads(c.summary)["chat_id"] for c in calls} == {chat_id}
    assert all(json.loads(c.summary)["status"] == 200 for c in calls)
    resp = api.post("/api/v1/groups/edu-main/link", json={"chat_id": chat_id},
                    headers={"Authorization": f"Bearer {admin_token}"})
    assert resp.status_code == 200, resp.get_json()
    (link,) = _events(app, "group.link")
    assert link.actor_label == "admin@example.org" and link.org_id == edu.id
    assert json.loads(link.summary)["after"]["max_chat_id"] == chat_id

    # --- a wave planned through the API by the coordinator ------------------------------
    start = datetime.now(UTC) - timedelta(minutes=1)  # the invitations are due at once
    body = {"name": "Волна 1", "group_keys": ["edu-main"],
            **{name: (start + timedelta(days=i)).isoformat()
               for i, name in enumerate(("invite_at", "add_members_at", "announce_at",
                                         "cutover_at", "deadline"))}}
    resp = api.post("/api/v1/waves", json=body, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 201, resp.get_json()
    wave_id = resp.get_json()["id"]
    (wave,) = _events(app, "wave.create")
    assert wave.actor_label == "coord@example.org" and wave.org_id == edu.id
    assert wave.object_type == "wave" and wave.object_id == str(wave_id)
    assert json.loads(wave.summary)["groups"] == ["edu-main"]
    # ... and it is in the coordinator's scope, so the API now shows it to them
    scoped = api.get(f"/api/v1/audit?since={scoped['next']}",
                     headers={"Authorization": f"Bearer {token}"}).get_json()
    assert [e["action"] for e in scoped["events"]] == ["group.link", "wave.create"]

    # --- the runner takes the due invitation step; its e-mails go through the outbox ----
    result = runner.invoke(args=["run-due"])
    assert result.exit_code == 0, result.output
    steps = _events(app, "step.started") + _events(app, "step.succeeded")
    assert [e.action for e in steps] == ["step.started", "step.succeeded"]
    assert all(e.actor_type == "job" and e.org_id == edu.id and e.object_type == "step"
               for e in steps)
    assert json.loads(steps[1].summary)["stats"]["invites"] == 2
    (activated,) = _events(app, "wave.activate")
    assert activated.object_id == str(wave_id) and activated.actor_type == "job"
    (sent,) = _events(app, "mail.sent")
    (bounced,) = _events(app, "mail.failed")
    assert json.loads(sent.summary)["to"] == "ivanov@example.org"
    assert json.loads(bounced.summary)["to"] == "petrova@example.org"
    assert "550" in json.loads(bounced.summary)["error"]
    for ev in (sent, bounced):  # who and what, never the message text or the invite link
        assert ev.org_id == edu.id and ev.actor_type == "job"
        assert "start=" not in ev.summary and "max.ru" not in ev.summary

    # --- the employee presses Start with the link from the e-mail: linked -----------------
    smtp.wait_for(1, timeout=5)
    text = smtp.messages[0].get_body(("plain",)).get_content()
    link_token = re.search(r"start=([A-Za-z0-9_-]+)", text).group(1)
    started = {"update_type": "bot_started", "timestamp": int(time.time() * 1000),
               "chat_id": 9001, "payload": link_token,
               "user": {"user_id": 777, "first_name": "Иван", "name": "Иван",
                        "is_bot": False, "last_activity_time": 1}}
    resp = api.post("/max/webhook", json=started, headers={"X-Max-Bot-Api-Secret": SECRET})
    assert resp.status_code == 200
    assert [json.loads(e.summary)["update_type"] for e in _events(app, "max.update")] == [
        "bot_added", "bot_started"]
    (linked,) = _events(app, "employee.linked")
    assert linked.actor_type == "max" and linked.org_id == edu.id
    assert json.loads(linked.summary)["max_user_id"] == 777 and link_token not in linked.summary

    resp = client.post("/logout")
    assert resp.status_code == 302
    assert _events(app, "auth.logout")[0].actor_label == "coord@example.org"

    # --- and the whole trail verifies ----------------------------------------------------
    with app.app_context():
        assert verify(get_session()).ok
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
