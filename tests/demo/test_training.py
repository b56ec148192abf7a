"""The training sandbox page: its forms act in the real Max sandbox over HTTP, and the app
learns of the actions through the webhook, as it would from Max."""

from __future__ import annotations

import pytest
from enginetest import wait_for
from sqlmodel import select

from migrator.mail.service import send_due
from migrator.max.client import MaxClient
from migrator.max.models import MaxChat
from migrator.people.invites import issue_invitations
from migrator.people.models import Employee

PROD = {"ENV": "production", "SECRET_KEY": "a-long-random-secret-key-0123456789-xyz",
        "MAX_WEBHOOK_SECRET": "hook-Secret_42-abcdefghijklmnopqrstuv",
        "MIGRATOR_BASE_URL": "https://migrator.example.ru", "SESSION_COOKIE_SECURE": True}




def _post(client, ctx, url, data):
    resp = client.post(url, data=data)
    ctx.commit()
    return resp


def _chat(sandbox, title):
    return next((c for c in sandbox.chats() if c["title"] == title), None)


def _bot(sandbox, chat):
    bot_id = sandbox.bot()["user_id"]
    return next((m for m in sandbox.chat(chat["chat_id"])["members"]
                 if m["user_id"] == bot_id), None)


@pytest.fixture
def subscribed(sandbox, app, live_server):
    """The app's webhook subscribed in the sandbox (as `make run` does)."""
    with MaxClient(sandbox.url, app.config["MAX_BOT_TOKEN"]) as max_client:
        max_client.subscribe(f"{live_server.url}/max/webhook",
                             secret=app.config["MAX_WEBHOOK_SECRET"])
    return sandbox


