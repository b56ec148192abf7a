"""End to end: import → bot added → link → wave → run-due → invitation e-mails → Start →
members added → pinned announcement → confirmations → cutover → report e-mail.

Every claim is checked on the sandbox's or the mailbox's state."""

from __future__ import annotations

import pytest
from flow import (
    PERMS,
    import_region,
    linked_count,
    past_dates,
    press_start_from_emails,
    subscribe_webhook,
    wait_until,
)

from migrator.db import get_session
from migrator.max.models import MaxChat
from migrator.waves.settings import DEFAULT_FOOTER

N = 6


@pytest.mark.slow
def test_whole_flow(sandbox, smtp, app, live_server, ctx, runner, client, tmp_path,
                    make_user, api_token):
    import_region(runner, tmp_path, N)
    from migrator.org.models import Organisation

    school = ctx.exec(__import__("sqlmodel").select(Organisation).where(
        Organisation.code == "SCH1")).one()
    coord = make_user("coordinator", orgs=[school])
    headers = api_token(coord)
    subscribe_webhook(app, sandbox.url, live_server.url)

    # A coordinator creates the chat in Max and adds the bot as admin: bot_added arrives.
    owner = sandbox.user("Директор")
    chat_id = sandbox.ctl("POST", "/chats", {"title": "Учителя школы №1 (Max)",
                                             "owner_id": owner})["chat_id"]
    sandbox.ctl("POST", f"/chats/{chat_id}/bot", {"permissions": PERMS, "by_user_id": owner})
    chat = wait_until(lambda: ctx.exec(__import__("sqlmodel").select(MaxChat).where(
        MaxChat.chat_id == chat_id)).first(), what="the chat to be discovered")
    wait_until(lambda: ctx.get(MaxChat, chat.id, populate_existing=True).preflight_ok,
               what="the pre-flight check")

    # The bot was added by someone not linked yet: the chat has no organisation, so an
    # administrator maps it (a coordinator sees only chats of their organisations).
    resp = client.post("/api/v1/groups/sch1-teachers/link", json={"chat_id": chat_id},
                       headers=api_token(make_user("admin")))
    assert resp.status_code in (200, 201), resp.json
    resp = client.post("/api/v1/waves", json={"name": "Школа №1", "group_keys": [
        "sch1-teachers"], **past_dates()}, headers=headers)
    assert resp.status_code == 201, resp.json

    # First run: invitations go out by e-mail; the announcement is posted and pinned.
    result = runner.invoke(args=["run-due"])
    assert result.exit_code == 0, result.output
    mails = smtp.wait_for(N)
    assert sorted(str(m["To"]) for m in mails) == sorted(
        f"t{i}@school1.example" for i in range(N))
    assert len({m["Message-ID"] for m in mails}) == N
    pinned = sandbox.chat(chat_id)["pinned_message"]
    assert pinned and pinned["body"]["text"].endswith(DEFAULT_FOOTER)
    assert "СЭД" in pinned["body"]["text"]

    # People press Start on the links from their e-mails: bot_started webhooks link them.
    users = press_start_from_emails(sandbox, mails)
    wait_until(lambda: linked_count() == N, what="everyone to be linked")

    result = runner.invoke(args=["run-due"])
    assert result.exit_code == 0, result.output
    members = set(sandbox.members(chat_id))
    assert set(users.values()) <= members
    assert sandbox.add_calls(chat_id) == 1
    # the bot confirmed to each person in their dialog
    for uid in users.values():
        assert sandbox.ctl("GET", f"/users/{uid}/messages")["messages"]

    # The coordinator posted the move notice in WhatsApp and confirms; coverage is 100%.
    resp = client.post("/api/v1/groups/sch1-teachers/steps/announce/confirm",
                       json={"note": "Объявление в WhatsApp размещено"}, headers=headers)
    assert resp.status_code == 200, resp.json
    runner.invoke(args=["run-due"])
    data = client.get("/api/v1/groups/sch1-teachers", headers=headers).json
    steps = {s["kind"]: s["status"] for s in data["steps"]}
    assert steps["cutover"] == "waiting" and data["coverage"]["percent"] == 100.0
    resp = client.post("/api/v1/groups/sch1-teachers/steps/cutover/confirm",
                       json={"note": "Группа WhatsApp закрыта"}, headers=headers)
    assert resp.status_code == 200, resp.json
    runner.invoke(args=["run-due"])
    mails = smtp.wait_for(N + 1)
    report = [m for m in mails if str(m["To"]) == "director@school1.example"]
    assert len(report) == 1
    assert "Учителя школы №1" in report[0].get_body(("plain",)).get_content()
    # still exactly one announcement, every member once
    chat_state = sandbox.chat(chat_id)
    assert len([m for m in chat_state["messages"] if m["sender"]["is_bot"]]) == 1
    ids = [m["user_id"] for m in chat_state["members"]]
    assert len(ids) == len(set(ids))
    get_session().expire_all()