def test_the_forms_drive_the_sandbox_and_the_app_hears_of_it(
        subscribed, app, client, login, ctx, make_org, make_user, make_employee, make_group,
        smtp_server):
    sandbox = subscribed
    org = make_org(name="Школа № 5")
    emp = make_employee(org, full_name="Петрова Анна Сергеевна")
    group = make_group(org, members=[emp])
    login(client, make_user("coordinator", orgs=[org]))
    page = client.get("/sandbox/").get_data(as_text=True)
    ctx.commit()
    assert "Учебная песочница" in page and "Чатов пока нет." in page

    # a person, then a chat they own
    resp = _post(client, ctx, "/sandbox/people", {"person-first_name": "Ольга",
                                                  "person-last_name": "Смирнова",
                                                  "person-allow_add": "y"})
    assert resp.status_code == 302
    (olga,) = [u for u in sandbox.users() if u["first_name"] == "Ольга"]
    assert olga["last_name"] == "Смирнова" and olga["allow_add"] is True
    resp = _post(client, ctx, "/sandbox/chats", {"chat-title": "", "chat-owner": olga["user_id"]})
    assert resp.status_code == 400 and 'aria-invalid="true"' in resp.get_data(as_text=True)
    assert sandbox.chats() == []
    _post(client, ctx, "/sandbox/chats", {"chat-title": "Учителя (Max)",
                                          "chat-owner": olga["user_id"]})
    chat = _chat(sandbox, "Учителя (Max)")
    assert chat is not None and chat["bot_status"] != "active"

    # the bot added with two rights: the app discovers the chat with what it lacks
    resp = _post(client, ctx, "/sandbox/bot", {
        "bot-chat": chat["chat_id"], "bot-is_admin": "y",
        "bot-rights": ["read_all_messages", "add_remove_members"], "bot-add": "1"})
    assert resp.status_code == 302
    assert set(_bot(sandbox, chat)["permissions"]) == {"read_all_messages",
                                                       "add_remove_members"}
    known = wait_for(ctx, lambda: ctx.exec(select(MaxChat).where(
        MaxChat.chat_id == chat["chat_id"], MaxChat.checked_at.is_not(None))).first(),
        "the chat's discovery")
    assert known.missing_permissions == ["pin_message"]
    page = client.get("/sandbox/").get_data(as_text=True)
    assert "Учителя (Max)" in page and "читать все сообщения" in page
    resp = _post(client, ctx, "/sandbox/bot", {"bot-chat": chat["chat_id"], "bot-add": "1"})
    assert resp.status_code == 400 and "Бот уже в этом чате" in resp.get_data(as_text=True)

    # promoted silently, a person joins, then the bot is removed (the app hears that)
    _post(client, ctx, "/sandbox/bot", {
        "bot-chat": chat["chat_id"], "bot-is_admin": "y", "bot-change": "1",
        "bot-rights": ["read_all_messages", "add_remove_members", "pin_message"]})
    assert len(_bot(sandbox, chat)["permissions"]) == 3
    other = sandbox.create_user("Пётр")["user_id"]
    _post(client, ctx, "/sandbox/members", {"member-chat": chat["chat_id"],
                                            "member-person": other})
    assert other in {m["user_id"] for m in sandbox.chat(chat["chat_id"])["members"]}
    resp = _post(client, ctx, "/sandbox/members", {"member-chat": chat["chat_id"],
                                                   "member-person": other})
    assert resp.status_code == 400 and "уже в чате" in resp.get_data(as_text=True)
    _post(client, ctx, "/sandbox/bot", {"bot-chat": chat["chat_id"], "bot-remove": "1"})
    assert sandbox.chat(chat["chat_id"])["bot_status"] == "removed"
    wait_for(ctx, lambda: ctx.exec(select(MaxChat.status).where(
        MaxChat.chat_id == chat["chat_id"])).first() == "removed", "the bot's removal")

    # an invited employee presses Start on their invitation: the app links them
    issue_invitations(group)
    ctx.commit()
    assert send_due().sent == 1
    ctx.commit()
    page = client.get("/sandbox/").get_data(as_text=True)
    assert "Петрова Анна Сергеевна &lt;" in page
    resp = _post(client, ctx, "/sandbox/start", {"start-person": "", "start-invitation": emp.id,
                                                 "start-link": "https://max.ru/x?start=abc"})
    assert resp.status_code == 400 and "не то и другое" in resp.get_data(as_text=True)
    resp = _post(client, ctx, "/sandbox/start", {"start-person": "", "start-invitation": emp.id})
    assert resp.status_code == 302
    new_id = wait_for(ctx, lambda: ctx.scalar(select(Employee.max_user_id).where(
        Employee.id == emp.id)), "the link")
    ctx.expire_all()
    assert sandbox.get_user(new_id)["first_name"] == "Петрова"
    assert sandbox.get_user(new_id)["bot_started"] is True
    # the invitation is used: no longer offered
    assert "Петрова Анна Сергеевна &lt;" not in client.get("/sandbox/").get_data(as_text=True)
    ctx.commit()


def test_a_bad_link_is_refused_inline(sandbox, app, client, login, make_user, ctx):
    login(client, make_user("admin"))
    user = sandbox.create_user("Иван")["user_id"]
    resp = client.post("/sandbox/start", data={"start-person": str(user),
                                               "start-link": "max.ru/bot"})
    assert resp.status_code == 400
    assert "Вставьте ссылку целиком" in resp.get_data(as_text=True)
    assert sandbox.get_user(user)["bot_started"] is False


def test_without_a_sandbox_the_page_says_so(client, login, make_user, make_org, ctx):
    login(client, make_user("coordinator", orgs=[make_org()]))
    page = client.get("/sandbox/").get_data(as_text=True)
    assert "Песочница Max не отвечает" in page and "<form" not in page.split("<main")[-1]
    resp = client.post("/sandbox/people", data={"person-first_name": "Ольга"})
    assert resp.status_code == 302
    assert "Песочница Max не отвечает" in client.get("/sandbox/").get_data(as_text=True)


def test_auditors_may_not_and_production_has_no_training_sandbox(app_config, client, login,
                                                                 make_user, ctx):
    login(client, make_user("auditor"))
    assert client.get("/sandbox/").status_code == 403
    from migrator import create_app

    prod = create_app({**app_config, **PROD, "MIGRATOR_BASE_URL": "https://m.example.ru:443"})
    assert "training.index" not in prod.view_functions
    assert not any(r.rule.startswith("/sandbox") for r in prod.url_map.iter_rules())
    prod.extensions["migrator.engine"].dispose()
